"""The library's log records name an outbox row by its id and its recipient masked
(``j***@example.com``), and mask every address in a server's reply: log files outlive an
erasure, and are not the store's to rewrite."""

from __future__ import annotations

import contextlib
import logging

import pytest

from teamaccess import DeliveryFailed, DeliveryRefused, Store, TeamAccess
from teamaccess._service.delivery_rules import masked, masked_text
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SECRET

ANNA = "Anna.Person@Agentur.example"


def test_delivery_failures_log_the_id_and_a_masked_address(
    store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="teamaccess")
    reply = f"550 5.1.1 <{ANNA.lower()}>: mailbox unavailable (cc jo@other.example)"
    mailer = FailingMailer(error=DeliveryRefused(reply, code=550))
    team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, give_up_after=2)
    acc = team.create_account(name="Shop", owner_id="olga", owner_email="olga@shop.example").id
    team.add_contact(acc, actor_id="olga", name="Anna", email=ANNA, categories=["billing"])
    with contextlib.suppress(DeliveryFailed):
        team.notify(acc, "billing", subject="Invoice", text="Your invoice")
    clock.advance(team.max_retry_backoff)
    done = team.deliver_pending()  # refused twice: closed, with an error logged
    [closed] = [m for m in done if m.recipient.startswith("Anna")]
    assert closed.status == "cancelled"

    records = [r for r in caplog.records if r.name == "teamaccess"]
    assert {r.levelname for r in records} == {"WARNING", "ERROR"}
    hers = [r.getMessage() for r in records if closed.id in r.getMessage()]
    assert len(hers) == 3  # two failures, then closed
    assert all("to A***@agentur.example" in text for text in hers)
    for record in records:
        text = record.getMessage()
        assert "anna.person" not in text.lower()
        assert "jo@other.example" not in text
        assert "<a***@agentur.example>" in text  # the server's copy
        assert "j***@other.example" in text
    # The row keeps the server's reply: it is the erasure's to find, not a log's.
    assert ANNA.lower() in (closed.last_error or "")


def test_masking() -> None:
    assert masked("jo@example.com") == "j***@example.com"
    assert masked("jörg@bücher.example") == "j***@bücher.example"
    assert masked("no address") == "***"
    assert masked_text("550 <Jo.X+tag@Mail.Example.com>: no; 451 jörg@bücher.example.") == (
        "550 <J***@Mail.Example.com>: no; 451 j***@bücher.example."
    )
    assert masked_text("421 try later") == "421 try later"

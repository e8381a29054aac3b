"""A queue-only ``TeamAccess`` (``mailer=None``): the panel's web servers queue mail and never
hold the mail server's password; a worker with a mailer sends it.

The worker here is a second ``TeamAccess`` on the same SQLite file, sending through a real
SMTP server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SmtpMailer,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)

SENDER = "Panel <noreply@panel.example.net>"
ACCEPT = "https://panel.example.net/accept?token={token}"


def _panel(store: SQLiteStore | MemoryStore) -> TeamAccess:
    return TeamAccess(store, None, secret_key=SECRET, delivery="queue", sender=SENDER)


def test_the_panel_queues_and_the_worker_sends(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    panel = _panel(SQLiteStore(db))
    assert panel.mailer is None
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    panel.add_contact(
        acct.id, actor_id="max", name="Books", email="books@muster.de", categories=["billing"]
    )
    inv = panel.invite(
        acct.id,
        actor_id="max",
        email="dev@agentur.de",
        permissions=PermissionSet.of("billing.view"),
    )
    assert inv.token is None
    notified = panel.notify(acct.id, "billing", subject="Invoice", text="Ready.")
    assert sorted(notified) == ["books@muster.de", "max@muster.de"]  # the owner gets billing
    assert len(panel.pending_messages(acct.id)) == 3

    with SmtpServer() as server:
        worker = TeamAccess(
            SQLiteStore(db),
            SmtpMailer(server.host, server.port),
            secret_key=SECRET,
            accept_url=ACCEPT,
            sender=SENDER,
        )
        rows = worker.deliver_pending()
        assert [row.status for row in rows] == ["sent"] * 3
        received = {r.rcpt_tos[0]: r.message for r in server.received}
    assert set(received) == {"dev@agentur.de", "books@muster.de", "max@muster.de"}
    assert received["books@muster.de"]["From"] == SENDER
    assert "https://panel.example.net/accept?token=" in received["dev@agentur.de"].as_string()


def test_delivery_now_needs_a_mailer() -> None:
    store = MemoryStore()
    with pytest.raises(ValidationError, match=r"mailer=None needs delivery='queue'"):
        TeamAccess(store, None, secret_key=SECRET, sender=SENDER)
    with pytest.raises(ValidationError, match=r"mailer=None needs delivery='queue'"):
        TeamAccess(store, None, secret_key=SECRET, sender=SENDER, delivery="now")


def test_the_example_sender_is_refused() -> None:
    # A queued notice goes out as the panel built it, from its sender, to real people.
    with pytest.raises(ValidationError, match=r"sender is still the example .*mailer=None"):
        TeamAccess(MemoryStore(), None, secret_key=SECRET, delivery="queue")
    # The accept link of a queued invitation is the worker's: the example is no harm here.
    TeamAccess(MemoryStore(), None, secret_key=SECRET, delivery="queue", sender=SENDER)


def test_deliver_pending_is_refused_and_claims_nothing() -> None:
    store = MemoryStore()
    panel = _panel(store)
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    panel.invite(acct.id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.none())
    [before] = panel.pending_messages(acct.id)
    with pytest.raises(ValidationError, match=r"deliver_pending\(\) needs a mailer"):
        panel.deliver_pending()
    [after] = panel.pending_messages(acct.id)
    assert after == before  # not claimed: a worker takes it at once
    mailer = MemoryMailer()
    worker = TeamAccess(store, mailer, secret_key=SECRET, sender=SENDER)
    assert [row.status for row in worker.deliver_pending()] == ["sent"]
    assert [m["To"] for m in mailer.outbox] == ["dev@agentur.de"]


def test_delivery_switched_to_now_later_still_only_queues() -> None:
    # delivery is a plain attribute: set to "now" after mailer=None, mail still waits
    # for a worker, due at once (not after a lease), and the call does not fail.
    store = MemoryStore()
    panel = _panel(store)
    panel.delivery = "now"
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    panel.invite(acct.id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.none())
    [row] = panel.pending_messages(acct.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, row.created_at)
    mailer = MemoryMailer()
    TeamAccess(store, mailer, secret_key=SECRET, sender=SENDER).deliver_pending()
    assert len(mailer.outbox) == 1

"""A third-party ``Mailer`` that hands the message to ``smtplib.SMTP.send_message()``
lets smtplib take the envelope sender from the message's ``From`` header (the sender the
last check approved is not passed to it). Over every form of sender the service accepts
(quoted local parts, comments, names that are written as encoded words, addresses and
names that are not ASCII, IDN domains), sent now and from the queue, a real SMTP server
gets the sender the last check approved as ``MAIL FROM``: the two cannot differ.

Why: the check reads the sender from the message as written and read back, and smtplib
from the header object the mailer is given; the builder writes ``From`` from one parsed
address, so both are that address (the check refuses a mail whose ``From`` reads
otherwise on the wire), and smtplib's ``getaddresses()`` is the very function the check
uses to take the address out.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer
from tests.test_envelope_sender import ALTERED_FROM, _alter_from, _Approved, _queue

from teamaccess import MemoryStore, PermissionSet, TeamAccess, ValidationError


class SendMessageMailer:
    """A vendor's mailer: smtplib's ``send_message()``, which reads the envelope itself."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.server.host, self.server.port) as smtp:
            smtp.send_message(message)


@pytest.fixture(scope="module")
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


LOCAL = st.sampled_from(
    ["noreply", "no.reply", "a+tag", '"no reply"', '"a@b"', '"a\\"b"', '"a  b"', "jörg",
     '"(x)"', "o'brien"]
)  # fmt: skip
DOMAIN = st.sampled_from(["example.net", "bücher.example", "Panel.Example.NET"])
NAME = st.text(st.sampled_from(list('ab Zü日"()<>,;:@.\\\t=?')), max_size=30) | st.sampled_from(
    ["", "Panel", "Müller & Söhne", '"Müller, Hans"', '"Shop (Support)"',
     "Kundencenter Müller Hosting GmbH & Co. KG Süd Abteilung Rechnungen und Verträge",
     "日本語 テスト", '"a <b@c> d"', '"=?x?="', "x <y>"]
)  # fmt: skip
FORM = st.sampled_from(["{addr}", "{name} <{addr}>", "{addr} ({name})", "{name} (Team) <{addr}>"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(local=LOCAL, domain=DOMAIN, name=NAME, form=FORM, delivery=st.sampled_from(["now", "queue"]))
def test_smtplib_sends_from_the_approved_sender(
    server: SmtpServer, local: str, domain: str, name: str, form: str, delivery: str
) -> None:
    sender = form.format(addr=f"{local}@{domain}", name=name)
    mailer = SendMessageMailer(server)
    try:
        team = TeamAccess(
            MemoryStore(), mailer, secret_key=SECRET, sender=sender,
            delivery=delivery,  # type: ignore[arg-type]
        )  # fmt: skip
    except ValidationError:
        event("refused when made")
        return  # refused when the service is made: no mail ever goes out from it
    before = len(server.received)
    with pytest.MonkeyPatch.context() as patch:
        approved = _Approved(patch)  # what each of the service's last checks approved
        acc = team.create_account(name="Shop", owner_id="o", owner_email="o@example.org")
        team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.org", categories=["billing"]
        )
        team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet())
        team.notify(acc.id, "billing", subject="Rechnung", text="Ihre Rechnung für März")
        if delivery == "queue":
            team.deliver_pending()
    assert team.pending_messages() == []
    got = server.received[before:]
    assert len(got) == len(approved.senders) == 3
    assert [r.mail_from for r in got] == approved.senders
    event("sent")


@pytest.mark.parametrize("new_from", ALTERED_FROM)
def test_an_altered_queued_from_goes_out_from_the_approved_sender_or_not_at_all(
    new_from: bytes, server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outbox row whose From was altered after queueing: smtplib reads the header of
    the message it is given, the check the message written out and read back."""
    path = tmp_path / "team.db"
    team = _queue(path, SendMessageMailer(server), "notification")  # type: ignore[arg-type]
    _alter_from(path, new_from)
    before = len(server.received)
    approved = _Approved(monkeypatch)
    [row] = team.deliver_pending()
    got = server.received[before:]
    if row.status == "cancelled":  # refused by the check: nothing went out
        assert got == []
        return
    assert row.status == "sent", row.last_error
    assert [r.mail_from for r in got] == approved.senders

"""The vendor's sender address, in the forms an address may take, reaches the wire as
configured: the mails are sent (not refused by the last check), from that address.

A sender whose domain is an IDN is written in its ASCII (IDNA) form in ``From``; the
service's Message-IDs name the same domain and must be ASCII too, or every mail to an
ASCII address is refused. A quoted local part is the same address on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from tests.conftest import SECRET, START
from tests.smtp_server import SmtpServer

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SmtpMailer,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

ACCEPT_URL = "https://panel.example.net/accept?token={token}"
# (sender as configured, the envelope sender and From address on the wire)
SENDERS = [
    ("Panel <noreply@bücher.example>", "noreply@xn--bcher-kva.example"),
    ("noreply@BÜCHER.example", "noreply@xn--bcher-kva.example"),
    ("Kundencenter <noreply@münchen.de>", "noreply@xn--mnchen-3ya.de"),
    ('Panel <"no reply"@example.net>', '"no reply"@example.net'),
    ('"no reply"@example.net', '"no reply"@example.net'),
    ('"a\\"b"@example.net', '"a\\"b"@example.net'),
    ('Panel <"a@b"@example.net>', '"a@b"@example.net'),
    ("Panel <noreply@example.net>", "noreply@example.net"),
]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


@pytest.mark.parametrize(("sender", "address"), SENDERS)
def test_every_mail_goes_out_from_the_sender(server: SmtpServer, sender: str, address: str) -> None:
    team = TeamAccess(
        MemoryStore(), SmtpMailer(server.host, server.port), secret_key=SECRET,
        clock=FrozenClock(START), sender=sender, accept_url=ACCEPT_URL,
    )  # fmt: skip
    acc = team.create_account(name="Shop", owner_id="o", owner_email="o@example.org")
    inv = team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet())
    team.resend_invitation(inv.id, actor_id="o")
    team.add_contact(acc.id, actor_id="o", name="C", email="c@example.org", categories=["billing"])
    team.notify(acc.id, "billing", subject="Rechnung", text="Ihre Rechnung")
    assert team.pending_messages() == []
    got = server.received
    assert [r.rcpt_tos for r in got] == [["neu@example.org"]] * 2 + [
        ["o@example.org"], ["c@example.org"]
    ]  # fmt: skip
    ids = set()
    for received in got:
        assert received.mail_from == address
        message = message_from_bytes(received.content, policy=policy.default)
        assert message["From"].addresses[0].addr_spec == address
        message_id = received.content.split(b"\r\nMessage-ID: ", 1)[1].split(b"\r\n", 1)[0]
        assert message_id.isascii(), message_id
        domain = address.rpartition("@")[2]
        assert message_id.decode().endswith(f"@{domain}>"), message_id
        ids.add(message_id)
    assert len(ids) == len(got)


@pytest.mark.parametrize(("sender", "address"), SENDERS)
def test_the_sender_reads_the_same_on_the_wire(sender: str, address: str) -> None:
    mailer = MemoryMailer()
    team = TeamAccess(
        MemoryStore(), mailer, secret_key=SECRET, clock=FrozenClock(START), sender=sender
    )
    acc = team.create_account(name="Shop", owner_id="o", owner_email="o@example.org")
    team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet())
    [built] = mailer.outbox
    wire = built.as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["From"].addresses[0].addr_spec == address
    assert parsed["Message-ID"].endswith(f"@{address.rpartition('@')[2]}>")


@pytest.mark.parametrize("sender", ['a."b c"@example.net', 'Panel <"a"."b"@example.net>'])
def test_a_partly_quoted_local_part_is_refused_when_the_service_is_made(sender: str) -> None:
    """Written out, it would be another address; refused with what to write instead."""
    with pytest.raises(ValidationError, match="quote the whole local part"):
        TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, sender=sender)

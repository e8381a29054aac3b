"""Mail to an SMTPUTF8 address (a local part that is not ASCII), received by a real SMTP
server: queued, it reads as it does sent at once, header text and body alike."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_string, policy
from email.message import EmailMessage

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import PermissionSet, SmtpMailer, Store, TeamAccess
from teamaccess.testing import FrozenClock

ADDRESS = "jörg@müller.example"
SENDER = "Kundenportal Müller & Söhne <noreply@panel.example.net>"
#: One instant for every run: the invitation's text says until when it holds, and two
#: runs on either side of a minute's end read differently.
NOW = datetime.now(UTC)
SUBJECT = "Ihre Rechnung für November an Müller & Söhne: Grüße aus Köln und Düsseldorf"


def received(server: SmtpServer) -> list[tuple[str, EmailMessage, bytes]]:
    """(envelope recipient, message as a mail program reads it, raw bytes) per message."""
    got = []
    for mail in server.received:
        # A mail program reads SMTPUTF8 header text as UTF-8.
        read = message_from_string(mail.content.decode("utf-8"), policy=policy.default)
        assert isinstance(read, EmailMessage)
        got.append((mail.rcpt_tos[0], read, mail.content))
    return got


def readable(message: EmailMessage) -> dict[str, str]:
    """What a reader sees: the headers' text and the plain body, the accept link's token
    blanked (a new one is minted per mail)."""
    body = message.get_body(("plain",))
    assert body is not None
    text = re.sub(r"token=[^\s]+", "token=...", body.get_content().replace("\r\n", "\n"))
    return {
        "from": " ".join(str(message["From"]).split()),
        "to": " ".join(str(message["To"]).split()),
        "subject": " ".join(str(message["Subject"]).split()),
        "text": text,
    }


Mails = list[tuple[str, EmailMessage, bytes]]


def run(store: Store, delivery: str) -> tuple[Mails, bytes | None]:
    """The invitation and the notification *ADDRESS* received, and the notification's
    stored bytes if it was queued."""
    with SmtpServer(smtputf8=True) as server:
        team = TeamAccess(
            store, SmtpMailer(server.host, server.port), secret_key=SECRET,
            delivery=delivery, sender=SENDER, accept_url="https://panel.example.net/accept",
            clock=FrozenClock(NOW),
        )  # fmt: skip
        acc = team.create_account(
            name="Müller & Söhne", owner_id="o", owner_email="inhaber@example.org"
        )
        team.invite(acc.id, actor_id="o", email=ADDRESS, permissions=PermissionSet.all(),
                    language="de")  # fmt: skip
        team.add_contact(acc.id, actor_id="o", name="Jörg Müller", email=ADDRESS,
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject=SUBJECT,
                    text="Grüß Gott,\nIhre Rechnung über 12 € liegt bereit.\n")  # fmt: skip
        if delivery == "queue":
            # The subject, longer than a line, is folded within 78 bytes a line. It was
            # folded within 78 characters, more bytes, which made the stdlib refold the
            # stored headers when the queued mail was sent.
            [stored] = [m.message for m in team.pending_messages() if m.message is not None
                        and m.recipient == ADDRESS]  # fmt: skip
            head = stored.split(b"\n\n", 1)[0].split(b"\n")
            assert any(line.startswith(b" ") for line in head)
            assert all(len(line.rstrip(b"\r")) <= 78 for line in head)
            done = team.deliver_pending()
            assert {row.status for row in done} == {"sent"}
        # The invitation, then the notification (the owner gets one too).
        mails = [m for m in received(server) if m[0] != "inhaber@example.org"]
        mails.sort(key=lambda m: b"/accept?token=" not in m[2])
        return mails, stored if delivery == "queue" else None


@pytest.mark.parametrize("kind", [0, 1], ids=["invitation", "notify"])
def test_queued_mail_reads_as_mail_sent_at_once(
    store_factory: Callable[[], Store], kind: int
) -> None:
    now = run(store_factory(), "now")[0]
    queued, stored = run(store_factory(), "queue")
    assert len(now) == len(queued) == 2
    (to_now, mail_now, raw_now), (to_queued, mail_queued, raw_queued) = now[kind], queued[kind]
    assert to_now == to_queued == "jörg@xn--mller-kva.example"
    seen = readable(mail_queued)
    assert seen == readable(mail_now)
    assert seen["subject"] == (
        SUBJECT if kind else "inhaber@example.org lädt Sie zu Müller & Söhne ein"
    )
    assert seen["from"] == SENDER
    assert seen["to"].endswith("jörg@xn--mller-kva.example")
    assert "Grüß Gott" in seen["text"] or "Müller & Söhne" in seen["text"]
    for raw in (raw_now, raw_queued):
        assert b"unknown-8bit" not in raw.lower()
    # Written alike, byte for byte: the values new in every mail aside.
    assert header_lines(raw_queued) == header_lines(raw_now)
    if kind:  # the notification went out as it was stored and checked
        assert stored is not None
        assert raw_queued == stored.replace(b"\n", b"\r\n")


def test_queued_to_a_server_without_smtputf8_fails_and_waits(store: Store) -> None:
    with SmtpServer(smtputf8=False) as server:
        team = TeamAccess(
            store, SmtpMailer(server.host, server.port), secret_key=SECRET,
            delivery="queue", sender=SENDER, accept_url="https://panel.example.net/accept",
        )  # fmt: skip
        acc = team.create_account(name="Müller & Söhne", owner_id="o", owner_email="o@example.org")
        team.add_contact(acc.id, actor_id="o", name="J", email=ADDRESS, categories=["billing"])
        team.notify(acc.id, "billing", subject=SUBJECT, text="Grüß Gott\n")
        done = {row.recipient: row for row in team.deliver_pending()}
        assert done["o@example.org"].status == "sent"
        failed = done[ADDRESS]
        assert failed.status == "pending"
        assert failed.last_error is not None
        assert "SMTPUTF8" in failed.last_error
        assert [got.rcpt_tos for got in server.received] == [["o@example.org"]]


def header_lines(raw: bytes) -> list[bytes]:
    head = re.sub(rb'boundary="[^"]*"', b'boundary="..."', raw.split(b"\r\n\r\n", 1)[0])
    unfolded = re.split(rb"\r\n(?![ \t])", head)
    return [line for line in unfolded if not line.startswith((b"Date:", b"Message-ID:"))]


def test_a_queued_subject_with_a_long_word_is_sent(store: Store) -> None:
    """Read as escaped bytes, a header the stdlib must refold as encoded words could not
    be written at all: the last check refused the mail and it was never sent."""
    subject = "Rechnung für " + "Großhandel" * 9
    with SmtpServer(smtputf8=True) as server:
        team = TeamAccess(
            store, SmtpMailer(server.host, server.port), secret_key=SECRET,
            delivery="queue", sender=SENDER, accept_url="https://panel.example.net/accept",
        )  # fmt: skip
        acc = team.create_account(name="Müller & Söhne", owner_id="o", owner_email="o@example.org")
        team.add_contact(acc.id, actor_id="o", name="J", email=ADDRESS, categories=["billing"])
        team.notify(acc.id, "billing", subject=subject, text="Grüß Gott\n")
        done = team.deliver_pending()
        assert [(row.status, row.last_error) for row in done] == [("sent", None)] * 2
        [(_, mail, _)] = [m for m in received(server) if m[0] != "o@example.org"]
        assert str(mail["Subject"]) == subject

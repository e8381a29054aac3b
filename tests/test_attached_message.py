"""An outbox row altered to carry an attached message (a ``message/*`` part) is refused
by the last check and cancelled, whichever mailer sends it. The builder never makes such
a part; the header block inside one is not a header block of the mail, so the checks of
the mail's own headers never read it, and a mail program shows it (a forged ``From``, a
``Bcc``) as the headers of a message the panel sent."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import MemoryMailer, OutboxMessage, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.gate import MailRefused, check_stored, check_wire
from teamaccess._mail.mailers import parse_stored

#: An attached message naming a forged sender and more recipients.
INNER = (
    b"From: Billing <billing@bank.example>\n"
    b"To: o@example.org\n"
    b"To: eve@evil.example\n"
    b"Bcc: eve@evil.example\n"
    b"Subject: Your account is locked\n"
    b"\n"
    b"Pay the fee at https://evil.example/pay\n"
)


def _attached(content_type: bytes, inner: bytes = INNER, part_headers: bytes = b"") -> bytes:
    """The body of a ``multipart/mixed`` mail: a text part, and *inner* as a part of
    *content_type* (no Content-Type at all if it is empty)."""
    ctype = b"Content-Type: " + content_type + b"\n" if content_type else b""
    return (
        b"--XX\n"
        b'Content-Type: text/plain; charset="utf-8"\n'
        b"\n"
        b"See the attached message.\n"
        b"--XX\n" + ctype + part_headers + b"\n" + inner + b"--XX--\n"
    )


#: Altered rows: (top-level Content-Type, body). A message/* part anywhere, and a
#: multipart/digest, whose parts are message/rfc822 when they name no type.
ATTACHED = {
    "message/rfc822": (b'multipart/mixed; boundary="XX"', _attached(b"message/rfc822")),
    "Message/RFC822 in capitals": (
        b'multipart/mixed; boundary="XX"', _attached(b"Message/RFC822")
    ),
    "message/global": (b'multipart/mixed; boundary="XX"', _attached(b"message/global")),
    "message/partial": (
        b'multipart/mixed; boundary="XX"',
        _attached(b'message/partial; id="x@bank.example"; number=1; total=1'),
    ),
    "message/external-body": (
        b'multipart/mixed; boundary="XX"',
        _attached(b"message/external-body; access-type=mail-server; server=eve@evil.example"),
    ),
    "a digest's part without a type": (b'multipart/digest; boundary="XX"', _attached(b"")),
    "the whole mail a message/rfc822": (b"message/rfc822", INNER),
    "a comment in the type": (
        b'multipart/mixed; boundary="XX"', _attached(b"message/(x)rfc822")
    ),
    # What the stdlib reads as no message at all, and a mail program may read as one.
    "a space in the type": (b'multipart/mixed; boundary="XX"', _attached(b"message /rfc822")),
    "the type quoted": (b'multipart/mixed; boundary="XX"', _attached(b'"message/rfc822"')),
    "a digest in a comment": (b'multipart/(x)digest; boundary="XX"', _attached(b"")),
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def _queued(db: Path, mailer: object) -> tuple[TeamAccess, OutboxMessage]:
    team = TeamAccess(
        SQLiteStore(db), mailer, secret_key=SECRET, delivery="queue",  # type: ignore[arg-type]
        sender="Panel <noreply@panel.example.net>", accept_url="https://panel.example.net/a",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    team.add_contact(acc.id, actor_id="o", name="K", email="k@example.org", categories=["billing"])
    team.notify(acc.id, "billing", subject="Rechnung", text="hallo")
    bad = {row.recipient: row for row in team.pending_messages()}["o@example.org"]
    return team, bad


def _altered(stored: bytes, content_type: bytes, body: bytes) -> bytes:
    """*stored* with its Content-Type and body replaced: every header line is one the
    builder writes, once, so the check of the stored header lines passes it."""
    head = stored.split(b"\n\n", 1)[0]
    head = re.sub(rb"^Content-Type: .*$", b"Content-Type: " + content_type, head, flags=re.M)
    head = re.sub(rb"^Content-Transfer-Encoding: .*\n?", b"", head, flags=re.M)
    return head + b"\n\n" + body


@pytest.mark.parametrize("mailer_kind", ["smtp", "memory"])
@pytest.mark.parametrize("name", list(ATTACHED))
def test_an_attached_message_is_refused_and_the_row_cancelled(
    tmp_path: Path, server: SmtpServer, name: str, mailer_kind: str
) -> None:
    db = tmp_path / "team.db"
    memory = MemoryMailer()
    mailer = SmtpMailer(server.host, server.port) if mailer_kind == "smtp" else memory
    team, bad = _queued(db, mailer)
    assert bad.message is not None
    altered = _altered(bad.message, *ATTACHED[name])
    check_stored(altered)  # its own header lines are the builder's
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, bad.id))
    conn.close()

    done = {row.recipient: row for row in team.deliver_pending()}

    assert done["k@example.org"].status == "sent"
    assert done["o@example.org"].status == "cancelled"
    assert "attached message" in (done["o@example.org"].last_error or "")
    if mailer_kind == "smtp":
        assert [r.rcpt_tos for r in server.received] == [["k@example.org"]]
        assert b"bank.example" not in b"".join(r.content for r in server.received)
    else:
        assert [str(m["To"]) for m in memory.outbox] == ["k@example.org"]
    team.close()


@pytest.mark.parametrize("name", list(ATTACHED))
def test_the_check_names_the_attached_message(name: str) -> None:
    content_type, body = ATTACHED[name]
    source = (
        b"From: Panel <noreply@panel.example.net>\nTo: bob@example.com\nSubject: x\n"
        b"MIME-Version: 1.0\nContent-Type: " + content_type + b"\n\n" + body
    )
    with pytest.raises(MailRefused, match=r"attached message \(a message/\* part\)"):
        check_wire(parse_stored(source), "bob@example.com", source)
    with pytest.raises(MailRefused, match="attached message"):
        check_wire(parse_stored(source), "bob@example.com")  # written out and read back


def test_a_message_built_with_a_message_word_in_it_goes_out() -> None:
    """Only a part's type counts: the words of a subject, a name or a text do not."""
    from teamaccess._mail.builder import build_message

    msg = build_message(
        sender="message/rfc822 <noreply@panel.example.net>", to="bob@example.com",
        subject="Content-Type: message/rfc822", text="Content-Type: message/rfc822\n",
        html="<p>message/rfc822</p>", message_id="<m1@panel.example.net>", language="en",
    )  # fmt: skip
    assert check_wire(msg, "bob@example.com")[0] == "bob@example.com"

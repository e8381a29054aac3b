"""The envelope sender of a mail is the one the last check before sending approved.

The check reads the ``From`` of what it wrote and read back (or, for a queued mail of
the plain shape, of the stored bytes); ``SmtpMailer`` sends from that address, and reads
no header a second time. An outbox row whose ``From`` was altered after queueing is
either refused or sent from the address the check approved: the server's ``MAIL FROM``
is checked here against what each check returned, on a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import PermissionSet, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail import gate

SENDER = b"Panel <noreply@panel.example.net>"

#: ``From`` values an altered row may hold. Some read as another address when the
#: parsed header is read than in the text the check reads ('"x" c@d.example' is
#: '"x c"@d.example' to the header parser); the plain ones take the bytes-only way.
ALTERED_FROM = [
    b'"x" c@d.example',
    b'"Pa"nel <a@b.example>',
    b"Panel <a@b.example> (x",
    b"a@b.example (<c@d.example>)",
    b"<a@b.example>, <c@d.example>",
    b"x <a@b.example> <c@d.example>",
    b'"a@b.example" <c@d.example>',
    b"(a@b.example) c@d.example",
    b"a@b.example, d@e.example",
    b"Panel <@x.example:a@b.example>",
    b"\xff <a@b.example>",
    b"P\xc3\xa4nel <a@b.example>",
    b"=?utf-8?q?a=40b=2Eexample?= <c@d.example>",
    b'Pa\\"nel <a@b.example>',
    b"Panel\n <a@b.example>",
]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


class _Approved:
    """Notes the envelope sender each way of the last check approved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.senders: list[str] = []
        check_sent, stored_wire = gate.check_sent, gate.stored_wire

        def full(*args: Any, **kw: Any) -> tuple[str, bytes, str]:
            envelope, wire, sender = check_sent(*args, **kw)
            self.senders.append(sender)
            return envelope, wire, sender

        def fast(*args: Any, **kw: Any) -> tuple[str, bytes, str] | None:
            found = stored_wire(*args, **kw)
            if found is not None:
                self.senders.append(found[2])
            return found

        monkeypatch.setattr(gate, "check_sent", full)
        monkeypatch.setattr(gate, "stored_wire", fast)


def _queue(path: Path, mailer: SmtpMailer, kind: str) -> TeamAccess:
    team = TeamAccess(
        SQLiteStore(path), mailer, secret_key=SECRET, delivery="queue",
        sender=SENDER.decode(), accept_url="https://panel.example.net/a?t={token}",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="bob@example.org")
    if kind == "notification":
        team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag")
    else:
        team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet.none())
    return team


def _alter_from(path: Path, new_from: bytes) -> None:
    with sqlite3.connect(path) as db:
        [(row_id, stored)] = db.execute(
            "SELECT id, message FROM outbox WHERE status = 'pending'"
        ).fetchall()
        if stored is None:  # an invitation's mail is built when it is sent
            pytest.skip("this row stores no message")
        altered = stored.replace(b"From: " + SENDER, b"From: " + new_from, 1)
        assert altered != stored
        db.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row_id))
    db.close()


def _from_line(content: bytes) -> str:
    """The address a reader of the received bytes finds in their one ``From``."""
    head = content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
    unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t").split("\r\n")
    [line] = [line for line in unfolded if line.lower().startswith("from:")]
    return getaddresses([line[5:]])[0][1]


@pytest.mark.parametrize("new_from", ALTERED_FROM)
def test_an_altered_queued_from_is_sent_from_the_approved_sender_or_not_at_all(
    new_from: bytes, server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "team.db"
    team = _queue(path, SmtpMailer(server.host, server.port), "notification")
    _alter_from(path, new_from)
    approved = _Approved(monkeypatch)
    [row] = team.deliver_pending()
    if row.status == "cancelled":  # refused by the check: nothing went out
        assert server.received == []
        return
    assert row.status == "sent", row.last_error
    [got] = server.received
    assert [got.mail_from] == approved.senders
    # and that is the address of the From line the server received
    assert got.mail_from == _from_line(got.content)


def test_a_sender_smtplib_would_read_otherwise_is_refused(
    server: SmtpServer, tmp_path: Path
) -> None:
    """'"x" c@d' reads as that address in the text the check reads, but as '"x c"@d' to
    the header parser and to smtplib's MAIL FROM: it goes out from neither."""
    from email import message_from_bytes

    from teamaccess._mail.mailers import parsing_policy

    path = tmp_path / "team.db"
    team = _queue(path, SmtpMailer(server.host, server.port), "notification")
    _alter_from(path, b'"x" c@d.example')
    [(stored,)] = sqlite3.connect(path).execute("SELECT message FROM outbox").fetchall()
    parsed = message_from_bytes(stored, policy=parsing_policy())
    assert getaddresses([str(parsed["From"])])[0][1] == '"x c"@d.example'
    [row] = team.deliver_pending()
    assert row.status == "cancelled"
    assert "From header names no sender address" in (row.last_error or "")
    assert server.received == []


def test_a_fresh_invitation_is_sent_from_the_approved_sender(
    server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved = _Approved(monkeypatch)
    team = TeamAccess(
        SQLiteStore(tmp_path / "team.db"), SmtpMailer(server.host, server.port),
        secret_key=SECRET, sender='"Panel, Support" <noreply@panel.example.net>',
        accept_url="https://panel.example.net/a?t={token}",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="bob@example.org")
    team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet.none())
    [got] = server.received
    assert approved.senders[-1:] == ["noreply@panel.example.net"] == [got.mail_from]

"""Comments nested deeper than the standard library's address parsers recurse.

``email``'s header parser and ``email.utils`` read a comment inside a comment by calling
themselves, so a ``From`` of a thousand nested ``(`` raises ``RecursionError``, which is
neither a ``MessageError`` nor a ``ValueError``. In a queued mail altered behind the
library's back (its lines folded below the 998 characters the stored-form check allows),
that must be one refused message, not a crash of every delivery run; in the vendor's
sender, a ``ValidationError`` when the service is made.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.conftest import SECRET, START
from tests.smtp_server import SmtpServer

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    SmtpMailer,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)
from teamaccess._ports import Mailer
from teamaccess.testing import FrozenClock

NESTED = "(" * 1500 + "x" + ")" * 1500


def folded_from(depth_text: str) -> bytes:
    """A ``From`` header of *depth_text*, folded into lines the stored-form check takes."""
    chunks = [depth_text[i : i + 800] for i in range(0, len(depth_text), 800)]
    return ("From: " + "\n ".join(chunks) + " <noreply@panel.example.net>").encode()


def queue_two(path: Path, *, alter_from: bool = True) -> list[tuple[str, str]]:
    """Two queued notifications in a new file, the first one's From altered; their ids
    and recipients."""
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET,
                      clock=FrozenClock(START), delivery="queue")  # fmt: skip
    acc = team.create_account(name="Shop", owner_id="o", owner_email="o@example.org")
    team.add_contact(acc.id, actor_id="o", name="C", email="c@example.org", categories=["general"])
    team.notify(acc.id, "general", subject="Wartung", text="Heute Nacht")
    rows = [(row.id, row.recipient) for row in team.pending_messages()]
    ids = [row_id for row_id, _ in rows]
    team.close()
    with sqlite3.connect(path) as db:
        [source] = db.execute("SELECT message FROM outbox WHERE id = ?", (ids[0],)).fetchone()
        lines = [
            folded_from(NESTED) if alter_from and line.startswith(b"From:") else line
            for line in source.split(b"\n")
        ]
        db.execute("UPDATE outbox SET message = ? WHERE id = ?", (b"\n".join(lines), ids[0]))
    db.close()
    return rows


def deliver(path: Path, mailer: Mailer) -> TeamAccess:
    team = TeamAccess(SQLiteStore(path), mailer, secret_key=SECRET, clock=FrozenClock(START),
                      delivery="queue", sender="Panel <noreply@panel.example.net>",
                      accept_url="https://panel.example.net/accept?token={token}")  # fmt: skip
    team.deliver_pending()
    return team


def test_a_queued_mail_nested_too_deep_is_refused_alone(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    (bad, _), (good, recipient) = queue_two(path)
    mailer = MemoryMailer()
    team = deliver(path, mailer)
    assert [m["To"] for m in mailer.outbox] == [recipient]
    assert team.pending_messages() == []
    with team.store.read() as uow:
        rows = {row.id: row for row in uow.outbox()}
    assert rows[good].status == "sent"
    assert rows[bad].status == "cancelled"
    assert "RecursionError" in (rows[bad].last_error or "")
    team.close()


def test_over_smtp_too(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _, (_, recipient) = queue_two(path)
    with SmtpServer() as server:
        deliver(path, SmtpMailer(server.host, server.port)).close()
        assert [r.rcpt_tos for r in server.received] == [[recipient]]


def test_a_sender_nested_too_deep_is_refused_when_the_service_is_made() -> None:
    with pytest.raises(ValidationError, match="sender"):
        TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET,
                   sender=f"{NESTED} <noreply@panel.example.net>")  # fmt: skip


@pytest.mark.parametrize("kind", ["memory", "smtp"])
def test_a_stored_recipient_nested_too_deep_is_refused_alone(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "t.db"
    (bad, _), (good, recipient) = queue_two(path, alter_from=False)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE outbox SET recipient = ? WHERE id = ?", (f"{NESTED}c@example.org", bad))
    db.close()
    with SmtpServer() as server:
        mailer = MemoryMailer() if kind == "memory" else SmtpMailer(server.host, server.port)
        team = deliver(path, mailer)
        with team.store.read() as uow:
            rows = {row.id: row for row in uow.outbox()}
        assert rows[good].status == "sent"
        assert rows[bad].status != "sent"
        if kind == "smtp":
            assert [r.rcpt_tos for r in server.received] == [[recipient]]
        team.close()

"""A damaged or altered outbox row fails alone: deliver_pending() records it and sends the
rows behind it, whichever way the last check reads it (the stored bytes for SmtpMailer,
the parsed message for any other mailer). Nothing the stdlib raises escapes."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import MemoryMailer, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.gate import MailRefused, check_stored, check_wire, stored_wire
from teamaccess._mail.mailers import parse_stored

#: From headers an edited row may hold that the stdlib's address parser chokes on.
FROM_HEADERS = {
    # AttributeError: 'Group' object has no attribute 'local_part' (Python 3.11)
    "a group in the wrong place": b"From: x: y; z <a@example.net>",
    "a header name in the name": b"From: PanelContent-Type: text/plain; x <a@example.net>",
    # getaddresses() finds no address at all
    "an empty From": b"From: ",
}


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def _team(db: Path, mailer: object) -> TeamAccess:
    return TeamAccess(
        SQLiteStore(db), mailer, secret_key=SECRET, delivery="queue",  # type: ignore[arg-type]
        sender="Panel <noreply@panel.example.net>", accept_url="https://panel.example.net/a",
    )  # fmt: skip


@pytest.mark.parametrize("mailer_kind", ["smtp", "memory"])
@pytest.mark.parametrize("name", list(FROM_HEADERS))
def test_a_damaged_row_does_not_stop_the_others(
    tmp_path: Path, server: SmtpServer, name: str, mailer_kind: str
) -> None:
    db = tmp_path / "team.db"
    memory = MemoryMailer()
    mailer = SmtpMailer(server.host, server.port) if mailer_kind == "smtp" else memory
    team = _team(db, mailer)
    acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    team.add_contact(acc.id, actor_id="o", name="K", email="k@example.org", categories=["billing"])
    team.notify(acc.id, "billing", subject="Rechnung", text="hallo")
    rows = {row.recipient: row for row in team.pending_messages()}
    bad = rows["o@example.org"]
    assert bad.message is not None
    altered = re.sub(rb"^From: .*$", FROM_HEADERS[name], bad.message, count=1, flags=re.M)
    with sqlite3.connect(db) as conn:  # edited in the database, behind the library's back
        conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, bad.id))
    conn.close()

    done = {row.recipient: row for row in team.deliver_pending()}

    assert done["k@example.org"].status == "sent"
    if mailer_kind == "smtp":
        got = [to for message in server.received for to in message.rcpt_tos]
    else:
        got = [str(message["To"]) for message in memory.outbox]
    if name == "an empty From":
        # No sender to read: smtplib cannot send it (recorded, retried), a mailer that
        # takes the message object may; either way the run goes on.
        assert "k@example.org" in got
    else:
        assert (done["o@example.org"].status, got) == ("cancelled", ["k@example.org"])
        assert "cannot be written as a mail" in (done["o@example.org"].last_error or "")
    team.close()


@pytest.mark.parametrize("name", list(FROM_HEADERS))
def test_the_bytes_check_leaves_them_to_the_full_check(name: str) -> None:
    source = (
        FROM_HEADERS[name] + b"\nTo: bob@example.com\nSubject: x\n"
        b"Message-ID: <m1@panel.example.net>\n\ntext\n"
    )
    check_stored(source)  # well formed lines: only reading the From finds the damage
    assert stored_wire(source, "bob@example.com") is None
    # The full check refuses it or lets it through; it raises nothing else.
    with contextlib.suppress(MailRefused):
        check_wire(parse_stored(source), "bob@example.com", source)


@pytest.mark.parametrize("value", [":;", "x: y; z <bob@example.com>"])
def test_a_to_the_address_parser_chokes_on_is_refused(value: str) -> None:
    from tests.test_gate_reads import raw_header

    with pytest.raises(MailRefused):
        check_wire(raw_header("To", value)(), "bob@example.com")  # type: ignore[operator]

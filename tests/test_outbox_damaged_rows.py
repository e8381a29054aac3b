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

from teamaccess import MemoryMailer, OutboxMessage, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.gate import MailRefused, check_stored, check_wire, stored_wire
from teamaccess._mail.mailers import expected_recipient, parse_stored

#: From headers an edited row may hold that the stdlib's address parser chokes on.
FROM_HEADERS = {
    # AttributeError: 'Group' object has no attribute 'local_part' (Python 3.11)
    "a group in the wrong place": b"From: x: y; z <a@example.net>",
    "a header name in the name": b"From: PanelContent-Type: text/plain; x <a@example.net>",
    # getaddresses() finds no address at all
    "an empty From": b"From: ",
    # an envelope sender that is no address, or the null sender of bounces
    "a name without an address": b"From: Panel",
    "the null sender": b"From: <>",
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


def _mailer(kind: str, server: SmtpServer, memory: MemoryMailer) -> object:
    return SmtpMailer(server.host, server.port) if kind == "smtp" else memory


def _queued(db: Path, mailer: object) -> tuple[TeamAccess, OutboxMessage]:
    """A team with two queued notifications, to the owner and a contact; the owner's row
    is the one the test alters."""
    team = _team(db, mailer)
    acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    team.add_contact(acc.id, actor_id="o", name="K", email="k@example.org", categories=["billing"])
    team.notify(acc.id, "billing", subject="Rechnung", text="hallo")
    bad = {row.recipient: row for row in team.pending_messages()}["o@example.org"]
    assert bad.message is not None
    return team, bad


def _alter(db: Path, row_id: str, column: str, value: object) -> None:
    """Edit an outbox row in the database, behind the library's back."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE outbox SET {column} = ? WHERE id = ?", (value, row_id))  # noqa: S608
    conn.close()


def _recipients(kind: str, server: SmtpServer, memory: MemoryMailer) -> list[str]:
    """Who got a mail: the envelope recipients the server took, or the memory's To."""
    if kind == "smtp":
        return [to for message in server.received for to in message.rcpt_tos]
    return [str(message["To"]) for message in memory.outbox]


@pytest.mark.parametrize("mailer_kind", ["smtp", "memory"])
@pytest.mark.parametrize("name", list(FROM_HEADERS))
def test_a_damaged_row_does_not_stop_the_others(
    tmp_path: Path, server: SmtpServer, name: str, mailer_kind: str
) -> None:
    db = tmp_path / "team.db"
    memory = MemoryMailer()
    team, bad = _queued(db, _mailer(mailer_kind, server, memory))
    assert bad.message is not None
    altered = re.sub(rb"^From: .*$", FROM_HEADERS[name], bad.message, count=1, flags=re.M)
    _alter(db, bad.id, "message", altered)

    done = {row.recipient: row for row in team.deliver_pending()}

    assert done["k@example.org"].status == "sent"
    got = _recipients(mailer_kind, server, memory)
    assert (done["o@example.org"].status, got) == ("cancelled", ["k@example.org"])
    error = done["o@example.org"].last_error or ""
    assert "cannot be written as a mail" in error or "names no sender address" in error
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


#: To headers the parser reads as the one recipient, dropping the rest as junk, which
#: goes out as it is; other readers find another recipient in them.
JUNK_TO = [
    "bob@example.com :eve@evil.example).evil.example;",
    "bob@example.com ;.bobeve@evil.example",
    'bob@example.com"eve@evil.example>bob',
    "bob@example.com<eve@evil.example >;",
]


@pytest.mark.parametrize("value", JUNK_TO)
def test_a_to_with_junk_after_the_address_is_refused(value: str) -> None:
    from email.policy import default
    from email.utils import getaddresses

    from tests.test_gate_reads import raw_header

    assert [a.addr_spec for a in default.header_factory("To", value).addresses] == [
        "bob@example.com"
    ]
    assert len(getaddresses([value])) > 1  # what another reader makes of the same text
    with pytest.raises(MailRefused, match="To header"):
        check_wire(raw_header("To", value)(), "bob@example.com")  # type: ignore[operator]


@pytest.mark.parametrize("to", ["bob@example.com", "jörg@example.org", '"b b"@example.com'])
def test_a_built_to_passes(to: str) -> None:
    from teamaccess._mail.mailers import build_message

    message = build_message(
        sender="Panel <noreply@panel.example.net>", to=to, subject="x", text="t\n",
        html=None, message_id="<m1@panel.example.net>", language="en",
    )  # fmt: skip
    assert check_wire(message, to)[0] == expected_recipient(to)
    source = message.as_bytes()
    assert check_wire(parse_stored(source), to, source)[0] == expected_recipient(to)


def test_a_queued_row_with_junk_in_its_to_is_not_sent(tmp_path: Path, server: SmtpServer) -> None:
    db = tmp_path / "team.db"
    team, bad = _queued(db, SmtpMailer(server.host, server.port))
    assert bad.message is not None
    to = b"To: o@example.org :eve@evil.example).evil.example;"
    _alter(db, bad.id, "message", re.sub(rb"^To: .*$", to, bad.message, count=1, flags=re.M))

    done = {row.recipient: row.status for row in team.deliver_pending()}

    assert done == {"o@example.org": "cancelled", "k@example.org": "sent"}
    assert [got.rcpt_tos for got in server.received] == [["k@example.org"]]
    assert b"evil.example" not in b"".join(got.content for got in server.received)
    team.close()


@pytest.mark.parametrize("mailer_kind", ["smtp", "memory"])
@pytest.mark.parametrize("recipient", ["nobody", "a@", "@example.org"])
def test_a_row_whose_recipient_is_no_address_fails_alone(
    tmp_path: Path, server: SmtpServer, recipient: str, mailer_kind: str
) -> None:
    db = tmp_path / "team.db"
    memory = MemoryMailer()
    team, bad = _queued(db, _mailer(mailer_kind, server, memory))
    _alter(db, bad.id, "recipient", recipient)

    done = {row.id: row for row in team.deliver_pending()}

    assert done[bad.id].status == "cancelled"
    assert {row.status for key, row in done.items() if key != bad.id} == {"sent"}
    assert _recipients(mailer_kind, server, memory) == ["k@example.org"]
    assert len(server.received) == (1 if mailer_kind == "smtp" else 0)
    team.close()


@pytest.mark.parametrize("mailer_kind", ["smtp", "memory"])
@pytest.mark.parametrize("blank", [b" ", b"\t", b" \t "])
def test_a_header_line_of_white_space_alone_is_not_sent(
    tmp_path: Path, server: SmtpServer, blank: bytes, mailer_kind: str
) -> None:
    """A line of white space alone ends the headers for some servers: the To and every
    header after it would arrive as body text. The row is refused, the others sent."""
    db = tmp_path / "team.db"
    memory = MemoryMailer()
    team, bad = _queued(db, _mailer(mailer_kind, server, memory))
    assert bad.message is not None
    line_end = b"\r\n" if b"\r\n" in bad.message else b"\n"
    altered = re.sub(
        rb"^(From: [^\r\n]*)", rb"\1" + line_end + blank, bad.message, count=1, flags=re.M
    )
    assert altered != bad.message
    _alter(db, bad.id, "message", altered)

    done = {row.recipient: row for row in team.deliver_pending()}

    assert done["o@example.org"].status == "cancelled"
    assert "white space" in (done["o@example.org"].last_error or "")
    assert done["k@example.org"].status == "sent"
    assert _recipients(mailer_kind, server, memory) == ["k@example.org"]
    assert len(server.received) == (1 if mailer_kind == "smtp" else 0)
    team.close()

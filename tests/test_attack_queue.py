"""Attacks on queued mail: an outbox row altered in the database file after notify().

SmtpMailer sends a queued message's stored bytes as they are. The stdlib parser and a
mail server read some header blocks differently (the obsolete ``Bcc : x`` form, a line
that is no header field): what the parser does not see must not reach the server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import SECRET, START, postgres_conninfo, postgres_schema
from tests.smtp_server import SmtpServer, free_port

from teamaccess import Mailer, MemoryMailer, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess.testing import FrozenClock


def _insert(before: bytes, line: bytes) -> Callable[[bytes], bytes]:
    return lambda stored: stored.replace(before, line + b"\n" + before, 1)


#: Alterations of a stored notification, each of which a server would read as a header
#: (or a line) that was not built.
ALTERED: dict[str, Callable[[bytes], bytes]] = {
    "Bcc with a space before the colon": _insert(b"Subject:", b"Bcc : eve@example.com"),
    "a second To with a space": _insert(b"Subject:", b"To : eve@example.com"),
    "a line that is no header, then Bcc": _insert(
        b"Subject:", b"not a header\nBcc: eve@example.com"
    ),
    "a Reply-To": _insert(b"Subject:", b"Reply-To: eve@example.com"),
    "a header of its own": _insert(b"Subject:", b"X-Campaign: 1"),
    "Resent-Date": _insert(b"Subject:", b"Resent-Date: Mon, 30 Nov 2026 10:00:00 +0000"),
    "a second Subject": _insert(b"Subject:", b"Subject: Mahnung"),
    "a header line of 2,000 characters": lambda s: s.replace(
        b"Subject: Rechnung", b"Subject: " + b"R" * 2000, 1
    ),
    "no empty line after the headers": lambda s: s.replace(b"\n\n", b"\n", 1).replace(
        b"\n\n", b"\n"
    ),
}


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def _queue_one(path: Path, mailer: Mailer, clock: FrozenClock | None = None) -> TeamAccess:
    team = TeamAccess(
        SQLiteStore(path), mailer, secret_key=SECRET, delivery="queue", clock=clock,
        sender="Panel <noreply@panel.example.net>", accept_url="https://panel.example.net/a",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="bob@example.org")
    team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag,\n.\nbis bald")
    return team


def _alter(path: Path, change: Callable[[bytes], bytes]) -> None:
    with sqlite3.connect(path) as db:
        [(row_id, stored)] = db.execute(
            "SELECT id, message FROM outbox WHERE status = 'pending'"
        ).fetchall()
        altered = change(stored)
        assert altered != stored
        db.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row_id))
    db.close()


class TestAlteredOutboxRow:
    """A stored message whose headers are not those built is refused, never sent."""

    @pytest.mark.parametrize("name", list(ALTERED))
    def test_smtp_server_receives_nothing(
        self, name: str, server: SmtpServer, tmp_path: Path
    ) -> None:
        path = tmp_path / "team.db"
        team = _queue_one(path, SmtpMailer(server.host, server.port))
        _alter(path, ALTERED[name])
        [row] = team.deliver_pending()
        assert row.status == "cancelled"
        assert row.last_error is not None
        assert "refused before sending" in row.last_error
        assert "eve@" not in row.last_error  # the error quotes no header value
        assert server.received == []

    @pytest.mark.parametrize("name", list(ALTERED))
    def test_another_mailer_gets_nothing(self, name: str, tmp_path: Path) -> None:
        path = tmp_path / "team.db"
        mailer = MemoryMailer()
        team = _queue_one(path, mailer)
        _alter(path, ALTERED[name])
        [row] = team.deliver_pending()
        assert row.status == "cancelled"
        assert mailer.outbox == []

    def test_the_unaltered_row_is_sent(self, server: SmtpServer, tmp_path: Path) -> None:
        """The control: the same steps without an alteration deliver the message."""
        path = tmp_path / "team.db"
        team = _queue_one(path, SmtpMailer(server.host, server.port))
        _alter(path, lambda s: s.replace(b"Rechnung", b"Rechnung!", 1))
        [row] = team.deliver_pending()
        assert row.status == "sent"
        [got] = server.received
        assert got.rcpt_tos == ["bob@example.org"]
        assert got.message["Subject"] == "Rechnung!"
        body = got.message.get_body(("plain",))
        assert body is not None
        # the lone dot came through SMTP's dot-stuffing as it was
        assert "Guten Tag,\n.\nbis bald" in body.get_content().replace("\r\n", "\n")

    def test_a_row_altered_between_a_failure_and_its_retry(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        """The check reads the stored bytes again on every attempt."""
        path = tmp_path / "team.db"
        clock = FrozenClock(START)
        down = _queue_one(path, SmtpMailer(server.host, free_port()), clock)
        [first] = down.deliver_pending()
        assert first.status == "pending"
        assert first.attempts == 1
        down.close()
        _alter(path, ALTERED["Bcc with a space before the colon"])
        clock.advance(timedelta(days=1))
        team = TeamAccess(
            SQLiteStore(path), SmtpMailer(server.host, server.port), secret_key=SECRET,
            delivery="queue", clock=clock, accept_url="https://panel.example.net/a",
            sender="Panel <noreply@panel.example.net>",
        )  # fmt: skip
        [row] = team.deliver_pending()
        assert row.status == "cancelled"
        assert row.attempts == 2
        assert server.received == []


@pytest.fixture
def postgres_team(tmp_path: Path, server: SmtpServer) -> Iterator[tuple[TeamAccess, str]]:
    """A queued notification on a real PostgreSQL server, and the schema holding it."""
    from tests.conftest import drop_postgres_schema, make_store, postgres_conninfo

    postgres_conninfo()  # fails clearly without a server
    store = make_store("postgres", tmp_path)
    team = TeamAccess(
        store, SmtpMailer(server.host, server.port), secret_key=SECRET, delivery="queue",
        sender="Panel <noreply@panel.example.net>", accept_url="https://panel.example.net/a",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="bob@example.org")
    team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag,\n.\nbis bald")
    try:
        yield team, postgres_schema(tmp_path)
    finally:
        store.close()
        drop_postgres_schema(tmp_path)


@pytest.mark.postgres
class TestAlteredOutboxRowOnPostgres:
    """The same alterations of a row on a PostgreSQL server."""

    @pytest.mark.parametrize("name", list(ALTERED))
    def test_smtp_server_receives_nothing(
        self, name: str, postgres_team: tuple[TeamAccess, str], server: SmtpServer
    ) -> None:
        import psycopg

        team, schema = postgres_team
        with psycopg.connect(postgres_conninfo()) as conn:
            [(row_id, stored)] = conn.execute(
                f'SELECT id, message FROM "{schema}".outbox WHERE status = %s',  # noqa: S608
                ("pending",),
            ).fetchall()
            conn.execute(
                f'UPDATE "{schema}".outbox SET message = %s WHERE id = %s',  # noqa: S608
                (ALTERED[name](bytes(stored)), row_id),
            )
        [row] = team.deliver_pending()
        assert row.status == "cancelled"
        assert server.received == []

# The SQL below is built from the test's own schema names only.
# ruff: noqa: S608
"""Schema 9 (PostgreSQL: 5): the outbox records a sender's lease in ``leased_until``. A
file or schema of the version before, holding waiting and leased mail, is upgraded with
no leased row made due early; the version before refuses the new one; and the SQLite
tables keep their status rules, written so SQLite builds no index to check them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, START, drop_postgres_schema, postgres_conninfo, postgres_schema
from tests.sqlite_older import older_file

from teamaccess import (
    SYSTEM,
    PermissionSet,
    PostgresStore,
    SQLiteStore,
    StorageError,
    TeamAccess,
)
from teamaccess._backends import postgres as pg_backend
from teamaccess._backends import sqlite as sqlite_backend
from teamaccess.testing import FailingMailer, FrozenClock

P = PermissionSet.of("billing.view")
LEASE = timedelta(minutes=5)


def rows(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def schema_of(path: Path) -> set[tuple[str, str, str]]:
    found = rows(path, "SELECT type, name, tbl_name FROM sqlite_master")
    return {(r[0], r[1], r[2]) for r in found if not r[1].startswith("sqlite_")}


class TestSQLiteVersion8:
    def test_waiting_and_leased_mail_of_a_version_8_file(self, tmp_path: Path) -> None:
        today, db = tmp_path / "today.db", tmp_path / "team.db"
        clock = FrozenClock(START)
        mailer = FailingMailer()
        team = TeamAccess(SQLiteStore(today), mailer, secret_key=SECRET, clock=clock,
                          delivery="queue")  # fmt: skip
        acc = team.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="owner", email="w@example.org", permissions=P)
        (waiting,) = team.deliver_pending()  # the server is down: it backs off
        assert waiting.attempts == 1
        assert waiting.next_attempt_at > clock.now()
        team.invite(acc.id, actor_id="owner", email="l@example.org", permissions=P)
        with team.store.begin() as uow:  # a worker's claim, its send still under way
            assert uow.claim_outbox(now=clock.now(), lease_until=START + LEASE, limit=5) != []
            uow.commit()
        team.invite(acc.id, actor_id="owner", email="d@example.org", permissions=P)
        team.close()
        older_file(today, db, 8)
        assert "leased_until" not in {r[1] for r in rows(db, "PRAGMA table_info(outbox)")}
        assert rows(db, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(3,)]

        mailer.failing = False
        upgraded = TeamAccess(SQLiteStore(db), mailer, secret_key=SECRET, clock=clock,
                              delivery="queue")  # fmt: skip
        assert upgraded.store.schema_version == len(sqlite_backend.MIGRATIONS)  # type: ignore[attr-defined]
        stored = {m.recipient: m for m in upgraded.pending_messages()}
        # A version 8 file cannot say which of them a sender holds: each counts as leased
        # until it is due, so none is made due early.
        assert stored["l@example.org"].leased_until == START + LEASE
        assert stored["l@example.org"].next_attempt_at == START + LEASE
        assert stored["w@example.org"].leased_until == waiting.next_attempt_at
        assert stored["d@example.org"].leased_until == stored["d@example.org"].next_attempt_at
        assert upgraded.retry_waiting(actor_id=SYSTEM) == []
        # What was due goes; the rest when its lease (or backoff) ends, each once.
        assert [m.recipient for m in upgraded.deliver_pending()] == ["d@example.org"]
        clock.advance(timedelta(hours=1))
        sent = upgraded.deliver_pending()
        assert sorted(m.recipient for m in sent) == ["l@example.org", "w@example.org"]
        assert all(m.status == "sent" and m.leased_until is None for m in sent)
        assert sorted(str(m["To"]) for m in mailer.outbox) == [
            "d@example.org", "l@example.org", "w@example.org",
        ]  # fmt: skip
        # Mail that fails from now on is waiting, not leased, and can be retried.
        mailer.failing = True
        upgraded.invite(acc.id, actor_id="owner", email="n@example.org", permissions=P)
        assert [m.status for m in upgraded.deliver_pending()] == ["pending"]
        assert [m.recipient for m in upgraded.retry_waiting(actor_id=SYSTEM)] == ["n@example.org"]
        upgraded.close()

        fresh = tmp_path / "fresh.db"
        SQLiteStore(fresh).close()
        assert schema_of(db) == schema_of(fresh)
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]
        assert rows(db, "PRAGMA foreign_key_check") == []

    def test_the_status_rules_hold_without_an_in_list(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        team = TeamAccess(SQLiteStore(db), FailingMailer(), secret_key=SECRET, delivery="queue")
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="owner", email="w@example.org", permissions=P)
        team.close()
        for table in ("invitations", "outbox"):
            (sql,) = rows(db, "SELECT sql FROM sqlite_master WHERE name = ?", table)[0]
            assert "status = 'pending' OR" in sql
            assert "IN (" not in sql
        conn = sqlite3.connect(db)
        try:
            for table in ("invitations", "outbox"):
                with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                    conn.execute(f"UPDATE {table} SET status = 'lost'")
                with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                    conn.execute(f"UPDATE {table} SET status = 'Pending'")
        finally:
            conn.close()

    def test_version_8_code_refuses_a_version_9_file_unchanged(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db = tmp_path / "team.db"
        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:9])
        SQLiteStore(db).close()
        before = db.read_bytes()
        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:8])
        with pytest.raises(StorageError, match=r"schema version 9.*upgrade teamaccess"):
            SQLiteStore(db)
        assert db.read_bytes() == before


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    import psycopg

    conninfo = postgres_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as raw:
        yield conninfo, postgres_schema(tmp_path), raw
    drop_postgres_schema(tmp_path)


@pytest.mark.postgres
class TestPostgresVersion4:
    def test_waiting_and_leased_mail_of_a_version_4_schema(
        self, pg: tuple[str, str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conninfo, schema, raw = pg
        monkeypatch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:4])
        old = PostgresStore(conninfo, schema=schema)
        assert old.schema_version == 4
        old.close()
        monkeypatch.undo()
        s = f'"{schema}"'
        raw.execute(
            f"INSERT INTO {s}.accounts (id, name, owner_id, owner_email, created_at) "
            "VALUES ('acc', 'Alt', 'owner', 'o@example.org', %s)",
            (START,),
        )
        # As version 4's store wrote them: waiting out a backoff, claimed by a worker
        # whose send is under way, due, and sent.
        for message_id, next_at, status, attempts in (
            ("m-waiting", START + timedelta(minutes=2), "pending", 1),
            ("m-leased", START + LEASE, "pending", 0),
            ("m-due", START, "pending", 0),
            ("m-sent", START, "sent", 1),
        ):
            raw.execute(
                f"INSERT INTO {s}.outbox (id, account_id, kind, recipient, message_id, "
                "created_at, next_attempt_at, status, message, attempts) VALUES "
                "(%s, 'acc', 'notification.billing', 'u@example.org', %s, %s, %s, %s, %s, %s)",
                (message_id, f"<{message_id}@x>", START, next_at, status, b"Subject: x\r\n\r\n",
                 attempts),
            )  # fmt: skip
        store = PostgresStore(conninfo, schema=schema)
        assert store.schema_version == len(pg_backend.MIGRATIONS)
        with store.read() as uow:
            got = {m.id: (m.next_attempt_at, m.leased_until) for m in uow.outbox()}
        assert got == {
            "m-waiting": (START + timedelta(minutes=2), START + timedelta(minutes=2)),
            "m-leased": (START + LEASE, START + LEASE),
            "m-due": (START, START),
            "m-sent": (START, None),
        }
        with store.begin() as uow:
            assert uow.retry_outbox(now=START + timedelta(minutes=1)) == []
            uow.commit()
        store.close()

    def test_version_4_code_refuses_a_version_5_schema(
        self, pg: tuple[str, str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conninfo, schema, raw = pg
        monkeypatch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:5])
        PostgresStore(conninfo, schema=schema).close()
        monkeypatch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:4])
        with pytest.raises(StorageError, match=r"version 5.*upgrade teamaccess"):
            PostgresStore(conninfo, schema=schema)
        assert raw.execute(f'SELECT version FROM "{schema}".schema_info').fetchone() == (5,)

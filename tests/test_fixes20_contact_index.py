"""The one-contact-per-address check (``AlreadyContact``) finds an account's contact with
an address by an index on the address (SQLite schema 10, PostgreSQL 6), not by reading
every contact of the account; a file or schema of the version before is upgraded with its
contacts, and the check holds on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, SHARED, drop_postgres_schema, postgres_conninfo, postgres_schema
from tests.sqlite_older import older_file

from teamaccess import AlreadyContact, PostgresStore, SQLiteStore, Store, TeamAccess
from teamaccess._backends import postgres as pg_backend
from teamaccess._backends import sqlite as sqlite_backend
from teamaccess.testing import MemoryMailer


def plan(backend: str, store: Any, sql: str, params: Any) -> str:
    if backend == "sqlite":
        conn = sqlite3.connect(store.path)
        try:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        finally:
            conn.close()
        return " | ".join(str(row[-1]) for row in rows)
    import psycopg

    # With sequential scans priced out, the plan takes the best index that fits.
    with psycopg.connect(postgres_conninfo()) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = psycopg.ClientCursor(conn).execute("EXPLAIN " + sql, params).fetchall()
        conn.rollback()
    return " | ".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_the_duplicate_check_searches_the_address_index(
    backend: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    for n in range(30):
        team.add_contact(acc.id, actor_id="o", name=f"C{n}", email=f"c{n}@example.org",
                         categories=["billing"])  # fmt: skip
    with store.read() as uow:
        unit = type(uow)
    with store.begin() as uow:
        writer = type(uow)
    sent: list[tuple[str, Any]] = []
    inside: list[bool] = []
    for cls in {unit, writer}:
        original_all, original_with = cls._all, cls.contacts_with

        def recording(self: Any, sql: str, params: Any, *rest: Any, _o: Any = original_all) -> Any:
            if inside:
                sent.append((sql, params))
            return _o(self, sql, params, *rest)

        def tracked(self: Any, *args: Any, _o: Any = original_with, **kwargs: Any) -> Any:
            inside.append(True)
            try:
                return _o(self, *args, **kwargs)
            finally:
                inside.pop()

        monkeypatch.setattr(cls, "_all", recording)
        monkeypatch.setattr(cls, "contacts_with", tracked)
    with pytest.raises(AlreadyContact):
        team.add_contact(acc.id, actor_id="o", name="Again", email="C7@Example.org",
                         categories=["general"])  # fmt: skip
    team.add_contact(acc.id, actor_id="o", name="New", email="new@example.org",
                     categories=["general"])  # fmt: skip
    assert len(sent) == 2, sent
    index = "contacts_email" if backend == "sqlite" else "contacts_email_key"
    for sql, params in sent:
        found = plan(backend, store, sql, params)
        # Before: "SEARCH c USING INDEX contacts_account (account_id=?)" (SQLite),
        # "Index Scan using contacts_account ... Filter: (email_key = ANY ...)" (PostgreSQL)
        assert f"{index} (email_key=?" in found or f"using {index} " in found, found
        assert "contacts_account" not in found, found
    assert [c.name for c in team.contacts(acc.id)][-1] == "New"


def test_a_version_9_file_gets_the_index_and_keeps_its_contacts(tmp_path: Path) -> None:
    today, db = tmp_path / "today.db", tmp_path / "team.db"
    team = TeamAccess(SQLiteStore(today), MemoryMailer(), secret_key=SECRET)
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    team.add_contact(acc.id, actor_id="o", name="Petra", email="petra@example.org",
                     categories=["billing"])  # fmt: skip
    team.close()
    older_file(today, db, 9)
    conn = sqlite3.connect(db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "contacts_email" not in names
    upgraded = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=SECRET)
    assert upgraded.store.schema_version == len(sqlite_backend.MIGRATIONS) == 10  # type: ignore[attr-defined]
    conn = sqlite3.connect(db)
    index = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'contacts_email'").fetchone()
    conn.close()
    assert index == ("CREATE INDEX contacts_email ON contacts (email_key, account_id)",)
    with pytest.raises(AlreadyContact):
        upgraded.add_contact(acc.id, actor_id="o", name="P", email="PETRA@example.org",
                             categories=["general"])  # fmt: skip
    assert [c.name for c in upgraded.contacts(acc.id)] == ["Petra"]
    upgraded.close()


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    import psycopg

    conninfo = postgres_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as raw:
        yield conninfo, postgres_schema(tmp_path), raw
    drop_postgres_schema(tmp_path)


@pytest.mark.postgres
def test_a_version_5_schema_gets_the_index_and_keeps_its_contacts(
    pg: tuple[str, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    conninfo, schema, raw = pg
    monkeypatch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:5])
    old = TeamAccess(PostgresStore(conninfo, schema=schema), MemoryMailer(), secret_key=SECRET)
    acc = old.create_account(name="A", owner_id="o", owner_email="o@example.org")
    old.add_contact(acc.id, actor_id="o", name="Petra", email="petra@example.org",
                    categories=["billing"])  # fmt: skip
    old.close()
    query = "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'contacts'"
    assert "contacts_email_key" not in {r[0] for r in raw.execute(query, (schema,))}
    monkeypatch.undo()
    store = PostgresStore(conninfo, schema=schema)
    assert store.schema_version == len(pg_backend.MIGRATIONS) == 6
    assert "contacts_email_key" in {r[0] for r in raw.execute(query, (schema,))}
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    with pytest.raises(AlreadyContact):
        team.add_contact(acc.id, actor_id="o", name="P", email="PETRA@example.org",
                         categories=["general"])  # fmt: skip
    assert [c.name for c in team.contacts(acc.id)] == ["Petra"]
    team.close()

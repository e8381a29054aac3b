"""Attack round 18 on ``file:`` URIs: a parameter given twice.

SQLite looks ``immutable`` up as the first parameter of that name (blank or not), where
the store read the last one: ``immutable=0&immutable=1`` was immutable to the store, which
then left the file out of WAL journaling, while SQLite opened and wrote it as any other
file. (``mode`` and ``vfs`` SQLite takes from the last, as the store does.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess


@pytest.mark.parametrize("query", ["immutable=0&immutable=1", "immutable=&immutable=1"])
def test_the_first_immutable_decides_as_for_sqlite(tmp_path: Path, query: str) -> None:
    store = SQLiteStore(f"file:{tmp_path / 'team.db'}?{query}")
    try:
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with store.read() as uow:
            mode = uow._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert (tmp_path / "team.db-wal").exists()
    finally:
        store.close()


def test_an_immutable_first_is_read_as_immutable(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    SQLiteStore(path).close()
    reader = SQLiteStore(f"file:{path}?immutable=1&immutable=0")
    try:
        assert reader.schema_version >= 9  # opened as SQLite opens it: as it is, read-only
    finally:
        reader.close()

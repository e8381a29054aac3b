"""Files of an older schema version, holding what today's service wrote.

Today's store writes today's schema only, so a test of an upgrade fills a current file
through the service and copies its rows into a file made by the first *version*
migrations: a file of that version, with that version's tables, indexes and triggers,
and real data in it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from teamaccess import SQLiteStore
from teamaccess._backends import sqlite as sqlite_backend

# Parents before children (foreign keys); each table's rows in the order they were added.
_TABLES = (
    ("accounts", "seq"),
    ("members", "seq, user_id"),
    ("invitations", "rowid"),
    ("contacts", "seq"),
    ("contact_categories", "seq, category"),
    ("events", "seq"),
    ("outbox", "rowid"),
)


def older_file(source: Path, target: Path, version: int) -> None:
    """Make *target* a file of schema *version* holding every row of *source* (a file
    of today's version, closed), column by column where the column exists in both."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:version])
        store = SQLiteStore(target)
        assert store.schema_version == version
        store.close()
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        conn.execute("BEGIN")
        for table, order in _TABLES:
            have = {r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")}
            had = [r[1] for r in conn.execute(f"PRAGMA source.table_info({table})")]
            # "key" is schema 7's rowid of invitations and outbox: an older file numbers
            # those rows itself, in the order copied.
            columns = ", ".join(c for c in had if c in have and c != "key")
            conn.execute(
                f"INSERT INTO main.{table} ({columns}) "  # noqa: S608 (names from the files)
                f"SELECT {columns} FROM source.{table} ORDER BY {order}"
            )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE source")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    finally:
        conn.close()

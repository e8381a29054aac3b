"""The honest floor with the library's indexes: how much of the gap the rules' B-trees are.

``IndexedFloor`` is ``HonestFloor`` unchanged (the same code, the same rows, the same
three commits), on tables that also carry what the library's schema puts on them: every
secondary index of the library's tables of the same names (same columns, same partial
``WHERE``, same ``UNIQUE``), the same ``REFERENCES`` with ``PRAGMA foreign_keys`` as the
library sets it (so each row's account is looked up, in an ``accounts`` table made with
the library's own statement), and ``PRAGMA secure_delete`` as the library sets it.

All of it is read from a fresh ``SQLiteStore`` file, never written out here, so it
cannot drift from the schema: an index on a column the floor's rows do not have stops
the benchmark with a message saying so (the floor's rows would then need that column,
filled as the library fills it). Nothing else of the library's schema is copied: its
triggers, ``CHECK`` constraints and extra columns (a note, metadata) stay on the
library's side of the comparison, with its checks, audit details, templates and objects.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .honest import _LEAN_SCHEMA, HonestFloor

#: The connection settings copied from the library's connection.
PRAGMAS = ("foreign_keys", "secure_delete")


@dataclass(frozen=True)
class LibrarySchema:
    """What the library's schema puts on the floor's tables, read from a fresh file."""

    version: int
    #: the floor's CREATE TABLE statements with the library's REFERENCES added
    tables: tuple[str, ...]
    #: CREATE TABLE of each table the references name that the floor does not have
    parents: dict[str, str]
    #: (name, table, CREATE INDEX) of every index the library declares on those tables
    indexes: tuple[tuple[str, str, str], ...]
    #: PRAGMAS as the library's connection has them
    pragmas: dict[str, int]


def _lean_tables() -> dict[str, str]:
    out = {}
    for sql in _LEAN_SCHEMA:
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ", sql)
        assert match, sql
        out[match[1]] = sql
    return out


def library_schema() -> LibrarySchema:
    """The library's indexes, references and settings for the floor's tables."""
    from teamaccess import SQLiteStore

    lean = _lean_tables()
    with tempfile.TemporaryDirectory(prefix="teamaccess-schema-") as tmp:
        store = SQLiteStore(Path(tmp) / "schema.db")
        try:
            conn: sqlite3.Connection = store.db.conn
            master = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            indexes = tuple(
                (str(name), str(table), str(sql))
                for name, table, sql in conn.execute(
                    "SELECT name, tbl_name, sql FROM sqlite_master "
                    "WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
                )
                if table in lean
            )
            tables = []
            parents = {}
            for table, sql in lean.items():
                if table not in master:
                    raise RuntimeError(f"the library has no table {table!r}; update the floor")
                for fk in conn.execute(f"PRAGMA foreign_key_list({table})").fetchall():
                    _id, seq, parent, column, to, on_update, on_delete, _match = fk
                    if seq:
                        raise RuntimeError(f"{table}: a reference on several columns; add it")
                    clause = f"REFERENCES {parent}" + (f" ({to})" if to else "")
                    clause += "".join(
                        f" ON {what} {action}"
                        for what, action in (("UPDATE", on_update), ("DELETE", on_delete))
                        if action != "NO ACTION"
                    )
                    # the column's declaration, e.g. "account_id TEXT", gets the clause
                    sql, found = re.subn(rf"\b({column} \w+)", rf"\1 {clause}", sql, count=1)
                    if not found:
                        raise RuntimeError(
                            f"the library's {table}.{column} references {parent}, and the "
                            f"floor's {table} has no {column}: add it to the floor's rows"
                        )
                    if parent not in lean:
                        parents[parent] = master[parent]
                tables.append(sql)
            pragmas = {p: int(conn.execute(f"PRAGMA {p}").fetchone()[0]) for p in PRAGMAS}
            version = store.schema_version
        finally:
            store.close()
    return LibrarySchema(version, tuple(tables), parents, indexes, pragmas)


class IndexedFloor(HonestFloor):
    """``HonestFloor`` on tables with the library's indexes and references.

    *account_ids* are the accounts the calls name: the references need their rows.
    """

    label = "the floor + the library's indexes, REFERENCES, secure_delete"

    def __init__(self, path: Path, synchronous: str, account_ids: list[str]) -> None:
        self.path = path
        self.schema = schema = library_schema()
        if set(schema.parents) - {"accounts"}:
            raise RuntimeError(
                f"the library's tables reference {sorted(schema.parents)}; the floor fills "
                "only accounts: fill the others too"
            )
        setup = sqlite3.connect(str(path), isolation_level=None)
        try:
            # The tables first, so the floor's CREATE TABLE IF NOT EXISTS keeps these.
            for sql in (*schema.parents.values(), *schema.tables):
                setup.execute(sql)
            if "accounts" in schema.parents:
                setup.executemany(
                    "INSERT INTO accounts (id, name, owner_id, owner_email, created_at) "
                    "VALUES (?, ?, ?, ?, '2026-11-30T00:00:00+00:00')",
                    [(a, f"Firma {n}", f"boss{n}", f"b{n}@f.example")
                     for n, a in enumerate(account_ids)],
                )  # fmt: skip
        finally:
            setup.close()
        super().__init__(path, synchronous)
        for name, table, sql in schema.indexes:
            try:
                self.conn.execute(sql)
            except sqlite3.OperationalError as exc:
                raise RuntimeError(
                    f"the library's index {name} on {table} does not fit the floor's rows "
                    f"({exc}): add the column to the floor's rows, filled as the library "
                    "fills it"
                ) from exc
        for pragma, value in schema.pragmas.items():
            self.conn.execute(f"PRAGMA {pragma} = {value}")
        for pragma, value in schema.pragmas.items():  # a build may refuse a setting
            now = self.conn.execute(f"PRAGMA {pragma}").fetchone()[0]
            if now != value:
                raise RuntimeError(f"PRAGMA {pragma} stays {now}, the library has {value}")

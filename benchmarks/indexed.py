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

import gc
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._timing import fmt_ns
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


# -- python -m benchmarks.indexed: where the gap goes, side by side --------------------

_SQLITE_TYPES = ("sqlite3.Connection", "sqlite3.Cursor")


def _sql_time(call: Callable[..., None], args: list[tuple[str, str, str]]) -> float:
    """CPU nanoseconds per call spent inside sqlite3's C methods (statements, commits,
    fetches), by cProfile on the process's CPU clock."""
    import cProfile
    import pstats

    profile = cProfile.Profile(time.process_time_ns, 1e-9)
    profile.enable()
    try:
        for a in args:
            call(*a)
    finally:
        profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # (file, line, name) -> (.., .., tottime, ..)
    spent = sum(
        entry[2]
        for (file, _line, name), entry in stats.items()
        if file == "~" and any(t in name for t in _SQLITE_TYPES)
    )
    return float(spent) * 1e9 / len(args)


def _three_way(
    sides: dict[str, Callable[..., None]], fresh: Callable[[int], Any], rounds: int, batch: int
) -> dict[str, tuple[float, float]]:
    """Median CPU and wall nanoseconds per call of each side, the sides timed in turn in
    every round (the order rotating), so a burst of load falls on all of them."""
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds + 1):  # the first round warms up
            for name in names[r % 3 :] + names[: r % 3]:
                args = fresh(batch)
                c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                for a in args:
                    sides[name](*a)
                c1, w1 = time.process_time_ns(), time.perf_counter_ns()
                if r:
                    cpu[name].append((c1 - c0) / batch)
                    wall[name].append((w1 - w0) / batch)
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {n: (statistics.median(cpu[n]), statistics.median(wall[n])) for n in names}


def gap(synchronous: str, warm: int, rounds: int, batch: int, workdir: Path) -> None:
    """Print the three sides at *synchronous* and the gap between library and floor,
    split into the indexes, the library's other SQL and its work outside SQL."""
    from ._data import page_size
    from .honest import count_statements
    from .pairs import QUICK, _InviteRun

    run = _InviteRun(QUICK, workdir, synchronous, page_size())
    sides = {"library": run.library, "indexed floor": run.indexed, "floor": run.floor}
    for call in sides.values():
        for a in run.fresh(warm):
            call(*a)
    conns = {"library": run.store.db.conn, "indexed floor": run.indexed.conn,
             "floor": run.floor.conn}  # fmt: skip
    sql = {name: _sql_time(call, run.fresh(max(rounds * batch // 4, 10)))
           for name, call in sides.items()}  # fmt: skip
    statements = {n: count_statements(conns[n], sides[n], run.fresh(10)) for n in sides}
    times = _three_way(sides, run.fresh, rounds, batch)
    print(
        f"\ninvite + accept, synchronous={synchronous}: {warm} rounds first, then {rounds} "
        f"rounds of {batch} calls a side, the three sides in turn; medians per call. SQL: "
        "CPU inside sqlite3's C calls (cProfile on the CPU clock, a run of its own)\n"
    )
    print("| side | CPU | wall | SQL (CPU) | CPU outside SQL | statements |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in sides:
        c, w = times[name]
        print(
            f"| {name} | {fmt_ns(c)} | {fmt_ns(w)} | {fmt_ns(sql[name])} | "
            f"{fmt_ns(c - sql[name])} | {statements[name]:.0f} |"
        )
    lib, ixd, low = (times[n][0] for n in sides)
    whole = lib - low
    parts = (
        ("the library's indexes, references (indexed floor - floor, CPU)", ixd - low),
        ("the library's other SQL (its SQL - the indexed floor's)",
         sql["library"] - sql["indexed floor"]),
        ("the library outside SQL (its CPU outside SQL - the indexed floor's)",
         (lib - sql["library"]) - (ixd - sql["indexed floor"])),
    )  # fmt: skip
    print(f"\nthe gap, library - floor: {fmt_ns(whole)} CPU a call ({lib / low:.2f}x); of it:")
    for what, part in parts:
        print(f"  {what}: {fmt_ns(part)} ({part / whole:.0%})")
    w_lib = times["library"][1]
    print(
        f"wall: library {w_lib / times['floor'][1]:.2f}x the floor, "
        f"{w_lib / times['indexed floor'][1]:.2f}x the indexed floor; indexed floor "
        f"{times['indexed floor'][1] / times['floor'][1]:.2f}x the floor"
    )
    run.floor.close()
    run.indexed.close()
    run.team.close()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.indexed",
        description="Where the invite + accept gap goes: the library, the floor with the "
        "library's indexes and the floor, timed in turn.",
    )
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), action="append")
    parser.add_argument("--warm", type=int, default=300, help="calls a side before timing")
    parser.add_argument("--rounds", type=int, default=60, help="rounds timed")
    parser.add_argument("--batch", type=int, default=20, help="calls a side per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="teamaccess-indexed-") as tmp:
        for synchronous in args.synchronous or ("NORMAL", "FULL"):
            gap(synchronous, args.warm, args.rounds, args.batch, Path(tmp))


if __name__ == "__main__":
    main()

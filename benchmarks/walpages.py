"""Which B-tree writes which WAL pages in an invite + accept: the library's, the floor's,
and the floor's with the library's indexes (``benchmarks.indexed``).

    python -m benchmarks.walpages [--warm 300] [--rounds 200]

Both sides run *warm* invite + accept rounds first (so the trees have the size they have
in the benchmark), then *rounds* more with automatic checkpoints off. Each frame of the
WAL names its page; ``dbstat`` names the B-tree that page belongs to; a frame that ends
a commit closes that commit. Printed: pages per round for each commit (invite, delivery
record, accept) and each B-tree, and the SQL statements per round; then each B-tree's
pages a round on the three sides beside each other. A count, not a time: it does not
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from teamaccess import PermissionSet, SQLiteStore, TeamAccess

from ._data import SECRET, page_size
from .honest import HonestFloor, SerialisingMailer, count_statements, restart_wal
from .indexed import IndexedFloor

COMMITS = ("invite", "delivery record", "accept")
_FRAME_HEADER = 24
_WAL_HEADER = 32

Call = Callable[[str, str, str], None]


def _trees(path: Path) -> dict[int, str]:
    conn = sqlite3.connect(str(path))
    try:
        return {
            int(page): str(name) for page, name in conn.execute("SELECT pageno, name FROM dbstat")
        }
    finally:
        conn.close()


def _commits(path: Path) -> list[Counter[str]]:
    """The WAL's frames, grouped by commit, as pages per B-tree name."""
    conn = sqlite3.connect(str(path))
    try:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    trees = _trees(path)
    data = Path(f"{path}-wal").read_bytes()
    commits: list[Counter[str]] = []
    current: Counter[str] = Counter()
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + size <= len(data):
        page, ends_commit = struct.unpack(">II", data[offset : offset + 8])
        current["page 1 (file header)" if page == 1 else trees.get(page, "free list")] += 1
        if ends_commit:
            commits.append(current)
            current = Counter()
        offset += _FRAME_HEADER + size
    return commits


def pages(
    path: Path, conn: sqlite3.Connection, call: Call, args: list[tuple[str, str, str]]
) -> list[Counter[str]]:
    """Pages per round for each of the three commits of ``call(*a)``, averaged over *args*."""
    restart_wal(path)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        for a in args:
            call(*a)
        commits = _commits(path)
    finally:
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
    if len(commits) != len(COMMITS) * len(args):
        raise RuntimeError(f"expected {len(COMMITS)} commits per round, found {len(commits)}")
    out = []
    for n in range(len(COMMITS)):
        total: Counter[str] = Counter()
        for c in commits[n :: len(COMMITS)]:
            total.update(c)
        out.append(Counter({k: v / len(args) for k, v in total.items()}))
    return out


def _report(name: str, per_commit: list[Counter[str]], statements: float, page_size: int) -> None:
    whole = sum(sum(c.values()) for c in per_commit)
    kib = whole * (page_size + _FRAME_HEADER) / 1024
    print(f"\n{name}: {whole:.2f} pages ({kib:.1f} KiB), {statements:.0f} statements per round")
    for label, c in zip(COMMITS, per_commit, strict=True):
        trees = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))
        print(f"  {label}: {sum(c.values()):.2f} ({trees})")


def _beside(sides: list[tuple[str, list[Counter[str]]]]) -> None:
    """Each B-tree's pages a round (the three commits together), one column a side."""
    totals = []
    for _name, per_commit in sides:
        total: Counter[str] = Counter()
        for c in per_commit:
            total.update(c)
        totals.append(total)
    trees = sorted(set().union(*totals), key=lambda t: (-totals[0][t], t))
    width = max(len(t) for t in trees)
    print(f"\npages a round, B-tree by B-tree: {' | '.join(name for name, _ in sides)}")
    for tree in [*trees, "all"]:
        cells = "".join(f"{sum(t.values()) if tree == 'all' else t[tree]:9.2f}" for t in totals)
        print(f"  {tree:<{width}}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.walpages", description=__doc__)
    parser.add_argument("--warm", type=int, default=300, help="rounds before counting")
    parser.add_argument("--rounds", type=int, default=200, help="rounds counted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="teamaccess-walpages-") as tmp:
        path, floor_path = Path(tmp) / "library.db", Path(tmp) / "floor.db"
        indexed_path = Path(tmp) / "indexed.db"
        store = SQLiteStore(path, page_size=page_size())
        team = TeamAccess(store, SerialisingMailer(), secret_key=SECRET, rate_limit=10**9)
        owners = {}
        for i in range(50):
            account = team.create_account(
                name=f"Firma {i}", owner_id=f"boss{i}", owner_email=f"b{i}@f.example"
            )
            owners[account.id] = account.owner_id
        perms = PermissionSet.of("billing.view")
        ids = list(owners)
        floor = HonestFloor(floor_path, "FULL")
        indexed = IndexedFloor(indexed_path, "FULL", ids)
        counter = iter(range(10**9))

        def fresh(n: int) -> list[tuple[str, str, str]]:
            out = []
            for _ in range(n):
                k = next(counter)
                out.append((ids[k % len(ids)], f"new{k}@invitee{k % 97}.example", f"u{k}"))
            return out

        def library(account_id: str, email: str, user_id: str) -> None:
            inv = team.invite(
                account_id, actor_id=owners[account_id], email=email, permissions=perms
            )
            assert inv.token is not None
            team.accept_invitation(inv.token, user_id=user_id, email=email)

        try:
            for a in fresh(args.warm):
                library(*a)
            for a in fresh(args.warm):
                floor(*a)
            for a in fresh(args.warm):
                indexed(*a)
            conn = store.db.conn
            lib = pages(path, conn, library, fresh(args.rounds))
            lib_statements = count_statements(conn, library, fresh(10))
            low = pages(floor_path, floor.conn, floor, fresh(args.rounds))
            low_statements = count_statements(floor.conn, floor, fresh(10))
            ixd = pages(indexed_path, indexed.conn, indexed, fresh(args.rounds))
            ixd_statements = count_statements(indexed.conn, indexed, fresh(10))

            def size(c: sqlite3.Connection) -> int:
                return int(c.execute("PRAGMA page_size").fetchone()[0])

            print(
                f"schema version {store.schema_version}, {args.warm} invite + accept rounds "
                f"before, {args.rounds} counted; the library's pages {size(conn)} bytes"
            )
            _report("library", lib, lib_statements, size(conn))
            _report("floor (tables with only primary keys)", low, low_statements, size(floor.conn))
            _report(
                f"floor with the library's indexes ({len(indexed.schema.indexes)} indexes, "
                "REFERENCES, secure_delete)",
                ixd,
                ixd_statements,
                size(indexed.conn),
            )
            _beside([("library", lib), ("floor", low), ("indexed floor", ixd)])
        finally:
            indexed.close()
            floor.close()
            team.close()


if __name__ == "__main__":
    main()

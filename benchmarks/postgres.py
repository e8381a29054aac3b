"""The PostgreSQL figures: ``PostgresStore`` against raw psycopg on the same server.

They run when ``TEAMACCESS_BENCH_POSTGRES`` (or else ``TEAMACCESS_TEST_POSTGRES``) holds
a connection string, e.g. the one ``.ci/postgres start`` prints, in a schema of their
own that is dropped afterwards; without one they are skipped with a line saying so.

- ``can()`` against a raw point query on a connection of the same kind: a
  ``psycopg_pool.ConnectionPool`` in autocommit mode without prepared statements, as
  ``PostgresStore`` keeps, taken and given back per query.
- invite + accept against the floor the SQLite figure uses (shown for information: the
  floor is SQLite's, in-process, while each PostgreSQL statement is a round trip).
- ``can()`` throughput of 1, 2 and 4 processes against one server, beside the same
  number of processes running the raw query; the two sides take turns, round by round.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from teamaccess import Catalog, TeamAccess

from ._data import SECRET, populate
from ._timing import compare, fmt_ns, loop
from .pairs import Config, Line, _batches, ratio_line, team_on

ENV = ("TEAMACCESS_BENCH_POSTGRES", "TEAMACCESS_TEST_POSTGRES")
GRANT_SQL = 'SELECT permissions FROM "{s}".members WHERE account_id = %s AND user_id = %s'
CAN_GOAL = 1.3
PG_ACCOUNTS = 60
PG_ROUNDS = 15  # invite + accept: each call is some 30 round trips to the server


def conninfo() -> str | None:
    for name in ENV:
        value = os.environ.get(name)
        if value:
            return value
    return None


class RawCan:
    """The floor: ``can()`` written by hand with psycopg and a pool like the store's."""

    def __init__(self, conninfo: str, schema: str) -> None:
        from psycopg_pool import ConnectionPool

        self.pool: ConnectionPool[Any] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=1,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=True,
        )
        self.sql = GRANT_SQL.format(s=schema)

    def __call__(self, user_id: str, account_id: str, permission: str) -> bool:
        conn = self.pool.getconn()
        try:
            row = conn.execute(self.sql, (account_id, user_id)).fetchone()
        finally:
            self.pool.putconn(conn)
        if row is None:
            return False
        held = json.loads(row[0])
        return held == "*" or permission in held

    def close(self) -> None:
        self.pool.close()


def can_postgres(cfg: Config, url: str, schema: str, workdir: Path) -> list[Line]:
    from teamaccess import PostgresStore

    team = team_on(PostgresStore(url, schema=schema, max_size=1))
    # Fewer accounts than the SQLite figures: every one costs round trips to populate,
    # and a point query's cost hardly depends on the table's size.
    pop = populate(team, min(cfg.accounts, PG_ACCOUNTS))
    rng = random.Random(4)
    raw = RawCan(url, schema)
    args = pop.can_args(max(cfg.batch * 4, 1000), rng, Catalog.default().names())
    for a in args[:200]:  # both answer alike, or the comparison means nothing
        assert team.can(*a) == raw(*a), a
    # The throughput workers ask the same questions.
    (workdir / "pg-can-args.json").write_text(json.dumps(args))
    import psycopg

    # For information: the same query on one connection held for good, no pool between.
    # A library shared by threads cannot hold one, so it is not the goal's floor.
    held = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    sql = raw.sql

    def dedicated(user_id: str, account_id: str, permission: str) -> bool:
        row = held.execute(sql, (account_id, user_id)).fetchone()
        if row is None:
            return False
        perms = json.loads(row[0])
        return perms == "*" or permission in perms

    for a in args[:200]:
        assert team.can(*a) == dedicated(*a), a
    size = max(cfg.batch // 4, 20)
    try:
        result = compare(
            "can(), PostgresStore",
            loop(team.can),
            "raw psycopg point query, same pool kind",
            loop(raw),
            _batches(args, size, rng),
            rounds=cfg.rounds,
        )
        informational = compare(
            "can() (informational), PostgresStore",
            loop(team.can),
            "raw psycopg point query, one dedicated connection",
            loop(dedicated),
            _batches(args, size, rng),
            rounds=cfg.rounds,
        )
    finally:
        held.close()
        raw.close()
        team.close()
    return [ratio_line(result, CAN_GOAL), ratio_line(informational, None)]


def invite_accept_postgres(cfg: Config, url: str, schema: str, workdir: Path) -> list[Line]:
    from teamaccess import PermissionSet, PostgresStore

    from .honest import HonestFloor, SerialisingMailer

    store = PostgresStore(url, schema=schema + "_invite", max_size=1)
    team = TeamAccess(store, SerialisingMailer(), secret_key=SECRET, rate_limit=10**9)
    accounts = [
        team.create_account(name=f"Firma {i}", owner_id=f"boss{i}", owner_email=f"b{i}@f.example")
        for i in range(50)
    ]
    owner = {a.id: a.owner_id for a in accounts}
    perms = PermissionSet.of("billing.view")
    floor = HonestFloor(workdir / "pg-invite-floor.db", "FULL")
    counter = iter(range(10**9))

    def library(account_id: str, email: str, user_id: str) -> None:
        inv = team.invite(account_id, actor_id=owner[account_id], email=email, permissions=perms)
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id=user_id, email=email)

    def fresh() -> list[tuple[str, str, str]]:
        out = []
        for _ in range(min(cfg.slow_batch, 5)):
            k = next(counter)
            out.append((accounts[k % 50].id, f"new{k}@invitee{k % 97}.example", f"u{k}"))
        return out

    try:
        result = compare(
            "invite + accept (informational), PostgresStore",
            loop(library),
            "the SQLite figure's floor: " + floor.label,
            loop(floor),
            lambda _round: (fresh(), fresh()),
            rounds=min(cfg.rounds, PG_ROUNDS),
        )
    finally:
        team.close()
    return [ratio_line(result, None)]


def _workers(mode: str, n: int, url: str, schema: str, workdir: Path, seconds: float) -> float:
    """Calls per second of *n* processes asking ``can()`` (or the raw query) together."""
    start = workdir / f"start-{mode}-{n}-{time.monotonic_ns()}"
    worker = [sys.executable, "-m", "benchmarks.pgworker", mode, url, schema]
    command = [*worker, str(workdir / "pg-can-args.json"), str(start), str(seconds)]
    root = Path(__file__).resolve().parent.parent
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root) for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        start.touch()
        counts = []
        for proc in procs:
            assert proc.stdout is not None
            counts.append(json.loads(proc.stdout.readline()))
    finally:
        for proc in procs:
            proc.wait(60)
            if proc.stdout is not None:
                proc.stdout.close()
    calls = sum(int(c["calls"]) for c in counts)
    return calls / statistics.mean(float(c["seconds"]) for c in counts)


def throughput(cfg: Config, url: str, schema: str, workdir: Path) -> list[Line]:
    seconds = 0.3 if cfg.rounds < 10 else 2.0
    rounds = 1 if cfg.rounds < 10 else 3
    lines = []
    for n in (1, 2, 4):
        lib: list[float] = []
        raw: list[float] = []
        for r in range(rounds):
            sides = [("library", lib), ("raw", raw)]
            for mode, samples in sides if r % 2 == 0 else sides[::-1]:
                samples.append(_workers(mode, n, url, schema, workdir, seconds))
        lib_rate, raw_rate = statistics.median(lib), statistics.median(raw)
        ratio = raw_rate / lib_rate
        lines.append(
            Line(
                f"can() throughput, PostgresStore, {n} process{'es' if n > 1 else ''}",
                f"{lib_rate / 1000:.1f}k/s",
                f"raw psycopg point query, {n} process{'es' if n > 1 else ''}",
                f"{raw_rate / 1000:.1f}k/s",
                f"{ratio:.2f}x",
                f"≤ {CAN_GOAL:g}x",
                ratio <= CAN_GOAL,
            )
        )
    return lines


def run_all(cfg: Config, workdir: Path) -> list[Line]:
    url = conninfo()
    if url is None:
        print(
            "\nPostgreSQL figures skipped: no server; to run them, export "
            'TEAMACCESS_BENCH_POSTGRES="$(.ci/postgres start)" (see docs/performance.md)',
            flush=True,
        )
        return []
    import psycopg

    schema = f"bench_{os.getpid()}"
    print(
        f"\n## PostgreSQL ({cfg.rounds} rounds per figure, medians; throughput: "
        "calls per second of all processes together)\n"
    )
    print("| figure | median | floor | floor median | ratio | goal | |")
    print("|---|---:|---|---:|---:|---|---|", flush=True)
    lines: list[Line] = []
    try:
        for bench in (can_postgres, invite_accept_postgres, throughput):
            for line in bench(cfg, url, schema, workdir):
                print(line.row(), flush=True)
                lines.append(line)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in (schema, schema + "_invite"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    return lines


__all__ = ["fmt_ns", "run_all"]

"""The paired figures: each library call against its floor, measured A B A B in one run."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from teamaccess import Catalog, MemoryStore, TeamAccess

from ._data import SECRET, NullMailer, Population, page_size, populate
from ._raw import RawQueries
from ._timing import Result, compare, fmt_ns, loop


@dataclass(frozen=True)
class Config:
    accounts: int  # accounts populated for the can() and recipients() figures
    rounds: int  # A B rounds per figure
    batch: int  # calls per timed batch (cheap calls)
    slow_batch: int  # calls per timed batch (invite + accept)
    import_runs: int  # subprocess runs per side for the import figure
    scale_repeats: int  # measuring processes per scale point, run in rotation
    memory_small: int = 200  # stored invitations, MemoryStore growth figure: the floor
    memory_large: int = 20_000  # ... and the measured side
    bulk_accounts: int = 200  # accounts per batch in the batch() comparison figure
    bulk_rounds: int = 2  # A B rounds of the batch() comparison figure
    import_accounts: int = 100_000  # accounts per side in the import_accounts() figure
    import_chunk: int = 1_000  # accounts per commit (and per round) in it
    procs_seconds: float = 0.4  # per window of the many-processes figure
    procs_rounds: int = 30  # rounds (a library and a raw window) per configuration


QUICK = Config(
    accounts=20,
    rounds=5,
    batch=200,
    slow_batch=5,
    import_runs=3,
    scale_repeats=1,
    memory_small=20,
    memory_large=200,
    bulk_accounts=20,
    bulk_rounds=2,
    import_accounts=300,
    import_chunk=100,
    procs_seconds=0.1,
    procs_rounds=3,
)
FULL = Config(accounts=300, rounds=60, batch=2000, slow_batch=20, import_runs=40, scale_repeats=3)


@dataclass
class Line:
    """One printed line: a figure, its floor, and the goal it is held to."""

    what: str
    value: str
    floor_what: str
    floor_value: str
    measure: str  # "1.23x" or "+12.3 ms"
    goal: str
    passed: bool | None  # None: a figure shown for information, held to no goal

    def row(self) -> str:
        verdict = "INFO" if self.passed is None else "PASS" if self.passed else "MISS"
        return (
            f"| {self.what} | {self.value} | {self.floor_what} | {self.floor_value} | "
            f"{self.measure} | {self.goal} | {verdict} |"
        )


HEADER = (
    "| figure | median | floor | floor median | ratio | goal | |\n|---|---:|---|---:|---:|---|---|"
)


def ratio_line(result: Result, limit: float | None) -> Line:
    return Line(
        result.name,
        fmt_ns(result.median),
        result.floor_name,
        fmt_ns(result.floor_median),
        f"{result.ratio:.2f}x",
        "none" if limit is None else f"≤ {limit:g}x",
        None if limit is None else result.ratio <= limit,
    )


def team_on(store: Any) -> TeamAccess:
    # The limit of 50 invitations an hour protects a real panel; populating does more.
    return TeamAccess(store, NullMailer(), secret_key=SECRET, rate_limit=10**9)


def _batches(args: Sequence[Any], size: int, rng: random.Random) -> Any:
    def batches(_round: int) -> tuple[list[Any], list[Any]]:
        batch = rng.sample(list(args), size) if size < len(args) else list(args)
        return batch, batch  # the same calls on both sides

    return batches


# -- can() on MemoryStore vs a dict and set look-up ------------------------------------


def can_memory(cfg: Config, workdir: Path) -> Line:
    rng = random.Random(1)
    team = team_on(MemoryStore())
    pop = populate(team, cfg.accounts)
    names = Catalog.default().names()
    grants = _floor_grants(pop, names)

    def floor(user_id: str, account_id: str, permission: str) -> bool:
        held = grants.get((account_id, user_id))
        return held is not None and permission in held

    args = pop.can_args(max(cfg.batch * 4, 1000), rng, names)
    for a in args[:200]:  # both answer alike, or the comparison means nothing
        assert team.can(*a) == floor(*a), a
    result = compare(
        "can(), MemoryStore",
        loop(team.can),
        "dict + set look-up",
        loop(floor),
        _batches(args, cfg.batch, rng),
        rounds=cfg.rounds,
    )
    return ratio_line(result, 3)


def _floor_grants(pop: Population, names: tuple[str, ...]) -> dict[tuple[str, str], frozenset[str]]:
    return {
        (account, user): frozenset(names) if perms.is_all else perms.names
        for account, members in pop.members.items()
        for user, perms in members
    }


# -- SQLite: one populated file for can() and recipients() -----------------------------

_populated: dict[Path, tuple[TeamAccess, Population]] = {}


def sqlite_team(cfg: Config, workdir: Path) -> tuple[TeamAccess, Population, Path]:
    from teamaccess import SQLiteStore

    path = workdir / "pairs.db"
    if path not in _populated:
        team = team_on(SQLiteStore(path))
        _populated[path] = (team, populate(team, cfg.accounts))
    team, pop = _populated[path]
    return team, pop, path


def can_sqlite(cfg: Config, workdir: Path) -> Line:
    team, pop, path = sqlite_team(cfg, workdir)
    rng = random.Random(2)
    raw = RawQueries(path)
    args = pop.can_args(max(cfg.batch * 4, 1000), rng, Catalog.default().names())
    for a in args[:200]:
        assert team.can(*a) == raw.can(*a), a
    try:
        result = compare(
            "can(), SQLiteStore",
            loop(team.can),
            "raw sqlite3 point query",
            loop(raw.can),
            _batches(args, cfg.batch, rng),
            rounds=cfg.rounds,
        )
    finally:
        raw.close()
    return ratio_line(result, 1.5)


def can_scoped_sqlite(cfg: Config, workdir: Path) -> Line:
    """can(..., resource=) for members holding grants on single services, against the same
    point query and a look for the scoped grant in the stored text."""
    from teamaccess import PermissionSet, SQLiteStore

    team = team_on(SQLiteStore(workdir / "scoped.db"))
    pop = populate(team, max(cfg.accounts // 5, 10), contacts=0)
    services = [f"srv-{n}" for n in range(6)]
    scoped = Catalog.default().scoped_names()
    held: list[tuple[str, str]] = []
    for account, members in pop.members.items():
        for n, (user, _perms) in enumerate(members[1:]):
            # two of six services each, plus an account-wide grant that is not scoped
            grants = PermissionSet.of("support.tickets") | PermissionSet.on(
                scoped[n % len(scoped)], services[n % 6], services[(n + 2) % 6]
            )
            team.set_permissions(account, user, grants, actor_id=members[0][0])
            held.append((user, account))
    held += [(members[0][0], account) for account, members in pop.members.items()]  # owners
    rng = random.Random(4)
    args = [
        (*rng.choice(held), rng.choice(scoped), rng.choice(services))
        for _ in range(max(cfg.batch * 4, 1000))
    ]
    raw = RawQueries(workdir / "scoped.db")

    def scoped_can(user_id: str, account_id: str, permission: str, resource: str) -> bool:
        return team.can(user_id, account_id, permission, resource=resource)

    allowed = 0
    for a in args[:400]:
        assert scoped_can(*a) == raw.can_on(*a), a
        allowed += scoped_can(*a)
    assert 0 < allowed < 400  # both answers occur, or the figure means little
    try:
        result = compare(
            "can(..., resource=), SQLiteStore",
            loop(scoped_can),
            "raw point query + text look",
            loop(raw.can_on),
            _batches(args, cfg.batch, rng),
            rounds=cfg.rounds,
        )
    finally:
        raw.close()
        team.close()
    return ratio_line(result, 1.5)


def recipients_sqlite(cfg: Config, workdir: Path) -> Line:
    team, pop, path = sqlite_team(cfg, workdir)
    rng = random.Random(3)
    raw = RawQueries(path)
    args = [(rng.choice(pop.accounts), "billing") for _ in range(max(cfg.batch * 4, 1000))]
    for a in args[:200]:
        assert team.recipients(*a) == raw.recipients(*a), a
    try:
        result = compare(
            f"recipients(), {len(pop.accounts)} accounts",
            loop(team.recipients),
            "raw SQL, same rows",
            loop(raw.recipients),
            _batches(args, cfg.batch, rng),
            rounds=cfg.rounds,
        )
    finally:
        raw.close()
    return ratio_line(result, 2)


# -- invite + accept vs its honest floor ----------------------------------------------


class _InviteRun:
    """A TeamAccess on a fresh file with a serialising mailer, its honest floor beside it,
    and fresh ``(account_id, email, user_id)`` calls for both."""

    def __init__(self, cfg: Config, workdir: Path, synchronous: str, pages: int) -> None:
        from teamaccess import PermissionSet, SQLiteStore

        from .honest import HonestFloor, WireMailer

        self.path = workdir / f"invite-{synchronous}-{pages}.db"
        self.floor_path = workdir / f"invite-floor-{synchronous}-{pages}.db"
        self.store = SQLiteStore(self.path, synchronous=synchronous, page_size=pages)  # type: ignore[arg-type]
        # the library as it sends with SmtpMailer (the checked bytes, written once), the
        # socket left out; the accept link and sender are not the examples SmtpMailer refuses
        self.team = TeamAccess(
            self.store, WireMailer(), secret_key=SECRET, rate_limit=10**9,
            accept_url="https://panel.example.net/accept?token={token}",
            sender="Panel <noreply@panel.example.net>",
        )  # fmt: skip
        self.accounts = [
            self.team.create_account(
                name=f"Firma {i}", owner_id=f"boss{i}", owner_email=f"b{i}@f.example"
            )
            for i in range(50)
        ]
        self.owner = {a.id: a.owner_id for a in self.accounts}
        self.perms = PermissionSet.of("billing.view")
        self.floor = HonestFloor(self.floor_path, synchronous)
        self.counter = iter(range(10**9))
        self.batch = cfg.slow_batch

    def library(self, account_id: str, email: str, user_id: str) -> None:
        inv = self.team.invite(
            account_id, actor_id=self.owner[account_id], email=email, permissions=self.perms
        )
        assert inv.token is not None
        self.team.accept_invitation(inv.token, user_id=user_id, email=email)

    def fresh(self, n: int | None = None) -> list[tuple[str, str, str]]:
        out = []
        for _ in range(self.batch if n is None else n):
            k = next(self.counter)
            acc = self.accounts[k % len(self.accounts)].id
            out.append((acc, f"new{k}@invitee{k % 97}.example", f"u{k}"))
        return out

    def batches(self, _round: int) -> tuple[list[Any], list[Any]]:
        return self.fresh(), self.fresh()

    @cached_property
    def indexed(self) -> Any:
        """The floor with the library's indexes, made when first asked for, so the goal's
        figures run as they did before it existed."""
        from .indexed import IndexedFloor

        path = self.path.with_name(f"invite-indexed-{self.floor.synchronous}.db")
        return IndexedFloor(path, self.floor.synchronous, [a.id for a in self.accounts])


_invite_runs: dict[tuple[str, int], _InviteRun] = {}


def _invite_run(
    cfg: Config, workdir: Path, synchronous: str, pages: int | None = None
) -> _InviteRun:
    key = (synchronous, page_size() if pages is None else pages)
    if key not in _invite_runs:
        _invite_runs[key] = _InviteRun(cfg, workdir, *key)
    return _invite_runs[key]


def invite_accept(cfg: Config, workdir: Path, synchronous: Literal["FULL", "NORMAL"]) -> Line:
    run = _invite_run(cfg, workdir, synchronous)
    result = compare(
        f"invite + accept{'' if synchronous == 'FULL' else ' (informational)'}, "
        f"SQLiteStore, synchronous={synchronous}",
        loop(run.library),
        run.floor.label,
        loop(run.floor),
        run.batches,
        rounds=cfg.rounds,
    )
    return ratio_line(result, 1.5 if synchronous == "FULL" else None)


def invite_accept_wal(cfg: Config, workdir: Path) -> Line:
    """WAL bytes per invite + accept, library against the same rows in lean tables."""
    from .honest import wal_bytes_per_call

    run = _invite_run(cfg, workdir, "FULL")
    n = 20  # 20 calls stay under SQLite's automatic checkpoint of 1,000 pages
    lib = statistics.median(
        wal_bytes_per_call(run.path, run.library, run.fresh(n)) for _ in range(3)
    )
    floor = statistics.median(
        wal_bytes_per_call(run.floor_path, run.floor, run.fresh(n)) for _ in range(3)
    )
    return Line(
        "WAL bytes per invite + accept, synchronous=FULL",
        f"{lib / 1024:.1f} KiB",
        "the same rows in tables with only primary keys",
        f"{floor / 1024:.1f} KiB",
        f"{lib / floor:.2f}x",
        "≤ 1.5x",
        lib / floor <= 1.5,
    )


def invite_accept_small_pages(cfg: Config, workdir: Path) -> Line:
    """``SQLiteStore(page_size=1024)`` against the same honest floor (SQLite's default
    pages): each commit writes a page for every page it changes, a quarter the size."""
    run = _invite_run(cfg, workdir, "FULL", SMALL_PAGES)
    result = compare(
        f"invite + accept, SQLiteStore(page_size={SMALL_PAGES}) (informational), synchronous=FULL",
        loop(run.library),
        run.floor.label,
        loop(run.floor),
        run.batches,
        rounds=cfg.rounds,
    )
    return ratio_line(result, None)


def invite_accept_small_pages_wal(cfg: Config, workdir: Path) -> Line:
    """WAL bytes per invite + accept with ``page_size=1024``, against the floor's (SQLite's
    default pages) and, in the label, against the same floor's rows in 1 KiB pages."""
    from .honest import HonestFloor, wal_bytes_per_call

    run = _invite_run(cfg, workdir, "FULL", SMALL_PAGES)
    n = 20
    lib = statistics.median(
        wal_bytes_per_call(run.path, run.library, run.fresh(n)) for _ in range(3)
    )
    floor = statistics.median(
        wal_bytes_per_call(run.floor_path, run.floor, run.fresh(n)) for _ in range(3)
    )
    small_path = workdir / f"invite-floor-small-{SMALL_PAGES}.db"
    small = HonestFloor(small_path, "FULL", page_size=SMALL_PAGES)
    small_floor = statistics.median(
        wal_bytes_per_call(small_path, small, run.fresh(n)) for _ in range(3)
    )
    return Line(
        f"WAL bytes per invite + accept, SQLiteStore(page_size={SMALL_PAGES}) (informational)",
        f"{lib / 1024:.1f} KiB",
        f"the goal's floor (against the floor in {SMALL_PAGES}-byte pages, "
        f"{small_floor / 1024:.1f} KiB: {lib / small_floor:.2f}x)",
        f"{floor / 1024:.1f} KiB",
        f"{lib / floor:.2f}x",
        "none",
        None,
    )


SMALL_PAGES = 1024


def invite_accept_statements(cfg: Config, workdir: Path) -> Line:
    """SQL statements per invite + accept (BEGIN, COMMIT and PRAGMA included)."""
    from .honest import count_statements

    run = _invite_run(cfg, workdir, "FULL")
    lib = count_statements(run.store.db.conn, run.library, run.fresh(10))
    floor = count_statements(run.floor.conn, run.floor, run.fresh(10))
    return Line(
        "SQL statements per invite + accept",
        f"{lib:.0f} stmts",
        "the floor's",
        f"{floor:.0f} stmts",
        f"{lib / floor:.2f}x",
        "none",
        None,
    )


# -- how much of the gap the library's indexes are (information) ----------------------


def invite_accept_indexed(
    cfg: Config, workdir: Path, synchronous: Literal["FULL", "NORMAL"]
) -> Line:
    """The library against the floor whose tables carry the library's indexes."""
    run = _invite_run(cfg, workdir, synchronous)
    result = compare(
        f"invite + accept against the indexed floor (informational), synchronous={synchronous}",
        loop(run.library),
        run.indexed.label,
        loop(run.indexed),
        run.batches,
        rounds=cfg.rounds,
    )
    return ratio_line(result, None)


def indexed_floor_cost(cfg: Config, workdir: Path, synchronous: Literal["FULL", "NORMAL"]) -> Line:
    """The floor with the library's indexes against the floor: what the indexes cost it."""
    run = _invite_run(cfg, workdir, synchronous)
    result = compare(
        f"invite + accept, indexed floor against the floor (informational), "
        f"synchronous={synchronous}",
        loop(run.indexed),
        "the floor",
        loop(run.floor),
        run.batches,
        rounds=cfg.rounds,
    )
    return ratio_line(result, None)


def invite_accept_indexed_wal(cfg: Config, workdir: Path) -> Line:
    """WAL bytes per invite + accept, library against the floor with its indexes."""
    from .honest import wal_bytes_per_call

    run = _invite_run(cfg, workdir, "FULL")
    n = 20
    lib = statistics.median(
        wal_bytes_per_call(run.path, run.library, run.fresh(n)) for _ in range(3)
    )
    floor = statistics.median(
        wal_bytes_per_call(run.indexed.path, run.indexed, run.fresh(n)) for _ in range(3)
    )
    return Line(
        "WAL bytes per invite + accept against the indexed floor (informational)",
        f"{lib / 1024:.1f} KiB",
        "the floor's rows with the library's indexes",
        f"{floor / 1024:.1f} KiB",
        f"{lib / floor:.2f}x",
        "none",
        None,
    )


def invite_accept_indexed_full(cfg: Config, workdir: Path) -> Line:
    return invite_accept_indexed(cfg, workdir, "FULL")


def invite_accept_indexed_normal(cfg: Config, workdir: Path) -> Line:
    return invite_accept_indexed(cfg, workdir, "NORMAL")


def indexed_floor_cost_full(cfg: Config, workdir: Path) -> Line:
    return indexed_floor_cost(cfg, workdir, "FULL")


def indexed_floor_cost_normal(cfg: Config, workdir: Path) -> Line:
    return indexed_floor_cost(cfg, workdir, "NORMAL")


# -- import teamaccess vs import attrs ---------------------------------------------


def import_time(cfg: Config, workdir: Path) -> list[Line]:
    """``import teamaccess`` against ``import attrs``, its one dependency that every import
    needs: what is left is the library's own share (its modules, the stdlib modules it
    pulls in, email-validator or itsdangerous if it imported them eagerly).

    Two lines from the same rounds: the goal's, each side a whole interpreter from start
    to exit (so the added modules' teardown is counted too), and for information the
    import alone, timed inside an interpreter that has already imported attrs, which the
    start and exit of a process, and their noise, leave out."""
    # Measured with bytecode cached, as on any installed system: both sides read their
    # .pyc files from one private cache, even where PYTHONDONTWRITEBYTECODE is set. An
    # editable install reads the same files as a wheel's (docs/performance.md, "the
    # import figure, paired"), so the figure holds for an installed package too.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pyc")
    alone = (
        "import attrs, time; t = time.perf_counter_ns(); import teamaccess; "
        "print(time.perf_counter_ns() - t)"
    )

    def run(code: str) -> float:
        t0 = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return (time.perf_counter_ns() - t0) / 1e6

    def run_alone() -> float:
        out = subprocess.run(
            [sys.executable, "-c", alone], check=True, env=env, capture_output=True, text=True
        ).stdout
        return int(out) / 1e6

    bare: list[float] = []
    full: list[float] = []
    inside: list[float] = []
    for _ in range(2):  # compile the .pyc files, outside the figure
        run("import teamaccess")
    for i in range(cfg.import_runs):
        pair = [(bare, "import attrs"), (full, "import teamaccess")]
        for samples, code in pair if i % 2 else pair[::-1]:
            samples.append(run(code))
        inside.append(run_alone())  # after the pair, so the pair stays neighbours
    # Each round's two runs are neighbours in time, so the difference within a round
    # cancels much of the load both met; the difference of the two sides' medians does
    # not: its bootstrap interval came out 1.1 to 4 times as wide, 1.6 times in the
    # median (docs/performance.md, "The import figure, paired").
    paired = [f - b for b, f in zip(bare, full, strict=True)]
    added = statistics.median(paired)
    low, _, high = statistics.quantiles(paired, n=4)
    in_low, _, in_high = statistics.quantiles(inside, n=4)
    return [
        Line(
            f"import teamaccess (subprocess), the rounds' differences {low:+.1f} to "
            f"{high:+.1f} ms (IQR)",
            f"{statistics.median(full):.1f} ms",
            "python -c 'import attrs'",
            f"{statistics.median(bare):.1f} ms",
            # Signed: on a loaded machine the bare import can come out the slower one.
            f"{added:+.1f} ms",
            f"≤ +{IMPORT_OVER_ATTRS_MS:g} ms",
            added <= IMPORT_OVER_ATTRS_MS,
        ),
        Line(
            "import teamaccess after attrs, in the process (informational), "
            f"{in_low:.1f} to {in_high:.1f} ms (IQR)",
            f"{statistics.median(inside):.1f} ms",
            "nothing: no process start or exit",
            "0.0 ms",
            f"+{statistics.median(inside):.1f} ms",
            "none",
            None,
        ),
    ]


IMPORT_OVER_ATTRS_MS = 15


def invite_accept_full(cfg: Config, workdir: Path) -> Line:
    """The default durability: every commit but the delivery record fsynced, both sides."""
    return invite_accept(cfg, workdir, "FULL")


def invite_accept_normal(cfg: Config, workdir: Path) -> Line:
    """``SQLiteStore(synchronous="NORMAL")``, and the floor's connection set alike; shown
    for information (no commit waits for the disk, so the Python work weighs more)."""
    return invite_accept(cfg, workdir, "NORMAL")


def invite_accept_memory(cfg: Config, workdir: Path) -> Line:
    """MemoryStore stays flat as a test suite fills it: many stored invitations against few."""
    from . import memstore

    return ratio_line(memstore.run(cfg, workdir, team_on), memstore.GROWTH)


def bulk_import(cfg: Config, workdir: Path) -> Line:
    """import_accounts() against plain sqlite3 writing the same rows, a transaction per
    chunk of accounts."""
    from . import bulk

    result = bulk.run_import(workdir, cfg.import_accounts, cfg.import_chunk)
    return ratio_line(result, bulk.GOAL)


def bulk_batch(cfg: Config, workdir: Path) -> Line:
    """For comparison: invite + accept in team.batch() against the rows it leaves."""
    from . import bulk

    result = bulk.run(workdir, cfg.bulk_accounts, cfg.bulk_rounds)
    return ratio_line(result, bulk._INFO)


#: The invite + accept figures, which ``--only-invite`` prints alone.
INVITE_ACCEPT: tuple[Callable[[Config, Path], Line], ...] = (
    invite_accept_full,
    invite_accept_normal,
    invite_accept_wal,
    invite_accept_statements,
    # for information, after the goal's figures so they run as before
    invite_accept_indexed_full,
    indexed_floor_cost_full,
    invite_accept_indexed_normal,
    indexed_floor_cost_normal,
    invite_accept_indexed_wal,
    invite_accept_small_pages,
    invite_accept_small_pages_wal,
)


def run_all(cfg: Config, workdir: Path) -> list[Line]:
    lines: list[Line] = []
    # import_time gives two lines from the same rounds
    benches: tuple[Callable[[Config, Path], Line | list[Line]], ...] = (
        can_memory,
        can_sqlite,
        can_scoped_sqlite,
        *INVITE_ACCEPT,
        recipients_sqlite,
        import_time,
        invite_accept_memory,
        bulk_import,
        bulk_batch,
    )
    for bench in benches:
        made = bench(cfg, workdir)
        for line in made if isinstance(made, list) else [made]:
            print(line.row(), flush=True)
            lines.append(line)
    return lines

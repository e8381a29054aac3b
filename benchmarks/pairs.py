"""The paired figures: each library call against its floor, measured A B A B in one run."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teamaccess import Catalog, MemoryStore, TeamAccess

from ._data import SECRET, NullMailer, Population, populate
from ._timing import Result, compare, fmt_ns, loop


@dataclass(frozen=True)
class Config:
    accounts: int  # accounts populated for the can() and recipients() figures
    rounds: int  # A B rounds per figure
    batch: int  # calls per timed batch (cheap calls)
    slow_batch: int  # calls per timed batch (invite + accept)
    import_runs: int  # subprocess runs per side for the import figure


QUICK = Config(accounts=20, rounds=5, batch=200, slow_batch=5, import_runs=3)
FULL = Config(accounts=300, rounds=60, batch=2000, slow_batch=20, import_runs=40)


@dataclass
class Line:
    """One printed line: a figure, its floor, and the goal it is held to."""

    what: str
    value: str
    floor_what: str
    floor_value: str
    measure: str  # "1.23x" or "+12.3 ms"
    goal: str
    passed: bool

    def row(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return (
            f"| {self.what} | {self.value} | {self.floor_what} | {self.floor_value} | "
            f"{self.measure} | {self.goal} | {verdict} |"
        )


HEADER = (
    "| figure | median | floor | floor median | ratio | goal | |\n|---|---:|---|---:|---:|---|---|"
)


def ratio_line(result: Result, limit: float) -> Line:
    return Line(
        result.name,
        fmt_ns(result.median),
        result.floor_name,
        fmt_ns(result.floor_median),
        f"{result.ratio:.2f}x",
        f"≤ {limit:g}x",
        result.ratio <= limit,
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


# -- import teamaccess vs python -c pass -------------------------------------------


def import_time(cfg: Config, workdir: Path) -> Line:
    # Measured with bytecode cached, as on any installed system: both sides read their
    # .pyc files from one private cache, even where PYTHONDONTWRITEBYTECODE is set.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pyc")

    def run(code: str) -> float:
        t0 = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return (time.perf_counter_ns() - t0) / 1e6

    bare: list[float] = []
    full: list[float] = []
    for _ in range(2):  # compile the .pyc files, outside the figure
        run("import teamaccess")
    for i in range(cfg.import_runs):
        pair = [(bare, "pass"), (full, "import teamaccess")]
        for samples, code in pair if i % 2 else pair[::-1]:
            samples.append(run(code))
    added = statistics.median(full) - statistics.median(bare)
    return Line(
        "import teamaccess (subprocess)",
        f"{statistics.median(full):.1f} ms",
        "python -c pass",
        f"{statistics.median(bare):.1f} ms",
        f"+{added:.1f} ms",
        "≤ +60 ms",
        added <= 60,
    )


def run_all(cfg: Config, workdir: Path) -> list[Line]:
    lines = []
    for bench in (can_memory, import_time):
        line = bench(cfg, workdir)
        print(line.row(), flush=True)
        lines.append(line)
    return lines

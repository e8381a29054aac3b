"""Many processes on one SQLite file: 1, 2 and 4 processes calling ``can()``, with and
without a writer process (``set_permissions`` and invite + accept), against the same
processes running the raw query.

How it stays judgeable on a small, shared machine:

- **One set of processes per configuration, both sides in each.** Every reader process
  opens the file twice, once through ``TeamAccess`` and once as a panel would with plain
  ``sqlite3``, and is told which side to run in each window. The same processes, the same
  memory and the same questions serve both sides; nothing is started between windows.
- **Short windows, interleaved.** A round is one library window and one raw window,
  back to back, the order flipping every round (A B, B A, ...); a configuration runs many
  rounds after a warm-up one. Load from elsewhere falls on both sides of a round alike.
  Each figure is the median over rounds; each ratio is the median of the rounds' own
  ratios, printed with their interquartile range, so the noise can be seen beside it.
- **Same work on both sides.** Both connections use the same settings (checked: WAL, busy
  timeout, cache, synchronous, ...), and give the same answers to the same questions
  (checked on the first 200). The writer is one process running the library's
  ``set_permissions`` and invite + accept through every window of both sides; its rounds
  are counted per window, so a writer slowed in one side's windows shows.
- **Any error fails the run.** An exception in a reader or the writer, a process that
  dies or does not answer, a setting or an answer that differs: each is an error, and
  ``python -m benchmarks`` exits non-zero when there is one.

With 4 readers and a writer on 2 cores the figures measure the scheduler as much as
``can()``: five busy processes take turns on two cores, and a call that loses its core
mid-way waits a time slice, which is what the p99 then shows.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import time
import traceback
from array import array
from pathlib import Path
from typing import Any

from ._data import SECRET, NullMailer

RATIO = 1.2  # throughput and p99 within this of the raw query
# The writer's pace, in rounds (set_permissions + invite + accept: four commits) a second.
# Every commit makes each reader drop its page cache (SQLite does so when a read finds the
# file changed), so the calls after it are slower; a writer running flat out writes more
# in some windows than in others, and the p99 follows the writes, not the side. At a fixed
# pace each window gets the same writes. Below what the writer manages here under load.
WRITER_RATE = 10.0
#: The connection settings both sides must share (read back from each connection).
SETTINGS = (
    "journal_mode",
    "busy_timeout",
    "cache_size",
    "synchronous",
    "mmap_size",
    "foreign_keys",
    "secure_delete",
    "temp_store",
    "locking_mode",
    "query_only",
    "read_uncommitted",
)
_LEAD_NS = 20_000_000  # a window starts this long after it is announced, for all at once
_TIMEOUT = 120.0  # seconds a process may take to answer before it counts as an error


class PanelQueries:
    """The raw side: ``can()``'s question by one statement on a connection opened as a
    panel opens one (WAL, a busy timeout, autocommit), with the library's settings."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        from ._raw import CAN_SQL

        self._sql = CAN_SQL
        self.conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            "secure_delete = ON",
        ):
            self.conn.execute(f"PRAGMA {pragma}")

    def can(self, user_id: str, account_id: str, permission: str) -> bool:
        row = self.conn.execute(self._sql, (account_id, user_id)).fetchone()
        # permissions are stored as JSON: '"*"' for all, else a list of quoted names
        return row is not None and (row[0] == '"*"' or f'"{permission}"' in row[0])


def settings(conn: Any) -> dict[str, Any]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in SETTINGS}


def _reader(path: str, args: list[tuple[str, str, str]], pipe: Any) -> None:
    """Open both sides, check they agree, then run the windows the pipe announces."""
    try:
        from teamaccess import SQLiteStore, TeamAccess

        store = SQLiteStore(path)
        team = TeamAccess(store, NullMailer(), secret_key=SECRET)
        raw = PanelQueries(path)
        problems = []
        mine, theirs = settings(store.db.conn), settings(raw.conn)
        if mine != theirs:
            problems.append(f"connection settings differ: library {mine}, raw {theirs}")
        for a in args[:200]:
            if team.can(*a) != raw.can(*a):
                problems.append(f"answers differ for {a}")
                break
        sides = {"library": team.can, "raw": raw.can}
    except Exception:
        pipe.send(("failed", [traceback.format_exc()]))
        return
    pipe.send(("ready", problems))
    at = {"library": 0, "raw": 0}  # each side walks the same questions in the same order
    n = len(args)
    clock = time.perf_counter_ns
    while True:
        try:
            order = pipe.recv()
        except EOFError:  # the coordinator gave up (it counts that as an error itself)
            return
        if order is None:
            return
        side, start, end = order
        ask = sides[side]
        # The window is in monotonic time, shared by the processes; the calls are timed
        # with perf_counter, so translate once rather than read two clocks per call.
        shift = clock() - time.monotonic_ns()
        start, end = start + shift, end + shift
        wait = start - clock()
        if wait > 0:
            time.sleep(wait / 1e9)
        lat = array("q")
        errors: list[str] = []
        i = at[side]
        t1 = 0
        while t1 < end:
            a = args[i]
            i = i + 1 if i + 1 < n else 0
            t0 = clock()
            try:
                ask(*a)
            except Exception as exc:  # any error counts; the goal is none
                errors.append(f"{type(exc).__name__}: {exc}")
            t1 = clock()
            lat.append(t1 - t0)
        at[side] = i
        pipe.send((len(lat), lat.tobytes(), errors))


def _writer(path: str, accounts: list[tuple[str, str, list[str]]], rate: float,
            pipe: Any) -> None:  # fmt: skip
    """set_permissions and invite + accept, round robin, *rate* rounds a second (as fast
    as it can if 0), until the pipe says stop."""
    errors: list[str] = []
    done = array("q")  # monotonic end time of each completed round
    try:
        from teamaccess import PermissionSet, SQLiteStore, TeamAccess

        team = TeamAccess(SQLiteStore(path), NullMailer(), secret_key=SECRET, rate_limit=10**9)
        rng = random.Random()  # seeded afresh: each run invites addresses of its own
        choices = [PermissionSet.of("billing.view"), PermissionSet.of("support.tickets")]
        import email_validator  # noqa: F401  (loaded before the clock starts, as in a server)
        import itsdangerous  # noqa: F401
    except Exception:
        pipe.send(("failed", [traceback.format_exc()]))
        return
    pipe.send(("ready", []))
    k = 0
    due = time.monotonic()
    # Waiting for the stop order is the pause between rounds. Behind schedule, the next
    # round starts at once but the missed ones are dropped, not made up in a burst.
    while not pipe.poll(max(0.0, due - time.monotonic())):
        due = max(due + 1 / rate, time.monotonic()) if rate else due
        acc, owner, users = accounts[k % len(accounts)]
        k += 1
        try:
            team.set_permissions(acc, rng.choice(users), rng.choice(choices), actor_id=owner)
            email = f"w{k}-{rng.getrandbits(64):x}@writer.example"
            inv = team.invite(acc, actor_id=owner, email=email, permissions=choices[0])
            team.accept_invitation(inv.token or "", user_id=f"w{k}-{email}", email=email)
            done.append(time.monotonic_ns())
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            if len(errors) > 1000:  # a writer failing every time: enough to judge
                break
    try:
        pipe.recv()
        pipe.send((done.tobytes(), errors))
    except (EOFError, OSError):  # the coordinator gave up (it counts that as an error)
        return


def _answer(pipe: Any, proc: Any, what: str) -> Any:
    """The next message from a worker, or an error if it died or stays silent."""
    if pipe.poll(_TIMEOUT):
        try:
            return pipe.recv()
        except EOFError:
            pass
    raise RuntimeError(f"{what} (pid {proc.pid}) died or did not answer; exit {proc.exitcode}")


def _p99(values: list[int]) -> float:
    values.sort()
    return float(values[min(len(values) - 1, int(len(values) * 0.99))]) if values else 0.0


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (0.0, 0.0, 0.0)
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def measure(path: Path, procs: int, writer: bool, args: list[tuple[str, str, str]],
            accounts: list[tuple[str, str, list[str]]], *, rounds: int, seconds: float,
            warmup: int = 1, rate: float = WRITER_RATE) -> dict[str, Any]:  # fmt: skip
    """One configuration: *procs* readers (and the writer, *rate* rounds a second), *rounds*
    measured rounds of a library and a raw window of *seconds* each, after *warmup*."""
    ctx = mp.get_context("spawn")  # fresh interpreters, as separate panel processes are
    errors: list[str] = []
    workers = []
    for i in range(procs):
        here, there = ctx.Pipe()
        p = ctx.Process(target=_reader, args=(str(path), args[i::procs], there), daemon=True)
        workers.append((p, here, f"reader {i + 1}"))
    if writer:
        here, there = ctx.Pipe()
        p = ctx.Process(target=_writer, args=(str(path), accounts, rate, there), daemon=True)
        workers.append((p, here, "writer"))
    for p, _pipe, _what in workers:
        p.start()
    got: dict[str, dict[str, list[float]]] = {
        side: {"tput": [], "p99": [], "writes": []} for side in ("library", "raw")
    }
    windows: list[tuple[str, int, int, int]] = []  # (side, round, start, end)
    try:
        for p, pipe, what in workers:
            state, problems = _answer(pipe, p, what)
            errors += [f"{what}: {e}" for e in problems]
            if state == "failed":
                raise RuntimeError(f"{what} could not start")
        readers = [w for w in workers if w[2] != "writer"]
        for r in range(warmup + rounds):
            order = ("library", "raw") if r % 2 == 0 else ("raw", "library")
            for side in order:
                start = time.monotonic_ns() + _LEAD_NS
                end = start + int(seconds * 1e9)
                for _p, pipe, _what in readers:
                    pipe.send((side, start, end))
                calls, lat = 0, list[int]()
                for p, pipe, what in readers:
                    n, raw_lat, problems = _answer(pipe, p, what)
                    calls += n
                    lat += array("q", raw_lat)
                    errors += [f"{what}: {e}" for e in problems]
                if r >= warmup:
                    got[side]["tput"].append(calls / seconds)
                    got[side]["p99"].append(_p99(lat))
                    windows.append((side, r, start, end))
        for _p, pipe, _what in readers:
            pipe.send(None)
        if writer:
            p, pipe, what = workers[-1]
            pipe.send("stop")
            raw_done, problems = _answer(pipe, p, what)
            errors += [f"{what}: {e}" for e in problems]
            done = array("q", raw_done)
            for side, _r, start, end in windows:
                writes = sum(1 for t in done if start <= t < end)
                got[side]["writes"].append(writes / seconds)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        for p, pipe, what in workers:
            pipe.close()  # a worker still waiting for an order sees the end and returns
            p.join(10)
            if p.is_alive():  # only our own children, by their handle
                p.kill()
                p.join()
                errors.append(f"{what} did not stop and was killed")
            elif p.exitcode:
                errors.append(f"{what} exited with {p.exitcode}")
    lib, raw = got["library"], got["raw"]
    tput_ratios = [b / a for a, b in zip(lib["tput"], raw["tput"], strict=True) if a]
    p99_ratios = [a / b for a, b in zip(lib["p99"], raw["p99"], strict=True) if b]
    med = statistics.median
    return {
        "procs": procs,
        "writer": writer,
        "tput": med(lib["tput"]) if lib["tput"] else 0.0,
        "raw_tput": med(raw["tput"]) if raw["tput"] else 0.0,
        "p99": med(lib["p99"]) if lib["p99"] else 0.0,
        "raw_p99": med(raw["p99"]) if raw["p99"] else 0.0,
        "tput_ratio": _quartiles(tput_ratios),
        "p99_ratio": _quartiles(p99_ratios),
        "writes": med(lib["writes"]) if lib["writes"] else 0.0,
        "raw_writes": med(raw["writes"]) if raw["writes"] else 0.0,
        "rounds": len(tput_ratios),
        "errors": errors,
    }


def passed(row: dict[str, Any]) -> bool:
    """The goal: both medians of the rounds' ratios within RATIO, all rounds run, no error."""
    return (
        not row["errors"]
        and row["rounds"] > 0
        and row["tput_ratio"][1] <= RATIO
        and row["p99_ratio"][1] <= RATIO
    )


def run(path: Path, pop: Any, names: tuple[str, ...], *, rounds: int, seconds: float,
        counts: tuple[int, ...] = (1, 2, 4), writers: tuple[bool, ...] = (False, True)
        ) -> list[dict[str, Any]]:  # fmt: skip
    """Every configuration, without the writer first, each as :func:`measure`."""
    rng = random.Random(11)
    args = pop.can_args(20_000, rng, names)
    accounts = [
        (acc, pop.members[acc][0][0], [u for u, _ in pop.members[acc][1:]])
        for acc in pop.accounts[:50]
    ]
    return [
        measure(path, procs, writer, args, accounts, rounds=rounds, seconds=seconds)
        for writer in writers
        for procs in counts
    ]


def machine() -> str:
    """Cores and load, printed beside the figures: with more busy processes than cores
    the scheduler decides much of what is measured."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"

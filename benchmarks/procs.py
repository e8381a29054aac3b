"""Many processes on one SQLite file: 1, 2 and 4 processes calling ``can()``, with and
without a writer process (``set_permissions`` and invite + accept), against the same
processes running the raw query. Rounds alternate library and raw, so load from
elsewhere falls on both."""

from __future__ import annotations

import multiprocessing as mp
import random
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

from ._data import SECRET, NullMailer

RATIO = 1.2  # throughput and p99 within this of the raw query


def _reader(path: str, side: str, args: list[tuple[str, str, str]], ready: Any, start: Any,
            stop: Any, out: Any) -> None:  # fmt: skip
    """Call can() (or the raw query) until *stop*; report calls, latencies and errors."""
    errors: list[str] = []
    lat: list[int] = []
    try:
        if side == "library":
            from teamaccess import SQLiteStore, TeamAccess

            team = TeamAccess(SQLiteStore(path), NullMailer(), secret_key=SECRET)
            ask = team.can
        else:
            from ._raw import RawQueries

            ask = RawQueries(path).can
        n = len(args)
        i = 0
        clock = time.perf_counter_ns
        ask(*args[0])  # the first call opens the file; then say ready
        ready.put(1)
        start.wait()
        while not stop.is_set():
            for _ in range(200):
                a = args[i % n]
                i += 1
                t0 = clock()
                try:
                    ask(*a)
                except Exception as exc:  # any error counts; the goal is none
                    errors.append(f"{type(exc).__name__}: {exc}")
                lat.append(clock() - t0)
    except Exception:
        errors.append(traceback.format_exc())
        ready.put(1)
    out.put((len(lat), lat[:: max(1, len(lat) // 20000)], sorted(lat)[int(len(lat) * 0.99)]
             if lat else 0, errors))  # fmt: skip


def _writer(path: str, accounts: list[tuple[str, str, list[str]]], ready: Any, start: Any,
            stop: Any, out: Any) -> None:  # fmt: skip
    """set_permissions and invite + accept, round robin, until *stop*."""
    errors: list[str] = []
    done = 0
    try:
        from teamaccess import PermissionSet, SQLiteStore, TeamAccess

        team = TeamAccess(SQLiteStore(path), NullMailer(), secret_key=SECRET, rate_limit=10**9)
        rng = random.Random()  # seeded afresh: each run invites addresses of its own
        choices = [PermissionSet.of("billing.view"), PermissionSet.of("support.tickets")]
        import email_validator  # noqa: F401  (loaded before the clock starts, as in a server)
        import itsdangerous  # noqa: F401

        ready.put(1)
        start.wait()
        k = 0
        while not stop.is_set():
            acc, owner, users = accounts[k % len(accounts)]
            k += 1
            try:
                team.set_permissions(acc, rng.choice(users), rng.choice(choices), actor_id=owner)
                email = f"w{k}-{rng.getrandbits(64):x}@writer.example"
                inv = team.invite(acc, actor_id=owner, email=email, permissions=choices[0])
                team.accept_invitation(inv.token or "", user_id=f"w{k}-{email}", email=email)
                done += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    except Exception:
        errors.append(traceback.format_exc())
        ready.put(1)
    out.put((done, errors))


def _run(path: Path, side: str, procs: int, writer: bool, seconds: float,
         args: list[tuple[str, str, str]], accounts: list[Any]) -> dict[str, Any]:  # fmt: skip
    ctx = mp.get_context("spawn")
    start, stop, out, wout = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    ready = ctx.Queue()
    workers = [
        ctx.Process(target=_reader, args=(str(path), side, args[i::procs], ready, start, stop, out))
        for i in range(procs)
    ]
    if writer:
        workers.append(
            ctx.Process(target=_writer, args=(str(path), accounts, ready, start, stop, wout))
        )
    for w in workers:
        w.start()
    for _ in workers:  # every process has imported and opened the file
        ready.get(timeout=120)
    start.set()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    results = [out.get(timeout=60) for _ in range(procs)]
    elapsed = time.perf_counter() - t0
    written = wout.get(timeout=60) if writer else (0, [])
    for w in workers:
        w.join(60)
    calls = sum(r[0] for r in results)
    samples = [x for r in results for x in r[1]]
    errors = [e for r in results for e in r[3]] + written[1]
    return {
        "throughput": calls / elapsed,
        "p99": statistics.quantiles(samples, n=100)[98] if len(samples) > 100 else 0.0,
        "errors": errors,
        "writes": written[0],
    }


def run(path: Path, pop: Any, names: tuple[str, ...], seconds: float, repeats: int
        ) -> list[dict[str, Any]]:  # fmt: skip
    """For each configuration, the medians over *repeats* alternating library/raw runs."""
    rng = random.Random(11)
    args = pop.can_args(20_000, rng, names)
    accounts = [
        (acc, pop.members[acc][0][0], [u for u, _ in pop.members[acc][1:]])
        for acc in pop.accounts[:50]
    ]
    rows = []
    for writer in (False, True):
        for procs in (1, 2, 4):
            got: dict[str, list[dict[str, Any]]] = {"library": [], "raw": []}
            for r in range(repeats):
                order = ("library", "raw") if r % 2 == 0 else ("raw", "library")
                for side in order:
                    got[side].append(_run(path, side, procs, writer, seconds, args, accounts))
            lib, raw = got["library"], got["raw"]
            row = {
                "procs": procs,
                "writer": writer,
                "tput": statistics.median(x["throughput"] for x in lib),
                "raw_tput": statistics.median(x["throughput"] for x in raw),
                "p99": statistics.median(x["p99"] for x in lib),
                "raw_p99": statistics.median(x["p99"] for x in raw),
                "errors": [e for x in lib + raw for e in x["errors"]],
                "writes": sum(x["writes"] for x in lib + raw),
            }
            row["tput_ratio"] = row["raw_tput"] / row["tput"]
            row["p99_ratio"] = row["p99"] / row["raw_p99"] if row["raw_p99"] else 0.0
            rows.append(row)
    return rows

"""The scale curve: one SQLite file per size, each size measured in a fresh process.

``python -m benchmarks.scale build PATH ACCOUNTS`` writes the file;
``python -m benchmarks.scale measure PATH ACCOUNTS ROUNDS`` opens it in a new process,
times ``can()`` and ``recipients()`` against their raw-SQL floors and prints one JSON line
with the process's peak RSS, so the memory figure is that of a process that only serves
requests, not of the one that built the file.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._data import CATEGORIES, GRANTS, SECRET, NullMailer, page_size

MEMBERS = 10  # per account, the owner included
CONTACTS = 3  # per account
BATCH = 1000  # accounts per unit of work while building
START = datetime(2026, 1, 1, tzinfo=UTC)


def account_id(i: int) -> str:
    # Spread like the library's random ids, so the index is filled out of order as in life.
    return "acc_" + hashlib.sha256(str(i).encode()).hexdigest()[:20]


def build(path: Path, accounts: int) -> None:
    """Write *accounts* accounts of ten members and three contacts, in units of work.

    ``TeamAccess.invite`` + ``accept_invitation`` for a million members would take hours
    on a small machine (each is a signed token, a mail and three commits), so the file is
    loaded through the public ``Store``/``UnitOfWork`` port with public domain objects,
    a thousand accounts per transaction. Addresses are lowercase ASCII, so each is its own
    comparison key (``normalize_email(a).key == a``), checked on a sample below.
    """
    from teamaccess import Account, Contact, Member, PermissionSet, SQLiteStore, normalize_email

    assert normalize_email("user7-3@kunde7.example").key == "user7-3@kunde7.example"
    store = SQLiteStore(str(path), page_size=page_size())
    try:
        for first in range(0, accounts, BATCH):
            with store.begin() as uow:
                for a in range(first, min(first + BATCH, accounts)):
                    acc = account_id(a)
                    at = START + timedelta(seconds=a)
                    owner_email = f"chef{a}@kunde{a}.example"
                    uow.add_account(
                        Account(
                            id=acc,
                            name=f"Kunde {a} GmbH",
                            owner_id=f"owner{a}",
                            owner_email=owner_email,
                            created_at=at,
                        )
                    )
                    uow.add_member(
                        Member(
                            account_id=acc,
                            user_id=f"owner{a}",
                            email=owner_email,
                            role="owner",
                            permissions=PermissionSet.all(),
                            joined_at=at,
                        ),
                        owner_email,
                    )
                    for m in range(1, MEMBERS):
                        email = f"user{a}-{m}@kunde{a}.example"
                        uow.add_member(
                            Member(
                                account_id=acc,
                                user_id=f"user{a}-{m}",
                                email=email,
                                role="member",
                                permissions=GRANTS[m % len(GRANTS)],
                                joined_at=at,
                                granted_by=f"owner{a}",
                            ),
                            email,
                        )
                    for c in range(CONTACTS):
                        email = f"kontakt{c}@kunde{a}.example"
                        uow.add_contact(
                            Contact(
                                id=f"con_{acc[4:]}{c}",
                                account_id=acc,
                                name=f"Kontakt {c}",
                                email=email,
                                categories=frozenset(CATEGORIES[c % len(CATEGORIES)]),
                                created_at=at,
                            ),
                            email,
                        )
                uow.commit()
    finally:
        store.close()


def _questions(
    rng: random.Random, pool: Sequence[int], n: int
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """*n* ``can()`` and *n* ``recipients()`` questions about accounts drawn from *pool*."""
    from teamaccess import Catalog

    names = Catalog.default().names()
    can_args = []
    for _ in range(n):
        a = rng.choice(pool)
        m = rng.randrange(MEMBERS)
        user = f"owner{a}" if m == 0 else f"user{a}-{m}"
        can_args.append((user, account_id(a), rng.choice(names)))
    rec_args = [(account_id(rng.choice(pool)), "billing") for _ in range(n)]
    return can_args, rec_args


def measure(path: Path, accounts: int, rounds: int, batch: int, active: int) -> dict[str, Any]:
    """Time ``can()`` and ``recipients()`` against their floors, twice: over accounts
    drawn uniformly from the whole file, and over a fixed working set of *active*
    accounts (the same number at every size) drawn once from the whole file."""
    from teamaccess import SQLiteStore, TeamAccess

    from . import _raw
    from ._timing import compare, loop

    rng = random.Random(accounts)
    can_args, rec_args = _questions(rng, range(accounts), 4 * batch)
    working_set = rng.sample(range(accounts), active)
    can_active, rec_active = _questions(rng, working_set, 4 * batch)

    store = SQLiteStore(str(path), page_size=page_size())
    team = TeamAccess(store, NullMailer(), secret_key=SECRET)
    raw = _raw.RawQueries(path)
    try:
        for c in can_args[:100] + can_active[:100]:
            assert team.can(*c) == raw.can(*c), c
        for r in rec_args[:100] + rec_active[:100]:
            assert team.recipients(*r) == raw.recipients(*r), r

        def pair(name: str, lib: Any, floor: Any, args: list[Any]) -> Any:
            def batches(_round: int) -> tuple[list[Any], list[Any]]:
                sample = rng.sample(args, batch)
                return sample, sample

            return compare(name, loop(lib), "raw", loop(floor), batches, rounds=rounds)

        can = pair("can()", team.can, raw.can, can_args)
        rec = pair("recipients()", team.recipients, raw.recipients, rec_args)
        can_ws = pair("can(), active set", team.can, raw.can, can_active)
        rec_ws = pair("recipients(), active set", team.recipients, raw.recipients, rec_active)
    finally:
        raw.close()
        store.close()
    return {
        "accounts": accounts,
        "members": accounts * MEMBERS,
        "file_bytes": sum(
            p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()
        ),
        "can_ns": can.median,
        "can_raw_ns": can.floor_median,
        "recipients_ns": rec.median,
        "recipients_raw_ns": rec.floor_median,
        "active_can_ns": can_ws.median,
        "active_can_raw_ns": can_ws.floor_median,
        "active_recipients_ns": rec_ws.median,
        "active_recipients_raw_ns": rec_ws.floor_median,
        "peak_rss_kib": peak_rss_kib(),
    }


TIMES = (
    "can_ns",
    "can_raw_ns",
    "recipients_ns",
    "recipients_raw_ns",
    "active_can_ns",
    "active_can_raw_ns",
    "active_recipients_ns",
    "active_recipients_raw_ns",
)


def peak_rss_kib() -> int:
    """This process's peak resident set, in KiB.

    Linux's ``VmHWM`` belongs to the process image and starts afresh at ``exec``;
    ``getrusage().ru_maxrss`` does not: a child spawned by a big parent reports the
    parent's peak (measured here: 410 MiB for a child that used 9). It is used only where
    there is no ``/proc``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def build_point(workdir: Path, accounts: int) -> tuple[Path, float]:
    """Build the file for *accounts* in a subprocess; its path and the seconds it took."""
    path = workdir / f"scale-{accounts}.db"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.scale", "build", str(path), str(accounts)],
                   check=True)  # fmt: skip
    return path, time.perf_counter() - t0


def measure_point(
    path: Path, accounts: int, rounds: int, batch: int, active: int
) -> dict[str, Any]:
    """Measure one file in a fresh subprocess, so its peak RSS is that of serving alone."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "measure", str(path), str(accounts),
         str(rounds), str(batch), str(active)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    point: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return point


def curve(
    workdir: Path, sizes: tuple[int, ...], *, repeats: int, rounds: int, batch: int
) -> list[dict[str, Any]]:
    """Every size built first, then measured *repeats* times in rotation (1k, 10k, 100k,
    1k, ...), so a burst of load from elsewhere hits every size alike; the median of the
    repeats is kept for each time, the largest for memory. The active set is a tenth of
    the smallest size's accounts, the same number at every size."""
    active = max(1, min(sizes) // 10)
    built = {size: build_point(workdir, size) for size in sizes}
    runs: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            runs[size].append(measure_point(built[size][0], size, rounds, batch, active))
    points = []
    for size in sizes:
        point = dict(runs[size][0])
        point["active"] = active
        for key in TIMES:
            point[key] = statistics.median(r[key] for r in runs[size])
        point["peak_rss_kib"] = max(r["peak_rss_kib"] for r in runs[size])
        point["build_s"] = built[size][1]
        points.append(point)
        built[size][0].unlink()
    return points


def main(argv: list[str]) -> None:
    command, path = argv[0], Path(argv[1])
    if command == "build":
        build(path, int(argv[2]))
    elif command == "measure":
        print(json.dumps(measure(path, *(int(a) for a in argv[2:6]))))
    else:
        raise SystemExit(f"unknown command {command!r}; use build or measure")


if __name__ == "__main__":
    main(sys.argv[1:])

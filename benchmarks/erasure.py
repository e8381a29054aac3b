"""What an erasure costs on a large store: the whole call, and the part inside its write
unit, where other writers may wait for it.

    python -m benchmarks.erasure --backend sqlite --accounts 100000 --runs 5 \\
        [--code OTHER_TREE ...] [--self]

The data is made once: *accounts* accounts, each with its owner, two members with
metadata, two contacts and an invitation with a note, its mail sent; the person to
erase is a member of three accounts, has a contact and a waiting invitation in two
more, and others' free text names them in four more. Each run erases the person from a
fresh copy of it: a copied file, or on PostgreSQL a database made from the first as a
template, on the server of ``TEAMACCESS_BENCH_POSTGRES`` or else
``TEAMACCESS_TEST_POSTGRES`` (both databases are dropped at the end). With ``--code``,
each tree's ``src`` (this one's first) runs in turn, a subprocess each, so code before
and after a change alternate in one sitting. ``--writer S``: another connection commits
a write every S seconds meanwhile (PostgreSQL's snapshot then changes all the time).
``--self`` erases as the person themselves (``actor_id`` equal to the user id, with an
address), else as ``teamaccess.SYSTEM``. Printed per run: the whole erasure, the write
unit, and the calls and time of ``changed_accounts()`` and ``outbox_since()`` inside
it; then each tree's spread (lowest-highest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from teamaccess import SYSTEM, PermissionSet, Store, TeamAccess

from ._data import SECRET, NullMailer

PIA = "pia-user"
PIA_EMAIL = "pia.person@victim.example"
CHUNK = 2000
TIMED = ("changed_accounts", "outbox_since")


def _rows(first: int, count: int) -> list[dict[str, Any]]:
    rows = []
    for a in range(first, first + count):
        members = [
            {
                "user_id": f"u{a}-{m}",
                "email": f"u{a}-{m}@kunde{a}.example",
                "permissions": ["billing.view"],
                "metadata": {"crm": f"C-{a}-{m}", "note": f"seit {2000 + m}, Filiale {a % 97}"},
            }
            for m in (1, 2)
        ]
        if a in (1, 2, 3):
            members.append({"user_id": PIA, "email": PIA_EMAIL, "permissions": []})
        if a in (10, 11):
            members[0]["metadata"] = {"crm": f"C-{a}", "note": f"vertritt {PIA_EMAIL}"}
        contacts = [
            {
                "name": f"Kontakt {a}-{c}",
                "email": f"k{a}-{c}@kunde{a}.example",
                "categories": ["billing"],
                "phone": f"+49 30 {a:06d}{c}",
                "role": "Buchhaltung",
            }
            for c in (1, 2)
        ]
        if a in (20, 21):
            contacts[1]["role"] = f"in Vertretung von {PIA_EMAIL.upper()}"
        if a in (30, 31):
            contacts.append({"name": "Pia", "email": PIA_EMAIL, "categories": ["general"]})
        rows.append(
            {
                "id": f"K-{a}",
                "name": f"Kunde {a} GmbH",
                "owner_id": f"owner{a}",
                "owner_email": f"chef{a}@kunde{a}.example",
                "members": members,
                "contacts": contacts,
            }
        )
    return rows


def _invitations(store: Store, accounts: int) -> None:
    from teamaccess._domain import Invitation, OutboxMessage
    from teamaccess._emails import normalize_email

    now = datetime.now(UTC)
    for first in range(0, accounts, CHUNK):
        with store.begin() as uow:
            for a in range(first, min(first + CHUNK, accounts)):
                email = PIA_EMAIL if a in (40, 41) else f"neu{a}@kunde{a}.example"
                uow.add_invitation(
                    Invitation(
                        id=f"inv-{a}",
                        account_id=f"K-{a}",
                        email=email,
                        permissions=PermissionSet.of("billing.view"),
                        invited_by=f"owner{a}",
                        status="pending",
                        created_at=now,
                        expires_at=now + timedelta(days=30),
                        token_hash=f"{a:064x}",
                        note=f"Willkommen, bitte mit {'Pia' if a == 42 else 'Max'} absprechen",
                    ),
                    normalize_email(email).key,
                )
                # its mail, sent (an invitation's row keeps no message)
                uow.add_outbox(
                    OutboxMessage(
                        id=f"mail-{a}",
                        account_id=f"K-{a}",
                        kind="invitation",
                        recipient=email,
                        message_id=f"<inv-{a}@kunde.example>",
                        created_at=now,
                        next_attempt_at=now,
                        status="sent",
                        invitation_id=f"inv-{a}",
                        attempts=1,
                        sent_at=now,
                    )
                )
            uow.commit()


def _fill(team: TeamAccess, store: Store, accounts: int) -> None:
    for first in range(0, accounts, CHUNK):
        team.import_accounts(_rows(first, min(CHUNK, accounts - first)))
    _invitations(store, accounts)


def _pg_server() -> str:
    for name in ("TEAMACCESS_BENCH_POSTGRES", "TEAMACCESS_TEST_POSTGRES"):
        if os.environ.get(name):
            return os.environ[name]
    raise SystemExit("set TEAMACCESS_BENCH_POSTGRES to a server's connection string")


def _pg_url(dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(_pg_server(), dbname=dbname)


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(_pg_server(), autocommit=True)


def build(backend: str, accounts: int, where: Path) -> str:
    """The data, made once; returns what a run copies (a file, or a template database)."""
    if backend == "sqlite":
        from teamaccess import SQLiteStore

        path = where / "erasure-template.db"
        store: Store = SQLiteStore(path)
        target = str(path)
    else:
        from teamaccess import PostgresStore

        target = f"erasure_tpl_{accounts}"
        with _pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {target}")
            admin.execute(f"CREATE DATABASE {target}")
        store = PostgresStore(_pg_url(target))
    try:
        _fill(TeamAccess(store, NullMailer(), secret_key=SECRET), store, accounts)
    finally:
        store.close()
    if backend == "postgres":
        import psycopg

        with psycopg.connect(_pg_url(target), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as a long-lived database would be
    return target


@contextmanager
def _copy(backend: str, template: str, where: Path) -> Iterator[tuple[Store, Any]]:
    if backend == "sqlite":
        from teamaccess import SQLiteStore

        path = where / "erasure-run.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copyfile(template, path)
        store: Store = SQLiteStore(path)
        try:
            yield store, lambda: SQLiteStore(path)
        finally:
            store.close()
        return
    from teamaccess import PostgresStore

    with _pg_admin() as admin:
        admin.execute("DROP DATABASE IF EXISTS erasure_run")
        admin.execute(f"CREATE DATABASE erasure_run TEMPLATE {template}")
    store = PostgresStore(_pg_url("erasure_run"))
    try:
        yield store, lambda: PostgresStore(_pg_url("erasure_run"))
    finally:
        store.close()


class Writer:
    """Another process's writes beside the erasure: a contact added in one of 20 accounts
    that do not name the person, every *pause* seconds, each its own transaction."""

    def __init__(self, opener: Any, pause: float) -> None:
        self.store = opener()
        self.team = TeamAccess(self.store, NullMailer(), secret_key=SECRET)
        self.pause = pause
        self.stop = threading.Event()
        self.writes = 0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            a = 50 + self.writes % 20
            self.team.add_contact(
                f"K-{a}", actor_id=f"owner{a}", name=f"Neu {self.writes}",
                email=f"neu{self.writes}@kunde{a}.example", categories=["billing"],
            )  # fmt: skip
            self.writes += 1
            time.sleep(self.pause)

    def __enter__(self) -> Writer:
        self.thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.store.close()


def measure(
    backend: str, template: str, where: Path, self_erasure: bool, writer: float | None = None
) -> dict[str, Any]:
    """One erasure on a fresh copy: seconds of the whole call and of its write unit, and
    the calls and seconds of changed_accounts() and outbox_since() inside it; with
    *writer*, another connection writes every *writer* seconds meanwhile."""
    out: dict[str, Any] = {"unit": 0.0, **{f"{n}_calls": 0 for n in TIMED}}
    out.update({f"{n}_s": 0.0 for n in TIMED})
    with _copy(backend, template, where) as (store, opener):
        team = TeamAccess(store, NullMailer(), secret_key=SECRET, pseudonym_key="k" * 32)
        real_begin = store.begin

        @contextmanager
        def begin(*args: Any, **kwargs: Any) -> Iterator[Any]:
            started = time.perf_counter()
            with real_begin(*args, **kwargs) as uow:
                for name in TIMED:
                    real = getattr(uow, name, None)
                    if real is None:
                        continue

                    def timed(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
                        t = time.perf_counter()
                        try:
                            return _real(*a, **k)
                        finally:
                            out[f"{_name}_s"] += time.perf_counter() - t
                            out[f"{_name}_calls"] += 1

                    setattr(uow, name, timed)
                yield uow
            out["unit"] += time.perf_counter() - started

        store.begin = begin  # type: ignore[method-assign]
        with Writer(opener, writer) if writer is not None else nullcontext() as busy:
            started = time.perf_counter()
            if self_erasure:
                report = team.erase_person(user_id=PIA, email=PIA_EMAIL, actor_id=PIA)
            else:
                report = team.erase_person(user_id=PIA, actor_id=SYSTEM)
            out["total"] = time.perf_counter() - started
        if busy is not None:
            out["writes"] = busy.writes
    out["removed"] = [report.memberships, report.contacts, report.invitations, report.messages]
    out["texts_redacted"] = report.texts_redacted
    return out


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.erasure")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", action="append", default=[], help="another tree to run")
    parser.add_argument("--self", action="store_true", dest="self_erasure")
    parser.add_argument("--writer", type=float, help="another writer, a commit every N s")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a subprocess's one run
    args = parser.parse_args()
    if args.measure:
        template, where = json.loads(args.measure)
        got = measure(args.backend, template, Path(where), args.self_erasure, args.writer)
        print(json.dumps(got))
        return
    trees = [str(Path(__file__).resolve().parents[1]), *args.code]
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        started = time.perf_counter()
        template = build(args.backend, args.accounts, where)
        print(f"{args.backend}, {args.accounts:,} accounts: made in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
        for run in range(args.runs):
            for tree in trees if run % 2 == 0 else trees[::-1]:
                env = {**os.environ, "PYTHONPATH": f"{tree}/src{os.pathsep}{trees[0]}"}
                argv = [sys.executable, "-m", "benchmarks.erasure", "--backend", args.backend,
                        "--measure", json.dumps([template, str(where)])]  # fmt: skip
                if args.self_erasure:
                    argv.append("--self")
                if args.writer is not None:
                    argv += ["--writer", str(args.writer)]
                done = subprocess.run(
                    argv, env=env, cwd=trees[0], capture_output=True, text=True, check=True
                )
                got = json.loads(done.stdout.splitlines()[-1])
                results[tree].append(got)
                print(f"run {run + 1} {tree}: {got}", flush=True)
        for tree, runs in results.items():
            line = [f"whole {_spread([r['total'] for r in runs])} s",
                    f"unit {_spread([r['unit'] for r in runs])} s"]  # fmt: skip
            for name in TIMED:
                calls = sorted({r[f"{name}_calls"] for r in runs})
                line.append(f"{name} x{'/'.join(map(str, calls))} "
                            f"{_spread([r[f'{name}_s'] for r in runs])} s")  # fmt: skip
            print(f"{tree}: " + "; ".join(line))
        if args.backend == "postgres":
            with _pg_admin() as admin:
                admin.execute("DROP DATABASE IF EXISTS erasure_run")
                admin.execute(f"DROP DATABASE IF EXISTS {template}")


if __name__ == "__main__":
    main()

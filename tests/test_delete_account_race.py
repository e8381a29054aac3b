"""delete_account() at the same time as the other work a panel does on the account: a
retention purge, a delivery run that claimed the account's mail, an invitation sent at
once, an erasure. Real concurrency: threads with a TeamAccess (and connection) each, on a
SQLite file or a PostgreSQL server. Nothing half-written, no row of a deleted account
left behind, no deadlock, no exception but a documented TeamAccessError."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from teamaccess import (
    SYSTEM,
    AccountNotFound,
    MemoryMailer,
    PermissionSet,
    StorageError,
    Store,
    TeamAccess,
)
from teamaccess.testing import FrozenClock

from .conftest import SHARED, postgres_conninfo, postgres_schema
from .test_privacy import make

P = PermissionSet.of
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: Rows of the other accounts in the purge test.
ROWS = 400
#: The tables whose rows belong to an account.
TABLES = ("members", "invitations", "contacts", "outbox", "events")


def roomy(
    store: Store, clock: FrozenClock, mailer: MemoryMailer | None = None, **kw: Any
) -> TeamAccess:
    """A TeamAccess whose rate limits never get in the way of building the rows."""
    limits = {"rate_limit": 10**6, "account_rate_limit": 10**6, "recipient_rate_limit": 10**6}
    return make(store, clock, mailer, **{**limits, **kw})


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run *calls* at once, a thread each; what each returned or raised."""
    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a racer hangs"
    return results


def started(results: dict[str, object], name: str, call: Callable[[], object]) -> threading.Thread:
    """*call* in a thread of its own, started; ``results[name]`` gets what it returned or
    raised (a test waits on a lock in between, so the calls start one after another)."""

    def target() -> None:
        try:
            results[name] = call()
        except Exception as exc:
            results[name] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def rows_of(backend: str, tmp_path: Path, account_id: str) -> dict[str, int]:
    """The account's rows in each table, counted straight in the database."""
    if backend == "sqlite":
        conn = sqlite3.connect(tmp_path / "teamaccess.db")
        try:
            counts = {
                t: conn.execute(
                    f"SELECT count(*) FROM {t} WHERE account_id = ?",  # noqa: S608
                    (account_id,),
                ).fetchone()[0]
                for t in TABLES
            }
            counts["accounts"] = conn.execute(
                "SELECT count(*) FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()[0]
        finally:
            conn.close()
        return counts
    import psycopg

    s = postgres_schema(tmp_path)
    with psycopg.connect(postgres_conninfo()) as conn:
        counts = {
            t: conn.execute(
                f'SELECT count(*) FROM "{s}".{t} WHERE account_id = %s',  # noqa: S608
                (account_id,),
            ).fetchone()[0]  # type: ignore[index]
            for t in TABLES
        }
        counts["accounts"] = conn.execute(  # type: ignore[index]
            f'SELECT count(*) FROM "{s}".accounts WHERE id = %s',  # noqa: S608
            (account_id,),
        ).fetchone()[0]
    return counts


def nothing_of(backend: str, tmp_path: Path, account_id: str) -> None:
    assert rows_of(backend, tmp_path, account_id) == dict.fromkeys((*TABLES, "accounts"), 0)


# -- purge -----------------------------------------------------------------------------


@contextmanager
def postgres(tmp_path: Path) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        yield conn


def waiters(admin: Any) -> int:
    """How many sessions wait for a lock another holds."""
    return int(admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0])


def until(done: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the racers"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_purge_and_deletion_take_rows_in_another_order(
    store_factory: Callable[[], Store], tmp_path: Path
) -> None:
    """A purge scans a table in its physical order; delete_account() takes the account's
    rows in its index's order. Where the two differ (a later row in space an earlier
    VACUUM freed), a purge that waited for a row could hold one of the account's rows
    while the deletion held another: a deadlock, which PostgreSQL ends by failing one of
    them. The purge skips rows others hold, so it never waits."""
    clock = FrozenClock(T0)
    team = roomy(store_factory(), clock)
    gone = team.create_account(name="Gone", owner_id="og", owner_email="og@example.org").id
    stays = team.create_account(name="Stays", owner_id="os", owner_email="os@example.org").id
    old = team.create_account(name="Old", owner_id="oo", owner_email="oo@example.org").id
    # Enough rows that the deletion's plan reads the account's index, not the table.
    with team.batch():
        for n in range(ROWS):
            inv = team.invite(old, actor_id=SYSTEM, email=f"old{n}@example.org", permissions=P())
            team.revoke_invitation(inv.id, actor_id=SYSTEM)
    clock.advance(timedelta(days=100))
    with team.batch():
        for n in range(ROWS):
            team.invite(stays, actor_id=SYSTEM, email=f"s{n}@example.org", permissions=P())
    team.invite(gone, actor_id=SYSTEM, email="first@example.org", permissions=P())
    assert team.purge().invitations == ROWS  # the old ones: their pages have room now
    clock.advance(timedelta(minutes=1))
    for name in ("second", "third"):
        team.invite(gone, actor_id=SYSTEM, email=f"{name}@example.org", permissions=P())
    team.close()

    s = postgres_schema(tmp_path)
    with postgres(tmp_path) as admin:
        admin.execute(f'ANALYZE "{s}".invitations')
        rows = admin.execute(
            f'SELECT account_id, id, seq FROM "{s}".invitations ORDER BY ctid'  # noqa: S608
        ).fetchall()
        plan = admin.execute(
            f'EXPLAIN DELETE FROM "{s}".invitations WHERE account_id = %s',  # noqa: S608
            (gone,),
        ).fetchall()
        # The layout the deadlock needs: the account's later invitations stored before
        # its first, which its index lists first, with another account's rows between.
        places = [n for n, row in enumerate(rows) if row[0] == gone]
        seqs = sorted(rows[n][2] for n in places)
        assert [rows[n][2] for n in places] == [*seqs[1:], seqs[0]], rows
        assert "Index Scan" in plan[1][0], plan
        between = rows[(places[1] + places[2]) // 2]
        assert between[0] == stays

        # A writer holds one of the other account's rows, between the two places: a
        # purge that waits for rows stops there, holding the account's later rows.
        import psycopg

        with psycopg.connect(postgres_conninfo()) as holder:
            holder.execute(
                f'SELECT 1 FROM "{s}".invitations WHERE id = %s FOR UPDATE',  # noqa: S608
                (between[1],),
            )
            later = FrozenClock(T0 + timedelta(days=400))
            purging = roomy(store_factory(), later)
            deleting = roomy(store_factory(), later)
            results: dict[str, object] = {}

            purge = started(results, "purge", lambda: purging.purge(scrub=False))
            until(lambda: "purge" in results or waiters(admin) >= 1)
            # The deletion takes the account's first invitation, then waits for the next
            # (if the purge holds it).
            delete = started(
                results, "delete", lambda: deleting.delete_account(gone, actor_id=SYSTEM)
            )
            until(lambda: "delete" in results or waiters(admin) >= 2)
            holder.rollback()
            purge.join(30)
            delete.join(30)
        purging.close()
        deleting.close()
    assert not isinstance(results["delete"], Exception), results
    assert not isinstance(results["purge"], Exception), results
    # The held row was skipped, not waited for: the next purge takes it.
    assert results["purge"].invitations == ROWS + 2  # type: ignore[union-attr]
    nothing_of("postgres", tmp_path, gone)
    again = roomy(store_factory(), later)
    assert again.purge(scrub=False).invitations == 1
    again.close()


def fill(team: TeamAccess, clock: FrozenClock, accounts: int, rows: int) -> list[str]:
    """Accounts with closed invitations, sent mail and events the purge deletes, and
    members and contacts it keeps."""
    ids = []
    for a in range(accounts):
        acc = team.create_account(name=f"A{a}", owner_id=f"o{a}", owner_email=f"o{a}@example.org")
        ids.append(acc.id)
        for n in range(rows):
            inv = team.invite(
                acc.id, actor_id=SYSTEM, email=f"p{a}.{n}@example.org", permissions=P()
            )
            if n % 2:
                team.revoke_invitation(inv.id, actor_id=SYSTEM)
            team.add_contact(acc.id, actor_id=SYSTEM, name=f"C{n}", email=f"c{a}.{n}@example.org",
                             categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Invoice", text="Your invoice")
    clock.advance(timedelta(days=1000))
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_purges_and_deletions_at_once(
    backend: str, store_factory: Callable[[], Store], tmp_path: Path
) -> None:
    """Rounds of a purge and deletions of accounts, all at once, each with a connection
    of its own: every call succeeds, and the deleted accounts leave no row."""
    for _round in range(3):
        clock = FrozenClock(T0)
        team = roomy(store_factory(), clock)
        ids = fill(team, clock, accounts=4, rows=10)
        teams = [roomy(store_factory(), clock) for _ in range(4)]
        calls: list[Callable[[], object]] = [teams[0].purge]
        calls += [partial(teams[n].delete_account, ids[n], actor_id=SYSTEM) for n in (1, 2, 3)]
        results = run_together(*calls)
        assert not [r for r in results if isinstance(r, Exception)], results
        for account_id in ids[1:]:
            nothing_of(backend, tmp_path, account_id)
        assert rows_of(backend, tmp_path, ids[0])["members"] == 1
        team.delete_account(ids[0], actor_id=SYSTEM)
        for t in (team, *teams):
            t.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_deletions_at_once_do_not_wait_for_each_others_vacuum(
    store_factory: Callable[[], Store],
) -> None:
    """PostgreSQL: each deletion ends with a VACUUM of the tables. One that truncates a
    table's empty end needs an exclusive lock, which it cannot get while the next VACUUM
    waits for the table: it tried for five seconds, each, one after the other. The
    scrub does not truncate, so deletions at once take milliseconds, not 5 s each."""
    clock = FrozenClock(T0)
    team = roomy(store_factory(), clock)
    ids = fill(team, clock, accounts=4, rows=10)
    teams = [roomy(store_factory(), clock) for _ in ids]

    def timed(t: TeamAccess, account_id: str) -> float:
        start = time.monotonic()
        t.delete_account(account_id, actor_id=SYSTEM)
        return time.monotonic() - start

    took = run_together(*(partial(timed, t, a) for t, a in zip(teams, ids, strict=True)))
    assert max(took) < 4, took  # type: ignore[type-var]
    for t in (team, *teams):
        t.close()


# -- a delivery run --------------------------------------------------------------------


class DeletingMailer(MemoryMailer):
    """Sends; on the first message, lets another panel (another thread and connection)
    delete the account, and waits until it has."""

    def __init__(self, delete: Callable[[], object]) -> None:
        super().__init__()
        self._delete = delete
        self.deleted: list[object] = []

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        if not self.deleted:
            result = run_together(self._delete)
            self.deleted.append(result[0])


def test_a_run_sends_no_more_mail_of_an_account_deleted_meanwhile(
    store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
) -> None:
    """A run claimed four notifications of the account; while it sent the first, the
    account was deleted. The other three are not sent: the run reads each row again
    just before its send. (The first was on its way: nothing can call it back.)"""
    other = roomy(store if backend == "memory" else store_factory(), clock)
    team = roomy(store, clock, delivery="queue")
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    for n in range(3):
        team.add_contact(acc.id, actor_id="o", name=f"C{n}", email=f"c{n}@example.org",
                         categories=["billing"])  # fmt: skip
    team.notify(acc.id, "billing", subject="Invoice", text="Your invoice")
    mailer = DeletingMailer(lambda: other.delete_account(acc.id, actor_id=SYSTEM))
    team._mailer = mailer  # the same service, its mail now through this mailer
    done = team.deliver_pending()
    assert [type(r).__name__ for r in mailer.deleted] == ["AccountDeletionReport"]
    assert len(mailer.outbox) == 1, [m["To"] for m in mailer.outbox]
    assert len(done) == 1
    assert team.pending_messages() == []
    assert team.deliver_pending() == []
    assert len(mailer.outbox) == 1
    with pytest.raises(AccountNotFound):
        team.get_account(acc.id)


# -- invite(delivery="now") and erase_person --------------------------------------------


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_invitations_sent_at_once_while_the_account_goes(
    backend: str, store_factory: Callable[[], Store], tmp_path: Path, clock: FrozenClock
) -> None:
    """Invitations sent at once race the deletion: each either was written before it
    (and is deleted with the account; its mail may have gone) or fails with
    AccountNotFound; nothing of the account is left, whatever order they ran in."""
    for _round in range(10):
        setup = roomy(store_factory(), clock)
        acc = setup.create_account(name="A", owner_id="o", owner_email="o@example.org").id
        inviters = [roomy(store_factory(), clock) for _ in range(3)]
        deleter = roomy(store_factory(), clock)

        results = run_together(
            *(
                partial(t.invite, acc, actor_id="o", email=f"p{n}@example.org", permissions=P())
                for n, t in enumerate(inviters)
            ),
            partial(deleter.delete_account, acc, actor_id=SYSTEM),
        )
        report = results[-1]
        assert type(report).__name__ == "AccountDeletionReport", results
        for result in results[:-1]:
            assert type(result).__name__ in {"Invitation", "AccountNotFound"}, results
        written = sum(type(r).__name__ == "Invitation" for r in results[:-1])
        assert report.invitations == written  # type: ignore[attr-defined]
        nothing_of(backend, tmp_path, acc)
        for t in (setup, deleter, *inviters):
            t.close()


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_erasure_while_an_account_of_the_person_goes(
    backend: str, store_factory: Callable[[], Store], tmp_path: Path, clock: FrozenClock
) -> None:
    """A member of two accounts is erased while one of them is deleted: the erasure
    succeeds, writes nothing into the deleted account (no person.erased event there),
    and counts only what it removed itself."""
    for _round in range(6):
        setup = roomy(store_factory(), clock)
        gone = setup.create_account(name="G", owner_id="og", owner_email="og@example.org").id
        stays = setup.create_account(name="S", owner_id="os", owner_email="os@example.org").id
        for acc, owner in ((gone, "og"), (stays, "os")):
            inv = setup.invite(acc, actor_id=owner, email="pia@example.org", permissions=P())
            setup.accept_invitation(inv.token or "", user_id="pia", email="pia@example.org")
        eraser, deleter = roomy(store_factory(), clock), roomy(store_factory(), clock)
        erased, deleted = run_together(
            partial(eraser.erase_person, user_id="pia", actor_id=SYSTEM),
            partial(deleter.delete_account, gone, actor_id=SYSTEM),
        )
        nothing_of(backend, tmp_path, gone)
        assert setup.accounts_for("pia") == []
        assert [e.action for e in setup.audit_log(stays, limit=1)] == ["person.erased"]
        assert type(deleted).__name__ == "AccountDeletionReport", deleted
        assert type(erased).__name__ == "ErasureReport", erased
        # One membership was the erasure's for sure; the other only if it came first.
        assert erased.memberships in (1, 2)  # type: ignore[attr-defined]
        assert erased.memberships + deleted.members == 3  # type: ignore[attr-defined]
        for t in (setup, eraser, deleter):
            t.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_erasure_waiting_for_an_account_deleted_before_it(
    store_factory: Callable[[], Store], tmp_path: Path, clock: FrozenClock
) -> None:
    """PostgreSQL: the erasure found the person's membership, then waited for the
    account's lock while the deletion held it. Once it runs on, the account is gone:
    it writes no person.erased event there (a row of no account) and does not count
    the membership the deletion took."""
    from teamaccess._backends.postgres import _lock_space

    setup = roomy(store_factory(), clock)
    gone = setup.create_account(name="G", owner_id="og", owner_email="og@example.org").id
    stays = setup.create_account(name="S", owner_id="os", owner_email="os@example.org").id
    for acc, owner in ((gone, "og"), (stays, "os")):
        inv = setup.invite(acc, actor_id=owner, email="pia@example.org", permissions=P())
        setup.accept_invitation(inv.token or "", user_id="pia", email="pia@example.org")
    eraser, deleter = roomy(store_factory(), clock), roomy(store_factory(), clock)
    results: dict[str, object] = {}

    import psycopg

    with postgres(tmp_path) as admin, psycopg.connect(postgres_conninfo()) as holder:
        # Another writer of the account holds its lock: both calls queue behind it, the
        # deletion first.
        space = _lock_space(postgres_schema(tmp_path))
        holder.execute("SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", (space, gone))
        delete = started(results, "delete", lambda: deleter.delete_account(gone, actor_id=SYSTEM))
        until(lambda: "delete" in results or waiters(admin) >= 1)
        erase = started(
            results, "erase", lambda: eraser.erase_person(user_id="pia", actor_id=SYSTEM)
        )
        until(lambda: "erase" in results or waiters(admin) >= 2)
        holder.rollback()
        delete.join(30)
        erase.join(30)
    assert type(results["delete"]).__name__ == "AccountDeletionReport", results
    assert type(results["erase"]).__name__ == "ErasureReport", results
    assert results["delete"].members == 2  # type: ignore[attr-defined]
    assert results["erase"].memberships == 1  # type: ignore[attr-defined]
    nothing_of("postgres", tmp_path, gone)
    assert [e.action for e in setup.audit_log(stays, limit=1)] == ["person.erased"]
    for t in (setup, eraser, deleter):
        t.close()


# -- SQLite: two scrubs at once -----------------------------------------------------------


def test_sqlite_scrub_while_another_connection_checkpoints(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """Two calls that scrub at once (a deletion and an erasure, say): the WAL checkpoint
    of one finds the other's running and gets "busy" at once, the busy timeout not
    asked. scrub() tries again within its timeout, so the call does not fail after it
    committed. Here the other checkpoint is a long one of another connection."""
    from teamaccess import SQLiteStore

    path = tmp_path / "teamaccess.db"
    team = roomy(SQLiteStore(path), clock)
    team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Many pages in the WAL, freed again, so that copying them takes a while and
        # the scrub's VACUUM does not.
        other.execute("PRAGMA wal_autocheckpoint = 0")
        other.execute("BEGIN")
        other.execute("CREATE TABLE filler (b)")
        for _ in range(500):
            other.execute("INSERT INTO filler VALUES (randomblob(100000))")
        other.execute("DROP TABLE filler")
        other.execute("COMMIT")
        ran: list[float] = []

        def checkpoint() -> None:
            ran.append(time.monotonic())
            other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            ran.append(time.monotonic())

        thread = threading.Thread(target=checkpoint)
        thread.start()
        try:
            until(lambda: bool(ran))
            scrubbing = time.monotonic()
            team._store.scrub()  # type: ignore[attr-defined]
        finally:
            thread.join(30)  # before the connection it uses is closed
        assert scrubbing < ran[1], "the other checkpoint was over before the scrub began"
    finally:
        other.close()
    team.close()


def test_sqlite_scrub_past_a_reader_still_says_so(tmp_path: Path, clock: FrozenClock) -> None:
    """A reader that keeps its snapshot past the timeout: scrub() gives up after about
    the timeout (not at once, not forever) with the documented StorageError."""
    from teamaccess import SQLiteStore

    path = tmp_path / "teamaccess.db"
    team = roomy(SQLiteStore(path, timeout=0.3), clock)
    team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM accounts").fetchone()
        team.create_account(name="B", owner_id="p", owner_email="p@example.org")
        start = time.monotonic()
        with pytest.raises(StorageError, match=r"call store\.scrub\(\) again"):
            team._store.scrub()  # type: ignore[attr-defined]
        assert 0.25 <= time.monotonic() - start < 3
        reader.rollback()
        team._store.scrub()  # type: ignore[attr-defined]  # the reader is done: it works
    finally:
        reader.close()
    team.close()


class ErasingMailer(MemoryMailer):
    """Sends; on the first message, lets another panel erase a person and waits."""

    def __init__(self, erase: Callable[[], object]) -> None:
        super().__init__()
        self._erase = erase
        self.erased: list[object] = []

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        if not self.erased:
            self.erased.append(run_together(self._erase)[0])


def test_a_run_sends_what_an_erasure_rewrote_meanwhile(
    store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
) -> None:
    """The run claimed notifications that name a person; while it sent the first, the
    person was erased, which rewrote the waiting ones. The rest go out as rewritten, not
    as the run read them when it claimed them."""
    other = roomy(store if backend == "memory" else store_factory(), clock)
    team = roomy(store, clock, delivery="queue")
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    for n in range(2):
        team.add_contact(acc.id, actor_id="o", name=f"C{n}", email=f"c{n}@example.org",
                         categories=["billing"])  # fmt: skip
    team.add_contact(acc.id, actor_id="o", name="Pia", email="pia@example.org",
                     categories=["general"])  # fmt: skip
    team.notify(acc.id, "billing", subject="Invoice", text="Ask pia@example.org about it.")
    mailer = ErasingMailer(lambda: other.erase_person(email="pia@example.org", actor_id=SYSTEM))
    team._mailer = mailer
    team.deliver_pending()
    assert [type(r).__name__ for r in mailer.erased] == ["ErasureReport"]
    assert len(mailer.outbox) == 3
    bodies = [m.get_body(("plain",)).get_content() for m in mailer.outbox]  # type: ignore[union-attr]
    assert "pia@example.org" in bodies[0]  # on its way before the erasure
    for body in bodies[1:]:
        assert "pia@example.org" not in body
        assert "[erased]" in body

"""A SQLiteStore opened before a fork (gunicorn --preload, multiprocessing with fork).

SQLite's file locks are POSIX locks, which a child does not inherit: a connection used on
both sides of a fork can corrupt the file. The child is refused, told to open the store
after the fork; the parent goes on; a database in memory is the child's own copy.
"""

from __future__ import annotations

import os
import select
import sqlite3
import threading
import warnings
from pathlib import Path

from tests.conftest import SECRET, START
from tests.fork_helpers import in_a_fork, refused_in_a_fork

from teamaccess import Account, MemoryMailer, SQLiteStore, TeamAccess


def open_team(path: Path | str) -> TeamAccess:
    return TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)


def test_the_child_is_refused_and_told_what_to_do(tmp_path: Path) -> None:
    team = open_team(tmp_path / "team.db")
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    assert team.can("owner", account.id, "billing.view")
    for call in (
        lambda: team.can("owner", account.id, "billing.view"),
        lambda: team.members(account.id),
        lambda: team.create_account(name="B", owner_id="x", owner_email="x@example.org"),
    ):
        got = in_a_fork(call)
        assert got.get("error") == "StorageError", got
        assert "a fork of it" in got["message"]
        assert "in each process after the fork" in got["message"]
    # Nothing the children tried was written.
    assert [a.name for a in team.accounts_for("x")] == []


def test_the_parent_goes_on_and_a_store_opened_in_the_child_works(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    team = open_team(path)
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")

    def closes_then_opens_its_own() -> object:
        team.close()  # must not close the parent's connection, or checkpoint its WAL
        own = open_team(path)
        try:
            own.create_account(name="B", owner_id="child", owner_email="c@example.org")
            return own.can("owner", account.id, "billing.view")
        finally:
            own.close()

    assert in_a_fork(closes_then_opens_its_own) == {"result": "True"}
    assert team.can("owner", account.id, "billing.view")
    assert [a.name for a in team.accounts_for("child")] == ["B"]
    team.create_account(name="C", owner_id="parent", owner_email="p@example.org")
    team.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (3,)
    finally:
        conn.close()


def test_a_lock_another_thread_held_at_the_fork_does_not_hang_the_child(
    tmp_path: Path,
) -> None:
    team = open_team(tmp_path / "team.db")
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    store = team.store
    assert isinstance(store, SQLiteStore)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lock:
            held.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(10)
        got = in_a_fork(lambda: team.can("owner", account.id, "billing.view"))
    finally:
        done.set()
        thread.join()
    assert got.get("error") == "StorageError", got


def test_a_database_in_memory_is_the_childs_own_copy() -> None:
    team = open_team(":memory:")
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")

    def writes_its_copy() -> object:
        team.create_account(name="B", owner_id="owner", owner_email="o@example.org")
        return len(team.accounts_for("owner"))

    assert in_a_fork(writes_its_copy) == {"result": "2"}
    assert [a.id for a in team.accounts_for("owner")] == [account.id]


def test_a_unit_open_at_the_fork_is_the_parents_alone(tmp_path: Path) -> None:
    """A fork inside ``with store.begin()``: the child's statements, commit and rollback
    would run on the parent's open transaction, without its locks."""
    path = tmp_path / "team.db"
    store = SQLiteStore(path)

    def account(name: str) -> Account:
        return Account(id=name, name=name, owner_id="o", owner_email="o@example.org",
                       created_at=START)  # fmt: skip

    with store.begin() as uow:
        uow.add_account(account("parent"))

        got = refused_in_a_fork(uow, lambda: uow.add_account(account("child")), uow.commit)
        assert got == {"result": "[True, True]"}
        uow.commit()
    with store.read() as uow:
        assert uow.get_account("parent") is not None
        assert uow.get_account("child") is None
    store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def test_a_store_opened_in_the_child_keeps_its_writes_when_the_parent_closes(
    tmp_path: Path,
) -> None:
    """The documented way (the parent, a pre-forking server's master, keeps its store; each
    worker opens its own): the child's connection found the inherited one's lock state
    in SQLite's per-process table and took no lock of its own, so the parent's close, the
    last lock holder it saw, checkpointed and deleted the WAL the child went on writing
    into: the child's later commits were lost."""
    path = tmp_path / "team.db"
    parent = open_team(path)
    parent.create_account(name="P", owner_id="owner", owner_email="o@example.org")
    opened_r, opened_w = os.pipe()
    closed_r, closed_w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with the pool's threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's coverage is not collected)
        code = 1
        try:
            child = open_team(path)
            child.create_account(name="C1", owner_id="child", owner_email="c@example.org")
            os.write(opened_w, b"1")
            os.read(closed_r, 1)  # the parent has closed its store
            for n in range(2, 5):
                child.create_account(name=f"C{n}", owner_id="child", owner_email="c@example.org")
            child.close()
            code = 0
        finally:
            os._exit(code)
    try:
        assert select.select([opened_r], [], [], 20)[0], "the child did not open its store"
        os.read(opened_r, 1)
        parent.close()
    finally:
        os.write(closed_w, b"1")
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = [r[0] for r in conn.execute("SELECT name FROM accounts ORDER BY seq")]
    finally:
        conn.close()
    assert names == ["P", "C1", "C2", "C3", "C4"]

"""Review of round 18: a store opened in a child forked inside a unit of work.

The child keeps the connection it inherited busy for its whole life (closing it would roll
back into the WAL index it shares with the parent). While it is open, SQLite's table of
this process's locks counts that connection's locks as held, so a store the child opens
on the same file, as docs/backends.md tells it to ("open the store ... in each process
after the fork"), takes no real lock: it waits for ever to write ("locked ... retry"),
and once the parent closed its store, which then deleted the WAL it saw no other
process hold, the child read what it had read before for ever: a member removed by
another process still had its permissions there. The child is refused such a store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.fork_helpers import in_a_fork

from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess


def open_team(path: str | Path) -> TeamAccess:
    return TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)


class TestAStoreOnTheFileInAChildForkedInAUnit:
    """The child forked inside a unit of work may not open the unit's file again."""

    @pytest.mark.parametrize("unit", ["read", "begin"])
    def test_is_refused_with_what_to_do(self, tmp_path: Path, unit: str) -> None:
        path = tmp_path / "team.db"
        open_team(path).create_account(name="A", owner_id="o", owner_email="o@example.org")
        store = SQLiteStore(path)
        with getattr(store, unit)() as uow:
            uow.get_account("x")
            got = in_a_fork(lambda: open_team(path).accounts_for("o"))
        assert got.get("error") == "StorageError", got
        assert "forked while a unit of work" in got["message"], got
        assert "fork outside any unit of work" in got["message"]
        assert str(path) in got["message"]

    def test_also_when_another_thread_had_the_unit_open(self, tmp_path: Path) -> None:
        path = tmp_path / "team.db"
        store = SQLiteStore(path)
        inside, done = threading.Event(), threading.Event()

        def holds_a_unit() -> None:
            with store.read() as uow:
                uow.get_account("x")
                inside.set()
                done.wait(20)

        thread = threading.Thread(target=holds_a_unit)
        thread.start()
        try:
            assert inside.wait(20)
            got = in_a_fork(lambda: SQLiteStore(path))
        finally:
            done.set()
            thread.join()
        assert got.get("error") == "StorageError", got
        assert "in this thread or another" in got["message"]

    def test_by_another_name_of_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "team.db"
        os.symlink(path, tmp_path / "link.db")
        store = SQLiteStore(path)
        with store.read() as uow:
            uow.get_account("x")
            uri = f"file:{tmp_path / 'link.db'}?mode=rw"
            got = in_a_fork(lambda: SQLiteStore(uri))
        assert got.get("error") == "StorageError", got

    def test_another_file_opens(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        other = tmp_path / "other.db"
        with store.begin() as uow:
            uow.get_account("x")
            got = in_a_fork(lambda: len(open_team(other).accounts_for("o")))
        assert got == {"result": "0"}

    def test_a_child_forked_outside_a_unit_opens_it(self, tmp_path: Path) -> None:
        path = tmp_path / "team.db"
        store = SQLiteStore(path)
        with store.read() as uow:
            uow.get_account("x")
        got = in_a_fork(lambda: len(open_team(path).accounts_for("o")))
        assert got == {"result": "0"}


_SCRIPT = r"""
import os, subprocess, sys
from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, SYSTEM, TeamAccess

path, secret = sys.argv[1], sys.argv[2]
team = lambda: TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=secret)
account = sys.argv[3]
to_child, from_parent = os.pipe()
from_child, to_parent = os.pipe()
store = SQLiteStore(path)
with store.read() as uow:
    uow.get_account(account)
    pid = os.fork()
    if pid == 0:
        try:
            child = team()
        except Exception as exc:
            print("child refused", type(exc).__name__, flush=True)
            os.write(to_parent, b"x")
            os._exit(0)
        print("child before", child.can("m", account, "billing.view"), flush=True)
        os.write(to_parent, b"x")
        os.read(to_child, 1)
        print("child after", child.can("m", account, "billing.view"), flush=True)
        os._exit(0)
os.read(from_child, 1)  # the child has read the member
store.close()
# Another process removes the member, and stays open (its WAL is not checkpointed).
remover = subprocess.Popen([sys.executable, "-c", '''
import sys
from teamaccess import MemoryMailer, SQLiteStore, SYSTEM, TeamAccess
t = TeamAccess(SQLiteStore(sys.argv[1]), MemoryMailer(), secret_key=sys.argv[2])
t.remove_member(sys.argv[3], "m", actor_id=SYSTEM)
print("removed", flush=True)
sys.stdin.read()
''', path, secret, account], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert remover.stdout.readline() == "removed\n"
os.write(from_parent, b"x")
os.waitpid(pid, 0)
remover.communicate("")
"""


def test_a_member_removed_elsewhere_is_not_served_by_the_child(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    team = open_team(path)
    account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    invitation = team.invite(account.id, actor_id="o", email="m@example.org",
                             permissions=PermissionSet.of("billing.view"))  # fmt: skip
    assert invitation.token is not None
    team.accept_invitation(invitation.token, user_id="m", email="m@example.org")
    team.close()  # the parent below is the last process with the file open
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path), SECRET, account.id],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "child after True" not in done.stdout, done.stdout
    assert done.stdout.splitlines() == ["child refused StorageError"], done.stdout + done.stderr

"""Attack round 18 on the SQLite fork guard: a child that ends as programs end.

The fork tests ended their children with ``os._exit()``, as ``multiprocessing`` does. A
child that ends normally (``sys.exit()``, the end of a script, a gunicorn worker
stopping) runs Python's finalization, which freed the connection the child inherited
busy: its close rolled the transaction back, and SQLite's rollback cleans the frames
after the last commit out of the WAL index, which the parent shares. The parent's own
transaction, once it was larger than SQLite's page cache, then read "database disk
image is malformed". And a child that left a ``with store.begin()`` open at the fork
(``sys.exit()`` inside it) raised ``RuntimeError: cannot release un-acquired lock``.

(A thread's unit open at a fork was safe already: the child never frees the frames of
the threads it did not inherit.) The case runs in a process of its own, started as a
script, because the child must end through the interpreter's own exit, which a child
forked from pytest cannot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.fork_helpers import in_a_fork

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess


def open_team(path: str) -> TeamAccess:
    return TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)


_SCRIPT = r"""
import os, sys
from datetime import datetime, timezone
from teamaccess import SQLiteStore
from teamaccess._domain import Account

path = sys.argv[1]
store = SQLiteStore(path)
now = datetime(2026, 1, 1, tzinfo=timezone.utc)
ROWS = 12000  # about 5 MB in one transaction: more than SQLite's page cache (2 MB) holds

with store.begin() as uow:
    for i in range(ROWS):
        uow.add_account(Account(id=f"acc_{i}", name="Muster GmbH " + "x" * 300,
                                owner_id=f"u{i}", owner_email=f"o{i}@example.com",
                                created_at=now))
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # through the with block of the unit open at the fork
    print("child status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
    print("read in the unit", uow.get_account("acc_5").id, flush=True)
    uow.commit()
with store.read() as uow:
    print("committed", sum(1 for i in range(ROWS) if uow.get_account(f"acc_{i}")), flush=True)
"""


def test_a_child_ending_normally_leaves_the_parents_transaction_whole(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "team.db")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "RuntimeError" not in done.stderr
    assert "malformed" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "child status 0",
        "read in the unit acc_5",
        "committed 12000",
    ]


@pytest.mark.parametrize("query", ["vfs=memdb", "vfs=memd%62", "mode=rwc&vfs=memdb"])
def test_a_memdb_database_is_the_childs_own_copy(tmp_path: Path, query: str) -> None:
    """SQLite's memdb VFS names a file it never opens; the store took it for one, and
    refused a child its own copy, as docs/backends.md says a database in memory is."""
    team = open_team(f"file:/{tmp_path.name}-team.db?{query}")
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")

    def writes_its_copy() -> object:
        team.create_account(name="B", owner_id="owner", owner_email="o@example.org")
        return len(team.accounts_for("owner"))

    assert in_a_fork(writes_its_copy) == {"result": "2"}
    assert [a.id for a in team.accounts_for("owner")] == [account.id]
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_memory_journal_mode_is_still_a_file(tmp_path: Path) -> None:
    # The store switches every file it opens to WAL, so the memdb test above cannot pass
    # a file: one opened on the path is refused in the child.
    team = open_team(f"file:{tmp_path / 'team.db'}?mode=rwc")
    team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    got = in_a_fork(lambda: team.accounts_for("owner"))
    assert got.get("error") == "StorageError", got

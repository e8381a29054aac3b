"""Review of round 18: a second SQLiteStore on a file this process has open.

Opening a store checked whether its file was empty (to make it private before SQLite
writes a database into it) by opening the file and closing it again, whatever it held.
POSIX drops every lock a process holds on a file when it closes any descriptor of it, so
the store already open in the process lost the lock that tells other processes the file
is in use: the next process to close its last connection took the file for its own,
checkpointed and deleted the WAL, and the first store's later commits went into the
deleted file, which no other process ever read.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from teamaccess import SQLiteStore
from teamaccess._domain import Account

_OPEN_AND_CLOSE = "import sys; from teamaccess import SQLiteStore; SQLiteStore(sys.argv[1]).close()"
_READ = (
    "import sys; from teamaccess import SQLiteStore\n"
    "with SQLiteStore(sys.argv[1]).read() as uow: print(uow.get_account(sys.argv[2]) is not None)"
)


def _account(account_id: str) -> Account:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Account(
        id=account_id, name="A", owner_id="o", owner_email="o@example.org", created_at=at
    )


def _run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class TestASecondStoreInTheProcess:
    """Opening another store on the file leaves the first one's locks alone."""

    def test_the_first_stores_commits_reach_other_processes(self, tmp_path: Path) -> None:
        path = str(tmp_path / "team.db")
        first = SQLiteStore(path)
        second = SQLiteStore(path)
        try:
            _run(_OPEN_AND_CLOSE, path)  # another process comes and goes
            assert (tmp_path / "team.db-wal").exists()  # still this process's
            with first.begin() as uow:
                uow.add_account(_account("acc_after"))
                uow.commit()
            assert _run(_READ, path, "acc_after") == "True"
        finally:
            second.close()
            first.close()

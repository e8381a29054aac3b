"""A database opened ``immutable=1`` is read as it is: SQLite neither reads nor writes a
-wal, -shm or -journal beside it, so none of them is refused or changed (a read-only
medium, or the command's read-only open of a file in a directory it cannot write)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote

from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess


def test_a_symlink_beside_an_immutable_database(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)
    team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    team.close()
    target = tmp_path / "elsewhere"
    target.write_bytes(b"someone's file")
    Path(f"{path}-wal").symlink_to(target)
    stale = Path(f"{path}-shm")
    stale.write_bytes(bytes(4096))
    stale.chmod(0o644)
    # Before: StorageError, "SQLite would write the database's changes into it".
    store = SQLiteStore(f"file:{quote(str(path))}?immutable=1")
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    assert [a.name for a in team.accounts_for("o")] == ["A"]
    team.close()
    assert target.read_bytes() == b"someone's file"
    assert stat.S_IMODE(os.stat(stale).st_mode) == 0o644  # not SQLite's, so left

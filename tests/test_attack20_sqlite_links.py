"""Attack round 20 on the check of the files beside the database file: a ``-wal``,
``-shm`` or ``-journal`` of this process's user that is a hard link to a file elsewhere
(a panel's own file, a backup restored with ``cp -l``) was made private and used: the
other file lost its mode (a group that shared it could no longer use it) and SQLite wrote
the account data into it, over what it held, where a descriptor opened on it before
kept reading every change. Such a file is refused before anything is written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, StorageError, TeamAccess

OWNER = "secret.owner@example.com"
NOTES = b"the panel's own notes\n"


@pytest.mark.skipif(os.name != "posix", reason="Unix modes and hard links")
@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
@pytest.mark.parametrize("existing", [True, False], ids=["with-data", "new"])
def test_a_hard_linked_sibling_is_refused(tmp_path: Path, suffix: str, existing: bool) -> None:
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    shared.mkdir()
    elsewhere.mkdir()
    path = shared / "t.db"
    if existing:
        SQLiteStore(path).close()
    other = elsewhere / "notes.txt"
    other.write_bytes(NOTES)
    other.chmod(0o660)
    os.link(other, f"{path}{suffix}")
    with pytest.raises(StorageError, match=f"{suffix}, beside the database file .* hard link"):
        SQLiteStore(path)  # refused as it opens, before anything is written
    with pytest.raises(StorageError, match="remove its other names"):
        SQLiteStore(path)
    assert other.read_bytes() == NOTES
    assert stat.S_IMODE(other.stat().st_mode) == 0o660
    # Once it is removed, the store opens (the other file untouched).
    os.unlink(f"{path}{suffix}")
    fill = SQLiteStore(path)
    TeamAccess(fill, MemoryMailer(), secret_key=SECRET).create_account(
        name="A", owner_id="o", owner_email=OWNER
    )
    fill.close()
    assert other.read_bytes() == NOTES

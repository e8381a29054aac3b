"""Attack round 19 on the database file's mode: SQLite writes every change into the
``-wal`` beside the database file (and keeps its index in ``-shm``), giving one it
creates the database file's mode, but writing into one that is already there as it
is. A stale 0644 ``-wal`` (a database removed without it, files restored with ``cp``)
or one another local user made in a shared folder received the account data, readable
by every local user or by that user, though the database file itself was 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, StorageError, TeamAccess

OWNER = "secret.owner@example.com"
ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so a mode that is right is the code's doing, not the umask's."""
    old = os.umask(0)
    yield
    os.umask(old)


def fill(target: str | Path) -> SQLiteStore:
    store = SQLiteStore(target)
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    team.create_account(name="A", owner_id="o", owner_email=OWNER)
    return store


def stale(path: Path, suffix: str, file_mode: int = 0o644) -> Path:
    """A file left beside *path*, with bytes in it: SQLite itself gives an empty one
    the database file's mode when it opens it, but leaves any other as it is."""
    sibling = Path(f"{path}{suffix}")
    sibling.write_bytes(bytes(4096))
    sibling.chmod(file_mode)
    return sibling


class TestOwnStaleFiles:
    """A -wal or -shm of this process's user gets the database file's mode."""

    @pytest.mark.parametrize("suffix", ["-wal", "-shm"])
    def test_beside_a_new_database(self, tmp_path: Path, open_umask: None, suffix: str) -> None:
        path = tmp_path / "t.db"
        sibling = stale(path, suffix)
        store = fill(path)
        assert mode(path) == 0o600
        assert mode(sibling) == 0o600  # while it holds the data
        assert mode(Path(f"{path}-wal")) == 0o600
        store.close()

    def test_beside_a_database_with_data(self, tmp_path: Path, open_umask: None) -> None:
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        wal = stale(path, "-wal", 0o666)
        store = fill(path)
        assert OWNER.encode() in wal.read_bytes()
        assert mode(wal) == 0o600
        store.close()

    @pytest.mark.parametrize("uri", ["file:{}", "file:{}?mode=rw", "file:{}?mode=ro"])
    def test_through_a_uri(self, tmp_path: Path, open_umask: None, uri: str) -> None:
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        wal = stale(path, "-wal")
        store = SQLiteStore(uri.format(quote(str(path))))
        assert mode(wal) == 0o600
        store.close()

    def test_the_operators_mode_is_kept(self, tmp_path: Path, open_umask: None) -> None:
        """A database file the operator made 0640 gives its -wal the same, no less."""
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        path.chmod(0o640)
        wal = stale(path, "-wal", 0o640)
        store = SQLiteStore(path)
        assert mode(wal) == 0o640
        store.close()
        wal = stale(path, "-wal", 0o664)
        store = SQLiteStore(path)
        assert mode(wal) == 0o640
        store.close()

    @ROOT
    def test_a_group_the_database_file_does_not_give(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        wal = stale(path, "-wal", 0o640)
        os.chown(wal, os.geteuid(), 65534)  # another group's
        store = fill(path)
        assert mode(wal) == 0o600
        store.close()


class TestRefused:
    """What the process cannot make private is refused before anything is written."""

    def test_a_symlink(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        target = tmp_path / "elsewhere"
        target.write_bytes(b"someone's file")
        Path(f"{path}-wal").symlink_to(target)
        with pytest.raises(StorageError, match=r"t\.db-wal.* not a plain file.*remove it"):
            SQLiteStore(path)
        assert target.read_bytes() == b"someone's file"

    @ROOT
    def test_one_of_a_user_who_may_not_read_the_database(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        wal = stale(path, "-wal", 0o600)
        os.chown(wal, 65534, 65534)  # nobody, who made it in a shared folder
        with pytest.raises(StorageError, match=r"t\.db-wal.*uid 65534.*remove it"):
            fill(path)
        assert wal.read_bytes() == bytes(4096)
        assert OWNER.encode() not in path.read_bytes()

    @ROOT
    def test_a_co_users_file_is_used(self, tmp_path: Path) -> None:
        """A user who may read the database (every user may, here) is no stranger."""
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        path.chmod(0o644)
        wal = stale(path, "-wal", 0o644)
        os.chown(wal, 65534, 65534)
        store = fill(path)
        assert mode(wal) == 0o644
        assert OWNER.encode() in wal.read_bytes()
        store.close()

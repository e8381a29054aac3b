"""Files teamaccess creates are its owner's alone: FileMailer's messages (written
atomically) and directory, the SQLite database with its -wal and -shm files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.conftest import SECRET

from teamaccess import FileMailer, PermissionSet, SQLiteStore, StorageError, Store, TeamAccess
from teamaccess.testing import FrozenClock


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so a mode that is right is the code's doing, not the umask's."""
    old = os.umask(0)
    yield
    os.umask(old)


class TestFileMailer:
    """One complete 0600 file per message, in a directory created 0700."""

    def test_modes_and_bytes(
        self, store: Store, clock: FrozenClock, tmp_path: Path, open_umask: None
    ) -> None:
        directory = tmp_path / "mail" / "out"
        mailer = FileMailer(directory)
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.invite(acc.id, actor_id="o", email="a@example.com", permissions=PermissionSet.none())
        team.invite(acc.id, actor_id="o", email="b@example.com", permissions=PermissionSet.none())
        assert mode(directory) == 0o700
        files = sorted(directory.iterdir())
        assert [p.suffix for p in files] == [".eml", ".eml"]  # no temporary file left
        assert [mode(p) for p in files] == [0o600, 0o600]
        assert b"To: a@example.com" in files[0].read_bytes()
        assert b"To: b@example.com" in files[1].read_bytes()

    def test_existing_directory_keeps_its_mode(self, tmp_path: Path, open_umask: None) -> None:
        directory = tmp_path / "shared"
        directory.mkdir(mode=0o755)
        from teamaccess._mail.mailers import build_message

        msg = build_message(
            sender="S <s@example.com>", to="a@example.com", subject="s", text="t", html=None,
            message_id="<m@example.com>", language="en",
        )  # fmt: skip
        FileMailer(directory).send(msg)
        assert mode(directory) == 0o755
        [path] = directory.iterdir()
        assert path.read_bytes() == msg.as_bytes()

    @pytest.mark.parametrize("at", ["serialising", "syncing"])
    def test_killed_while_writing_leaves_no_eml(self, tmp_path: Path, at: str) -> None:
        """A process killed (SIGKILL) mid-write leaves no empty or partial .eml."""
        directory = tmp_path / "out"
        directory.mkdir()
        patch = (
            "os.fsync = die" if at == "syncing" else "type(msg).as_bytes = lambda *a, **k: die(0)"
        )
        script = textwrap.dedent(f"""
            import os, signal
            from teamaccess import FileMailer
            from teamaccess._mail.mailers import build_message

            def die(fd):
                os.kill(os.getpid(), signal.SIGKILL)

            msg = build_message(sender="S <s@example.com>", to="a@example.com", subject="s",
                                text="t" * 100000, html=None, message_id="<m@example.com>",
                                language="en")
            {patch}
            FileMailer({str(directory)!r}).send(msg)
        """)
        done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
        assert done.returncode == -9
        assert list(directory.glob("*.eml")) == []


class TestSQLiteFileModes:
    """A new database file and its -wal and -shm files are 0600."""

    def test_new_database(self, tmp_path: Path, open_umask: None) -> None:
        path = tmp_path / "t.db"
        store = SQLiteStore(path)
        team = TeamAccess(store, FileMailer(tmp_path / "mail"), secret_key=SECRET)
        team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists()
        assert shm.exists()
        assert [mode(path), mode(wal), mode(shm)] == [0o600, 0o600, 0o600]
        store.close()

    @pytest.mark.parametrize(
        "uri", ["file:{}", "file:{}?mode=rwc", "file://localhost{}", "file:{}?cache=shared"]
    )
    def test_new_database_through_a_uri(self, tmp_path: Path, open_umask: None, uri: str) -> None:
        """A ``file:`` URI that creates the file creates it as a path does."""
        path = tmp_path / "my team.db"
        store = SQLiteStore(uri.format(quote(str(path))))
        TeamAccess(store, FileMailer(tmp_path / "mail"), secret_key=SECRET).create_account(
            name="A", owner_id="o", owner_email="o@example.com"
        )
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert [mode(path), mode(wal), mode(shm)] == [0o600, 0o600, 0o600]
        store.close()

    def test_a_uri_that_creates_no_file(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        for uri in (f"file:{path}?mode=ro", f"file:{path}?mode=rw"):
            with pytest.raises(StorageError, match="cannot be opened"):
                SQLiteStore(uri)
        assert list(tmp_path.iterdir()) == []

    def test_existing_database_keeps_its_mode(self, tmp_path: Path, open_umask: None) -> None:
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        path.chmod(0o640)
        store = SQLiteStore(path)
        assert mode(path) == 0o640
        store.close()


class TestEmptyFileGiven:
    """An empty file is a new database to SQLite, which writes it into that file with the
    mode the file has: one the process owns is made 0600 first, as a new file is."""

    def _fill(self, target: str | Path) -> SQLiteStore:
        store = SQLiteStore(target)
        team = TeamAccess(store, FileMailer("unused-mail"), secret_key=SECRET)
        team.create_account(name="A", owner_id="o", owner_email="secret.owner@example.com")
        return store

    def test_empty_0644_file_becomes_0600(
        self, tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        path = tmp_path / "t.db"
        path.touch(0o644)
        path.chmod(0o644)
        store = self._fill(path)
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert [mode(path), mode(wal), mode(shm)] == [0o600, 0o600, 0o600]
        store.close()
        assert path.read_bytes().startswith(b"SQLite format 3\x00")
        assert b"secret.owner@example.com" in path.read_bytes()

    @pytest.mark.parametrize("uri", ["file:{}", "file:{}?mode=rw"])
    def test_through_a_uri(
        self, tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch, uri: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        path = tmp_path / "t.db"
        path.touch(0o664)
        path.chmod(0o664)
        store = self._fill(uri.format(quote(str(path))))
        assert mode(path) == 0o600
        store.close()
        assert path.read_bytes().startswith(b"SQLite format 3\x00")

    def test_a_file_with_data_keeps_its_mode(self, tmp_path: Path, open_umask: None) -> None:
        """Not empty: a database (or not one, which opening then refuses) stays as it is."""
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        path.chmod(0o644)
        SQLiteStore(path).close()
        assert mode(path) == 0o644

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
    def test_empty_file_of_another_user_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        path.touch(0o644)
        path.chmod(0o666)
        os.chown(path, 65534, 65534)  # nobody
        with pytest.raises(StorageError, match=r"chmod 600 .* or remove it"):
            SQLiteStore(path)
        assert path.read_bytes() == b""  # nothing written
        assert mode(path) == 0o666

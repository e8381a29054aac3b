"""The command on a SQLite file this user may read but not write (a monitoring user's):
commands that only read work, commands that change it are refused with a clear error,
and nothing is written. Run as a real subprocess on a real file.

Root ignores file modes, and CI runs as root: there the file and directory are made
immutable (``chattr +i``), which refuses even root; as another user, modes do it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.sqlite_older import older_file

from teamaccess import FileMailer, PermissionSet, SQLiteStore, TeamAccess
from teamaccess._backends.sqlite import MIGRATIONS


class ReadOnly:
    """Makes paths read-only for this process for real, and undoes it afterwards."""

    def __init__(self) -> None:
        self.done: list[Path] = []
        self.root = os.geteuid() == 0

    def __call__(self, *paths: Path) -> None:
        for path in paths:
            if self.root:
                chattr = shutil.which("chattr")
                if chattr is None:
                    pytest.skip("running as root, and no chattr to make a file read-only")
                proc = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
                if proc.returncode != 0:
                    pytest.skip(f"running as root, and chattr +i fails here: {proc.stderr}")
            else:
                path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
            self.done.append(path)
            assert not os.access(path, os.W_OK), path

    def undo(self) -> None:
        for path in reversed(self.done):
            if self.root:
                subprocess.run(["chattr", "-i", str(path)], check=True)
            else:
                path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
        self.done.clear()


@pytest.fixture
def read_only() -> Iterator[ReadOnly]:
    made = ReadOnly()
    try:
        yield made
    finally:
        made.undo()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a database: an account, a member, a notice waiting in the outbox."""
    folder = tmp_path / "panel"
    folder.mkdir()
    db, out = folder / "team.db", tmp_path / "out"
    team = TeamAccess(SQLiteStore(db), FileMailer(out), secret_key=SECRET)
    try:
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="m@muster.de")
        invitation = team.invite(account.id, actor_id="max", email="dev@example.org",
                                 permissions=PermissionSet.from_list(["billing.view"]))  # fmt: skip
        assert invitation.token is not None
        team.accept_invitation(invitation.token, user_id="dev", email="dev@example.org")
    finally:
        team.close()
    team = TeamAccess(SQLiteStore(db), FileMailer(out), secret_key=SECRET, delivery="queue")
    try:
        team.notify(account.id, "general", subject="Wartung", text="Heute Nacht")
    finally:
        team.close()
    (folder / "account").write_text(account.id)
    return folder


def command(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", str(folder / "team.db"), *args],
        env={**clean, "TEAMACCESS_SECRET_KEY": SECRET}, cwd=folder.parent,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def digest(folder: Path) -> dict[str, str]:
    """Every file in *folder* by its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def check_reads(folder: Path) -> None:
    account = (folder / "account").read_text()
    members = command(folder, "members", account, "--json")
    assert members.returncode == 0, members.stderr
    assert {m["user_id"] for m in json.loads(members.stdout)} == {"max", "dev"}
    allowed = command(folder, "permissions", "check", account, "dev", "billing.view", "--require")
    assert allowed.returncode == 0, allowed.stderr
    denied = command(folder, "permissions", "check", account, "dev", "billing.pay", "--require")
    assert denied.returncode == 5, denied.stderr
    waiting = command(folder, "deliver", "--list", "--json")
    assert waiting.returncode == 0, waiting.stderr
    assert {m["recipient"] for m in json.loads(waiting.stdout)} == {"m@muster.de"}
    audit = command(folder, "audit", account)
    assert audit.returncode == 0, audit.stderr


def check_writes_refused(folder: Path, why: str) -> None:
    account = (folder / "account").read_text()
    for args in (
        ("accounts", "rename", account, "--name", "Neu", "--as", "system"),
        ("deliver",),
        ("purge",),
        ("migrate",),
    ):
        proc = command(folder, *args)
        assert proc.returncode == 10, (args, proc.stderr)
        assert proc.stderr == (
            f"error: the database {folder / 'team.db'} is read-only ({why}); this command "
            "changes it, so run it as a user who may write the file and its directory (the "
            "file's owner) or fix their permissions. Commands that only read work on it as "
            "it is (members, permissions show/check, invitations, audit, deliver --list, "
            "export)\n"
        ), args
        assert proc.stdout == ""


class TestReadOnly:
    def test_a_read_only_file_in_a_writable_folder(self, folder: Path, read_only: ReadOnly) -> None:
        read_only(folder / "team.db")
        before = digest(folder)
        check_reads(folder)
        check_writes_refused(folder, "the file is not writable for this user")
        # SQLite may leave an empty -wal and a -shm beside it (the folder is writable);
        # the database's own bytes are untouched.
        assert digest(folder)["team.db"] == before["team.db"]
        assert not (folder / "team.db.secret").exists()

    def test_a_read_only_folder(self, folder: Path, read_only: ReadOnly) -> None:
        # No -wal and no -shm, and SQLite may not create them: the file holds every
        # committed change, so it is read as it is.
        read_only(folder / "team.db", folder)
        before = digest(folder)
        check_reads(folder)
        check_writes_refused(folder, "the file is not writable for this user")
        assert digest(folder) == before

    def test_a_writable_file_in_a_read_only_folder(self, folder: Path, read_only: ReadOnly) -> None:
        read_only(folder)
        check_reads(folder)
        check_writes_refused(
            folder,
            f"its directory {folder} is not writable for this user, and SQLite creates "
            "team.db-wal there",
        )
        assert sorted(p.name for p in folder.iterdir()) == ["account", "team.db"]

    def test_changes_in_the_wal_of_a_running_panel_are_read(
        self, folder: Path, read_only: ReadOnly
    ) -> None:
        # The panel has the file open and its last change is still in the -wal file
        # (not checkpointed); the reader must see it, not the older file alone.
        panel = sqlite3.connect(folder / "team.db", isolation_level=None)
        try:
            panel.execute("PRAGMA wal_autocheckpoint = 0")
            panel.execute("UPDATE accounts SET name = 'Muster AG'")
            assert (folder / "team.db-wal").stat().st_size > 0
            read_only(folder / "team.db", folder / "team.db-wal", folder / "team.db-shm", folder)
            check_reads(folder)
            shown = command(folder, "accounts", "show", (folder / "account").read_text())
            assert shown.returncode == 0, shown.stderr
            assert "Muster AG" in shown.stdout
            check_writes_refused(folder, "the file is not writable for this user")
        finally:
            read_only.undo()
            panel.close()

    def test_a_wal_without_its_shm_in_a_read_only_folder(
        self, folder: Path, read_only: ReadOnly
    ) -> None:
        # What a crashed panel leaves: changes in the -wal that only a writer brings in.
        # Reading the file alone would show old data as if current: refused instead.
        panel = sqlite3.connect(folder / "team.db", isolation_level=None)
        panel.execute("PRAGMA wal_autocheckpoint = 0")
        panel.execute("UPDATE accounts SET name = 'Muster AG'")
        wal = (folder / "team.db-wal").read_bytes()
        panel.close()  # checkpoints and removes the -wal and -shm
        (folder / "team.db-wal").write_bytes(wal)
        read_only(folder / "team.db", folder / "team.db-wal", folder)
        proc = command(folder, "members", (folder / "account").read_text())
        assert proc.returncode == 10, proc.stderr
        assert proc.stderr == (
            f"error: the database {folder / 'team.db'} cannot be read by this user: "
            "team.db-wal holds changes not yet in the file, and SQLite needs team.db-shm to "
            f"read them, which it cannot create in the read-only directory {folder}; open "
            "the database once as its owner (e.g. 'teamaccess migrate'), which writes the "
            "changes into the file, then read it again\n"
        )


class TestOlderSchema:
    """A read-only file of an older schema cannot be upgraded where it is: reading
    commands say to run 'teamaccess migrate' as its owner, not SQLite's "attempt to write
    a readonly database", and change nothing."""

    @pytest.mark.parametrize("folder_too", [False, True], ids=["file", "file-and-folder"])
    def test_reading_commands_say_to_migrate(
        self, folder: Path, read_only: ReadOnly, folder_too: bool
    ) -> None:
        today = folder.parent / "today.db"
        (folder / "team.db").rename(today)
        older_file(today, folder / "team.db", 3)
        read_only(folder / "team.db", *([folder] if folder_too else []))
        before = digest(folder)
        account = (folder / "account").read_text()
        for args in (("members", account), ("deliver", "--list"), ("audit", account)):
            proc = command(folder, *args)
            assert proc.returncode == 10, (args, proc.stderr)
            assert proc.stderr == (
                f"error: the teamaccess database {folder / 'team.db'} has schema version 3, "
                f"older than this teamaccess's {len(MIGRATIONS)}, and is opened read-only, so "
                "it cannot be upgraded: run 'teamaccess migrate' once as a user who may write "
                "it (the file's owner), then read it again (the file was not changed)\n"
            ), args
        assert digest(folder)["team.db"] == before["team.db"]
        # what the message says to do works
        read_only.undo()
        assert command(folder, "migrate").returncode == 0
        read_only(folder / "team.db", *([folder] if folder_too else []))
        check_reads(folder)

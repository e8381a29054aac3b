"""The secret key file beside a SQLite database is used only when it is a regular file of
the running user's that nobody else can read: a symbolic link, a file another user owns
(root included: a key planted in a shared folder), or one others can read is refused with
one error line that says how to fix it (exit status 3), and the file is left as it was.
Real subprocesses on real files; the owner cases as root, where a file can be given away."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = os.geteuid() == 0
ME = pwd.getpwuid(os.geteuid()).pw_name
KEY = b"the-real-key-0123456789abcdefghijklmnop\n"


def command(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", "team.db", *args],
        cwd=folder, env=clean, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def with_account(folder: Path) -> str:
    proc = command(folder, "accounts", "create", "--name", "A", "--owner-id", "max",
                   "--owner-email", "max@example.com")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[2]


def state(path: Path) -> tuple[bytes, int, int, bool]:
    info = path.lstat()
    return path.read_bytes(), info.st_mode, info.st_uid, path.is_symlink()


def refused(folder: Path, account: str) -> list[str]:
    """The error lines of a command that reads and one that signs; each refused alike."""
    lines = []
    for args in (("members", account), ("invite", account, "x@example.com", "--all",
                                         "--as", "max")):  # fmt: skip
        proc = command(folder, *args)
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1
        assert "Traceback" not in proc.stderr
        lines.append(proc.stderr)
    assert lines[0] == lines[1]
    return lines


def test_a_key_file_that_is_a_symbolic_link(tmp_path: Path) -> None:
    account = with_account(tmp_path)
    key = tmp_path / "team.db.secret"
    # A private key file of this very user elsewhere: the link alone is refused.
    elsewhere = tmp_path / "planted"
    key.rename(elsewhere)
    elsewhere.write_bytes(KEY)
    key.symlink_to(elsewhere)
    before = state(key)
    (line, _) = refused(tmp_path, account)
    assert line == (
        "error: the secret key file team.db.secret is a symbolic link; the command uses "
        "only a file of its own there: replace the link with the key file itself (mode 600, "
        "owned by the user who runs the command), or delete it to generate a new key (open "
        "invitations then stop working), or set TEAMACCESS_SECRET_KEY\n"
    )
    assert state(key) == before
    assert elsewhere.read_bytes() == KEY
    # what it says to do works
    key.unlink()
    elsewhere.rename(key)
    assert command(tmp_path, "members", account).returncode == 0


def test_a_dangling_symbolic_link_is_not_followed_to_create_a_key(tmp_path: Path) -> None:
    account = with_account(tmp_path)
    key = tmp_path / "team.db.secret"
    key.unlink()
    target = tmp_path / "elsewhere"
    key.symlink_to(target)
    # refused as a link, not "no key file here, create one with > team.db.secret",
    # which would write the key through the link
    (line, _) = refused(tmp_path, account)
    assert "is a symbolic link" in line
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_key_file_others_can_read_or_write(tmp_path: Path, mode: int) -> None:
    account = with_account(tmp_path)
    key = tmp_path / "team.db.secret"
    key.chmod(mode)
    before = state(key)
    (line, _) = refused(tmp_path, account)
    assert line == (
        f"error: the secret key file team.db.secret is readable by others (mode {mode:o}); "
        "run: chmod 600 team.db.secret\n"
    )
    assert state(key) == before


@pytest.mark.skipif(not ROOT, reason="only root can give a file to another user")
def test_a_key_file_another_user_owns_is_refused_even_for_root(tmp_path: Path) -> None:
    account = with_account(tmp_path)
    key = tmp_path / "team.db.secret"
    os.chown(key, 65534, 65534)  # planted by nobody, mode 600 as the command writes it
    before = state(key)
    owner = pwd.getpwuid(65534).pw_name
    (line, _) = refused(tmp_path, account)
    assert line == (
        f"error: the secret key file team.db.secret belongs to {owner}, not to {ME} who "
        f"runs the command; run the command as {owner} (sudo -u {owner} teamaccess ...), "
        "or set TEAMACCESS_SECRET_KEY\n"
    )
    assert state(key) == before
    # a key file of the running user's is used
    os.chown(key, os.geteuid(), os.getegid())
    assert command(tmp_path, "members", account).returncode == 0


def test_a_key_file_that_is_not_a_regular_file(tmp_path: Path) -> None:
    account = with_account(tmp_path)
    key = tmp_path / "team.db.secret"
    key.unlink()
    os.mkfifo(key, 0o600)  # would block a plain open() for reading
    (line, _) = refused(tmp_path, account)
    assert line == (
        "error: the secret key file team.db.secret is not a regular file; put the key "
        "file there, or set TEAMACCESS_SECRET_KEY\n"
    )

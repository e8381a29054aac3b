"""The secret key file the command cannot use: one clear line naming the file and what
to do, exit status 3, no traceback. Real subprocesses on real files; an unreadable file
is unreadable for real, so as root the command runs as another user (setpriv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder another user may use too (pytest's own are root's alone, mode 700)."""
    made = Path(tempfile.mkdtemp(prefix="teamaccess-key-"))
    made.chmod(0o777)
    try:
        yield made
    finally:
        shutil.rmtree(made)


def command(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in *folder*; as root, as the unprivileged user nobody (65534), whom
    file modes bind."""
    drop: list[str] = []
    if ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and no setpriv to run the command as another user")
        drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [*drop, sys.executable, "-m", "teamaccess", "--db", "team.db", *args],
        cwd=folder, env=clean, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def created(folder: Path) -> str:
    proc = command(folder, "accounts", "create", "--name", "A", "--owner-id", "max",
                   "--owner-email", "max@example.com")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[2]


def test_an_unreadable_key_file(folder: Path) -> None:
    account = created(folder)
    key = folder / "team.db.secret"
    key.chmod(0o000)
    owner = "nobody" if ROOT else __import__("pwd").getpwuid(os.geteuid()).pw_name
    for args in (("members", account), ("invite", account, "x@example.com", "--all",
                                         "--as", "max")):  # fmt: skip
        proc = command(folder, *args)
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr == (
            f"error: cannot read the secret key file team.db.secret: Permission denied for "
            f"this user (mode 000, owner {owner}); run the command as the user who owns it, "
            "with the file's mode 600 (as that user: chmod 600 team.db.secret), or set "
            "TEAMACCESS_SECRET_KEY to the key it holds\n"
        )
        assert proc.stdout == ""
    # what it says to do works
    key.chmod(0o600)
    assert command(folder, "members", account).returncode == 0


def test_a_key_file_that_is_not_ascii(folder: Path) -> None:
    account = created(folder)
    key = folder / "team.db.secret"
    key.write_bytes(b"abc\xff\xfedef\n")
    proc = command(folder, "members", account)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == (
        "error: the secret key file team.db.secret holds a byte that is not ASCII at "
        "offset 3; it is not a key this command wrote: put the right key file back, or "
        "delete it to generate a new key (open invitations then stop working), or set "
        "TEAMACCESS_SECRET_KEY\n"
    )

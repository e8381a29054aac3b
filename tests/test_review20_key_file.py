"""Root refused a key file another user owns is not told to take it over: ``chown root``
would take the key from the user whose database it is (the panel user's own commands
and worker would then be refused it). Real subprocesses on real files, as root."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest


def command(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", "team.db", *args],
        cwd=folder, env=clean, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_root_is_told_to_run_the_command_as_the_keys_owner(tmp_path: Path) -> None:
    made = command(tmp_path, "accounts", "create", "--name", "A", "--owner-id", "max",
                   "--owner-email", "max@example.com")  # fmt: skip
    assert made.returncode == 0, made.stderr
    account = made.stdout.split()[2]
    key = tmp_path / "team.db.secret"
    os.chown(key, 65534, 65534)  # the panel user's key, as its own command made it
    owner = pwd.getpwuid(65534).pw_name
    proc = command(tmp_path, "members", account)
    assert proc.returncode == 3
    assert proc.stderr == (
        f"error: the secret key file team.db.secret belongs to {owner}, not to root who "
        f"runs the command; run the command as {owner} (sudo -u {owner} teamaccess ...), "
        "or set TEAMACCESS_SECRET_KEY\n"
    )
    assert key.stat().st_uid == 65534

"""Numbers and instants at the edges of what Python holds, through the real command on a
real SQLite file: an integer option with more digits than Python converts is out of
range, not "not a valid integer" with every digit quoted; an end of access before year
1 in UTC is in the past, not "past the end of year 9999"."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import (
    InvalidImport,
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)

LIMIT = sys.get_int_max_str_digits()
HUGE = "9" * (LIMIT + 700)
#: An instant before year 1 once written in UTC.
YEAR_ONE = "0001-01-01T00:30+01:00"
IN_THE_PAST = (
    "the end of access 0001-01-01 00:30 is not in the future; to end access now, suspend "
    "or remove the member"
)


def command(folder: Path, *args: str | bytes, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command in *folder*, with no TEAMACCESS_* setting inherited but the
    key, and *env* on top."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", *args], cwd=folder,
        env={**base, "TEAMACCESS_SECRET_KEY": SECRET, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A database with account K-1 (owner max), member dev and a queued invitation."""
    team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                      secret_key=SECRET, delivery="queue")  # fmt: skip
    team.import_accounts([{
        "id": "K-1", "name": "M", "owner_id": "max", "owner_email": "chef@muster.de",
        "members": [{"user_id": "dev", "email": "dev@agentur.de", "permissions": "*"}],
    }])  # fmt: skip
    team.invite("K-1", actor_id="max", email="neu@agentur.de", permissions=PermissionSet.all())
    team.close()
    return tmp_path


def table(folder: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(folder / "teamaccess.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class TestIntegerOptionsPastPythonsDigits:
    """A usage error (exit 2) that names the digits and the range, in one short line."""

    def test_audit_limit(self, folder: Path) -> None:
        proc = command(folder, "audit", "K-1", "--limit", HUGE)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert proc.stderr == (
            f"error: invalid value for '--limit': a number of {len(HUGE)} digits is more "
            f"than the {LIMIT} digits this command reads; give one in the range x>=1; see "
            "'teamaccess audit --help'\n"
        )

    def test_leading_zeros_count_as_python_counts_them(self, folder: Path) -> None:
        proc = command(folder, "audit", "K-1", "--limit", "0" * LIMIT + "5")
        assert proc.returncode == 2, proc.stderr
        assert f"a number of {LIMIT + 1} digits is more than" in proc.stderr

    def test_digits_of_other_scripts_count_too(self, folder: Path) -> None:
        # int() reads any decimal digit (Arabic-Indic here), so the limit counts them.
        arabic = "\u0669" * 5000
        proc = command(folder, "audit", "K-1", "--limit", arabic)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert f"a number of 5000 digits is more than the {LIMIT} digits" in proc.stderr
        assert arabic not in proc.stderr

    def test_give_up_after_from_the_environment(self, folder: Path) -> None:
        proc = command(folder, "deliver", TEAMACCESS_GIVE_UP_AFTER=HUGE)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert proc.stderr == (
            f"error: invalid value for '--give-up-after': a number of {len(HUGE)} digits is "
            f"more than the {LIMIT} digits this command reads; give one in the range x>=1; "
            "see 'teamaccess deliver --help'\n"
        )
        assert table(folder, "SELECT status FROM outbox") == [("pending",)]
        assert not (folder / "outbox").exists()

    def test_smtp_port_without_a_range(self, folder: Path) -> None:
        proc = command(folder, "members", "K-1", TEAMACCESS_SMTP_PORT=HUGE)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert proc.stderr == (
            f"error: invalid value for '--smtp-port': a number of {len(HUGE)} digits is "
            f"more than the {LIMIT} digits this command reads; give a shorter one; see "
            "'teamaccess --help'\n"
        )


class TestEndOfAccessBeforeYearOne:
    """An end of access before year 1 in UTC is in the past (exit 3), nothing changes."""

    def test_invite_until(self, folder: Path) -> None:
        proc = command(folder, "invite", "K-1", "x@agentur.de", "--all", "--until", YEAR_ONE,
                       "--as", "max")  # fmt: skip
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: {IN_THE_PAST}\n"
        assert len(table(folder, "SELECT id FROM invitations")) == 1

    def test_access_until(self, folder: Path) -> None:
        proc = command(folder, "access-until", "K-1", "dev", YEAR_ONE, "--as", "max")
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: {IN_THE_PAST}\n"
        assert table(folder, "SELECT access_until FROM members WHERE user_id = 'dev'") == [(None,)]

    def test_import_accounts(self, tmp_path: Path) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET)
        until = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
        with pytest.raises(InvalidImport) as info:
            team.import_accounts([{
                "id": "K-1", "name": "M", "owner_id": "max", "owner_email": "chef@muster.de",
                "members": [{"user_id": "dev", "email": "dev@agentur.de", "permissions": "*",
                             "access_until": until}],
            }])  # fmt: skip
        assert [p.message for p in info.value.problems] == [
            "access_until 0001-01-01 00:30 is not in the future; to end access now, suspend "
            "or remove the member"
        ]
        team.close()

    def test_past_year_9999_is_still_said_so(self, tmp_path: Path) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET)
        acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        until = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2)))
        with pytest.raises(ValidationError, match=r"^access_until 9999-12-31 23:00-0200 lies past"):
            team.invite(acc.id, actor_id="max", email="x@agentur.de",
                        permissions=PermissionSet.all(), access_until=until)  # fmt: skip
        assert team.pending_invitations(acc.id) == []
        assert datetime.now(UTC).year < 9999
        team.close()

"""A byte that is not UTF-8 in --owner-email or --as (Python reads it as a lone
surrogate) is named by the option the operator typed, not by the library's parameter
(owner_email, actor_id). The real command in a subprocess, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SECRET
from tests.test_attack14_numbers import command

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess

NOT_UNICODE = (
    "is not valid Unicode text (it holds a lone surrogate); decode the input as UTF-8 "
    "before passing it\n"
)


class TestOptionsNamedAsTyped:
    """The error line names the option; nothing is stored."""

    def test_owner_email(self, tmp_path: Path) -> None:
        proc = command(tmp_path, "accounts", "create", "--name", "M", "--owner-id", "max",
                       "--owner-email", b"chef\xff@muster.de")  # fmt: skip
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: --owner-email {NOT_UNICODE}"
        assert list(tmp_path.iterdir()) == []

    def test_as(self, tmp_path: Path) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                          secret_key=SECRET)  # fmt: skip
        acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        team.close()
        proc = command(tmp_path, "invite", acc.id, "dev@agentur.de", "--all", "--as", b"m\xffx")
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: --as {NOT_UNICODE}"
        team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                          secret_key=SECRET)  # fmt: skip
        assert team.pending_invitations(acc.id) == []
        team.close()

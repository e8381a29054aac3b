"""A refused command leaves no new file behind, and never removes one that was there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess
from teamaccess._cli import cli
from teamaccess._cli.config import remove_if_new_and_unused

ENV = dict.fromkeys(
    ["TEAMACCESS_DB", "TEAMACCESS_SECRET_KEY", "TEAMACCESS_ACTOR", "TEAMACCESS_MAIL",
     "TEAMACCESS_DELIVERY", "TEAMACCESS_OUTBOX", "TEAMACCESS_PSEUDONYM_KEY"]
)  # fmt: skip

#: A file the import refuses on a rule of the service (not of the CSV format): the
#: check runs against the database, so it is opened for writing first.
TWICE = (
    "account,account_name,role,user_id,email\n"
    "K-1,Muster GmbH,owner,u-1,chef@muster.de\n"
    "K-1,,member,u-2,Chef@Muster.de\n"
)

OP = ("--as", "system")
#: Writing commands, each refused on a fresh folder, with the exit code they refuse with.
REFUSED = [
    (["import", "people.csv"], 3),
    (["accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email", "bad"], 3),
    (["invite", "acc_1", "dev@example.com", "--all", *OP], 4),
    (["resend", "inv_1", *OP], 4),
    (["revoke", "inv_1", *OP], 4),
    (["accept", "not-a-token", "--user", "u", "--email", "u@example.com"], 7),
    (["decline", "not-a-token"], 7),
    (["contacts", "add", "acc_1", "--name", "K", "--email", "k@example.com", "-c", "billing",
      *OP], 4),
    (["contacts", "update", "con_1", "--name", "K", *OP], 4),
    (["contacts", "remove", "con_1", *OP], 4),
    (["remove", "acc_1", "u", *OP], 4),
    (["transfer", "acc_1", "u", *OP], 4),
    (["suspend", "acc_1", "u", *OP], 4),
    (["reactivate", "acc_1", "u", *OP], 4),
    (["access-until", "acc_1", "u", "2030-01-01T00:00:00+00:00", *OP], 4),
    (["forget-resource", "acc_1", "srv-1", *OP], 4),
    (["permissions", "set", "acc_1", "u", "--all", *OP], 4),
    (["notify", "acc_1", "billing", "--subject", "S", "--text", "T"], 4),
]  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text(TWICE, encoding="utf-8")
    return tmp_path


def invoke(*args: str, code: int) -> None:
    result = CliRunner(env=ENV).invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    assert "Traceback" not in result.stderr


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} - {"people.csv"}


class TestRefusedCommandsLeaveNoFile:
    """A writing command refused on a fresh folder creates no database and no key file."""

    @pytest.mark.parametrize(("args", "code"), REFUSED, ids=[" ".join(a[:2]) for a, _ in REFUSED])
    def test_no_new_file(self, folder: Path, args: list[str], code: int) -> None:
        invoke(*args, code=code)
        assert files(folder) == set()

    def test_the_same_command_corrected_creates_them(self, folder: Path) -> None:
        invoke("accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email",
               "u@example.com", code=0)  # fmt: skip
        assert files(folder) == {"teamaccess.db", "teamaccess.db.secret"}

    def test_an_existing_empty_database_stays(self, folder: Path) -> None:
        invoke("migrate", code=0)
        before = (folder / "teamaccess.db").read_bytes()
        invoke(*REFUSED[1][0], code=3)
        assert (folder / "teamaccess.db").read_bytes() == before

    def test_an_existing_database_and_key_stay(self, folder: Path) -> None:
        invoke("accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email",
               "u@example.com", code=0)  # fmt: skip
        key = (folder / "teamaccess.db.secret").read_text()
        for args, code in REFUSED:
            invoke(*args, code=code)
        assert files(folder) == {"teamaccess.db", "teamaccess.db.secret"}
        assert (folder / "teamaccess.db.secret").read_text() == key
        conn = sqlite3.connect(folder / "teamaccess.db")
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
        conn.close()


class TestRemoveIfNewAndUnused:
    """The clean-up removes a database only when it is empty and nobody has it open."""

    def test_empty_and_closed_is_removed(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        SQLiteStore(path).close()
        assert remove_if_new_and_unused(path)
        assert list(tmp_path.iterdir()) == []

    def test_open_elsewhere_is_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        SQLiteStore(path).close()
        other = SQLiteStore(path)  # another process that opened the new file meanwhile
        try:
            assert not remove_if_new_and_unused(path)
            assert path.exists()
            with other.begin() as unit:  # and it still writes to the file on disk
                unit.commit()
        finally:
            other.close()
        assert SQLiteStore(path).schema_version > 0

    def test_with_rows_is_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key="k" * 32)
        team.create_account(name="A", owner_id="u", owner_email="u@example.com")
        team.close()
        assert not remove_if_new_and_unused(path)
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()

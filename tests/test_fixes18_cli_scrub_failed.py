"""``teamaccess erase``, ``delete-account`` and ``purge`` when the deletion is committed
but the scrub afterwards fails (ScrubFailed): the command prints what it deleted, as on
success (text or ``--json``), then the failure naming ``teamaccess scrub``, and exits
with its own status (12). The fault is real: another connection reading the SQLite
file keeps its snapshot, so the WAL cannot be emptied within the store's timeout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from teamaccess import SQLiteStore
from teamaccess._cli import cli
from teamaccess._cli.app import EXIT_SCRUB_FAILED

from .test_cli import ENV_VARS
from .test_privacy18_scrub_failed import ADDRESS, file_bytes, seeded, sqlite_reader


def seeded_file(tmp_path: Path) -> tuple[Path, str]:
    """A database with pia a member of account A, made on 2026-01-05 (so purge finds
    the mail of her invitation past a day's retention)."""
    path = tmp_path / "teamaccess.db"
    team, _clock, acc = seeded(SQLiteStore(path))
    team.close()
    return path, acc


def invoke(path: Path, *args: str) -> Result:
    env: dict[str, str | None] = dict.fromkeys(ENV_VARS)
    env["TEAMACCESS_PSEUDONYM_KEY"] = "a key kept elsewhere"  # erase needs no key file
    return CliRunner(env=env).invoke(cli, ["--db", str(path), *args])


def failed_scrub(path: Path, *args: str) -> Result:
    with sqlite_reader(path):
        result = invoke(path, *args)
    assert result.exit_code == EXIT_SCRUB_FAILED == 12, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "is committed, but scrubbing the store afterwards failed" in line
    assert "run 'teamaccess scrub'" in line
    assert "Traceback" not in result.stderr
    return result


def scrub_finishes(path: Path) -> None:
    result = invoke(path, "scrub")
    assert result.exit_code == 0, result.stderr
    assert ADDRESS not in file_bytes(path)


class TestReportPrinted:
    """What the deletion did is on stdout even though the scrub failed."""

    def test_erase_text(self, tmp_path: Path) -> None:
        path, _acc = seeded_file(tmp_path)
        result = failed_scrub(path, "erase", "--user", "pia", "--as", "system", "--yes")
        assert result.stdout.startswith("erased: 1 membership(s), 1 invitation(s)")
        scrub_finishes(path)

    def test_erase_json(self, tmp_path: Path) -> None:
        path, _acc = seeded_file(tmp_path)
        result = failed_scrub(path, "erase", "--user", "pia", "--as", "system", "--yes", "--json")
        report = json.loads(result.stdout)
        assert (report["memberships"], report["user_ids"]) == (1, ["pia"])
        assert report["removed"] >= 1
        scrub_finishes(path)

    @pytest.mark.parametrize("as_json", [False, True])
    def test_delete_account(self, tmp_path: Path, as_json: bool) -> None:
        path, acc = seeded_file(tmp_path)
        args = ("delete-account", acc, "--as", "system", "--yes")
        result = failed_scrub(path, *args, *(("--json",) if as_json else ()))
        if as_json:
            assert json.loads(result.stdout)["members"] == 2
        else:
            assert result.stdout.startswith(f"deleted account {acc}: 2 member(s)")
        scrub_finishes(path)

    def test_purge(self, tmp_path: Path) -> None:
        path, _acc = seeded_file(tmp_path)
        result = failed_scrub(path, "purge", "--sent-mail", "1", "--json")
        report = json.loads(result.stdout)
        assert report["messages"] >= 1
        assert report["total"] >= 1

"""Commands that only work on data already stored refuse a database that does not exist.

``purge``, ``deliver`` and ``erase`` change a database but have nothing to do in an empty
one: on a path with no database they say so and create nothing, where the commands that
start a database (``accounts create``, ``import``, ``migrate``, ``demo``) still create it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from teamaccess._cli import cli

ENV = dict.fromkeys(
    ["TEAMACCESS_DB", "TEAMACCESS_SECRET_KEY", "TEAMACCESS_ACTOR", "TEAMACCESS_MAIL",
     "TEAMACCESS_DELIVERY", "TEAMACCESS_OUTBOX", "TEAMACCESS_PSEUDONYM_KEY"]
)  # fmt: skip

NEEDS_DATA = [
    ["purge"],
    ["purge", "--json"],
    ["deliver"],
    ["deliver", "--json"],
    ["deliver", "--watch"],
    ["erase", "--user", "u", "--as", "system", "--yes"],
    ["erase", "--email", "u@example.com", "--as", "system", "--yes", "--json"],
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args", NEEDS_DATA, ids=" ".join)
def test_no_database_is_an_error_and_creates_nothing(folder: Path, args: list[str]) -> None:
    result = CliRunner(env=ENV).invoke(cli, ["--db", "shop.db", *args])
    assert result.exit_code == 3, (result.output, result.exception)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: there is no database shop.db")
    assert "--db" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args", NEEDS_DATA, ids=" ".join)
def test_an_existing_database_is_worked_on(folder: Path, args: list[str]) -> None:
    created = CliRunner(env=ENV).invoke(
        cli, ["--db", "shop.db", "accounts", "create", "--name", "A", "--owner-id", "o",
              "--owner-email", "o@example.com"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    if "--watch" in args:
        return  # a worker runs until stopped; tests/test_worker.py runs it
    result = CliRunner(env=ENV).invoke(cli, ["--db", "shop.db", *args])
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["accounts", "create", "--name", "A", "--owner-id", "o", "--owner-email", "o@example.com"],
    ],
    ids=" ".join,
)
def test_the_commands_that_start_a_database_still_create_it(folder: Path, args: list[str]) -> None:
    result = CliRunner(env=ENV).invoke(cli, ["--db", "shop.db", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert (folder / "shop.db").is_file()


def test_a_missing_database_in_a_missing_folder_is_named(folder: Path) -> None:
    result = CliRunner(env=ENV).invoke(cli, ["--db", "nowhere/shop.db", "purge"])
    assert result.exit_code == 3
    assert "no database nowhere/shop.db" in result.stderr
    assert list(folder.iterdir()) == []

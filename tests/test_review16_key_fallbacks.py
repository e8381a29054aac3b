"""``TEAMACCESS_SECRET_KEY_FALLBACKS``: an older key that cannot be used is blamed on that
variable, not on ``TEAMACCESS_SECRET_KEY`` (which is fine), and refused before anything
is written."""

from __future__ import annotations

from tests.test_cli import Cli, account, run

__all__ = ["account", "run"]  # fixtures, imported for pytest


def test_an_unencodable_older_key_names_its_variable(run: Cli, account: str) -> None:
    run.env["TEAMACCESS_SECRET_KEY"] = "key-2027"
    # A byte that is not UTF-8 in the environment: os.environ holds a lone surrogate.
    run.env["TEAMACCESS_SECRET_KEY_FALLBACKS"] = "key-2026,old\udcffkey"
    before = sorted(run.folder.iterdir())
    line = run.error("invite", account, "ops@example.com", "--all", "--as", "max", code=3)
    assert "TEAMACCESS_SECRET_KEY_FALLBACKS" in line, line
    assert sorted(run.folder.iterdir()) == before

"""Review of round 18: PostgreSQL URLs as other tools write them, given to ``--db``.

The refusal of a URL whose scheme is not written exactly ``postgresql://`` took the
scheme to start the value and to end at the colon: SQLAlchemy's
``postgresql+psycopg://``, JDBC's ``jdbc:postgresql://`` and a missing colon were still
taken for a SQLite file's path, and the error quoted the value, password and all.
"""

from __future__ import annotations

import pytest
from tests.test_cli import Cli, run

__all__ = ["run"]  # a fixture, imported for pytest

SECRET = "s3cretpw"


@pytest.mark.parametrize(
    "db",
    [
        f"postgresql+psycopg://panel:{SECRET}@localhost/panel",
        f"postgresql+psycopg2://panel:{SECRET}@localhost/panel",
        f"postgres+asyncpg://panel:{SECRET}@localhost/panel",
        f"jdbc:postgresql://localhost/panel?password={SECRET}",
        f"postgresql//panel:{SECRET}@localhost/panel",
    ],
)
@pytest.mark.parametrize("command", [("migrate",), ("members", "acc_x")])
def test_a_url_of_another_tool_is_refused_unshown(
    run: Cli, db: str, command: tuple[str, ...]
) -> None:
    line = run.error("--db", db, *command, code=3)
    assert SECRET not in line
    assert "postgresql://USER@HOST:PORT/DBNAME" in line
    assert list(run.folder.iterdir()) == []


@pytest.mark.parametrize("db", ["postgres.db", "postgresql-team.db", "pg+team.db"])
def test_a_file_named_after_postgres_is_still_a_file(run: Cli, db: str) -> None:
    assert f"{db}: created" in run("--db", db, "migrate").stdout

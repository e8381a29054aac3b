"""Attack round 18 on the command's ``--db``: a PostgreSQL password in its output.

A ``--db`` meant for PostgreSQL that is not a ``postgresql://`` URL exactly (libpq's
keyword/value form ``host=... password=...``, an upper-case scheme, a space before it,
one slash, a driver as SQLAlchemy writes it, JDBC's ``jdbc:`` before it) was taken for
a SQLite file's path: ``migrate`` created a SQLite file and a
key file named after it, password and all, and printed the name; other forms failed
with an error quoting it. And the label that hides the password in a URL's query read
a ``?`` in the user name as the query's start, so ``?password=`` after it was printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.test_cli import Cli, run

__all__ = ["run"]  # a fixture, imported for pytest

SECRET = "s3cretpw"


@pytest.mark.parametrize(
    "db",
    [
        f"host=localhost dbname=panel password={SECRET}",
        f"dbname = panel user=panel password={SECRET}",
        f"  password={SECRET} host=db",
        f"PostgreSQL://panel:{SECRET}@localhost/panel",
        f"postgresql:/panel:{SECRET}@localhost/panel",
        f" postgresql://panel:{SECRET}@localhost/panel",
        f"POSTGRES://panel@localhost/panel?password={SECRET}",
        # as other tools write it: SQLAlchemy's driver, JDBC, the colon left out
        f"postgresql+psycopg://panel:{SECRET}@localhost/panel",
        f"postgresql+psycopg2://panel:{SECRET}@localhost/panel",
        f"postgres+asyncpg://panel:{SECRET}@localhost/panel",
        f"jdbc:postgresql://localhost/panel?password={SECRET}",
        f"postgresql//panel:{SECRET}@localhost/panel",
    ],
)
@pytest.mark.parametrize("command", [("migrate",), ("members", "acc_x")])
def test_a_postgres_lookalike_is_refused_unshown_and_creates_nothing(
    run: Cli, db: str, command: tuple[str, ...]
) -> None:
    line = run.error("--db", db, *command, code=3)
    assert SECRET not in line
    assert "postgresql://USER@HOST:PORT/DBNAME" in line
    assert list(run.folder.iterdir()) == []


@pytest.mark.parametrize("db", ["postgres.db", "postgresql-team.db", "pg+team.db"])
def test_a_file_named_after_postgres_is_still_a_file(run: Cli, db: str) -> None:
    assert f"{db}: created" in run("--db", db, "migrate").stdout


def test_the_refusal_holds_for_the_environment_variable(tmp_path: Path) -> None:
    # The real command in its own process, as cron runs it with TEAMACCESS_DB set.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    env["TEAMACCESS_DB"] = f"host=db.internal dbname=panel password={SECRET}"
    done = subprocess.run(
        [sys.executable, "-m", "teamaccess", "migrate", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("db", ["team.db", "postgres=1.db", "hosting.db", "host.db"])
def test_a_file_path_that_only_resembles_one_is_still_a_file(run: Cli, db: str) -> None:
    assert f"{db}: created" in run("--db", db, "migrate").stdout


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        # libpq reads the user "u?x" and then the query's password (psycopg's
        # conninfo_to_dict says the same): the "?" in the user name starts no query.
        (f"postgresql://u?x@db/panel?password={SECRET}", "postgresql://u?x@db/panel?password=***"),
        (f"postgres://u?x:pw@db/panel?password={SECRET}", "postgres://u?x:***@db/panel?password=***"),
        (f"postgresql://u?sslmode=1@db/p?sslpassword={SECRET}",
         "postgresql://u?sslmode=1@db/p?sslpassword=***"),
    ],
)  # fmt: skip
def test_the_label_finds_the_query_after_a_question_mark_in_the_user(db: str, shown: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from teamaccess._cli.config import safe_db_label

    assert SECRET in conninfo_to_dict(db).values()  # libpq takes it as a password
    assert safe_db_label(db) == shown

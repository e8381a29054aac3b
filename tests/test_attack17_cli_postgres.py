"""Attack round 17 on the command's output of a PostgreSQL ``--db``: the password.

``teamaccess migrate`` (and ``demo``) print the database they worked on through a label
that hid a password in the URL's user part only; libpq also takes it in the query
(``?password=...``, and ``sslpassword=`` for a client key), and that was printed as
given, on the terminal and in whatever log collects a cron job's output.
"""

from __future__ import annotations

import json

import pytest
from tests.test_cli import Cli
from tests.test_cli_postgres import run

__all__ = ["run"]  # a fixture, imported for pytest


def _with(url: str, parameter: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{parameter}"


@pytest.mark.postgres
@pytest.mark.parametrize("parameter", ["password", "sslpassword", "pass%77ord"])
@pytest.mark.parametrize("as_json", [False, True])
def test_migrate_hides_a_password_in_the_query(run: Cli, parameter: str, as_json: bool) -> None:
    url = run.env["TEAMACCESS_DB"]
    assert url is not None
    if parameter != "sslpassword" and "password" in url:
        pytest.skip("the test server's URL has a password of its own, which this would replace")
    # The test server takes no password (or its own), so the connection still works.
    db = _with(url, f"{parameter}=hunter2")
    result = run("--db", db, "migrate", *(["--json"] if as_json else []))
    assert "hunter2" not in result.stdout + result.stderr
    label = json.loads(result.stdout)["database"] if as_json else result.stdout
    assert f"{parameter}=***" in label


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        # libpq reads the credentials up to the first "@" before any "/": a "?" or "#"
        # in the password is the password's, where Python's URL parser ends the host.
        ("postgresql://panel:hun?ter2@db.internal/panel", "postgresql://panel:***@db.internal/panel"),
        ("postgresql://panel:hun#ter2@db.internal/panel", "postgresql://panel:***@db.internal/panel"),
        # "#" starts no fragment for libpq: what follows "?" is the query still.
        ("postgresql://db/panel#x?password=hunter2", "postgresql://db/panel#x?password=***"),
        ("postgres://[::1/panel?password=hunter2", "postgres://[::1/panel?password=***"),
        ("postgresql:///panel?host=/run/pg&password=hunter2&sslmode=disable",
         "postgresql:///panel?host=/run/pg&password=***&sslmode=disable"),
        ("postgresql://panel@db/panel?passwordless=1", "postgresql://panel@db/panel?passwordless=1"),
    ],
)  # fmt: skip
def test_the_label_finds_the_password_where_libpq_does(db: str, shown: str) -> None:
    from teamaccess._cli.config import safe_db_label

    assert safe_db_label(db) == shown

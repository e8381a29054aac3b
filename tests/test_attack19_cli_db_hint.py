"""Attack round 19 on the command's ``--db``: a PostgreSQL URL that libpq cannot read
(a '%' or a '?' in the password not percent-encoded) was refused with advice to pass
libpq's keyword/value form ``host=... dbname=...``, which the command itself refuses;
the advice is now how to write the URL."""

from __future__ import annotations

import pytest
from tests.test_cli import Cli, run

from teamaccess import PostgresStore, ValidationError

__all__ = ["run"]  # a fixture, imported for pytest

SECRET = "s3cret%pw"


@pytest.mark.parametrize(
    "db",
    [
        f"postgresql://panel:{SECRET}@localhost/panel",
        "postgresql://panel@localhost/panel?password",
        "postgres://panel@localhost/panel?no_such_parameter=1",
    ],
)
def test_an_unreadable_url_is_told_how_to_write_a_url(run: Cli, db: str) -> None:
    line = run.error("--db", db, "migrate", code=3)
    assert "host=" not in line  # the form the command refuses
    assert "'postgresql://user@host/dbname'" in line
    assert "%25" in line
    assert SECRET not in line
    assert list(run.folder.iterdir()) == []


def test_the_library_still_names_both_forms_for_a_keyword_value_string() -> None:
    with pytest.raises(ValidationError, match=r"host=\.\.\. dbname=\.\.\.") as caught:
        PostgresStore(f"host=localhost password='{SECRET}")
    assert SECRET not in str(caught.value)

"""The ``teamaccess`` command on PostgreSQL: ``--db postgresql://...`` for every command.

The command suites of tests/test_cli.py that do not look at the SQLite file run here
again, on a PostgreSQL URL in TEAMACCESS_DB, a schema of the test's own in
TEAMACCESS_SCHEMA and a key in TEAMACCESS_SECRET_KEY; then what only a server database
has: ``migrate``, the key that must be given, the password kept out of the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tests.test_cli as base
from tests.conftest import drop_postgres_schema, postgres_conninfo, postgres_schema
from tests.test_cli import Cli, account  # noqa: F401 (account: a fixture used by the suites)

from teamaccess import PostgresStore
from teamaccess._backends.postgres_schema import MIGRATIONS

pytestmark = pytest.mark.postgres

VERSION = len(MIGRATIONS)  # the schema version this code writes


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.chdir(tmp_path)
    cli = Cli(tmp_path)
    cli.env["TEAMACCESS_DB"] = to_url(postgres_conninfo())
    cli.env["TEAMACCESS_SCHEMA"] = postgres_schema(tmp_path)
    cli.env["TEAMACCESS_SECRET_KEY"] = "cli-test-key"
    yield cli
    drop_postgres_schema(tmp_path)


def to_url(conninfo: str) -> str:
    """The test server as a postgresql:// URL, the form --db recognises."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        return conninfo
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    return "postgresql:///?" + urlencode(params)


class TestAccountsOnPostgres(base.TestAccounts):
    """Accounts through the command, on PostgreSQL."""


class TestInvitationsOnPostgres(base.TestInvitations):
    """Invitations through the command, on PostgreSQL."""


class TestMembersAndPermissionsOnPostgres(base.TestMembersAndPermissions):
    """Members and permissions through the command, on PostgreSQL."""


class TestContactsAndMailOnPostgres(base.TestContactsAndMail):
    """Contacts, notices and delivery through the command, on PostgreSQL."""


class TestAuditOnPostgres(base.TestAudit):
    """The audit log through the command, on PostgreSQL."""


class TestErrorsOnPostgres(base.TestErrors):
    """Error lines and exit codes, on PostgreSQL."""

    def test_storage_error(self, run: Cli) -> None:
        run.env["TEAMACCESS_SCHEMA"] = "bad-name"
        line = run.error("accounts", "list", "max", code=3)
        assert "plain PostgreSQL name" in line


class TestDemoOnPostgres:
    """The demo story on PostgreSQL."""

    def test_demo_twice(self, run: Cli) -> None:
        assert "run 1" in run("demo").stdout
        assert "max now owns 2 demo accounts" in run("demo").stdout


class TestMigrate:
    """`teamaccess migrate` applies the schema, once, and says which version it is."""

    def test_creates_then_finds_it_up_to_date(self, run: Cli, tmp_path: Path) -> None:
        schema = postgres_schema(tmp_path)
        assert run.json("migrate") == {
            "database": f"{run.env['TEAMACCESS_DB']} (schema {schema})",
            "schema_version": VERSION,
            "previous_version": 0,
        }
        out = run("migrate").stdout
        assert out.endswith(f"(schema {schema}): schema version {VERSION}, up to date\n")
        assert run.json("migrate")["previous_version"] == VERSION

    def test_says_it_created_a_new_schema(self, run: Cli, tmp_path: Path) -> None:
        """It said "up to date" on a schema it had just made."""
        schema = postgres_schema(tmp_path)
        out = run("migrate").stdout
        assert out.endswith(f"(schema {schema}): created, schema version {VERSION}\n")

    def test_says_it_upgraded_an_older_schema(
        self, run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from teamaccess._backends import postgres as pg_backend

        schema = postgres_schema(tmp_path)
        with monkeypatch.context() as patch:
            patch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:1])
            PostgresStore(str(run.env["TEAMACCESS_DB"]), schema=schema).close()
        out = run("migrate").stdout
        assert out.endswith(f"(schema {schema}): upgraded from schema version 1 to {VERSION}\n")

    def test_needs_no_secret_key(self, run: Cli) -> None:
        run.env["TEAMACCESS_SECRET_KEY"] = None
        assert run.json("migrate")["schema_version"] == VERSION

    def test_on_sqlite_too(self, run: Cli) -> None:
        first = run.json("--db", "team.db", "migrate")
        version = run.json("--db", "team.db", "migrate")["schema_version"]
        assert first == {"database": "team.db", "schema_version": version, "previous_version": 0}
        assert (run.folder / "team.db").is_file()


class TestSettings:
    """What a server database needs from the command's settings."""

    def test_the_secret_key_must_be_given(self, run: Cli) -> None:
        run.env["TEAMACCESS_SECRET_KEY"] = None
        line = run.error(
            "accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email",
            "u@example.com", code=3,
        )  # fmt: skip
        assert "set TEAMACCESS_SECRET_KEY" in line
        assert not any(run.folder.iterdir())

    @pytest.mark.parametrize(
        "args",
        [
            ("members", "ACCOUNT"),
            ("audit", "ACCOUNT"),
            ("invitations", "ACCOUNT"),
            ("accounts", "list", "max"),
            ("deliver", "--list"),
            ("export", "--user", "max"),
            ("purge",),
            ("erase", "--email", "dev@example.org", "--as", "system", "--yes"),
        ],
        ids=lambda args: "-".join(a for a in args if a.isalpha()),
    )
    def test_what_signs_nothing_runs_without_the_key(self, run: Cli, args: tuple[str, ...]) -> None:
        """A cron job's purge, a support login's listing and an erasure with a pseudonym
        key of its own sign and check no link: they need not hold the panel's key (they
        all stopped asking for TEAMACCESS_SECRET_KEY)."""
        made = run.json(
            "accounts", "create", "--name", "A", "--owner-id", "max", "--owner-email",
            "max@example.com",
        )["id"]  # fmt: skip
        run("invite", made, "dev@example.org", "--all", "--as", "max")
        run.env["TEAMACCESS_SECRET_KEY"] = None
        run.env["TEAMACCESS_PSEUDONYM_KEY"] = "the-pseudonym-key-" + "q" * 20
        run(*(made if a == "ACCOUNT" else a for a in args))

    @pytest.mark.parametrize(
        "args", [("inspect", "TOKEN"), ("deliver",), ("resend", "INVITATION", "--as", "max")]
    )
    def test_what_signs_or_checks_a_link_needs_the_key(
        self, run: Cli, args: tuple[str, ...]
    ) -> None:
        made = run.json(
            "accounts", "create", "--name", "A", "--owner-id", "max", "--owner-email",
            "max@example.com",
        )["id"]  # fmt: skip
        invited = run.json("invite", made, "dev@example.org", "--all", "--as", "max")
        run.env["TEAMACCESS_SECRET_KEY"] = None
        run.env["TEAMACCESS_PSEUDONYM_KEY"] = "the-pseudonym-key-" + "q" * 20
        names = {"TOKEN": invited["token"], "INVITATION": invited["id"]}
        line = run.error(*(names.get(a, a) for a in args), code=3)
        assert "set TEAMACCESS_SECRET_KEY" in line

    def test_the_password_stays_out_of_the_output(self, run: Cli) -> None:
        url = "postgresql://panel:hunter2@/nodb?host=/nonexistent-dir&port=1"
        line = run.error("--db", url, "accounts", "list", "u", code=10)
        assert "hunter2" not in line
        assert "could not be reached" in line

    def test_schema_option(self, run: Cli, tmp_path: Path) -> None:
        other = postgres_schema(tmp_path / "other")
        try:
            run("--schema", other, "accounts", "create", "--name", "A", "--owner-id", "u1",
                "--owner-email", "u1@example.com")  # fmt: skip
            assert len(run.json("--schema", other, "accounts", "list", "u1")) == 1
            assert run.json("accounts", "list", "u1") == []
        finally:
            drop_postgres_schema(tmp_path / "other")

"""What a new user met embedding the library in a Flask panel from the docs alone."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import drop_postgres_schema, postgres_conninfo, postgres_schema
from tests.test_cli import Cli
from tests.test_cli_postgres import to_url

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SQLiteStore,
    TeamAccess,
    UnknownPermission,
    ValidationError,
)
from teamaccess._service.delivery import _Delivery

flask = pytest.importorskip("flask")

from teamaccess.web import Request, User  # noqa: E402  (needs the web extra)
from teamaccess.web.flask import blueprint  # noqa: E402


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command in a folder of its own, with no TEAMACCESS_* settings inherited."""
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path)


@pytest.fixture
def pg_run(run: Cli) -> Iterator[Cli]:
    """The command on the test server's database, in a schema of its own."""
    run.env["TEAMACCESS_DB"] = to_url(postgres_conninfo())
    run.env["TEAMACCESS_SCHEMA"] = postgres_schema(run.folder)
    run.env["TEAMACCESS_SECRET_KEY"] = "cli-test-key"
    yield run
    drop_postgres_schema(run.folder)


@pytest.fixture
def team() -> TeamAccess:
    return TeamAccess(MemoryStore(), MemoryMailer(), secret_key="newcomer")


class TestDeliverPendingSignature:
    """help() and editors show deliver_pending()'s own keywords, not (*args, **kwargs)."""

    def test_the_public_signature_is_the_real_one(self) -> None:
        shown = inspect.signature(TeamAccess.deliver_pending)
        assert shown == inspect.signature(_Delivery.deliver_pending)
        assert list(shown.parameters) == ["self", "limit", "stop"]

    def test_it_still_sends_and_passes_its_arguments(self) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(MemoryStore(), mailer, secret_key="newcomer", delivery="queue")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        for n in range(2):
            team.invite(
                account.id, actor_id="max", email=f"p{n}@m.de", permissions=PermissionSet.none()
            )
        assert [row.status for row in team.deliver_pending(limit=1)] == ["sent"]
        assert team.deliver_pending(stop=lambda: True) == []  # stopped before the second
        assert len(mailer.outbox) == 1
        with pytest.raises(ValidationError, match="limit must be a positive integer"):
            team.deliver_pending(limit=0)


class TestPermissionsAsAString:
    """A string where a PermissionSet belongs gets a hint that works when followed."""

    @pytest.mark.parametrize(
        ("given", "written"),
        [
            ("billing.view", "PermissionSet.of('billing.view')"),
            ("*", "PermissionSet.all()"),
            ("all", "PermissionSet.all()"),
            ("ALL", "PermissionSet.all()"),
            (
                "billing.view, support.tickets",
                "PermissionSet.of('billing.view', 'support.tickets')",
            ),
            ("", "PermissionSet.none()"),
        ],
    )
    def test_the_hint(self, team: TeamAccess, given: str, written: str) -> None:
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        with pytest.raises(ValidationError) as caught:
            team.invite(account.id, actor_id="max", email="dev@m.de", permissions=given)
        assert str(caught.value).endswith(f"; write {written}")
        # What the hint says is accepted as it stands (it was PermissionSet.of('*'),
        # which is refused as an unknown permission).
        hinted = eval(written, {"PermissionSet": PermissionSet})  # noqa: S307  (our own text)
        assert team.invite(account.id, actor_id="max", email="dev@m.de", permissions=hinted)
        assert team.pending_invitations(account.id)[0].permissions == hinted

    def test_set_permissions_says_the_same(self, team: TeamAccess) -> None:
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        inv = team.invite(
            account.id, actor_id="max", email="dev@m.de", permissions=PermissionSet.none()
        )
        team.accept_invitation(inv.token or "", user_id="anna", email="dev@m.de")
        with pytest.raises(ValidationError, match=re.escape("; write PermissionSet.all()")):
            team.set_permissions(account.id, "anna", "*", actor_id="max")  # type: ignore[arg-type]
        assert team.permissions_of("anna", account.id) == PermissionSet.none()

    def test_the_star_in_of_is_still_refused(self) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="newcomer")
        account = team.create_account(name="M", owner_id="max", owner_email="c@m.de")
        with pytest.raises(UnknownPermission, match=re.escape("write PermissionSet.all()")):
            team.invite(
                account.id, actor_id="max", email="d@m.de", permissions=PermissionSet.of("*")
            )


def _panel(team: TeamAccess, current_user: object) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "newcomer"
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the error itself, not Flask's 500 page
    app.register_blueprint(
        blueprint(team, current_user=current_user),  # type: ignore[arg-type]
        url_prefix="/team",
    )
    return app


class TestTheLoggedInUser:
    """A current_user hook returning the wrong thing is told so, in the panel's log."""

    @pytest.mark.parametrize(
        "returned", ["max", ("max", "chef@muster.de"), {"id": "max", "email": "chef@muster.de"}]
    )
    def test_not_a_user(self, team: TeamAccess, returned: object) -> None:
        account = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        client = _panel(team, lambda: returned).test_client()
        wanted = re.escape("(what the current_user hook returns) must be a teamaccess.web.User")
        with pytest.raises(ValidationError, match=wanted) as caught:
            client.get(f"/team/accounts/{account.id}/users")
        assert "chef@muster.de" not in str(caught.value)  # the type only, no personal data

    def test_a_numeric_id(self, team: TeamAccess) -> None:
        # An ORM's integer primary key: before, the page told the customer to check their
        # input (a 400), and the developer nothing.
        account = team.create_account(name="M", owner_id="42", owner_email="chef@muster.de")
        client = _panel(team, lambda: User(42, "chef@muster.de")).test_client()  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=re.escape("User.id must be a str, not int")):
            client.get(f"/team/accounts/{account.id}/users")
        ok = _panel(team, lambda: User(str(42), "chef@muster.de")).test_client()
        assert ok.get(f"/team/accounts/{account.id}/users").status_code == 200

    @pytest.mark.parametrize(("field", "value"), [("id", None), ("email", None), ("name", 42)])
    def test_each_field_is_text(self, field: str, value: object) -> None:
        values: dict[str, object] = {"id": "max", "email": "chef@muster.de", "name": "Max"}
        values[field] = value
        kind = type(value).__name__
        with pytest.raises(ValidationError, match=f"User.{field} must be a str, not {kind}"):
            User(**values)  # type: ignore[arg-type]

    def test_no_name_is_an_empty_one(self) -> None:
        # a panel's optional display name: the pages show the address instead
        assert User("max", "chef@muster.de", None).name == ""  # type: ignore[arg-type]

    def test_request_takes_a_user_or_none(self) -> None:
        assert Request("GET", None).user is None
        assert Request("GET", User("max", "chef@muster.de")).user == User("max", "chef@muster.de")
        with pytest.raises(ValidationError, match=re.escape("must be a teamaccess.web.User")):
            Request("GET", "max")  # type: ignore[arg-type]


class TestTheCommandsKeys:
    """A missing key is asked for as the panel's, and erase says what does instead."""

    def test_an_empty_db_is_refused(self, run: Cli) -> None:
        # --db "$PANEL_DB" with the variable unset: it failed on WAL journaling.
        line = run.error("--db", "", "invite", "acc_1", "dev@m.de", "--all", "--as", "max", code=3)
        assert line == (
            "error: --db is empty: give the SQLite file's path or a postgresql:// URL (a "
            'shell variable in --db "$VAR" may be unset); leave --db out for ./teamaccess.db'
        )
        assert run.error("--db", "  ", "members", "acc_1", code=3) == line
        assert not any(run.folder.iterdir())

    def test_erase_on_a_panels_file_names_the_pseudonym_key(self, run: Cli) -> None:
        store = SQLiteStore(run.folder / "panel.db")  # the panel's, its key kept elsewhere
        team = TeamAccess(store, MemoryMailer(), secret_key="the panel's key")
        team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        team.close()
        args = ("--db", "panel.db", "erase", "--email", "gone@muster.de", "--as", "system")
        line = run.error(*args, "--yes", code=3)
        assert "Set TEAMACCESS_SECRET_KEY to that key" in line
        assert line.endswith(
            "; erase uses the key only for the pseudonyms: if your panel sets "
            "TeamAccess(pseudonym_key=...), set TEAMACCESS_PSEUDONYM_KEY to that instead"
        )
        run.env["TEAMACCESS_PSEUDONYM_KEY"] = "the panel's pseudonym key"
        assert "erased: 0 membership(s)" in run(*args, "--yes").stdout


@pytest.mark.postgres
class TestTheCommandsKeysOnPostgres:
    """On a server database the key asked for is the panel's, not a new one."""

    def test_a_writing_command(self, pg_run: Cli) -> None:
        pg_run.env["TEAMACCESS_SECRET_KEY"] = None
        line = pg_run.error(
            "accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email", "u@m.de",
            code=3,
        )  # fmt: skip
        # It said "set TEAMACCESS_SECRET_KEY (...), e.g. from: python -c ...": a new key,
        # which signs links the panel refuses as altered.
        assert line.startswith(
            "error: with a PostgreSQL --db, set TEAMACCESS_SECRET_KEY to the key your panel "
            "signs with (the newest of its TeamAccess(secret_key=...)"
        )
        assert "Only for a database no panel uses yet, make one" in line
        assert "pseudonym" not in line

    def test_erase(self, pg_run: Cli) -> None:
        made = pg_run.json(
            "accounts", "create", "--name", "A", "--owner-id", "max", "--owner-email", "m@m.de"
        )["id"]
        assert made
        pg_run.env["TEAMACCESS_SECRET_KEY"] = None
        args = ("erase", "--email", "gone@m.de", "--as", "system", "--yes")
        line = pg_run.error(*args, code=3)
        assert line.endswith("set TEAMACCESS_PSEUDONYM_KEY to that instead")
        pg_run.env["TEAMACCESS_PSEUDONYM_KEY"] = "the panel's pseudonym key"
        assert "erased: 0 membership(s)" in pg_run(*args).stdout


#: run in a fresh interpreter where the named modules cannot be imported, as without the
#: extra; prints the error's message and the module it names
WITHOUT = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
try:
    {statement}
except ModuleNotFoundError as exc:
    print(exc, "|", exc.name)
"""


class TestAMissingExtra:
    """Using an optional part without its extra names the extra to install."""

    @pytest.mark.parametrize(
        ("blocked", "statement", "said"),
        [
            (
                {"psycopg", "psycopg_pool"},
                "from teamaccess import PostgresStore",
                "PostgresStore needs the postgres extra (psycopg 3 and psycopg-pool): "
                "pip install 'teamaccess[postgres]' | psycopg",
            ),
            (
                {"flask"},
                "import teamaccess.web.flask",
                "teamaccess.web.flask needs the web extra (Flask and Jinja2): "
                "pip install 'teamaccess[web]' | flask",
            ),
            (
                {"jinja2"},
                "from teamaccess.web import environment; environment()",
                "teamaccess.web's templates need the web extra (Jinja2): "
                "pip install 'teamaccess[web]' | jinja2",
            ),
        ],
        ids=["postgres", "flask", "jinja2"],
    )
    def test_the_error_names_the_extra(self, blocked: set[str], statement: str, said: str) -> None:
        # Before: "No module named 'psycopg'", which names no extra.
        code = WITHOUT.format(blocked=sorted(blocked), statement=statement)
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert (proc.stdout.strip(), proc.returncode) == (said, 0), proc.stderr


PANEL_MODULE = """
from teamaccess import Catalog, Permission

DEFAULT = Catalog.default()
CATALOG = Catalog(
    [*DEFAULT, Permission("dns.edit", "Edit DNS zones", "Domains", label_de="DNS bearbeiten")],
    presets=DEFAULT.presets(),
)


def make_catalog():
    return CATALOG


NUMBER = 5


def broken():
    raise RuntimeError("settings missing")
"""


class TestTheCommandWithThePanelsCatalog:
    """--catalog: the worker and the commands name the panel's own permissions."""

    @pytest.fixture
    def panel(self, run: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
        (run.folder / "newcomer19_panel.py").write_text(PANEL_MODULE, encoding="utf-8")
        monkeypatch.syspath_prepend(str(run.folder))
        return run

    def test_the_worker_names_the_panels_permissions(self, panel: Cli) -> None:
        # The panel queues an invitation with a permission of its own catalog ...
        from newcomer19_panel import CATALOG  # type: ignore[import-not-found]

        team = TeamAccess(
            SQLiteStore(panel.folder / "panel.db"), None, secret_key="the panel's key",
            catalog=CATALOG, delivery="queue", sender="Panel <noreply@panel.example>",
        )  # fmt: skip
        account = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        wanted = PermissionSet.of("dns.edit", "billing.view")
        team.invite(account.id, actor_id="max", email="dev@m.de", permissions=wanted)
        team.close()
        # ... and the command's worker, given that catalog, names it in the mail: with the
        # default catalog it was left out, and the mail offered only "View invoices".
        panel.env["TEAMACCESS_SECRET_KEY"] = "the panel's key"
        panel.env["TEAMACCESS_CATALOG"] = "python:newcomer19_panel:CATALOG"
        panel("--db", "panel.db", "--mail", "file:outbox", "deliver")
        [mail] = (panel.folder / "outbox").glob("*.eml")
        text = mail.read_text(encoding="utf-8")
        assert "Edit DNS zones" in text
        assert "View invoices" in text

    @pytest.mark.parametrize("name", ["CATALOG", "make_catalog"])
    def test_catalog_and_p_take_it(self, panel: Cli, name: str) -> None:
        spec = ("--catalog", f"python:newcomer19_panel:{name}")
        names = [p["name"] for p in panel.json(*spec, "catalog")["permissions"]]
        assert names[-2:] == ["contracts.sign", "dns.edit"]
        made = panel.json(
            *spec, "accounts", "create", "--name", "M", "--owner-id", "max",
            "--owner-email", "chef@muster.de",
        )["id"]  # fmt: skip
        invited = panel.json(*spec, "invite", made, "ops@m.de", "-p", "dns.edit", "--as", "max")
        assert invited["permissions"] == ["dns.edit"]
        # Without it the command knows only the built-in catalog.
        assert "dns.edit" not in panel("catalog").stdout

    @pytest.mark.parametrize(
        ("spec", "said"),
        [
            (
                "newcomer19_panel:CATALOG",
                "--catalog takes python:MODULE:NAME, e.g. python:mypanel.team:CATALOG",
            ),
            (
                "python:newcomer19_nowhere:CATALOG",
                "--catalog python:newcomer19_nowhere:CATALOG: could not import "
                "newcomer19_nowhere (ModuleNotFoundError: ",
            ),
            (
                "python:newcomer19_panel:MISSING",
                "--catalog python:newcomer19_panel:MISSING: newcomer19_panel has no MISSING; ",
            ),
            (
                "python:newcomer19_panel:NUMBER",
                "--catalog python:newcomer19_panel:NUMBER: NUMBER is int, not a "
                "teamaccess.Catalog; ",
            ),
            (
                "python:newcomer19_panel:broken",
                "--catalog python:newcomer19_panel:broken: broken() raised "
                "RuntimeError: settings missing; ",
            ),
        ],
        ids=["no-python", "no-module", "no-name", "not-a-catalog", "raises"],
    )
    def test_a_bad_catalog_is_refused(self, panel: Cli, spec: str, said: str) -> None:
        line = panel.error("--catalog", spec, "catalog", code=3)
        assert line.startswith(f"error: {said}")
        assert not (panel.folder / "teamaccess.db").exists()
        made = panel.json(
            "accounts", "create", "--name", "M", "--owner-id", "max",
            "--owner-email", "chef@muster.de",
        )["id"]  # fmt: skip
        line = panel.error("--catalog", spec, "members", made, code=3)
        assert line.startswith(f"error: {said}")

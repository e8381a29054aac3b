"""Every example in examples/ runs: scripts in a subprocess, the vendor's pytest file
under pytest in a subprocess, and the Flask panel through real WSGI calls."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from wsgiref.validate import validator

import pytest

from teamaccess import FileMailer, SQLiteStore, TeamAccess

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEY = "examples-test-key"


def run_script(
    name: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestQuickstart:
    """examples/quickstart.py is the README snippet and prints what its comments say."""

    def test_runs(self, tmp_path: Path) -> None:
        proc = run_script("quickstart.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "True\nFalse\n['u1', 'u2']\n"


class TestPanelIntegration:
    """The Flask panel mounts teamaccess.web and guards its own page with require()."""

    @pytest.fixture
    def panel(self) -> ModuleType:
        return load("panel_integration")

    def test_script_replays_the_session(self, tmp_path: Path) -> None:
        proc = run_script("panel_integration.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        statuses = [line.rsplit("-> ", 1)[1] for line in proc.stdout.splitlines()]
        assert statuses == ["200", "303", "400", "200", "303", "200", "403", "403", "200"]

    def test_pages_through_the_wsgi_checker(self, panel: ModuleType) -> None:
        app, team, account = panel.build()
        app.wsgi_app = validator(app.wsgi_app)  # the stdlib's WSGI conformance checker
        client = app.test_client()
        page = f"/team/accounts/{account}/users"
        # The checker insists that every response is closed, as a server would.
        with client.get(page) as response:
            assert response.headers["Location"].startswith("/login?next=")
        with client.post("/login", data={"user": "max"}) as response:
            assert response.status_code == 303
        with client.get(page) as response:
            body = response.get_data(as_text=True)
            assert response.status_code == 200
        assert "<h1>Muster GmbH</h1>" in body
        assert 'value="firewall.unblock"' in body
        with client.post(f"{page}/invite", data={
            "csrf_token": panel.csrf(body), "email": "dev@agentur.de", "scope": "selected",
            "permission": ["services.view", "billing.view"],
        }) as response:  # fmt: skip
            assert response.status_code == 303
            assert response.headers["Location"] == page
        assert len(team.mailer.outbox) == 1
        assert [i.email for i in team.pending_invitations(account)] == ["dev@agentur.de"]

    @pytest.mark.parametrize(
        "next_path",
        [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "\\\\evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "evil.example",
        ],
    )
    def test_login_sends_on_only_within_the_site(self, panel: ModuleType, next_path: str) -> None:
        # A vendor copies the example's login: its next must not be an open redirect.
        app, _, account = panel.build()
        client = app.test_client()
        response = client.post("/login", query_string={"next": next_path}, data={"user": "max"})
        assert (response.status_code, response.headers["Location"]) == (303, "/")
        own = f"/team/accounts/{account}/users?lang=de"
        response = client.post("/login", query_string={"next": own}, data={"user": "max"})
        assert response.headers["Location"] == own

    def test_own_page_is_guarded(self, panel: ModuleType) -> None:
        app, _, account = panel.build()
        client = app.test_client()
        client.post("/login", data={"user": "anna"})
        response = client.get(f"/accounts/{account}/services", headers={"Accept-Language": "de"})
        assert response.status_code == 403
        assert "Diese Seite braucht die Berechtigung „Dienste einsehen“." in response.get_data(
            as_text=True
        )
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        # Not logged in: the login page, and back here afterwards.
        response = app.test_client().get(f"/accounts/{account}/services")
        assert response.headers["Location"] == f"/login?next=%2Faccounts%2F{account}%2Fservices"

    def test_user_values_are_escaped(self, panel: ModuleType) -> None:
        app, team, _ = panel.build()
        account = team.create_account(
            name="<script>x</script>", owner_id="max", owner_email="chef@muster.de"
        )
        client = app.test_client()
        client.post("/login", data={"user": "max"})
        body = client.get(f"/team/accounts/{account.id}/users").get_data(as_text=True)
        assert "<script>" not in body
        assert "&lt;script&gt;x&lt;/script&gt;" in body


GOOD = """kind,email,name,permissions,categories,company,phone,role
member,dev@agentur.de,Anna Dev,services.view;support.tickets,,,,
member,buchhaltung@muster.de,Bernd,all,,,,
contact,kanzlei@steuer.de,Steuerbüro Klein,,billing;general,Klein & Co,+49 30 1234,Tax adviser
"""

BAD = """kind,email,name,permissions,categories,company,phone,role
member,dev@agentur.de,Anna Dev,services.view;support.tickts,,,,
member,not-an-address,Bernd,all,,,,
contact,ok@steuer.de,OK,,billing,,,
contact,kanzlei@steuer.de,,,billing,,,
member,dev@agentur.de,Anna again,all,,,,
"""


class TestCsvImport:
    """Every row checked first; bad rows reported by line; nothing imported on error."""

    @pytest.fixture
    def account(self, tmp_path: Path) -> str:
        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), FileMailer(tmp_path / "outbox"),
                          secret_key=KEY)  # fmt: skip
        try:
            return team.create_account(
                name="Muster GmbH", owner_id="max", owner_email="chef@muster.de"
            ).id
        finally:
            team.close()

    def state(self, tmp_path: Path, account: str) -> tuple[list[str], list[str], list[str]]:
        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), FileMailer(tmp_path / "outbox"),
                          secret_key=KEY)  # fmt: skip
        try:
            return (
                [m.email for m in team.members(account)],
                [i.email for i in team.pending_invitations(account)],
                [c.email for c in team.contacts(account)],
            )
        finally:
            team.close()

    def do(
        self, tmp_path: Path, account: str, text: str, *args: str
    ) -> subprocess.CompletedProcess[str]:
        (tmp_path / "export.csv").write_text(text, encoding="utf-8")
        return run_script("csv_import.py", "export.csv", "--db", "t.db", "--account", account,
                          *args, cwd=tmp_path, env={"TEAMACCESS_SECRET_KEY": KEY})  # fmt: skip

    def test_bad_rows_import_nothing(self, tmp_path: Path, account: str) -> None:
        proc = self.do(tmp_path, account, BAD)
        assert proc.returncode == 1
        assert proc.stderr.splitlines() == [
            "export.csv: line 2: unknown permission 'support.tickts'; use one of the catalog's "
            "names: profile.edit, users.manage, contacts.manage, billing.view, billing.pay, "
            "orders.place, services.view, services.manage, credentials.view, firewall.unblock, "
            "support.tickets, support.pin, contracts.sign",
            "export.csv: line 3: 'not-an-address' is not a valid email address: An email "
            "address must have an @-sign.",
            "export.csv: line 5: a contact needs a name",
            "export.csv: line 6: dev@agentur.de is listed twice (first on line 2)",
            "4 bad row(s); nothing was imported. Fix them and run again.",
        ]
        assert self.state(tmp_path, account) == (["chef@muster.de"], [], [])
        assert not (tmp_path / "outbox").exists()

    def test_a_record_over_several_lines_is_named_by_its_first(
        self, tmp_path: Path, account: str
    ) -> None:
        text = GOOD.replace("Steuerbüro Klein", '"Steuerbüro\nKlein"') + (
            "member,not-an-address,Bernd,all,,,,\n"
        )
        proc = self.do(tmp_path, account, text)
        assert proc.returncode == 1
        assert proc.stderr.splitlines()[:2] == [
            "export.csv: line 4: a field contains a line break; keep every value on one line",
            "export.csv: line 6: 'not-an-address' is not a valid email address: An email "
            "address must have an @-sign.",
        ]

    def test_dry_run_then_import(self, tmp_path: Path, account: str) -> None:
        dry = self.do(tmp_path, account, GOOD, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines()[0] == (
            "would invite dev@agentur.de with services.view, support.tickets"
        )
        assert self.state(tmp_path, account) == (["chef@muster.de"], [], [])
        real = self.do(tmp_path, account, GOOD)
        assert real.returncode == 0, real.stderr
        assert real.stdout.splitlines()[-1] == "3 row(s) imported"
        assert self.state(tmp_path, account) == (
            ["chef@muster.de"],
            ["dev@agentur.de", "buchhaltung@muster.de"],
            ["kanzlei@steuer.de"],
        )
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
        again = self.do(tmp_path, account, GOOD)
        assert again.returncode == 1
        assert "line 2: dev@agentur.de already has a pending invitation" in again.stderr
        assert "line 4: kanzlei@steuer.de is already a contact" in again.stderr

    def test_needs_the_secret_key(self, tmp_path: Path, account: str) -> None:
        (tmp_path / "export.csv").write_text(GOOD, encoding="utf-8")
        proc = run_script("csv_import.py", "export.csv", "--db", "t.db", "--account", account,
                          cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 2
        assert "set TEAMACCESS_SECRET_KEY" in proc.stderr


class TestVendorExample:
    """examples/test_vendor_example.py passes under pytest, as a vendor would run it."""

    def test_pytest_passes(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             str(EXAMPLES / "test_vendor_example.py")],
            cwd=EXAMPLES.parent, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "5 passed" in proc.stdout

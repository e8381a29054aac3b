"""The demo panel (no browser), the web-demo command, the import cost of
teamaccess.web and the gate of the browser tests."""

import re
import subprocess
from pathlib import Path

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    panel,
)

__all__ = ["panel"]  # the fixture, imported for pytest


class TestDemo:
    """The demo panel: its login, registration, mail list and panel pages (no browser)."""

    def test_story_through_the_test_client(self, tmp_path: Path) -> None:
        from teamaccess.web.demo import create_app

        app = create_app(tmp_path / "demo", base_url="http://127.0.0.1:9")
        team = app.extensions["teamaccess"]
        owner = app.test_client()
        assert owner.get("/").headers["Location"] == "/login"
        response = owner.post("/login", data={"email": "nobody@x.de"})
        assert response.status_code == 400
        assert "Register first" in response.get_data(as_text=True)
        response = owner.post("/login", data={"email": "chef@muster.de", "next": "//evil.example"})
        assert response.headers["Location"] == "/"
        account = team.accounts_for(app.extensions["teamaccess.users"].by_email(
            "chef@muster.de").id)[0]  # fmt: skip
        page = owner.get(f"/team/accounts/{account.id}/users").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        owner.post(f"/team/accounts/{account.id}/users/invite", data={
            "csrf_token": csrf.group(1), "email": "bea@muster.de", "scope": "selected",
            "permission": ["billing.view"],
        })  # fmt: skip
        mails = owner.get("/mails").get_data(as_text=True)
        link = re.search(r'href="http://127\.0\.0\.1:9(/team/invitations/accept\?token=[^"]+)"',
                         mails)  # fmt: skip
        assert link is not None
        bea = app.test_client()
        clean = bea.get(link.group(1)).headers["Location"]  # the link, without its token
        assert clean.startswith("/team/invitations/accept?invitation=")
        response = bea.post("/register", data={"name": "Bea", "email": "bea@muster.de",
                                               "next": clean})  # fmt: skip
        assert response.headers["Location"] == clean
        page = bea.get(clean).get_data(as_text=True)
        assert 'value="accept"' in page
        assert bea.get(f"/panel/{account.id}/invoices").status_code == 403  # not yet
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        token = re.search(r'name="token" value="([^"]+)"', page)
        assert csrf is not None
        assert token is not None
        response = bea.post("/team/invitations/accept", data={
            "csrf_token": csrf.group(1), "token": token.group(1), "action": "accept",
        })  # fmt: skip
        assert response.headers["Location"] == f"/panel/{account.id}"
        assert "Welcome to Muster GmbH." in bea.get(f"/panel/{account.id}").get_data(as_text=True)
        assert bea.get(f"/panel/{account.id}/invoices").status_code == 200
        assert bea.get(f"/panel/{account.id}/access-data").status_code == 403
        team.close()

    def test_server_logs_no_token(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        import threading
        import urllib.request

        from teamaccess.web.demo import serve

        server, app, base = serve(tmp_path / "demo", port=0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"{base}/team/invitations/accept?token=SECRET")  # noqa: S310
            assert caught.value.code == 410
            caught.value.close()
        finally:
            server.shutdown()
            server.server_close()
            app.extensions["teamaccess"].close()
        logged = caplog.text
        assert "GET /team/invitations/accept" in logged
        assert "SECRET" not in logged


class TestWebDemoCommand:
    """`teamaccess web-demo` serves the demo panel on 127.0.0.1 (a real subprocess)."""

    def test_serves_until_stopped(self, tmp_path: Path) -> None:
        import os
        import signal
        import subprocess
        import sys
        import urllib.request

        proc = subprocess.Popen(
            [sys.executable, "-m", "teamaccess", "web-demo", "--port", "0",
             "--dir", str(tmp_path / "demo")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            found = re.search(r"on (http://127\.0\.0\.1:\d+)/", first)
            assert found is not None, first + (proc.stderr.read() if proc.stderr else "")
            # generous waits: on a loaded machine the first page and the shutdown each
            # took over 10 s once
            with urllib.request.urlopen(f"{found.group(1)}/login", timeout=30) as page:  # noqa: S310
                assert page.status == 200
                assert "chef@muster.de" not in page.read().decode()
            assert (tmp_path / "demo" / "teamaccess.db").exists()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0


class TestImportCost:
    """teamaccess.web loads neither Flask nor Jinja2 until a page is rendered with them."""

    def test_import_is_light(self) -> None:
        import subprocess
        import sys

        code = (
            "import sys, teamaccess.web; "
            "print(sorted(m for m in ('flask', 'jinja2', 'werkzeug') if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"


class TestBrowserTestsGate:
    """Without Chromium the browser tests skip with one line; under CI=true they fail."""

    def run(self, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
        import os
        import sys

        base = {k: v for k, v in os.environ.items() if k != "CI"}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
             str(Path(__file__).parent / "test_web_browser.py")],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={**base, "TEAMACCESS_CHROMIUM": str(tmp_path / "no-chromium"), **env},
        )  # fmt: skip

    def test_skips_with_one_line(self, tmp_path: Path) -> None:
        proc = self.run(tmp_path)
        # 5: run alone, the skipped module leaves pytest nothing to run; in the suite, 0
        assert proc.returncode == 5, proc.stdout + proc.stderr
        lines = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
        assert len(lines) == 1
        assert "no-chromium is missing" in lines[0]
        assert "apt-get install -y chromium" in lines[0]
        assert "1 skipped" in proc.stdout

    def test_fails_under_ci(self, tmp_path: Path) -> None:
        proc = self.run(tmp_path, CI="true")
        assert proc.returncode != 0
        assert "no-chromium is missing" in proc.stdout
        assert "skipped" not in proc.stdout

"""The language of the pages, the templates (overriding them, every word in German)
and docs/web.md naming every public name."""

import ast
import re
from pathlib import Path

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    USERS,
    Panel,
    panel,
)

from teamaccess import (  # noqa: E402
    MemoryMailer,
    MemoryStore,
    TeamAccess,
)
from teamaccess.web import (  # noqa: E402
    ROUTES,
    TEMPLATE_DIR,
    Pages,
    Redirect,
    Render,
    Request,
    User,
    environment,
    pick_language,
    render,
)
from teamaccess.web._i18n import GERMAN  # noqa: E402

__all__ = ["panel"]  # the fixture, imported for pytest


class TestLanguage:
    """Accept-Language picks German or English; ?lang= overrides it for the session."""

    @pytest.mark.parametrize(
        ("header", "chosen", "expected"),
        [
            ("de-DE,de;q=0.9", None, "de"),
            ("en-US,en;q=0.9,de;q=0.8", None, "en"),
            ("fr,de;q=0.5,en;q=0.4", None, "de"),
            ("de;q=0", None, "en"),
            ("", None, "en"),
            (None, None, "en"),
            ("en", "de", "de"),
            ("de", "xx", "de"),
            ("de;q=abc,en", None, "en"),
        ],
    )
    def test_pick_language(self, header: str | None, chosen: str | None, expected: str) -> None:
        assert pick_language(header, chosen) == expected

    def test_header_and_override(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users(), "de")
        assert "<h2>Benutzerverwaltung</h2>" in body
        assert 'lang="de"' in body
        _, body = panel.get("max", panel.users() + "?lang=en", "de")
        assert "<h2>Users</h2>" in body
        _, body = panel.get("max", panel.users(), "de")  # the choice stays in the session
        assert "<h2>Users</h2>" in body


class TestTemplates:
    """Vendors override templates by name; every word has its German."""

    def test_app_template_overrides_by_name(self, tmp_path: Path) -> None:
        (tmp_path / "teamaccess").mkdir()
        (tmp_path / "teamaccess" / "base.html").write_text(
            '{% extends "teamaccess/layout.html" %}{% block brand %}Vendor Panel{% endblock %}',
            encoding="utf-8",
        )
        panel = Panel(templates=tmp_path)
        _, body = panel.get("max", panel.users())
        assert "Vendor Panel" in body
        assert "Invite a new user" in body

    def test_stylesheet_is_served(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users())
        href = re.search(r'<link rel="stylesheet" href="([^"]+)"', body)
        assert href is not None
        response = panel.client("max").get(href.group(1))
        try:
            assert response.status_code == 200
            assert b".ta-groups" in response.data
        finally:
            response.close()  # a file response holds the file open until closed
        assert "cdn" not in body.lower()
        assert "<script" not in body

    def test_framework_free_render(self) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        acct = team.create_account(name="A", owner_id="max", owner_email=USERS["max"])
        pages = Pages(team)
        result = pages.handle(
            "users", Request("GET", User("max", USERS["max"]), "de", csrf_token="t"),
            account_id=acct.id,
        )  # fmt: skip
        assert isinstance(result, Render)
        html = render(environment(), result, url=lambda e, **p: f"/{e}", static_url="/s.css")
        assert "Neuen Benutzer einladen" in html
        assert isinstance(pages.handle("users", Request("GET", None), account_id=acct.id),
                          Redirect)  # fmt: skip
        assert {r.endpoint for r in ROUTES} <= set(dir(pages)) | {
            r.endpoint for r in ROUTES if hasattr(pages, f"_{r.endpoint}")
        }

    def test_every_word_has_its_german(self) -> None:
        words: set[str] = set()
        for path in TEMPLATE_DIR.rglob("*.html"):
            text = path.read_text(encoding="utf-8")
            words |= set(re.findall(r'_\("([^"]+)"', text))
            words |= set(re.findall(r"_\('([^']+)'", text))
        source = Path(TEMPLATE_DIR).parent
        # every module of the package, the handlers in _pages/ included
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "translate"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    words.add(node.args[0].value)
        from teamaccess.web._view import _ACTIONS

        words |= set(_ACTIONS.values())
        assert len(words) > 80
        missing = sorted(w for w in words if w not in GERMAN)
        assert missing == []

    def test_the_check_can_fail(self) -> None:
        assert "Send invitation" in GERMAN
        assert "Sendd invitation" not in GERMAN


class TestWebDocs:
    """docs/web.md names every public name of teamaccess.web and its demo."""

    def test_every_name_is_documented(self) -> None:
        import teamaccess.web
        import teamaccess.web.demo

        text = (Path(__file__).resolve().parents[1] / "docs" / "web.md").read_text("utf-8")
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        spans = " ".join(re.findall(r"`([^`\n]+)`", prose))
        names = [*teamaccess.web.__all__, *teamaccess.web.demo.__all__, "blueprint"]
        missing = [n for n in names if not re.search(rf"(?<![\w]){n}(?![\w])", spans)]
        assert missing == []

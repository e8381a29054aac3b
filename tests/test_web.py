"""Who may do what on the pages: a read-only member, strangers to an account and forms
without the CSRF token, through the Flask blueprint (Flask's test client, real templates,
a MemoryStore)."""

import re

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    USERS,
    Panel,
    panel,
)

from teamaccess import (  # noqa: E402
    ValidationError,
)
from teamaccess.web import (  # noqa: E402
    User,
)
from teamaccess.web.flask import blueprint  # noqa: E402

__all__ = ["panel"]  # the fixture, imported for pytest


class TestReadOnlyAndForbidden:
    """Without users.manage: a read-only page; the invite form is neither shown nor usable."""

    def test_read_only_page(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        status, body = panel.get("bea", panel.users(), "de")
        assert status == 200
        assert "Benutzer verwalten" in body  # says which permission is missing
        assert 'name="email"' not in body
        assert "Offene Einladungen" not in body
        assert "Bearbeiten" not in body
        assert "Aktivität" not in body
        assert "Konto verlassen" in body

    def test_post_invite_is_a_403_page(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        status, body, _ = panel.post(
            "bea", panel.users() + "/invite", {"email": "x@y.de", "scope": "all"}, "de"
        )
        assert status == 403
        assert "<h1>Nicht erlaubt</h1>" in body
        assert "„Benutzer verwalten“" in body
        assert panel.team.pending_invitations(panel.account) == []

    def test_activity_needs_users_manage(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        status, _ = panel.get("bea", f"/team/accounts/{panel.account}/activity")
        assert status == 403


class TestStrangers:
    """Logged out, unknown user, unknown account: proper pages, never a 500."""

    def test_logged_out_goes_to_login_and_back(self, panel: Panel) -> None:
        response = panel.client(None).get(panel.users() + "?x=1")
        assert response.status_code == 303
        assert response.headers["Location"] == (
            f"/login?next=%2Fteam%2Faccounts%2F{panel.account}%2Fusers%3Fx%3D1"
        )

    def test_unknown_user_sees_not_found(self, panel: Panel) -> None:
        status, body = panel.get("eve", panel.users())
        assert status == 404
        assert "This customer account does not exist, or you have no access to it." in body
        assert "Traceback" not in body

    def test_unknown_account_is_the_same_page(self, panel: Panel) -> None:
        status, body = panel.get("max", "/team/accounts/acc_nope/users")
        assert status == 404
        assert "does not exist, or you have no access" in body

    def test_unknown_member_and_invitation(self, panel: Panel) -> None:
        status, body = panel.get("max", panel.users() + "/nobody")
        assert status == 404
        assert "not (or no longer) a user" in body
        status, body, _ = panel.post(
            "max", f"/team/accounts/{panel.account}/invitations/inv_x/revoke", {}
        )
        assert status == 404
        assert "NotFound" not in body

    def test_index_for_a_user_without_accounts(self, panel: Panel) -> None:
        status, body = panel.get("eve", "/team/", "de")
        assert status == 200
        assert "noch in keinem Kundenkonto" in body

    def test_index_redirects_to_the_only_account(self, panel: Panel) -> None:
        response = panel.client("max").get("/team/")
        assert response.headers["Location"] == panel.users()

    def test_values_are_escaped(self, panel: Panel) -> None:
        acct = panel.team.create_account(name="<script>x</script>", owner_id="max",
                                         owner_email=USERS["max"])  # fmt: skip
        _, body = panel.get("max", f"/team/accounts/{acct.id}/users")
        assert "<script>x" not in body
        assert "&lt;script&gt;x&lt;/script&gt;" in body

    def test_security_headers(self, panel: Panel) -> None:
        response = panel.client("max").get(panel.users())
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "same-origin"

    def test_a_panel_replaces_or_drops_a_header(self, panel: Panel) -> None:
        """A layout that loads scripts brings its own policy; the others stay."""
        own = "default-src 'self'; frame-ancestors 'none'"
        panel.app.register_blueprint(
            blueprint(panel.team, current_user=lambda: User("max", USERS["max"]),
                      headers={"Content-Security-Policy": own, "X-Frame-Options": None}),
            url_prefix="/own", name="own",
        )  # fmt: skip
        response = panel.app.test_client().get(f"/own/accounts/{panel.account}/users")
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == own
        assert "X-Frame-Options" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
        with pytest.raises(ValidationError, match="one line of text"):
            blueprint(panel.team, current_user=lambda: None, headers={"X-A": "1\r\nX-B: 2"})


class TestCsrf:
    """Every form carries the session's token; a POST without it changes nothing."""

    def test_every_form_has_the_token(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        panel.invite("anna@x.de")
        _, body = panel.get("max", panel.users())
        forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", body, re.S)
        assert len(forms) == 3  # resend, revoke, invite ("Remove" leads to a page that asks)
        for form in forms:
            assert 'name="csrf_token"' in form

    @pytest.mark.parametrize("token", [None, "forged"])
    def test_post_without_the_token(self, panel: Panel, token: str | None) -> None:
        data: dict[str, object] = {"email": "a@b.de", "scope": "all"}
        if token:
            data["csrf_token"] = token
        status, body, _ = panel.post("max", panel.users() + "/invite", data, "de", csrf=False)
        assert status == 400
        assert "Dieses Formular ist abgelaufen" in body
        assert panel.team.pending_invitations(panel.account) == []


class TestSettings:
    """A page link of the wrong type is refused when the blueprint is made: it would be a
    500 page at the first request that draws it."""

    @pytest.mark.parametrize(
        ("setting", "says"),
        [
            ("login_url", "login_url must be a URL, such as '/login?next={next}'"),
            ("register_url", "register_url must be a URL, such as '/register?next={next}'"),
            ("logout_url", "logout_url must be a URL, such as '/logout?next={next}'"),
            ("home_url", "home_url must be a callable taking an account id"),
        ],
    )
    def test_a_wrong_type(self, panel: Panel, setting: str, says: str) -> None:
        with pytest.raises(ValidationError, match=re.escape(says) + r".*not int$"):
            blueprint(panel.team, current_user=lambda: None, **{setting: 5})  # type: ignore[arg-type]

    def test_login_url_is_never_none(self, panel: Panel) -> None:
        with pytest.raises(ValidationError, match=r"or a callable taking that path; not NoneType"):
            blueprint(panel.team, current_user=lambda: None, login_url=None)  # type: ignore[arg-type]

    def test_every_allowed_form(self, panel: Panel) -> None:
        blueprint(panel.team, current_user=lambda: None, login_url=lambda path: "/in",
                  register_url=None, logout_url="/out", home_url=lambda account: "/")  # fmt: skip

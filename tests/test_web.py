"""teamaccess.web through the Flask blueprint, with Flask's test client (real requests
through the WSGI stack, real templates, a MemoryStore)."""

from __future__ import annotations

import ast
import re
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from flask.testing import FlaskClient  # noqa: E402

from teamaccess import (  # noqa: E402
    DeliveryFailed,
    DeliveryRefused,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock  # noqa: E402
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
from teamaccess.web.flask import blueprint  # noqa: E402

USERS = {
    "max": "chef@muster.de",
    "anna": "dev@agentur.de",
    "bea": "buchhaltung@muster.de",
    "eve": "eve@example.org",
}


class Panel:
    """A vendor panel: Flask, a header names the logged-in user, the blueprint at /team."""

    def __init__(self, templates: Path | None = None) -> None:
        self.mailer = MemoryMailer()
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.team = TeamAccess(
            MemoryStore(), self.mailer, secret_key="web-test", clock=self.clock,
            accept_url="http://panel.test/team/invitations/accept?token={token}",
        )  # fmt: skip
        self.account = self.team.create_account(
            name="Muster GmbH", owner_id="max", owner_email=USERS["max"]
        ).id
        self.app = flask.Flask(__name__, template_folder=str(templates) if templates else None)
        self.app.secret_key = "test only"

        def current_user() -> User | None:
            uid = flask.request.headers.get("X-User")
            return User(uid, USERS[uid]) if uid else None

        self.app.register_blueprint(
            blueprint(
                self.team, current_user=current_user, login_url="/login?next={next}",
                register_url="/register?next={next}", logout_url="/logout",
            ),
            url_prefix="/team",
        )  # fmt: skip
        self.clients: dict[str, FlaskClient] = {}

    def client(self, user: str | None, language: str = "en") -> FlaskClient:
        key = f"{user}:{language}"
        if key not in self.clients:
            c = self.app.test_client()
            if user:
                c.environ_base["HTTP_X_USER"] = user
            c.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
            self.clients[key] = c
        return self.clients[key]

    def get(self, user: str | None, path: str, language: str = "en") -> tuple[int, str]:
        """The page at *path*; the invitation link's first answer, a redirect to the page
        without the token in its URL, is followed as the browser does."""
        client = self.client(user, language)
        response = client.get(path)
        location = response.headers.get("Location", "")
        if "token=" in path and location.startswith("/team/invitations/accept?invitation="):
            response = client.get(location)
        return response.status_code, response.get_data(as_text=True)

    def post(
        self, user: str | None, path: str, data: dict[str, object], language: str = "en",
        *, csrf: bool = True,
    ) -> tuple[int, str, str]:  # fmt: skip
        client = self.client(user, language)
        if csrf:
            page = client.get(f"/team/accounts/{self.account}/users").get_data(as_text=True)
            found = re.search(r'name="csrf_token" value="([^"]+)"', page)
            if found is None:  # a stranger's client: any page with a form gives the token
                client.get("/team/invitations/accept?token=x")
                with client.session_transaction() as session:
                    data = {**data, "csrf_token": session["teamaccess.csrf"]}
            else:
                data = {**data, "csrf_token": found.group(1)}
        response = client.post(path, data=data)
        return (
            response.status_code,
            response.get_data(as_text=True),
            response.headers.get("Location", ""),
        )

    def users(self) -> str:
        return f"/team/accounts/{self.account}/users"

    def invite(self, email: str, *names: str) -> str:
        perms = PermissionSet.of(*names) if names else PermissionSet.all()
        inv = self.team.invite(self.account, actor_id="max", email=email, permissions=perms)
        assert inv.token is not None
        return inv.token

    def join(self, user: str, *names: str) -> None:
        token = self.invite(USERS[user], *names)
        self.team.accept_invitation(token, user_id=user, email=USERS[user])

    def link(self, index: int = -1) -> str:
        body = str(self.mailer.outbox[index].get_body(("plain",)).get_content())  # type: ignore[union-attr]
        found = re.search(r"http://panel\.test(/team/invitations/accept\?token=\S+)", body)
        assert found is not None
        return found.group(1)


def errors(body: str) -> list[str]:
    return re.findall(r'class="ta-error"[^>]*>([^<]*)<', body)


def row_of(body: str, text: str) -> str:
    """The first table row that holds *text*."""
    return next(row for row in re.findall(r"<tr[ >].*?</tr>", body, re.S) if text in row)


def notices(body: str) -> list[str]:
    return re.findall(r'class="ta-notice"[^>]*>([^<]*)<', body)


@pytest.fixture
def panel() -> Panel:
    return Panel()


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


class TestUsersPage:
    """Members with grouped permissions, open invitations, the invite form."""

    def test_owner_sees_members_grouped_with_descriptions(self, panel: Panel) -> None:
        panel.join("bea", "billing.view", "billing.pay", "support.tickets")
        status, body = panel.get("max", panel.users())
        assert status == 200
        assert "chef@muster.de" in body
        assert "All permissions" in body
        row = body.split("buchhaltung@muster.de", 1)[1].split("</tr>", 1)[0]
        assert re.search(r"<dt>Billing</dt>\s*<dd>.*View invoices.*Pay invoices", row, re.S)
        assert 'title="See invoices and statements"' in row
        assert "<dt>Support</dt>" in row
        assert "Services" not in row

    def test_invite_form_preselects_all(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users(), "de")
        assert re.search(r'value="all" id="ta-scope-all" checked', body)
        assert 'value="selected" id="ta-scope-selected">' in body
        assert "Alle Berechtigungen" in body
        assert "Berechtigungen auswählen" in body
        assert "Einladung versenden" in body
        # every grantable permission is a checkbox, grouped, with its German description
        assert body.count('name="permission"') == 13
        assert "<legend>Rechnungen</legend>" in body
        assert "Rechnungen und Kontoauszüge einsehen" in body

    def test_invite_selected_and_see_it_pending(self, panel: Panel) -> None:
        status, _, location = panel.post("max", panel.users() + "/invite", {
            "email": "Buchhaltung@Muster.de", "scope": "selected",
            "permission": ["billing.view", "billing.pay"],
        })  # fmt: skip
        assert status == 303
        assert location == panel.users()
        assert [m["To"] for m in panel.mailer.outbox] == ["Buchhaltung@muster.de"]
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["The invitation to Buchhaltung@muster.de is on its way."]
        pending = body.split("Open invitations", 1)[1].split("Invite a new user", 1)[0]
        assert "Buchhaltung@muster.de" in pending
        assert "invited by chef@muster.de" in pending
        assert "2026-03-02" in pending  # sent
        assert "2026-03-09 09:00 UTC" in pending  # valid until
        assert "View invoices" in pending
        assert "Pay invoices" in pending
        _, body = panel.get("max", panel.users())
        assert notices(body) == []  # a notice is shown once
        inv = panel.team.pending_invitations(panel.account)[0]
        assert inv.permissions == PermissionSet.of("billing.view", "billing.pay")

    def test_invite_all(self, panel: Panel) -> None:
        panel.post(
            "max",
            panel.users() + "/invite",
            {"email": "anna@x.de", "scope": "all", "permission": ["billing.view"]},
        )
        inv = panel.team.pending_invitations(panel.account)[0]
        assert inv.permissions.is_all

    def test_bad_address_keeps_the_form_and_says_why_in_german(self, panel: Panel) -> None:
        status, body, _ = panel.post("max", panel.users() + "/invite", {
            "email": "buchhaltung(at)muster.de", "scope": "selected",
            "permission": ["billing.view"],
        }, "de")  # fmt: skip
        assert status == 400
        assert errors(body) == [
            "Das ist keine gültige E-Mail-Adresse. Bitte prüfen Sie sie (zum Beispiel "
            "name@beispiel.de)."
        ]
        assert 'value="buchhaltung(at)muster.de"' in body
        assert 'aria-invalid="true"' in body
        assert re.search(r'value="selected" id="ta-scope-selected" checked', body)
        assert re.search(r'value="billing.view" checked', body)
        assert not re.search(r'value="billing.pay" checked', body)
        assert panel.mailer.outbox == []

    def test_empty_address_and_no_permission(self, panel: Panel) -> None:
        _, body, _ = panel.post("max", panel.users() + "/invite", {"email": "", "scope": "all"})
        assert errors(body) == ["Please enter the email address to invite."]
        _, body, _ = panel.post(
            "max", panel.users() + "/invite", {"email": "a@b.de", "scope": "selected"}
        )
        assert errors(body) == ["Choose at least one permission, or give all permissions."]
        assert panel.team.pending_invitations(panel.account) == []

    def test_already_invited_and_member_inline(self, panel: Panel) -> None:
        panel.invite("anna@x.de")
        # Later than a double click (see test_web_walk.py for that).
        panel.clock.advance(timedelta(minutes=3))
        _, body, _ = panel.post(
            "max", panel.users() + "/invite", {"email": "anna@x.de", "scope": "all"}
        )
        assert errors(body) == [
            "This address already has an open invitation. Resend or revoke it in the list of "
            "open invitations."
        ]
        pending = panel.team.pending_invitations(panel.account)[0]
        assert f'href="#invitation-{pending.id}"' in body
        assert f'<tr id="invitation-{pending.id}" class="ta-highlight">' in body
        _, body, _ = panel.post(
            "max", panel.users() + "/invite", {"email": "chef@muster.de", "scope": "all"}, "de"
        )
        assert errors(body)[0].startswith("Diese Person ist bereits Benutzer")

    def test_unknown_permission_is_a_form_error(self, panel: Panel) -> None:
        _, body, _ = panel.post("max", panel.users() + "/invite",
                                {"email": "a@b.de", "scope": "selected",
                                 "permission": ["billing.steal"]})  # fmt: skip
        assert errors(body) == [
            "One of the chosen permissions does not exist (any more). Please reload the page "
            "and choose again."
        ]

    def test_member_offers_only_what_it_may_grant(self, panel: Panel) -> None:
        panel.join("anna", "users.manage", "services.view")
        _, body = panel.get("anna", panel.users())
        assert 'id="ta-scope-all"' not in body
        assert re.findall(r'name="permission" value="([^"]+)"', body) == [
            "users.manage", "services.view",
        ]  # fmt: skip
        # max (all permissions) is beyond anna: no edit or remove for him
        row = body.split("chef@muster.de", 1)[1].split("</tr>", 1)[0]
        assert "Edit" not in row
        assert "Remove" not in row
        assert "Leave account" in body


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


class TestMembers:
    """Edit permissions, remove, leave."""

    def test_edit_permissions(self, panel: Panel) -> None:
        panel.join("bea", "billing.view", "credentials.view")
        page = panel.users() + "/bea"
        status, body = panel.get("max", page)
        assert status == 200
        assert re.search(r'value="credentials.view" checked', body)
        status, _, location = panel.post("max", page, {
            "scope": "selected", "permission": ["billing.view"],
        })  # fmt: skip
        assert (status, location) == (303, panel.users())
        assert panel.team.permissions_of("bea", panel.account) == PermissionSet.of("billing.view")
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["The permissions of buchhaltung@muster.de are saved."]

    def test_owner_is_not_editable(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users() + "/max")
        assert 'name="scope"' not in body
        assert "always has every permission" in body

    def test_escalation_is_refused_with_the_form_kept(self, panel: Panel) -> None:
        panel.join("anna", "users.manage", "billing.view")
        panel.join("bea", "billing.view")
        status, body, _ = panel.post("anna", panel.users() + "/bea", {
            "scope": "selected", "permission": ["billing.view", "billing.pay"],
        })  # fmt: skip
        assert status == 400
        assert "You do not have the permission for this." in body
        assert panel.team.permissions_of("bea", panel.account) == PermissionSet.of("billing.view")

    def test_remove(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        status, _, _ = panel.post("max", panel.users() + "/bea/remove", {"confirm": "yes"})
        assert status == 303
        assert [m.user_id for m in panel.team.members(panel.account)] == ["max"]

    def test_leave(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        status, _, location = panel.post("bea", panel.users() + "/bea/remove", {"confirm": "yes"})
        assert (status, location) == (303, "/team/")
        _, body = panel.get("bea", "/team/")
        assert notices(body) == ["You have left Muster GmbH."]

    def test_owner_cannot_leave(self, panel: Panel) -> None:
        status, body, _ = panel.post("max", panel.users() + "/max/remove", {"confirm": "yes"})
        assert status == 409
        assert "Transfer the ownership first." in body


class TestInvitationsOnThePage:
    """Resend and revoke; the old link then says it is no longer valid."""

    def test_resend_then_old_link_is_invalid(self, panel: Panel) -> None:
        panel.invite("anna@x.de", "services.view")
        old = panel.link()
        inv = panel.team.pending_invitations(panel.account)[0]
        status, _, _ = panel.post(
            "max", f"/team/accounts/{panel.account}/invitations/{inv.id}/resend", {}
        )
        assert status == 303
        assert len(panel.mailer.outbox) == 2
        assert panel.link() != old
        status, body = panel.get(None, old)
        assert status == 410
        assert "This invitation link is no longer valid" in body
        assert panel.get(None, panel.link())[0] == 200

    def test_revoke(self, panel: Panel) -> None:
        panel.invite("anna@x.de", "services.view")
        inv = panel.team.pending_invitations(panel.account)[0]
        panel.post("max", f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke", {})
        assert panel.team.pending_invitations(panel.account) == []
        status, body = panel.get(None, panel.link(), "de")
        assert status == 410
        assert "Diese Einladung wurde zurückgezogen." in body

    def test_invitation_of_another_account(self, panel: Panel) -> None:
        other = panel.team.create_account(name="B", owner_id="max", owner_email=USERS["max"])
        inv = panel.team.invite(other.id, actor_id="max", email="x@y.de",
                                permissions=PermissionSet.all())  # fmt: skip
        status, _, _ = panel.post(
            "max", f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke", {}
        )
        assert status == 404
        assert panel.team.pending_invitations(other.id) != []


class TestAcceptPage:
    """Who invited, to what, until when; GET changes nothing; accept and decline are POSTs."""

    def test_shows_the_invitation_and_changes_nothing(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view", "billing.pay")
        before = panel.team.audit_log(panel.account)
        status, body = panel.get(None, panel.link(), "de")
        assert status == 200
        assert "chef@muster.de lädt Sie ein, im Kundenkonto „Muster GmbH“ mitzuarbeiten." in body
        assert "buchhaltung@muster.de" in body
        assert "Rechnungen einsehen" in body
        assert "Rechnungen bezahlen" in body
        assert "09.03.2026, 09:00 UTC" in body
        assert 'href="/login?next=%2Fteam%2Finvitations%2Faccept%3Finvitation%3D' in body
        token = panel.link().split("token=", 1)[1]
        # only in the decline form's POST body, in no link
        assert body.count(token) == body.count(f'name="token" value="{token}"') == 1
        assert 'href="/register?next=' in body
        assert panel.team.audit_log(panel.account) == before
        assert panel.team.pending_invitations(panel.account)[0].status == "pending"

    def test_accept_logged_in(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        link = panel.link()
        _, body = panel.get("bea", link)
        assert "Accept invitation" in body
        token = link.split("token=", 1)[1]
        status, _, location = panel.post(
            "bea", "/team/invitations/accept", {"token": token, "action": "accept"}
        )
        assert (status, location) == (303, panel.users())
        assert panel.team.can("bea", panel.account, "billing.view")
        _, body = panel.get("bea", panel.users())
        assert notices(body) == ["Welcome to Muster GmbH."]
        # The link again (Back, a second click): she is in, so off to the account.
        status, _, location = panel.post(
            "bea", "/team/invitations/accept", {"token": token, "action": "accept"}
        )
        assert (status, location) == (303, panel.users())
        _, body = panel.get("bea", panel.users())
        assert notices(body) == ["You are a user of Muster GmbH."]
        # Anyone else is told the link is used.
        status, body = panel.get(None, link)
        assert status == 410
        assert "already been accepted" in body

    def test_post_without_login_goes_to_login(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        token = panel.link().split("token=", 1)[1]
        status, _, location = panel.post(
            None, "/team/invitations/accept", {"token": token, "action": "accept"}
        )
        assert status == 303
        assert location.startswith(
            "/login?next=" + quote("/team/invitations/accept?invitation=", "")
        )
        assert token not in location
        # Back from the login, the clean URL shows this invitation.
        back = unquote(location.partition("next=")[2])
        assert "buchhaltung@muster.de" in panel.get(None, back)[1]
        assert panel.team.pending_invitations(panel.account) != []

    def test_other_address_says_so(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        status, body = panel.get("anna", panel.link(), "de")
        assert status == 200
        assert ("Sie sind als dev@agentur.de angemeldet, aber diese Einladung gilt für "
                "buchhaltung@muster.de.") in body  # fmt: skip
        assert 'href="/logout"' in body
        assert 'value="accept"' not in body
        token = panel.link().split("token=", 1)[1]
        status, body, _ = panel.post(
            "anna", "/team/invitations/accept", {"token": token, "action": "accept"}, "de"
        )
        assert status == 410
        assert "ging an eine andere E-Mail-Adresse" in body
        assert "Traceback" not in body
        assert not panel.team.can("anna", panel.account, "billing.view")

    def test_decline(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        token = panel.link().split("token=", 1)[1]
        status, body, _ = panel.post(
            None, "/team/invitations/accept", {"token": token, "action": "decline"}
        )
        # It cannot be undone: a page asks first, and nothing has changed yet.
        assert status == 200
        assert "Decline the invitation to “Muster GmbH”?" in body
        assert len(panel.team.pending_invitations(panel.account)) == 1
        status, body, _ = panel.post(
            None, "/team/invitations/accept",
            {"token": token, "action": "decline", "confirm": "yes"},
        )  # fmt: skip
        assert status == 200
        assert "You declined the invitation to “Muster GmbH”" in body
        assert panel.team.pending_invitations(panel.account) == []
        status, body = panel.get(None, panel.link(), "de")
        assert status == 410
        assert "Sie haben diese Einladung abgelehnt" in body

    def test_expired(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        panel.clock.advance(timedelta(days=8))
        status, body = panel.get(None, panel.link())
        assert status == 410
        assert "This invitation has expired." in body

    @pytest.mark.parametrize("query", ["", "?token=", "?token=garbage"])
    def test_bad_links(self, panel: Panel, query: str) -> None:
        status, body = panel.get(None, "/team/invitations/accept" + query)
        assert status in (403, 410)
        assert "Invalid" not in body
        assert "Traceback" not in body


class TestContacts:
    """List, add, edit, remove, with the mail categories as checkboxes."""

    def test_add_edit_remove_and_recipients_follow(self, panel: Panel) -> None:
        page = f"/team/accounts/{panel.account}/contacts"
        _, body = panel.get("max", page, "de")
        assert "Änderungen speichern" in body
        assert re.search(r'value="general" checked', body)
        status, _, location = panel.post("max", page, {
            "name": "Steuerbüro Klein", "email": "kanzlei@steuer.example",
            "company": "Klein & Co", "category": ["billing"],
        })  # fmt: skip
        assert (status, location) == (303, page)
        assert panel.team.recipients(panel.account, "billing") == [
            "chef@muster.de", "kanzlei@steuer.example",
        ]  # fmt: skip
        contact = panel.team.contacts(panel.account)[0]
        _, body = panel.get("max", page)
        assert "Klein &amp; Co" in body
        status, _, _ = panel.post("max", f"{page}/{contact.id}", {
            "name": "Steuerbüro Klein", "email": "kanzlei@steuer.example",
            "category": ["general", "support"],
        })  # fmt: skip
        assert status == 303
        assert panel.team.recipients(panel.account, "billing") == ["chef@muster.de"]
        assert "kanzlei@steuer.example" in panel.team.recipients(panel.account, "support")
        panel.post("max", f"{page}/{contact.id}/remove", {"confirm": "yes"})
        assert panel.team.contacts(panel.account) == []

    def test_errors_keep_the_input(self, panel: Panel) -> None:
        page = f"/team/accounts/{panel.account}/contacts"
        status, body, _ = panel.post("max", page, {
            "name": "", "email": "kanzlei(at)steuer", "category": ["billing"],
        }, "de")  # fmt: skip
        assert status == 400
        assert errors(body) == ["Bitte geben Sie einen Namen ein."]
        status, body, _ = panel.post("max", page, {
            "name": "Klein", "email": "kanzlei(at)steuer", "category": ["billing"],
        }, "de")  # fmt: skip
        assert errors(body)[0].startswith("Das ist keine gültige E-Mail-Adresse.")
        assert 'value="kanzlei(at)steuer"' in body
        assert 'value="Klein"' in body
        assert re.search(r'value="billing" checked', body)
        assert not re.search(r'value="general" checked', body)
        assert panel.team.contacts(panel.account) == []

    def test_read_only_without_contacts_manage(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        page = f"/team/accounts/{panel.account}/contacts"
        status, body = panel.get("bea", page)
        assert status == 200
        assert 'name="email"' not in body
        status, _, _ = panel.post("bea", page, {"name": "x", "email": "x@y.de"})
        assert status == 403
        assert panel.team.contacts(panel.account) == []


class TestActivity:
    """The audit log, newest first, in pages."""

    def test_paged(self, panel: Panel) -> None:
        for n in range(30):
            panel.team.add_contact(panel.account, actor_id="max", name=f"C{n}",
                                   email=f"c{n}@x.de", categories=["general"])  # fmt: skip
        page = f"/team/accounts/{panel.account}/activity"
        _, first = panel.get("max", page, "de")
        assert first.count("<tr><td") == 25
        assert "hat den Kontakt c29@x.de angelegt" in first
        assert "chef@muster.de" in first
        assert "Älter" in first
        assert "Neuer" not in first
        _, second = panel.get("max", page + "?page=2", "de")
        assert second.count("<tr><td") == 6  # 5 contacts and the account's creation
        assert "hat das Kundenkonto angelegt" in second
        assert "Älter" not in second
        assert "Neuer" in second
        assert panel.get("max", page + "?page=x")[0] == 200

    def test_a_bounced_mail_is_shown(self, panel: Panel, monkeypatch: pytest.MonkeyPatch) -> None:
        send = panel.mailer.send

        def refuse(message: EmailMessage, **kwargs: object) -> None:
            if message["To"] == "weg@x.de":
                raise DeliveryRefused("550 5.1.1 no such user", code=550)
            send(message)

        monkeypatch.setattr(panel.mailer, "send", refuse)
        panel.team.give_up_after = 1
        panel.team.add_contact(panel.account, actor_id="max", name="Weg",
                               email="weg@x.de", categories=["general"])  # fmt: skip
        with pytest.raises(DeliveryFailed, match="for good"):
            panel.team.notify(panel.account, "general", subject="S", text="T")
        page = f"/team/accounts/{panel.account}/activity"
        _, english = panel.get("max", page)
        assert "stopped the mail to weg@x.de: the mail server refused it for good" in english
        _, german = panel.get("max", page, "de")
        assert "hat die E-Mail an weg@x.de eingestellt" in german


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
        assert bea.get(f"/panel/{account.id}/invoices").status_code == 302  # not yet
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


class TestMembersOverTime:
    """Suspend, end dates, presets, notes and grants on single resources, on the pages."""

    def test_invite_with_a_preset_a_note_and_an_end_date(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users(), "de")
        assert 'value="preset:accounting"' in body
        assert "Buchhaltung" in body
        status, _, _ = panel.post("max", panel.users() + "/invite", {
            "email": "bea@muster.de", "scope": "preset:accounting",
            "note": "Hallo Bea,\nbitte die Rechnungen prüfen.", "until": "2026-06-30",
        })  # fmt: skip
        assert status == 303
        inv = panel.team.pending_invitations(panel.account)[0]
        assert inv.permissions == panel.team.catalog.preset("accounting")
        assert inv.note == "Hallo Bea,\nbitte die Rechnungen prüfen."
        assert inv.access_until == datetime(2026, 6, 30, tzinfo=UTC)
        mail = panel.mailer.outbox[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "bitte die Rechnungen prüfen." in mail
        _, body = panel.get("max", panel.users())
        row = body.split("Open invitations", 1)[1].split("</tr>", 2)[1]
        assert "bea@muster.de" in row
        assert "access ends 2026-06-30 00:00 UTC" in row
        assert "bitte die Rechnungen prüfen." in row

    def test_accept_page_shows_the_note_and_the_end_date(self, panel: Panel) -> None:
        inv = panel.team.invite(
            panel.account, actor_id="max", email=USERS["bea"], permissions=PermissionSet.all(),
            note="Hallo Bea <b>!</b>", access_until=datetime(2026, 6, 30, tzinfo=UTC),
        )  # fmt: skip
        _, body = panel.get(None, f"/team/invitations/accept?token={inv.token}", "de")
        assert '<blockquote class="ta-note">Hallo Bea &lt;b&gt;!&lt;/b&gt;</blockquote>' in body
        assert "<dt>Zugriff endet am</dt><dd>30.06.2026, 00:00 UTC</dd>" in body

    def test_presets_only_when_grantable(self, panel: Panel) -> None:
        panel.join("anna", "users.manage", "billing.view")
        _, body = panel.get("anna", panel.users())
        assert "preset:" not in body

    @pytest.mark.parametrize(
        ("until", "error"),
        [("2026-01-01", "Choose a day in the future."),
         ("31.12.2026", "Please enter a date such as 2026-12-31.")],
    )  # fmt: skip
    def test_bad_end_date_keeps_the_form(self, panel: Panel, until: str, error: str) -> None:
        status, body, _ = panel.post("max", panel.users() + "/invite", {
            "email": "bea@muster.de", "scope": "all", "note": "Hi", "until": until,
        })  # fmt: skip
        assert status == 400
        assert errors(body) == [error]
        assert f'value="{until}"' in body
        assert ">Hi</textarea>" in body
        assert '<details class="ta-more" open>' in body
        assert panel.team.pending_invitations(panel.account) == []

    def test_too_long_note_is_an_error_next_to_it(self, panel: Panel) -> None:
        _, body, _ = panel.post("max", panel.users() + "/invite", {
            "email": "bea@muster.de", "scope": "all", "note": "x" * 600,
        })  # fmt: skip
        assert re.search(r'<textarea id="ta-note"[^>]*aria-invalid="true"', body)
        assert len(errors(body)) == 1
        assert panel.team.pending_invitations(panel.account) == []

    def test_suspend_and_reactivate(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        page = panel.users() + "/bea"
        _, body = panel.get("max", page, "de")
        assert "Sperren" in body
        status, _, location = panel.post("max", page + "/suspend", {"confirm": "yes"})
        assert (status, location) == (303, page)
        assert panel.team.get_member(panel.account, "bea").status == "suspended"
        assert not panel.team.can("bea", panel.account, "billing.view")
        _, body = panel.get("max", panel.users(), "de")
        row = body.split("buchhaltung@muster.de", 1)[1].split("</tr>", 1)[0]
        assert "gesperrt" in row
        _, body = panel.get("max", page)
        assert "Reactivate" in body
        panel.post("max", page + "/reactivate", {})
        assert panel.team.can("bea", panel.account, "billing.view")

    def test_end_date_set_refused_and_cleared(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        page = panel.users() + "/bea"
        status, _, _ = panel.post("max", page + "/access-until", {"until": "2026-04-01"})
        assert status == 303
        member = panel.team.get_member(panel.account, "bea")
        assert member.access_until == datetime(2026, 4, 1, tzinfo=UTC)
        _, body = panel.get("max", page)
        assert notices(body) == [
            "The access of buchhaltung@muster.de ends on 2026-04-01 00:00 UTC."
        ]
        assert 'value="2026-04-01"' in body
        status, body, _ = panel.post("max", page + "/access-until", {"until": "2020-01-01"}, "de")
        assert status == 400
        assert errors(body) == ["Wählen Sie einen Tag in der Zukunft."]
        assert 'value="2020-01-01"' in body
        panel.post("max", page + "/access-until", {"until": "2026-04-01", "action": "clear"})
        assert panel.team.get_member(panel.account, "bea").access_until is None
        panel.clock.advance(timedelta(days=1))
        panel.post("max", page + "/access-until", {"until": "2026-03-04"})
        panel.clock.advance(timedelta(days=2))
        _, body = panel.get("max", panel.users())
        assert "access ended" in row_of(body, "buchhaltung@muster.de")

    def test_owner_cannot_be_suspended(self, panel: Panel) -> None:
        status, body, _ = panel.post("max", panel.users() + "/max/suspend", {"confirm": "yes"})
        assert status == 409
        assert "Transfer the ownership first." in body

    def test_grants_on_single_resources_are_shown_and_kept(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        perms = PermissionSet.of("billing.view") | PermissionSet.on(
            "services.manage", "srv-1", "srv-2"
        )
        panel.team.set_permissions(panel.account, "bea", perms, actor_id="max")
        _, body = panel.get("max", panel.users())
        row = body.split("buchhaltung@muster.de", 1)[1].split("</tr>", 1)[0]
        assert "<dt>Manage services</dt>" in row
        assert "only on srv-1, srv-2" in row
        page = panel.users() + "/bea"
        _, body = panel.get("max", page)
        assert "These grants are kept when you save." in body
        panel.post(
            "max", page, {"scope": "selected", "permission": ["billing.view", "billing.pay"]}
        )
        held = panel.team.permissions_of("bea", panel.account)
        assert held == PermissionSet.of("billing.view", "billing.pay") | PermissionSet.on(
            "services.manage", "srv-1", "srv-2"
        )


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

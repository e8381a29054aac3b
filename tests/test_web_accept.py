"""The page the invitation link opens, through the Flask blueprint: accept, decline,
logged in or not, and links no longer valid."""

import re
from datetime import timedelta
from urllib.parse import quote, unquote

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    Panel,
    notices,
    panel,
)

__all__ = ["panel"]  # the fixture, imported for pytest


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

    def test_logout_comes_back_to_the_invitation(self) -> None:
        # logout_url takes {next} as login_url does: the invitation page, by its clean
        # URL (no token), so the right person can log in and accept there.
        panel = Panel(logout_url="/logout?next={next}")
        panel.invite("buchhaltung@muster.de", "billing.view")
        token = panel.link().split("token=", 1)[1]
        status, body = panel.get("anna", panel.link())
        assert status == 200
        # A form that posts, with the CSRF token: a link would log out on a GET.
        [href] = re.findall(r'<form method="post" action="(/logout[^"]*)">', body)
        assert 'name="csrf_token"' in body.partition(href)[2].partition("</form>")[0]
        assert href.startswith("/logout?next=" + quote("/team/invitations/accept?invitation=", ""))
        assert token not in href
        assert quote(token, "") not in href
        back = unquote(href.partition("next=")[2])
        status, body = panel.get("anna", back)
        assert "buchhaltung@muster.de" in body

    def test_a_logout_on_another_site_gets_no_csrf_token(self) -> None:
        # The pages' token is the session's secret: a logout_url on another origin (a
        # single sign-on) gets the POST without it; it has its own protection.
        def logout_form(url: str) -> str:
            panel = Panel(logout_url=url)
            panel.invite("buchhaltung@muster.de", "billing.view")
            status, body = panel.get("anna", panel.link())
            assert status == 200
            [form] = [f for f in body.split("<form ")[1:] if "Log out" in f]
            return form

        for url in ["https://sso.example.com/logout?next={next}", "//sso.example.com/out",
                    "/\\sso.example.com/out", "/\tsso.example.com/out"]:  # fmt: skip
            assert 'name="csrf_token"' not in logout_form(url), url
        assert 'name="csrf_token"' in logout_form("/logout?next={next}")

    def test_other_address_says_so(self, panel: Panel) -> None:
        panel.invite("buchhaltung@muster.de", "billing.view")
        status, body = panel.get("anna", panel.link(), "de")
        assert status == 200
        assert ("Sie sind als dev@agentur.de angemeldet, aber diese Einladung gilt für "
                "buchhaltung@muster.de.") in body  # fmt: skip
        assert 'action="/logout"' in body
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

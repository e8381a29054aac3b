"""Removing a member, leaving, suspending and removing a contact ask first: a page names
who is affected and what happens, and only its confirm button (a POST with the CSRF token
and ``confirm=yes``) acts. Flask's test client through the blueprint."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import USERS, Panel, notices

from teamaccess import (
    InvitationRevoked,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    TeamAccess,
)


@pytest.fixture
def panel() -> Panel:
    p = Panel()
    p.join("bea", "billing.view")
    return p


def text(body: str) -> str:
    """The page's text: tags dropped, entities read, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def confirm_form(body: str) -> tuple[str, dict[str, str]]:
    """The confirmation form's action and hidden fields."""
    found = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', body, re.S)
    assert found is not None, body[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found[2]))
    return html.unescape(found[1]), fields


def cancel_link(body: str) -> str:
    found = re.search(r'<a class="ta-button ta-secondary" href="([^"]+)">', body)
    assert found is not None
    return html.unescape(found[1])


def members(panel: Panel) -> list[str]:
    return [m.user_id for m in panel.team.members(panel.account)]


class TestRemoveMember:
    """ "Remove" on the users page leads to a page that asks; only its button removes."""

    def test_the_button_is_a_link_to_the_page(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users())
        row = body.split(USERS["bea"], 1)[1].split("</tr>", 1)[0]
        assert f'href="{panel.users()}/bea/remove">Remove</a>' in row
        assert "<form" not in row

    def test_the_page_names_who_and_what(self, panel: Panel) -> None:
        status, body = panel.get("max", panel.users() + "/bea/remove")
        assert status == 200
        page = text(body)
        assert "Remove buchhaltung@muster.de from Muster GmbH?" in page
        assert "They lose access to this customer account, and every permission in it" in page
        assert "Open invitations they sent are revoked" in page
        action, fields = confirm_form(body)
        assert action == panel.users() + "/bea/remove"
        assert fields["confirm"] == "yes"
        assert fields["csrf_token"]
        assert cancel_link(body) == panel.users()
        assert members(panel) == ["max", "bea"]

    def test_in_german(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users() + "/bea/remove", "de")
        page = text(body)
        assert "buchhaltung@muster.de aus Muster GmbH entfernen?" in page
        assert "Offene Einladungen, die er versendet hat, werden zurückgezogen" in page
        assert ">Benutzer entfernen</button>" in body
        assert ">Abbrechen</a>" in body

    def test_a_post_without_the_confirmation_only_asks(self, panel: Panel) -> None:
        status, body, _ = panel.post("max", panel.users() + "/bea/remove", {})
        assert status == 200
        assert "Remove buchhaltung@muster.de from Muster GmbH?" in text(body)
        assert members(panel) == ["max", "bea"]
        status, _, _ = panel.post("max", panel.users() + "/bea/remove", {"confirm": "no"})
        assert status == 200
        assert members(panel) == ["max", "bea"]

    def test_the_confirmation_still_needs_the_csrf_token(self, panel: Panel) -> None:
        for token in ({}, {"csrf_token": "forged"}):
            status, body, _ = panel.post(
                "max", panel.users() + "/bea/remove", {"confirm": "yes", **token}, csrf=False
            )
            assert status == 400
            assert "This form has expired" in body
        assert members(panel) == ["max", "bea"]

    def test_confirmed_it_removes_and_revokes_their_invitations(self, panel: Panel) -> None:
        panel.join("anna", "users.manage", "billing.view")
        inv = panel.team.invite(panel.account, actor_id="anna", email="neu@muster.de",
                                permissions=PermissionSet.of("billing.view"))  # fmt: skip
        _, body = panel.get("max", panel.users() + "/anna/remove")
        action, fields = confirm_form(body)
        response = panel.client("max").post(action, data=fields)
        assert response.status_code == 303
        assert members(panel) == ["max", "bea"]
        # what the page said: the invitations anna sent are revoked
        assert panel.team.get_invitation(inv.id).status == "revoked"
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["dev@agentur.de was removed."]

    def test_without_users_manage_no_page_for_someone_else(self, panel: Panel) -> None:
        panel.join("anna", "billing.view")
        for path in ("/anna/remove", "/max/remove", "/anna/suspend"):
            status, body = panel.get("bea", panel.users() + path)
            assert status == 403, path
            assert "“Manage users”" in body
            assert "<form" not in body.split("</header>")[-1]
        assert members(panel) == ["max", "bea", "anna"]

    def test_no_page_for_someone_the_actor_may_not_remove(self, panel: Panel) -> None:
        panel.join("anna", "users.manage")  # bea holds billing.view, which anna does not
        status, body = panel.get("anna", panel.users() + "/bea/remove")
        assert status == 403
        assert "You do not have the permission for this." in body
        status, body = panel.get("anna", panel.users() + "/max/remove")
        assert status == 409
        assert "Transfer the ownership first." in body

    def test_strangers_and_unknown_members(self, panel: Panel) -> None:
        assert panel.get("eve", panel.users() + "/bea/remove")[0] == 404
        assert panel.get("max", panel.users() + "/nobody/remove")[0] == 404


class TestLeave:
    """ "Leave account" asks too; the owner cannot leave."""

    def test_leave_asks_then_leaves(self, panel: Panel) -> None:
        _, body = panel.get("bea", panel.users())
        assert f'href="{panel.users()}/bea/remove">Leave account</a>' in body
        status, body = panel.get("bea", panel.users() + "/bea/remove", "de")
        assert status == 200
        page = text(body)
        assert "Muster GmbH verlassen?" in page
        assert "Sie verlieren sofort den Zugriff auf dieses Kundenkonto" in page
        assert "Um zurückzukommen, brauchen Sie eine neue Einladung." in page
        assert cancel_link(body) == panel.users()
        assert members(panel) == ["max", "bea"]
        action, fields = confirm_form(body)
        response = panel.client("bea", "de").post(action, data=fields)
        assert (response.status_code, response.headers["Location"]) == (303, "/team/")
        assert members(panel) == ["max"]

    def test_a_member_without_users_manage_may_leave(self, panel: Panel) -> None:
        status, _, _ = panel.post("bea", panel.users() + "/bea/remove", {})
        assert status == 200  # the page that asks
        assert members(panel) == ["max", "bea"]
        status, _, _ = panel.post("bea", panel.users() + "/bea/remove", {"confirm": "yes"})
        assert status == 303
        assert members(panel) == ["max"]

    def test_the_owner_gets_no_page_to_confirm(self, panel: Panel) -> None:
        status, body = panel.get("max", panel.users() + "/max/remove")
        assert status == 409
        assert "Transfer the ownership first." in body
        assert 'name="confirm"' not in body


class TestSuspend:
    """ "Suspend" on a member's page asks first; the page says what suspension means."""

    def test_asks_then_suspends(self, panel: Panel) -> None:
        page_url = panel.users() + "/bea"
        _, body = panel.get("max", page_url)
        assert f'href="{page_url}/suspend">Suspend</a>' in body
        status, body = panel.get("max", page_url + "/suspend")
        assert status == 200
        page = text(body)
        assert "Suspend buchhaltung@muster.de in Muster GmbH?" in page
        assert "they can use none of their permissions; the permissions are kept" in page
        assert "open invitations they sent cannot be accepted" in page
        assert cancel_link(body) == page_url
        assert panel.team.get_member(panel.account, "bea").status == "active"
        status, _, _ = panel.post("max", page_url + "/suspend", {})
        assert status == 200
        assert panel.team.get_member(panel.account, "bea").status == "active"
        action, fields = confirm_form(body)
        response = panel.client("max").post(action, data=fields)
        assert (response.status_code, response.headers["Location"]) == (303, page_url)
        assert panel.team.get_member(panel.account, "bea").status == "suspended"
        # nothing to confirm for a suspended member: back to its page
        response = panel.client("max").get(page_url + "/suspend")
        assert (response.status_code, response.headers["Location"]) == (303, page_url)

    def test_in_german(self, panel: Panel) -> None:
        _, body = panel.get("max", panel.users() + "/bea/suspend", "de")
        page = text(body)
        assert "buchhaltung@muster.de in Muster GmbH sperren?" in page
        assert "die Berechtigungen bleiben erhalten" in page
        assert ">Benutzer sperren</button>" in body

    def test_what_the_page_says_about_invitations_is_true(self, panel: Panel) -> None:
        panel.join("anna", "users.manage", "billing.view")
        token = panel.team.invite(panel.account, actor_id="anna", email=USERS["eve"],
                                  permissions=PermissionSet.of("billing.view")).token  # fmt: skip
        assert token is not None
        panel.post("max", panel.users() + "/anna/suspend", {"confirm": "yes"})
        with pytest.raises(InvitationRevoked):
            panel.team.accept_invitation(token, user_id="eve", email=USERS["eve"])


class TestRemoveContact:
    """ "Remove" on the contacts page asks first, naming the contact and its mail."""

    @pytest.fixture
    def contact_id(self, panel: Panel) -> str:
        return panel.team.add_contact(
            panel.account, actor_id="max", name="Steuerbüro Klein",
            email="kanzlei@steuer.example", categories=["billing", "general"],
        ).id  # fmt: skip

    def contacts(self, panel: Panel) -> str:
        return f"/team/accounts/{panel.account}/contacts"

    def test_asks_then_removes(self, panel: Panel, contact_id: str) -> None:
        page_url = self.contacts(panel)
        _, body = panel.get("max", page_url)
        assert f'href="{page_url}/{contact_id}/remove">Remove</a>' in body
        status, body = panel.get("max", f"{page_url}/{contact_id}/remove")
        assert status == 200
        page = text(body)
        assert (
            "Remove the contact Steuerbüro Klein (kanzlei@steuer.example) from Muster GmbH?" in page
        )
        assert "no longer receives the emails of this customer account (General, Billing)" in page
        assert "A contact has no login" in page
        assert cancel_link(body) == page_url
        status, _, _ = panel.post("max", f"{page_url}/{contact_id}/remove", {})
        assert status == 200
        assert [c.id for c in panel.team.contacts(panel.account)] == [contact_id]
        action, fields = confirm_form(body)
        response = panel.client("max").post(action, data=fields)
        assert (response.status_code, response.headers["Location"]) == (303, page_url)
        assert panel.team.contacts(panel.account) == []

    def test_in_german(self, panel: Panel, contact_id: str) -> None:
        _, body = panel.get("max", f"{self.contacts(panel)}/{contact_id}/remove", "de")
        page = text(body)
        assert "Den Kontakt Steuerbüro Klein (kanzlei@steuer.example) aus Muster GmbH" in page
        assert "erhält keine E-Mails dieses Kundenkontos mehr (Allgemein, Rechnungen)" in page
        assert ">Kontakt entfernen</button>" in body

    def test_without_contacts_manage_no_page(self, panel: Panel, contact_id: str) -> None:
        status, body = panel.get("bea", f"{self.contacts(panel)}/{contact_id}/remove")
        assert status == 403
        assert 'name="confirm"' not in body
        status, _, _ = panel.post(
            "bea", f"{self.contacts(panel)}/{contact_id}/remove", {"confirm": "yes"}
        )
        assert status == 403
        assert len(panel.team.contacts(panel.account)) == 1

    def test_the_confirmation_still_needs_the_csrf_token(
        self, panel: Panel, contact_id: str
    ) -> None:
        status, _, _ = panel.post(
            "max", f"{self.contacts(panel)}/{contact_id}/remove", {"confirm": "yes"}, csrf=False
        )
        assert status == 400
        assert len(panel.team.contacts(panel.account)) == 1


def test_mail_already_waiting_for_a_removed_contact_still_goes_out() -> None:
    """What the contact page says: queued mail is not taken back by the removal."""
    mailer = MemoryMailer()
    team = TeamAccess(MemoryStore(), mailer, secret_key="web-test", delivery="queue")
    acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    contact = team.add_contact(acc.id, actor_id="o", name="K", email="k@example.org",
                               categories=["billing"])  # fmt: skip
    team.notify(acc.id, "billing", subject="Rechnung", text="hallo")
    team.remove_contact(contact.id, actor_id="o")
    team.deliver_pending()
    assert sorted(str(m["To"]) for m in mailer.outbox) == ["k@example.org", "o@example.org"]


class TestConfirmedTwice:
    """Two tabs, or a double click the double-submit guard missed: the second confirmation
    lands where the first one did, with a notice, not on a "not found" page."""

    def test_remove_a_member_twice(self, panel: Panel) -> None:
        # both tabs show the page that asks, then each confirms
        _, first = panel.get("max", panel.users() + "/bea/remove")
        _, second = panel.get("max", panel.users() + "/bea/remove")
        action, fields = confirm_form(first)
        assert panel.client("max").post(action, data=fields).status_code == 303
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["buchhaltung@muster.de was removed."]
        action, fields = confirm_form(second)
        response = panel.client("max").post(action, data=fields)
        assert (response.status_code, response.headers["Location"]) == (303, panel.users())
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["This user was already removed."]
        assert members(panel) == ["max"]

    def test_in_german(self, panel: Panel) -> None:
        path = panel.users() + "/bea/remove"
        for _ in range(2):
            status, _, location = panel.post("max", path, {"confirm": "yes"}, "de")
            assert (status, location) == (303, panel.users())
        _, body = panel.get("max", panel.users(), "de")
        assert notices(body) == ["Diese Person wurde bereits entfernt."]

    def test_after_they_left(self, panel: Panel) -> None:
        panel.post("bea", panel.users() + "/bea/remove", {"confirm": "yes"})
        status, _, location = panel.post("max", panel.users() + "/bea/remove", {"confirm": "yes"})
        assert (status, location) == (303, panel.users())

    def test_an_id_never_in_the_account_is_still_not_found(self, panel: Panel) -> None:
        status, body, _ = panel.post("max", panel.users() + "/nobody/remove", {"confirm": "yes"})
        assert status == 404
        assert "not (or no longer) a user" in body

    def test_without_users_manage_still_not_allowed(self, panel: Panel) -> None:
        panel.join("anna", "billing.view")
        panel.post("max", panel.users() + "/anna/remove", {"confirm": "yes"})
        status, body, _ = panel.post("bea", panel.users() + "/anna/remove", {"confirm": "yes"})
        assert status == 403
        assert "“Manage users”" in body

    def test_revoke_an_invitation_twice(self, panel: Panel) -> None:
        panel.invite("neu@muster.de", "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        outbox = len(panel.mailer.outbox)
        for notice in ["The invitation to neu@muster.de was revoked.",
                       "The invitation to neu@muster.de was already revoked."]:  # fmt: skip
            status, _, location = panel.post("max", path, {})
            assert (status, location) == (303, panel.users())
            assert notices(panel.get("max", panel.users())[1]) == [notice]
        assert panel.team.get_invitation(inv.id).status == "revoked"
        assert len(panel.mailer.outbox) == outbox
        status, _, _ = panel.post("max", path, {}, "de")
        _, body = panel.get("max", panel.users(), "de")
        assert notices(body) == ["Die Einladung an neu@muster.de wurde bereits zurückgezogen."]

    def test_revoke_an_invitation_accepted_meanwhile(self, panel: Panel) -> None:
        """Two tabs: the owner's users page still shows the invitation with "Revoke" when
        the invitee accepts; the click lands on the users page with a notice, not a 410."""
        token = panel.invite(USERS["anna"], "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        panel.team.accept_invitation(token, user_id="anna", email=USERS["anna"])
        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        status, _, location = panel.post("max", path, {})
        assert (status, location) == (303, panel.users())
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["The invitation to dev@agentur.de was already accepted."]
        assert panel.team.get_invitation(inv.id).status == "accepted"
        assert "anna" in members(panel)  # the revoke took nothing from the new member
        panel.post("max", path, {}, "de")
        _, body = panel.get("max", panel.users(), "de")
        assert notices(body) == ["Die Einladung an dev@agentur.de wurde bereits angenommen."]

    def test_revoke_an_invitation_expired_meanwhile(self, panel: Panel) -> None:
        """The users page was opened before the invitation expired: "Revoke" says it had
        expired already, and that it is now revoked, so no resend brings it back."""
        panel.invite("neu@muster.de", "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        panel.clock.advance(timedelta(days=8))
        assert panel.team.get_invitation(inv.id).status == "expired"
        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        status, _, location = panel.post("max", path, {})
        assert (status, location) == (303, panel.users())
        _, body = panel.get("max", panel.users())
        assert notices(body) == [
            "The invitation to neu@muster.de had already expired, so its link no longer "
            "worked. It is now revoked as well and cannot be sent again."
        ]
        assert panel.team.get_invitation(inv.id).status == "revoked"
        with pytest.raises(InvitationRevoked):
            panel.team.resend_invitation(inv.id, actor_id="max")
        panel.post("max", path, {}, "de")  # revoked now: the second click says so
        _, body = panel.get("max", panel.users(), "de")
        assert notices(body) == ["Die Einladung an neu@muster.de wurde bereits zurückgezogen."]

    def test_revoke_an_expired_invitation_in_german(self, panel: Panel) -> None:
        panel.invite("neu@muster.de", "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        panel.clock.advance(timedelta(days=8))
        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        panel.post("max", path, {}, "de")
        _, body = panel.get("max", panel.users(), "de")
        assert notices(body) == [
            "Die Einladung an neu@muster.de war bereits abgelaufen, ihr Link funktionierte "
            "also nicht mehr. Sie ist jetzt auch zurückgezogen und kann nicht erneut "
            "gesendet werden."
        ]

    def test_revoke_an_invitation_declined_meanwhile(self, panel: Panel) -> None:
        token = panel.invite(USERS["anna"], "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        panel.team.decline_invitation(token)
        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        status, _, location = panel.post("max", path, {})
        assert (status, location) == (303, panel.users())
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["The invitation to dev@agentur.de was already declined."]
        assert panel.team.get_invitation(inv.id).status == "declined"

    def test_revoke_while_the_invitee_accepts(
        self, panel: Panel, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Accepted between the page's read of the invitation and its revoke: the same
        notice. The invitee's accept runs, for real, right after that read."""
        token = panel.invite(USERS["anna"], "billing.view")
        [inv] = panel.team.pending_invitations(panel.account)
        read = panel.team.get_invitation

        def read_then_accept(invitation_id: str) -> object:
            seen = read(invitation_id)
            if seen.status == "pending":
                panel.team.accept_invitation(token, user_id="anna", email=USERS["anna"])
            return seen

        path = f"/team/accounts/{panel.account}/invitations/{inv.id}/revoke"
        panel.get("max", panel.users())  # the CSRF token, before the hook is in place
        monkeypatch.setattr(panel.team, "get_invitation", read_then_accept)
        status, _, location = panel.post("max", path, {})
        monkeypatch.undo()
        assert (status, location) == (303, panel.users())
        _, body = panel.get("max", panel.users())
        assert notices(body) == ["The invitation to dev@agentur.de was already accepted."]
        assert "anna" in members(panel)

    def test_remove_a_contact_twice(self, panel: Panel) -> None:
        contact = panel.team.add_contact(
            panel.account, actor_id="max", name="Steuerbüro Klein",
            email="kanzlei@steuer.example", categories=["billing"],
        )  # fmt: skip
        page = f"/team/accounts/{panel.account}/contacts"
        path = f"{page}/{contact.id}/remove"
        for notice in ["The contact Steuerbüro Klein was removed.",
                       "This contact was already removed."]:  # fmt: skip
            status, _, location = panel.post("max", path, {"confirm": "yes"})
            assert (status, location) == (303, page)
            assert notices(panel.get("max", page)[1]) == [notice]
        panel.post("max", path, {"confirm": "yes"}, "de")
        _, body = panel.get("max", page, "de")
        assert notices(body) == ["Dieser Kontakt wurde bereits entfernt."]
        # the page that asks, for a removed contact, is still "not found"
        assert panel.get("max", path)[0] == 404
        assert panel.post("max", f"{page}/con_nope/remove", {"confirm": "yes"})[0] == 404

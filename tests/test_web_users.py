"""The users page through the Flask blueprint: members, the invite form, open
invitations, a member's page and members over time (states, end dates, presets, notes,
grants on single resources)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    USERS,
    Panel,
    errors,
    notices,
    panel,
    row_of,
)

from teamaccess import (  # noqa: E402
    PermissionSet,
)

__all__ = ["panel"]  # the fixture, imported for pytest


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

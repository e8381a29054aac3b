"""A member whose access the owner limited presses "Resend" on an invitation it may not
give: the users page says why at that invitation's row (its access outlasts the member's
own, or it grants permissions the member lacks), in English and German, with status 403,
and nothing is sent. ``resend_invitation`` through the API says what can be done instead
of "give an end", which a resend cannot."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from tests.web_panel import USERS, Panel, errors, row_of

from teamaccess import PermissionDenied, PermissionSet

pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

GENERIC = ("You do not have the permission for this", "Dafür fehlt Ihnen die Berechtigung")


def limited(panel: Panel) -> tuple[str, str]:
    """anna manages users until 2026-04-01 09:00 UTC; bea's invitation, from the owner,
    gives billing.view without an end. Their ids."""
    panel.join("anna", "users.manage", "billing.view")
    panel.team.set_access_until(panel.account, "anna", panel.clock.now() + timedelta(days=30),
                                actor_id="max")  # fmt: skip
    panel.invite(USERS["bea"], "billing.view")
    (inv,) = [i for i in panel.team.pending_invitations(panel.account) if i.email == USERS["bea"]]
    return "anna", inv.id


def resend(panel: Panel, user: str, inv_id: str, language: str) -> tuple[int, str]:
    status, body, _ = panel.post(
        user, f"/team/accounts/{panel.account}/invitations/{inv_id}/resend", {}, language
    )
    return status, html.unescape(body)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "You cannot send this invitation again: it gives access without an end, and "
               "your own access ends on 2026-04-01 09:00 UTC. Revoke it and send a new "
               "invitation with an end on that day or before, or ask the account owner to "
               "send it again."),
        ("de", "Sie können diese Einladung nicht erneut senden: Sie gibt Zugang ohne Ende, "
               "Ihr eigener Zugang endet aber am 01.04.2026, 09:00 UTC. Ziehen Sie sie zurück "
               "und senden Sie eine neue Einladung mit einem Ende an diesem Tag oder davor, "
               "oder bitten Sie den Kontoinhaber, sie erneut zu senden."),
    ],
)  # fmt: skip
def test_an_invitation_whose_access_outlasts_the_members_own(language: str, text: str) -> None:
    panel = Panel()
    user, inv_id = limited(panel)
    sent = len(panel.mailer.outbox)
    status, body = resend(panel, user, inv_id, language)
    # Before: 403 and the general "You do not have the permission for this" page.
    assert status == 403
    assert errors(body) == [text]
    row = row_of(body, USERS["bea"])
    assert text in row  # at the place it happened
    assert 'class="ta-highlight"' in row
    assert f'aria-describedby="invitation-{inv_id}-error"' in row
    assert not any(g in body for g in GENERIC)
    assert 'name="email"' in body  # the users page itself, not an error page
    assert len(panel.mailer.outbox) == sent
    assert panel.team.get_invitation(inv_id).sent_count == 1


def test_an_end_within_the_members_own_is_resent() -> None:
    panel = Panel()
    user, _ = limited(panel)
    inv = panel.team.invite(panel.account, actor_id="max", email=USERS["eve"],
                            permissions=PermissionSet.of("billing.view"),
                            access_until=panel.clock.now() + timedelta(days=10))  # fmt: skip
    status, _ = resend(panel, user, inv.id, "en")
    assert status == 303
    assert panel.team.get_invitation(inv.id).sent_count == 2


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "You cannot send this invitation again: it grants permissions you do not hold "
               "yourself (Pay invoices). Ask the account owner to send it again, or revoke it "
               "and invite again with permissions you hold."),
        ("de", "Sie können diese Einladung nicht erneut senden: Sie gibt Berechtigungen, die "
               "Sie selbst nicht haben (Rechnungen bezahlen). Bitten Sie den Kontoinhaber, sie "
               "erneut zu senden, oder ziehen Sie sie zurück und laden Sie erneut mit "
               "Berechtigungen ein, die Sie haben."),
    ],
)  # fmt: skip
def test_an_invitation_granting_more_than_the_member_holds(language: str, text: str) -> None:
    panel = Panel()
    panel.join("anna", "users.manage", "billing.view")
    panel.invite(USERS["bea"], "billing.view", "billing.pay")
    (inv,) = panel.team.pending_invitations(panel.account)
    status, body = resend(panel, "anna", inv.id, language)
    assert status == 403
    assert errors(body) == [text]
    assert text in row_of(body, USERS["bea"])
    assert panel.team.get_invitation(inv.id).sent_count == 1


def test_all_permissions_named_as_such() -> None:
    panel = Panel()
    panel.join("anna", "users.manage")
    panel.invite(USERS["bea"])
    (inv,) = panel.team.pending_invitations(panel.account)
    status, body = resend(panel, "anna", inv.id, "en")
    assert status == 403
    assert "permissions you do not hold yourself (All permissions)." in errors(body)[0]


def test_the_api_says_what_to_do_instead() -> None:
    panel = Panel()
    user, inv_id = limited(panel)
    with pytest.raises(PermissionDenied) as caught:
        panel.team.resend_invitation(inv_id, actor_id=user)
    # Before: "...; give an end on or before ...", which a resend cannot do.
    assert str(caught.value) == (
        "user 'anna' cannot resend this invitation with no end: its own access ends on "
        "2026-04-01 09:00 UTC, and access it gives ends no later; the account owner can "
        "resend it as it is, or revoke it and send a new invitation with an end on or "
        "before 2026-04-01 09:00 UTC"
    )
    panel.team.set_access_until(panel.account, user, None, actor_id="max")
    panel.invite(USERS["eve"], "billing.pay")
    (eve,) = [i for i in panel.team.pending_invitations(panel.account) if i.email == USERS["eve"]]
    with pytest.raises(PermissionDenied) as caught:
        panel.team.resend_invitation(eve.id, actor_id=user)
    assert str(caught.value) == (
        "user 'anna' cannot resend this invitation: it does not hold billing.pay itself; a "
        "member who holds them (the account owner holds all) can resend it, or revoke it "
        "and invite again with permissions you hold"
    )
    assert re.search(r"grant only permissions you hold", str(caught.value)) is None

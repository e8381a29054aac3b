"""The customer-center story of the seeds, walked in Chromium: what the invitee and the
owner read on the way, in English and German.

The demo panel and the browser come from ``test_web_browser.py`` (skipped, or failed
with ``CI=true``, without Chromium).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser, demo, shoot

from teamaccess import PermissionSet

__all__ = ["browser", "demo"]  # the fixtures, imported for pytest


def test_the_invitation_page_shows_grants_on_single_services(demo: Demo) -> None:
    """An invitation with access to some servers only says which, before it is accepted:
    the invitee decides on what they will be given."""
    team, account = demo.team, demo.account
    mixed = team.invite(account.id, actor_id=account.owner_id, email=BOOKKEEPER,
                        permissions=PermissionSet.of("billing.view")
                        | PermissionSet.on("credentials.view", "srv-1", "srv-2"))  # fmt: skip
    only = team.invite(account.id, actor_id=account.owner_id, email="technik@muster.de",
                       permissions=PermissionSet.on("services.manage", "srv-9"))  # fmt: skip
    for language, scoped, label, none in [
        ("en", "only on srv-1, srv-2", "View access data", "No permissions"),
        ("de", "nur für srv-1, srv-2", "Serverinformationen und Zugangsdaten einsehen",
         "Keine Berechtigungen"),
    ]:  # fmt: skip
        page = demo.window(language)
        page.goto(f"{demo.base}/team/invitations/accept?token={mixed.token}")
        granted = page.locator(".ta-facts .ta-perms")
        expect(granted).to_contain_text(label)
        expect(granted).to_contain_text(scoped)
        # A long permission name pushes no chip out of the card, at a desktop's width.
        card = page.locator(".ta-card").bounding_box()
        assert card is not None
        for chip in page.locator(".ta-facts .ta-chip").all():
            box = chip.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= card["x"] + card["width"], chip.inner_text()
        shoot(page, f"accept-scoped-{language}")
        page.goto(f"{demo.base}/team/invitations/accept?token={only.token}")
        expect(page.locator(".ta-facts")).to_contain_text("srv-9")
        expect(page.locator(".ta-facts")).not_to_contain_text(none)


def described_by(page: Page, selector: str) -> str:
    """What a screen reader reads after *selector*'s label: its aria-describedby texts."""
    return str(page.locator(selector).evaluate(
        "el => (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)"
        ".map(id => document.getElementById(id).textContent.trim()).join(' | ')"
    ))  # fmt: skip


def test_a_fields_hint_is_read_with_it(demo: Demo) -> None:
    """The hint "At the start of that day (UTC)" belongs to the end date: linked, also beside an
    error."""
    owner = demo.window("de")
    demo.login(owner, OWNER)
    demo.users(owner)
    hint = "Zu Beginn dieses Tages (UTC). Leer lassen für kein Ende."
    assert described_by(owner, "#ta-until") == hint
    owner.locator("details.ta-more summary").click()
    owner.fill("#ta-email", BOOKKEEPER)
    owner.fill("#ta-until", "2001-01-01")
    owner.click("#invite button[type=submit]")
    error = owner.locator("#ta-until-error")
    expect(error).to_be_visible()
    expect(owner.locator("#ta-until")).to_be_focused()
    assert described_by(owner, "#ta-until") == f"{error.inner_text()} | {hint}"
    owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
    assert described_by(owner, "#ta-role") == "Zum Beispiel: Buchhaltung, Steuerberatung"


def test_a_mail_category_error_is_at_the_boxes(demo: Demo) -> None:
    """A category gone since the page was shown: the error is linked to the boxes, and the
    first one has the focus, as at every other field."""
    for language in ["en", "de"]:
        owner = demo.window(language)
        demo.login(owner, OWNER)
        owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
        owner.fill("#ta-name", "Bea")
        owner.fill("#ta-email", BOOKKEEPER)
        # the vendor removed a category while the form was open
        owner.locator("input[name=category]").first.evaluate("box => box.value = 'gone'")
        owner.click("main form button[type=submit]")
        error = owner.locator("#ta-categories-error")
        expect(error).to_be_visible()
        first = "input[name=category] >> nth=0"
        expect(owner.locator(first)).to_be_focused()
        assert described_by(owner, first) == error.inner_text()
        assert demo.team.contacts(demo.account.id) == []


def test_the_address_of_a_page_a_form_left_can_be_opened_again(demo: Demo) -> None:
    """After a form with an error, the address bar shows the form's action
    (``.../users/invite``): Enter there, or a bookmark of it, leads back to the page in the
    user's language, not to a bare "Method Not Allowed"; and a GET changes nothing."""
    member = demo.team.invite(demo.account.id, actor_id=demo.account.owner_id,
                              email=BOOKKEEPER, permissions=PermissionSet.all())  # fmt: skip
    a = demo.account.id
    owner = demo.window("de")
    demo.login(owner, OWNER)
    demo.users(owner)
    owner.fill("#ta-email", "not an address")
    owner.click("#invite button[type=submit]")
    expect(owner).to_have_url(f"{demo.base}/team/accounts/{a}/users/invite")
    for path, lands in [
        ("/users/invite", "/users"),
        (f"/invitations/{member.id}/resend", "/users"),
        (f"/invitations/{member.id}/revoke", "/users"),
        (f"/users/{demo.account.owner_id}/reactivate", f"/users/{demo.account.owner_id}"),
        (f"/users/{demo.account.owner_id}/access-until", f"/users/{demo.account.owner_id}"),
    ]:
        response = owner.goto(f"{demo.base}/team/accounts/{a}{path}")
        assert response is not None
        assert response.status == 200, path
        expect(owner).to_have_url(f"{demo.base}/team/accounts/{a}{lands}")
        expect(owner.locator("html")).to_have_attribute("lang", "de")
    [pending] = demo.team.pending_invitations(a)
    assert pending.id == member.id  # neither resent nor revoked


def test_a_suspended_or_ended_member_reads_no_names(demo: Demo) -> None:
    """ "A suspended or expired member can do nothing": the users and contacts pages list
    other people's addresses and phone numbers, so such a member gets a page saying why
    instead, in their language, and can still leave."""
    team, a = demo.team, demo.account
    bea = demo.join(BOOKKEEPER, "billing.view")
    bea_id = next(m.user_id for m in team.members(a.id) if m.email == BOOKKEEPER)
    team.add_contact(a.id, actor_id=a.owner_id, name="Steuerbüro Klein",
                     email="klein@steuer.example", phone="+49 30 1234567",
                     categories=["billing"])  # fmt: skip
    pages = ["/users", "/contacts", f"/users/{a.owner_id}"]
    team.suspend_member(a.id, bea_id, actor_id=a.owner_id)
    for path in pages:
        response = bea.goto(f"{demo.base}/team/accounts/{a.id}{path}")
        assert response is not None
        assert response.status == 403, path
        expect(bea.locator(".ta-error-box")).to_have_text(
            "Your access to Muster GmbH is suspended. The account owner can reactivate it."
        )
        for other in [OWNER, "klein@steuer.example", "1234567"]:
            expect(bea.locator("main")).not_to_contain_text(other)
    shoot(bea, "suspended-member-en")
    # "To my customer accounts" lists the account, not the same page again.
    bea.get_by_role("link", name="To my customer accounts").click()
    expect(bea.locator("h1")).to_have_text("My customer accounts")
    expect(bea.locator("main")).to_contain_text("Muster GmbH")
    team.reactivate_member(a.id, bea_id, actor_id=a.owner_id)
    team.set_access_until(a.id, bea_id, datetime.now(UTC) + timedelta(seconds=1),
                          actor_id=a.owner_id)  # fmt: skip
    time.sleep(1.1)
    bea.goto(f"{demo.base}/team/accounts/{a.id}/contacts?lang=de")
    expect(bea.locator(".ta-error-box")).to_contain_text("Ihr Zugriff auf Muster GmbH endete am")
    expect(bea.locator("main")).not_to_contain_text("klein@steuer.example")
    # Leaving stays open to them.
    bea.goto(f"{demo.base}/team/accounts/{a.id}/users/{bea_id}/remove")
    bea.locator("main").get_by_role("button", name="Konto verlassen").click()
    expect(bea.locator(".ta-notice")).to_contain_text("Muster GmbH")
    assert BOOKKEEPER not in [m.email for m in team.members(a.id)]


def test_an_end_date_that_has_passed_reads_in_the_past(demo: Demo) -> None:
    team, a = demo.team, demo.account
    demo.join(BOOKKEEPER, "billing.view")
    bea_id = next(m.user_id for m in team.members(a.id) if m.email == BOOKKEEPER)
    team.set_access_until(a.id, bea_id, datetime.now(UTC) + timedelta(seconds=1),
                          actor_id=a.owner_id)  # fmt: skip
    time.sleep(1.1)
    for language, badge, ended, member_page in [
        ("en", "access ended", "access ended ", "The access ended on "),
        ("de", "Zugriff beendet", "Zugriff endete ", "Der Zugriff endete am "),
    ]:
        owner = demo.window(language)
        demo.login(owner, OWNER)
        demo.users(owner)
        row = owner.locator("tr", has_text=BOOKKEEPER)
        expect(row).to_contain_text(badge)
        expect(row).to_contain_text(ended)
        expect(row).not_to_contain_text(re.compile(r"\b(ends|endet)\b"))
        owner.goto(f"{demo.base}/team/accounts/{a.id}/users/{bea_id}")
        expect(owner.locator("main")).to_contain_text(member_page)


def test_asking_before_declining_has_a_heading(demo: Demo) -> None:
    """A screen reader jumps to a page's h1: the page asking before a decline has one, as
    every other page does."""
    inv = demo.team.invite(demo.account.id, actor_id=demo.account.owner_id, email=BOOKKEEPER,
                           permissions=PermissionSet.all())  # fmt: skip
    for language, title in [("en", "Decline invitation"), ("de", "Einladung ablehnen")]:
        page = demo.window(language)
        page.goto(f"{demo.base}/team/invitations/accept?token={inv.token}")
        page.click("button[value=decline]")
        expect(page.locator("h1")).to_have_text(title)
        expect(page).to_have_title(title)


def test_the_panel_tells_a_suspended_member_why(demo: Demo) -> None:
    """The demo panel's own pages: the permission is there, the access is not, so not
    "ask the account owner to grant it"."""
    team, a = demo.team, demo.account
    bea = demo.join(BOOKKEEPER, "billing.view")
    bea_id = next(m.user_id for m in team.members(a.id) if m.email == BOOKKEEPER)
    team.suspend_member(a.id, bea_id, actor_id=a.owner_id)
    bea.goto(f"{demo.base}/panel/{a.id}/invoices?lang=de")
    expect(bea.locator("main")).to_contain_text(
        "Ihr Zugriff auf Muster GmbH ist gesperrt. Der Kontoinhaber kann ihn wieder freischalten."
    )
    expect(bea.locator("main")).not_to_contain_text("Bitten Sie den Kontoinhaber")

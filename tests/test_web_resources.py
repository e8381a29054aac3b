"""Grants on single services, given and taken on the pages, in Chromium: the vendor's
``resources`` hook lists an account's services, the invite form and a member's page
grant the catalog's scoped permissions on the whole account or only on some of them,
and a tampered form writes nothing.

The browser comes from ``test_web_browser.py`` (skipped, or failed with ``CI=true``,
without Chromium).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from playwright.sync_api import Browser, Page, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser, shoot

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, TeamAccess, ValidationError
from teamaccess.web import Pages, User
from teamaccess.web.flask import blueprint

__all__ = ["browser"]  # the fixture, imported for pytest

SERVICES = [("srv-1", "Webhosting muster.de"), ("srv-2", "Server vps-2.muster.de")]


@pytest.fixture
def demo(browser: Browser, tmp_path: Path) -> Iterator[Demo]:
    d = Demo(browser, tmp_path / "demo", resources=lambda account_id: SERVICES)
    try:
        yield d
    finally:
        d.close()


def where(page: Page, permission: str, choice: str) -> None:
    """Choose "whole account" or "only on" for *permission* with the keyboard's space."""
    page.locator(f"input[name='where:{permission}'][value='{choice}']").check()


def invite_form(page: Page, demo: Demo, address: str) -> None:
    demo.users(page)
    page.fill("#ta-email", address)
    page.check("#ta-scope-selected")


def test_an_owner_invites_with_a_grant_on_one_service(demo: Demo) -> None:
    team, account = demo.team, demo.account
    owner = demo.window()
    demo.login(owner, OWNER)
    invite_form(owner, demo, BOOKKEEPER)
    box = owner.locator("input[name=permission][value='services.manage']")
    choice = owner.locator("fieldset.ta-where", has=owner.locator("[name='where:services.manage']"))
    expect(choice).to_be_hidden()  # until the permission is ticked: CSS alone
    box.check()
    expect(choice).to_be_visible()
    expect(choice.locator("legend")).to_have_text("Where “Manage services” applies")
    srv1 = owner.locator("input[name='on:services.manage'][value='srv-1']")
    expect(srv1).to_be_hidden()  # "on the whole account" is the default
    where(owner, "services.manage", "some")
    expect(srv1).to_be_visible()
    expect(owner.locator("label", has=srv1)).to_contain_text("Webhosting muster.de")
    srv1.check()
    shoot(owner, "invite-one-service-en")
    owner.click("#invite button[type=submit]")
    expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
    # the invitation's row names the service by its display name
    expect(owner.locator(".ta-scoped").first).to_contain_text("Webhosting muster.de")
    (inv,) = team.pending_invitations(account.id)
    assert inv.permissions == PermissionSet.on("services.manage", "srv-1")

    link = demo.newest_link(owner, BOOKKEEPER)
    member = demo.window()
    member.goto(link)
    # the invitee reads which service, by its name, before accepting
    expect(member.locator(".ta-facts .ta-scoped")).to_have_text("only on Webhosting muster.de")
    demo.register(member, BOOKKEEPER)
    member.click("button[value=accept]")
    expect(member.locator(".ta-notice")).to_contain_text("Welcome to Muster GmbH")
    bea = demo.app.extensions["teamaccess.users"].by_email(BOOKKEEPER).id
    assert team.can(bea, account.id, "services.manage", resource="srv-1")
    assert not team.can(bea, account.id, "services.manage", resource="srv-2")
    assert not team.can(bea, account.id, "services.manage")


def test_an_owner_changes_a_members_service_grants(demo: Demo) -> None:
    team, account = demo.team, demo.account
    inv = team.invite(account.id, actor_id=account.owner_id, email=BOOKKEEPER,
                      permissions=PermissionSet.of("billing.view")
                      | PermissionSet.on("services.manage", "srv-1")
                      | PermissionSet.on("credentials.view", "srv-9"))  # fmt: skip
    team.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)
    owner = demo.window("de")
    demo.login(owner, OWNER)
    owner.goto(f"{demo.base}/team/accounts/{account.id}/users/bea")
    # the member's grant shows as chosen: "only on", srv-1 ticked
    some = owner.locator("input[name='where:services.manage'][value='some']")
    expect(some).to_be_checked()
    expect(owner.locator("input[name='on:services.manage'][value='srv-1']")).to_be_checked()
    expect(owner.locator("input[name='on:services.manage'][value='srv-2']")).not_to_be_checked()
    # a grant on a service the hook no longer lists is shown as kept
    expect(owner.locator(".ta-card .ta-scoped")).to_contain_text("srv-9")
    expect(owner.locator("fieldset.ta-where legend").first).to_contain_text("gilt")
    # with the keyboard: srv-1 off, srv-2 on
    owner.locator("input[name='on:services.manage'][value='srv-1']").focus()
    owner.keyboard.press("Space")
    owner.keyboard.press("Tab")
    expect(owner.locator("input[name='on:services.manage'][value='srv-2']")).to_be_focused()
    owner.keyboard.press("Space")
    shoot(owner, "member-services-de")
    owner.get_by_role("button", name="Änderungen speichern").click()
    expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
    assert team.permissions_of("bea", account.id) == (
        PermissionSet.of("billing.view")
        | PermissionSet.on("services.manage", "srv-2")
        | PermissionSet.on("credentials.view", "srv-9")
    )
    # and to the whole account
    owner.goto(f"{demo.base}/team/accounts/{account.id}/users/bea")
    where(owner, "services.manage", "account")
    owner.get_by_role("button", name="Änderungen speichern").click()
    expect(owner.locator(".ta-notice")).to_be_visible()
    assert team.permissions_of("bea", account.id) == (
        PermissionSet.of("billing.view", "services.manage")
        | PermissionSet.on("credentials.view", "srv-9")
    )
    # taken away: unticked, the grant on srv-9 stays (the form never showed it)
    owner.goto(f"{demo.base}/team/accounts/{account.id}/users/bea")
    owner.locator("input[name=permission][value='services.manage']").uncheck()
    owner.get_by_role("button", name="Änderungen speichern").click()
    expect(owner.locator(".ta-notice")).to_be_visible()
    assert team.permissions_of("bea", account.id) == (
        PermissionSet.of("billing.view") | PermissionSet.on("credentials.view", "srv-9")
    )


def test_the_service_choice_fits_a_phone(demo: Demo) -> None:
    """At 360 px, in German, with every "where" and its services open: nothing scrolls
    sideways."""
    owner = demo.window("de")
    owner.set_viewport_size({"width": 360, "height": 800})
    demo.login(owner, OWNER)
    invite_form(owner, demo, BOOKKEEPER)
    for box in owner.locator(".ta-scoped-perm > .ta-check input").all():
        box.check()
    for radio in owner.locator("input.ta-where-some").all():
        radio.check()
    expect(owner.locator(".ta-resources").first).to_be_visible()
    width = owner.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, width
    shoot(owner, "invite-services-360-de")


def test_only_on_without_a_service_is_refused(demo: Demo) -> None:
    owner = demo.window("de")
    demo.login(owner, OWNER)
    invite_form(owner, demo, BOOKKEEPER)
    owner.check("input[name=permission][value='services.manage']")
    where(owner, "services.manage", "some")
    owner.click("#invite button[type=submit]")
    error = owner.locator("#ta-permissions-error")
    expect(error).to_have_text(
        "Wählen Sie mindestens einen Dienst für „Dienste verwalten“ oder geben Sie es im "
        "ganzen Konto."
    )
    # the form comes back as it was sent
    expect(owner.locator("input[name='where:services.manage'][value='some']")).to_be_checked()
    assert demo.team.pending_invitations(demo.account.id) == []


def test_a_service_not_in_the_hooks_list_is_refused(demo: Demo) -> None:
    """A tampered form (or a service cancelled while the form was open): nothing written,
    in the customer's language, on the invite form and on a member's page."""
    team, account = demo.team, demo.account
    for language, text in [("en", "names a service this account does not have"),
                           ("de", "nennt einen Dienst, den dieses Konto nicht hat")]:  # fmt: skip
        owner = demo.window(language)
        demo.login(owner, OWNER)
        invite_form(owner, demo, BOOKKEEPER)
        owner.check("input[name=permission][value='services.manage']")
        where(owner, "services.manage", "some")
        box = owner.locator("input[name='on:services.manage'][value='srv-1']")
        box.check()
        box.evaluate("box => box.value = 'srv-other-customer'")
        owner.click("#invite button[type=submit]")
        expect(owner.locator("#ta-permissions-error")).to_contain_text(text)
        assert team.pending_invitations(account.id) == []

    inv = team.invite(account.id, actor_id=account.owner_id, email=BOOKKEEPER,
                      permissions=PermissionSet.on("services.manage", "srv-1"))  # fmt: skip
    team.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)
    owner.goto(f"{demo.base}/team/accounts/{account.id}/users/bea")
    owner.locator("input[name='on:services.manage'][value='srv-2']").evaluate(
        "box => { box.checked = true; box.value = 'srv-other-customer' }"
    )
    owner.get_by_role("button", name="Änderungen speichern").click()
    expect(owner.locator(".ta-error-box")).to_contain_text(text)
    assert team.permissions_of("bea", account.id) == PermissionSet.on("services.manage", "srv-1")


def test_an_actor_grants_only_where_it_holds_the_permission(demo: Demo) -> None:
    """A member with services.manage on srv-1 only is offered srv-1 only, and no "whole
    account"; a form changed to grant it on srv-2 is refused with nothing written."""
    team, account = demo.team, demo.account
    users = demo.app.extensions["teamaccess.users"]
    office = users.add("office@muster.de", "Olga")
    inv = team.invite(account.id, actor_id=account.owner_id, email="office@muster.de",
                      permissions=PermissionSet.of("users.manage")
                      | PermissionSet.on("services.manage", "srv-1"))  # fmt: skip
    team.accept_invitation(inv.token, user_id=office.id, email="office@muster.de")
    for language, text in [("en", "You do not have the permission for this"),
                           ("de", "Dafür fehlt Ihnen die Berechtigung")]:  # fmt: skip
        olga = demo.window(language)
        demo.login(olga, "office@muster.de")
        invite_form(olga, demo, BOOKKEEPER)
        olga.check("input[name=permission][value='services.manage']")
        expect(olga.locator("input[name='where:services.manage'][value='account']")).to_have_count(
            0
        )
        expect(olga.locator("input[name='where:services.manage'][value='some']")).to_be_checked()
        offered = olga.locator("input[name='on:services.manage']")
        expect(offered).to_have_count(1)
        expect(offered).to_have_value("srv-1")
        # the permission she lacks on srv-2, sent anyway
        offered.check()
        offered.evaluate("box => box.value = 'srv-2'")
        olga.click("#invite button[type=submit]")
        expect(olga.locator("#ta-permissions-error")).to_contain_text(text)
        assert team.pending_invitations(account.id) == []
        # and on the whole account, sent anyway
        invite_form(olga, demo, BOOKKEEPER)
        olga.check("input[name=permission][value='services.manage']")
        olga.locator("input[name='where:services.manage'][value='some']").evaluate(
            "radio => radio.value = 'account'"
        )
        olga.click("#invite button[type=submit]")
        expect(olga.locator("#ta-permissions-error")).to_contain_text(text)
        assert team.pending_invitations(account.id) == []
    invite_form(olga, demo, BOOKKEEPER)
    olga.check("input[name=permission][value='services.manage']")
    olga.check("input[name='on:services.manage'][value='srv-1']")
    olga.click("#invite button[type=submit]")
    expect(olga.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
    (sent,) = team.pending_invitations(account.id)
    assert sent.permissions == PermissionSet.on("services.manage", "srv-1")


def test_without_the_hook_the_forms_grant_account_wide_only() -> None:
    """No hook, no "where": the pages behave as before, a member's grants on single
    services are kept on save; and a hook of the wrong type is refused at once."""
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
    with pytest.raises(ValidationError, match="resources must be a callable"):
        Pages(team, resources=SERVICES)  # type: ignore[arg-type]
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
    inv = team.invite(account.id, actor_id="max", email=BOOKKEEPER,
                      permissions=PermissionSet.on("services.manage", "srv-1"))  # fmt: skip
    team.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)
    for hook, fields in [(None, False), (lambda account_id: SERVICES, True)]:
        app = flask.Flask(__name__)
        app.secret_key = "test"
        app.register_blueprint(
            blueprint(team, current_user=lambda: User("max", OWNER), resources=hook),
            url_prefix="/team",
        )
        client = app.test_client()
        users = client.get(f"/team/accounts/{account.id}/users").get_data(as_text=True)
        member = client.get(f"/team/accounts/{account.id}/users/bea").get_data(as_text=True)
        assert ('name="where:services.manage"' in users) is fields
        assert ('name="on:services.manage"' in member) is fields
    app = flask.Flask(__name__)
    app.secret_key = "test"
    app.register_blueprint(blueprint(team, current_user=lambda: User("max", OWNER)))
    client = app.test_client()
    client.get(f"/accounts/{account.id}/users/bea")
    with client.session_transaction() as session:
        token = session["teamaccess.csrf"]
    saved = client.post(
        f"/accounts/{account.id}/users/bea",
        data={"csrf_token": token, "scope": "selected", "permission": "billing.view",
              "where:services.manage": "some", "on:services.manage": "srv-2"},
    )  # fmt: skip
    assert saved.status_code == 303
    assert team.permissions_of("bea", account.id) == (
        PermissionSet.of("billing.view") | PermissionSet.on("services.manage", "srv-1")
    )

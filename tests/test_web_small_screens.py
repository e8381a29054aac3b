"""Every page on a 360 px phone, in English and German, with the long addresses and
names real accounts have: nothing scrolls sideways, and each page's main actions are
visible and within the screen's width. Chromium through Playwright, on the demo panel."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.test_web_browser import OWNER, Demo, browser, demo, shoot

from teamaccess import PermissionSet

__all__ = ["browser", "demo"]  # the fixtures, imported for pytest

#: an address with no place to break but its dots and dashes, longer than a phone is wide
LONG = "entwicklung.extern.langer.name@agentur-fuer-webentwicklung.example"
WIDTH = 360


def fits(page: Page, where: str) -> None:
    """Nothing wider than the screen; every visible button within its width."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, (where, scroll, client)
    buttons = page.locator("main button, main a.ta-button")
    for i in range(buttons.count()):
        button = buttons.nth(i)
        if button.is_visible():
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0, (where, i, box)
            assert box["x"] + box["width"] <= client, (where, i, box)


def test_every_page_at_360_px(demo: Demo) -> None:
    team, a = demo.team, demo.account.id
    users = demo.app.extensions["teamaccess.users"]
    owner = demo.account.owner_id
    bea = users.add("buchhaltung@muster.de", "Bea")
    token = team.invite(a, actor_id=owner, email=bea.email, permissions=PermissionSet.of(
        "billing.view", "contacts.manage")).token  # fmt: skip
    assert token is not None
    team.accept_invitation(token, user_id=bea.id, email=bea.email)
    contact = team.add_contact(
        a, actor_id=owner, name="Steuerbüro Klein & Partner Steuerberatungsgesellschaft mbB",
        email="kanzlei.klein.partner@steuerberatung-beispiel.example", categories=["billing"],
    )  # fmt: skip
    link = team.invite(a, actor_id=owner, email=LONG, permissions=PermissionSet.of(
        "services.view", "credentials.view")).token  # fmt: skip
    dev = users.add(LONG, "Dev")
    accept = f"/team/invitations/accept?token={link}"
    t = f"/team/accounts/{a}"
    # each page, and the main actions it must show (by role and name in English)
    pages: dict[str | None, list[tuple[str, list[tuple[str, str]]]]] = {
        OWNER: [
            (f"{t}/users", [("button", "Send invitation"), ("button", f"Resend: {LONG}"),
                            ("button", f"Revoke: {LONG}"), ("link", f"Remove: {bea.email}")]),
            (f"{t}/contacts", [("button", "Save changes"), ("link", f"Edit: {contact.name}")]),
            (f"{t}/contacts/{contact.id}", [("button", "Save changes")]),
            (f"{t}/contacts/{contact.id}/remove", [("button", "Remove contact"),
                                                   ("link", "Cancel")]),
            (f"{t}/users/{bea.id}", [("button", "Save changes"), ("link", "Suspend")]),
            (f"{t}/users/{bea.id}/remove", [("button", "Remove user"), ("link", "Cancel")]),
            (f"{t}/users/{bea.id}/suspend", [("button", "Suspend user"), ("link", "Cancel")]),
            (f"{t}/activity", [("link", "Users")]),
            ("/mails", []),
        ],
        None: [
            (accept, [("link", "Log in"), ("link", "Register")]),
            ("/login", [("button", "Log in")]),
            ("/register", [("button", "Register")]),
        ],
        LONG: [(accept, [("button", "Accept invitation"), ("button", "Decline invitation")])],
        bea.email: [(f"{t}/users", []), (f"{t}/contacts", [("button", "Save changes")])],
    }  # fmt: skip
    assert dev.email == LONG
    for language in ("en", "de"):
        for who, walk in pages.items():
            page = demo.window(language)
            page.set_viewport_size({"width": WIDTH, "height": 740})
            if who:
                demo.login(page, who)
            for path, actions in walk:
                page.goto(demo.base + path)
                fits(page, f"{language} {who} {path}")
                if language == "en":
                    for role, name in actions:
                        found = page.get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
                        expect(found.first).to_be_visible()
            if who == OWNER:
                demo.users(page)
                shoot(page, f"users-360-{language}")


def test_a_personal_note_keeps_its_distance_from_the_buttons(demo: Demo) -> None:
    """The inviter's note on the accept page ends a line's height above "Accept
    invitation", on a desktop and on a phone (it touched the button)."""
    team, a = demo.team, demo.account.id
    dev = demo.app.extensions["teamaccess.users"].add("dev@agentur.example", "Dev")
    token = team.invite(a, actor_id=demo.account.owner_id, email=dev.email,
                        permissions=PermissionSet.of("services.view"),
                        note="Hallo Dev,\nbitte die Server prüfen.").token  # fmt: skip
    for width in (1200, WIDTH):
        page = demo.window()
        page.set_viewport_size({"width": width, "height": 740})
        demo.login(page, dev.email)
        page.goto(f"{demo.base}/team/invitations/accept?token={token}")
        note = page.locator("blockquote.ta-note").bounding_box()
        button = page.get_by_role("button", name="Accept invitation").bounding_box()
        assert note is not None
        assert button is not None
        assert button["y"] - (note["y"] + note["height"]) >= 12, (width, note, button)
        page.context.close()


def test_the_users_page_between_tablet_and_desktop(demo: Demo) -> None:
    """Above 1000 px the tables are tables again: a long address in a row of dates and
    buttons must break rather than push the page sideways."""
    team, a = demo.team, demo.account.id
    users = demo.app.extensions["teamaccess.users"]
    owner = demo.account.owner_id
    dev = users.add(LONG, "Dev")
    token = team.invite(a, actor_id=owner, email=LONG, permissions=PermissionSet.of(
        "billing.view", "services.view", "credentials.view")).token  # fmt: skip
    assert token is not None
    team.accept_invitation(token, user_id=dev.id, email=LONG)
    other = "x" + LONG
    team.invite(a, actor_id=owner, email=other, permissions=PermissionSet.of(
        "billing.view", "services.view", "credentials.view"))  # fmt: skip
    for language in ("en", "de"):
        page = demo.window(language)
        demo.login(page, OWNER)
        for width in (1001, 1100, 1250):
            page.set_viewport_size({"width": width, "height": 900})
            demo.users(page)
            fits(page, f"{language} {width}")

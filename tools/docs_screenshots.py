"""Take the screenshots docs/web.md shows (docs/img/web-*.png) from the demo panel.

    python tools/docs_screenshots.py [FOLDER]

It serves ``teamaccess.web.demo`` on a free loopback port with its data in a temporary
folder, drives Chromium (Playwright for Python; ``TEAMACCESS_CHROMIUM`` names the binary,
/usr/bin/chromium by default) in a 1200 x 900 window, and writes the pictures into FOLDER
(docs/img by default). Needs the ``test`` extra and Chromium; the test suite does not use it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from teamaccess import PermissionSet, TeamAccess
from teamaccess.web.demo import serve

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("TEAMACCESS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
OWNER = "chef@muster.de"
BOOKKEEPER = "buchhaltung@muster.de"
AGENCY = "agentur@webdesign.example"


class Panel:
    """The demo on a free port, with the owner, a bookkeeper, an agency whose access ends
    and an open invitation."""

    def __init__(self, browser: Browser, folder: Path) -> None:
        self.browser = browser
        self.server, app, self.base = serve(folder, port=0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.team: TeamAccess = app.extensions["teamaccess"]
        users = app.extensions["teamaccess.users"]
        owner = users.by_email(OWNER)
        self.account = self.team.accounts_for(owner.id)[0].id
        #: the agency's access ends at the start of a day, four weeks on
        self.until = (datetime.now(UTC) + timedelta(days=28)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        self.ids = {}
        for address, name, permissions, until in [
            (BOOKKEEPER, "Bea Buchhaltung", PermissionSet.of("billing.view", "billing.pay"),
             None),
            (AGENCY, "Agentur Webdesign", PermissionSet.of("users.manage", "services.view",
                                                           "support.tickets"), self.until),
        ]:  # fmt: skip
            user = users.add(address, name)
            token = self.team.invite(self.account, actor_id=owner.id, email=address,
                                     permissions=permissions, access_until=until).token  # fmt: skip
            assert token is not None
            self.team.accept_invitation(token, user_id=user.id, email=address)
            self.ids[address] = user.id
        self.invitation = self.team.invite(
            self.account, actor_id=owner.id, email="technik@muster.de",
            permissions=PermissionSet.of("services.view", "support.tickets"),
            note="Hallo Tom,\nbitte schau dir die Server an.",
        )  # fmt: skip
        self.team.add_contact(
            self.account, actor_id=owner.id, name="Steuerbüro Klein",
            email="kanzlei@steuerbuero-klein.example", company="Steuerbüro Klein & Partner",
            role="Steuerberatung", categories=["billing"],
        )  # fmt: skip

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.team.close()

    def window(self, language: str, who: str | None = None) -> Page:
        context = self.browser.new_context(
            locale="de-DE" if language == "de" else "en-US",
            extra_http_headers={"Accept-Language": language},
            viewport={"width": 1200, "height": 900},
        )
        page = context.new_page()
        if who is not None:
            page.goto(f"{self.base}/login")
            page.fill("#ta-email", who)
            page.click("button[type=submit]")
            expect(page).not_to_have_url(f"{self.base}/login")
        return page

    def path(self, rest: str) -> str:
        return f"{self.base}/team/accounts/{self.account}{rest}"


def users_en(panel: Panel) -> Page:
    """The users page in English, with an open invitation."""
    page = panel.window("en", OWNER)
    page.goto(panel.path("/users"))
    return page


def invite_error_de(panel: Panel) -> Page:
    """The invite form in German with a bad address: the error at the field, the input
    kept."""
    page = panel.window("de", OWNER)
    page.goto(panel.path("/users"))
    page.fill("#ta-email", "buchhaltung(at)muster.de")
    page.check("#ta-scope-selected")
    page.check("input[name=permission][value='billing.view']")
    page.click("#invite button[type=submit]")
    expect(page.locator("#ta-email-error")).to_be_visible()
    return page


def accept_en(panel: Panel) -> Page:
    """The page the invitation link opens, before logging in."""
    page = panel.window("en")
    page.goto(f"{panel.base}/team/invitations/accept?token={panel.invitation.token}")
    expect(page.locator(".ta-lead")).to_be_visible()
    return page


def contacts_de(panel: Panel) -> Page:
    """The contacts page in German."""
    page = panel.window("de", OWNER)
    page.goto(panel.path("/contacts"))
    return page


def member_en(panel: Panel) -> Page:
    """A member's page: permissions, suspend, end date."""
    page = panel.window("en", OWNER)
    page.goto(panel.path(f"/users/{panel.ids[BOOKKEEPER]}"))
    return page


def invite_preset_de(panel: Panel) -> Page:
    """The invite form in German with a preset and a personal note."""
    page = panel.window("de", OWNER)
    page.goto(panel.path("/users"))
    page.fill("#ta-email", "bea.neu@muster.de")
    page.get_by_role("radio", name="Buchhaltung").check()
    page.locator("details.ta-more summary").click()
    page.fill("#ta-note", "Hallo Bea, bitte die Rechnungen prüfen.")
    page.locator("#ta-email").focus()
    return page


def invite_limited_de(panel: Panel) -> Page:
    """The invite form in German for a member whose own access ends: the date field says
    until when it can give access."""
    page = panel.window("de", AGENCY)
    page.goto(panel.path("/users"))
    page.fill("#ta-email", "freelancer@webdesign.example")
    expect(page.locator("#ta-until-hint")).to_be_visible()
    page.locator("#ta-until").focus()
    return page


SHOTS: dict[str, Callable[[Panel], Page]] = {
    "web-users-en": users_en,
    "web-invite-error-de": invite_error_de,
    "web-accept-en": accept_en,
    "web-contacts-de": contacts_de,
    "web-member-en": member_en,
    "web-invite-preset-de": invite_preset_de,
    "web-invite-limited-de": invite_limited_de,
}


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="teamaccess-shots-") as folder,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        panel = Panel(browser, Path(folder) / "demo")
        try:
            for name, take in SHOTS.items():
                page = take(panel)
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                page.context.close()
                print(out / f"{name}.png")
        finally:
            panel.close()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

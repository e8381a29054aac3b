"""The six stories of the customer-center pages, in a real browser.

Playwright for Python drives Debian's Chromium (/usr/bin/chromium, headless) against the
demo panel (``teamaccess.web.demo``) served on a free loopback port. Each page is
screenshotted in German and English into ``web-screenshots/`` (git ignores it;
``TEAMACCESS_SCREENSHOTS`` names another folder).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

#: Debian's Chromium; TEAMACCESS_CHROMIUM names another binary (a test of the skip uses it)
CHROMIUM = Path(os.environ.get("TEAMACCESS_CHROMIUM", "/usr/bin/chromium"))
HOW = (
    "browser tests need Chromium and Playwright: apt-get install -y chromium && "
    "pip install -e '.[test]' (CI=true makes this a failure)"
)


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{_why}; {HOW}", pytrace=False)
    pytest.skip(f"{_why}; {HOW}", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402

from teamaccess import TeamAccess  # noqa: E402
from teamaccess.web import ResourcesHook  # noqa: E402
from teamaccess.web.demo import serve  # noqa: E402

ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("TEAMACCESS_SCREENSHOTS", ROOT / "web-screenshots"))
OWNER = "chef@muster.de"
BOOKKEEPER = "buchhaltung@muster.de"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Demo:
    """The demo panel on a free port, and what a test needs to drive it."""

    def __init__(
        self, browser: Browser, directory: Path, resources: ResourcesHook | None = None
    ) -> None:
        self.browser = browser
        self.server, self.app, self.base = serve(directory, port=0, resources=resources)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.team: TeamAccess = self.app.extensions["teamaccess"]
        self.account = self.team.accounts_for(
            self.app.extensions["teamaccess.users"].by_email(OWNER).id
        )[0]
        self.contexts: list[BrowserContext] = []

    def close(self) -> None:
        for context in self.contexts:
            # A test's route handler may still be fetching (a stylesheet the last page
            # asked for) as its page closes: Playwright then raises "Response has been
            # disposed" in whatever runs next, another test. Let such handlers end quietly.
            with contextlib.suppress(PlaywrightError):  # a test may have closed it
                for page in context.pages:
                    page.unroute_all(behavior="ignoreErrors")
                context.unroute_all(behavior="ignoreErrors")
            context.close()
        self.server.shutdown()
        self.server.server_close()
        self.team.close()

    def window(self, language: str = "en") -> Page:
        """A fresh browser context (an "incognito window") preferring *language*."""
        context = self.browser.new_context(
            locale="de-DE" if language == "de" else "en-US",
            extra_http_headers={"Accept-Language": language},
            viewport={"width": 1200, "height": 900},
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context.new_page()

    def login(self, page: Page, address: str) -> None:
        page.goto(f"{self.base}/login")
        page.fill("#ta-email", address)
        page.click("button[type=submit]")
        expect(page).not_to_have_url(f"{self.base}/login")

    def users(self, page: Page) -> None:
        page.goto(f"{self.base}/team/accounts/{self.account.id}/users")

    def newest_link(self, page: Page, to: str) -> str:
        page.goto(f"{self.base}/mails")
        mail = page.locator("article.ta-mail", has=page.locator(".ta-mail-to", has_text=to))
        link = mail.first.locator("a.ta-mail-link").first.get_attribute("href")
        assert link is not None
        assert link.startswith(f"{self.base}/team/invitations/accept?token=")
        return link

    def invite(self, page: Page, address: str, *permissions: str) -> None:
        self.users(page)
        page.fill("#ta-email", address)
        if permissions:
            page.check("#ta-scope-selected")
            for name in permissions:
                page.check(f"input[name=permission][value='{name}']")
        page.click("#invite button[type=submit]")
        expect(page.locator(".ta-notice")).to_contain_text(address)

    def register(
        self,
        page: Page,
        address: str = BOOKKEEPER,
        name: str = "Bea",
        *,
        on_form: Callable[[Page], None] | None = None,
    ) -> None:
        """From the invitation page *page* shows: "Register", the demo's registration
        form filled in, and back on the invitation, logged in as *address*. *on_form*
        is called on the empty form (a screenshot, a look at its URL)."""
        page.get_by_role("link", name="Register", exact=True).click()
        if on_form is not None:
            on_form(page)
        page.fill("#ta-name", name)
        page.fill("#ta-email", address)
        page.click("button[type=submit]")
        expect(page.locator("button[value=accept]")).to_be_visible()

    def join(self, address: str, *permissions: str, name: str = "Bea Buchhaltung") -> Page:
        """Invite *address* from the owner's window and accept it in a new one."""
        owner = self.window()
        self.login(owner, OWNER)
        self.invite(owner, address, *permissions)
        link = self.newest_link(owner, address)
        page = self.window()
        page.goto(link)
        self.register(page, address, name)
        page.click("button[value=accept]")
        expect(page.locator(".ta-notice")).to_contain_text("Welcome to Muster GmbH")
        return page


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def both_languages(page: Page, name: str) -> None:
    """Screenshot the page as it is, then in the other language, then switch back."""
    lang = page.locator("html").get_attribute("lang")
    shoot(page, f"{name}-{lang}")
    switch = page.locator("a.ta-lang")
    if switch.count():
        other = "de" if lang == "en" else "en"
        switch.click()
        expect(page.locator("html")).to_have_attribute("lang", other)
        shoot(page, f"{name}-{other}")
        page.locator("a.ta-lang").click()
        expect(page.locator("html")).to_have_attribute("lang", lang or "en")


@pytest.fixture
def demo(browser: Browser, tmp_path: Path) -> Iterator[Demo]:
    d = Demo(browser, tmp_path / "demo")
    try:
        yield d
    finally:
        d.close()


def test_1_bookkeeper_invited_registers_and_sees_billing_only(demo: Demo) -> None:
    owner = demo.window()
    demo.login(owner, OWNER)
    demo.users(owner)
    both_languages(owner, "users")
    owner.check("#ta-scope-selected")
    expect(owner.locator(".ta-groups")).to_be_visible()  # revealed by CSS alone
    owner.fill("#ta-email", BOOKKEEPER)
    owner.check("input[name=permission][value='billing.view']")
    owner.check("input[name=permission][value='billing.pay']")
    shoot(owner, "invite-form-en")
    owner.click("#invite button[type=submit]")
    expect(owner.locator(".ta-notice")).to_have_text(
        f"The invitation to {BOOKKEEPER} is on its way."
    )
    shoot(owner, "users-pending-en")

    link = demo.newest_link(owner, BOOKKEEPER)
    both_languages(owner, "mails")
    bookkeeper = demo.window()  # the articles' incognito window
    bookkeeper.goto(link)
    expect(bookkeeper.locator(".ta-lead")).to_have_text(
        f"{OWNER} invites you to work in the customer account “Muster GmbH”."
    )
    expect(bookkeeper.locator(".ta-facts")).to_contain_text("View invoices")
    expect(bookkeeper.locator(".ta-facts")).to_contain_text("Pay invoices")
    both_languages(bookkeeper, "accept")
    demo.register(
        bookkeeper, BOOKKEEPER, "Bea Buchhaltung", on_form=lambda p: both_languages(p, "register")
    )  # back on the invitation, now logged in
    shoot(bookkeeper, "accept-ready-en")
    bookkeeper.click("button[value=accept]")
    expect(bookkeeper.locator(".ta-notice")).to_have_text("Welcome to Muster GmbH.")
    assert bookkeeper.url == f"{demo.base}/panel/{demo.account.id}"
    nav = bookkeeper.locator(".ta-panel-nav")
    expect(nav.get_by_role("link", name="Invoices")).to_be_visible()
    expect(nav.get_by_role("link", name="Access data")).to_have_count(0)
    shoot(bookkeeper, "dashboard-en")
    bookkeeper.locator(".ta-panel-nav").get_by_role("link", name="Invoices").click()
    expect(bookkeeper.locator("h2")).to_have_text("Invoices")
    response = bookkeeper.goto(f"{demo.base}/panel/{demo.account.id}/access-data")
    assert response is not None
    assert response.status == 403
    expect(bookkeeper.locator(".ta-error-box")).to_contain_text("View access data")


def test_2_a_permission_taken_away_is_gone_on_the_next_page(demo: Demo) -> None:
    bea = demo.join(BOOKKEEPER, "billing.view", "support.tickets")
    expect(bea.locator(".ta-panel-nav").get_by_role("link", name="Invoices")).to_be_visible()
    owner = demo.window("de")
    demo.login(owner, OWNER)
    demo.users(owner)
    row = owner.locator("tr", has_text=BOOKKEEPER)
    row.get_by_role("link", name="Bearbeiten").click()
    both_languages(owner, "member")
    owner.uncheck("input[name=permission][value='billing.view']")
    owner.click("text=Änderungen speichern")
    expect(owner.locator(".ta-notice")).to_contain_text("gespeichert")
    bea.reload()
    nav = bea.locator(".ta-panel-nav")
    expect(nav.get_by_role("link", name="Invoices")).to_have_count(0)
    expect(nav.get_by_role("link", name="Support tickets")).to_be_visible()
    response = bea.goto(f"{demo.base}/panel/{demo.account.id}/invoices")
    assert response is not None
    assert response.status == 403


def test_3_member_without_users_manage_cannot_invite(demo: Demo) -> None:
    bea = demo.join(BOOKKEEPER, "billing.view")
    demo.users(bea)
    expect(bea.locator("h2", has_text="Users")).to_be_visible()
    expect(bea.locator("#ta-email")).to_have_count(0)
    expect(bea.get_by_text("Invite a new user")).to_have_count(0)
    both_languages(bea, "users-read-only")
    # Post to the invite form anyway, with a valid CSRF token from a page of hers (the
    # one that asks before she leaves the account).
    bea.get_by_role("link", name="Leave account").click()
    token = bea.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    with bea.expect_navigation() as navigation:
        bea.evaluate(
            """([action, token]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of [["csrf_token", token], ["email", "x@y.de"],
                                             ["scope", "all"]]) {
                    const input = document.createElement("input");
                    input.type = "hidden"; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [f"/team/accounts/{demo.account.id}/users/invite", token],
        )
    response: Any = navigation.value
    assert response.status == 403
    expect(bea.locator("h1")).to_have_text("Not allowed")
    expect(bea.locator(".ta-error-box")).to_contain_text("“Manage users”")
    both_languages(bea, "forbidden")
    assert demo.team.pending_invitations(demo.account.id) == []


def test_4_bad_address_keeps_the_form_with_the_error_in_german(demo: Demo) -> None:
    owner = demo.window("de")
    demo.login(owner, OWNER)
    demo.users(owner)
    expect(owner.locator("h2").first).to_have_text("Benutzerverwaltung")
    owner.fill("#ta-email", "buchhaltung(at)muster.de")
    owner.check("#ta-scope-selected")
    owner.check("input[name=permission][value='billing.view']")
    owner.click("text=Einladung versenden")
    field = owner.locator(".ta-field", has=owner.locator("#ta-email"))
    expect(field.locator(".ta-error")).to_have_text(
        "Das ist keine gültige E-Mail-Adresse. Bitte prüfen Sie sie (zum Beispiel "
        "name@beispiel.de)."
    )
    expect(owner.locator("#ta-email")).to_have_value("buchhaltung(at)muster.de")
    expect(owner.locator("#ta-email")).to_have_attribute("aria-invalid", "true")
    expect(owner.locator("#ta-scope-selected")).to_be_checked()
    expect(owner.locator("input[value='billing.view']")).to_be_checked()
    expect(owner.locator("input[value='billing.pay']")).not_to_be_checked()
    shoot(owner, "invite-error-de")
    assert demo.team.pending_invitations(demo.account.id) == []


def test_5_contacts_add_edit_and_recipients_follow(demo: Demo) -> None:
    owner = demo.window("de")
    demo.login(owner, OWNER)
    owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
    both_languages(owner, "contacts-empty")
    owner.fill("#ta-name", "Steuerbüro Klein")
    owner.fill("#ta-email", "kanzlei@steuer.example")
    owner.fill("#ta-company", "Klein & Partner")
    owner.uncheck("input[name=category][value='general']")
    owner.check("input[name=category][value='billing']")
    owner.click("text=Änderungen speichern")
    expect(owner.locator(".ta-notice")).to_have_text(
        "Der Kontakt Steuerbüro Klein ist gespeichert."
    )
    assert demo.team.recipients(demo.account.id, "billing") == [
        OWNER, "kanzlei@steuer.example",
    ]  # fmt: skip
    assert demo.team.recipients(demo.account.id, "support") == [OWNER]
    both_languages(owner, "contacts")
    owner.locator("tr", has_text="Steuerbüro Klein").get_by_role("link", name="Bearbeiten").click()
    both_languages(owner, "contact")
    owner.uncheck("input[name=category][value='billing']")
    owner.check("input[name=category][value='support']")
    owner.click("text=Änderungen speichern")
    expect(owner.locator("tr", has_text="Steuerbüro Klein")).to_contain_text("Support")
    assert demo.team.recipients(demo.account.id, "billing") == [OWNER]
    assert demo.team.recipients(demo.account.id, "support") == [
        OWNER, "kanzlei@steuer.example",
    ]  # fmt: skip
    owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/activity")
    expect(owner.locator("tbody tr").first).to_contain_text("hat den Kontakt")
    both_languages(owner, "activity")


def test_6_resend_and_revoke_from_the_page(demo: Demo) -> None:
    owner = demo.window()
    demo.login(owner, OWNER)
    demo.invite(owner, "dev@agentur.de", "services.view")
    first = demo.newest_link(owner, "dev@agentur.de")
    demo.users(owner)
    owner.locator("tr", has_text="dev@agentur.de").get_by_role("button", name="Resend").click()
    expect(owner.locator(".ta-notice")).to_have_text(
        "The invitation to dev@agentur.de was sent again."
    )
    second = demo.newest_link(owner, "dev@agentur.de")
    assert second != first
    invitee = demo.window()
    response = invitee.goto(first)
    assert response is not None
    assert response.status == 410
    expect(invitee.locator(".ta-error-box")).to_contain_text(
        "This invitation link is no longer valid"
    )
    both_languages(invitee, "link-invalid")
    demo.users(owner)
    owner.locator("tr", has_text="dev@agentur.de").get_by_role("button", name="Revoke").click()
    expect(owner.locator(".ta-notice")).to_have_text(
        "The invitation to dev@agentur.de was revoked."
    )
    response = invitee.goto(second)
    assert response is not None
    assert response.status == 410
    expect(invitee.locator(".ta-error-box")).to_contain_text("This invitation was withdrawn.")
    assert demo.team.pending_invitations(demo.account.id) == []


def test_logged_in_under_another_address(demo: Demo) -> None:
    owner = demo.window()
    demo.login(owner, OWNER)
    demo.invite(owner, BOOKKEEPER, "billing.view")
    link = demo.newest_link(owner, BOOKKEEPER)
    owner.goto(link)  # the owner opens the link in their own window by mistake
    expect(owner.locator(".ta-warning")).to_contain_text(
        f"You are logged in as {OWNER}, but this invitation is for {BOOKKEEPER}."
    )
    expect(owner.locator("button[value=accept]")).to_have_count(0)
    both_languages(owner, "accept-mismatch")
    owner.locator(".ta-warning").get_by_role("button", name="Log out").click()
    # The demo passes logout_url with {next}: the login page brings them back to this
    # invitation (by its clean URL, no token), where the invited person can accept.
    expect(owner).to_have_url(re.compile(re.escape(f"{demo.base}/login?next=")))
    back = parse_qs(urlsplit(owner.url).query)["next"][0]
    assert back.startswith("/team/invitations/accept?invitation=")
    assert link.partition("token=")[2] not in owner.url
    owner.goto(f"{demo.base}{back}")
    demo.register(owner)  # the invited address, in the same window
    owner.click("button[value=accept]")
    expect(owner.locator(".ta-notice")).to_contain_text("Welcome to Muster GmbH")


def test_preset_note_suspend_and_end_date(demo: Demo) -> None:
    owner = demo.window("de")
    demo.login(owner, OWNER)
    demo.users(owner)
    owner.fill("#ta-email", BOOKKEEPER)
    owner.get_by_label("Buchhaltung").check()
    expect(owner.locator(".ta-groups")).to_be_hidden()  # a preset needs no boxes
    owner.locator("summary").click()
    owner.fill("#ta-note", "Hallo Bea, bitte die Rechnungen prüfen.")
    shoot(owner, "invite-preset-de")
    owner.click("text=Einladung versenden")
    expect(owner.locator(".ta-note")).to_have_text("Hallo Bea, bitte die Rechnungen prüfen.")
    link = demo.newest_link(owner, BOOKKEEPER)
    bea = demo.window()
    bea.goto(link)
    demo.register(bea)
    bea.click("button[value=accept]")
    nav = bea.locator(".ta-panel-nav")
    expect(nav.get_by_role("link", name="Invoices")).to_be_visible()

    demo.users(owner)
    owner.locator("tr", has_text=BOOKKEEPER).get_by_role("link", name="Bearbeiten").click()
    owner.get_by_role("link", name="Sperren").click()
    expect(owner.locator(".ta-lead")).to_have_text(f"{BOOKKEEPER} in Muster GmbH sperren?")
    shoot(owner, "member-suspend-confirm-de")
    owner.get_by_role("button", name="Benutzer sperren").click()
    expect(owner.locator(".ta-notice")).to_contain_text("ist gesperrt")
    shoot(owner, "member-suspended-de")
    bea.reload()
    expect(nav.get_by_role("link", name="Invoices")).to_have_count(0)
    owner.get_by_role("button", name="Wieder freischalten").click()
    bea.reload()
    expect(nav.get_by_role("link", name="Invoices")).to_be_visible()

    owner.fill("#ta-until", "2099-12-31")
    owner.get_by_role("button", name="Enddatum speichern").click()
    expect(owner.locator(".ta-notice")).to_contain_text("endet am 31.12.2099, 00:00 UTC")
    both_languages(owner, "member-access")
    demo.users(owner)
    expect(owner.locator("tr", has_text=BOOKKEEPER)).to_contain_text("Zugriff endet 31.12.2099")


def test_remove_asks_first_cancel_changes_nothing(demo: Demo) -> None:
    """Remove leads to a page that asks; Cancel leaves everything as it was; confirmed,
    the member is gone and has no access any more. The same for a contact."""
    bea = demo.join(BOOKKEEPER, "billing.view")
    owner = demo.window()
    demo.login(owner, OWNER)
    demo.users(owner)
    owner.locator("tr", has_text=BOOKKEEPER).get_by_role("link", name="Remove").click()
    expect(owner.locator(".ta-lead")).to_have_text(f"Remove {BOOKKEEPER} from Muster GmbH?")
    expect(owner.locator(".ta-effects")).to_contain_text("Open invitations they sent are revoked")
    both_languages(owner, "remove-confirm")
    owner.get_by_role("link", name="Cancel").click()
    expect(owner).to_have_url(f"{demo.base}/team/accounts/{demo.account.id}/users")
    expect(owner.locator("tr", has_text=BOOKKEEPER)).to_have_count(1)
    bea.reload()
    expect(bea.locator(".ta-panel-nav").get_by_role("link", name="Invoices")).to_be_visible()

    owner.locator("tr", has_text=BOOKKEEPER).get_by_role("link", name="Remove").click()
    owner.get_by_role("button", name="Remove user").click()
    expect(owner.locator(".ta-notice")).to_have_text(f"{BOOKKEEPER} was removed.")
    expect(owner.locator("tr", has_text=BOOKKEEPER)).to_have_count(0)
    assert [m.email for m in demo.team.members(demo.account.id)] == [OWNER]
    bea.reload()
    expect(bea.locator(".ta-panel-nav").get_by_role("link", name="Invoices")).to_have_count(0)

    demo.team.add_contact(demo.account.id, actor_id=demo.account.owner_id,
                          name="Steuerbüro Klein", email="kanzlei@steuer.example",
                          categories=["billing"])  # fmt: skip
    owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
    owner.locator("tr", has_text="Steuerbüro Klein").get_by_role("link", name="Remove").click()
    expect(owner.locator(".ta-lead")).to_contain_text("Remove the contact Steuerbüro Klein")
    owner.get_by_role("link", name="Cancel").click()
    expect(owner.locator("tr", has_text="Steuerbüro Klein")).to_have_count(1)
    owner.locator("tr", has_text="Steuerbüro Klein").get_by_role("link", name="Remove").click()
    owner.get_by_role("button", name="Remove contact").click()
    expect(owner.locator(".ta-notice")).to_have_text("The contact Steuerbüro Klein was removed.")
    assert demo.team.contacts(demo.account.id) == []


def test_leave_asks_first(demo: Demo) -> None:
    bea = demo.join(BOOKKEEPER, "billing.view")
    demo.users(bea)
    bea.get_by_role("link", name="Leave account").click()
    expect(bea.locator(".ta-lead")).to_have_text("Leave Muster GmbH?")
    bea.get_by_role("link", name="Cancel").click()
    assert BOOKKEEPER in [m.email for m in demo.team.members(demo.account.id)]
    bea.get_by_role("link", name="Leave account").click()
    bea.get_by_role("button", name="Leave account").click()
    expect(bea.locator(".ta-notice")).to_have_text("You have left Muster GmbH.")
    assert [m.email for m in demo.team.members(demo.account.id)] == [OWNER]

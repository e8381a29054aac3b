"""What a customer meets on the pages, in Chromium: the security headers at work, a double
click, the Back button after a POST, declining, keyboard-only use and a 375 px phone.

The demo panel and the browser come from ``test_web_browser.py`` (skipped, or failed
with ``CI=true``, without Chromium).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Locator, Page, Request, Route, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser, demo, shoot

from teamaccess import PermissionSet
from teamaccess.web import open_invitations

__all__ = ["browser", "demo"]  # the fixtures, imported for pytest

OTHER_SITE = "http://other-site.test"


def outbox(demo: Demo) -> int:
    return len(list((Path(demo.app.extensions["teamaccess"].mailer.directory)).glob("*.eml")))


def owner_window(demo: Demo, language: str = "en", width: int = 1200) -> Page:
    page = demo.window(language)
    page.set_viewport_size({"width": width, "height": 800})
    demo.login(page, OWNER)
    return page


def invited(demo: Demo) -> str:
    """The token of an invitation for the bookkeeper, sent by the owner."""
    inv = demo.team.invite(demo.account.id, actor_id=demo.account.owner_id, email=BOOKKEEPER,
                           permissions=PermissionSet.all())  # fmt: skip
    assert inv.token is not None
    return inv.token


def kept(demo: Demo, cookie: str) -> dict[str, str]:
    """What the cookie of opened invitation links holds."""
    return open_invitations(demo.app.secret_key or "", cookie)


def posts(page: Page) -> list[str]:
    """The URLs of the POSTs *page* sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def double_click(page: Page, button: Locator) -> None:
    """The form of *button* sent twice: once as it stands (the first click, whose answer the
    browser drops), then by the click whose answer the page shows."""
    form = button.locator("xpath=ancestor::form")
    # getAttribute: f.action would be the button named "action" on the accept page
    action = form.evaluate("f => new URL(f.getAttribute('action'), location.href).href")
    data = form.evaluate("f => new URLSearchParams(new FormData(f)).toString()")
    if button.get_attribute("name"):
        data += f"&{button.get_attribute('name')}={button.get_attribute('value')}"
    first = page.request.post(
        action, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )  # fmt: skip
    assert first.status == 303, first.text()[:500]
    button.click()


class TestHeaders:
    """The security headers, as Chromium applies them."""

    def test_every_page_sends_them(self, demo: Demo) -> None:
        owner = owner_window(demo)
        a = demo.account.id
        for path in ["/team/", f"/team/accounts/{a}/users", f"/team/accounts/{a}/contacts",
                     f"/team/accounts/{a}/activity", f"/team/accounts/{a}/users/nobody",
                     "/team/invitations/accept?token=forged"]:  # fmt: skip
            response = owner.goto(demo.base + path)
            assert response is not None
            headers = response.all_headers()
            assert headers["cache-control"] == "no-store", path
            assert headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert "script-src 'none'" in headers["content-security-policy"], path
            expected = "strict-origin" if "accept" in path else "same-origin"
            assert headers["referrer-policy"] == expected, path

    def test_an_injected_script_does_not_run(self, demo: Demo) -> None:
        """Were a tag ever to slip through the escaping, the policy stops it: the page is
        the server's, headers and all, with a script added to its body."""
        owner = owner_window(demo)
        users = f"{demo.base}/team/accounts/{demo.account.id}/users"

        def inject(route: Route) -> None:
            response = route.fetch()
            body = response.text().replace(
                "</main>", "<script>document.title = 'injected'</script></main>"
            )
            route.fulfill(response=response, body=body)

        owner.route(users, inject)
        blocked: list[str] = []
        owner.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text
                 else None)  # fmt: skip
        owner.goto(users)
        expect(owner.locator("h2").first).to_have_text("Users")
        assert owner.title() != "injected"
        assert blocked, "Chromium reported no blocked script"

    def test_no_site_can_frame_a_page(self, demo: Demo) -> None:
        owner = owner_window(demo)
        token = invited(demo)
        framed = [f"{demo.base}/team/accounts/{demo.account.id}/users",
                  f"{demo.base}/team/invitations/accept?token={token}"]  # fmt: skip
        frames = "".join(f'<iframe src="{url}"></iframe>' for url in framed)
        owner.route(f"{OTHER_SITE}/**", lambda route: route.fulfill(
            content_type="text/html", body=f"<h1>other site</h1>{frames}"))  # fmt: skip
        owner.goto(f"{OTHER_SITE}/frame")
        owner.wait_for_timeout(500)
        for frame in owner.frames[1:]:
            assert frame.locator("form").count() == 0
            assert "Accept invitation" not in frame.content()
            assert "Invite a new user" not in frame.content()
        assert len(owner.frames) == 3

    def test_the_token_never_reaches_another_site_or_the_stylesheet(self, demo: Demo) -> None:
        token = invited(demo)
        link = f"{demo.base}/team/invitations/accept?token={token}"
        invitee = demo.window()
        referers: dict[str, str] = {}

        def seen(request: Request) -> None:
            referers[request.url] = request.headers.get("referer", "")

        invitee.on("request", seen)

        def add_a_link(route: Route) -> None:
            # a panel's layout with a link to its help site
            response = route.fetch()
            body = response.text().replace(
                "</main>", f'<a id="help" href="{OTHER_SITE}/help">Help</a></main>'
            )
            route.fulfill(response=response, body=body)

        invitee.goto(link)  # on to the page without the token in its URL
        # (a route sees no request that follows a redirect: the page is loaded again)
        clean = invitee.url
        invitee.route(clean, add_a_link)
        invitee.route(f"{OTHER_SITE}/**", lambda route: route.fulfill(body="help"))
        invitee.goto(clean)
        invitee.locator("main").get_by_role("link", name="Log in").click()
        expect(invitee.locator("#ta-email")).to_be_visible()
        invitee.goto(clean)
        invitee.click("#help")
        expect(invitee).to_have_url(f"{OTHER_SITE}/help")
        css = [url for url in referers if url.endswith("teamaccess.css")]
        assert css
        assert referers[css[0]] == f"{demo.base}/"
        assert referers[f"{OTHER_SITE}/help"] == f"{demo.base}/"
        login = [url for url in referers if url.startswith(f"{demo.base}/login")]
        assert login
        assert referers[login[0]] == f"{demo.base}/"
        assert not [r for r in referers.values() if token in r]

    def test_the_token_leaves_the_url_after_the_first_request(self, demo: Demo) -> None:
        """Logged out, the mailed link: the login page's URL, and every request after the
        first, hold no token; two links opened in one browser keep their own pages; once
        accepted, the browser keeps no token."""
        token = invited(demo)
        other = demo.team.invite(
            demo.account.id,
            actor_id=demo.account.owner_id,
            email="dev@agentur.de",
            permissions=PermissionSet.all(),
        ).token
        assert other is not None
        link = f"{demo.base}/team/invitations/accept?token={token}"
        other_link = f"{demo.base}/team/invitations/accept?token={other}"
        bea = demo.window()
        seen: list[Request] = []
        bea.context.on("request", lambda r: seen.append(r))
        bea.goto(link)
        clean = bea.url
        assert clean.startswith(f"{demo.base}/team/invitations/accept?invitation=")
        expect(bea.locator(".ta-facts")).to_contain_text(BOOKKEEPER)
        # the second invitation, opened in another tab of the same browser
        tab = bea.context.new_page()
        tab.goto(other_link)
        expect(tab.locator(".ta-facts")).to_contain_text("dev@agentur.de")
        bea.locator("main").get_by_role("link", name="Log in").click()
        expect(bea.locator("#ta-email")).to_be_visible()
        assert bea.url.startswith(f"{demo.base}/login?next=")
        assert token not in bea.url
        bea.go_back()  # no login yet: she registers

        def no_token(form: Page) -> None:
            assert token not in form.url

        demo.register(bea, on_form=no_token)
        expect(bea).to_have_url(clean)  # back on her own invitation, not the other tab's
        expect(bea.locator(".ta-facts")).to_contain_text(BOOKKEEPER)
        [cookie] = [c for c in bea.context.cookies() if c["name"] == "teamaccess_invitations"]
        assert cookie["path"] == "/team/invitations/accept"
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Lax"
        assert cookie["expires"] > 0  # not kept for the browser's life: an hour
        assert set(kept(demo, cookie["value"]).values()) == {token, other}
        bea.click("button[value=accept]")
        expect(bea.locator(".ta-notice")).to_have_text("Welcome to Muster GmbH.")
        assert [r.url for r in seen if token in r.url] == [link]
        assert [r.url for r in seen if other in r.url] == [other_link]
        carried = []
        for request in seen[1:]:
            headers = request.all_headers()
            for name, value in headers.items():
                assert token not in value, (request.url, name)
            # the cookie (where the token is, signed) goes to the accept page alone
            if "teamaccess_invitations=" in headers.get("cookie", ""):
                carried.append(request.url)
        assert carried
        assert all(url.startswith(f"{demo.base}/team/invitations/accept") for url in carried)
        # The token left with the answer, and no account id took its place; the other
        # tab's link is still kept.
        [cookie] = [c for c in bea.context.cookies() if c["name"] == "teamaccess_invitations"]
        assert set(kept(demo, cookie["value"]).values()) == {other}
        tab.reload()
        expect(tab.locator(".ta-facts")).to_contain_text("dev@agentur.de")

    def test_the_cookie_keeps_the_least_for_the_least_time(self, demo: Demo) -> None:
        """As Chromium stores it: the link's cookie holds the token under the slot, lives
        no longer than the invitation (here, access ending in ten minutes), and is gone
        once accepted: no account id stays behind. Back still leads into the account."""
        ends = datetime.now(UTC) + timedelta(minutes=10)
        inv = demo.team.invite(demo.account.id, actor_id=demo.account.owner_id,
                               email=BOOKKEEPER, permissions=PermissionSet.of("billing.view"),
                               access_until=ends)  # fmt: skip
        assert inv.token is not None
        bea = demo.window()
        bea.goto(f"{demo.base}/team/invitations/accept?token={inv.token}")
        clean = bea.url
        [cookie] = [c for c in bea.context.cookies() if c["name"] == "teamaccess_invitations"]
        assert cookie["path"] == "/team/invitations/accept"
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Lax"
        assert time.time() < cookie["expires"] <= ends.timestamp() + 1
        slot = clean.partition("invitation=")[2]
        assert kept(demo, cookie["value"]) == {slot: inv.token}
        assert demo.account.id not in str(kept(demo, cookie["value"]))
        demo.register(bea)
        bea.click("button[value=accept]")
        expect(bea.locator(".ta-notice")).to_have_text("Welcome to Muster GmbH.")
        assert [c for c in bea.context.cookies() if c["name"] == "teamaccess_invitations"] == []
        bea.goto(clean)  # Back to the link, as a bookmark or the history has it
        expect(bea.locator(".ta-notice")).to_have_text("You are a user of Muster GmbH.")
        assert bea.url == f"{demo.base}/panel/{demo.account.id}"
        stranger = demo.window()
        response = stranger.goto(clean)
        assert response is not None
        assert response.status == 403  # the clean URL lets nobody else in

    def test_a_form_posted_from_another_site_changes_nothing(self, demo: Demo) -> None:
        owner = owner_window(demo)
        action = f"{demo.base}/team/accounts/{demo.account.id}/users/invite"
        owner.route(f"{OTHER_SITE}/**", lambda route: route.fulfill(content_type="text/html", body=(
            f'<form method="post" action="{action}"><input name="email" value="eve@evil.test">'
            '<input name="scope" value="all"><button>Win a prize</button></form>')))  # fmt: skip
        owner.goto(f"{OTHER_SITE}/prize")
        owner.click("text=Win a prize")
        expect(owner.locator("h1")).to_have_text("This form has expired")
        assert demo.team.pending_invitations(demo.account.id) == []

    def test_back_after_logging_out_shows_no_personal_data(self, demo: Demo) -> None:
        owner = owner_window(demo)
        demo.users(owner)
        expect(owner.locator("h2").first).to_have_text("Users")
        owner.get_by_role("button", name="Log out").click()
        expect(owner).to_have_url(f"{demo.base}/login")
        owner.go_back()
        expect(owner).to_have_url(re.compile(r"/login"))
        assert OWNER not in owner.content()


class TestTwice:
    """A double click sends a form twice; the second answer is the one shown."""

    def test_invite(self, demo: Demo) -> None:
        owner = owner_window(demo)
        demo.users(owner)
        owner.fill("#ta-email", BOOKKEEPER)
        sent = posts(owner)
        double_click(owner, owner.locator("#invite button[type=submit]"))
        expect(owner.locator(".ta-notice")).to_have_text(
            f"The invitation to {BOOKKEEPER} is on its way."
        )
        assert len(sent) == 1
        expect(owner.locator(".ta-error")).to_have_count(0)
        assert len(demo.team.pending_invitations(demo.account.id)) == 1

    def test_resend_sends_one_mail_and_the_link_works(self, demo: Demo) -> None:
        owner = owner_window(demo)
        demo.invite(owner, BOOKKEEPER, "billing.view")
        before = outbox(demo)
        demo.users(owner)
        sent = posts(owner)
        resend = owner.locator("tr", has_text=BOOKKEEPER).get_by_role("button", name="Resend")
        double_click(owner, resend)
        expect(owner.locator(".ta-notice")).to_have_text(
            f"The invitation to {BOOKKEEPER} was sent again."
        )
        assert len(sent) == 1
        assert outbox(demo) == before + 1
        invitee = demo.window()
        invitee.goto(demo.newest_link(owner, BOOKKEEPER))
        expect(invitee.locator(".ta-lead")).to_contain_text("invites you")

    def test_add_contact(self, demo: Demo) -> None:
        owner = owner_window(demo)
        owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
        owner.fill("#ta-name", "Steuerbüro Klein")
        owner.fill("#ta-email", "kanzlei@steuer.example")
        sent = posts(owner)
        double_click(owner, owner.locator("#add button[type=submit]"))
        expect(owner.locator(".ta-notice")).to_have_text("The contact Steuerbüro Klein is saved.")
        assert len(sent) == 1
        assert [c.name for c in demo.team.contacts(demo.account.id)] == ["Steuerbüro Klein"]

    def test_remove_in_two_tabs(self, demo: Demo) -> None:
        """Both tabs ask; the second confirmation lands on the users page, not an error."""
        demo.join(BOOKKEEPER, "billing.view")
        owner = owner_window(demo)
        tabs = [owner, owner.context.new_page()]
        for tab in tabs:
            demo.users(tab)
            tab.get_by_role("link", name=f"Remove: {BOOKKEEPER}", exact=True).click()
            expect(tab.locator(".ta-lead")).to_contain_text(BOOKKEEPER)
        tabs[0].get_by_role("button", name="Remove user").click()
        expect(tabs[0].locator(".ta-notice")).to_have_text(f"{BOOKKEEPER} was removed.")
        tabs[1].get_by_role("button", name="Remove user").click()
        expect(tabs[1].locator(".ta-notice")).to_have_text("This user was already removed.")
        expect(tabs[1].locator("h2").first).to_have_text("Users")
        assert [m.email for m in demo.team.members(demo.account.id)] == [OWNER]

    def test_revoke_after_the_invitee_accepted(self, demo: Demo) -> None:
        """The owner's page still offers "Revoke" when the invitee accepts in her own
        browser; the click lands on the users page with a notice, not an error page."""
        owner = owner_window(demo)
        demo.invite(owner, BOOKKEEPER, "billing.view")
        link = demo.newest_link(owner, BOOKKEEPER)
        demo.users(owner)
        revoke = owner.get_by_role("button", name=f"Revoke: {BOOKKEEPER}", exact=True)
        expect(revoke).to_be_visible()
        bea = demo.window()
        bea.goto(link)
        demo.register(bea)
        bea.click("button[value=accept]")
        expect(bea.locator(".ta-notice")).to_have_text("Welcome to Muster GmbH.")
        with owner.expect_navigation() as navigation:
            revoke.click()
        expect(owner.locator(".ta-notice")).to_have_text(
            f"The invitation to {BOOKKEEPER} was already accepted."
        )
        assert navigation.value is not None
        assert navigation.value.status == 200
        expect(owner).to_have_url(f"{demo.base}/team/accounts/{demo.account.id}/users")
        expect(owner.locator(".ta-error-box")).to_have_count(0)
        expect(owner.get_by_role("link", name=f"Remove: {BOOKKEEPER}", exact=True)).to_be_visible()
        expect(owner.get_by_role("button", name=f"Revoke: {BOOKKEEPER}")).to_have_count(0)
        bea.reload()  # and she is still in
        expect(bea.locator(".ta-panel-nav").get_by_role("link", name="Invoices")).to_be_visible()

    def test_accept_and_back(self, demo: Demo) -> None:
        owner = owner_window(demo)
        demo.invite(owner, BOOKKEEPER, "billing.view")
        link = demo.newest_link(owner, BOOKKEEPER)
        bea = demo.window()
        bea.goto(link)
        demo.register(bea)
        sent = posts(bea)
        double_click(bea, bea.locator("button[value=accept]"))
        expect(bea.locator(".ta-notice")).to_contain_text("Muster GmbH")
        expect(bea.locator(".ta-error-box")).to_have_count(0)
        assert len(sent) == 1
        bea.go_back()  # to the link: she is in, so on to the account, not an error
        expect(bea.locator(".ta-notice")).to_have_text("You are a user of Muster GmbH.")
        assert bea.url == f"{demo.base}/panel/{demo.account.id}"


def test_decline_asks_first_and_the_link_says_who_declined(demo: Demo) -> None:
    token = invited(demo)
    link = f"{demo.base}/team/invitations/accept?token={token}"
    page = demo.window("de")
    page.goto(link)
    clean = page.url
    assert token not in clean
    page.get_by_role("button", name="Einladung ablehnen").click()
    expect(page.locator(".ta-lead")).to_have_text("Die Einladung zu „Muster GmbH“ ablehnen?")
    shoot(page, "decline-confirm-de")
    page.get_by_role("link", name="Abbrechen").click()
    expect(page).to_have_url(clean)
    assert len(demo.team.pending_invitations(demo.account.id)) == 1
    page.get_by_role("button", name="Einladung ablehnen").click()
    page.locator(".ta-confirm").get_by_role("button", name="Einladung ablehnen").click()
    expect(page.locator("h1")).to_have_text("Einladung abgelehnt")
    assert demo.team.pending_invitations(demo.account.id) == []
    page.goto(link)
    expect(page.locator(".ta-error-box")).to_contain_text("Sie haben diese Einladung abgelehnt")


def test_keyboard_only_invite(demo: Demo) -> None:
    """Tab to the field, type, arrow to "Select permissions", tick one with Space, Enter:
    each stop shows where the focus is."""
    owner = owner_window(demo)
    demo.users(owner)

    def focused() -> str:
        return str(owner.evaluate("document.activeElement.id || document.activeElement.name"))

    def tab_to(check: str, limit: int = 80) -> None:
        for _ in range(limit):
            owner.keyboard.press("Tab")
            assert owner.evaluate("document.activeElement.matches(':focus-visible')")
            style = owner.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert style != "none", focused()
            if owner.evaluate(check):
                return
        raise AssertionError(f"Tab never reached {check}")

    tab_to("document.activeElement.id === 'ta-email'")
    owner.keyboard.type(BOOKKEEPER)
    tab_to("document.activeElement.name === 'scope'")
    for _ in range(10):
        if focused() == "ta-scope-selected":
            break
        owner.keyboard.press("ArrowDown")
    assert focused() == "ta-scope-selected"
    tab_to("document.activeElement.value === 'billing.view'")
    owner.keyboard.press("Space")
    tab_to("document.activeElement.type === 'submit'")
    owner.keyboard.press("Enter")
    expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
    [invitation] = demo.team.pending_invitations(demo.account.id)
    assert invitation.permissions == PermissionSet.of("billing.view")


def test_an_error_takes_the_focus(demo: Demo) -> None:
    """The invite form is at the page's end: after a bad input the page opens there, with
    the focus on what to fix."""
    owner = owner_window(demo, "de")
    demo.users(owner)
    owner.fill("#ta-email", "buchhaltung(at)muster.de")
    owner.click("text=Einladung versenden")
    expect(owner.locator("#ta-email")).to_be_focused()
    owner.fill("#ta-email", BOOKKEEPER)
    owner.check("#ta-scope-selected")
    owner.click("text=Einladung versenden")
    expect(owner.locator("#ta-scope-selected")).to_be_focused()
    expect(owner.locator("#ta-permissions-error")).to_be_in_viewport()
    owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/contacts")
    owner.fill("#ta-name", "Steuerbüro Klein")
    owner.click("#add button[type=submit]")
    expect(owner.locator("#ta-email")).to_be_focused()
    assert owner.locator("#ta-name").get_attribute("maxlength") == "200"


def test_a_phone_375_px_wide(demo: Demo) -> None:
    """No page scrolls sideways, in English or German; a table's cells name their column."""
    bea = demo.join(BOOKKEEPER, "billing.view", "contacts.manage")
    demo.team.add_contact(demo.account.id, actor_id=demo.account.owner_id,
                          name="Steuerbüro Klein", email="kanzlei@steuer.example",
                          categories=["billing"])  # fmt: skip
    token = demo.team.invite(demo.account.id, actor_id=demo.account.owner_id,
                             email="dev@agentur.de", permissions=PermissionSet.of(
                                 "services.view", "credentials.view")).token  # fmt: skip
    a = demo.account.id
    member = next(m for m in demo.team.members(a) if m.email == BOOKKEEPER)
    paths = ["/team/", f"/team/accounts/{a}/users", f"/team/accounts/{a}/contacts",
             f"/team/accounts/{a}/activity", f"/team/accounts/{a}/users/{member.user_id}",
             f"/team/accounts/{a}/users/{member.user_id}/remove",
             f"/team/invitations/accept?token={token}"]  # fmt: skip
    for language in ("en", "de"):
        for who in (OWNER, None):
            page = demo.window(language)
            page.set_viewport_size({"width": 375, "height": 740})
            if who:
                demo.login(page, who)
            for path in paths:
                page.goto(demo.base + path)
                width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
                assert width[0] <= width[1], (language, who, path, width)
            if who:
                demo.users(page)
                row = page.locator("tr", has_text="dev@agentur.de")
                valid = "Gültig bis" if language == "de" else "Valid until"
                label = row.locator("td[data-label]").nth(2)
                assert label.get_attribute("data-label") == valid
                shoot(page, f"users-375-{language}")
    bea.set_viewport_size({"width": 375, "height": 740})
    demo.users(bea)  # a member without "Manage users": the read-only page
    width = bea.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1]


def test_skip_link_and_row_buttons_name_their_row(demo: Demo) -> None:
    """The first Tab offers a way past the panel's links; each row's buttons say whose
    row they act on (a screen reader reads "Remove", "Remove", … otherwise)."""
    demo.join(BOOKKEEPER, "billing.view")
    owner = owner_window(demo, "de")
    demo.invite(owner, "dev@agentur.de", "services.view")
    demo.users(owner)
    owner.keyboard.press("Tab")
    skip = owner.get_by_role("link", name="Zum Inhalt springen")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    owner.keyboard.press("Enter")
    owner.keyboard.press("Tab")
    expect(owner.locator(".ta-tabs a").first).to_be_focused()  # the panel's links skipped
    for name in [f"Bearbeiten: {BOOKKEEPER}", f"Entfernen: {BOOKKEEPER}"]:
        expect(owner.get_by_role("link", name=name, exact=True)).to_have_count(1)
    for name in ["Erneut senden: dev@agentur.de", "Zurückziehen: dev@agentur.de"]:
        expect(owner.get_by_role("button", name=name, exact=True)).to_have_count(1)
    owner.get_by_role("link", name=f"Entfernen: {BOOKKEEPER}", exact=True).click()
    expect(owner.locator(".ta-lead")).to_contain_text(BOOKKEEPER)

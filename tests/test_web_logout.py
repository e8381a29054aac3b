"""Logging out of the demo panel, in Chromium: only its own button does it.

A GET that logs out is one any other site can send, with a link or an ``<img>``: the
demo's ``/logout`` logs out on a POST carrying the pages' CSRF token alone.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser, demo

__all__ = ["browser", "demo"]  # the fixtures, imported for pytest

OTHER_SITE = "http://other-site.test"


def owner_window(demo: Demo, language: str = "en") -> Page:
    page = demo.window(language)
    demo.login(page, OWNER)
    return page


def still_logged_in(demo: Demo, page: Page) -> None:
    demo.users(page)
    expect(page).to_have_url(re.compile(r"/team/accounts/.+/users$"))
    expect(page.locator(".ta-hello")).to_contain_text("Max Muster")


def test_a_link_or_image_on_another_site_does_not_log_out(demo: Demo) -> None:
    owner = owner_window(demo)
    logout = f"{demo.base}/logout"
    owner.route(f"{OTHER_SITE}/**", lambda route: route.fulfill(content_type="text/html", body=(
        f'<img src="{logout}" alt=""><a href="{logout}">Win a prize</a>')))  # fmt: skip
    owner.goto(f"{OTHER_SITE}/prize")
    owner.click("text=Win a prize")
    # The link lands on a page that asks; nothing happened yet.
    expect(owner.locator("h1")).to_have_text("Log out?")
    still_logged_in(demo, owner)


def test_a_form_posted_from_another_site_does_not_log_out(demo: Demo) -> None:
    owner = owner_window(demo)
    owner.route(f"{OTHER_SITE}/**", lambda route: route.fulfill(content_type="text/html", body=(
        f'<form method="post" action="{demo.base}/logout"><input name="csrf_token" value="x">'
        '<button>Win a prize</button></form>')))  # fmt: skip
    owner.goto(f"{OTHER_SITE}/prize")
    owner.click("text=Win a prize")
    still_logged_in(demo, owner)


def test_a_post_without_the_token_does_not_log_out(demo: Demo) -> None:
    """Same site, no token (a script, an old form): refused with the pages' own words."""
    owner = owner_window(demo, "de")
    response = owner.request.post(f"{demo.base}/logout", form={"csrf_token": "guessed"})
    assert response.status == 400
    assert "Dieses Formular ist abgelaufen" in response.text()
    still_logged_in(demo, owner)


def test_the_buttons_log_out(demo: Demo) -> None:
    for language, label in [("en", "Log out"), ("de", "Abmelden")]:
        owner = owner_window(demo, language)
        demo.users(owner)
        owner.get_by_role("button", name=label).click()
        expect(owner).to_have_url(f"{demo.base}/login")
        demo.users(owner)
        expect(owner).to_have_url(re.compile(re.escape(f"{demo.base}/login?next=")))
        # The page a GET gets asks in the page's language, and its button logs out.
        again = owner_window(demo, language)
        again.goto(f"{demo.base}/logout")
        expect(again).to_have_title(f"{label}?")
        again.locator("main").get_by_role("button", name=label).click()
        expect(again).to_have_url(f"{demo.base}/login")


def test_the_accept_page_logs_out_and_comes_back(demo: Demo) -> None:
    """``logout_url`` with ``{next}``: a POST to it, the token with it, and back to the
    invitation after logging in again."""
    owner = owner_window(demo)
    demo.invite(owner, BOOKKEEPER, "billing.view")
    link = demo.newest_link(owner, BOOKKEEPER)
    owner.goto(link)
    button = owner.locator(".ta-warning").get_by_role("button", name="Log out")
    form = button.locator("xpath=ancestor::form")
    expect(form).to_have_attribute("method", "post")
    button.click()
    back = parse_qs(urlsplit(owner.url).query)["next"][0]
    assert back.startswith("/team/invitations/accept?invitation=")
    demo.users(owner)
    expect(owner).to_have_url(re.compile(r"/login\?next="))

"""The demo panel's own pages, guarded by ``Guard.require``, in Chromium: what a member
without the permission, a stranger and someone not logged in meet.

The browser comes from ``test_web_browser.py`` (skipped, or failed with ``CI=true``,
without Chromium).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.test_web_browser import BOOKKEEPER, Demo, both_languages, browser

__all__ = ["browser"]  # the fixture, imported for pytest

NEEDS = {
    "en": "This page needs the permission “View access data”. Ask the account owner to grant it.",
    "de": "Diese Seite braucht die Berechtigung „Serverinformationen und Zugangsdaten "
    "einsehen“. Bitten Sie den Kontoinhaber, sie Ihnen zu geben.",
}


@pytest.fixture
def demo(browser: Browser, tmp_path: Path) -> Iterator[Demo]:
    d = Demo(browser, tmp_path / "demo")
    try:
        yield d
    finally:
        d.close()


def register(demo: Demo, page: Page, address: str, name: str) -> None:
    page.goto(f"{demo.base}/register")
    page.fill("#ta-name", name)
    page.fill("#ta-email", address)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(f"{demo.base}/register")


def test_a_member_without_the_permission_and_a_stranger_read_the_same(demo: Demo) -> None:
    access_data = f"{demo.base}/panel/{demo.account.id}/access-data"
    bea = demo.join(BOOKKEEPER, "billing.view")
    response = bea.goto(access_data)
    assert response is not None
    assert response.status == 403
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    expect(bea.locator("h1")).to_have_text("Not allowed")
    expect(bea.locator(".ta-error-box")).to_have_text(NEEDS["en"])
    both_languages(bea, "guard-denied")
    bea.locator("a.ta-lang").click()
    expect(bea.locator(".ta-error-box")).to_have_text(NEEDS["de"])

    # Someone who is no member of Muster GmbH: the same words, and not the account's name.
    eve = demo.window()
    register(demo, eve, "eve@example.org", "Eve")
    response = eve.goto(access_data)
    assert response is not None
    assert response.status == 403
    expect(eve.locator(".ta-error-box")).to_have_text(NEEDS["en"])
    expect(eve.locator("body")).not_to_contain_text("Muster GmbH")
    # An account id that does not exist reads the same.
    eve.goto(f"{demo.base}/panel/acc_doesnotexist0000/access-data")
    expect(eve.locator(".ta-error-box")).to_have_text(NEEDS["en"])

    # The page's layout is the panel's: its "Log out" posts with the pages' CSRF token.
    eve.get_by_role("button", name="Log out").click()
    expect(eve).to_have_url(f"{demo.base}/login")


def test_not_logged_in_the_login_leads_back_to_the_page(demo: Demo) -> None:
    demo.join(BOOKKEEPER, "billing.view")
    page = demo.window("de")
    page.goto(f"{demo.base}/panel/{demo.account.id}/invoices")
    expect(page).to_have_url(f"{demo.base}/login?next=/panel/{demo.account.id}/invoices")
    page.fill("#ta-email", BOOKKEEPER)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{demo.base}/panel/{demo.account.id}/invoices")
    expect(page.locator("h2")).to_have_text("Rechnungen")

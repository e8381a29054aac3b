"""Grants on single services, attacked: a browser without CSS ``:has()`` still gets at
the services, a vendor hook listing an id the library cannot hold is said to be the
vendor's bug on every page that calls it, and a member's page whose hook changed its
list between showing the form and saving it neither drops nor keeps a grant behind the
user's back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser

__all__ = ["browser"]  # the fixture, imported for pytest

SERVICES = [("srv-1", "Webhosting muster.de"), ("srv-2", "Server vps-2.muster.de")]


@pytest.fixture
def demo(browser: Browser, tmp_path: Path) -> Iterator[Demo]:
    d = Demo(browser, tmp_path / "demo", resources=lambda account_id: SERVICES)
    try:
        yield d
    finally:
        d.close()


class TestWithoutHas:
    """A browser that does not know ``:has()`` (Firefox before 121, Safari before 15.4)."""

    def test_the_services_can_be_ticked(self, demo: Demo) -> None:
        owner = demo.window()

        def old_browser(route: Route) -> None:
            # The stylesheet as such a browser reads it: every rule with :has() dropped.
            response = route.fetch()
            css = response.text().replace(":has(", ":no-such-pseudo-class(")
            route.fulfill(response=response, body=css)

        owner.route(re.compile(r".*teamaccess\.css.*"), old_browser)
        demo.login(owner, OWNER)
        demo.users(owner)
        owner.fill("#ta-email", BOOKKEEPER)
        owner.check("#ta-scope-selected")
        owner.check("input[name=permission][value='services.manage']")
        owner.locator("input[name='where:services.manage'][value='some']").check()
        srv1 = owner.locator("input[name='on:services.manage'][value='srv-1']")
        expect(srv1).to_be_visible()
        srv1.check()
        owner.click("#invite button[type=submit]")
        expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)

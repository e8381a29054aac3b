"""The customer-center story of the seeds, walked in Chromium: what the invitee and the
owner read on the way, in English and German.

The demo panel and the browser come from ``test_web_browser.py`` (skipped, or failed
with ``CI=true``, without Chromium).
"""

from __future__ import annotations

from playwright.sync_api import expect
from tests.test_web_browser import BOOKKEEPER, Demo, browser, demo, shoot

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

"""What a keyboard or screen-reader user, and anyone on a desktop or a phone, meets on the
pages, in Chromium: where the focus lands after a failed save, what an error is tied to,
what the stylesheet draws around fields and chips.

The demo panel and the browser come from ``test_web_browser.py`` (skipped, or failed
with ``CI=true``, without Chromium).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser, demo

from teamaccess import PermissionSet

__all__ = ["browser", "demo"]  # the fixtures, imported for pytest

#: the agency's access ends in 30 days, at the start of a day (UTC)
AGENCY = "agentur@web.example"


def limited(demo: Demo) -> datetime:
    """The agency manages users until a day in 30 days; the bookkeeper, without an end,
    views invoices. Returns the agency's end."""
    team, a, owner = demo.team, demo.account.id, demo.account.owner_id
    users = demo.app.extensions["teamaccess.users"]
    until = (datetime.now(UTC) + timedelta(days=30)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    for address, name, permissions, end in [
        (AGENCY, "Agentur", PermissionSet.of("users.manage", "billing.view"), until),
        (BOOKKEEPER, "Bea", PermissionSet.of("billing.view"), None),
    ]:
        user = users.add(address, name)
        token = team.invite(a, actor_id=owner, email=address, permissions=permissions,
                            access_until=end).token  # fmt: skip
        assert token is not None
        team.accept_invitation(token, user_id=user.id, email=address)
    return until


def window(demo: Demo, who: str, language: str = "en", width: int = 1200) -> Page:
    page = demo.window(language)
    page.set_viewport_size({"width": width, "height": 800})
    demo.login(page, who)
    return page


def contrast(page: Page, selector: str, what: str) -> float:
    """The contrast ratio of *selector*'s computed colour *what* (a CSS property) against
    the white of the card, as WCAG defines it."""
    return float(page.locator(selector).evaluate(
        """(el, what) => {
          const rgb = getComputedStyle(el)[what].match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
          const lin = c => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          };
          const l = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
          return 1.05 / (l + 0.05);
        }""",
        what,
    ))  # fmt: skip


def test_a_failed_save_on_a_members_page_takes_the_focus_to_its_error(demo: Demo) -> None:
    """The member page's error stands above the form: after a refused save the focus is on
    it (the page opened at its top, with the focus nowhere, and a screen reader read
    nothing of the refusal)."""
    limited(demo)
    bea = demo.app.extensions["teamaccess.users"].by_email(BOOKKEEPER)
    for language in ("en", "de"):
        agency = window(demo, AGENCY, language)
        agency.goto(f"{demo.base}/team/accounts/{demo.account.id}/users/{bea.id}")
        # more for a member without an end, by one whose own access ends: refused
        agency.check("input[name=permission][value='users.manage']")
        agency.locator("form:has(input[name=permission]) button[type=submit]").click()
        box = agency.locator(".ta-error-box")
        expect(box).to_be_visible()
        expect(box).to_be_focused()
        expect(box).to_be_in_viewport()
        agency.context.close()
    member = demo.team.get_member(demo.account.id, bea.id)
    assert member.permissions == PermissionSet.of("billing.view")


def test_a_permissions_error_marks_its_choice_invalid(demo: Demo) -> None:
    """“Select permissions” with nothing ticked: the choice that takes the focus reads as
    invalid, with the error, as every field with an error does."""
    page = window(demo, OWNER, "de")
    demo.users(page)
    page.fill("#ta-email", BOOKKEEPER)
    page.check("#ta-scope-selected")
    page.click("#invite button[type=submit]")
    choice = page.get_by_role("radio", name="Berechtigungen auswählen")
    expect(choice).to_be_focused()
    expect(choice).to_have_attribute("aria-invalid", "true")
    expect(choice).to_have_accessible_description(
        "Wählen Sie mindestens eine Berechtigung, oder geben Sie alle Berechtigungen."
    )


def test_fields_and_the_focus_ring_stand_out_from_the_card(demo: Demo) -> None:
    """WCAG AA (1.4.11): a field's border, which shows where to type, and the ring around
    the focused field contrast 3:1 with the white card (they were 1.6:1 and 1.9:1)."""
    page = window(demo, OWNER)
    demo.users(page)
    page.locator("details.ta-more summary").click()
    page.locator("details.ta-more summary").focus()
    # by the keyboard: Tab into each field, and through the date field's parts (day,
    # month, year, the picker's button: on one of them the ring was missing)
    stops = ["#ta-note", "#ta-until", "#ta-until", "#ta-until", "#ta-until"]
    for i, selector in enumerate(stops):
        page.keyboard.press("Tab")
        field = page.locator(selector)
        expect(field).to_be_focused()
        assert contrast(page, selector, "borderTopColor") >= 3, (i, selector)
        style = field.evaluate("el => getComputedStyle(el).outlineStyle")
        assert style == "solid", (i, selector, style)
        assert contrast(page, selector, "outlineColor") >= 3, (i, selector)
    page.locator("#ta-email").focus()
    assert contrast(page, "#ta-email", "borderTopColor") >= 3
    assert contrast(page, "#ta-email", "outlineColor") >= 3


def test_a_date_or_a_note_with_an_error_is_drawn_as_one(demo: Demo) -> None:
    """A refused end date is outlined in the error's red like a refused address (it kept
    its grey border: only the text below it said so)."""
    page = window(demo, OWNER, "de")
    demo.users(page)
    page.fill("#ta-email", BOOKKEEPER)
    page.locator("details.ta-more summary").click()
    page.fill("#ta-until", "2001-01-01")
    page.click("#invite button[type=submit]")
    expect(page.locator("#ta-until")).to_have_attribute("aria-invalid", "true")
    red = page.locator("#ta-until-error").evaluate("el => getComputedStyle(el).color")
    border = page.locator("#ta-until").evaluate("el => getComputedStyle(el).borderTopColor")
    assert border == red


def test_permission_chips_stay_in_their_column(demo: Demo) -> None:
    """On a desktop, a permission with a long name stays in the "Permissions" column of
    the open invitations ("Rechnungen einsehen" ran over the date beside it), and on a
    768 px tablet the open invitations fit the screen (the buttons were off it)."""
    demo.team.invite(demo.account.id, actor_id=demo.account.owner_id, email="neu@muster.de",
                     permissions=PermissionSet.of("billing.view"),
                     note="Hallo,\nbitte annehmen.")  # fmt: skip
    demo.team.invite(demo.account.id, actor_id=demo.account.owner_id,
                     email="technik@agentur.example",
                     permissions=PermissionSet.of("credentials.view",
                                                  "services.manage"))  # fmt: skip
    for language, width in [("en", 1200), ("de", 1200), ("de", 1001), ("de", 768)]:
        page = window(demo, OWNER, language, width)
        demo.users(page)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, (language, width, scroll)
        for table in page.locator("table.ta-table").all():
            for row in table.locator("tbody tr").all():
                cell = row.locator("td").nth(1).bounding_box()
                assert cell is not None
                for chip in row.locator("td").nth(1).locator(".ta-chip, .ta-badge").all():
                    box = chip.bounding_box()
                    assert box is not None
                    assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 0.5, (
                        language,
                        width,
                        chip.inner_text(),
                        box,
                        cell,
                    )
        page.context.close()


def test_the_date_picker_offers_no_day_after_the_actors_own_end(demo: Demo) -> None:
    """A member whose own access ends gives none that ends later: the date fields of the
    invite form and of a member's page say so to the browser (``max``), whose picker then
    offers no later day; the owner's have no such limit."""
    until = limited(demo)
    bea = demo.app.extensions["teamaccess.users"].by_email(BOOKKEEPER)
    member = f"{demo.base}/team/accounts/{demo.account.id}/users/{bea.id}"
    for who, latest in [(AGENCY, until.strftime("%Y-%m-%d")), (OWNER, None)]:
        for language, label in [("en", "Access ends on"), ("de", "Zugriff endet am")]:
            page = window(demo, who, language)
            demo.users(page)
            page.locator("details.ta-more summary").click()
            for where in ["invite", "member"]:
                if where == "member":
                    page.goto(member)
                field = page.get_by_label(label, exact=True)
                assert field.get_attribute("type") == "date"
                assert field.get_attribute("max") == latest, (who, language, where)
            page.context.close()


def test_the_demo_names_its_menu_in_the_pages_language(demo: Demo) -> None:
    """The demo panel's own links are a navigation landmark named in the page's language
    (a German screen reader announced "Panel")."""
    for language, name in [("en", "Customer center"), ("de", "Kundencenter")]:
        page = window(demo, OWNER, language)
        demo.users(page)
        expect(page.locator("html")).to_have_attribute("lang", language)
        menu = page.get_by_role("navigation", name=name, exact=True)
        expect(menu.get_by_role("link")).not_to_have_count(0)
        page.context.close()

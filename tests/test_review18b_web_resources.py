"""Grants on single services, attacked: a browser without CSS ``:has()`` still gets at
the services, a vendor hook listing an id the library cannot hold is said to be the
vendor's bug on every page that calls it, and a member's page whose hook changed its
list between showing the form and saving it neither drops nor keeps a grant behind the
user's back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import flask
import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Route, expect
from tests.test_web_browser import BOOKKEEPER, OWNER, Demo, browser

from teamaccess import (
    RESOURCE_ID_MAX_LENGTH,
    Catalog,
    MemoryMailer,
    MemoryStore,
    Permission,
    PermissionSet,
    TeamAccess,
)
from teamaccess.web import ResourcesHook, User
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


def _client(team: TeamAccess, hook: ResourcesHook, user: User) -> FlaskClient:
    app = flask.Flask(__name__)
    app.secret_key = "test"
    app.register_blueprint(blueprint(team, current_user=lambda: user, resources=hook))
    return app.test_client()


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return str(session["teamaccess.csrf"])


class TestHookIdsTheLibraryRefuses:
    """A hook listing an id no grant can be on is the vendor's bug, said as such when the
    form is shown, not once a customer saved a grant on it."""

    @pytest.mark.parametrize("bad", [" srv-1", "srv-1\n", "", "x" * (RESOURCE_ID_MAX_LENGTH + 1)])
    def test_the_page_that_calls_it_says_so(self, bad: str) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        client = _client(team, lambda account_id: [(bad, "Odd")], User("max", OWNER))
        page = client.get(f"/accounts/{account.id}/users")
        assert page.status_code == 503  # the vendor's hook failed, not the request
        text = page.get_data(as_text=True)
        # the pages' answer to a hook's bug (as for one that returns no pairs), not a
        # form offering a service that no grant can be on
        assert "That did not work" in text
        assert 'name="on:services.manage"' not in text
        assert team.pending_invitations(account.id) == []


class TestTheHooksShapes:
    """A mapping of id to name is read as such; strings where pairs belong are refused,
    even two-character ones that would unpack into an id and a name."""

    def _page(self, hook: ResourcesHook) -> tuple[int, str]:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        page = _client(team, hook, User("max", OWNER)).get(f"/accounts/{account.id}/users")
        return page.status_code, page.get_data(as_text=True)

    def test_a_mapping_of_id_to_name(self) -> None:
        status, text = self._page(lambda account_id: dict(SERVICES))
        assert status == 200
        assert 'name="on:services.manage" value="srv-1"' in text
        assert "Webhosting muster.de" in text

    @pytest.mark.parametrize("listed", [["s1", "s2"], "s1", [b"s1"]])
    def test_strings_where_pairs_belong(self, listed: Any) -> None:
        status, text = self._page(lambda account_id: listed)
        assert status == 503  # the vendor's hook failed, not the request
        assert 'name="on:services.manage"' not in text


class TestTheHooksListChangesWhileTheFormIsOpen:
    """A member's page replaces the grants on the services it showed and keeps the rest:
    what the form showed, not what the hook lists by the time it is saved."""

    @pytest.fixture
    def listed(self, browser: Browser, tmp_path: Path) -> Iterator[tuple[Demo, list[Any]]]:
        services: list[tuple[str, str]] = list(SERVICES)
        d = Demo(browser, tmp_path / "demo", resources=lambda account_id: list(services))
        try:
            yield d, services
        finally:
            d.close()

    def _member(self, demo: Demo, permissions: PermissionSet) -> None:
        team, account = demo.team, demo.account
        inv = team.invite(account.id, actor_id=account.owner_id, email=BOOKKEEPER,
                          permissions=permissions)  # fmt: skip
        team.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)

    def test_a_grant_shown_as_kept_stays_when_its_service_comes_back(
        self, listed: tuple[Demo, list[Any]]
    ) -> None:
        demo, services = listed
        self._member(demo, PermissionSet.of("billing.view")
                     | PermissionSet.on("services.manage", "srv-1", "srv-9"))  # fmt: skip
        owner = demo.window()
        demo.login(owner, OWNER)
        owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/users/bea")
        expect(owner.locator(".ta-card .ta-scoped")).to_contain_text("srv-9")  # "kept"
        services.append(("srv-9", "Server vps-9.muster.de"))  # listed again meanwhile
        owner.get_by_role("button", name="Save changes").click()
        expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
        assert demo.team.permissions_of("bea", demo.account.id) == (
            PermissionSet.of("billing.view") | PermissionSet.on("services.manage", "srv-1", "srv-9")
        )

    def test_a_grant_taken_away_goes_though_its_service_left_the_list(
        self, listed: tuple[Demo, list[Any]]
    ) -> None:
        demo, services = listed
        self._member(demo, PermissionSet.of("billing.view")
                     | PermissionSet.on("services.manage", "srv-1"))  # fmt: skip
        owner = demo.window()
        demo.login(owner, OWNER)
        owner.goto(f"{demo.base}/team/accounts/{demo.account.id}/users/bea")
        owner.uncheck("input[name=permission][value='services.manage']")
        services.remove(SERVICES[0])  # srv-1 no longer listed meanwhile
        owner.get_by_role("button", name="Save changes").click()
        expect(owner.locator(".ta-notice")).to_contain_text(BOOKKEEPER)
        assert demo.team.permissions_of("bea", demo.account.id) == PermissionSet.of("billing.view")

    def test_a_changed_listed_field_grants_nothing(self) -> None:
        """The ids the form says it showed only decide which existing grants stay."""
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        inv = team.invite(account.id, actor_id="max", email=BOOKKEEPER,
                          permissions=PermissionSet.on("services.manage", "srv-1"))  # fmt: skip
        team.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)
        client = _client(team, lambda account_id: SERVICES, User("max", OWNER))
        page = f"/accounts/{account.id}/users/bea"
        assert 'name="listed" value="srv-2"' in client.get(page).get_data(as_text=True)
        for listed, left in [
            (["", "srv-9", "srv-2"], PermissionSet.of("billing.view")
             | PermissionSet.on("services.manage", "srv-1")),  # "showed" not srv-1: kept
            (["", "srv-1"], PermissionSet.of("billing.view")),  # showed srv-1: taken away
        ]:  # fmt: skip
            form = {"csrf_token": _csrf(client), "scope": "selected",
                    "permission": "billing.view", "listed": listed}  # fmt: skip
            saved = client.post(page, data=form)
            assert saved.status_code == 303
            assert team.permissions_of("bea", account.id) == left


class TestAPresetGoneSinceTheFormWasShown:
    """The invite form comes back with what was typed, the error by the permissions."""

    @pytest.mark.parametrize("hook", [None, lambda account_id: SERVICES])
    def test_the_form_comes_back(self, hook: ResourcesHook | None) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        app = flask.Flask(__name__)
        app.secret_key = "test"
        app.register_blueprint(
            blueprint(team, current_user=lambda: User("max", OWNER), resources=hook)
        )
        client = app.test_client()
        client.get(f"/accounts/{account.id}/users")
        form = {"csrf_token": _csrf(client), "email": BOOKKEEPER, "scope": "preset:gone",
                "note": "Bitte die Rechnungen ab Mai prüfen."}  # fmt: skip
        sent = client.post(f"/accounts/{account.id}/users/invite", data=form)
        assert sent.status_code == 400
        page = sent.get_data(as_text=True)
        assert 'id="ta-permissions-error"' in page
        assert "Bitte die Rechnungen ab Mai prüfen." in page
        assert team.pending_invitations(account.id) == []


class TestAGrantOnAPermissionNoLongerScoped:
    """The vendor's catalog stopped marking a permission ``scoped`` while a member holds
    it on one service: saving their page unchanged does not make it account-wide."""

    def test_saving_the_page_as_shown_widens_nothing(self) -> None:
        store = MemoryStore()
        before = TeamAccess(store, MemoryMailer(), secret_key="k")
        account = before.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        inv = before.invite(account.id, actor_id="max", email=BOOKKEEPER,
                            permissions=PermissionSet.of("billing.view")
                            | PermissionSet.on("firewall.unblock", "srv-1"))  # fmt: skip
        before.accept_invitation(inv.token, user_id="bea", email=BOOKKEEPER)
        catalog = Catalog(
            attrs.evolve(p, scoped=False) if p.name == "firewall.unblock" else p
            for p in Catalog.default()
        )
        team = TeamAccess(store, MemoryMailer(), secret_key="k", catalog=catalog)
        client = _client(team, lambda account_id: SERVICES, User("max", OWNER))
        page = f"/accounts/{account.id}/users/bea"
        shown = client.get(page).get_data(as_text=True)
        # what a browser sends for the form as shown
        ticked = re.findall(r'name="permission" value="([^"]+)" checked', shown)
        listed = re.findall(r'name="listed" value="([^"]*)"', shown)
        form = {"csrf_token": _csrf(client), "scope": "selected", "permission": ticked,
                "listed": listed}  # fmt: skip
        client.post(page, data=form)
        held = team.permissions_of("bea", account.id)
        assert "firewall.unblock" not in held
        assert held == PermissionSet.of("billing.view") | PermissionSet.on(
            "firewall.unblock", "srv-1"
        )


class TestOddPermissionNames:
    """Each "where" choice's hint is its own, whatever the vendor's permission names."""

    def test_hints_are_found_by_a_screen_reader(self) -> None:
        catalog = Catalog([
            *Catalog.default(),
            Permission("web.manage", "Manage web space", scoped=True),
            Permission("web-manage", "Manage web space (old)", scoped=True),
            Permission("dns edit", "Edit DNS", scoped=True),
        ])  # fmt: skip
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k", catalog=catalog)
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
        client = _client(team, lambda account_id: SERVICES, User("max", OWNER))
        page = client.get(f"/accounts/{account.id}/users").get_data(as_text=True)
        ids = re.findall(r'\bid="([^"]*)"', page)
        assert len(ids) == len(set(ids)), ids
        hints = []
        for fieldset in re.findall(r'<fieldset class="ta-where">.*?</fieldset>', page, re.S):
            (described,) = re.findall(r'aria-describedby="([^"]*)"', fieldset)
            # one id, of this fieldset's own hint
            assert f'id="{described}"' in fieldset, (described, fieldset)
            hints.append(described)
        assert len(hints) == 3 + len(Catalog.default().scoped_names())

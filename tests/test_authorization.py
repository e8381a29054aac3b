"""Authorization: can(), require(), permissions_of(), catalogs, and no stale answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conftest import SECRET, SHARED, add_member

from teamaccess import (
    SYSTEM,
    Account,
    Catalog,
    MemoryMailer,
    Permission,
    PermissionDenied,
    PermissionSet,
    Store,
    TeamAccess,
    UnknownPermission,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of


class TestCan:
    """can() answers from the member's permissions; a typo is an error, never "no"."""

    def test_member_holds_what_was_granted(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view", "support.tickets"))
        assert team.can("u2", account.id, "billing.view")
        assert team.can("u2", account.id, "support.tickets")
        assert not team.can("u2", account.id, "billing.pay")

    def test_owner_holds_everything(self, team: TeamAccess, account: Account) -> None:
        assert all(team.can("owner", account.id, name) for name in team.catalog.names())

    def test_stranger_and_unknown_account(self, team: TeamAccess, account: Account) -> None:
        assert not team.can("stranger", account.id, "billing.view")
        assert not team.can("owner", "no-such-account", "billing.view")

    def test_system_can_everything(self, team: TeamAccess, account: Account) -> None:
        assert team.can(SYSTEM, account.id, "contracts.sign")

    @pytest.mark.parametrize("name", ["billing.veiw", "", "BILLING.VIEW", "*"])
    def test_unknown_permission_raises(self, team: TeamAccess, account: Account, name: str) -> None:
        with pytest.raises(UnknownPermission, match=r"unknown permission"):
            team.can("owner", account.id, name)
        with pytest.raises(UnknownPermission):
            team.can("stranger", account.id, name)
        with pytest.raises(UnknownPermission):
            team.can(SYSTEM, account.id, name)

    @pytest.mark.parametrize("name", [None, 3, ["billing.view"], {"billing.view"}])
    def test_non_string_permission_raises(
        self, team: TeamAccess, account: Account, name: object
    ) -> None:
        with pytest.raises(UnknownPermission, match="unknown permission"):
            team.can("owner", account.id, name)  # type: ignore[arg-type]

    def test_unknown_permission_is_a_value_error(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValueError, match=r"use one of the catalog's names"):
            team.can("owner", account.id, "billing.veiw")


class TestRequire:
    """require() returns quietly or raises PermissionDenied naming who and what."""

    def test_allowed(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.require("u2", account.id, "billing.view")

    def test_denied(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        with pytest.raises(PermissionDenied, match=r"'u2' may not use 'billing\.pay'") as info:
            team.require("u2", account.id, "billing.pay")
        assert info.value.user_id == "u2"
        assert info.value.account_id == account.id
        assert info.value.permission == "billing.pay"

    def test_unknown_permission(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(UnknownPermission):
            team.require("owner", account.id, "billing.veiw")


class TestPermissionsOf:
    """permissions_of() is what the member holds; none() for a non-member."""

    def test_values(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        assert team.permissions_of("u2", account.id) == P("billing.view")
        assert team.permissions_of("owner", account.id) == PermissionSet.all()
        assert team.permissions_of("stranger", account.id) == PermissionSet.none()
        assert team.permissions_of(SYSTEM, account.id) == PermissionSet.all()


VENDOR = [
    Permission("dns.edit", "Edit DNS", "Domains", "Change DNS records", "DNS bearbeiten"),
    Permission("backup.restore", "Restore backups", "Backups"),
    "users.manage",
]


def vendor_team(store: Store, clock: FrozenClock, catalog: Catalog) -> TeamAccess:
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock, catalog=catalog)


class TestVendorCatalog:
    """A vendor's own Catalog decides which names exist; all() follows the catalog in force."""

    def test_default_catalog_has_the_thirteen(self) -> None:
        assert Catalog.default().names() == (
            "profile.edit",
            "users.manage",
            "contacts.manage",
            "billing.view",
            "billing.pay",
            "orders.place",
            "services.view",
            "services.manage",
            "credentials.view",
            "firewall.unblock",
            "support.tickets",
            "support.pin",
            "contracts.sign",
        )
        assert all(p.label and p.label_de for p in Catalog.default())

    def test_vendor_names_are_the_only_names(self, store: Store, clock: FrozenClock) -> None:
        team = vendor_team(store, clock, Catalog(VENDOR))
        acct = team.create_account(name="V", owner_id="owner", owner_email="o@example.org")
        add_member(team, acct.id, "u2", P("dns.edit"))
        assert team.can("u2", acct.id, "dns.edit")
        assert not team.can("u2", acct.id, "backup.restore")
        with pytest.raises(UnknownPermission, match=r"'billing\.view'"):
            team.can("u2", acct.id, "billing.view")
        with pytest.raises(UnknownPermission):
            team.invite(
                acct.id, actor_id="owner", email="x@example.org", permissions=P("billing.view")
            )

    def test_all_follows_a_catalog_that_grows(self, store: Store, clock: FrozenClock) -> None:
        team = vendor_team(store, clock, Catalog(VENDOR))
        acct = team.create_account(name="V", owner_id="owner", owner_email="o@example.org")
        add_member(team, acct.id, "admin", PermissionSet.all())
        add_member(team, acct.id, "dns", P("dns.edit"))
        # The vendor ships a new function; the same store, a new TeamAccess.
        grown = vendor_team(store, clock, Catalog([*VENDOR, Permission("mail.manage", "Mail")]))
        assert grown.can("admin", acct.id, "mail.manage")
        assert grown.can("owner", acct.id, "mail.manage")
        assert not grown.can("dns", acct.id, "mail.manage")

    def test_all_means_the_catalog_in_force(self) -> None:
        """PermissionSet.all().resolve() names the current catalog's permissions."""
        catalog = Catalog(VENDOR)
        assert PermissionSet.all().resolve(catalog) == {
            "dns.edit",
            "backup.restore",
            "users.manage",
        }


class TestNoStalePermission:
    """A change is seen at once: no cache serves a revoked permission."""

    def test_after_set_permissions(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view", "billing.pay"))
        assert team.can("u2", account.id, "billing.pay")
        team.set_permissions(account.id, "u2", P("billing.view"), actor_id="owner")
        assert not team.can("u2", account.id, "billing.pay")
        assert team.permissions_of("u2", account.id) == P("billing.view")

    def test_after_remove(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        assert team.can("u2", account.id, "billing.view")
        team.remove_member(account.id, "u2", actor_id="owner")
        assert not team.can("u2", account.id, "billing.view")
        assert team.permissions_of("u2", account.id) == PermissionSet.none()

    def test_two_instances_on_one_store(
        self,
        store_factory: Callable[[], Store],
        mailer: MemoryMailer,
        clock: FrozenClock,
        backend: str,
    ) -> None:
        first_store = store_factory()
        # SQLite, PostgreSQL: a second connection to the same data; memory: the same store.
        second_store = store_factory() if backend in SHARED else first_store
        writer = TeamAccess(first_store, mailer, secret_key=SECRET, clock=clock)
        reader = TeamAccess(second_store, mailer, secret_key=SECRET, clock=clock)
        acct = writer.create_account(name="M", owner_id="owner", owner_email="o@example.org")
        add_member(writer, acct.id, "u2", P("billing.view", "billing.pay"))
        assert reader.can("u2", acct.id, "billing.pay")
        writer.set_permissions(acct.id, "u2", P("billing.view"), actor_id="owner")
        assert not reader.can("u2", acct.id, "billing.pay")
        writer.remove_member(acct.id, "u2", actor_id="owner")
        assert not reader.can("u2", acct.id, "billing.view")
        assert reader.permissions_of("u2", acct.id) == PermissionSet.none()

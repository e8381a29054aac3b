"""A contact has at least one mail category, and one address is one contact per account,
on every backend: a contact without a category receives nothing (it never logs in), and a
second contact of one address adds its categories to the first one's, so unticking a
category on one of them does not stop that mail."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import add_member

from teamaccess import (
    SYSTEM,
    Account,
    AlreadyContact,
    InvalidImport,
    PermissionSet,
    TeamAccess,
    ValidationError,
)

NEEDS_ONE = "a contact needs at least one mail category"


def add(team: TeamAccess, account: Account, email: str, *categories: str, name: str = "C"):  # type: ignore[no-untyped-def]
    return team.add_contact(
        account.id, actor_id="owner", name=name, email=email, categories=list(categories)
    )


def imported(*contacts: dict[str, Any]) -> dict[str, Any]:
    """An import row: an account of owner o1 with *contacts*."""
    return {"name": "Kunde", "owner_id": "o1", "owner_email": "chef@kunde.example",
            "contacts": list(contacts)}  # fmt: skip


class TestAtLeastOneCategory:
    """add_contact, update_contact and an import refuse a contact without a category."""

    @pytest.mark.parametrize("empty", [[], (), set(), frozenset()])
    def test_adding(self, team: TeamAccess, account: Account, empty: Any) -> None:
        with pytest.raises(ValidationError, match=NEEDS_ONE):
            team.add_contact(account.id, actor_id="owner", name="C", email="c@example.org",
                             categories=empty)  # fmt: skip
        assert team.contacts(account.id) == []
        assert [e.action for e in team.audit_log(account.id)] == ["account.created"]

    def test_changing(self, team: TeamAccess, account: Account) -> None:
        contact = add(team, account, "c@example.org", "billing")
        with pytest.raises(ValidationError, match=r"remove it \(remove_contact\)"):
            team.update_contact(contact.id, actor_id="owner", categories=[], name="New")
        assert team.get_contact(contact.id) == contact

    def test_importing(self, team: TeamAccess) -> None:
        row = imported({"name": "A", "email": "a@kunde.example", "categories": []})
        with pytest.raises(InvalidImport, match="contact 0") as info:
            team.import_accounts([row])
        assert NEEDS_ONE in info.value.problems[0].message
        assert team.accounts_for("o1") == []


class TestOneContactPerAddress:
    """A second contact of an address the account's contacts have is AlreadyContact."""

    @pytest.mark.parametrize(
        "again", ["b@example.org", "B@EXAMPLE.ORG", " b@example.org"],
    )  # fmt: skip
    def test_adding(self, team: TeamAccess, account: Account, again: str) -> None:
        first = add(team, account, "b@example.org", "billing")
        with pytest.raises(AlreadyContact, match="change that contact's categories") as info:
            add(team, account, again, "support", name="B again")
        assert info.value.contact_id == first.id
        assert team.contacts(account.id) == [first]
        assert team.recipients(account.id, "support") == ["chef@muster.de"]

    def test_an_idn_domain_in_its_other_form(self, team: TeamAccess, account: Account) -> None:
        first = add(team, account, "info@müller.de", "billing")
        with pytest.raises(AlreadyContact) as info:
            add(team, account, "info@xn--mller-kva.de", "general")
        assert info.value.contact_id == first.id

    def test_changing_one_to_anothers_address(self, team: TeamAccess, account: Account) -> None:
        first = add(team, account, "b@example.org", "billing")
        second = add(team, account, "s@example.org", "support")
        with pytest.raises(AlreadyContact) as info:
            team.update_contact(second.id, actor_id="owner", email="B@example.org")
        assert info.value.contact_id == first.id
        assert team.get_contact(second.id) == second

    def test_a_contact_keeps_its_own_address(self, team: TeamAccess, account: Account) -> None:
        contact = add(team, account, "b@example.org", "billing")
        changed = team.update_contact(contact.id, actor_id="owner", email="B@Example.org",
                                      categories=["support"])  # fmt: skip
        assert changed.categories == frozenset({"support"})

    def test_other_accounts_and_members_are_no_clash(
        self, team: TeamAccess, account: Account
    ) -> None:
        add(team, account, "b@example.org", "billing")
        other = team.create_account(name="Other", owner_id="o2", owner_email="o2@example.org")
        team.add_contact(other.id, actor_id="o2", name="B", email="b@example.org",
                         categories=["billing"])  # fmt: skip
        # A member receives no category mail unless a contact has its address.
        add_member(team, account.id, "m", PermissionSet.of("billing.view"), email="m@example.org")
        add(team, account, "m@example.org", "billing")
        # The owner's address, too (the owner receives every category anyway).
        add(team, account, "chef@muster.de", "billing")
        assert team.recipients(account.id, "billing") == [
            "chef@muster.de", "b@example.org", "m@example.org",
        ]  # fmt: skip

    def test_a_removed_contacts_address_is_free_again(
        self, team: TeamAccess, account: Account
    ) -> None:
        first = add(team, account, "b@example.org", "billing")
        team.remove_contact(first.id, actor_id=SYSTEM)
        assert add(team, account, "b@example.org", "support").categories == {"support"}

    def test_importing_one_address_twice(self, team: TeamAccess) -> None:
        row = imported(
            {"name": "A", "email": "a@kunde.example", "categories": ["billing"]},
            {"name": "A", "email": "A@Kunde.example", "categories": ["general"]},
        )
        with pytest.raises(InvalidImport, match="contact 1") as info:
            team.import_accounts([row])
        assert "listed twice" in info.value.problems[0].message
        assert team.accounts_for("o1") == []

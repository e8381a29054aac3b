"""Accounts: creation, look-up, one user in many accounts, ownership transfer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    SYSTEM,
    Account,
    AccountNotFound,
    InvalidEmail,
    MemberNotFound,
    OwnershipRequired,
    PermissionSet,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock


class TestCreateAccount:
    """create_account() stores the account and makes its owner a member with everything."""

    def test_returns_account_with_owner(self, team: TeamAccess) -> None:
        acct = team.create_account(name="Muster GmbH", owner_id="u1", owner_email="chef@muster.de")
        assert acct.name == "Muster GmbH"
        assert acct.owner_id == "u1"
        assert acct.owner_email == "chef@muster.de"
        assert acct.created_at == START
        assert team.get_account(acct.id) == acct

    def test_owner_is_a_member_with_every_permission(self, team: TeamAccess) -> None:
        acct = team.create_account(name="Muster GmbH", owner_id="u1", owner_email="chef@muster.de")
        (owner,) = team.members(acct.id)
        assert owner.user_id == "u1"
        assert owner.role == "owner"
        assert owner.permissions == PermissionSet.all()
        assert all(team.can("u1", acct.id, p) for p in team.catalog.names())

    def test_owner_email_is_normalised(self, team: TeamAccess) -> None:
        acct = team.create_account(name="X", owner_id="u1", owner_email="  chef@MÜLLER.de ")
        assert acct.owner_email == "chef@müller.de"

    def test_ids_are_unique(self, team: TeamAccess) -> None:
        ids = {
            team.create_account(name=f"A{i}", owner_id="u1", owner_email="a@b.de").id
            for i in range(5)
        }
        assert len(ids) == 5

    @pytest.mark.parametrize("name", ["Evil\r\nBcc: x@y.de", "Nul\0", "", "   "])
    def test_bad_name_is_rejected_and_nothing_stored(self, team: TeamAccess, name: str) -> None:
        with pytest.raises(ValidationError, match=r"account name"):
            team.create_account(name=name, owner_id="u1", owner_email="chef@muster.de")
        assert team.accounts_for("u1") == []

    def test_bad_owner_email_is_rejected(self, team: TeamAccess) -> None:
        with pytest.raises(InvalidEmail, match=r"not a valid email address"):
            team.create_account(name="X", owner_id="u1", owner_email="not-an-address")
        assert team.accounts_for("u1") == []

    def test_creation_is_audited(self, team: TeamAccess) -> None:
        acct = team.create_account(name="Muster GmbH", owner_id="u1", owner_email="chef@muster.de")
        (event,) = team.audit_log(acct.id)
        assert (event.action, event.actor_id, event.target) == ("account.created", "u1", acct.id)
        assert event.at == START
        assert event.account_id == acct.id


class TestGetAccount:
    """get_account() finds an account by id or raises AccountNotFound."""

    def test_unknown_id(self, team: TeamAccess) -> None:
        with pytest.raises(AccountNotFound, match=r"no account 'nope'"):
            team.get_account("nope")

    def test_not_found_is_a_lookup_error(self, team: TeamAccess) -> None:
        with pytest.raises(LookupError):
            team.get_account("nope")


class TestAccountsFor:
    """accounts_for() lists every account a user owns or belongs to, oldest first."""

    def test_one_user_in_many_accounts(self, team: TeamAccess, clock: FrozenClock) -> None:
        own = team.create_account(name="Own", owner_id="u2", owner_email="u2@example.org")
        clock.advance(timedelta(minutes=1))
        other = team.create_account(name="Other", owner_id="u1", owner_email="u1@example.org")
        clock.advance(timedelta(minutes=1))
        third = team.create_account(name="Third", owner_id="u3", owner_email="u3@example.org")
        add_member(team, third.id, "u2", PermissionSet.of("billing.view"), actor_id="u3")
        add_member(team, other.id, "u2", PermissionSet.none(), actor_id="u1")
        assert [a.name for a in team.accounts_for("u2")] == ["Own", "Other", "Third"]
        assert team.accounts_for("u2")[0] == own
        assert team.can("u2", third.id, "billing.view")
        assert not team.can("u2", other.id, "billing.view")

    def test_same_instant_keeps_creation_order(self, team: TeamAccess) -> None:
        names = ["Zeta", "Alpha", "Mu", "Beta"]
        for name in names:
            team.create_account(name=name, owner_id="u1", owner_email="u1@example.org")
        assert [a.name for a in team.accounts_for("u1")] == names

    def test_stranger_has_none(self, team: TeamAccess, account: Account) -> None:
        assert team.accounts_for("stranger") == []

    def test_removed_member_loses_the_account(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        assert team.accounts_for("u2") == [account]
        team.remove_member(account.id, "u2", actor_id="owner")
        assert team.accounts_for("u2") == []


class TestTransferOwnership:
    """Only the owner (or SYSTEM) hands the account to a member; the old owner keeps all."""

    def test_owner_transfers_to_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.of("billing.view"), email="U2@Example.org")
        result = team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        assert result.owner_id == "u2"
        assert result.owner_email == "U2@example.org"
        assert team.get_account(account.id) == result
        members = {m.user_id: m for m in team.members(account.id)}
        assert members["u2"].role == "owner"
        assert members["u2"].permissions == PermissionSet.all()
        assert members["owner"].role == "member"
        assert members["owner"].permissions == PermissionSet.all()
        assert team.members(account.id)[0].user_id == "u2"

    def test_old_owner_keeps_every_permission(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        assert all(team.can("owner", account.id, p) for p in team.catalog.names())

    def test_new_owner_may_remove_old_owner(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        team.remove_member(account.id, "owner", actor_id="u2")
        assert [m.user_id for m in team.members(account.id)] == ["u2"]

    def test_old_owner_can_no_longer_transfer(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        add_member(team, account.id, "u3", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        with pytest.raises(OwnershipRequired, match=r"only the owner"):
            team.transfer_ownership(account.id, actor_id="owner", to_user_id="u3")

    def test_member_with_all_permissions_cannot_transfer(
        self, team: TeamAccess, account: Account
    ) -> None:
        add_member(team, account.id, "u2", PermissionSet.all())
        add_member(team, account.id, "u3", PermissionSet.none())
        before = team.audit_log(account.id)
        with pytest.raises(OwnershipRequired, match=r"only the owner"):
            team.transfer_ownership(account.id, actor_id="u2", to_user_id="u3")
        with pytest.raises(OwnershipRequired):
            team.transfer_ownership(account.id, actor_id="u2", to_user_id="u2")
        assert team.get_account(account.id).owner_id == "owner"
        assert team.audit_log(account.id) == before

    def test_only_to_a_member(self, team: TeamAccess, account: Account) -> None:
        before = team.audit_log(account.id)
        with pytest.raises(MemberNotFound, match=r"not a member"):
            team.transfer_ownership(account.id, actor_id="owner", to_user_id="stranger")
        assert team.get_account(account.id).owner_id == "owner"
        assert team.audit_log(account.id) == before

    def test_system_transfers_for_a_customer(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id=SYSTEM, to_user_id="u2")
        assert team.get_account(account.id).owner_id == "u2"
        event = team.audit_log(account.id)[0]
        assert event.action == "account.ownership_transferred"
        assert event.actor_id == SYSTEM

    def test_transfer_is_audited(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == (
            "account.ownership_transferred",
            "owner",
            "u2",
        )

    def test_unknown_account(self, team: TeamAccess) -> None:
        with pytest.raises(AccountNotFound):
            team.transfer_ownership("nope", actor_id=SYSTEM, to_user_id="u2")

    def test_exactly_one_owner_afterwards(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", PermissionSet.none())
        add_member(team, account.id, "u3", PermissionSet.none())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        team.transfer_ownership(account.id, actor_id="u2", to_user_id="u3")
        owners = [m.user_id for m in team.members(account.id) if m.role == "owner"]
        assert owners == ["u3"] == [team.get_account(account.id).owner_id]

"""Members: listing, permission changes, removal, leaving, and the no-escalation rules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    SYSTEM,
    Account,
    MemberNotFound,
    MemoryMailer,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
    UnknownPermission,
)

P = PermissionSet.of
MANAGER = P("users.manage", "billing.view", "support.tickets")


@contextmanager
def writes_nothing(team: TeamAccess, account_id: str, mailer: MemoryMailer) -> Iterator[None]:
    """Assert the block changes neither members, invitations, audit log nor mail."""
    before = (
        team.members(account_id),
        team.pending_invitations(account_id),
        team.audit_log(account_id, limit=1000),
        len(mailer.outbox),
    )
    yield
    after = (
        team.members(account_id),
        team.pending_invitations(account_id),
        team.audit_log(account_id, limit=1000),
        len(mailer.outbox),
    )
    assert after == before


class TestMembers:
    """members() lists the owner first with role "owner", then members in joining order."""

    def test_owner_first_then_joining_order(self, team: TeamAccess, account: Account) -> None:
        for uid in ("zed", "abe", "mia"):
            add_member(team, account.id, uid, P("billing.view"))
        members = team.members(account.id)
        assert [m.user_id for m in members] == ["owner", "zed", "abe", "mia"]
        assert [m.role for m in members] == ["owner", "member", "member", "member"]
        assert members[0].email == "chef@muster.de"
        assert members[1].permissions == P("billing.view")
        assert members[1].joined_at == START

    def test_get_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        member = team.get_member(account.id, "u2")
        assert (member.user_id, member.email, member.role) == ("u2", "u2@example.org", "member")
        with pytest.raises(MemberNotFound, match=r"not a member"):
            team.get_member(account.id, "stranger")


class TestSetPermissions:
    """set_permissions() needs users.manage and never raises anyone above the actor."""

    def test_owner_changes_a_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        member = team.set_permissions(account.id, "u2", P("support.tickets"), actor_id="owner")
        assert member.permissions == P("support.tickets")
        assert team.get_member(account.id, "u2").permissions == P("support.tickets")
        assert team.can("u2", account.id, "support.tickets")
        assert not team.can("u2", account.id, "billing.view")

    def test_change_is_audited(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.set_permissions(account.id, "u2", P("support.tickets"), actor_id="owner")
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == (
            "member.permissions_changed",
            "owner",
            "u2",
        )

    def test_needs_users_manage(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view", "support.tickets"))
        add_member(team, account.id, "u3", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"lacks the permission 'users\.manage'"),
        ):
            team.set_permissions(account.id, "u3", P(), actor_id="u2")

    def test_stranger_is_denied(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"not a member"),
        ):
            team.set_permissions(account.id, "u2", P(), actor_id="stranger")

    def test_grants_only_what_it_holds(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        add_member(team, account.id, "u3", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"billing\.pay"),
        ):
            team.set_permissions(account.id, "u3", P("billing.view", "billing.pay"), actor_id="mgr")
        member = team.set_permissions(account.id, "u3", P("support.tickets"), actor_id="mgr")
        assert member.permissions == P("support.tickets")

    def test_grants_all_only_when_holding_all(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        # Holding every name of today's catalog is not holding "all": the vendor may add more.
        every_name = P(*team.catalog.names())
        add_member(team, account.id, "mgr", every_name)
        add_member(team, account.id, "u3", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"all permissions"),
        ):
            team.set_permissions(account.id, "u3", PermissionSet.all(), actor_id="mgr")
        add_member(team, account.id, "boss", PermissionSet.all())
        member = team.set_permissions(account.id, "u3", PermissionSet.all(), actor_id="boss")
        assert member.permissions == PermissionSet.all()

    def test_changes_only_members_within_its_rights(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        add_member(team, account.id, "payer", P("billing.pay"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"change user 'payer'"),
        ):
            # Even lowering: mgr must not touch someone holding what it lacks.
            team.set_permissions(account.id, "payer", P(), actor_id="mgr")
        assert team.can("payer", account.id, "billing.pay")

    def test_cannot_touch_a_member_with_all(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "mgr", P(*team.catalog.names()))
        add_member(team, account.id, "admin", PermissionSet.all())
        with writes_nothing(team, account.id, mailer), pytest.raises(PermissionDenied):
            team.set_permissions(account.id, "admin", P("billing.view"), actor_id="mgr")

    def test_owner_cannot_be_changed(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "admin", PermissionSet.all())
        for actor in ("owner", "admin", SYSTEM):
            with (
                writes_nothing(team, account.id, mailer),
                pytest.raises(OwnershipRequired, match=r"transfer ownership first"),
            ):
                team.set_permissions(account.id, "owner", P("billing.view"), actor_id=actor)
        assert team.permissions_of("owner", account.id) == PermissionSet.all()

    def test_unknown_permission(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(UnknownPermission, match=r"unknown permission 'billing\.veiw'"),
        ):
            team.set_permissions(account.id, "u2", P("billing.veiw"), actor_id="owner")

    def test_unknown_member(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(MemberNotFound):
            team.set_permissions(account.id, "ghost", P(), actor_id="owner")

    def test_system_passes_and_is_audited(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.set_permissions(account.id, "u2", PermissionSet.all(), actor_id=SYSTEM)
        assert team.permissions_of("u2", account.id) == PermissionSet.all()
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id) == ("member.permissions_changed", SYSTEM)


class TestRemoveMember:
    """remove_member(): users.manage, only members within the actor's rights, never the owner."""

    def test_owner_removes_a_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.remove_member(account.id, "u2", actor_id="owner")
        assert [m.user_id for m in team.members(account.id)] == ["owner"]
        assert not team.can("u2", account.id, "billing.view")
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == ("member.removed", "owner", "u2")

    def test_needs_users_manage(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        add_member(team, account.id, "u3", P())
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"users\.manage"),
        ):
            team.remove_member(account.id, "u3", actor_id="u2")

    def test_removes_only_members_within_its_rights(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        add_member(team, account.id, "payer", P("billing.pay"))
        add_member(team, account.id, "viewer", P("billing.view"))
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(PermissionDenied, match=r"remove user 'payer'"),
        ):
            team.remove_member(account.id, "payer", actor_id="mgr")
        team.remove_member(account.id, "viewer", actor_id="mgr")
        assert [m.user_id for m in team.members(account.id)] == ["owner", "mgr", "payer"]

    def test_owner_cannot_be_removed(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "admin", PermissionSet.all())
        for actor in ("owner", "admin", SYSTEM):
            with (
                writes_nothing(team, account.id, mailer),
                pytest.raises(OwnershipRequired, match=r"transfer ownership first"),
            ):
                team.remove_member(account.id, "owner", actor_id=actor)

    def test_member_may_always_leave(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P())  # no users.manage at all
        team.remove_member(account.id, "u2", actor_id="u2")
        assert team.accounts_for("u2") == []
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == ("member.left", "u2", "u2")

    def test_admin_with_all_may_leave(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "admin", PermissionSet.all())
        team.remove_member(account.id, "admin", actor_id="admin")
        assert [m.user_id for m in team.members(account.id)] == ["owner"]

    def test_removal_revokes_invitations_it_sent(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        sent = team.invite(
            account.id, actor_id="mgr", email="new@example.org", permissions=P("billing.view")
        )
        kept = team.invite(
            account.id, actor_id="owner", email="other@example.org", permissions=P("billing.view")
        )
        team.remove_member(account.id, "mgr", actor_id="owner")
        assert [i.id for i in team.pending_invitations(account.id)] == [kept.id]
        assert team.get_invitation(sent.id).status == "revoked"
        actions = [e.action for e in team.audit_log(account.id, limit=2)]
        assert sorted(actions) == ["invitation.revoked", "member.removed"]

    def test_leaving_revokes_invitations_it_sent(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        sent = team.invite(account.id, actor_id="mgr", email="new@example.org", permissions=P())
        team.remove_member(account.id, "mgr", actor_id="mgr")
        assert team.get_invitation(sent.id).status == "revoked"
        assert team.pending_invitations(account.id) == []

    def test_unknown_member(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(MemberNotFound, match=r"not a member"):
            team.remove_member(account.id, "ghost", actor_id="owner")

    def test_system_passes_and_is_audited(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "admin", PermissionSet.all())
        team.remove_member(account.id, "admin", actor_id=SYSTEM)
        assert team.accounts_for("admin") == []
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == ("member.removed", SYSTEM, "admin")

    def test_removed_member_can_be_invited_again(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.remove_member(account.id, "u2", actor_id="owner")
        add_member(team, account.id, "u2", P("support.tickets"))
        assert team.permissions_of("u2", account.id) == P("support.tickets")

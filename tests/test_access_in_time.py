"""No escalation in time: the access a member gives ends no later than its own.

A member whose access the owner limited (``access_until``) and who manages users could
otherwise invite a second address of its own with no end, accept it, and keep access after
its own ended; or set a later end (or none) on another member, or reactivate one, or grant
more to one whose access outlasts its own. Each way is refused with a ``PermissionDenied``
naming the actor's end (``access_until``) and saying what to do; SYSTEM and the owner,
who have no end, are not limited. On every backend.
"""

from datetime import timedelta

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    SYSTEM,
    Account,
    InvitationRevoked,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of
MANAGER = P("users.manage", "billing.view")
ENDS = START + timedelta(days=30)
LATER = ENDS + timedelta(days=1)
EARLIER = ENDS - timedelta(days=1)


@pytest.fixture
def temp(team: TeamAccess, account: Account) -> str:
    """A member managing users for thirty days, as the owner set it."""
    add_member(team, account.id, "temp", MANAGER, email="temp@example.org")
    team.set_access_until(account.id, "temp", ENDS, actor_id="owner")
    return "temp"


def events(team: TeamAccess, account: Account) -> list[str]:
    return [e.action for e in team.audit_log(account.id, limit=500)]


def refused(exc: pytest.ExceptionInfo[PermissionDenied]) -> None:
    """The refusal names the actor's end, in the error and its attribute."""
    assert exc.value.access_until == ENDS
    assert "give" in str(exc.value) or "set its end" in str(exc.value)
    assert f"on or before {ENDS:%Y-%m-%d %H:%M} UTC" in str(exc.value)


class TestInvite:
    def test_no_end_or_a_later_one_is_refused(
        self, team: TeamAccess, account: Account, temp: str, mailer: MemoryMailer
    ) -> None:
        before, sent = events(team, account), len(mailer.outbox)
        for until in (None, LATER):
            with pytest.raises(PermissionDenied, match="its own access ends on") as exc:
                team.invite(account.id, actor_id=temp, email="me2@example.org",
                            permissions=P("billing.view"), access_until=until)  # fmt: skip
            refused(exc)
        assert team.pending_invitations(account.id) == []
        assert len(mailer.outbox) == sent
        assert events(team, account) == before

    def test_an_end_up_to_its_own_is_given(
        self, team: TeamAccess, account: Account, temp: str, clock: FrozenClock
    ) -> None:
        for address, until in (("a@example.org", EARLIER), ("b@example.org", ENDS)):
            inv = team.invite(account.id, actor_id=temp, email=address,
                              permissions=P("billing.view"), access_until=until)  # fmt: skip
            assert inv.token is not None
            member = team.accept_invitation(inv.token, user_id=address[0], email=address)
            assert member.access_until == until

    def test_the_owner_and_system_are_not_limited(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        for actor, address in (("owner", "o@example.org"), (SYSTEM, "s@example.org")):
            inv = team.invite(account.id, actor_id=actor, email=address,
                              permissions=P("billing.view"))  # fmt: skip
            assert inv.access_until is None

    def test_the_second_address_keeps_no_access_after_the_first_ends(
        self, team: TeamAccess, account: Account, temp: str, clock: FrozenClock
    ) -> None:
        """The attack itself: the second address, invited as allowed, ends with the first."""
        inv = team.invite(account.id, actor_id=temp, email="me2@example.org",
                          permissions=MANAGER, access_until=ENDS)  # fmt: skip
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="me2", email="me2@example.org")
        clock.advance(ENDS - START)
        assert not team.can("me2", account.id, "billing.view")
        assert not team.can(temp, account.id, "billing.view")


class TestAnInvitationOutlivingItsInviter:
    def test_counts_as_revoked_once_the_inviters_end_moves_before_it(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        inv = team.invite(account.id, actor_id=temp, email="x@example.org",
                          permissions=P("billing.view"), access_until=ENDS)  # fmt: skip
        assert inv.token is not None
        team.set_access_until(account.id, temp, EARLIER, actor_id="owner")
        assert team.get_invitation(inv.id).status == "revoked"
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(inv.token, user_id="x", email="x@example.org")
        assert [m.user_id for m in team.members(account.id)] == ["owner", temp]

    def test_one_from_before_the_limit_counts_as_revoked(
        self, team: TeamAccess, account: Account
    ) -> None:
        """Sent with no end before the owner limited the inviter: it no longer works."""
        add_member(team, account.id, "temp", MANAGER, email="temp@example.org")
        inv = team.invite(account.id, actor_id="temp", email="x@example.org",
                          permissions=P("billing.view"))  # fmt: skip
        assert inv.token is not None
        team.set_access_until(account.id, "temp", ENDS, actor_id="owner")
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(inv.token, user_id="x", email="x@example.org")


class TestResend:
    def test_resending_an_invitation_without_end_is_refused(
        self, team: TeamAccess, account: Account, temp: str, mailer: MemoryMailer
    ) -> None:
        """The resender becomes the inviter, so it must be able to give what it resends."""
        inv = team.invite(account.id, actor_id="owner", email="x@example.org",
                          permissions=P("billing.view"))  # fmt: skip
        sent = len(mailer.outbox)
        with pytest.raises(PermissionDenied, match="cannot resend this invitation") as exc:
            team.resend_invitation(inv.id, actor_id=temp)
        refused(exc)
        assert len(mailer.outbox) == sent
        assert team.get_invitation(inv.id).invited_by == "owner"

    def test_resending_one_within_its_end_works(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        inv = team.invite(account.id, actor_id="owner", email="x@example.org",
                          permissions=P("billing.view"), access_until=EARLIER)  # fmt: skip
        assert team.resend_invitation(inv.id, actor_id=temp).invited_by == temp


class TestSetAccessUntil:
    def test_no_end_or_a_later_one_on_another_is_refused(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P("billing.view"))
        team.set_access_until(account.id, "other", EARLIER, actor_id="owner")
        before = events(team, account)
        for until in (None, LATER):
            with pytest.raises(PermissionDenied, match="cannot end the access of") as exc:
                team.set_access_until(account.id, "other", until, actor_id=temp)
            refused(exc)
        assert team.get_member(account.id, "other").access_until == EARLIER
        assert events(team, account) == before

    def test_an_end_up_to_its_own_is_set(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P("billing.view"))
        for until in (ENDS, EARLIER):
            member = team.set_access_until(account.id, "other", until, actor_id=temp)
            assert member.access_until == until


class TestReactivate:
    def test_a_member_without_end_stays_suspended(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P("billing.view"))
        team.suspend_member(account.id, "other", actor_id="owner")
        with pytest.raises(PermissionDenied, match="cannot reactivate user 'other'") as exc:
            team.reactivate_member(account.id, "other", actor_id=temp)
        refused(exc)
        assert "set_access_until()" in str(exc.value)
        assert team.get_member(account.id, "other").status == "suspended"
        # with its end set first, within the actor's own, it works
        team.set_access_until(account.id, "other", ENDS, actor_id=temp)
        assert team.reactivate_member(account.id, "other", actor_id=temp).status == "active"

    def test_a_later_end_stays_suspended_and_suspending_stays_open(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P("billing.view"))
        team.set_access_until(account.id, "other", LATER, actor_id="owner")
        assert team.suspend_member(account.id, "other", actor_id=temp).status == "suspended"
        with pytest.raises(PermissionDenied, match="its own access ends"):
            team.reactivate_member(account.id, "other", actor_id=temp)


class TestSetPermissions:
    def test_granting_more_to_a_member_outlasting_the_actor_is_refused(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P())
        with pytest.raises(PermissionDenied, match="cannot grant more permissions") as exc:
            team.set_permissions(account.id, "other", P("billing.view"), actor_id=temp)
        refused(exc)
        assert team.get_member(account.id, "other").permissions == P()

    def test_taking_away_and_granting_within_its_end_work(
        self, team: TeamAccess, account: Account, temp: str
    ) -> None:
        add_member(team, account.id, "other", P("billing.view"))
        assert team.set_permissions(account.id, "other", P(), actor_id=temp).permissions == P()
        team.set_access_until(account.id, "other", ENDS, actor_id=temp)
        member = team.set_permissions(account.id, "other", P("billing.view"), actor_id=temp)
        assert member.permissions == P("billing.view")


class TestTheCommand:
    """The command passes the actor on (``--as``): the same rule, one clear line."""

    def test_invite_and_access_until_by_a_limited_member(self, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        from tests.test_cli import Cli, member

        monkeypatch.chdir(tmp_path)
        run = Cli(tmp_path)
        account = run.json(
            "accounts", "create", "--name", "Muster GmbH", "--owner-id", "max",
            "--owner-email", "chef@muster.example.com",
        )["id"]  # fmt: skip
        member(run, account, "temp", "temp@agentur.example", "users.manage,billing.view")
        run("access-until", account, "temp", "2099-01-31", "--as", "max")
        line = run.error("invite", account, "me2@agentur.example", "-p", "billing.view",
                         "--as", "temp", code=5)  # fmt: skip
        assert "give an end on or before 2099-01-31 00:00 UTC" in line
        member(run, account, "other", "other@agentur.example", "billing.view")
        line = run.error("access-until", account, "other", "never", "--as", "temp", code=5)
        assert "on or before 2099-01-31 00:00 UTC" in line
        data = run.json("invite", account, "me2@agentur.example", "-p", "billing.view",
                        "--until", "2099-01-31", "--as", "temp")  # fmt: skip
        assert data["access_until"] == "2099-01-31T00:00:00+00:00"

"""Invitations: validation, lifetime, tokens, email binding, rate limit, mail, listeners."""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_decode
from tests.conftest import SECRET, SHARED, START, add_member, make_store

from teamaccess import (
    SYSTEM,
    Account,
    AlreadyInvited,
    AlreadyMember,
    AuditEvent,
    DeliveryFailed,
    EmailMismatch,
    InvalidEmail,
    InvalidInvitation,
    Invitation,
    InvitationError,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    RateLimited,
    Store,
    TeamAccess,
    TeamAccessError,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

P = PermissionSet.of
ACCEPT = "https://panel.example.com/accept?token={token}"
DAY = timedelta(days=1)


def make_team(store: Store, clock: FrozenClock, mailer: MemoryMailer | None = None, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("secret_key", SECRET)
    kw.setdefault("accept_url", ACCEPT)
    return TeamAccess(store, mailer or MemoryMailer(), clock=clock, **kw)  # type: ignore[arg-type]


def invite(
    team: TeamAccess, account: Account, email: str = "dev@agentur.de", **kw: object
) -> Invitation:
    kw.setdefault("actor_id", "owner")
    kw.setdefault("permissions", P("billing.view", "support.tickets"))
    return team.invite(account.id, email=email, **kw)  # type: ignore[arg-type]


def token_of(inv: Invitation) -> str:
    assert inv.token is not None
    return inv.token


def bodies(message: EmailMessage) -> dict[str, str]:
    """The text and HTML parts of a mail, by subtype."""
    parts = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            parts[part.get_content_subtype()] = part.get_content()
    return parts


class TestInviteValidation:
    """invite() validates the address with email-validator, without a DNS look-up."""

    def test_invite_and_accept(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        assert (inv.email, inv.status, inv.invited_by) == ("dev@agentur.de", "pending", "owner")
        assert inv.permissions == P("billing.view", "support.tickets")
        member = team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert (member.user_id, member.role, member.email) == ("u2", "member", "dev@agentur.de")
        assert team.can("u2", account.id, "billing.view")
        assert team.get_invitation(inv.id).status == "accepted"
        assert [e.action for e in team.audit_log(account.id, limit=2)] == [
            "invitation.accepted",
            "invitation.sent",
        ]

    @pytest.mark.parametrize("email", ["no-at-sign", "a@b", "two@@example.org", "x@.de", " "])
    def test_invalid_address(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, email: str
    ) -> None:
        with pytest.raises(InvalidEmail, match="not a valid email address"):
            invite(team, account, email)
        assert team.pending_invitations(account.id) == []
        assert mailer.outbox == []

    @pytest.mark.parametrize(
        "email", ["x@example.org\r\nBcc: y@evil.de", "x@example.org\0", "x\n@a.de"]
    )
    def test_header_injection(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, email: str
    ) -> None:
        with pytest.raises(ValidationError, match="line break or NUL"):
            invite(team, account, email)
        assert mailer.outbox == []

    def test_no_dns_look_up(self, team: TeamAccess, account: Account) -> None:
        # A domain that does not exist passes: deliverability is not checked by default.
        inv = invite(team, account, "dev@no-such-domain-teamaccess-test.de")
        assert inv.email == "dev@no-such-domain-teamaccess-test.de"

    def test_needs_users_manage(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        sent = len(mailer.outbox)
        with pytest.raises(PermissionDenied, match=r"users\.manage"):
            invite(team, account, actor_id="u2", permissions=P("billing.view"))
        assert len(mailer.outbox) == sent
        assert team.pending_invitations(account.id) == []

    def test_grants_only_what_it_holds(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "mgr", P("users.manage", "billing.view"))
        with pytest.raises(PermissionDenied, match=r"billing\.pay"):
            invite(team, account, actor_id="mgr", permissions=P("billing.pay"))
        with pytest.raises(PermissionDenied, match="all permissions"):
            invite(team, account, actor_id="mgr", permissions=PermissionSet.all())
        inv = invite(team, account, actor_id="mgr", permissions=P("billing.view"))
        assert inv.invited_by == "mgr"

    def test_system_invites(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account, actor_id=SYSTEM, permissions=PermissionSet.all())
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.permissions_of("u2", account.id) == PermissionSet.all()
        assert team.audit_log(account.id)[1].actor_id == SYSTEM


class TestDuplicates:
    """No invitation for a member (AlreadyMember) or for an address already invited."""

    def test_already_member(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        with pytest.raises(AlreadyMember, match="already a member"):
            invite(team, account, "CHEF@muster.de")
        add_member(team, account.id, "u2", P(), email="dev@agentur.de")
        with pytest.raises(AlreadyMember):
            invite(team, account, "Dev@Agentur.DE")

    @pytest.mark.parametrize("again", ["dev@agentur.de", "DEV@Agentur.de", " dev@agentur.de"])
    def test_already_invited(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, again: str
    ) -> None:
        first = invite(team, account)
        with pytest.raises(AlreadyInvited, match="resend or revoke it instead") as info:
            invite(team, account, again)
        # so a page can offer "resend" for the pending one
        assert info.value.invitation_id == first.id
        assert len(team.pending_invitations(account.id)) == 1
        assert len(mailer.outbox) == 1

    def test_idn_either_form_is_one_address(self, team: TeamAccess, account: Account) -> None:
        invite(team, account, "chef@müller.de")
        with pytest.raises(AlreadyInvited):
            invite(team, account, "chef@xn--mller-kva.de")

    def test_expired_invitation_can_be_renewed(
        self, team: TeamAccess, account: Account, clock: FrozenClock
    ) -> None:
        old = invite(team, account)
        clock.advance(7 * DAY)
        new = invite(team, account)
        assert new.id != old.id
        assert [i.id for i in team.pending_invitations(account.id)] == [new.id]
        assert team.get_invitation(old.id).status == "expired"

    def test_closed_invitation_can_be_renewed(self, team: TeamAccess, account: Account) -> None:
        first = invite(team, account)
        team.revoke_invitation(first.id, actor_id="owner")
        second = invite(team, account)
        team.decline_invitation(token_of(second))
        third = invite(team, account)
        assert [i.id for i in team.pending_invitations(account.id)] == [third.id]

    def test_other_account_is_independent(self, team: TeamAccess, account: Account) -> None:
        other = team.create_account(name="Other", owner_id="owner", owner_email="chef@muster.de")
        invite(team, account)
        invite(team, other)
        assert len(team.pending_invitations(other.id)) == 1


class TestLifetime:
    """Invitations live seven days by default, configurable; expiry is checked on use."""

    def test_seven_days_by_default(
        self, team: TeamAccess, account: Account, clock: FrozenClock
    ) -> None:
        inv = invite(team, account)
        assert inv.created_at == START
        assert inv.expires_at == START + 7 * DAY
        clock.advance(7 * DAY - timedelta(seconds=1))
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")

    def test_expired(self, team: TeamAccess, account: Account, clock: FrozenClock) -> None:
        inv = invite(team, account)
        clock.advance(7 * DAY)
        with pytest.raises(InvitationExpired, match="ask the account owner to resend it"):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.accounts_for("u2") == []
        assert team.inspect_invitation(token_of(inv)).status == "expired"
        assert team.get_invitation(inv.id).status == "expired"
        assert team.pending_invitations(account.id) == []
        with pytest.raises(InvitationExpired):
            team.decline_invitation(token_of(inv))

    def test_configurable(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock, invitation_ttl=timedelta(hours=2))
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = invite(team, acct)
        assert inv.expires_at == START + timedelta(hours=2)
        clock.advance(timedelta(hours=2))
        with pytest.raises(InvitationExpired):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")

    def test_ttl_must_be_positive(self, store: Store, clock: FrozenClock) -> None:
        with pytest.raises(ValidationError, match="invitation_ttl must be positive"):
            make_team(store, clock, invitation_ttl=timedelta(0))


class TestSingleUse:
    """A token makes one member; afterwards it says InvitationUsed."""

    def test_second_accept(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        log = team.audit_log(account.id, limit=100)
        with pytest.raises(InvitationUsed, match="already accepted"):
            team.accept_invitation(token_of(inv), user_id="u3", email="dev@agentur.de")
        with pytest.raises(InvitationUsed):
            team.decline_invitation(token_of(inv))
        assert [m.user_id for m in team.members(account.id)] == ["owner", "u2"]
        assert team.audit_log(account.id, limit=100) == log

    def test_user_already_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P())
        inv = invite(team, account, "second@agentur.de")
        with pytest.raises(AlreadyMember, match="nothing to accept"):
            team.accept_invitation(token_of(inv), user_id="u2", email="second@agentur.de")
        assert team.get_invitation(inv.id).status == "pending"

    def test_address_of_another_member(
        self, store: Store, clock: FrozenClock, mailer: MemoryMailer
    ) -> None:
        # Without email binding a new user may accept from an address a member has: the
        # error told that user it was a member already, and there was "nothing to accept".
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, require_email_match=False)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        add_member(team, account.id, "u2", P())
        inv = invite(team, account, "new@agentur.de")
        with pytest.raises(AlreadyMember) as info:
            team.accept_invitation(token_of(inv), user_id="u3", email="u2@example.org")
        assert "user 'u3' is already a member" not in str(info.value)
        assert "or the address u2@example.org" in str(info.value)
        assert team.get_invitation(inv.id).status == "pending"
        assert [m.user_id for m in team.members(account.id)] == ["owner", "u2"]


class TestResend:
    """resend_invitation() issues a new token, kills the old one, restarts the lifetime."""

    def test_rotates_token(
        self, team: TeamAccess, account: Account, clock: FrozenClock, mailer: MemoryMailer
    ) -> None:
        inv = invite(team, account)
        clock.advance(6 * DAY)
        again = team.resend_invitation(inv.id, actor_id="owner")
        assert again.id == inv.id
        assert token_of(again) != token_of(inv)
        assert again.expires_at == START + 13 * DAY
        assert len(mailer.outbox) == 2
        assert token_of(again) in bodies(mailer.outbox[-1])["plain"]
        with pytest.raises(InvalidInvitation, match="newest mail"):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        clock.advance(3 * DAY)  # past the first lifetime, inside the second
        team.accept_invitation(token_of(again), user_id="u2", email="dev@agentur.de")
        assert team.audit_log(account.id)[1].action == "invitation.resent"

    def test_closed_invitation_cannot_be_resent(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        with pytest.raises(InvitationUsed):
            team.resend_invitation(inv.id, actor_id="owner")
        other = invite(team, account, "x@agentur.de")
        team.revoke_invitation(other.id, actor_id="owner")
        with pytest.raises(InvitationRevoked):
            team.resend_invitation(other.id, actor_id="owner")

    def test_address_that_became_a_member_is_not_mailed_again(
        self, store: Store, clock: FrozenClock, mailer: MemoryMailer
    ) -> None:
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, require_email_match=False)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        waiting = invite(team, account, "dev@agentur.de")
        other = invite(team, account, "x@agentur.de")
        # Without email binding the other link can be used from dev@agentur.de's login.
        team.accept_invitation(token_of(other), user_id="u2", email="dev@agentur.de")
        # Accepting under that address closed its own pending invitation.
        assert team.get_invitation(waiting.id).status == "revoked"
        sent = len(mailer.outbox)
        with pytest.raises(InvitationRevoked):
            team.resend_invitation(waiting.id, actor_id="owner")
        assert len(mailer.outbox) == sent

    def test_needs_users_manage(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        add_member(team, account.id, "u3", P("billing.view", "support.tickets"))
        with pytest.raises(PermissionDenied):
            team.resend_invitation(inv.id, actor_id="u3")

    def test_unknown_invitation(self, team: TeamAccess) -> None:
        with pytest.raises(InvitationNotFound, match="no invitation 'inv_nope'"):
            team.resend_invitation("inv_nope", actor_id="owner")


class TestRevokeAndDecline:
    """Revoke and decline close an invitation; its link stops working."""

    def test_revoke(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        revoked = team.revoke_invitation(inv.id, actor_id="owner")
        assert revoked.status == "revoked"
        assert revoked.closed_at == START
        assert team.pending_invitations(account.id) == []
        with pytest.raises(InvitationRevoked, match="ask the account owner"):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        event = team.audit_log(account.id)[0]
        assert (event.action, event.actor_id, event.target) == (
            "invitation.revoked",
            "owner",
            inv.id,
        )

    def test_revoke_needs_users_manage(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        add_member(team, account.id, "u3", P("billing.view"))
        with pytest.raises(PermissionDenied):
            team.revoke_invitation(inv.id, actor_id="u3")
        assert team.get_invitation(inv.id).status == "pending"

    def test_decline(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        declined = team.decline_invitation(token_of(inv))
        assert declined.status == "declined"
        assert team.get_invitation(inv.id).status == "declined"
        with pytest.raises(InvitationRevoked, match="declined"):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.audit_log(account.id)[0].action == "invitation.declined"


class TestInspect:
    """inspect_invitation() shows what a token offers and changes nothing."""

    def test_shows_without_changing(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        inv = invite(team, account)
        log = team.audit_log(account.id, limit=100)
        seen = team.inspect_invitation(token_of(inv))
        assert (seen.id, seen.email, seen.status, seen.account_id) == (
            inv.id,
            inv.email,
            "pending",
            account.id,
        )
        assert seen.permissions == inv.permissions
        assert seen.token is None
        assert team.audit_log(account.id, limit=100) == log
        assert len(mailer.outbox) == 1
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.inspect_invitation(token_of(inv)).status == "accepted"

    def test_forged_token(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(InvalidInvitation):
            team.inspect_invitation("not-a-token")


class TestEmailBinding:
    """Accepting needs the invited address, compared case-insensitively, IDN in either form."""

    @pytest.mark.parametrize(
        ("invited", "accepting"),
        [
            ("dev@agentur.de", "DEV@Agentur.DE"),
            ("chef@müller.de", "chef@xn--mller-kva.de"),
            ("chef@xn--mller-kva.de", "Chef@MÜLLER.de"),
        ],
    )
    def test_same_address(
        self, team: TeamAccess, account: Account, invited: str, accepting: str
    ) -> None:
        inv = invite(team, account, invited)
        team.accept_invitation(token_of(inv), user_id="u2", email=accepting)
        assert team.accounts_for("u2") == [account]

    def test_mismatch(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        log = team.audit_log(account.id, limit=100)
        with pytest.raises(EmailMismatch, match="log in with the invited address"):
            team.accept_invitation(token_of(inv), user_id="u2", email="other@agentur.de")
        assert team.audit_log(account.id, limit=100) == log
        assert team.get_invitation(inv.id).status == "pending"
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")

    def test_not_required(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock, require_email_match=False)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = invite(team, acct)
        member = team.accept_invitation(token_of(inv), user_id="u2", email="private@web.de")
        assert member.email == "private@web.de"
        assert team.can("u2", acct.id, "billing.view")

    def test_invalid_accepting_address(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        with pytest.raises(InvalidEmail):
            team.accept_invitation(token_of(inv), user_id="u2", email="nope")


MGR = P("users.manage", "billing.view", "support.tickets")


class TestInviterRechecked:
    """At acceptance the inviter must still hold users.manage and every granted permission."""

    @pytest.fixture
    def sent(self, team: TeamAccess, account: Account, clock: FrozenClock) -> Invitation:
        add_member(team, account.id, "mgr", MGR)
        clock.advance(timedelta(seconds=1))
        return invite(team, account, actor_id="mgr", permissions=P("billing.view"))

    def assert_revoked(self, team: TeamAccess, account: Account, inv: Invitation) -> None:
        assert team.inspect_invitation(token_of(inv)).status == "revoked"
        assert team.get_invitation(inv.id).status == "revoked"
        assert team.pending_invitations(account.id) == []
        with pytest.raises(InvitationRevoked, match="ask the account owner"):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.get_invitation(inv.id).status == "revoked"
        assert team.accounts_for("u2") == []
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")

    def test_inviter_removed(self, team: TeamAccess, account: Account, sent: Invitation) -> None:
        team.remove_member(account.id, "mgr", actor_id="owner")
        self.assert_revoked(team, account, sent)

    def test_inviter_removed_after_it_expired(
        self, team: TeamAccess, account: Account, sent: Invitation, clock: FrozenClock
    ) -> None:
        """It was recorded as revoked, with an audit event saying the inviter was removed."""
        clock.set(sent.expires_at + timedelta(seconds=1))
        team.remove_member(account.id, "mgr", actor_id="owner")
        assert team.get_invitation(sent.id).status == "expired"
        actions = [(e.action, e.actor_id) for e in team.audit_log(account.id)[:2]]
        assert actions == [("invitation.expired", SYSTEM), ("member.removed", "owner")]

    def test_inviter_lost_users_manage(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        team.set_permissions(
            account.id, "mgr", P("billing.view", "support.tickets"), actor_id="owner"
        )
        self.assert_revoked(team, account, sent)

    def test_inviter_lost_a_granted_permission(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        team.set_permissions(
            account.id, "mgr", P("users.manage", "support.tickets"), actor_id="owner"
        )
        self.assert_revoked(team, account, sent)
        assert team.audit_log(account.id)[0].action == "invitation.revoked"

    def test_inviter_still_entitled(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        team.set_permissions(account.id, "mgr", P("users.manage", "billing.view"), actor_id="owner")
        team.accept_invitation(token_of(sent), user_id="u2", email="dev@agentur.de")
        assert team.permissions_of("u2", account.id) == P("billing.view")

    def test_counts_as_revoked_everywhere(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        team.set_permissions(account.id, "mgr", P("support.tickets"), actor_id="owner")
        assert team.get_invitation(sent.id).status == "revoked"
        assert [i.status for i in team.invitations(account.id)] == [
            "accepted",
            "revoked",
        ]
        assert team.pending_invitations(account.id) == []
        with pytest.raises(InvitationRevoked, match="send a new invitation instead"):
            team.resend_invitation(sent.id, actor_id="owner")

    def test_new_invitation_replaces_it(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        team.set_permissions(account.id, "mgr", P("support.tickets"), actor_id="owner")
        fresh = invite(team, account, permissions=P("billing.view"))
        assert [i.id for i in team.pending_invitations(account.id)] == [fresh.id]
        assert team.audit_log(account.id)[1].action == "invitation.revoked"
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(token_of(sent), user_id="u2", email="dev@agentur.de")
        team.accept_invitation(token_of(fresh), user_id="u2", email="dev@agentur.de")
        assert team.permissions_of("u2", account.id) == P("billing.view")

    def test_resender_becomes_the_inviter(
        self, team: TeamAccess, account: Account, sent: Invitation
    ) -> None:
        # The resender vouches for the grant from then on.
        again = team.resend_invitation(sent.id, actor_id="owner")
        assert again.invited_by == "owner"
        team.remove_member(account.id, "mgr", actor_id="owner")
        assert team.get_invitation(again.id).status == "pending"
        team.accept_invitation(token_of(again), user_id="u2", email="dev@agentur.de")

    def test_owner_invitation_survives_transfer(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account, permissions=PermissionSet.all())
        add_member(team, account.id, "u3", P())
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u3")
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert team.permissions_of("u2", account.id) == PermissionSet.all()


class TestRateLimit:
    """At most 50 sends per account per rolling hour, resends and revoked ones counted."""

    def test_fifty_by_default(
        self, team: TeamAccess, account: Account, clock: FrozenClock, mailer: MemoryMailer
    ) -> None:
        for i in range(50):
            invite(team, account, f"user{i}@example.org")
            clock.advance(timedelta(seconds=10))
        with pytest.raises(RateLimited, match="the limit is 50") as info:
            invite(team, account, "late@example.org")
        assert info.value.retry_after == START + timedelta(hours=1)
        assert len(mailer.outbox) == 50
        assert len(team.pending_invitations(account.id)) == 50

    def test_counts_resends_and_revoked(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock, rate_limit=3)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        first = invite(team, acct, "a@example.org")
        team.revoke_invitation(first.id, actor_id="owner")
        clock.advance(timedelta(minutes=10))
        second = invite(team, acct, "b@example.org")
        clock.advance(timedelta(minutes=10))
        team.resend_invitation(second.id, actor_id="owner")
        with pytest.raises(RateLimited) as info:
            invite(team, acct, "c@example.org")
        with pytest.raises(RateLimited):
            team.resend_invitation(second.id, actor_id="owner")
        assert info.value.retry_after == START + timedelta(hours=1)

    def test_window_rolls(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock, rate_limit=2)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        invite(team, acct, "a@example.org")
        clock.advance(timedelta(minutes=30))
        invite(team, acct, "b@example.org")
        with pytest.raises(RateLimited) as info:
            invite(team, acct, "c@example.org")
        assert info.value.retry_after == START + timedelta(hours=1)
        clock.set(info.value.retry_after)  # the promised time works
        invite(team, acct, "c@example.org")
        with pytest.raises(RateLimited) as info:
            invite(team, acct, "d@example.org")
        assert info.value.retry_after == START + timedelta(minutes=90)

    def test_configurable_window_and_per_account(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock, rate_limit=1, rate_window=timedelta(days=1))
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        other = team.create_account(name="B", owner_id="owner", owner_email="chef@muster.de")
        invite(team, acct, "a@example.org")
        invite(team, other, "a@example.org")
        clock.advance(timedelta(hours=23))
        with pytest.raises(RateLimited, match="the limit is 1"):
            invite(team, acct, "b@example.org")
        clock.advance(timedelta(hours=1))
        invite(team, acct, "b@example.org")

    def test_rejected_send_writes_nothing(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make_team(store, clock, mailer, rate_limit=1)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        invite(team, acct, "a@example.org")
        log = team.audit_log(acct.id, limit=100)
        with pytest.raises(RateLimited):
            invite(team, acct, "b@example.org")
        assert team.audit_log(acct.id, limit=100) == log
        assert len(mailer.outbox) == 1
        assert len(team.pending_invitations(acct.id)) == 1

    def test_bad_settings(self, store: Store, clock: FrozenClock) -> None:
        with pytest.raises(ValidationError, match="rate_limit must be at least 1"):
            make_team(store, clock, rate_limit=0)


class TestTokens:
    """Signed tokens that name neither address nor permission; only a hash is stored."""

    def test_payload_names_no_email_or_permission(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account, permissions=P("billing.view"))
        payload, _, signature = token_of(inv).rpartition(".")
        assert signature
        data = json.loads(base64_decode(payload))
        text = json.dumps(data)
        assert "agentur" not in text
        assert "billing" not in text
        assert "@" not in text
        assert inv.id in data

    def test_tokens_are_unique(self, team: TeamAccess, account: Account) -> None:
        tokens = {token_of(invite(team, account, f"u{i}@example.org")) for i in range(5)}
        assert len(tokens) == 5

    def test_only_a_hash_is_stored(
        self, team: TeamAccess, account: Account, backend: str, tmp_path: Path
    ) -> None:
        inv = invite(team, account)
        assert token_of(inv)
        assert team.get_invitation(inv.id).token is None
        assert all(i.token is None for i in team.pending_invitations(account.id))
        if backend == "sqlite":
            raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
            assert token_of(inv).encode() not in raw
            assert token_of(inv).rpartition(".")[2].encode() not in raw

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
            lambda t: "x" + t,
            lambda t: t.replace(".", "!"),
            lambda t: t[: len(t) // 2],
            lambda t: "",
            lambda t: "a" * 2000,
        ],
    )
    def test_tampered(
        self, team: TeamAccess, account: Account, tamper: Callable[[str], str]
    ) -> None:
        inv = invite(team, account)
        with pytest.raises(InvalidInvitation):
            team.accept_invitation(tamper(token_of(inv)), user_id="u2", email="dev@agentur.de")
        with pytest.raises(InvalidInvitation):
            team.inspect_invitation(tamper(token_of(inv)))
        assert team.get_invitation(inv.id).status == "pending"

    def test_non_string_token(self, team: TeamAccess) -> None:
        with pytest.raises(InvalidInvitation):
            team.inspect_invitation(None)  # type: ignore[arg-type]

    def test_other_key(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, clock)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = invite(team, acct)
        stranger = make_team(store, clock, secret_key="another-key")
        with pytest.raises(InvalidInvitation, match="invalid or was altered"):
            stranger.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")

    def test_other_salt(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        _, nonce = json.loads(base64_decode(token_of(inv).rpartition(".")[0]))
        for salt in ("itsdangerous", "teamaccess.password-reset.v1"):
            forged = URLSafeSerializer(SECRET, salt=salt).dumps([inv.id, nonce])
            with pytest.raises(InvalidInvitation):
                team.accept_invitation(forged, user_id="u2", email="dev@agentur.de")

    def test_right_key_but_never_issued(self, team: TeamAccess, account: Account) -> None:
        inv = invite(team, account)
        forged = URLSafeSerializer(SECRET, salt="teamaccess.invitation.v1").dumps([inv.id, "guess"])
        with pytest.raises(InvalidInvitation):
            team.accept_invitation(forged, user_id="u2", email="dev@agentur.de")

    def test_key_rotation(self, store: Store, clock: FrozenClock) -> None:
        old = make_team(store, clock, secret_key="old-key")
        acct = old.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        before = invite(old, acct, "a@example.org")
        rotated = make_team(store, clock, secret_key=["old-key", "new-key"])
        after = invite(rotated, acct, "b@example.org")
        rotated.accept_invitation(token_of(before), user_id="u2", email="a@example.org")
        # new tokens are signed with the newest key: the old key alone rejects them
        with pytest.raises(InvalidInvitation):
            old.inspect_invitation(token_of(after))
        new_only = make_team(store, clock, secret_key="new-key")
        new_only.accept_invitation(token_of(after), user_id="u3", email="b@example.org")

    @pytest.mark.parametrize("key", ["", [], [""], b""])
    def test_empty_secret_key(self, store: Store, clock: FrozenClock, key: object) -> None:
        with pytest.raises(ValidationError, match="secret_key must be a non-empty string"):
            make_team(store, clock, secret_key=key)


def no_secret_in(exc: BaseException, secrets: list[str]) -> None:
    text = "".join(traceback.format_exception(exc))
    for secret in secrets:
        assert secret not in text


class TestSecretsNeverLeak:
    """Neither the token nor the accept URL is in any error or log record."""

    def test_every_failure_path(
        self, store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        mailer = FailingMailer(failing=False)
        team = make_team(store, clock, mailer, rate_limit=8)
        stranger = make_team(store, clock, secret_key="another-key")
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        add_member(team, acct.id, "mgr", MGR)
        tokens: list[str] = []
        errors: list[TeamAccessError] = []

        def fails(call: Callable[[], object]) -> None:
            with pytest.raises(TeamAccessError) as info:
                call()
            errors.append(info.value)

        used = invite(team, acct, "used@example.org")
        tokens.append(token_of(used))
        team.accept_invitation(token_of(used), user_id="u-used", email="used@example.org")
        fails(lambda: team.accept_invitation(token_of(used), user_id="x", email="used@example.org"))
        for tamper in (lambda t: t[:-2] + "zz", lambda t: t[5:]):
            fails(
                lambda t=tamper: team.accept_invitation(
                    t(token_of(used)), user_id="x", email="a@b.de"
                )
            )
        fails(lambda: stranger.accept_invitation(token_of(used), user_id="x", email="a@b.de"))
        fails(lambda: stranger.inspect_invitation(token_of(used)))

        mismatched = invite(team, acct, "mis@example.org")
        tokens.append(token_of(mismatched))
        fails(
            lambda: team.accept_invitation(
                token_of(mismatched), user_id="x", email="no@example.org"
            )
        )
        fails(lambda: team.accept_invitation(token_of(mismatched), user_id="x", email="nope"))
        fails(
            lambda: team.accept_invitation(
                token_of(mismatched), user_id="u-used", email="mis@example.org"
            )
        )

        rotated = team.resend_invitation(mismatched.id, actor_id="owner")
        tokens.append(token_of(rotated))
        fails(
            lambda: team.accept_invitation(
                token_of(mismatched), user_id="x", email="mis@example.org"
            )
        )

        revoked = invite(team, acct, "rev@example.org")
        tokens.append(token_of(revoked))
        team.revoke_invitation(revoked.id, actor_id="owner")
        fails(
            lambda: team.accept_invitation(token_of(revoked), user_id="x", email="rev@example.org")
        )
        fails(lambda: team.decline_invitation(token_of(revoked)))

        by_mgr = invite(
            team, acct, "mgr-sent@example.org", actor_id="mgr", permissions=P("billing.view")
        )
        tokens.append(token_of(by_mgr))
        team.set_permissions(acct.id, "mgr", P("users.manage"), actor_id="owner")
        fails(
            lambda: team.accept_invitation(
                token_of(by_mgr), user_id="x", email="mgr-sent@example.org"
            )
        )

        expiring = invite(team, acct, "expiring@example.org")
        tokens.append(token_of(expiring))

        mailer.failing = True
        mailer.error = ConnectionRefusedError("mail server is down")
        fails(lambda: invite(team, acct, "down@example.org"))
        fails(lambda: team.resend_invitation(rotated.id, actor_id="owner"))
        mailer.failing = False
        fails(lambda: invite(team, acct, "limit@example.org"))  # rate limit reached

        clock.advance(8 * DAY)
        fails(
            lambda: team.accept_invitation(
                token_of(expiring), user_id="x", email="expiring@example.org"
            )
        )

        def boom(event: AuditEvent) -> None:
            raise RuntimeError("listener broke")

        team.add_listener(boom)
        late = invite(team, acct, "late@example.org")
        tokens.append(token_of(late))
        team.accept_invitation(token_of(late), user_id="u-late", email="late@example.org")

        assert {type(e).__name__ for e in errors} >= {
            "InvitationUsed",
            "InvalidInvitation",
            "EmailMismatch",
            "InvalidEmail",
            "InvitationRevoked",
            "DeliveryFailed",
            "RateLimited",
            "InvitationExpired",
            "AlreadyMember",
        }
        secrets = tokens + [t.rpartition(".")[2] for t in tokens] + ["panel.example.com/accept"]
        for error in errors:
            no_secret_in(error, secrets)
        assert caplog.records  # the failed delivery and the listener were logged
        for record in caplog.records:
            text = record.getMessage() + (record.exc_text or "")
            if record.exc_info:
                text += "".join(traceback.format_exception(*record.exc_info))
            for secret in secrets:
                assert secret not in text


class TestInvitationMail:
    """The invitation mail: text and HTML parts, the link, the account and inviter named."""

    def test_parts_and_link(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        inv = invite(team, account)
        (message,) = mailer.outbox
        assert message["To"] == "dev@agentur.de"
        assert "Muster GmbH" in message["Subject"]
        assert message.get_content_type() == "multipart/alternative"
        parts = bodies(message)
        assert set(parts) == {"plain", "html"}
        link = ACCEPT.replace("{token}", token_of(inv))
        assert link in parts["plain"]
        assert link in parts["html"]
        assert "chef@muster.de" in parts["plain"]
        assert "View invoices" in parts["plain"]

    def test_german(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        invite(team, account, language="de")
        parts = bodies(mailer.outbox[0])
        assert "Einladung annehmen" in parts["html"]
        assert "Rechnungen einsehen" in parts["plain"]

    def test_values_are_escaped(self, team: TeamAccess, mailer: MemoryMailer) -> None:
        acct = team.create_account(
            name="<b>Evil</b> & Co", owner_id="owner", owner_email="chef@muster.de"
        )
        invite(team, acct)
        parts = bodies(mailer.outbox[0])
        assert "<b>Evil</b>" not in parts["html"]
        assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in parts["html"]


class TestDeliveryFailure:
    """A failing mailer loses nothing: the invitation stays pending and resend works later."""

    def test_pending_and_resend(self, store: Store, clock: FrozenClock) -> None:
        mailer = FailingMailer()
        team = make_team(store, clock, mailer)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        with pytest.raises(
            DeliveryFailed, match=r"invitation inv_[0-9a-f]+ is saved and its mail will be retried"
        ) as info:
            invite(team, acct)
        assert mailer.outbox == []
        (pending,) = team.pending_invitations(acct.id)
        assert pending.email == "dev@agentur.de"
        assert info.value.invitation_id == pending.id
        # The stored invitation comes with the error, token and all, as invite() returns it.
        saved = info.value.invitation
        assert saved is not None
        assert (saved.id, saved.email, saved.status) == (pending.id, pending.email, "pending")
        assert saved.token is not None
        assert team.inspect_invitation(saved.token).id == pending.id
        assert team.audit_log(acct.id)[0].action == "invitation.sent"
        mailer.failing = False
        again = team.resend_invitation(pending.id, actor_id="owner")
        (message,) = mailer.outbox
        assert token_of(again) in bodies(message)["plain"]
        team.accept_invitation(token_of(again), user_id="u2", email="dev@agentur.de")
        assert team.can("u2", acct.id, "billing.view")

    def test_delivery_failed_is_an_error(self) -> None:
        assert issubclass(DeliveryFailed, TeamAccessError)
        assert issubclass(InvalidInvitation, InvitationError)


class TestListeners:
    """Listeners get each AuditEvent after commit, never for a failed call, never break it."""

    def test_called_after_commit(
        self, store_factory: Callable[[], Store], clock: FrozenClock, backend: str
    ) -> None:
        store = store_factory()
        observer = make_team(store_factory() if backend in SHARED else store, clock)
        seen: list[tuple[AuditEvent, list[AuditEvent]]] = []

        def listener(event: AuditEvent) -> None:
            # What another connection sees at call time: the change must be committed.
            seen.append((event, observer.audit_log(event.account_id, limit=100)))

        team = make_team(store, clock, listeners=[listener])
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = invite(team, acct)
        team.accept_invitation(token_of(inv), user_id="u2", email="dev@agentur.de")
        assert [e.action for e, _ in seen] == [
            "account.created",
            "invitation.sent",
            "invitation.accepted",
        ]
        for event, visible in seen:
            assert event in visible
        assert [e for e, _ in seen] == team.audit_log(acct.id)[::-1]

    def test_not_called_on_failure(self, store: Store, clock: FrozenClock) -> None:
        calls: list[AuditEvent] = []
        team = make_team(store, clock, listeners=[calls.append])
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        calls.clear()
        with pytest.raises(PermissionDenied):
            invite(team, acct, actor_id="stranger")
        with pytest.raises(InvalidEmail):
            invite(team, acct, "nope")
        inv = invite(team, acct)
        calls.clear()
        with pytest.raises(EmailMismatch):
            team.accept_invitation(token_of(inv), user_id="u2", email="x@example.org")
        assert calls == []

    def test_failing_listener_does_not_break_the_call(
        self, store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        calls: list[str] = []

        def broken(event: AuditEvent) -> None:
            raise RuntimeError("chat server down")

        team = make_team(store, clock, listeners=[broken, lambda e: calls.append(e.action)])
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = invite(team, acct)
        assert team.pending_invitations(acct.id)[0].id == inv.id
        assert calls == ["account.created", "invitation.sent"]
        assert any("listener" in r.getMessage() for r in caplog.records)


class TestConcurrentAccept:
    """Two accepts of one token racing each other make exactly one member."""

    @pytest.mark.parametrize("round_", range(5))
    def test_one_member(
        self, store: Store, clock: FrozenClock, backend: str, tmp_path: Path, round_: int
    ) -> None:
        team = make_team(store, clock, require_email_match=False)
        acct = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        token = token_of(invite(team, acct))
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def accept(user_id: str) -> None:
            # Each racer has its own connection, as two web workers would.
            own = store if backend == "memory" else make_store(backend, tmp_path)
            try:
                racer = make_team(own, clock, require_email_match=False)
                barrier.wait(timeout=10)
                try:
                    racer.accept_invitation(token, user_id=user_id, email=f"{user_id}@x.de")
                    outcomes[user_id] = "member"
                except TeamAccessError as exc:
                    outcomes[user_id] = type(exc).__name__
            finally:
                if own is not store:
                    own.close()

        threads = [threading.Thread(target=accept, args=(u,)) for u in ("u2", "u3")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes.values()) == ["InvitationUsed", "member"]
        assert len(team.members(acct.id)) == 2
        assert team.get_invitation(team.invitations(acct.id)[0].id).status == "accepted"

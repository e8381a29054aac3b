"""What changes while an invitation mail renders counts: the write unit decides afresh.

``invite`` and ``resend_invitation`` render the mail from a read made before the write
unit (rendering holds no lock), then check every rule again when they write. Here
another connection (another ``TeamAccess`` on the same file or server, as another
process would be) changes the account while the template renders: the call must then
fail as if the change had come first, and store, audit and send nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    SYSTEM,
    AlreadyInvited,
    AlreadyMember,
    InvitationRevoked,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    RateLimited,
    TeamAccess,
    TeamAccessError,
)
from teamaccess._mail.templates import DefaultTemplates, InvitationContext, RenderedMail
from teamaccess._ports import Store
from teamaccess.testing import FrozenClock

P = PermissionSet.of
Change = Callable[[TeamAccess, str], object]


class Meanwhile(DefaultTemplates):
    """Runs a change through the other connection while the mail renders, once."""

    def __init__(self) -> None:
        super().__init__()
        self.change: Callable[[], object] | None = None

    def invitation(self, context: InvitationContext) -> RenderedMail:
        change, self.change = self.change, None
        if change is not None:
            change()
        return super().invitation(context)


@pytest.fixture
def setup(
    store_factory: Callable[[], Store], backend: str
) -> tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer]:
    clock = FrozenClock(START)
    templates = Meanwhile()
    mailer = MemoryMailer()
    first = store_factory()
    # The other connection: the same data opened anew (the one store for memory).
    other_store = first if backend == "memory" else store_factory()
    team = TeamAccess(
        first, mailer, secret_key=SECRET, clock=clock, templates=templates, rate_limit=3
    )
    other = TeamAccess(other_store, MemoryMailer(), secret_key=SECRET, clock=clock, rate_limit=3)
    return team, other, templates, mailer


def _state(team: TeamAccess, account_id: str) -> tuple[object, ...]:
    return (
        [(i.id, i.status) for i in team.invitations(account_id)],
        [(e.action, e.target) for e in team.audit_log(account_id, limit=500)],
        [(m.id, m.status) for m in team.pending_messages()],
    )


def _access_ends(other: TeamAccess, account_id: str, user_id: str) -> None:
    """The member's access ends a second from now, and the clock moves on past it."""
    clock = other.clock
    assert isinstance(clock, FrozenClock)
    other.set_access_until(account_id, user_id, clock.now() + timedelta(seconds=1), actor_id="boss")
    clock.advance(timedelta(seconds=1))


CHANGES: dict[str, tuple[Change, type[TeamAccessError]]] = {
    "users.manage withdrawn": (
        lambda other, acc: other.set_permissions(acc, "admin", P("billing.view"), actor_id="boss"),
        PermissionDenied,
    ),
    "a granted permission withdrawn": (
        lambda other, acc: other.set_permissions(acc, "admin", P("users.manage"), actor_id="boss"),
        PermissionDenied,
    ),
    "suspended": (
        lambda other, acc: other.suspend_member(acc, "admin", actor_id="boss"),
        PermissionDenied,
    ),
    "access ended": (lambda other, acc: _access_ends(other, acc, "admin"), PermissionDenied),
    # The invitation gives access without an end, which now outlasts the inviter's own.
    "an end of access set": (
        lambda other, acc: other.set_access_until(
            acc, "admin", START + timedelta(days=30), actor_id="boss"
        ),
        PermissionDenied,
    ),
    "removed": (
        lambda other, acc: other.remove_member(acc, "admin", actor_id="boss"),
        PermissionDenied,
    ),
    "erased": (
        lambda other, acc: other.erase_person(user_id="admin", actor_id=SYSTEM),
        PermissionDenied,
    ),
    "address invited by another": (
        lambda other, acc: other.invite(
            acc, actor_id="boss", email="Neu@Example.org", permissions=P("billing.view")
        ),
        AlreadyInvited,
    ),
    "address became a member": (
        lambda other, acc: other.accept_invitation(
            other.invite(acc, actor_id="boss", email="neu@example.org", permissions=P()).token
            or "",
            user_id="neu",
            email="neu@example.org",
        ),
        AlreadyMember,
    ),
    "rate limit reached": (
        lambda other, acc: [
            other.invite(acc, actor_id="boss", email=f"x{n}@example.org", permissions=P())
            for n in range(2)
        ],
        RateLimited,
    ),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_a_change_during_rendering_counts(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer], what: str
) -> None:
    team, other, templates, mailer = setup
    change, error = CHANGES[what]
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    admin = team.invite(
        acc.id, actor_id="boss", email="admin@example.org",
        permissions=P("users.manage", "billing.view"),
    )  # fmt: skip
    team.accept_invitation(admin.token or "", user_id="admin", email="admin@example.org")
    sent = len(mailer.outbox)
    before: tuple[object, ...] = ()

    def change_then_look() -> None:
        # What the other connection leaves is what the failing call must leave as it is.
        nonlocal before
        change(other, acc.id)
        before = _state(other, acc.id)

    templates.change = change_then_look
    with pytest.raises(error):
        team.invite(
            acc.id, actor_id="admin", email="neu@example.org", permissions=P("billing.view")
        )
    assert templates.change is None  # the change really ran during rendering
    assert _state(team, acc.id) == before
    assert len(mailer.outbox) == sent


def test_a_resend_racing_a_revoke_during_rendering_sends_nothing(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer],
) -> None:
    team, other, templates, mailer = setup
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    inv = team.invite(acc.id, actor_id="boss", email="neu@example.org", permissions=P())
    sent = len(mailer.outbox)
    templates.change = lambda: other.revoke_invitation(inv.id, actor_id="boss")
    with pytest.raises(TeamAccessError):
        team.resend_invitation(inv.id, actor_id="boss")
    assert templates.change is None
    assert len(mailer.outbox) == sent
    assert team.get_invitation(inv.id).status == "revoked"
    assert [m for m in team.pending_messages() if m.invitation_id == inv.id] == []
    with pytest.raises(TeamAccessError):
        team.accept_invitation(inv.token or "", user_id="neu", email="neu@example.org")


def test_an_inviter_who_lost_rights_after_the_invitation_makes_no_member(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer],
) -> None:
    """Accept reads the invitation and its inviter together: each way of losing the
    right to grant it, made through the other connection, revokes it."""
    team, other, _, _ = setup
    ways: list[Callable[[TeamAccess, str, str], object]] = [
        lambda o, acc, u: o.set_permissions(acc, u, P("users.manage"), actor_id="boss"),
        lambda o, acc, u: o.set_permissions(acc, u, P("billing.view"), actor_id="boss"),
        lambda o, acc, u: o.suspend_member(acc, u, actor_id="boss"),
        _access_ends,
        # an end set before that of the access the invitation gives (none)
        lambda o, acc, u: o.set_access_until(acc, u, START + timedelta(days=30), actor_id="boss"),
    ]
    for n, lose in enumerate(ways):
        # An account each: the rate limit of 3 holds for every account.
        acc = team.create_account(name=f"A{n}", owner_id="boss", owner_email="boss@example.org")
        inv = team.invite(
            acc.id, actor_id="boss", email="admin@example.org",
            permissions=P("users.manage", "billing.view"),
        )  # fmt: skip
        team.accept_invitation(inv.token or "", user_id="admin", email="admin@example.org")
        granted = team.invite(
            acc.id, actor_id="admin", email="neu@example.org", permissions=P("billing.view")
        )
        lose(other, acc.id, "admin")
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(granted.token or "", user_id="neu", email="neu@example.org")
        assert "neu" not in [m.user_id for m in team.members(acc.id)]
        assert team.get_invitation(granted.id).status == "revoked"


# The rules the SQLite backend answers in one statement each (an invitation with its
# inviter, an address as member and invitee, the outbox rows a resend cancels): each
# with a case that tells the combined read from a looser one.


def test_the_inviter_is_read_in_the_invitations_account(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer],
) -> None:
    """An inviter suspended in the invitation's account revokes it, even while the same
    user holds every right in other accounts, joined before or after it (a read that
    took any of the user's memberships would mostly find another account's)."""
    team, _, _, _ = setup
    clock = team.clock
    assert isinstance(clock, FrozenClock)
    for round_ in range(8):
        clock.advance(timedelta(hours=1))  # the limit on accounts created per hour
        names = ["other0", "other1", "other2"]
        names.insert(0 if round_ % 2 else 3, "this")
        accounts = {}
        for name in names:
            acc = team.create_account(name=name, owner_id="boss", owner_email="boss@example.org")
            address = f"admin-{round_}-{name}@example.org"  # the per-address limit
            inv = team.invite(
                acc.id, actor_id="boss", email=address, permissions=PermissionSet.all()
            )
            team.accept_invitation(inv.token or "", user_id="admin", email=address)
            accounts[name] = acc.id
        here = accounts["this"]
        granted = team.invite(
            here, actor_id="admin", email=f"neu{round_}@example.org", permissions=P("billing.view")
        )
        team.suspend_member(here, "admin", actor_id="boss")
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(
                granted.token or "", user_id="neu", email=f"neu{round_}@example.org"
            )
        assert "neu" not in [m.user_id for m in team.members(here)]


def test_an_address_whose_invitations_are_closed_can_be_invited_again(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer],
) -> None:
    """Only a pending invitation blocks a new one: an accepted one (the member left) and
    a revoked one do not, and neither is closed a second time."""
    team, _, _, _ = setup
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    first = team.invite(acc.id, actor_id="boss", email="neu@example.org", permissions=P())
    team.accept_invitation(first.token or "", user_id="neu", email="neu@example.org")
    team.remove_member(acc.id, "neu", actor_id="neu")
    second = team.invite(acc.id, actor_id="boss", email="neu@example.org", permissions=P())
    team.revoke_invitation(second.id, actor_id="boss")
    third = team.invite(acc.id, actor_id="boss", email="neu@example.org", permissions=P())
    assert {i.id: i.status for i in team.invitations(acc.id)} == {
        first.id: "accepted", second.id: "revoked", third.id: "pending",
    }  # fmt: skip
    actions = [e.action for e in team.audit_log(acc.id, limit=100)]
    assert actions.count("invitation.revoked") == 1
    assert actions.count("invitation.accepted") == 1


def test_a_resend_cancels_only_the_mail_still_waiting(
    setup: tuple[TeamAccess, TeamAccess, Meanwhile, MemoryMailer],
) -> None:
    """A resend cancels the invitation's pending outbox row; a row already sent stays
    on record as sent."""
    team, _, _, mailer = setup
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    inv = team.invite(acc.id, actor_id="boss", email="neu@example.org", permissions=P())
    team.resend_invitation(inv.id, actor_id="boss")
    with team.store.read() as uow:
        rows = uow.outbox(invitation_id=inv.id)
    assert [row.status for row in rows] == ["sent", "sent"]
    assert len(mailer.outbox) == 2

"""No membership oracle: an actor who may not act in an account is refused before the
target is read, so the refusal is the same whatever the target is.

Every use case that takes an actor and a target in an account is called by three actors
who may not act there (no membership, a member without the right, a suspended manager)
on three targets (a member, the owner, an id that is no one's); the error class and its
message must not depend on the target, and nothing may be written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    Account,
    MemoryMailer,
    PermissionSet,
    TeamAccess,
    TeamAccessError,
)

#: target -> the user id, address and resource a call names
TARGETS = {
    "member": ("alice", "alice@example.org", "svc-alice"),
    "owner": ("owner", "chef@muster.de", "svc-none"),
    "stranger": ("ghost-4711", "ghost@example.net", "svc-ghost"),
}

Call = Callable[[TeamAccess, str, str, tuple[str, str, str]], object]

USE_CASES: dict[str, Call] = {
    "remove_member": lambda t, a, actor, tg: t.remove_member(a, tg[0], actor_id=actor),
    "set_permissions": lambda t, a, actor, tg: t.set_permissions(
        a, tg[0], PermissionSet.none(), actor_id=actor
    ),
    "suspend_member": lambda t, a, actor, tg: t.suspend_member(a, tg[0], actor_id=actor),
    "reactivate_member": lambda t, a, actor, tg: t.reactivate_member(a, tg[0], actor_id=actor),
    "set_access_until": lambda t, a, actor, tg: t.set_access_until(
        a, tg[0], START + timedelta(days=30), actor_id=actor
    ),
    "transfer_ownership": lambda t, a, actor, tg: t.transfer_ownership(
        a, actor_id=actor, to_user_id=tg[0]
    ),
    "invite": lambda t, a, actor, tg: t.invite(
        a, actor_id=actor, email=tg[1], permissions=PermissionSet.none()
    ),
    "forget_resource": lambda t, a, actor, tg: t.forget_resource(a, tg[2], actor_id=actor),
    "add_contact": lambda t, a, actor, tg: t.add_contact(
        a, actor_id=actor, name="Someone", email=tg[1], categories=["general"]
    ),
}

ACTORS = ("outsider", "plain", "suspended")


def _snapshot(team: TeamAccess, account_id: str, mailer: MemoryMailer) -> object:
    return (
        team.get_account(account_id),
        team.members(account_id),
        team.invitations(account_id),
        team.contacts(account_id),
        team.audit_log(account_id, limit=1000),
        len(mailer.outbox),
    )


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
@pytest.mark.parametrize("actor", ACTORS)
def test_refusal_does_not_depend_on_the_target(
    team: TeamAccess, account: Account, mailer: MemoryMailer, use_case: str, actor: str
) -> None:
    # alice holds a grant on one resource, so forget_resource would have work to do
    add_member(team, account.id, "alice", PermissionSet.on("services.manage", "svc-alice"))
    add_member(team, account.id, "plain", PermissionSet.of("billing.view"))
    add_member(team, account.id, "suspended", PermissionSet.of("users.manage", "contacts.manage"))
    team.suspend_member(account.id, "suspended", actor_id="owner")
    call = USE_CASES[use_case]
    before = _snapshot(team, account.id, mailer)
    seen = {}
    for name, target in TARGETS.items():
        with pytest.raises(TeamAccessError) as caught:
            call(team, account.id, actor, target)
        seen[name] = (type(caught.value).__name__, str(caught.value))
    assert seen["member"] == seen["owner"] == seen["stranger"], seen
    # and the message names no target
    for word in TARGETS["stranger"]:
        assert word not in seen["stranger"][1]
    assert _snapshot(team, account.id, mailer) == before


def test_leaving_keeps_its_own_path(team: TeamAccess, account: Account) -> None:
    """A member without users.manage, or a suspended one, may still leave."""
    add_member(team, account.id, "plain", PermissionSet.none())
    add_member(team, account.id, "paused", PermissionSet.none())
    team.suspend_member(account.id, "paused", actor_id="owner")
    team.remove_member(account.id, "plain", actor_id="plain")
    team.remove_member(account.id, "paused", actor_id="paused")
    assert [m.user_id for m in team.members(account.id)] == ["owner"]
    assert [e.action for e in team.audit_log(account.id, limit=2)] == ["member.left"] * 2

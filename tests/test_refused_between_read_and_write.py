"""A member whose rights change between the read before rendering and the write unit:
the write unit refuses with the very error the read gives when the change came first,
and nothing is stored or sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.conftest import SECRET, START, add_member

from teamaccess import (
    MemoryMailer,
    PermissionSet,
    TeamAccess,
    TeamAccessError,
)
from teamaccess._mail.templates import DefaultTemplates, InvitationContext, RenderedMail
from teamaccess._ports import Store
from teamaccess.testing import FrozenClock

P = PermissionSet.of
Change = Callable[[TeamAccess, str], object]

CHANGES: dict[str, Change] = {
    "loses users.manage": lambda t, acc: t.set_permissions(
        acc, "admin", actor_id="owner", permissions=P("billing.view", "billing.pay")
    ),
    "loses what it grants": lambda t, acc: t.set_permissions(
        acc, "admin", actor_id="owner", permissions=P("users.manage")
    ),
    "is suspended": lambda t, acc: t.suspend_member(acc, "admin", actor_id="owner"),
    "is removed": lambda t, acc: t.remove_member(acc, "admin", actor_id="owner"),
    "has its access end": lambda t, acc: t.set_access_until(
        acc, "admin", t.clock.now() + timedelta(seconds=1), actor_id="owner"
    ),
}


class Hooked(DefaultTemplates):
    """Runs *hook* once, while the invitation mail is rendered (after the read)."""

    hook: Callable[[], object] | None = None

    def invitation(self, context: InvitationContext) -> RenderedMail:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return super().invitation(context)


def _error(exc: TeamAccessError, acc: str) -> tuple[object, ...]:
    """The error as the caller sees it, the account's id written as "{acc}"."""
    attributes = sorted((k, "{acc}" if v == acc else v) for k, v in vars(exc).items())
    return type(exc), str(exc).replace(acc, "{acc}"), attributes


def _team(store: Store, clock: FrozenClock) -> tuple[TeamAccess, Hooked, MemoryMailer, str]:
    templates, mailer = Hooked(), MemoryMailer()
    team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, templates=templates)
    acc = team.create_account(name="Muster", owner_id="owner", owner_email="chef@muster.de")
    add_member(team, acc.id, "admin", P("users.manage", "billing.view", "billing.pay"))
    return team, templates, mailer, acc.id


def _state(team: TeamAccess, account_id: str) -> tuple[object, ...]:
    return (
        [(i.id, i.status, i.sent_count, i.invited_by) for i in team.invitations(account_id)],
        # (the change itself is audited: only what the refused call would write counts)
        [
            (e.action, e.target)
            for e in team.audit_log(account_id, limit=500)
            if e.action.startswith("invitation.")
        ],
        [m.id for m in team.pending_messages()],
    )


def _refusal(run: Callable[[], object], acc: str) -> tuple[object, ...]:
    with pytest.raises(TeamAccessError) as caught:
        run()
    return _error(caught.value, acc)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_invite(store_factory: Callable[[], Store], change: str) -> None:
    found = []
    for between in (False, True):
        clock = FrozenClock(START)
        team, templates, mailer, acc = _team(store_factory(), clock)

        def apply(team: TeamAccess = team, acc: str = acc, clock: FrozenClock = clock) -> None:
            CHANGES[change](team, acc)
            clock.advance(timedelta(seconds=2))  # past an access that ends in 1 s

        if between:
            templates.hook = apply
        else:
            apply()
        before, sent = _state(team, acc), len(mailer.outbox)
        found.append(
            _refusal(
                lambda t=team, a=acc, n=between: t.invite(
                    a,
                    actor_id="admin",
                    email=f"neu{n:d}@example.org",
                    permissions=P("billing.pay"),
                ),
                acc,
            )
        )
        assert templates.hook is None  # the change came while the mail was rendered
        assert _state(team, acc) == before
        assert len(mailer.outbox) == sent
        team.close()
    assert found[0] == found[1]


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_resend(store_factory: Callable[[], Store], change: str) -> None:
    found = []
    for between in (False, True):
        clock = FrozenClock(START)
        team, templates, mailer, acc = _team(store_factory(), clock)
        inv = team.invite(
            acc, actor_id="owner", email=f"neu{between:d}@example.org", permissions=P("billing.pay")
        )

        def apply(team: TeamAccess = team, acc: str = acc, clock: FrozenClock = clock) -> None:
            CHANGES[change](team, acc)
            clock.advance(timedelta(seconds=2))

        if between:
            templates.hook = apply
        else:
            apply()
        before, sent = _state(team, acc), len(mailer.outbox)
        found.append(
            _refusal(lambda t=team, i=inv.id: t.resend_invitation(i, actor_id="admin"), acc)
        )
        assert templates.hook is None  # the change came while the mail was rendered
        assert _state(team, acc) == before
        assert len(mailer.outbox) == sent
        team.close()
    assert found[0] == found[1]

"""A call the read before rendering already refuses renders no mail.

``invite`` and ``resend_invitation`` read the account and the actor before they render
the mail (outside the write lock). When that read shows the actor may not do it, the
call fails there, with the error the write unit raises, before any template runs; and
nothing is stored or sent.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from tests.conftest import SECRET, add_member

from teamaccess import (
    SYSTEM,
    Account,
    InvitationRevoked,
    InvitationUsed,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
)
from teamaccess._mail.templates import DefaultTemplates, InvitationContext, RenderedMail
from teamaccess._ports import Store
from teamaccess.testing import FrozenClock

P = PermissionSet.of


class Counting(DefaultTemplates):
    """A vendor's templates that count the invitation mails they render."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered = 0

    def invitation(self, context: InvitationContext) -> RenderedMail:
        self.rendered += 1
        return super().invitation(context)


@pytest.fixture
def setup(store: Store, clock: FrozenClock) -> tuple[TeamAccess, Counting, MemoryMailer, Account]:
    templates = Counting()
    mailer = MemoryMailer()
    team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, templates=templates)
    acc = team.create_account(name="Muster", owner_id="owner", owner_email="chef@muster.de")
    add_member(team, acc.id, "clerk", P("billing.view"))
    add_member(team, acc.id, "admin", P("users.manage", "billing.view"))
    add_member(team, acc.id, "paused", P("users.manage", "billing.view"))
    team.suspend_member(acc.id, "paused", actor_id="owner")
    return team, templates, mailer, acc


def _state(team: TeamAccess, account_id: str) -> tuple[object, ...]:
    return (
        [(i.id, i.status, i.sent_count) for i in team.invitations(account_id)],
        [(e.action, e.target) for e in team.audit_log(account_id, limit=500)],
        [m.id for m in team.pending_messages()],
    )


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# actor, permissions, the error's message as the write unit words it
INVITES = {
    "a stranger": (
        "mallory", P("billing.view"),
        r"^user 'mallory' is not a member of account '{acc}'$",
    ),
    "a member without users.manage": (
        "clerk", P("billing.view"),
        r"^user 'clerk' lacks the permission 'users.manage' in account '{acc}'; "
        r"the account owner can grant it$",
    ),
    "a member granting what it lacks": (
        "admin", P("billing.pay"),
        r"^user 'admin' cannot grant these permissions: it does not hold billing.pay "
        r"itself; grant only permissions you hold$",
    ),
    "a suspended member": (
        "paused", P("billing.view"),
        r"^user 'paused' is suspended in account '{acc}' and may do nothing there; ",
    ),
}  # fmt: skip


class TestInvite:
    """invite() by an actor the read shows may not invite renders nothing."""

    @pytest.mark.parametrize("who", sorted(INVITES))
    def test_refused_before_rendering(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account], who: str
    ) -> None:
        team, templates, mailer, acc = setup
        actor, permissions, message = INVITES[who]
        before = _state(team, acc.id)
        sent, rendered = len(mailer.outbox), templates.rendered
        with pytest.raises(PermissionDenied, match=message.format(acc=acc.id)):
            team.invite(acc.id, actor_id=actor, email="neu@example.org", permissions=permissions)
        assert templates.rendered == rendered
        assert len(mailer.outbox) == sent
        assert _state(team, acc.id) == before

    def test_access_ended_by_the_clock_is_refused_before_rendering(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account], clock: FrozenClock
    ) -> None:
        team, templates, _, acc = setup
        team.set_access_until(acc.id, "admin", clock.now() + timedelta(hours=1), actor_id="owner")
        clock.advance(timedelta(hours=1))
        rendered = templates.rendered
        with pytest.raises(PermissionDenied, match=r"^user 'admin' is expired in account"):
            team.invite(acc.id, actor_id="admin", email="n@example.org", permissions=P())
        assert templates.rendered == rendered

    def test_allowed_actors_still_render_and_send(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account]
    ) -> None:
        team, templates, mailer, acc = setup
        rendered, sent = templates.rendered, len(mailer.outbox)
        for n, actor in enumerate(("owner", "admin", SYSTEM)):
            team.invite(acc.id, actor_id=actor, email=f"n{n}@example.org", permissions=P())
        assert templates.rendered == rendered + 3
        mails = mailer.outbox[sent:]
        assert [m["To"] for m in mails] == [f"n{n}@example.org" for n in range(3)]
        # The admin's mail names the admin; SYSTEM invites on the owner's behalf.
        assert "admin@example.org" in _text(mails[1])
        assert "chef@muster.de" in _text(mails[2])


class TestResend:
    """resend_invitation() the read shows refused renders nothing."""

    @pytest.mark.parametrize(
        ("actor", "error", "message"),
        [
            ("mallory", PermissionDenied, r"^user 'mallory' is not a member of account "),
            ("clerk", PermissionDenied, r"^user 'clerk' lacks the permission 'users.manage'"),
            ("paused", PermissionDenied, r"^user 'paused' is suspended in account "),
        ],
    )
    def test_by_an_actor_who_may_not(
        self,
        setup: tuple[TeamAccess, Counting, MemoryMailer, Account],
        actor: str,
        error: type[Exception],
        message: str,
    ) -> None:
        team, templates, mailer, acc = setup
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
        before = _state(team, acc.id)
        sent, rendered = len(mailer.outbox), templates.rendered
        with pytest.raises(error, match=message):
            team.resend_invitation(inv.id, actor_id=actor)
        assert (templates.rendered, len(mailer.outbox)) == (rendered, sent)
        assert _state(team, acc.id) == before

    def test_of_what_the_actor_may_not_grant(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account]
    ) -> None:
        team, templates, _, acc = setup
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org",
                          permissions=P("billing.pay"))  # fmt: skip
        rendered = templates.rendered
        with pytest.raises(
            PermissionDenied,
            match=r"^user 'admin' cannot resend this invitation: it does not hold billing.pay",
        ):
            team.resend_invitation(inv.id, actor_id="admin")
        assert templates.rendered == rendered

    @pytest.mark.parametrize("close", ["revoke", "accept"])
    def test_of_a_closed_invitation(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account], close: str
    ) -> None:
        team, templates, mailer, acc = setup
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
        if close == "revoke":
            team.revoke_invitation(inv.id, actor_id="owner")
            error: type[Exception] = InvitationRevoked
            message = f"^invitation {inv.id} was revoked; ask the account owner"
        else:
            team.accept_invitation(inv.token or "", user_id="neu", email="neu@example.org")
            error, message = InvitationUsed, f"^invitation {inv.id} was already accepted"
        before = _state(team, acc.id)
        sent, rendered = len(mailer.outbox), templates.rendered
        with pytest.raises(error, match=message):
            team.resend_invitation(inv.id, actor_id="owner")
        assert (templates.rendered, len(mailer.outbox)) == (rendered, sent)
        assert _state(team, acc.id) == before

    def test_allowed_resends_still_render_and_send(
        self, setup: tuple[TeamAccess, Counting, MemoryMailer, Account]
    ) -> None:
        team, templates, mailer, acc = setup
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
        rendered = templates.rendered
        for actor in ("admin", SYSTEM):
            again = team.resend_invitation(inv.id, actor_id=actor)
            assert again.token is not None
            assert again.token in _text(mailer.outbox[-1])
        assert templates.rendered == rendered + 2
        # The admin's resend names the admin; SYSTEM's the owner.
        admin_mail, system_mail = (_text(m) for m in mailer.outbox[-2:])
        assert "admin@example.org" in admin_mail
        assert "chef@muster.de" in system_mail


class _Slow(DefaultTemplates):
    """Templates whose rendering takes *seconds* of the injected clock."""

    def __init__(self, clock: FrozenClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def invitation(self, context: InvitationContext) -> RenderedMail:
        self.clock.advance(timedelta(seconds=self.seconds))
        return super().invitation(context)


class TestAccessEndingWhileRendering:
    """The actor's access ends by the clock alone while the mail renders: the write unit
    checks it against the time it decides at, not the time taken before rendering."""

    @pytest.fixture
    def slow(self, store: Store, clock: FrozenClock) -> tuple[TeamAccess, MemoryMailer, Account]:
        mailer = MemoryMailer()
        quick = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
        acc = quick.create_account(name="Muster", owner_id="owner", owner_email="c@muster.de")
        add_member(quick, acc.id, "admin", P("users.manage", "billing.view"))
        # Access ends half a second from now; rendering takes a second.
        until = clock.now() + timedelta(milliseconds=500)
        quick.set_access_until(acc.id, "admin", until, actor_id="owner")
        team = TeamAccess(
            store, mailer, secret_key=SECRET, clock=clock, templates=_Slow(clock, 1.0)
        )
        return team, mailer, acc

    def test_invite(self, slow: tuple[TeamAccess, MemoryMailer, Account]) -> None:
        team, mailer, acc = slow
        before, sent = _state(team, acc.id), len(mailer.outbox)
        # The access given ends with the admin's own, as it must (no escalation in time).
        ends = team.get_member(acc.id, "admin").access_until
        with pytest.raises(PermissionDenied, match=r"^user 'admin' is expired in account "):
            team.invite(acc.id, actor_id="admin", email="neu@example.org", permissions=P(),
                        access_until=ends)  # fmt: skip
        assert _state(team, acc.id) == before
        assert len(mailer.outbox) == sent

    def test_resend(
        self, slow: tuple[TeamAccess, MemoryMailer, Account], clock: FrozenClock
    ) -> None:
        team, mailer, acc = slow
        # Its access ends before the admin's (set below), so the admin may resend it.
        ends = clock.now() + timedelta(milliseconds=1200)
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P(),
                          access_until=ends)  # fmt: skip
        # The owner's invite rendered for a second already: access ended before the resend
        # began, so give the admin a fresh half second first.
        quick = TeamAccess(team.store, MemoryMailer(), secret_key=SECRET, clock=clock)
        until = clock.now() + timedelta(milliseconds=500)
        quick.set_access_until(acc.id, "admin", until, actor_id="owner")
        before, sent = _state(team, acc.id), len(mailer.outbox)
        with pytest.raises(PermissionDenied, match=r"^user 'admin' is expired in account "):
            team.resend_invitation(inv.id, actor_id="admin")
        # Unchanged, but for the status: the access the invitation offered ended meanwhile.
        after = _state(team, acc.id)
        assert after[0] == [(i, "expired" if i == inv.id else s, n) for i, s, n in before[0]]  # type: ignore[attr-defined]
        assert after[1:] == before[1:]
        assert len(mailer.outbox) == sent

    def test_an_actor_whose_access_lasts_is_recorded_at_the_time_before_rendering(
        self, slow: tuple[TeamAccess, MemoryMailer, Account], clock: FrozenClock
    ) -> None:
        """The invitation and its event keep the time the mail was rendered for (its
        Date header and lifetime), and the actor held its access then and at the write."""
        team, mailer, acc = slow
        start = clock.now()
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
        assert inv.created_at == start
        assert clock.now() == start + timedelta(seconds=1)
        assert team.audit_log(acc.id, limit=1)[0].at == start
        assert mailer.outbox[-1]["Date"].datetime == start

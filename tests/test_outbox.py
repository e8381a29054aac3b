"""The transactional outbox on every backend: a failed mail is kept, retried with backoff,
delivered once, and cancelled when its invitation is gone."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import unquote

import pytest
from tests.conftest import SECRET, add_member

from teamaccess import (
    SYSTEM,
    Account,
    AccountNotFound,
    DeliveryFailed,
    InvalidInvitation,
    MemoryMailer,
    PermissionSet,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

P = PermissionSet.of


class DropsReplyMailer(MemoryMailer):
    """Delivers, then fails as if the connection dropped before the server's reply."""

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        raise TimeoutError("no reply after DATA")


class RefusingMailer(MemoryMailer):
    """Refuses the addresses in ``refuse``, delivers the rest."""

    def __init__(self, refuse: Iterable[str]) -> None:
        super().__init__()
        self.refuse = set(refuse)

    def send(self, message: EmailMessage) -> None:
        if message["To"] in self.refuse:
            raise ConnectionError(f"550 {message['To']} unknown")
        super().send(message)


def make_team(store: Store, mailer: MemoryMailer, clock: FrozenClock, **kw: object) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=clock,
        accept_url="https://panel.example.com/accept?token={token}",
        **kw,  # type: ignore[arg-type]
    )


def link_token(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(r"token=(\S+)", body.get_content())
    assert match is not None
    return unquote(match.group(1))


@pytest.fixture
def failing() -> FailingMailer:
    return FailingMailer()


@pytest.fixture
def fteam(store: Store, failing: FailingMailer, clock: FrozenClock) -> TeamAccess:
    return make_team(store, failing, clock)


@pytest.fixture
def facc(fteam: TeamAccess) -> Account:
    return fteam.create_account(name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de")


def failed_invite(team: TeamAccess, account: Account, email: str = "dev@example.org") -> str:
    """Invite while the mailer fails; the id of the stored invitation."""
    with pytest.raises(DeliveryFailed) as info:
        team.invite(account.id, actor_id="owner", email=email, permissions=P("billing.view"))
    assert info.value.invitation_id is not None
    return info.value.invitation_id


class TestFailedInvitation:
    """A mailer that fails loses nothing: the invitation and its mail wait."""

    def test_invitation_stays_pending_and_the_caller_is_told(
        self, fteam: TeamAccess, facc: Account
    ) -> None:
        with pytest.raises(DeliveryFailed, match="1 of 1 message") as info:
            fteam.invite(
                facc.id, actor_id="owner", email="dev@example.org", permissions=P("billing.view")
            )
        [inv] = fteam.pending_invitations(facc.id)
        assert info.value.invitation_id == inv.id
        [row] = fteam.pending_messages()
        assert info.value.message_ids == (row.id,)
        assert (row.kind, row.recipient, row.invitation_id) == ("invitation", inv.email, inv.id)
        assert row.attempts == 1
        assert row.last_error == "ConnectionRefusedError: mail server is down"
        assert row.message is None  # the mail holds a token, and tokens are never stored
        assert fteam.audit_log(facc.id, limit=1)[0].action == "invitation.sent"

    def test_failed_resend_carries_the_saved_invitation(
        self, fteam: TeamAccess, facc: Account
    ) -> None:
        inv_id = failed_invite(fteam, facc)
        with pytest.raises(DeliveryFailed, match=f"invitation {inv_id} is saved") as info:
            fteam.resend_invitation(inv_id, actor_id="owner")
        saved = info.value.invitation
        assert saved is not None
        assert (saved.id, saved.sent_count, saved.token is not None) == (inv_id, 2, True)
        assert saved.token is not None
        assert fteam.inspect_invitation(saved.token).status == "pending"

    def test_pending_messages_of_one_account(
        self, fteam: TeamAccess, facc: Account, clock: FrozenClock
    ) -> None:
        other = fteam.create_account(name="Andere AG", owner_id="owner", owner_email="b@andere.de")
        for account, email in ((facc, "one"), (other, "two"), (facc, "three")):
            failed_invite(fteam, account, f"{email}@example.org")
            clock.advance(timedelta(seconds=1))  # oldest first: one instant each
        assert [m.recipient for m in fteam.pending_messages()] == [
            "one@example.org",
            "two@example.org",
            "three@example.org",
        ]
        assert [m.recipient for m in fteam.pending_messages(facc.id)] == [
            "one@example.org",
            "three@example.org",
        ]
        assert [m.recipient for m in fteam.pending_messages(other.id)] == ["two@example.org"]
        with pytest.raises(AccountNotFound, match="no account 'nope'"):
            fteam.pending_messages("nope")

    def test_backoff_is_respected_and_capped(
        self, store: Store, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        team = make_team(
            store,
            failing,
            clock,
            retry_backoff=timedelta(minutes=1),
            max_retry_backoff=timedelta(minutes=5),
        )
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        failed_invite(team, account)
        waits = []
        for _ in range(5):
            [row] = team.pending_messages()
            wait = row.next_attempt_at - clock.now()
            waits.append(wait)
            clock.advance(wait - timedelta(seconds=1))
            assert team.deliver_pending() == []  # not due yet: the mailer is not called
            clock.advance(timedelta(seconds=1))
            [tried] = team.deliver_pending()
            assert tried.status == "pending"
        assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 5, 5)]
        assert failing.attempts == 6
        assert team.pending_messages()[0].attempts == 6

    def test_backoff_of_days_keeps_retrying(
        self, store: Store, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        # A backoff of a day doubled 30 times is past timedelta's range: the 31st failure
        # raised OverflowError out of deliver_pending() instead of being recorded. (A
        # queue lifetime past the 31 weeks, or the message would be closed as expired.)
        team = make_team(
            store, failing, clock,
            retry_backoff=timedelta(days=1), max_retry_backoff=timedelta(days=7),
            expire_after=timedelta(days=365),
        )  # fmt: skip
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        with pytest.raises(DeliveryFailed):
            team.notify(account.id, "general", subject="Wartung", text="Heute Nacht.")
        for _ in range(31):
            clock.advance(timedelta(days=7))
            [tried] = team.deliver_pending()
        assert (tried.status, tried.attempts) == ("pending", 32)
        assert tried.next_attempt_at == clock.now() + timedelta(days=7)

    def test_retry_delivers_once(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        inv_id = failed_invite(fteam, facc)
        failing.failing = False
        clock.advance(timedelta(minutes=1))
        [row] = fteam.deliver_pending()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
        assert row.sent_at == clock.now()
        assert fteam.deliver_pending() == []
        clock.advance(timedelta(days=1))
        assert fteam.deliver_pending() == []
        [mail] = failing.outbox
        assert mail["To"] == "dev@example.org"
        assert mail["Message-ID"] == row.message_id
        assert fteam.pending_messages() == []
        retried = fteam.audit_log(facc.id, limit=1)[0]
        assert (retried.action, retried.actor_id, retried.target) == (
            "invitation.mail_retried",
            SYSTEM,
            inv_id,
        )
        member = fteam.accept_invitation(link_token(mail), user_id="dev", email="dev@example.org")
        assert member.permissions == P("billing.view")
        assert fteam.get_invitation(inv_id).status == "accepted"

    def test_retry_carries_a_fresh_link_and_the_earlier_one_dies(
        self, store: Store, clock: FrozenClock
    ) -> None:
        mailer = DropsReplyMailer()
        team = make_team(store, mailer, clock)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        failed_invite(team, account)  # delivered, but the mailer could not know
        clock.advance(timedelta(minutes=1))
        team.deliver_pending()
        first, second = mailer.outbox
        assert first["Message-ID"] == second["Message-ID"]  # recognisably the same mail
        old, new = link_token(first), link_token(second)
        assert old != new
        with pytest.raises(InvalidInvitation, match="use the link in the newest mail"):
            team.accept_invitation(old, user_id="dev", email="dev@example.org")
        team.accept_invitation(new, user_id="dev", email="dev@example.org")

    def test_revoked_invitation_mail_is_cancelled(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        inv_id = failed_invite(fteam, facc)
        fteam.revoke_invitation(inv_id, actor_id="owner")
        assert fteam.pending_messages() == []
        failing.failing = False
        clock.advance(timedelta(hours=1))
        assert fteam.deliver_pending() == []
        assert failing.outbox == []

    def test_expired_invitation_mail_is_cancelled(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        failed_invite(fteam, facc)
        failing.failing = False
        clock.advance(timedelta(days=7))
        assert [row.status for row in fteam.deliver_pending()] == ["cancelled"]
        assert fteam.pending_messages() == []
        assert failing.outbox == []

    def test_mail_of_an_inviter_who_lost_the_right_is_cancelled(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        failing.failing = False
        add_member(fteam, facc.id, "manager", P("users.manage", "billing.view"))
        failing.failing = True
        with pytest.raises(DeliveryFailed):
            fteam.invite(
                facc.id, actor_id="manager", email="dev@example.org", permissions=P("billing.view")
            )
        fteam.set_permissions(facc.id, "manager", P("billing.view"), actor_id="owner")
        failing.failing = False
        clock.advance(timedelta(minutes=1))
        assert [row.status for row in fteam.deliver_pending()] == ["cancelled"]
        assert fteam.pending_messages() == []
        assert [m["To"] for m in failing.outbox] == ["manager@example.org"]

    def test_resend_after_failure(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        inv_id = failed_invite(fteam, facc)
        with pytest.raises(DeliveryFailed) as info:
            fteam.resend_invitation(inv_id, actor_id="owner")
        [row] = fteam.pending_messages()  # the first mail's row was replaced, not added to
        assert info.value.message_ids == (row.id,)
        failing.failing = False
        inv = fteam.resend_invitation(inv_id, actor_id="owner")
        assert fteam.pending_messages() == []
        [mail] = failing.outbox
        assert link_token(mail) == inv.token
        clock.advance(timedelta(hours=1))
        assert fteam.deliver_pending() == []
        assert len(failing.outbox) == 1
        assert inv.token is not None
        fteam.accept_invitation(inv.token, user_id="dev", email="dev@example.org")

    def test_one_run_sends_each_waiting_mail_once(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        for name in ("a", "b", "c"):
            failed_invite(fteam, facc, f"{name}@example.org")
        failing.failing = False
        clock.advance(timedelta(minutes=1))
        rows = fteam.deliver_pending()
        assert [r.status for r in rows] == ["sent"] * 3
        assert sorted(m["To"] for m in failing.outbox) == [
            "a@example.org",
            "b@example.org",
            "c@example.org",
        ]
        assert fteam.deliver_pending() == []

    def test_limit(
        self, fteam: TeamAccess, facc: Account, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        for name in ("a", "b", "c"):
            failed_invite(fteam, facc, f"{name}@example.org")
        failing.failing = False
        clock.advance(timedelta(minutes=1))
        assert len(fteam.deliver_pending(limit=2)) == 2
        assert len(fteam.pending_messages()) == 1
        assert len(fteam.deliver_pending(limit=2)) == 1
        with pytest.raises(ValidationError, match="limit must be a positive integer"):
            fteam.deliver_pending(limit=0)


class TestConcurrentDelivery:
    """A second deliver_pending() running while one sends does not send the same mail."""

    def test_run_during_a_retry_sends_nothing(
        self, store: Store, failing: FailingMailer, clock: FrozenClock
    ) -> None:
        team = make_team(store, failing, clock)
        other = make_team(store, MemoryMailer(), clock)  # another process on the store
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        failed_invite(team, account)
        clock.advance(timedelta(minutes=1))
        during: list[object] = []
        failing.failing = False
        original = failing.send

        def send(message: EmailMessage) -> None:
            during.extend(other.deliver_pending())
            original(message)

        failing.send = send  # type: ignore[method-assign]
        [row] = team.deliver_pending()
        assert row.status == "sent"
        assert during == []
        assert other.mailer.outbox == []  # type: ignore[attr-defined]
        assert len(failing.outbox) == 1
        team.accept_invitation(link_token(failing.outbox[0]), user_id="d", email="dev@example.org")

    def test_run_during_the_first_send_sends_nothing(
        self, store: Store, clock: FrozenClock
    ) -> None:
        other = make_team(store, MemoryMailer(), clock)
        seen: list[object] = []

        class Racing(MemoryMailer):
            def send(self, message: EmailMessage) -> None:
                seen.extend(other.deliver_pending())
                super().send(message)

        mailer = Racing()
        team = make_team(store, mailer, clock)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        inv = team.invite(account.id, actor_id="owner", email="dev@example.org", permissions=P())
        assert seen == []
        [mail] = mailer.outbox
        assert link_token(mail) == inv.token  # not killed by a concurrent retry
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="dev", email="dev@example.org")

    @pytest.mark.parametrize("backend", ["sqlite"])
    def test_waiting_mail_survives_a_restart(
        self,
        store_factory: Callable[[], Store],
        failing: FailingMailer,
        clock: FrozenClock,
    ) -> None:
        team = make_team(store_factory(), failing, clock)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        failed_invite(team, account)
        mailer = MemoryMailer()
        later = make_team(store_factory(), mailer, clock)  # e.g. the cron job
        clock.advance(timedelta(minutes=1))
        [row] = later.deliver_pending()
        assert row.status == "sent"
        [mail] = mailer.outbox
        later.accept_invitation(link_token(mail), user_id="dev", email="dev@example.org")
        assert team.pending_messages() == []


class TestNotifyFailures:
    """Notifications that fail for some recipients wait; the rest are delivered."""

    @pytest.fixture
    def mailer(self) -> RefusingMailer:
        return RefusingMailer(["steuer@muster.de"])

    @pytest.fixture
    def nteam(self, store: Store, mailer: RefusingMailer, clock: FrozenClock) -> TeamAccess:
        return make_team(store, mailer, clock)

    def test_some_fail(self, nteam: TeamAccess, mailer: RefusingMailer, clock: FrozenClock) -> None:
        account = nteam.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        for name in ("buchhaltung", "steuer"):
            nteam.add_contact(
                account.id,
                actor_id="owner",
                name=name,
                email=f"{name}@muster.de",
                categories=["billing"],
            )
        with pytest.raises(DeliveryFailed, match="1 of 3 message") as info:
            nteam.notify(account.id, "billing", subject="Rechnung 42", text="Neue Rechnung")
        assert info.value.invitation_id is None
        assert [m["To"] for m in mailer.outbox] == ["chef@muster.de", "buchhaltung@muster.de"]
        [row] = nteam.pending_messages()
        assert info.value.message_ids == (row.id,)
        assert (row.recipient, row.kind) == ("steuer@muster.de", "notification.billing")
        assert row.last_error == "ConnectionError: 550 steuer@muster.de unknown"
        assert nteam.audit_log(account.id, limit=1)[0].action == "notification.queued"

        mailer.refuse.clear()
        clock.advance(timedelta(minutes=1))
        [sent] = nteam.deliver_pending()
        assert sent.status == "sent"
        late = mailer.outbox[-1]
        assert late["To"] == "steuer@muster.de"
        assert late["Message-ID"] == row.message_id
        assert late["Subject"] == "Rechnung 42"
        assert len(mailer.outbox) == 3
        assert nteam.deliver_pending() == []

"""Queued delivery on every backend: calls only queue, a worker sends with a lease, and a
mailer that can batch gets one batch per run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import unquote

import pytest
from tests.conftest import SECRET

from teamaccess import (
    Account,
    BatchMailer,
    InvalidInvitation,
    MemoryMailer,
    PermissionSet,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

P = PermissionSet.of
LEASE = timedelta(minutes=5)


def make_team(store: Store, mailer: object, clock: FrozenClock, **kw: object) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,  # type: ignore[arg-type]
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


class BatchingMailer(MemoryMailer):
    """A ``BatchMailer``: records which batch each message went out in; refuses the
    addresses in ``refuse`` one by one, as a server refuses a recipient."""

    def __init__(self, refuse: tuple[str, ...] = (), *, broken: bool = False) -> None:
        super().__init__()
        self.refuse = set(refuse)
        self.broken = broken
        self.batches: list[list[str]] = []
        self.open = False
        self.plain_sends = 0

    def send(self, message: EmailMessage) -> None:
        self.plain_sends += 1
        super().send(message)

    @contextmanager
    def batch(self) -> Iterator[_InBatch]:
        if self.broken:
            raise ConnectionRefusedError("mail server is down")
        self.batches.append([])
        self.open = True
        try:
            yield _InBatch(self)
        finally:
            self.open = False


class _InBatch:
    def __init__(self, owner: BatchingMailer) -> None:
        self.owner = owner

    def send(self, message: EmailMessage) -> None:
        assert self.owner.open, "sent after the batch was closed"
        to = str(message["To"])
        if to in self.owner.refuse:
            raise ConnectionError(f"550 {to} unknown")
        self.owner.batches[-1].append(to)
        self.owner.outbox.append(message)


@pytest.fixture
def queued(store: Store, mailer: MemoryMailer, clock: FrozenClock) -> TeamAccess:
    return make_team(store, mailer, clock, delivery="queue")


@pytest.fixture
def qacc(queued: TeamAccess) -> Account:
    return queued.create_account(name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de")


class TestQueuedCalls:
    """With delivery="queue", invite, resend and notify only write the outbox."""

    def test_invite_queues_and_the_worker_mints_the_token(
        self, queued: TeamAccess, qacc: Account, mailer: MemoryMailer
    ) -> None:
        inv = queued.invite(
            qacc.id, actor_id="owner", email="dev@example.org", permissions=P("billing.view")
        )
        assert mailer.outbox == []
        # No token for the caller: the one the worker mails would replace it at once.
        assert inv.token is None
        assert inv.status == "pending"
        [row] = queued.pending_messages()
        assert (row.kind, row.invitation_id, row.attempts) == ("invitation", inv.id, 0)
        assert row.message is None  # never a token at rest
        [sent] = queued.deliver_pending()
        assert sent.status == "sent"
        [message] = mailer.outbox
        member = queued.accept_invitation(
            link_token(message), user_id="dev", email="dev@example.org"
        )
        assert queued.can(member.user_id, qacc.id, "billing.view")
        # The first mail replaced no link anyone had: no "retried" event.
        assert [e.action for e in queued.audit_log(qacc.id)][:2] == [
            "invitation.accepted",
            "invitation.sent",
        ]

    def test_resend_queues_and_kills_the_old_link(
        self, queued: TeamAccess, qacc: Account, mailer: MemoryMailer
    ) -> None:
        inv = queued.invite(qacc.id, actor_id="owner", email="dev@example.org", permissions=P())
        queued.deliver_pending()
        [first] = mailer.outbox
        again = queued.resend_invitation(inv.id, actor_id="owner")
        assert again.token is None
        assert len(mailer.outbox) == 1
        with pytest.raises(InvalidInvitation):
            queued.inspect_invitation(link_token(first))
        [row] = queued.deliver_pending()
        assert row.status == "sent"
        second = mailer.outbox[1]
        assert queued.inspect_invitation(link_token(second)).id == inv.id

    def test_notify_queues_one_message_per_recipient(
        self, queued: TeamAccess, qacc: Account, mailer: MemoryMailer
    ) -> None:
        queued.add_contact(
            qacc.id, actor_id="owner", name="Tax", email="tax@example.org", categories=["billing"]
        )
        sent_to = queued.notify(qacc.id, "billing", subject="Invoice", text="ready")
        assert sent_to == ["chef@muster.de", "tax@example.org"]
        assert mailer.outbox == []
        assert len(queued.pending_messages()) == 2
        assert [r.status for r in queued.deliver_pending()] == ["sent", "sent"]
        assert sorted(str(m["To"]) for m in mailer.outbox) == sent_to

    def test_a_failing_mailer_never_fails_the_call(self, store: Store, clock: FrozenClock) -> None:
        down = FailingMailer()
        team = make_team(store, down, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="owner", email="dev@example.org", permissions=P())
        team.notify(acc.id, "general", subject="Hi", text="there")
        assert down.attempts == 0
        rows = team.deliver_pending()
        assert [(r.attempts, r.status) for r in rows] == [(1, "pending"), (1, "pending")]
        assert all(r.last_error for r in rows)

    def test_default_is_now(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        assert team.delivery == "now"
        inv = team.invite(account.id, actor_id="owner", email="d@example.org", permissions=P())
        assert inv.token is not None
        assert len(mailer.outbox) == 1

    @pytest.mark.parametrize("value", ["later", None, 1])
    def test_unknown_delivery_mode(self, store: Store, clock: FrozenClock, value: object) -> None:
        with pytest.raises(ValidationError, match="delivery must be 'now'"):
            make_team(store, MemoryMailer(), clock, delivery=value)

    @pytest.mark.parametrize("value", [timedelta(0), 5, None])
    def test_bad_lease(self, store: Store, clock: FrozenClock, value: object) -> None:
        with pytest.raises(ValidationError, match="delivery_lease must be"):
            make_team(store, MemoryMailer(), clock, delivery_lease=value)


class TestLease:
    """A claimed message belongs to its run until the lease ends."""

    def test_a_claimed_message_waits_out_the_lease(
        self, queued: TeamAccess, qacc: Account, store: Store, clock: FrozenClock,
        mailer: MemoryMailer,
    ) -> None:  # fmt: skip
        queued.notify(qacc.id, "general", subject="Hi", text="there")
        # Another worker claimed it and died before sending.
        with store.begin() as uow:
            [taken] = uow.claim_outbox(now=clock.now(), lease_until=clock.now() + LEASE, limit=9)
            uow.commit()
        assert queued.deliver_pending() == []
        clock.advance(LEASE - timedelta(seconds=1))
        assert queued.deliver_pending() == []
        clock.advance(timedelta(seconds=1))
        [row] = queued.deliver_pending()
        assert (row.id, row.status) == (taken.id, "sent")
        assert len(mailer.outbox) == 1

    def test_an_invitation_taken_over_is_not_minted_twice(
        self, queued: TeamAccess, qacc: Account, store: Store, clock: FrozenClock,
        mailer: MemoryMailer,
    ) -> None:  # fmt: skip
        inv = queued.invite(qacc.id, actor_id="owner", email="dev@example.org", permissions=P())
        with store.begin() as uow:
            [mine] = uow.claim_outbox(now=clock.now(), lease_until=clock.now() + LEASE, limit=1)
            uow.commit()
        # The lease ran out while this run was slow; another run took the row and sent it.
        clock.advance(LEASE)
        [row] = queued.deliver_pending()
        assert row.status == "sent"
        [message] = mailer.outbox
        # The slow run wakes up: its claim is no longer the row's, so it mints nothing.
        assert queued._prepare(mine) is None
        assert queued.inspect_invitation(link_token(message)).id == inv.id

    def test_stop_ends_the_run_and_releases_the_rest(
        self, queued: TeamAccess, qacc: Account, mailer: MemoryMailer
    ) -> None:
        for n in range(3):
            queued.add_contact(
                qacc.id, actor_id="owner", name=f"C{n}", email=f"c{n}@example.org",
                categories=["general"],
            )  # fmt: skip
        queued.notify(qacc.id, "general", subject="Hi", text="there")
        asked: list[int] = []

        def stop() -> bool:
            asked.append(1)
            return len(asked) > 1  # a signal came in while the first message was sent

        [row] = queued.deliver_pending(stop=stop)
        assert row.status == "sent"
        assert len(mailer.outbox) == 1
        # Released, the rest is due at once, not only after the lease.
        assert [r.status for r in queued.deliver_pending()] == ["sent"] * 3

    def test_no_send_starts_late_in_the_lease(self, store: Store, clock: FrozenClock) -> None:
        class SlowMailer(MemoryMailer):
            def send(self, message: EmailMessage) -> None:
                super().send(message)
                clock.advance(timedelta(minutes=2))  # each send takes two minutes

        slow = SlowMailer()
        team = make_team(store, slow, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        for n in range(3):
            team.add_contact(
                acc.id, actor_id="owner", name=f"C{n}", email=f"c{n}@example.org",
                categories=["general"],
            )  # fmt: skip
        team.notify(acc.id, "general", subject="Hi", text="there")
        # Two sends fit the five-minute lease with room to spare; a third would start at
        # minute four, too close to its end: it is left, due again, for the next run.
        assert [r.status for r in team.deliver_pending()] == ["sent", "sent"]
        assert len(slow.outbox) == 2
        assert [r.status for r in team.deliver_pending()] == ["sent", "sent"]
        assert len(slow.outbox) == 4

    @pytest.mark.parametrize("limit", [0, -1, True, "5"])
    def test_bad_limit(self, queued: TeamAccess, limit: object) -> None:
        with pytest.raises(ValidationError, match="limit must be a positive integer"):
            queued.deliver_pending(limit=limit)  # type: ignore[arg-type]

    def test_bad_stop(self, queued: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="stop must be a callable"):
            queued.deliver_pending(stop=True)  # type: ignore[arg-type]


class TestBatchMailer:
    """A mailer with batch() sends each delivery run as one batch."""

    def test_is_a_batch_mailer(self) -> None:
        assert isinstance(BatchingMailer(), BatchMailer)
        assert not isinstance(MemoryMailer(), BatchMailer)

    def test_one_batch_per_run_and_one_refusal_fails_only_its_message(
        self, store: Store, clock: FrozenClock
    ) -> None:
        batching = BatchingMailer(refuse=("c1@example.org",))
        team = make_team(store, batching, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        for n in range(3):
            team.add_contact(
                acc.id, actor_id="owner", name=f"C{n}", email=f"c{n}@example.org",
                categories=["general"],
            )  # fmt: skip
        team.invite(acc.id, actor_id="owner", email="dev@example.org", permissions=P())
        team.notify(acc.id, "general", subject="Hi", text="there")
        rows = {r.recipient: r for r in team.deliver_pending()}
        assert {to: r.status for to, r in rows.items()} == {
            "dev@example.org": "sent",
            "chef@muster.de": "sent",
            "c0@example.org": "sent",
            "c1@example.org": "pending",
            "c2@example.org": "sent",
        }
        assert rows["c1@example.org"].last_error == "ConnectionError: 550 c1@example.org unknown"
        # One batch for the whole run; the refused message did not end it.
        [batch] = batching.batches
        assert sorted(batch) == [
            "c0@example.org", "c2@example.org", "chef@muster.de", "dev@example.org"
        ]  # fmt: skip
        assert batching.plain_sends == 0
        assert not batching.open
        clock.advance(timedelta(minutes=1))
        batching.refuse.clear()
        [retried] = team.deliver_pending()
        assert (retried.recipient, retried.status) == ("c1@example.org", "sent")
        assert batching.batches[1:] == [["c1@example.org"]]

    def test_an_idle_run_opens_no_batch(self, store: Store, clock: FrozenClock) -> None:
        batching = BatchingMailer()
        team = make_team(store, batching, clock, delivery="queue")
        assert team.deliver_pending() == []
        assert batching.batches == []

    def test_notify_now_sends_one_batch(self, store: Store, clock: FrozenClock) -> None:
        batching = BatchingMailer()
        team = make_team(store, batching, clock)
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        team.add_contact(
            acc.id, actor_id="owner", name="C", email="c@example.org", categories=["billing"]
        )
        team.notify(acc.id, "billing", subject="Invoice", text="ready")
        assert batching.batches == [["chef@muster.de", "c@example.org"]]

    def test_a_batch_that_cannot_open_fails_each_message(
        self, store: Store, clock: FrozenClock
    ) -> None:
        batching = BatchingMailer(broken=True)
        team = make_team(store, batching, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        team.notify(acc.id, "general", subject="Hi", text="there")
        team.invite(acc.id, actor_id="owner", email="dev@example.org", permissions=P())
        rows = team.deliver_pending()
        assert [(r.status, r.attempts, r.last_error) for r in rows] == [
            ("pending", 1, "ConnectionRefusedError: mail server is down")
        ] * 2
        assert batching.outbox == []

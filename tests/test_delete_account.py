"""delete_account(): the vendor closes an account with everything of it, so its owner can
be erased too; nothing of it is left in any list, in waiting mail or in the file."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from teamaccess import (
    SYSTEM,
    AccountDeletionReport,
    AccountNotFound,
    DeliveryRefused,
    MemoryMailer,
    MemoryStore,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    StorageError,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SHARED
from .test_privacy import NEAR, PIA, PIA_EMAIL, World, build, make

P = PermissionSet.of


@pytest.fixture
def world(store: Store, clock: FrozenClock) -> World:
    """Pia in three accounts; ``acc2`` is Otto's, with Pia as member and contact."""
    return build(make(store, clock), clock)


def everything(team: TeamAccess, account_id: str) -> object:
    """What the service shows of an account."""
    return (
        team.get_account(account_id),
        team.members(account_id),
        team.invitations(account_id),
        team.contacts(account_id),
        team.audit_log(account_id, limit=1000),
        team.pending_messages(account_id),
        team.recipients(account_id, "billing"),
    )


class TestDeleteAccount:
    """Every row of the account goes in one call; the other accounts stay as they were."""

    def test_nothing_of_it_is_left(self, world: World) -> None:
        team = world.team
        others = [everything(team, a) for a in (world.acc1, world.acc3)]
        report = team.delete_account(world.acc2, actor_id=SYSTEM)
        # Otto and Pia; Pia's accepted invitation; Pia's and the near-namesake's contacts;
        # Pia's invitation mail and the notification to Otto and both contacts.
        assert report == AccountDeletionReport(
            world.acc2, members=2, invitations=1, contacts=2, messages=4, events=report.events
        )
        assert report.events >= 6
        assert report.removed == 9 + report.events
        for read in (
            team.get_account, team.members, team.invitations, team.contacts, team.audit_log,
            team.pending_messages, lambda a: team.recipients(a, "billing"),
        ):  # fmt: skip
            with pytest.raises(AccountNotFound, match=world.acc2):
                read(world.acc2)
        assert team.can(PIA, world.acc2, "billing.view") is False
        assert team.can("otto", world.acc2, "billing.view") is False
        assert [a.id for a in team.accounts_for(PIA)] == [world.acc1]
        assert team.accounts_for("otto") == []
        assert [everything(team, a) for a in (world.acc1, world.acc3)] == others

    def test_export_shows_nothing_of_it(self, world: World) -> None:
        team = world.team
        team.delete_account(world.acc2, actor_id=SYSTEM)
        text = json.dumps(
            [team.export_person(user_id=u) for u in ("otto", PIA)]
            + [team.export_person(email=e) for e in (PIA_EMAIL, NEAR, "otto@gmbh.example")]
        )
        assert world.acc2 not in text
        assert "Otto GmbH" not in text
        assert "Invoice 42" not in text
        otto = team.export_person(user_id="otto")
        assert all(otto[part] == [] for part in ("accounts_owned", "memberships", "mail",
                                                 "audit_events", "invitations_sent"))  # fmt: skip

    def test_then_the_former_owner_can_be_erased(self, world: World) -> None:
        team = world.team
        with pytest.raises(OwnershipRequired, match=r"delete the account \(delete_account\(\)\)"):
            team.erase_person(user_id="otto", actor_id=SYSTEM)
        team.delete_account(world.acc2, actor_id=SYSTEM)
        report = team.erase_person(user_id="otto", actor_id=SYSTEM)
        assert report.removed == 0  # nothing of Otto was left to erase
        # ...and Pia, whose memberships elsewhere go as usual.
        assert team.erase_person(user_id=PIA, actor_id=SYSTEM).memberships == 1

    def test_only_the_vendor(self, world: World) -> None:
        team = world.team
        before = everything(team, world.acc2)
        for actor in ("otto", PIA, "stranger"):  # the owner, a member, anyone
            with pytest.raises(PermissionDenied, match=r"only the vendor \(teamaccess\.SYSTEM\)"):
                team.delete_account(world.acc2, actor_id=actor)
        # A customer learns nothing about other ids either.
        with pytest.raises(PermissionDenied):
            team.delete_account("acc_no_such", actor_id="otto")
        assert everything(team, world.acc2) == before

    def test_bad_ids(self, world: World) -> None:
        team = world.team
        with pytest.raises(AccountNotFound, match="acc_no_such"):
            team.delete_account("acc_no_such", actor_id=SYSTEM)
        for bad in ("", "a\nb"):
            with pytest.raises(ValidationError, match="account_id"):
                team.delete_account(bad, actor_id=SYSTEM)
        # Deleted is gone: a second call finds nothing.
        team.delete_account(world.acc2, actor_id=SYSTEM)
        with pytest.raises(AccountNotFound):
            team.delete_account(world.acc2, actor_id=SYSTEM)

    def test_not_inside_a_batch(self, world: World) -> None:
        team = world.team
        with pytest.raises(ValidationError, match="after the batch"), team.batch():
            team.delete_account(world.acc2, actor_id=SYSTEM)
        assert team.get_account(world.acc2).name == "Otto GmbH"

    def test_logged_without_personal_data(
        self, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="teamaccess"):
            report = world.team.delete_account(world.acc2, actor_id=SYSTEM)
        [record] = [r for r in caplog.records if r.name == "teamaccess"]
        assert record.levelno == logging.INFO
        assert record.getMessage() == (
            f"account {world.acc2} deleted: 2 member(s), 1 invitation(s), 2 contact(s), "
            f"4 message(s), {report.events} audit event(s)"
        )


def _queued(store: Store, clock: FrozenClock, mailer: MemoryMailer, **kw: Any) -> TeamAccess:
    return make(store, clock, mailer, delivery="queue", **kw)


class TestWaitingMail:
    """The account's waiting mail never goes out, not even from a run that claimed it."""

    def test_waiting_invitation_mail(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = _queued(store, clock, mailer)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.invite(acc.id, actor_id="o", email="new@example.org", permissions=P())
        assert len(team.pending_messages()) == 1
        team.delete_account(acc.id, actor_id=SYSTEM)
        assert team.pending_messages() == []
        assert team.deliver_pending() == []
        assert mailer.outbox == []

    @staticmethod
    def meanwhile(
        store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
    ) -> Callable[[str], Callable[[], bool]]:
        """A ``stop`` for a delivery run that deletes the account, through another
        connection (another process's, as a worker's would be), before its first send."""
        other = make(store if backend == "memory" else store_factory(), clock)

        def stop_after(account_id: str) -> Callable[[], bool]:
            calls: list[int] = []

            def stop() -> bool:
                if not calls:
                    other.delete_account(account_id, actor_id=SYSTEM)
                calls.append(1)
                return False

            return stop

        return stop_after

    def test_an_invitation_claimed_before(
        self, store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
    ) -> None:
        mailer = MemoryMailer()
        team = _queued(store, clock, mailer)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.invite(acc.id, actor_id="o", email="new@example.org", permissions=P())
        stop = self.meanwhile(store_factory, backend, store, clock)(acc.id)
        assert team.deliver_pending(stop=stop) == []
        assert mailer.outbox == []
        assert team.pending_messages() == []

    def test_a_notification_claimed_before_leaves_nothing(
        self, store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
    ) -> None:
        # The account is deleted while the run sends its mail, and the server refuses it
        # for good: the record of that must not write the row or a mail.bounced event
        # (naming the recipient) back into the deleted account.
        delete = self.meanwhile(store_factory, backend, store, clock)

        class DeletingThenRefusing(FailingMailer):
            def send(self, message: Any) -> None:
                delete(acc.id)()  # another connection deletes the account, then the refusal
                super().send(message)

        mailer = DeletingThenRefusing(error=DeliveryRefused("550 5.1.1 no such user", code=550))
        team = _queued(store, clock, mailer, give_up_after=1)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.add_contact(acc.id, actor_id="o", name="C", email="gone.contact@example.org",
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Invoice", text="Your invoice")
        team.deliver_pending(limit=1)
        assert mailer.attempts == 1
        assert team.pending_messages() == []
        assert team.undeliverable_messages() == []
        doc = team.export_person(email="gone.contact@example.org")
        assert doc["audit_events"] == doc["mail"] == doc["contacts"] == []
        assert team.accounts_for("o") == []


class _NoDeletionUnit:
    def __init__(self, uow: Any) -> None:
        self._uow = uow

    def __getattr__(self, name: str) -> Any:
        if name == "delete_account":
            raise AttributeError(name)
        return getattr(self._uow, name)


class _StoreWithoutDeletion:
    """A third party's store written before ``AccountDeletion``."""

    def __init__(self) -> None:
        self._store = MemoryStore()
        self.grant = self._store.grant
        self.recipients = self._store.recipients
        self.scrub = self._store.scrub
        self.close = self._store.close

    @contextmanager
    def begin(self, *, durable: bool = True) -> Iterator[Any]:
        with self._store.begin(durable=durable) as uow:
            yield _NoDeletionUnit(uow)

    read = begin


class TestStoreWithoutTheCapability:
    """A store whose units have no delete_account() gets a clear error, and keeps its data."""

    def test_refused_by_name(self, clock: FrozenClock) -> None:
        team = make(_StoreWithoutDeletion(), clock)  # type: ignore[arg-type]
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        with pytest.raises(StorageError, match=r"UnitOfWork\.delete_account\(\).*AccountDeletion"):
            team.delete_account(acc.id, actor_id=SYSTEM)
        assert [e.action for e in team.audit_log(acc.id)] == ["account.created"]


class TestDeletedFromTheFile:
    """SQLite: after the deletion nothing of the account is in the database file or WAL."""

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_no_byte_left(self, store: Store, clock: FrozenClock, tmp_path: Path) -> None:
        from .test_privacy import TestErasedFromTheFile

        files = TestErasedFromTheFile.files
        path = tmp_path / "teamaccess.db"
        team = make(store, clock)
        world = build(team, clock)
        # Enough rows that tables and indexes span many pages and get rebalanced.
        for n in range(300):
            team.add_contact(
                world.acc2, actor_id="otto", name=f"Kontakt {n}", email=f"k{n}@gmbh.example",
                categories=["billing", "general"],
            )  # fmt: skip
        clock.advance(timedelta(minutes=1))
        needles = [world.acc2.encode(), b"otto gmbh", b"@gmbh.example", b"invoice 42", b"near"]
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        before = files(path)
        for needle in needles:  # the check can fail: before, every needle is there
            assert any(needle in data for data in before.values()), needle

        team.delete_account(world.acc2, actor_id=SYSTEM)
        after = files(path)
        assert after, "no database file"
        for name, data in after.items():
            for needle in needles:
                assert needle not in data, f"{needle!r} still in {name}"
        assert b"olga shop" in after[path.name]  # other accounts stay
        store.close()


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_seen_by_another_connection_at_once(
    store_factory: Callable[[], Store], store: Store, clock: FrozenClock
) -> None:
    """Another connection (another panel server) sees the account gone at once."""
    team = make(store, clock)
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    other = make(store_factory(), clock)
    assert other.can("o", acc.id, "billing.view") is True
    team.delete_account(acc.id, actor_id=SYSTEM)
    assert other.can("o", acc.id, "billing.view") is False
    with pytest.raises(AccountNotFound):
        other.recipients(acc.id, "billing")

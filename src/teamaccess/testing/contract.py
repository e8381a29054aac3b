"""The store contract: one test suite every ``Store`` backend runs.

Subclass :class:`StoreContract` in a test module and override the ``store_factory``
fixture; pytest then runs every test below against your backend::

    import pytest
    from teamaccess.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(tmp_path / "data")

If each ``store_factory()`` call opens the *same* data anew (a file, a server database),
set ``reopens = True``: the suite then reads every committed change back through a
freshly opened store, which proves it was persisted.

This module imports pytest; ``import teamaccess.testing`` does not.
"""

# Token and hash values below are test data, not secrets.
# ruff: noqa: S105, S106
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import attrs
import pytest

from .._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._errors import AlreadyInvited, AlreadyMember, Conflict, StorageError
from .._permissions import PermissionSet
from .._ports import Store
from .contract_accounts import AccountDeletionContract
from .contract_bulk import BulkContract
from .contract_outbox import OutboxContract
from .contract_privacy import PrivacyContract
from .contract_reads import CombinedReadsContract

__all__ = ["StoreContract"]

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
P = PermissionSet.of


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def account(account_id: str = "acc1", *, minute: int = 0, owner: str = "owner") -> Account:
    return Account(
        id=account_id,
        name=f"Account {account_id}",
        owner_id=owner,
        owner_email=f"{owner}@example.org",
        created_at=at(minute),
    )


def member(
    user_id: str,
    *,
    account_id: str = "acc1",
    role: str = "member",
    permissions: PermissionSet | None = None,
    minute: int = 1,
) -> Member:
    return Member(
        account_id=account_id,
        user_id=user_id,
        email=f"{user_id}@Example.org",
        role=role,  # type: ignore[arg-type]
        permissions=permissions if permissions is not None else P("billing.view"),
        joined_at=at(minute),
        granted_by=None if role == "owner" else "owner",
    )


def key(user_id: str) -> str:
    """The comparison form the service would pass for ``member(user_id)``'s address."""
    return f"{user_id}@example.org"


def invitation(
    invitation_id: str,
    email: str = "new@example.org",
    *,
    account_id: str = "acc1",
    status: str = "pending",
    minute: int = 2,
    invited_by: str = "owner",
) -> Invitation:
    return Invitation(
        id=invitation_id,
        account_id=account_id,
        email=email,
        permissions=P("billing.view", "support.tickets"),
        invited_by=invited_by,
        status=status,  # type: ignore[arg-type]
        created_at=at(minute),
        expires_at=at(minute) + timedelta(days=7),
        token_hash=f"hash-of-{invitation_id}",
    )


def contact(contact_id: str, *categories: str, account_id: str = "acc1") -> Contact:
    return Contact(
        id=contact_id,
        account_id=account_id,
        name=f"Contact {contact_id}",
        email=f"{contact_id}@Example.org",
        categories=categories or ("general",),
        company="Muster GmbH",
        phone="+49 30 123456",
        role="Buchhaltung",
        created_at=at(3),
    )


def event(event_id: str, action: str = "member.added", *, minute: int = 0) -> AuditEvent:
    return AuditEvent(
        id=event_id,
        account_id="acc1",
        at=at(minute),
        actor_id="owner",
        action=action,
        target="u1",
        details={
            "email": "u1@example.org",
            "permissions": ["billing.view"],
            "count": 2,
            "flag": True,
            "none": None,
        },
    )


def outbox(message_id: str, *, minute: int = 0, **changes: Any) -> OutboxMessage:
    row = OutboxMessage(
        id=message_id,
        account_id="acc1",
        kind="notification.billing",
        recipient="u1@example.org",
        message_id=f"<{message_id}@panel.example.com>",
        created_at=at(minute),
        next_attempt_at=at(minute),
        message=b"Subject: hi\r\n\r\nbody \xe2\x82\xac\r\n",
    )
    return attrs.evolve(row, **changes)


class StoreContract(
    PrivacyContract, BulkContract, CombinedReadsContract, AccountDeletionContract, OutboxContract
):
    """The behaviour every ``Store`` shares; subclass it and override ``store_factory``."""

    #: True if every ``store_factory()`` call opens the same data anew.
    reopens: ClassVar[bool] = False

    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        raise NotImplementedError(
            "subclass StoreContract and override the store_factory fixture, "
            "e.g. `return lambda: MyStore(tmp_path / 'data')`"
        )

    @pytest.fixture
    def _opened(self) -> Iterator[list[Store]]:
        opened: list[Store] = []
        yield opened
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, store_factory: Callable[[], Store], _opened: list[Store]) -> Store:
        store = store_factory()
        _opened.append(store)
        return store

    @pytest.fixture
    def reopen(
        self, store_factory: Callable[[], Store], _opened: list[Store]
    ) -> Callable[[Store], Store]:
        """``reopen(store)``: the same data through a fresh store when ``reopens`` is set."""

        def reopen(store: Store) -> Store:
            if not self.reopens:
                return store
            store.close()
            fresh = store_factory()
            _opened.append(fresh)
            return fresh

        return reopen

    @pytest.fixture
    def seeded(self, store: Store) -> Store:
        """A store holding account ``acc1`` with its owner."""
        with store.begin() as uow:
            uow.add_account(account())
            uow.add_member(
                member("owner", role="owner", permissions=PermissionSet.all(), minute=0),
                key("owner"),
            )
            uow.commit()
        return store

    # -- units of work ------------------------------------------------------------------

    def test_commit_persists(self, store: Store, reopen: Callable[[Store], Store]) -> None:
        with store.begin() as uow:
            uow.add_account(account())
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_account("acc1") == account()

    def test_no_commit_rolls_back(self, store: Store, reopen: Callable[[Store], Store]) -> None:
        with store.begin() as uow:
            uow.add_account(account())
            assert uow.get_account("acc1") == account()  # a unit sees its own writes
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_account("acc1") is None

    def test_not_durable_unit_commits_and_rolls_back_like_any(
        self, store: Store, reopen: Callable[[Store], Store]
    ) -> None:
        # begin(durable=False) is a hint about power cuts only: within the running system
        # it is an ordinary unit of work.
        with store.begin(durable=False) as uow:
            uow.add_account(account())
            uow.commit()
        with store.begin(durable=False) as uow:
            uow.add_account(account("acc2"))
        with store.begin() as uow:
            uow.add_account(account("acc3"))
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_account("acc1") == account()
            assert uow.get_account("acc2") is None
            assert uow.get_account("acc3") == account("acc3")

    def test_writes_after_commit_need_another_commit(
        self, store: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with store.begin() as uow:
            uow.add_account(account())
            uow.commit()
            uow.update_account(attrs.evolve(account(), name="Never committed"))
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_account("acc1") == account()

    def test_error_rolls_back_and_store_stays_usable(self, seeded: Store) -> None:
        def fail() -> None:
            with seeded.begin() as uow:
                uow.add_member(member("u1"), key("u1"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail()
        with seeded.begin() as uow:
            assert uow.get_member("acc1", "u1") is None
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        assert seeded.grant("acc1", "u1") == (P("billing.view"), None)

    def test_conflict_leaves_unit_usable(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            with pytest.raises(AlreadyMember):
                uow.add_member(member("u1", minute=5), key("u1"))
            uow.add_member(member("u2"), key("u2"))
            uow.commit()
        with seeded.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner", "u1", "u2"]

    def test_read_sees_one_snapshot(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        started = threading.Event()
        errors: list[BaseException] = []

        def writer() -> None:
            started.set()
            try:
                with seeded.begin() as w:
                    w.update_member(member("u1", permissions=P("billing.pay")))
                    w.commit()
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        thread = threading.Thread(target=writer)
        with seeded.read() as uow:
            first = uow.get_member("acc1", "u1")
            thread.start()
            started.wait(5)
            # A backend may block the writer or let it commit; either way this
            # unit of work keeps reading the snapshot it started with.
            thread.join(0.2)
            assert uow.get_member("acc1", "u1") == first
        thread.join(10)
        assert not thread.is_alive()
        assert errors == []
        assert seeded.grant("acc1", "u1") == (P("billing.pay"), None)

    def test_closed_store_refuses_work(self, store: Store) -> None:
        store.close()
        with pytest.raises(StorageError, match="closed"), store.begin():
            pass
        with pytest.raises(StorageError, match="closed"):
            store.grant("acc1", "owner")

    # -- accounts -----------------------------------------------------------------------

    def test_account_round_trip_and_update(
        self, store: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with store.begin() as uow:
            uow.add_account(account())
            uow.commit()
        renamed = attrs.evolve(
            account(), name="Neuer Name", owner_id="u9", owner_email="u9@example.org"
        )
        with store.begin() as uow:
            uow.update_account(renamed)
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_account("acc1") == renamed
            assert uow.get_account("nope") is None

    def test_duplicate_account_is_conflict(self, seeded: Store) -> None:
        with pytest.raises(Conflict), seeded.begin() as uow:
            uow.add_account(account())

    def test_accounts_for_oldest_first(self, store: Store) -> None:
        with store.begin() as uow:
            # created out of order, and two at the same instant (kept in creation order)
            for acc_id, minute in (("late", 9), ("early", 1), ("same-a", 5), ("same-b", 5)):
                uow.add_account(account(acc_id, minute=minute))
                uow.add_member(member("u1", account_id=acc_id), key("u1"))
            uow.add_account(account("other"))
            uow.commit()
        with store.read() as uow:
            assert [a.id for a in uow.accounts_for("u1")] == ["early", "same-a", "same-b", "late"]
            assert uow.accounts_for("nobody") == []

    # -- members ------------------------------------------------------------------------

    def test_member_round_trip(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        everything = member("u1", permissions=PermissionSet.all())
        nothing = member("u2", permissions=PermissionSet.none())
        some = member("u3", permissions=P("billing.view", "orders.place"))
        with seeded.begin() as uow:
            for m in (everything, nothing, some):
                uow.add_member(m, key(m.user_id))
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            for m in (everything, nothing, some):
                assert uow.get_member("acc1", m.user_id) == m
                assert uow.member_by_email("acc1", key(m.user_id)) == m
            assert uow.get_member("acc1", "stranger") is None
            assert uow.get_member("other", "u1") is None
            assert uow.member_by_email("acc1", "stranger@example.org") is None
        assert store.grant("acc1", "u1") == (PermissionSet.all(), None)
        assert store.grant("acc1", "u2") == (PermissionSet.none(), None)
        assert store.grant("acc1", "u3") == (P("billing.view", "orders.place"), None)

    def test_members_owner_first_then_joining_order(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("late", minute=30), key("late"))
            uow.add_member(member("early", minute=10), key("early"))
            uow.add_member(member("same-b", minute=20), key("same-b"))
            uow.add_member(member("same-a", minute=20), key("same-a"))
            uow.commit()
        with seeded.read() as uow:
            order = [m.user_id for m in uow.members("acc1")]
        assert order == ["owner", "early", "same-b", "same-a", "late"]

    def test_update_member_keeps_place(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.add_member(member("u2"), key("u2"))
            uow.update_member(member("u1", permissions=P("support.pin")))
            uow.commit()
        with seeded.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner", "u1", "u2"]
            assert uow.get_member("acc1", "u1") == member("u1", permissions=P("support.pin"))

    def test_one_membership_per_user(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        with pytest.raises(AlreadyMember), seeded.begin() as uow:
            uow.add_member(member("u1"), "someone-else@example.org")

    def test_one_membership_per_address(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        with pytest.raises(AlreadyMember), seeded.begin() as uow:
            uow.add_member(member("u1-second-login"), key("u1"))

    def test_same_user_in_two_accounts(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_account(account("acc2", minute=1))
            uow.add_member(member("u1"), key("u1"))
            uow.add_member(member("u1", account_id="acc2"), key("u1"))
            uow.commit()
        assert seeded.grant("acc2", "u1") == (P("billing.view"), None)

    def test_delete_member_frees_user_and_address(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        with seeded.begin() as uow:
            uow.delete_member("acc1", "u1")
            uow.commit()
        assert seeded.grant("acc1", "u1") is None
        with seeded.begin() as uow:
            assert uow.member_by_email("acc1", key("u1")) is None
            uow.add_member(member("u1", minute=50), key("u1"))
            uow.commit()
        with seeded.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner", "u1"]

    # -- grant() ------------------------------------------------------------------------

    def test_grant_from_another_thread_never_sees_uncommitted_writes(self, seeded: Store) -> None:
        seen: list[tuple[PermissionSet, datetime | None] | None] = []
        reader = threading.Thread(target=lambda: seen.append(seeded.grant("acc1", "u1")))
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            reader.start()
            # Give the reader every chance to look while the write is still open.
            reader.join(timeout=0.2)
        reader.join()
        assert seen == [None]

    def test_ids_that_cannot_be_stored_name_nobody(self, seeded: Store) -> None:
        # A lone surrogate cannot be written to most databases, so no row has it: the hot
        # paths answer "no such member / account", as for any unknown id.
        assert seeded.grant("acc1", "\udcff") is None
        assert seeded.grant("\udcff", "owner") is None
        assert seeded.recipients("\udcff", "billing") is None

    def test_grant_sees_committed_state_only(self, seeded: Store) -> None:
        assert seeded.grant("acc1", "owner") == (PermissionSet.all(), None)
        assert seeded.grant("acc1", "u1") is None
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
        assert seeded.grant("acc1", "u1") is None  # rolled back
        with seeded.begin() as uow:
            uow.add_member(member("u1"), key("u1"))
            uow.commit()
        assert seeded.grant("acc1", "u1") == (P("billing.view"), None)
        with seeded.begin() as uow:
            uow.update_member(member("u1", permissions=PermissionSet.none()))
            uow.commit()
        assert seeded.grant("acc1", "u1") == (PermissionSet.none(), None)
        assert seeded.grant("unknown-account", "u1") is None

    # -- member states, scopes and metadata -----------------------------------------------

    def test_member_state_scopes_and_metadata_round_trip(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        until = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        scoped = P("billing.view") | PermissionSet.on("services.manage", "srv-1", "srv@2")
        m = attrs.evolve(
            member("u1", permissions=scoped),
            status="suspended",
            access_until=until,
            metadata={"customer_no": "4711", "n": 3, "tags": ["a", "ß"], "x": None},
        )
        with seeded.begin() as uow:
            uow.add_member(m, key("u1"))
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            got = uow.get_member("acc1", "u1")
            assert got == m
            assert got is not None
            assert got.access_until == until
            assert uow.members("acc1")[1] == m
        # suspended: no permission may be used, the end is still reported
        assert store.grant("acc1", "u1") == (PermissionSet.none(), until)
        with store.begin() as uow:
            uow.update_member(attrs.evolve(m, status="active", access_until=None, metadata={}))
            uow.commit()
        assert store.grant("acc1", "u1") == (scoped, None)
        with store.read() as uow:
            assert uow.get_member("acc1", "u1") == attrs.evolve(
                m, status="active", access_until=None, metadata={}
            )

    def test_grant_reports_the_end_of_access(self, seeded: Store) -> None:
        until = at(600)
        with seeded.begin() as uow:
            uow.add_member(attrs.evolve(member("u1"), access_until=until), key("u1"))
            uow.commit()
        # The store does not read a clock: it reports the end, the service compares.
        assert seeded.grant("acc1", "u1") == (P("billing.view"), until)

    def test_invitation_carries_scopes_end_note_and_metadata(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        inv = attrs.evolve(
            invitation("inv1"),
            permissions=PermissionSet.on("services.view", "srv-1"),
            access_until=at(1000),
            note="Hallo,\nbis Freitag bitte. <b>ß</b>",
            metadata={"ticket": "T-1"},
        )
        with seeded.begin() as uow:
            uow.add_invitation(inv, "new@example.org")
            uow.commit()
        changed = attrs.evolve(
            inv, permissions=P(), access_until=None, note="", metadata={"ticket": "T-2"}
        )
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_invitation("inv1") == inv
            assert uow.invitations("acc1") == [inv]
        with store.begin() as uow:
            uow.update_invitation(changed)
            uow.commit()
        with store.read() as uow:
            assert uow.get_invitation("inv1") == changed

    def test_rows_share_no_dict_with_their_callers(self, seeded: Store) -> None:
        """Changing the metadata or details of an object given to a store, or read from
        it, changes nothing stored: as on a backend that writes its rows out, where a test
        on the in-memory store must not pass for a reason production lacks."""
        given_member = attrs.evolve(member("u1"), metadata={"tags": ["a"], "n": 1})
        given_invitation = attrs.evolve(invitation("inv1"), metadata={"tags": ["a"]})
        given_event = event("e1")
        with seeded.begin() as uow:
            uow.add_member(given_member, key("u1"))
            uow.add_invitation(given_invitation, "new@example.org")
            uow.add_event(given_event)
            uow.commit()
        rows: list[Any] = [given_member, given_invitation, given_event]
        with seeded.read() as uow:
            rows += [uow.get_member("acc1", "u1"), uow.members("acc1")[1]]
            rows += [uow.get_invitation("inv1"), *uow.invitations("acc1")]
            rows += uow.events("acc1", limit=5)
        for row in rows:  # what a caller might do with a dict it holds
            held: Any = row.details if isinstance(row, AuditEvent) else row.metadata
            held.setdefault("tags", []).append("changed")
            held["n"] = 2
        with seeded.read() as uow:
            got = uow.get_member("acc1", "u1")
            assert got is not None
            assert dict(got.metadata) == {"tags": ["a"], "n": 1}
            found = uow.get_invitation("inv1")
            assert found is not None
            assert dict(found.metadata) == {"tags": ["a"]}
            [logged] = uow.events("acc1", limit=5)
            assert dict(logged.details) == dict(event("e1").details)

    def test_update_of_a_missing_member_writes_nothing(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.update_member(member("ghost"))
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_member("acc1", "ghost") is None
            assert [m.user_id for m in uow.members("acc1")] == ["owner"]
        assert seeded.grant("acc1", "ghost") is None

    # -- invitations --------------------------------------------------------------------

    def test_invitation_keeps_hash_never_token(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        inv = attrs.evolve(invitation("inv1"), token="the-secret-token")
        with seeded.begin() as uow:
            uow.add_invitation(inv, "new@example.org")
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            stored = uow.get_invitation("inv1")
        assert stored == attrs.evolve(inv, token=None)
        assert stored is not None
        assert stored.token is None
        assert stored.token_hash == "hash-of-inv1"

    def test_invitation_update_round_trip(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(invitation("inv1"), "new@example.org")
            uow.commit()
        accepted = attrs.evolve(
            invitation("inv1"),
            status="accepted",
            closed_at=at(60),
            accepted_by="u7",
            sent_count=3,
            token_hash="newer-hash",
            expires_at=at(90),
            language="de",
            token="never-stored",
        )
        with seeded.begin() as uow:
            uow.update_invitation(accepted)
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_invitation("inv1") == attrs.evolve(accepted, token=None)
            assert uow.get_invitation("nope") is None
            assert uow.pending_invitation_for("acc1", "new@example.org") is None

    def test_invitation_update_keeps_what_is_fixed(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(invitation("inv1"), "new@example.org")
            uow.commit()
        moved = attrs.evolve(
            invitation("inv1"),
            account_id="elsewhere",
            email="other@example.org",
            created_at=at(500),
            status="revoked",
        )
        with seeded.begin() as uow:
            uow.update_invitation(moved)
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_invitation("inv1") == attrs.evolve(invitation("inv1"), status="revoked")

    def test_one_pending_invitation_per_address(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(invitation("inv1"), "new@example.org")
            uow.commit()
        with pytest.raises(AlreadyInvited), seeded.begin() as uow:
            uow.add_invitation(invitation("inv2", "NEW@example.org"), "new@example.org")

    def test_closed_invitations_do_not_block(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_account(account("acc2"))
            uow.add_invitation(invitation("inv1", status="revoked"), "new@example.org")
            uow.add_invitation(invitation("inv2", status="expired"), "new@example.org")
            uow.add_invitation(invitation("inv3"), "new@example.org")
            uow.add_invitation(invitation("inv4", account_id="acc2"), "new@example.org")
            uow.update_invitation(attrs.evolve(invitation("inv3"), status="accepted"))
            uow.add_invitation(invitation("inv5", minute=9), "new@example.org")
            uow.commit()
        with seeded.read() as uow:
            pending = uow.pending_invitation_for("acc1", "new@example.org")
            assert pending is not None
            assert pending.id == "inv5"
            assert uow.pending_invitation_for("acc1", "other@example.org") is None

    def test_invitations_oldest_first_and_filtered(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(invitation("c", "c@example.org", minute=30), "c@example.org")
            uow.add_invitation(
                invitation("a", "a@example.org", minute=10, invited_by="u1"), "a@example.org"
            )
            uow.add_invitation(
                invitation("b", "b@example.org", minute=20, status="revoked"), "b@example.org"
            )
            uow.commit()
        with seeded.read() as uow:
            assert [i.id for i in uow.invitations("acc1")] == ["a", "b", "c"]
            assert [i.id for i in uow.invitations("acc1", status="pending")] == ["a", "c"]
            assert [i.id for i in uow.invitations("acc1", invited_by="owner")] == ["b", "c"]
            assert [i.id for i in uow.invitations("acc1", status="pending", invited_by="u1")] == [
                "a"
            ]
            assert uow.invitations("acc2") == []

    # -- contacts -----------------------------------------------------------------------

    def test_contact_round_trip_update_delete(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with seeded.begin() as uow:
            uow.add_contact(contact("c1", "billing", "support"), "c1@example.org")
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_contact("c1") == contact("c1", "billing", "support")
            assert uow.get_contact("nope") is None
        changed = attrs.evolve(contact("c1", "product"), email="neu@Example.org", phone="")
        with store.begin() as uow:
            uow.update_contact(changed, "neu@example.org")
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            assert uow.get_contact("c1") == changed
        owner = ("owner@example.org", key("owner"))
        assert store.recipients("acc1", "billing") == [owner]
        assert store.recipients("acc1", "product") == [
            owner,
            ("neu@Example.org", "neu@example.org"),
        ]
        with store.begin() as uow:
            uow.delete_contact("c1")
            uow.commit()
        with store.read() as uow:
            assert uow.get_contact("c1") is None
            assert uow.contacts("acc1") == []
        assert store.recipients("acc1", "product") == [owner]

    def test_contacts_and_addresses_oldest_first(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_account(account("acc2"))
            for cid, cats in (
                ("z", ("billing",)),
                ("a", ("billing", "general")),
                ("m", ("general",)),
            ):
                uow.add_contact(contact(cid, *cats), f"{cid}@example.org")
            uow.add_contact(contact("x", "billing", account_id="acc2"), "x@example.org")
            uow.commit()
        with seeded.read() as uow:
            assert [c.id for c in uow.contacts("acc1")] == ["z", "a", "m"]
        owner = ("owner@example.org", key("owner"))
        assert seeded.recipients("acc1", "billing") == [
            owner,
            ("z@Example.org", "z@example.org"),
            ("a@Example.org", "a@example.org"),
        ]
        assert seeded.recipients("acc1", "support") == [owner]
        assert seeded.recipients("nope", "billing") is None

    def test_recipients_see_committed_state_only(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_contact(contact("c1", "billing"), "c1@example.org")
        assert seeded.recipients("acc1", "billing") == [("owner@example.org", key("owner"))]

    def test_contact_without_categories_or_time(self, seeded: Store) -> None:
        bare = Contact(
            id="c0", account_id="acc1", name="Bare", email="b@example.org", categories=()
        )
        with seeded.begin() as uow:
            uow.add_contact(bare, "b@example.org")
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_contact("c0") == bare

    def test_duplicate_contact_is_conflict(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_contact(contact("c1"), "c1@example.org")
            uow.commit()
        with pytest.raises(Conflict), seeded.begin() as uow:
            uow.add_contact(contact("c1"), "c1@example.org")

    # -- audit --------------------------------------------------------------------------

    def test_events_newest_first(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        with seeded.begin() as uow:
            for n in range(5):
                uow.add_event(event(f"e{n}", minute=n))
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert [e.id for e in uow.events("acc1", limit=3)] == ["e4", "e3", "e2"]
            assert [e.id for e in uow.events("acc1", limit=50)] == ["e4", "e3", "e2", "e1", "e0"]
            assert uow.events("acc1", limit=0) == []
            assert uow.events("acc2", limit=5) == []
            assert uow.events("acc1", limit=1) == [event("e4", minute=4)]

    def test_event_times_filters_actions_and_time(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_event(event("e0", "invitation.sent", minute=0))
            uow.add_event(event("e1", "invitation.sent", minute=10))
            uow.add_event(event("e2", "member.removed", minute=11))
            uow.add_event(event("e3", "invitation.resent", minute=12))
            uow.add_event(event("e4", "invitation.sent", minute=13))
            uow.commit()
        actions = frozenset({"invitation.sent", "invitation.resent"})
        with seeded.read() as uow:
            assert uow.event_times("acc1", actions, at(10)) == [at(10), at(12), at(13)]
            assert uow.event_times("acc1", actions, at(14)) == []
            assert uow.event_times("acc1", [], at(0)) == []
            assert uow.event_times("acc2", actions, at(0)) == []

    def test_invitation_mail_times_across_accounts(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_account(account("acc2"))
            uow.add_invitation(invitation("inv1"), "new@example.org")
            uow.add_invitation(invitation("inv2", account_id="acc2"), "new@example.org")
            uow.add_invitation(invitation("inv3", "other@example.org"), "other@example.org")
            for message_id, inv_id, minute in (
                ("m1", "inv1", 1), ("m2", "inv1", 5), ("m3", "inv2", 3), ("m4", "inv3", 4),
            ):  # fmt: skip
                uow.add_outbox(
                    outbox(message_id, minute=minute, kind="invitation", message=None,
                           invitation_id=inv_id, recipient="new@example.org")
                )  # fmt: skip
            uow.add_outbox(outbox("m5", minute=6))  # a notification counts for nothing
            uow.commit()
        with seeded.read() as uow:
            assert uow.invitation_mail_times("new@example.org", at(0)) == [at(1), at(3), at(5)]
            assert uow.invitation_mail_times("new@example.org", at(3)) == [at(3), at(5)]
            assert uow.invitation_mail_times("other@example.org", at(0)) == [at(4)]
            assert uow.invitation_mail_times("nobody@example.org", at(0)) == []

    # -- values -------------------------------------------------------------------------

    def test_aware_datetimes_keep_their_instant(self, store: Store) -> None:
        berlin = timezone(timedelta(hours=2))
        local = Account(
            id="acc1",
            name="Zeit",
            owner_id="o",
            owner_email="o@example.org",
            created_at=datetime(2026, 5, 1, 11, 0, 0, 123456, tzinfo=berlin),
        )
        with store.begin() as uow:
            uow.add_account(local)
            uow.commit()
        with store.read() as uow:
            stored = uow.get_account("acc1")
        assert stored is not None
        assert stored.created_at == datetime(2026, 5, 1, 9, 0, 0, 123456, tzinfo=UTC)
        assert stored.created_at.utcoffset() is not None

"""The store contract's part for the optional bulk write (``BulkUnitOfWork.add_many``).

``StoreContract`` inherits these tests; a backend whose units have no ``add_many`` skips
them (the service then adds row by row).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from .._domain import Account, AuditEvent, Contact, Member
from .._errors import Conflict
from .._permissions import PermissionSet
from .._ports import Store, UnitOfWork

# contract.py imports this module to define StoreContract; its helpers are looked up on
# it when a test runs, by which time it is fully imported.
from . import contract as c

__all__ = ["BulkContract"]


def _bulk(uow: UnitOfWork) -> Callable[..., None]:
    add_many = getattr(uow, "add_many", None)
    if not callable(add_many):
        pytest.skip("this store has no add_many() (an optional capability)")
    return add_many  # type: ignore[no-any-return]


def _account_rows(account_id: str, minute: int) -> tuple[
    Account, list[tuple[Member, str]], list[tuple[Contact, str]], AuditEvent
]:  # fmt: skip
    owner = f"{account_id}-owner"
    account = attrs.evolve(c.account(account_id, minute=minute, owner=owner))
    members = [
        (attrs.evolve(c.member(owner, account_id=account_id, role="owner", minute=minute),
                      permissions=PermissionSet.all(), email=f"{owner}@example.org"),
         c.key(owner)),
        (attrs.evolve(c.member(f"{account_id}-u1", account_id=account_id, minute=minute),
                      permissions=PermissionSet.on("services.manage", "srv-1"),
                      metadata={"customer_no": "4711"}, access_until=c.at(60 * 24 * 400)),
         c.key(f"{account_id}-u1")),
        (c.member(f"{account_id}-u2", account_id=account_id, minute=minute),
         c.key(f"{account_id}-u2")),
    ]  # fmt: skip
    contacts = [
        (attrs.evolve(c.contact(f"{account_id}-c1", "billing", "general",
                                account_id=account_id)), f"{account_id}-c1@example.org"),
        (attrs.evolve(c.contact(f"{account_id}-c2", "support", account_id=account_id),
                      created_at=c.at(minute)), f"{account_id}-c2@example.org"),
    ]  # fmt: skip
    event = attrs.evolve(
        c.event(f"{account_id}-evt", "account.imported", minute=minute),
        account_id=account_id,
        target=account_id,
        details={"name": account.name, "members": [f"{account_id}-u1", f"{account_id}-u2"]},
    )
    return account, members, contacts, event


class BulkContract:
    """``add_many`` writes what the single adds write, or refuses a taken key."""

    def test_add_many_reads_back_like_single_adds(
        self, store: Store, reopen: Callable[[Store], Store]
    ) -> None:
        rows = [_account_rows(f"acc{i}", i) for i in range(3)]
        with store.begin() as uow:
            _bulk(uow)(
                accounts=[r[0] for r in rows],
                members=[m for r in rows for m in r[1]],
                contacts=[x for r in rows for x in r[2]],
                events=[r[3] for r in rows],
            )
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            for account, members, contacts, event in rows:
                assert uow.get_account(account.id) == account
                assert uow.members(account.id) == [m for m, _ in members]
                assert uow.contacts(account.id) == [x for x, _ in contacts]
                assert uow.events(account.id, limit=5) == [event]
                assert uow.member_by_email(account.id, c.key(f"{account.id}-u2")) == members[2][0]
                assert uow.accounts_for(f"{account.id}-u1") == [account]
        account, members, contacts, _ = rows[1]
        assert store.recipients(account.id, "billing") == [
            (account.owner_email, c.key(account.owner_id)),
            (contacts[0][0].email, contacts[0][1]),
        ]
        assert store.grant(account.id, f"{account.id}-u1") == (
            PermissionSet.on("services.manage", "srv-1"),
            c.at(60 * 24 * 400),
        )

    def test_add_many_is_rolled_back_unless_committed(self, store: Store) -> None:
        account, members, contacts, event = _account_rows("acc1", 0)
        with store.begin() as uow:
            _bulk(uow)(accounts=[account], members=members, contacts=contacts, events=[event])
        with store.read() as uow:
            assert uow.get_account("acc1") is None
            assert uow.members("acc1") == []
        assert store.grant("acc1", "acc1-owner") is None

    def test_add_many_appends_to_an_existing_account(self, seeded: Store) -> None:
        """Members of an account written before join after its current members."""
        newcomer = c.member("late", minute=5)
        with seeded.begin() as uow:
            _bulk(uow)(members=[(newcomer, c.key("late"))])
            uow.commit()
        with seeded.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner", "late"]

    def test_add_many_refuses_a_taken_account_id(self, seeded: Store) -> None:
        account, members, _contacts, _event = _account_rows("acc1", 0)
        with seeded.begin() as uow, pytest.raises(Conflict):
            _bulk(uow)(accounts=[account], members=members[1:])
        with seeded.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner"]

    def test_add_many_refuses_a_member_twice(self, store: Store) -> None:
        account, members, _contacts, _event = _account_rows("acc1", 0)
        twice = (attrs.evolve(members[1][0], user_id="other"), members[1][1])
        with store.begin() as uow, pytest.raises(Conflict):
            _bulk(uow)(accounts=[account], members=[*members, twice])
        with store.read() as uow:
            assert uow.get_account("acc1") is None

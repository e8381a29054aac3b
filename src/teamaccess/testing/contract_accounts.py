"""The store contract's part for deleting an account (the optional ``AccountDeletion``).

``StoreContract`` inherits these tests; a backend whose units have no
``delete_account()`` skips them (``TeamAccess.delete_account()`` then refuses by name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from .._ports import Store

# contract.py imports this module to define StoreContract; its helpers are looked up on
# it when a test runs, by which time it is fully imported.
from . import contract as c

__all__ = ["AccountDeletionContract"]

_NONE = {"members": 0, "invitations": 0, "contacts": 0, "messages": 0, "events": 0}


def _deleter(uow: object) -> Callable[[str], dict[str, int]]:
    found = getattr(uow, "delete_account", None)
    if not callable(found):
        pytest.skip("this store has no delete_account() (an optional capability)")
    return found  # type: ignore[no-any-return]


def _fill(store: Store) -> None:
    """Account ``acc1`` (seeded) with a row in every table, and ``acc2`` beside it with
    rows of the same people and addresses."""
    with store.begin() as uow:
        uow.add_account(c.account("acc2", minute=1, owner="boss"))
        uow.add_member(c.member("boss", account_id="acc2", role="owner", minute=1), c.key("boss"))
        for account_id in ("acc1", "acc2"):
            uow.add_member(c.member("u1", account_id=account_id, minute=2), c.key("u1"))
            uow.add_invitation(
                c.invitation(f"i-{account_id}", account_id=account_id), "new@example.org"
            )
            uow.add_contact(
                c.contact(f"c-{account_id}", "billing", "general", account_id=account_id),
                f"c-{account_id}@example.org",
            )
            uow.add_event(attrs.evolve(c.event(f"e-{account_id}"), account_id=account_id))
            uow.add_outbox(
                c.outbox(
                    f"m-{account_id}", account_id=account_id, kind="invitation",
                    recipient="new@example.org", invitation_id=f"i-{account_id}", message=None,
                )
            )  # fmt: skip
            uow.add_outbox(
                c.outbox(f"n-{account_id}", account_id=account_id, status="sent", minute=1)
            )
        uow.commit()


def _everything(store: Store, account_id: str) -> tuple[Any, ...]:
    """What the store holds of *account_id*, read every way a use case reads it."""
    with store.read() as uow:
        return (
            uow.get_account(account_id),
            uow.members(account_id),
            uow.get_member(account_id, "u1"),
            uow.member_by_email(account_id, c.key("u1")),
            uow.invitations(account_id),
            uow.get_invitation(f"i-{account_id}"),
            uow.pending_invitation_for(account_id, "new@example.org"),
            uow.contacts(account_id),
            uow.get_contact(f"c-{account_id}"),
            uow.events(account_id, limit=100),
            uow.get_outbox(f"m-{account_id}"),
            uow.get_outbox(f"n-{account_id}"),
            [m for m in uow.outbox() if m.account_id == account_id],
            store.grant(account_id, "u1"),
            store.recipients(account_id, "billing"),
        )


class AccountDeletionContract:
    """``delete_account()`` takes every row of the account, and nothing of another's."""

    def test_every_row_of_the_account_goes(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        _fill(seeded)
        other = _everything(seeded, "acc2")
        assert other[1]  # filled: the members, and the invitation's mail
        assert other[10] is not None
        with seeded.begin() as uow:
            counts = _deleter(uow)("acc1")
            uow.commit()
        # The owner and u1; the invitation; the contact; the invitation's mail and a
        # sent notification; the event.
        assert counts == {"members": 2, "invitations": 1, "contacts": 1, "messages": 2,
                          "events": 1}  # fmt: skip
        store = reopen(seeded)
        assert _everything(store, "acc1") == (
            None, [], None, None, [], None, None, [], None, [], None, None, [], None, None,
        )  # fmt: skip
        assert _everything(store, "acc2") == other
        with store.read() as uow:
            assert [a.id for a in uow.accounts_for("u1")] == ["acc2"]
            assert uow.accounts_for("owner") == []
            # The searches across accounts find nothing of it either.
            involving = uow.members_involving({"u1", "owner"}, ())
            assert {m.account_id for m in involving} == {"acc2"}
            found = uow.invitations_involving({"owner"}, {"new@example.org"})
            assert [i.id for i in found] == ["i-acc2"]
            assert uow.contacts_with({"c-acc1@example.org"}) == []
            assert {e.account_id for e in uow.events_with({"u1@example.org"})} == {"acc2"}
            assert [m.id for m in uow.outbox_with({"example.org"})] == ["m-acc2", "n-acc2"]

    def test_the_ids_and_addresses_are_free_again(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        # No unique key, index or reference of the deleted rows is left behind.
        _fill(seeded)
        with seeded.begin() as uow:
            _deleter(uow)("acc1")
            uow.commit()
        store = reopen(seeded)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_member(c.member("owner", role="owner", minute=0), c.key("owner"))
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_invitation(c.invitation("i-acc1"), "new@example.org")
            uow.add_contact(c.contact("c-acc1"), "c-acc1@example.org")
            uow.add_event(c.event("e-acc1"))
            uow.add_outbox(c.outbox("m-acc1"))
            uow.commit()
        store = reopen(store)
        with store.read() as uow:
            assert [m.user_id for m in uow.members("acc1")] == ["owner", "u1"]
            assert uow.pending_invitation_for("acc1", "new@example.org") is not None
            assert [x.id for x in uow.contacts("acc1")] == ["c-acc1"]
            assert [e.id for e in uow.events("acc1", limit=10)] == ["e-acc1"]
        assert store.recipients("acc1", "general") == [
            ("owner@example.org", "owner@example.org"),
            ("c-acc1@Example.org", "c-acc1@example.org"),
        ]

    def test_rolled_back_unless_committed(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        _fill(seeded)
        before = _everything(seeded, "acc1")
        with seeded.begin() as uow:
            assert _deleter(uow)("acc1")["members"] == 2
            assert uow.get_account("acc1") is None  # a unit sees its own writes
        store = reopen(seeded)
        assert _everything(store, "acc1") == before

    def test_no_such_account(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        _fill(seeded)
        before = (_everything(seeded, "acc1"), _everything(seeded, "acc2"))
        with seeded.begin() as uow:
            assert _deleter(uow)("acc3") == _NONE
            uow.commit()
        store = reopen(seeded)
        assert (_everything(store, "acc1"), _everything(store, "acc2")) == before

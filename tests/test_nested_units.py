"""Units of work nest on every backend: an inner unit opened before the outer one has
read or written anything is a savepoint of the outer transaction, which decides."""

from __future__ import annotations

from teamaccess._ports import Store
from teamaccess.testing import contract as c


def test_a_unit_nested_in_one_that_has_done_nothing_yet(store: Store) -> None:
    with store.begin() as outer:
        with store.read() as inner:
            assert inner.get_account("acc1") is None
        with store.begin() as inner:
            inner.add_account(c.account("acc2", owner="boss2"))
            # not committed: discarded, whatever the outer unit does
        outer.add_account(c.account())
        outer.commit()
    with store.read() as uow:
        assert uow.get_account("acc1") is not None
        assert uow.get_account("acc2") is None


def test_an_inner_commit_is_kept_with_the_outer_one(store: Store) -> None:
    with store.begin() as outer:
        with store.begin() as inner:
            inner.add_account(c.account())
            inner.commit()
        outer.commit()
    with store.read() as uow:
        assert uow.get_account("acc1") is not None

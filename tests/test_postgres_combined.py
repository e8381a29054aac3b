"""PostgresStore's combined reads take every lock the single reads they replace take.

The answers are the store contract's (testing/contract_reads.py); what only a server has
is the locking: each rule's read-then-write holds because writers of an account (and of
an address's mail) are serialised by advisory locks, so a combined read that skipped one
would let two processes pass the same check. Needs TEAMACCESS_TEST_POSTGRES.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from tests.conftest import drop_postgres_schema, postgres_conninfo, postgres_schema

from teamaccess import PermissionSet, PostgresStore
from teamaccess._backends.postgres_unit import PgUnitOfWork
from teamaccess.testing import contract as c

pytestmark = pytest.mark.postgres

SENDS = frozenset({"invitation.sent", "invitation.resent"})
SINCE = c.at(0) - timedelta(days=1)
#: Every lock key a use case's read could take here, and one nothing takes.
KEYS = ("acc1", "acc2", "to new@example.org", "to other@example.org", "user owner")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_conninfo(), schema=postgres_schema(tmp_path), max_size=3)
    with store.begin() as uow:
        uow.add_account(c.account())
        uow.add_account(c.account("acc2", owner="boss2"))
        owner = c.member("owner", role="owner", permissions=PermissionSet.all())
        uow.add_member(owner, c.key("owner"))
        uow.add_invitation(c.invitation("inv1"), "new@example.org")
        uow.add_outbox(
            c.outbox("m1", kind="invitation", message=None, invitation_id="inv1")
        )  # fmt: skip
        uow.commit()
    yield store
    store.close()
    drop_postgres_schema(tmp_path)


@pytest.fixture
def raw() -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        yield conn


def held(store: PostgresStore, raw: Any) -> set[str]:
    """The keys of KEYS another session cannot lock now (autocommit: a lock it gets is
    released when the statement ends)."""
    return {
        key
        for key in KEYS
        if not raw.execute(
            "SELECT pg_try_advisory_xact_lock(%s::integer, hashtext(%s))",
            (store._lock_space, key),
        ).fetchone()[0]
    }


Reads = Callable[[PgUnitOfWork], object]

#: Each combined read, and the single reads the service makes without it.
CASES: dict[str, tuple[Reads, Reads]] = {
    "account_member": (
        lambda u: u.account_member("acc1", "owner"),
        lambda u: (u.get_account("acc1"), u.get_member("acc1", "owner")),
    ),
    "address_in_use": (
        lambda u: u.address_in_use("acc1", "new@example.org"),
        lambda u: (
            u.member_by_email("acc1", "new@example.org"),
            u.pending_invitation_for("acc1", "new@example.org"),
        ),
    ),
    "send_marks": (
        lambda u: u.send_marks("acc1", SINCE, 3, "new@example.org", SINCE, 3),
        lambda u: (
            u.event_times("acc1", SENDS, SINCE),
            u.invitation_mail_times("new@example.org", SINCE),
        ),
    ),
    "invitation_and_inviter": (
        lambda u: u.invitation_and_inviter("inv1"),
        lambda u: (u.get_invitation("inv1"), u.get_member("acc1", "owner")),
    ),
    "cancel_outbox": (
        lambda u: u.cancel_outbox("inv1"),
        lambda u: [
            u.update_outbox(attrs.evolve(m, status="cancelled"))
            for m in u.outbox(status="pending", invitation_id="inv1")
        ],
    ),
    "update_outbox_sent": (
        lambda u: u.update_outbox_sent("m1", c.at(5)),
        lambda u: u.update_outbox(attrs.evolve(u.get_outbox("m1"), status="sent")),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_combined_read_holds_the_single_reads_locks(
    store: PostgresStore, raw: Any, name: str
) -> None:
    combined, single = CASES[name]
    found: dict[str, set[str]] = {}
    for label, reads in (("single", single), ("combined", combined)):
        with store.begin() as uow:
            reads(uow)  # type: ignore[arg-type]
            found[label] = held(store, raw)
        assert held(store, raw) == set()  # released when the unit ends
    assert found["single"], "the single reads take a lock"
    assert found["combined"] == found["single"]


def test_a_read_unit_takes_no_lock(store: PostgresStore, raw: Any) -> None:
    with store.read() as uow:
        uow.account_member("acc1", "owner")
        uow.invitation_and_inviter("inv1")
        uow.send_marks("acc1", SINCE, 1, "new@example.org", SINCE, 1)
        assert held(store, raw) == set()


def test_send_marks_after_one_of_its_locks_takes_the_other(store: PostgresStore, raw: Any) -> None:
    with store.begin() as uow:
        uow.get_account("acc1")
        uow.send_marks("acc1", SINCE, 1, "new@example.org", SINCE, 1)
        assert held(store, raw) == {"acc1", "to new@example.org"}
    with store.begin() as uow:
        uow.invitation_mail_times("new@example.org", SINCE)
        uow.send_marks("acc1", SINCE, 1, "new@example.org", SINCE, 1)
        assert held(store, raw) == {"acc1", "to new@example.org"}


def test_cancel_outbox_of_an_invitation_read_in_the_unit_locks_nothing_more(
    store: PostgresStore, raw: Any
) -> None:
    with store.begin() as uow:
        assert uow.get_invitation("inv1") is not None
        uow.cancel_outbox("inv1")
        assert held(store, raw) == {"acc1"}
        uow.commit()
    with store.read() as uow:
        assert [m.status for m in uow.outbox(invitation_id="inv1")] == ["cancelled"]


def test_the_stores_account_member_waits_for_no_writer(store: PostgresStore) -> None:
    answers: list[object] = []
    with store.begin() as uow:  # holds acc1's lock, uncommitted
        uow.get_account("acc1")
        uow.update_account(attrs.evolve(c.account(), name="Renamed"))
        thread = threading.Thread(
            target=lambda: answers.append(store.account_member("acc1", "owner"))
        )
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "account_member() waited for the account's writer"
    account, member = answers[0]  # type: ignore[misc]
    assert account == c.account()  # committed state only, not the rename
    assert member is not None
    assert member.user_id == "owner"

"""One address is one contact per account under concurrent writers too: the rule is a
read inside the write unit, not a unique index, so it holds only if writers of one
account are serialised (SQLite's BEGIN IMMEDIATE, PostgreSQL's account lock). Each
writer here has a store of its own, as separate processes would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
from tests.conftest import SECRET

from teamaccess import AlreadyContact, MemoryMailer, Store, TeamAccess

ROUNDS = 5


@pytest.fixture
def opened(store_factory: Callable[[], Store], backend: str) -> Callable[[], TeamAccess]:
    if backend == "memory":
        pytest.skip("one process's store: no second writer to race")
    return lambda: TeamAccess(store_factory(), MemoryMailer(), secret_key=SECRET)


def race(*calls: Callable[[], object]) -> list[BaseException]:
    """Run *calls* at once, each in a thread; what they raised."""
    barrier = threading.Barrier(len(calls))
    raised: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except Exception as exc:
            raised.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


def test_three_writers_add_one_address(opened: Callable[[], TeamAccess]) -> None:
    team = opened()
    account = team.create_account(name="M", owner_id="o", owner_email="o@example.org")
    writers = [opened() for _ in range(3)]
    for i in range(ROUNDS):
        add = [
            partial(writer.add_contact, account.id, actor_id="o", name="C",
                    email=f"c{i}@example.org", categories=["billing"])
            for writer in writers
        ]  # fmt: skip
        raised = race(*add)
        assert [type(exc) for exc in raised] == [AlreadyContact, AlreadyContact]
        assert [c.email for c in team.contacts(account.id)].count(f"c{i}@example.org") == 1


def test_a_change_of_address_and_an_add_of_it(opened: Callable[[], TeamAccess]) -> None:
    team = opened()
    account = team.create_account(name="M", owner_id="o", owner_email="o@example.org")
    changer, adder = opened(), opened()
    for i in range(ROUNDS):
        contact = team.add_contact(account.id, actor_id="o", name="C",
                                   email=f"old{i}@example.org", categories=["billing"])  # fmt: skip
        new = f"new{i}@example.org"
        raised = race(
            partial(changer.update_contact, contact.id, actor_id="o", email=new.upper()),
            partial(adder.add_contact, account.id, actor_id="o", name="D", email=new,
                    categories=["general"]),
        )  # fmt: skip
        assert [type(exc) for exc in raised] == [AlreadyContact]
        emails = [c.email.lower() for c in team.contacts(account.id)]
        assert emails.count(new) == 1

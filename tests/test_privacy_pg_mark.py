"""PostgreSQL: the erasure's mark must cover a transaction that wrote before it and commits
after the search before the unit, also when it wrote in savepoints (``join()``, a batch, a
nested unit). Its event's ``seq`` is below the newest at the mark (taken at insert), and
its rows' ``xmin`` is a subtransaction's xid, which the snapshot's list of running
transactions does not name."""

from __future__ import annotations

import pytest

from teamaccess import SYSTEM, Store
from teamaccess.testing import FrozenClock

from .conftest import postgres_conninfo
from .test_privacy_texts_unlocked import (
    PIA_EMAIL,
    Spy,
    build,
    every_account,
    make,
    names_her,
)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_host_transaction_in_savepoints_committed_in_between(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg  # here: the "postgres" extra may be missing, and the test skipped

    team = make(store, clock)
    _, fillers = build(team)
    host = psycopg.connect(postgres_conninfo())
    try:
        # The application's transaction: a contact naming her, written in a savepoint
        # and not committed yet.
        with store.join(host):  # type: ignore[attr-defined]
            team.add_contact(
                fillers[3], actor_id="f3", name="Late", email="late@y.example",
                categories=["general"], phone=f"ask {PIA_EMAIL}",
            )  # fmt: skip
        # Another write commits after it with a higher seq, before the erasure begins.
        team.add_contact(
            fillers[4], actor_id="f4", name="Plain", email="plain@y.example",
            categories=["general"],
        )  # fmt: skip
        spy = Spy(monkeypatch, store)
        # The application commits after the search before the unit, before the unit.
        spy.between = host.commit

        report = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM)
    finally:
        host.close()

    assert fillers[3] in spy.searched()
    assert report.texts_redacted == 3
    assert names_her(team, every_account(team)) == []

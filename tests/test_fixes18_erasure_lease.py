"""An erasure that cancels a waiting outbox row (mail from the erased person, which
cannot be rewritten) on PostgreSQL: a worker's claim of that row committed between the
erasure's read of the row and its write keeps its lease. (A claim takes no account lock,
only the row, FOR UPDATE SKIP LOCKED; the erasure reads the row under the account's lock
and wrote back every field it read, the old lease among them.)

The interleaving is forced on a real server: the worker's claim is left uncommitted, so
the erasure reads the row as it was before (READ COMMITTED) and its write waits for the
claim's row lock; the claim then commits and the write goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from teamaccess import SYSTEM, MemoryMailer, Store
from teamaccess.testing import FrozenClock

from .test_privacy import make
from .test_privacy18_erasure_writes import T0, admin, waiters

__all__ = ["admin"]  # a fixture, imported for pytest


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_claim_committed_meanwhile_keeps_its_lease(
    backend: str, store_factory: Callable[[], Store], admin: Any
) -> None:
    team = make(store_factory(), FrozenClock(T0), MemoryMailer(), delivery="queue",
                sender="pia@example.org")  # fmt: skip
    acc = team.create_account(name="B", owner_id="o", owner_email="o@example.org")
    team.notify(acc.id, "billing", subject="Invoice", text="Ask pia@example.org about it.")
    (row,) = team.pending_messages()
    lease = T0 + timedelta(minutes=11)

    worker_store = store_factory()
    claimed, go = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def worker() -> None:
        try:
            with worker_store.begin() as uow:
                got = uow.claim_outbox(now=T0 + timedelta(minutes=1), lease_until=lease, limit=5)
                results["claimed"] = [m.id for m in got]
                claimed.set()
                assert go.wait(30)
                uow.commit()
        except Exception as exc:  # pragma: no cover - reported below
            results["worker"] = exc
            claimed.set()

    def eraser() -> None:
        try:
            other = make(store_factory(), FrozenClock(T0 + timedelta(minutes=5)))
            results["erase"] = other.erase_person(email="pia@example.org", actor_id=SYSTEM)
        except Exception as exc:  # pragma: no cover - reported below
            results["erase"] = exc

    w = threading.Thread(target=worker)
    w.start()
    assert claimed.wait(30)
    assert results.get("claimed") == [row.id], results
    e = threading.Thread(target=eraser)
    e.start()
    deadline = time.monotonic() + 20
    while waiters(admin) < 1 and e.is_alive():
        assert time.monotonic() < deadline, "the erasure never waited for the claimed row"
        time.sleep(0.01)
    go.set()
    w.join(30)
    e.join(30)
    assert "worker" not in results, results
    report = results["erase"]
    assert type(report).__name__ == "ErasureReport", report
    assert report.messages_cancelled == 1  # type: ignore[attr-defined]
    with team._store.read() as uow:
        after = uow.get_outbox(row.id)
    assert after is not None
    assert after.status == "cancelled"
    assert after.message is None  # the copy named the person
    assert after.last_error is not None
    assert after.last_error.startswith("cancelled by an erasure")
    # The worker's claim stands: the lease it committed, not the one the erasure read.
    assert (after.leased_until, after.next_attempt_at) == (lease, lease)
    team.close()

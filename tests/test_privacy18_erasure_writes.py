"""erase_person() rewrites mail to others that names the person. On PostgreSQL it reads
those outbox rows without a lock (every account's, 500 at a time) and locks each row's
account only to write it; a delivery run recording a send or a failure in between must
not be undone by a write of the values the erasure read before. (On SQLite the erasure's
unit holds the write lock from its first read, so no writer can come between.)

The interleaving is made deterministic: a second store's unit holds the account's lock
(as a delivery run's record does) until the erasure waits for it, then records the
worker's outcome and commits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from teamaccess import SYSTEM, MemoryMailer, Store, TeamAccess
from teamaccess.testing import FrozenClock

from .test_privacy import make

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def waiters(admin: Any) -> int:
    """How many sessions wait for a lock another holds."""
    return int(admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0])


@pytest.fixture
def admin() -> Iterator[Any]:
    import psycopg

    from .conftest import postgres_conninfo

    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        yield conn


def erase_while_a_worker_records(
    store_factory: Callable[[], Store],
    admin: Any,
    team: TeamAccess,
    message_id: str,
    record: Callable[[Any], None],
) -> object:
    """Erase pia while another unit, which locked the row's account first, runs
    *record* on the row (a unit of work given) once the erasure waits for that lock."""
    worker_store = store_factory()
    locked, go = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def worker() -> None:
        try:
            with worker_store.begin() as uow:
                uow.get_outbox(message_id)  # takes the row's account lock, as _record() does
                locked.set()
                assert go.wait(30)
                record(uow)
                uow.commit()
        except Exception as exc:  # pragma: no cover - reported below
            results["worker"] = exc

    def eraser() -> None:
        try:
            other = make(store_factory(), FrozenClock(T0 + timedelta(minutes=5)))
            results["erase"] = other.erase_person(email="pia@example.org", actor_id=SYSTEM)
        except Exception as exc:  # pragma: no cover - reported below
            results["erase"] = exc

    w = threading.Thread(target=worker)
    w.start()
    assert locked.wait(30)
    e = threading.Thread(target=eraser)
    e.start()
    deadline = time.monotonic() + 20
    while waiters(admin) < 1 and e.is_alive():
        assert time.monotonic() < deadline, "the erasure never waited for the account"
        time.sleep(0.01)
    go.set()
    w.join(30)
    e.join(30)
    assert "worker" not in results, results
    return results["erase"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestErasureKeepsAWorkersRecord:
    """A record committed between the erasure's read of a row and its write stays."""

    def _mail(self, store_factory: Callable[[], Store], **kw: Any) -> tuple[TeamAccess, str]:
        team = make(store_factory(), FrozenClock(T0), MemoryMailer(), delivery="queue", **kw)
        acc = team.create_account(name="B", owner_id="o", owner_email="o@example.org")
        team.notify(acc.id, "billing", subject="Invoice", text="Ask pia@example.org about it.")
        (row,) = team.pending_messages()
        return team, row.id

    def test_a_failure_recorded_meanwhile_keeps_its_error(
        self, store_factory: Callable[[], Store], admin: Any
    ) -> None:
        team, msg = self._mail(store_factory)

        def failed(uow: Any) -> None:
            row = uow.get_outbox(msg)
            uow.update_outbox(
                attrs.evolve(row, attempts=1, last_error="451 greylisted, try later",
                             next_attempt_at=T0 + timedelta(minutes=10), leased_until=None)
            )  # fmt: skip

        report = erase_while_a_worker_records(store_factory, admin, team, msg, failed)
        assert type(report).__name__ == "ErasureReport", report
        assert report.messages_redacted == 1  # type: ignore[attr-defined]
        (row,) = team.pending_messages()
        assert (row.attempts, row.last_error) == (1, "451 greylisted, try later")
        assert row.message is not None
        assert b"pia@example.org" not in row.message
        assert b"[erased]" in row.message

    def test_a_send_recorded_meanwhile_stays_sent(
        self, store_factory: Callable[[], Store], admin: Any
    ) -> None:
        """The erasure would cancel the waiting mail (its sender is the person, so it
        cannot be rewritten); it went out meanwhile: it stays sent, its copy dropped."""
        team, msg = self._mail(store_factory, sender="pia@example.org")

        def sent(uow: Any) -> None:
            uow.update_outbox_sent(msg, T0 + timedelta(minutes=1))

        report = erase_while_a_worker_records(store_factory, admin, team, msg, sent)
        assert type(report).__name__ == "ErasureReport", report
        assert report.messages_cancelled == 0  # type: ignore[attr-defined]
        with team._store.read() as uow:
            row = uow.get_outbox(msg)
        assert row is not None
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0 + timedelta(minutes=1))
        assert row.message is None  # the stored copy named the person
        assert row.last_error is None

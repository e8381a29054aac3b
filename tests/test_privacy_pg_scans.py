"""PostgreSQL: what changed since an erasure's mark is read off every event's and
message's ``xmin``, a scan of the log and the outbox. An erasure asks up to four times
inside its unit; where no transaction ended since the mark or since the unit's last scan
(the snapshot is the same), the answer is known without reading the table, and the
unit's own events are named. Counted by the server: ``pg_stat_xact_user_tables`` holds
the current transaction's scans. Needs TEAMACCESS_TEST_POSTGRES."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, drop_postgres_schema, postgres_conninfo, prepare_postgres_schema

from teamaccess import MemoryMailer, PostgresStore, TeamAccess
from teamaccess._domain import AuditEvent, OutboxMessage

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """The erasure's store and another process's, on one schema."""
    schema = prepare_postgres_schema(tmp_path)
    mine = PostgresStore(postgres_conninfo(), schema=schema)
    other = PostgresStore(postgres_conninfo(), schema=schema)
    yield mine, other
    other.close()
    mine.close()
    drop_postgres_schema(tmp_path)


def _accounts(store: PostgresStore, n: int) -> list[str]:
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    return [
        team.create_account(name=f"A{i}", owner_id=f"o{i}", owner_email=f"o{i}@x.example").id
        for i in range(n)
    ]


def _event(account_id: str, n: int) -> AuditEvent:
    return AuditEvent(
        id=f"evt-scan-{n}", account_id=account_id, at=NOW, actor_id="o",
        action="contact.added", target="c", details={},
    )  # fmt: skip


def _mail(account_id: str, n: int, recipient: str) -> OutboxMessage:
    return OutboxMessage(
        id=f"mail-scan-{n}", account_id=account_id, kind="notification.billing",
        recipient=recipient, message_id=f"<{n}@x.example>", created_at=NOW,
        next_attempt_at=NOW, message=b"Subject: x\r\n\r\nx\r\n",
    )  # fmt: skip


def _commit(store: PostgresStore, *rows: AuditEvent | OutboxMessage) -> None:
    with store.begin() as uow:
        for row in rows:
            if isinstance(row, AuditEvent):
                uow.add_event(row)
            else:
                uow.add_outbox(row)
        uow.commit()


def _scans(uow: Any, table: str) -> int:
    """Sequential scans of *table* by the unit's connection not yet sent to the server's
    statistics (they are, at the earliest, when it is idle outside a transaction): the
    counts within a transaction only grow."""
    rows = uow._all(
        "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE schemaname = %s AND relname = %s",
        (uow._q.s.strip('"'), table),
    )
    return int(rows[0][0]) if rows else 0


class Scans:
    """The scans of the log and the outbox since the unit's first statement."""

    def __init__(self, uow: Any) -> None:
        self.uow = uow
        self.start = self.now(0, 0)

    def now(self, events: int = 0, outbox: int = 0) -> tuple[int, int]:
        return (_scans(self.uow, "events") - events, _scans(self.uow, "outbox") - outbox)

    def since(self) -> tuple[int, int]:
        return self.now(*self.start)


def _snapshot(uow: Any) -> str:
    return str(uow._all("SELECT pg_current_snapshot()::text", ())[0][0])


#: Any transaction of the server that ends (autovacuum's too) changes the snapshot, and a
#: scan is right then: an attempt where one did is made again.
ATTEMPTS = 20


def test_nothing_committed_since_the_mark_reads_neither_table(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    mine, other = stores
    a, b = _accounts(mine, 2)
    _commit(other, _mail(a, 1, "pia@example.org"))
    for _ in range(ATTEMPTS):
        with mine.read() as uow:
            mark = uow.event_mark()
        with mine.begin() as uow:
            counted = Scans(uow)
            for _ in range(3):
                assert uow.changed_accounts(mark) == set()
            assert uow.outbox_since({"pia@"}, mark) == []
            scans = counted.since()
            # the unit's own event, in an account it locked to write it, is named
            uow.add_event(_event(b, 1))
            assert uow.changed_accounts(mark) == {b}
            scans += counted.since()[:1]
            # the snapshot never returns to what it was: the mark's all along
            quiet = _snapshot(uow) == mark[4]  # type: ignore[index]
        if quiet:
            assert scans == (0, 0, 0)
            return
    pytest.fail("another transaction ended during every attempt")


def test_a_commit_in_between_is_read_once_and_again_after_the_next(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    mine, other = stores
    a, b, c = _accounts(mine, 3)
    with mine.read() as uow:
        mark = uow.event_mark()
    _commit(other, _event(a, 1), _mail(a, 1, "pia@example.org"))
    for n in range(ATTEMPTS):
        with mine.begin() as uow:
            counted = Scans(uow)
            assert uow.changed_accounts(mark) >= {a}
            assert [m.id for m in uow.outbox_since({"pia@"}, mark) or []] == ["mail-scan-1"]
            assert counted.since() == (1, 1)
            before = _snapshot(uow)
            assert uow.changed_accounts(mark) >= {a}
            again = counted.since()[0]
            # another process commits while the unit is open: read again, and named
            _commit(other, _event(b, 10 + n))
            assert uow.changed_accounts(mark) >= {a, b}
            after = _snapshot(uow)
            assert counted.since()[0] >= 2
            uow.add_event(_event(c, 100 + n))
            assert uow.changed_accounts(mark) >= {a, b, c}
            last = counted.since()[0]
            quiet = _snapshot(uow) == after
            uow.commit()
        if before == after:
            pytest.fail("the commit of another process did not change the snapshot")
        if quiet:
            assert (again, last) == (1, 2)
            break
    else:
        pytest.fail("another transaction ended during every attempt")
    # a mark of a later sitting is not taken for this one's
    with mine.read() as uow:
        later = uow.event_mark()
    with mine.begin() as uow:
        assert uow.changed_accounts(later) == set()
        assert uow.changed_accounts(mark) >= {a, b, c}

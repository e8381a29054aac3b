"""Attack round 18 on ``retry_waiting()`` over PostgreSQL: every account at once.

Without ``account_id`` it made every waiting row due in one transaction, holding the
rows, and then took each account's lock to write the account's ``mail.retried_now``
event. Every other writer takes an account's lock first and its rows after (a resend or
a revocation cancels the invitation's waiting mail), so one that held an account's lock
and reached for its waiting mail deadlocked with the retry: PostgreSQL failed one of the
two with a ``StorageError``. (With tens of thousands of accounts waiting, after a mail
outage, the one transaction also ran the server out of lock slots: "out of shared
memory".) Now each account is its own unit, its lock taken before its rows.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from tests.conftest import SECRET, drop_postgres_schema, postgres_conninfo, prepare_postgres_schema

from teamaccess import SYSTEM, DeliveryFailed, PermissionSet, PostgresStore, TeamAccess
from teamaccess.testing import FailingMailer

pytestmark = pytest.mark.postgres

ACCEPT = "https://panel.example.com/accept?token={token}"


def _waiting_for(conn: psycopg.Connection[Any], holder: int) -> bool:
    """Whether a session waits for a lock the session *holder* has."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid))",
        (holder,),
    ).fetchone()
    return bool(row and row[0])


def test_a_writer_holding_an_account_does_not_deadlock_the_retry(tmp_path: Path) -> None:
    conninfo = postgres_conninfo()
    schema = prepare_postgres_schema(tmp_path)
    vendor = PostgresStore(conninfo, schema=schema, max_size=2)
    panel = PostgresStore(conninfo, schema=schema, max_size=2)
    watcher = psycopg.connect(conninfo, autocommit=True)
    try:
        team = TeamAccess(vendor, FailingMailer(), secret_key=SECRET, accept_url=ACCEPT)
        ids = []
        for name in ("a", "b", "c"):
            account = team.create_account(
                name=name, owner_id=f"o-{name}", owner_email=f"{name}@example.org"
            )
            with pytest.raises(DeliveryFailed):  # the mail server is down: the mail waits
                team.invite(
                    account.id, actor_id=f"o-{name}", email=f"x@{name}.example.org",
                    permissions=PermissionSet.of("billing.view"),
                )  # fmt: skip
            ids.append(account.id)
        waiting = {m.account_id: m for m in team.pending_messages()}
        assert set(waiting) == set(ids)  # the first try failed: each waits its backoff
        target = ids[1]

        outcome: dict[str, Any] = {}

        def retry() -> None:
            try:
                outcome["made"] = team.retry_waiting(actor_id=SYSTEM)
            except Exception as exc:  # what the vendor's command would print
                outcome["error"] = exc

        # A writer of one account, as revoke_invitation() writes: its lock, then its mail.
        with panel.begin() as uow:
            assert uow.get_account(target) is not None  # takes the account's lock
            holder = uow._conn.info.backend_pid  # type: ignore[attr-defined]
            thread = threading.Thread(target=retry)
            thread.start()
            deadline = time.monotonic() + 20
            while not _waiting_for(watcher, holder) and time.monotonic() < deadline:
                time.sleep(0.01)  # until the retry waits for this account
            row = uow.get_outbox(waiting[target].id)
            assert row is not None
            uow.update_outbox(attrs.evolve(row, status="cancelled", leased_until=None))
            uow.commit()
        thread.join(30)
        assert "error" not in outcome, outcome.get("error")
        made = {m.account_id for m in outcome["made"]}
        assert made == set(ids) - {target}  # the cancelled one stays cancelled
        left = {m.account_id: m for m in team.pending_messages()}
        assert set(left) == made
        assert all(m.next_attempt_at <= team.now() for m in left.values())
    finally:
        watcher.close()
        vendor.close()
        panel.close()
        drop_postgres_schema(tmp_path)

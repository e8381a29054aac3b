"""``retry_waiting()`` for every account inside ``PostgresStore.join()``: each account's
unit is only a savepoint of the application's one transaction, which then holds every
waiting row and every account's lock until the application commits (the deadlock with a
writer that holds an account's lock and reaches for its mail, and the lock slots, that
the per-account units avoid outside a join). It is refused, saying what to do, and moves
nothing; for one account it runs inside the join as before."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from tests.conftest import SECRET, drop_postgres_schema, postgres_conninfo, prepare_postgres_schema

from teamaccess import (
    SYSTEM,
    DeliveryFailed,
    PermissionSet,
    PostgresStore,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer

pytestmark = pytest.mark.postgres


def test_every_account_is_refused_inside_a_join(tmp_path: Path) -> None:
    conninfo = postgres_conninfo()
    schema = prepare_postgres_schema(tmp_path)
    store = PostgresStore(conninfo, schema=schema, max_size=2)
    try:
        team = TeamAccess(store, FailingMailer(), secret_key=SECRET,
                          accept_url="https://panel.example.com/accept?token={token}")  # fmt: skip
        ids = []
        for name in ("a", "b"):
            account = team.create_account(
                name=name, owner_id=f"o-{name}", owner_email=f"{name}@example.org"
            )
            with pytest.raises(DeliveryFailed):  # the mail server is down: the mail waits
                team.invite(account.id, actor_id=f"o-{name}", email=f"x@{name}.example.org",
                            permissions=PermissionSet.of("billing.view"))  # fmt: skip
            ids.append(account.id)
        before = {m.id: m.next_attempt_at for m in team.pending_messages()}
        assert all(when > team.now() for when in before.values())  # waiting their backoff

        with psycopg.connect(conninfo) as conn, conn.transaction(), store.join(conn):
            with pytest.raises(ValidationError, match=r"inside store\.join\(\)") as caught:
                team.retry_waiting(actor_id=SYSTEM)
            assert "outside the join" in str(caught.value)
            assert "account_id=" in str(caught.value)
            made = team.retry_waiting(actor_id=SYSTEM, account_id=ids[0])
            assert [m.account_id for m in made] == [ids[0]]
        after = {m.account_id: m.next_attempt_at for m in team.pending_messages()}
        assert after[ids[0]] <= team.now()  # the one account's, committed with the join
        assert after[ids[1]] > team.now()  # the refused call moved nothing
    finally:
        store.close()
        drop_postgres_schema(tmp_path)

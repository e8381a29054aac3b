"""The erasure's search of others' free text before its write unit must not miss text a
concurrent transaction commits meanwhile: here a host's transaction (its units inside
``store.join()`` are savepoints, whose rows carry a subtransaction's id) that the
erasure's unit waits for, and that commits a contact naming the person in another
account. Needs TEAMACCESS_TEST_POSTGRES."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.conftest import SECRET, drop_postgres_schema, postgres_conninfo, prepare_postgres_schema

from teamaccess import SYSTEM, ErasureReport, MemoryMailer, PermissionSet, PostgresStore, TeamAccess

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_conninfo(), schema=prepare_postgres_schema(tmp_path))
    yield store
    store.close()
    drop_postgres_schema(tmp_path)


def test_text_a_joined_host_transaction_commits_during_the_erasure_is_erased(
    store: PostgresStore,
) -> None:
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    a = team.create_account(name="A", owner_id="oa", owner_email="oa@example.org").id
    b = team.create_account(name="B", owner_id="ob", owner_email="ob@example.org").id
    c = team.create_account(name="C", owner_id="oc", owner_email="oc@example.org").id
    inv = team.invite(
        a, actor_id="oa", email="pia@example.org", permissions=PermissionSet.of("billing.view")
    )
    assert inv.token is not None
    team.accept_invitation(inv.token, user_id="pia", email="pia@example.org")
    host = psycopg.connect(postgres_conninfo())
    admin = psycopg.connect(postgres_conninfo(), autocommit=True)
    done: list[ErasureReport | BaseException] = []

    def erase() -> None:
        try:
            done.append(team.erase_person(user_id="pia", actor_id=SYSTEM))
        except BaseException as exc:  # reported by the test thread
            done.append(exc)

    eraser = threading.Thread(target=erase)
    try:
        with host.transaction():
            with store.join(host):
                # Another account's contact that names her, not committed yet; and a
                # write in her account, whose lock the erasure's unit will wait for.
                team.add_contact(
                    b, actor_id="ob", name="Forward to pia@example.org",
                    email="office@example.org", categories=["billing"],
                )  # fmt: skip
                team.add_contact(
                    a, actor_id="oa", name="Desk", email="desk@example.org",
                    categories=["billing"],
                )  # fmt: skip
            # Meanwhile another process commits a change with a later number.
            team.add_contact(
                c, actor_id="oc", name="Other", email="other@example.org", categories=["billing"]
            )
            eraser.start()
            for _ in range(200):  # until the erasure's unit waits for the host's lock
                waiting = admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                row = waiting.fetchone()
                if row is not None and row[0] > 0:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the erasure did not wait for the host's transaction")
        eraser.join(30)
    finally:
        host.close()
        admin.close()
    assert len(done) == 1
    report = done[0]
    assert isinstance(report, ErasureReport), report
    assert [x.name for x in team.contacts(b)] == ["Forward to [erased]"]
    assert report.texts_redacted == 1

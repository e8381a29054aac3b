"""PostgresStore: a write that fails inside ``deferred()`` (sent in one pipeline with the
writes after it) fails as it did alone, leaves nothing written, and the pool's one
connection serves the next call. Needs TEAMACCESS_TEST_POSTGRES."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from tests.conftest import SECRET, START, postgres_conninfo

from teamaccess import (
    AlreadyMember,
    Conflict,
    MemoryMailer,
    OutboxMessage,
    PermissionSet,
    PostgresStore,
    StorageError,
    TeamAccess,
)
from teamaccess.testing import FrozenClock
from teamaccess.testing import contract as c

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
    with store.begin() as uow:
        uow.add_account(c.account())
        uow.add_member(c.member("owner", role="owner"), c.key("owner"))
        uow.commit()
    yield store
    store.close()


def outbox_row(message_id: str, invitation_id: str) -> OutboxMessage:
    return OutboxMessage(id=message_id, account_id="acc1", kind="invitation",
                         recipient="new@example.org", message_id=f"<{message_id}@x>",
                         created_at=START, next_attempt_at=START, message=b"x",
                         invitation_id=invitation_id)  # fmt: skip


def nothing_but(store: PostgresStore, invitations: list[str]) -> None:
    with store.read() as uow:
        assert [i.id for i in uow.invitations("acc1")] == invitations
        assert uow.outbox() == []


def test_a_conflict_first_in_the_block_is_raised_and_nothing_after_it_stays(
    store: PostgresStore, pipelined: bool
) -> None:
    with store.begin() as uow:
        uow.add_invitation(c.invitation("inv1"), "new@example.org")
        uow.commit()

    def unit() -> None:
        with store.begin() as uow:
            with uow.deferred():
                uow.add_invitation(c.invitation("inv1", "other@example.org"), "other@example.org")
                uow.add_outbox(outbox_row("msg1", "inv1"))
            uow.commit()

    with pytest.raises(Conflict):
        unit()
    nothing_but(store, ["inv1"])
    with store.begin() as uow:  # the one connection is usable
        uow.add_invitation(c.invitation("inv2", "other@example.org"), "other@example.org")
        uow.commit()
    nothing_but(store, ["inv1", "inv2"])


def test_a_connection_killed_before_the_block_ends(store: PostgresStore, pipelined: bool) -> None:

    def unit(other: psycopg.Connection[object]) -> None:
        with store.begin() as uow:
            uow.get_invitation("inv0")  # the unit has begun
            with uow.deferred():
                uow.add_invitation(c.invitation("inv1"), "new@example.org")
                uow.add_outbox(outbox_row("msg1", "inv1"))
                pid = uow._conn.info.backend_pid
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            uow.commit()

    with (
        psycopg.connect(postgres_conninfo(), autocommit=True) as other,
        pytest.raises(StorageError, match="lost its connection"),
    ):
        unit(other)
    nothing_but(store, [])
    with store.begin() as uow:
        uow.add_invitation(c.invitation("inv1"), "new@example.org")
        uow.commit()
    nothing_but(store, ["inv1"])


def test_text_no_row_can_hold_after_a_deferred_write(store: PostgresStore, pipelined: bool) -> None:

    def unit() -> None:
        with store.begin() as uow:
            with uow.deferred():
                uow.add_invitation(c.invitation("inv1"), "new@example.org")
                uow.add_outbox(outbox_row("msg\x001", "inv1"))
            uow.commit()

    with pytest.raises(StorageError, match="NUL"):
        unit()
    nothing_but(store, [])


def test_accepting_into_an_account_one_is_in_already(schema: str, pipelined: bool) -> None:
    store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START),
                      require_email_match=False)  # fmt: skip
    acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
    P = PermissionSet.of
    first = team.invite(acc.id, actor_id="owner", email="a@example.org", permissions=P())
    second = team.invite(acc.id, actor_id="owner", email="b@example.org", permissions=P())
    assert first.token is not None
    assert second.token is not None
    team.accept_invitation(first.token, user_id="u1", email="a@example.org")
    events = len(team.audit_log(acc.id))
    with pytest.raises(AlreadyMember, match="already a member of this account"):
        team.accept_invitation(second.token, user_id="u1", email="b@example.org")
    assert [i.id for i in team.pending_invitations(acc.id)] == [second.id]
    assert len(team.audit_log(acc.id)) == events
    # the link still works for someone else
    team.accept_invitation(second.token, user_id="u2", email="b@example.org")
    assert sorted(m.user_id for m in team.members(acc.id)) == ["owner", "u1", "u2"]
    team.close()

"""PostgresStore sends a unit's BEGIN and its locks with the statement that needs them,
and the writes of a ``deferred()`` block together.

What is counted is what went over the wire: libpq's own trace of the protocol messages
(``PQtrace``), one ``ReadyForQuery`` from the server per round trip. The rest checks
that sending statements together changes nothing else: a lock that times out fails as
it did alone, and leaves nothing written. Needs TEAMACCESS_TEST_POSTGRES.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest
from tests.conftest import SECRET, START, postgres_conninfo

from teamaccess import (
    Conflict,
    MemoryMailer,
    PermissionSet,
    PostgresStore,
    StorageError,
    TeamAccess,
)
from teamaccess.testing import FrozenClock
from teamaccess.testing import contract as c

pytestmark = pytest.mark.postgres


class Wire:
    """libpq's trace of every connection of a pool, and what it says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("w")
        self._conns: list[Any] = []

    def configure(self, conn: Any) -> None:
        self._conns.append(conn)
        self._start(conn)

    def _start(self, conn: Any) -> None:
        from psycopg import pq

        conn.pgconn.trace(self._file.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def messages(self) -> list[str]:
        """Every message so far, ``F`` (sent) or ``B`` (received) and its type."""
        for conn in self._conns:
            if not conn.closed:  # PQuntrace flushes libpq's buffer; then trace on
                conn.pgconn.untrace()
                self._start(conn)
        return [
            f"{line.split(chr(9))[0]} {line.split(chr(9))[2]}"
            for line in self.path.read_text().splitlines()
            if line.count("\t") >= 2
        ]

    def close(self) -> None:
        self._file.close()


def counts(messages: list[str]) -> tuple[int, int]:
    """(round trips, statements): the server's ``ReadyForQuery`` answers, and the
    statements sent (``Parse`` of the extended protocol, ``Query`` of the simple one)."""
    trips = messages.count("B ReadyForQuery")
    return trips, messages.count("F Parse") + messages.count("F Query")


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
def test_invite_and_accept_round_trips(tmp_path: Path, schema: str, pipelined: bool) -> None:
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    # the store's own pool's settings (autocommit, no prepared statements), traced
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="A", owner_id="boss", owner_email="b@example.org")
        perms = PermissionSet.of("billing.view")
        found = []
        for k in range(3):
            before = counts(wire.messages())
            inv = team.invite(account.id, actor_id="boss", email=f"n{k}@example.org",
                              permissions=perms)  # fmt: skip
            invited = counts(wire.messages())
            assert inv.token is not None
            team.accept_invitation(inv.token, user_id=f"u{k}", email=f"n{k}@example.org")
            accepted = counts(wire.messages())
            found.append(
                (
                    (invited[0] - before[0], invited[1] - before[1]),
                    (accepted[0] - invited[0], accepted[1] - invited[1]),
                )
            )
        team.close()
    wire.close()
    # (round trips, statements) of the invite (with the mail's sent record), then of
    # the accept. Before the pipeline they were 15 and 8 round trips, one per statement
    # (the relaxed unit's BEGIN and SET LOCAL were one string; a pipeline takes no
    # string of several statements, so they are two now). Pipelined: the BEGIN and the
    # locks ride with the statement that needs them, and the invite's three inserts (the
    # accept's four writes) go together (DeferredWrites). The invite's mail is read back
    # before its send (one autocommit statement, outbox_row()), so that a deletion
    # committed in between stops it: 8 and 16 before.
    if pipelined:
        assert found == [((9, 17), (3, 8))] * 3
    else:
        assert found == [((17, 17), (8, 8))] * 3


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    from psycopg_pool import ConnectionPool

    # A lock the unit cannot get within 200 ms fails with the server's lock timeout.
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=2,
        kwargs={"autocommit": True, "options": "-c lock_timeout=200"}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.add_member(c.member("owner", role="owner"), c.key("owner"))
            uow.commit()
        yield store


def test_a_statement_timeout_is_named_for_what_it_is(schema: str) -> None:
    import psycopg
    from psycopg_pool import ConnectionPool

    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=2,
        kwargs={"autocommit": True, "options": "-c statement_timeout=200"}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_member(c.member("owner", role="owner"), c.key("owner"))
            uow.commit()
        with psycopg.connect(postgres_conninfo(), autocommit=True) as other:
            other.execute(
                "SELECT pg_advisory_lock(%s::integer, hashtext('acc1'))", (store._lock_space,)
            )
            with pytest.raises(StorageError) as caught, store.begin() as uow:
                uow.account_member("acc1", "owner")  # waits for the lock past the timeout
            other.execute(
                "SELECT pg_advisory_unlock(%s::integer, hashtext('acc1'))", (store._lock_space,)
            )
        store.close()
    message = str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
    assert "stopped waiting for a lock or a statement" in message
    assert "lost its connection" not in message


def test_a_lock_timeout_fails_the_read_and_leaves_nothing_written(
    store: PostgresStore, pipelined: bool
) -> None:
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as other:
        # another session holds acc1's lock (a session lock conflicts with the unit's)
        other.execute(
            "SELECT pg_advisory_lock(%s::integer, hashtext('acc1'))", (store._lock_space,)
        )

        def unit() -> None:
            with store.begin() as uow:
                uow.add_contact(c.contact("ct1", account_id="acc2"), "ct1@example.org")
                uow.account_member("acc1", "owner")  # its lock and its read, sent together
                uow.commit()

        with pytest.raises(StorageError) as caught:
            unit()
        other.execute(
            "SELECT pg_advisory_unlock(%s::integer, hashtext('acc1'))", (store._lock_space,)
        )
    message = str(caught.value)
    assert "lock timeout" in message
    assert "while running a query" in message
    # what happened, not "could not be reached or lost its connection"
    assert "stopped waiting for a lock or a statement" in message
    assert "lost its connection" not in message
    assert not isinstance(caught.value.__cause__, psycopg.errors.PipelineAborted)
    with store.read() as uow:
        assert uow.contacts("acc2") == []  # the unit's earlier write is gone
    with store.begin() as uow:  # the connection went back to the pool usable
        account, member = uow.account_member("acc1", "owner")
        assert account is not None
        assert member is not None


def test_an_id_no_row_can_hold_reads_nothing_after_a_lock(
    store: PostgresStore, pipelined: bool
) -> None:
    with store.begin() as uow:
        # the lock through the row and the read, both skipped: no such row
        assert uow.invitation_and_inviter("inv\x00") == (None, None)
        assert uow.get_invitation("inv\ud800") is None
        # and the unit goes on
        account, _ = uow.account_member("acc1", "owner")
        assert account is not None
        uow.commit()


def test_a_nested_unit_sees_the_writes_a_deferred_block_queued(store: PostgresStore) -> None:
    with store.begin() as uow, uow.deferred():
        uow.add_member(c.member("u1", permissions=PermissionSet.of("billing.view")), c.key("u1"))
        # the store's own reads inside a unit run in a nested unit on the same connection
        assert store.grant("acc1", "u1") == (PermissionSet.of("billing.view"), None)
        assert store.account_member("acc1", "u1")[1] is not None
        uow.add_member(c.member("u1"), c.key("u1"))  # taken: its error waits
        with pytest.raises(Conflict):  # and comes out before the nested unit starts
            store.grant("acc1", "u1")


def locks_held(store: PostgresStore, raw: Any, keys: tuple[str, ...]) -> set[str]:
    """The keys of *keys* whose advisory lock another session cannot take now (in
    autocommit, a lock it gets is released when its statement ends)."""
    return {
        key
        for key in keys
        if not raw.execute(
            "SELECT pg_try_advisory_xact_lock(%s::integer, hashtext(%s))",
            (store._lock_space, key),
        ).fetchone()[0]
    }


def test_a_lock_queued_behind_a_statement_that_never_went_is_taken_on_next_use(
    store: PostgresStore, pipelined: bool
) -> None:
    """psycopg refuses a write's argument before sending it: the lock queued behind the
    write was never sent either, and the unit does not count it as held."""
    import psycopg

    def two_writes(uow: Any) -> None:
        with uow.deferred():
            uow.add_contact(c.contact("ct1"), "ct1\x00@example.org")  # psycopg refuses NUL
            uow.add_contact(c.contact("ct2", account_id="acc2"), "ct2@example.org")

    with psycopg.connect(postgres_conninfo(), autocommit=True) as raw, store.begin() as uow:
        uow.get_account("acc1")  # the unit has begun and holds acc1's lock
        with pytest.raises(StorageError, match="NUL character"):
            two_writes(uow)
        assert locks_held(store, raw, ("acc1", "acc2")) == {"acc1"}
        # The same unit goes on: its next use of acc2 takes acc2's lock, and writes.
        uow.add_contact(c.contact("ct2", account_id="acc2"), "ct2@example.org")
        assert locks_held(store, raw, ("acc1", "acc2")) == {"acc1", "acc2"}
        uow.commit()
    with store.read() as uow:
        assert [x.id for x in uow.contacts("acc2")] == ["ct2"]
        assert uow.contacts("acc1") == []


@pytest.mark.parametrize("noticed", [False, True], ids=["unnoticed", "noticed"])
def test_a_transaction_begun_on_a_killed_connection_goes_again(
    store: PostgresStore, pipelined: bool, noticed: bool
) -> None:
    """The backend is gone before the unit's first statement: nothing of the unit reached
    a server that could commit it, so its first round trip goes again on a fresh
    connection, whether psycopg learns of the loss from the server's answer or knew it
    already (the connection closed before the first statement could be sent)."""
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as other, store.begin() as uow:
        conn = uow._conn
        killed = conn.info.backend_pid
        other.execute("SELECT pg_terminate_backend(%s)", (killed,))
        if noticed:
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
            assert conn.closed
        assert uow.get_account("acc1") is not None
        assert uow._conn is not conn
        assert uow._conn.info.backend_pid != killed
        uow.add_contact(c.contact("ct1"), "ct1@example.org")
        uow.commit()
    with store.read() as uow:
        assert [x.id for x in uow.contacts("acc1")] == ["ct1"]


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
def test_resend_revoke_and_decline_round_trips(
    tmp_path: Path, schema: str, pipelined: bool
) -> None:
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="A", owner_id="boss", owner_email="b@example.org")
        perms = PermissionSet.of("billing.view")
        found: dict[str, list[tuple[int, int]]] = {"resend": [], "revoke": [], "decline": []}

        def count(name: str, call: Callable[[], object]) -> None:
            before = counts(wire.messages())
            call()
            after = counts(wire.messages())
            found[name].append((after[0] - before[0], after[1] - before[1]))

        for k in range(2):
            inv = team.invite(account.id, actor_id="boss", email=f"r{k}@example.org",
                              permissions=perms)  # fmt: skip
            count("resend", lambda: team.resend_invitation(inv.id, actor_id="boss"))  # noqa: B023
            count("revoke", lambda: team.revoke_invitation(inv.id, actor_id="boss"))  # noqa: B023
            other = team.invite(account.id, actor_id="boss", email=f"d{k}@example.org",
                                permissions=perms)  # fmt: skip
            assert other.token is not None
            token = other.token
            count("decline", lambda: team.decline_invitation(token))  # noqa: B023
        statuses = {i.email: i.status for i in team.invitations(account.id)}
        team.close()
    wire.close()
    assert statuses == {"r0@example.org": "revoked", "r1@example.org": "revoked",
                        "d0@example.org": "declined", "d1@example.org": "declined"}  # fmt: skip
    # (round trips, statements). The resend's include its sent record (its own unit).
    # Before the writes were deferred: 13, 6 and 5 round trips. Now the resend's
    # invitation update, its outbox cancel and insert and its event go together, and so
    # do the invitation update, outbox cancel and event of a revoke or decline. A resend
    # or revoke by the inviter reads the invitation and the inviter's membership in one
    # statement, and takes the actor's from it (10 and 4 round trips before). The
    # resend's mail is read back before its send (8 and 17 before that).
    if pipelined:
        assert found == {"resend": [(9, 18)] * 2, "revoke": [(3, 7)] * 2,
                         "decline": [(3, 7)] * 2}  # fmt: skip
    else:
        assert found == {"resend": [(18, 18)] * 2, "revoke": [(7, 7)] * 2,
                         "decline": [(7, 7)] * 2}  # fmt: skip


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
def test_update_contact_takes_its_accounts_lock_once(tmp_path: Path, schema: str) -> None:
    """A unit whose first statement is update_contact() locks the contact's account with
    one statement (it took the same lock twice, by the row and by the account)."""
    import psycopg
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool, psycopg.connect(postgres_conninfo(), autocommit=True) as raw:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_contact(c.contact("ct1"), "ct1@example.org")
            uow.commit()
        changed = attrs.evolve(c.contact("ct1"), name="Renamed")
        with store.begin() as uow:
            before = counts(wire.messages())
            uow.update_contact(changed, "ct1@example.org")
            sent = counts(wire.messages())
            assert locks_held(store, raw, ("acc1", "acc2")) == {"acc1"}
            uow.commit()
        with store.read() as uow:
            assert uow.get_contact("ct1") == changed
        store.close()
    wire.close()
    # BEGIN, the account's lock and the update, in one round trip
    assert (sent[0] - before[0], sent[1] - before[1]) == (1, 3)

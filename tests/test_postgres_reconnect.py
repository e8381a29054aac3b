"""PostgresStore after the server closed its idle pooled connections (a restart, a
failover, ``pg_terminate_backend``): the next call works on the first try, on a fresh
connection, as long as nothing of it can have been committed; a connection lost in the
middle of a write still fails the call and leaves nothing half-written; inside the
host's transaction nothing is retried. And a storm of pool timeouts asks the server
"do you take a connection?" once, not once per call. Needs TEAMACCESS_TEST_POSTGRES.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.conftest import SECRET, START, postgres_conninfo

from teamaccess import MemoryMailer, PermissionSet, PostgresStore, StorageError, TeamAccess
from teamaccess._backends import postgres as pg_module
from teamaccess._backends.postgres_unit import PgUnitOfWork
from teamaccess.testing import FrozenClock
from teamaccess.testing import contract as c

pytestmark = pytest.mark.postgres

P = PermissionSet.of


class Server:
    """An admin connection that ends a store's sessions (found by their application name,
    the test's schema) and waits until the server has closed them."""

    def __init__(self, name: str) -> None:
        import psycopg

        self.name = name
        self.admin = psycopg.connect(postgres_conninfo(), autocommit=True)

    def sessions(self) -> list[int]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND application_name = %s",
            (self.name,),
        ).fetchall()
        return [r[0] for r in rows]

    def end(self, pids: list[int] | None = None) -> int:
        """End *pids* (default: every session of the store); how many were ended."""
        pids = self.sessions() if pids is None else pids
        for pid in pids:
            self.admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while set(pids) & set(self.sessions()):
            assert time.monotonic() < deadline, "the server did not end the sessions"
            time.sleep(0.01)
        return len(pids)

    def close(self) -> None:
        self.admin.close()


def named(schema: str) -> str:
    import psycopg.conninfo

    return psycopg.conninfo.make_conninfo(postgres_conninfo(), application_name=schema)


def fill(store: PostgresStore, n: int) -> None:
    """Leave *n* idle connections in the store's pool (n units open at once)."""
    barrier = threading.Barrier(n)

    def hold() -> None:
        with store.read() as uow:
            barrier.wait(10)
            uow.get_account("none")

    threads = [threading.Thread(target=hold) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def bad_returns(store: PostgresStore) -> int:
    """Connections given back to the pool dead: each one a call met and went around."""
    assert store._pool is not None
    return int(store._pool.get_stats().get("returns_bad", 0))


@pytest.fixture
def server(schema: str) -> Iterator[Server]:
    srv = Server(schema)
    yield srv
    srv.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def open_team(
    schema: str, mailer: MemoryMailer, clock: FrozenClock, *, delivery: str = "now"
) -> TeamAccess:
    store = PostgresStore(named(schema), schema=schema, max_size=3)
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=clock,
        delivery=delivery,  # type: ignore[arg-type]
        require_email_match=False,
    )


def test_every_kind_of_call_works_first_time_after_the_sessions_ended(
    schema: str, server: Server, clock: FrozenClock
) -> None:
    mailer = MemoryMailer()
    team = open_team(schema, mailer, clock)
    store = team.store
    assert isinstance(store, PostgresStore)
    try:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        team.add_contact(
            account.id, actor_id="owner", name="C", email="c@example.org", categories=["billing"]
        )
        met = 0

        def after_the_end(call: Callable[[], Any]) -> Any:
            nonlocal met
            fill(store, 3)
            assert server.end() == 3
            before = bad_returns(store)
            result = call()
            # the call met a dead connection, gave it back and went on with a live one
            assert bad_returns(store) == before + 1
            met += 1
            return result

        assert after_the_end(lambda: team.can("owner", account.id, "billing.view")) is True
        assert after_the_end(lambda: team.can("nobody", account.id, "billing.view")) is False
        inv = after_the_end(
            lambda: team.invite(
                account.id, actor_id="owner", email="new@example.org", permissions=P("billing.view")
            )
        )
        assert inv.token is not None
        assert len(mailer.outbox) == 1
        assert [m.role for m in after_the_end(lambda: team.members(account.id))] == ["owner"]
        assert after_the_end(lambda: team.recipients(account.id, "billing")) == [
            "o@example.org",
            "c@example.org",
        ]
        assert after_the_end(lambda: team.get_account(account.id)).name == "A"
        assert [i.id for i in after_the_end(lambda: team.pending_invitations(account.id))] == [
            inv.id
        ]
        member = after_the_end(
            lambda: team.accept_invitation(inv.token, user_id="new", email="new@example.org")
        )
        assert member.user_id == "new"
        assert after_the_end(lambda: team.can("new", account.id, "billing.view")) is True
        assert after_the_end(lambda: store.schema_version) >= 1
        assert met == 10
        # every mail once: the invitation's, and nothing else
        assert [str(m["To"]) for m in mailer.outbox] == ["new@example.org"]
        with store.read() as uow:
            assert [m.status for m in uow.outbox()] == ["sent"]
    finally:
        team.close()


def test_queued_delivery_after_the_sessions_ended_sends_each_message_once(
    schema: str, server: Server, clock: FrozenClock
) -> None:
    mailer = MemoryMailer()
    team = open_team(schema, mailer, clock, delivery="queue")
    store = team.store
    assert isinstance(store, PostgresStore)
    try:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        server.end()
        team.invite(account.id, actor_id="owner", email="a@example.org", permissions=P())
        team.notify(account.id, "billing", subject="Rechnung", text="Ihre Rechnung")
        assert mailer.outbox == []
        fill(store, 3)
        server.end()
        before = bad_returns(store)
        sent = team.deliver_pending()
        assert bad_returns(store) == before + 1
        assert sorted(r.status for r in sent) == ["sent", "sent"]
        server.end()
        assert team.deliver_pending() == []
        assert sorted(str(m["To"]) for m in mailer.outbox) == ["a@example.org", "o@example.org"]
    finally:
        team.close()


def test_a_connection_lost_in_the_middle_of_a_write_fails_it_and_nothing_is_written(
    schema: str, server: Server, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """invite() has read the account and the address under its locks when the server
    ends its session: nothing goes again (its reads were made under locks it no longer
    holds), the call fails, and neither an invitation nor a mail is left."""
    mailer = MemoryMailer()
    team = open_team(schema, mailer, clock)
    store = team.store
    assert isinstance(store, PostgresStore)
    real = PgUnitOfWork.add_outbox

    def add_outbox(uow: PgUnitOfWork, message: Any) -> None:
        server.end([uow._conn.info.backend_pid])
        real(uow, message)

    try:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        monkeypatch.setattr(PgUnitOfWork, "add_outbox", add_outbox)
        with pytest.raises(StorageError, match="lost its connection"):
            team.invite(account.id, actor_id="owner", email="new@example.org", permissions=P())
        monkeypatch.undo()
        assert mailer.outbox == []
        assert team.pending_invitations(account.id) == []
        with store.read() as uow:
            assert uow.outbox() == []
        assert [e.action for e in team.audit_log(account.id)] == ["account.created"]
        # the next call works
        team.invite(account.id, actor_id="owner", email="new@example.org", permissions=P())
        assert len(mailer.outbox) == 1
    finally:
        team.close()


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """psycopg's warnings, but the pool's: its note that it dropped a dead connection
    ("discarding closed connection") is how the pool tells an operator, and stays."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("psycopg") and not r.name.startswith("psycopg.pool")
    ]


@pytest.mark.parametrize("when", ["first", "later"])
def test_a_connection_lost_at_a_bulk_write_logs_nothing(
    schema: str,
    server: Server,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    when: str,
) -> None:
    """import_accounts()' pipelined bulk write meets a connection the server ended. As
    the unit's first round trip it goes again on a fresh connection and succeeds; after
    a read of the unit it fails with the store's own error and nothing is written. Either
    way psycopg logs nothing (it logged "error ignored terminating <psycopg.Pipeline
    [BAD]>" on leaving the pipeline executemany had opened for itself)."""
    team = open_team(schema, MemoryMailer(), clock)
    store = team.store
    assert isinstance(store, PostgresStore)
    real = PgUnitOfWork.add_many

    def add_many(uow: PgUnitOfWork, **rows: Any) -> None:
        if when == "later":
            uow.get_account("none")  # the unit's first round trip
        server.end([uow._conn.info.backend_pid])
        real(uow, **rows)

    rows = [
        {"name": f"Kunde {n}", "owner_id": f"owner{n}", "owner_email": f"chef{n}@example.org",
         "members": [{"user_id": f"u{n}", "email": f"u{n}@example.org",
                      "permissions": ["billing.view"]}]}
        for n in range(3)
    ]  # fmt: skip
    names = ["Kunde 0", "Kunde 1", "Kunde 2"]
    try:
        team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        monkeypatch.setattr(PgUnitOfWork, "add_many", add_many)
        caplog.set_level(logging.WARNING, logger="psycopg")
        if when == "first":
            assert [a.name for a in team.import_accounts(rows)] == names
            assert bad_returns(store) == 1
        else:
            with pytest.raises(StorageError, match=r"lost its connection.*writing rows"):
                team.import_accounts(rows)
            monkeypatch.undo()
            assert team.accounts_for("owner1") == []
            # the next call works, on a fresh connection
            assert [a.name for a in team.import_accounts(rows)] == names
        assert warnings(caplog) == []
    finally:
        team.close()


def test_a_commit_whose_connection_is_lost_is_not_sent_again(schema: str, server: Server) -> None:
    """The COMMIT went and its answer never came: it may have committed, so the unit
    fails and the store sends nothing again."""
    store = PostgresStore(named(schema), schema=schema, max_size=1)
    try:
        with store.begin() as uow:
            uow.add_account(c.account())  # the unit's first round trip
            assert uow.get_account("acc1") is not None
            server.end()
            with pytest.raises(StorageError, match="lost its connection"):
                uow.commit()
        assert bad_returns(store) == 1
        with store.read() as uow:
            assert uow.get_account("acc1") is None
    finally:
        store.close()


def test_inside_the_hosts_transaction_nothing_goes_again(
    schema: str, server: Server, clock: FrozenClock
) -> None:
    import psycopg

    mailer = MemoryMailer()
    team = open_team(schema, mailer, clock)
    store = team.store
    assert isinstance(store, PostgresStore)
    try:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        host = psycopg.connect(named(schema))  # not autocommit: the host's transaction
        try:
            with store.join(host):
                assert team.can("owner", account.id, "billing.view")
                server.end([host.info.backend_pid])
                with pytest.raises(StorageError, match="lost its connection"):
                    team.invite(account.id, actor_id="owner", email="n@example.org",
                                permissions=P())  # fmt: skip
                with pytest.raises(StorageError, match="lost its connection"):
                    team.can("owner", account.id, "billing.view")
            assert host.closed
        finally:
            host.close()
        assert bad_returns(store) == 0  # the store took none of its own connections
        assert team.pending_invitations(account.id) == []
        assert mailer.outbox == []
    finally:
        team.close()


def test_it_goes_again_once_only(schema: str, server: Server) -> None:
    """The fresh connection is dead too (the server keeps ending sessions): the call fails
    with the error of the lost connection, having tried twice, not forever."""
    from psycopg_pool import ConnectionPool

    armed = threading.Event()

    def configure(conn: Any) -> None:
        if armed.is_set():
            server.end([conn.info.backend_pid])

    with ConnectionPool(
        named(schema), min_size=1, max_size=1, configure=configure,
        kwargs={"autocommit": True}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        armed.set()
        server.end()
        with (
            pytest.raises(StorageError, match=r"lost its connection.*beginning the transaction"),
            store.read() as uow,
        ):
            uow.get_account(account.id)
        assert bad_returns(store) == 2
        with pytest.raises(StorageError, match=r"lost its connection.*looking up a permission"):
            team.can("owner", account.id, "billing.view")
        assert bad_returns(store) == 4
        armed.clear()
        server.end()
        assert team.can("owner", account.id, "billing.view")


class CountingConnection:
    """Makes the pool's connection class count the connections opened through it."""

    opened = 0


def counting_class() -> type[Any]:
    import psycopg

    class Counting(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            CountingConnection.opened += 1
            return super().connect(*args, **kwargs)

    return Counting


def test_a_storm_of_pool_timeouts_asks_the_server_once(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight calls time out together: one connection is tried to tell a pool too small
    from a server refusing connections, and its answer serves them all."""
    from psycopg_pool import ConnectionPool

    CountingConnection.opened = 0
    with ConnectionPool(
        named(schema), min_size=1, max_size=1, timeout=0.5, connection_class=counting_class(),
        kwargs={"autocommit": True}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        opened = CountingConnection.opened  # the pool's own one
        errors: list[str] = []
        start = threading.Barrier(9)

        def call(barrier: threading.Barrier | None = None) -> None:
            if barrier is not None:
                barrier.wait(10)
            try:
                team.can("owner", account.id, "billing.view")
            except StorageError as exc:
                errors.append(str(exc))

        def one_more() -> None:  # in a thread of its own: this one is inside a unit
            thread = threading.Thread(target=call)
            thread.start()
            thread.join(30)

        with store.read() as uow:  # holds the only connection
            uow.get_account(account.id)
            threads = [threading.Thread(target=call, args=(start,)) for _ in range(8)]
            for t in threads:
                t.start()
            start.wait(10)
            for t in threads:
                t.join(30)
            assert len(errors) == 8
            assert all("larger pool" in e for e in errors), errors
            assert CountingConnection.opened == opened + 1
            # within the next seconds, the answer stands
            one_more()
            assert len(errors) == 9
            assert CountingConnection.opened == opened + 1
            # once it is older than that, the server is asked again
            monkeypatch.setattr(pg_module, "_REFUSAL_KEPT", 0.0)
            one_more()
            assert len(errors) == 10
            assert "larger pool" in errors[-1]
            assert CountingConnection.opened == opened + 2


def test_a_store_opened_on_a_pool_whose_idle_connections_the_server_closed(
    schema: str, server: Server
) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(
        named(schema), min_size=2, max_size=2, kwargs={"autocommit": True}, open=True
    ) as pool:
        pool.wait()
        assert server.end() == 2
        store = PostgresStore(pool, schema=schema)
        assert bad_returns(store) == 1
        assert store.schema_version >= 1


def test_scrub_after_the_sessions_ended_works_first_time(schema: str, server: Server) -> None:
    """scrub() (a VACUUM, outside any transaction) meets a pooled connection the server
    closed: it goes again, once, on a fresh one (a VACUUM commits nothing a caller relies
    on), and the tables are vacuumed."""
    store = PostgresStore(named(schema), schema=schema, max_size=3)

    def vacuums() -> int:
        row = server.admin.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND relname = 'members'",
            (schema,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    try:
        fill(store, 3)
        assert server.end() == 3
        before, vacuumed = bad_returns(store), vacuums()
        store.scrub()
        assert bad_returns(store) == before + 1
        assert vacuums() == vacuumed + 1
        # and once more with nothing dead: one VACUUM, no retry
        store.scrub()
        assert bad_returns(store) == before + 1
        assert vacuums() == vacuumed + 2
    finally:
        store.close()

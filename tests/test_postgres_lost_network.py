"""PostgresStore against a network that goes away silently: its own connections carry TCP
keepalives (unless the connection string sets them), and a session that ends
mid-transaction frees its advisory locks so the next writer of the account proceeds.
Needs TEAMACCESS_TEST_POSTGRES.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import postgres_conninfo

from teamaccess import PostgresStore, StorageError

pytestmark = pytest.mark.postgres


def libpq_settings(store: PostgresStore) -> dict[str, str | None]:
    """The TCP settings libpq opened one of the store's pooled connections with."""
    assert store._pool is not None
    conn = store._pool.getconn()
    try:
        return {
            o.keyword.decode(): None if o.val is None else o.val.decode()
            for o in conn.pgconn.info
            if o.keyword.startswith((b"keepalives", b"tcp_user_timeout"))
        }
    finally:
        store._pool.putconn(conn)


def with_params(**params: str) -> str:
    import psycopg.conninfo

    return psycopg.conninfo.make_conninfo(postgres_conninfo(), **params)


def test_the_stores_own_connections_carry_tcp_keepalives(schema: str) -> None:
    store = PostgresStore(postgres_conninfo(), schema=schema)
    try:
        assert libpq_settings(store) == {
            "keepalives": "1",
            "keepalives_idle": "30",
            "keepalives_interval": "10",
            "keepalives_count": "3",
            "tcp_user_timeout": "60000",
        }
    finally:
        store.close()


@pytest.mark.parametrize("form", ["key-value", "url"])
def test_the_callers_own_tcp_settings_win(schema: str, form: str) -> None:
    base = postgres_conninfo()
    own = {"keepalives": "0", "keepalives_idle": "7", "tcp_user_timeout": "0"}
    if form == "url":
        assert base.startswith("postgresql://"), "the test server's URL form is needed here"
        conninfo = base + "".join(f"&{k}={v}" for k, v in own.items())
    else:
        conninfo = with_params(**own)
    store = PostgresStore(conninfo, schema=schema)
    try:
        assert libpq_settings(store) == {
            "keepalives": "0",
            "keepalives_idle": "7",
            "keepalives_interval": "10",  # not set by the caller: the store's default
            "keepalives_count": "3",
            "tcp_user_timeout": "0",
        }
    finally:
        store.close()


class Holder:
    """A thread whose unit of work locks account ``acct`` and then sits idle in its
    transaction, as a panel whose network went away would, until told to go on."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.locked = threading.Event()
        self.go_on = threading.Event()
        self.pid = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        assert self.locked.wait(10), "the holder did not take the lock"

    def run(self) -> None:
        try:
            with self.store.begin() as uow:
                uow.get_account("acct")  # takes the account's advisory lock
                self.pid = self.store._local.conn.info.backend_pid
                self.locked.set()
                self.go_on.wait(30)
                uow.get_account("acct")
                uow.commit()
        except BaseException as exc:
            self.error = exc
        finally:
            self.locked.set()

    def finish(self) -> BaseException | None:
        self.go_on.set()
        self.thread.join(10)
        return self.error


class Waiter:
    """A thread whose unit of work wants the same account's lock; when it got it."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.pid = 0
        self.started = threading.Event()
        self.done_at = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        assert self.started.wait(10)

    def run(self) -> None:
        try:
            with self.store.begin() as uow:
                self.pid = self.store._local.conn.info.backend_pid
                self.started.set()
                uow.get_account("acct")
                uow.commit()
            self.done_at = time.monotonic()
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()


@pytest.fixture
def admin() -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(postgres_conninfo(), autocommit=True)
    yield conn
    conn.close()


def wait_until_waiting_for_a_lock(admin: Any, pid: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        row = admin.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        assert time.monotonic() < deadline, "the waiter never waited for the lock"
        time.sleep(0.01)


def test_a_session_ended_mid_transaction_frees_its_lock_for_the_next_writer(
    schema: str, admin: Any
) -> None:
    # The session's end (pg_terminate_backend here; the server's own keepalives or
    # timeouts when a client's network is gone) frees the lock.
    store = PostgresStore(postgres_conninfo(), schema=schema)
    try:
        holder = Holder(store)
        waiter = Waiter(store)
        wait_until_waiting_for_a_lock(admin, waiter.pid)
        admin.execute("SELECT pg_terminate_backend(%s)", (holder.pid,))
        waiter.thread.join(10)
        assert not waiter.thread.is_alive(), "the next writer still waits"
        assert waiter.error is None
        error = holder.finish()
        # the holder's unit learns its session is gone: a clear error, nothing committed
        assert isinstance(error, StorageError), error
        assert "lost its connection" in str(error)
    finally:
        store.close()


def test_a_program_limit_is_a_clear_error_not_a_lost_connection(schema: str) -> None:
    """SQLSTATE class 54 (here 54000, an index row too long) is the input's fault: the
    same call fails the same way every time, so the message says so and the store keeps
    its connection (nothing goes again) and wrote nothing."""
    import secrets
    from datetime import UTC, datetime

    from teamaccess._domain import Account

    store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
    try:
        assert store._pool is not None
        before = store._pool.get_stats().get("returns_bad", 0)
        # random hex: the server cannot compress it below its index row limit (2704 bytes)
        huge = secrets.token_hex(4000)
        account = Account(
            id=huge, name="A", owner_id="o", owner_email="o@example.org",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )  # fmt: skip

        def add() -> None:
            with store.begin() as uow:
                uow.add_account(account)
                uow.commit()

        with pytest.raises(StorageError) as raised:
            add()
        text = str(raised.value)
        assert "past one of the server's limits" in text
        assert "do not retry" in text
        assert "lost its connection" not in text
        cause = raised.value.__cause__
        assert getattr(cause, "sqlstate", "").startswith("54"), cause
        # the connection was not taken for a lost one, and nothing was written
        assert store._pool.get_stats().get("returns_bad", 0) == before
        with store.read() as uow:
            assert uow.get_account(huge) is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("libpq", "has_user_timeout"), [(180006, True), (120000, True), (110022, False)]
)
def test_tcp_user_timeout_only_where_libpq_knows_it(libpq: int, has_user_timeout: bool) -> None:
    # libpq 11 and older refuse a connection string naming tcp_user_timeout; the store
    # leaves it out there and keeps the keepalives.
    import psycopg.conninfo

    from teamaccess._backends.postgres import _tcp_defaults

    defaults = _tcp_defaults(libpq)
    assert ("tcp_user_timeout" in defaults) is has_user_timeout
    assert defaults["keepalives"] == "1"
    assert "keepalives_idle" in psycopg.conninfo.conninfo_to_dict(
        psycopg.conninfo.make_conninfo("dbname=x", **defaults)
    )

# The schema name in the SQL below is checked against an identifier pattern in __init__;
# every value is a %s parameter.
# ruff: noqa: S608
"""The PostgreSQL backend: many application servers, one database, the same contract.

Design notes (the why, briefly):

- **One schema.** Every table lives in ``schema`` (default ``teamaccess``), named in each
  statement, so teamaccess sits beside the vendor's tables and needs no ``search_path``.
- **No session state.** Transactions are opened and closed by statements the store sends
  itself; settings are ``SET LOCAL``; locks are transaction-level advisory locks; the
  store's own pool turns prepared statements off (``prepare_threshold=None``). So every
  transaction may run on another server connection, as behind PgBouncer in transaction
  mode.
- **Writers serialised per account.** A writing unit takes
  ``pg_advisory_xact_lock(<schema>, hashtext(account_id))`` before its first read or
  write of an account's rows, and keeps it until it ends. Every rule of the service (single
  use of a token, the rate limit, one pending invitation per address) is a read-then-write
  inside one account, so it holds with any number of processes, while writers of different
  accounts never wait for each other. A row named by its own id (an invitation, contact or
  outbox message) is locked through its account first, then read, so what a unit reads is
  what it later writes over. A rule that spans accounts locks a key of its own the same
  way: ``to <address>`` (mail to one address) and ``user <id>`` (a writer reading a
  user's accounts, as the per-user account limit does).
- **Round trips.** A unit's ``BEGIN`` and its locks (and, inside ``deferred()``, its
  writes) are queued and sent with the next statement whose answer it needs, in
  psycopg's pipeline mode: one round trip, the statements still run one after the other
  (see postgres_pipe.py).
- **Reads.** ``read()`` is one ``REPEATABLE READ READ ONLY`` transaction (one snapshot);
  ``grant()``, ``recipients()`` and ``account_member()`` are single autocommit statements
  of committed state (``grant()`` reads the whole row in a second one for a suspended or
  ending member).
  Nothing is cached but the parsing of the stored permission text.
- **Versioned schema.** ``schema_info`` holds the version; opening applies what is missing
  in one transaction under ``pg_advisory_xact_lock``, so processes starting together
  migrate once. A newer version than this code knows is refused before anything is
  written.
- **Errors.** Every psycopg error becomes a ``StorageError`` naming the server and schema
  (never a password); a unique violation the matching ``Conflict``. A pooled connection
  the server closed while it was idle (a restart) is found by the first call that uses
  it, and that call goes again, once, on a fresh connection: a lone read, ``scrub()``'s
  ``VACUUM``, or a unit whose first round trip failed (its COMMIT is never in that one,
  so nothing was committed).
  A connection lost later in a unit fails the call; the pool is then checked so the next
  call gets a live one. No retry inside ``join()``: the transaction is the host's.
- **Joining the host's transaction.** Inside ``join(conn)`` every unit of this store in
  the calling thread is a savepoint on the vendor's connection; nothing is committed.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from .postgres_schema import NEEDS_EXTRA

try:
    import psycopg
except ModuleNotFoundError as exc:
    if exc.name != "psycopg":
        raise
    # The driver is an extra, not a dependency: say which one, not just the module's name.
    raise ModuleNotFoundError(NEEDS_EXTRA, name=exc.name) from exc
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from .._errors import StorageError, TeamAccessError, ValidationError
from .._permissions import PermissionSet
from .postgres_pipe import PgStatements, Row, lost
from .postgres_schema import MIGRATIONS, TABLES, Statements
from .postgres_unit import (
    PgUnitOfWork,
    account_member_of,
    grant_of,
    invitation_account_member_of,
    outbox_of,
    tuples,
    unstorable,
)

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from .._domain import Account, Invitation, Member, OutboxMessage

__all__ = ["MIGRATIONS", "PostgresStore"]

Connection = psycopg.Connection[Any]

_SCHEMA_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# How long, in seconds, the answer to "does the server take a new connection?" is kept:
# under a storm of pool timeouts, one direct connection per this many seconds, not one
# per timed-out call.
_REFUSAL_KEPT = 5.0
# libpq's TCP settings for the store's own connections, unless the connection string sets
# them: a server that vanishes without a word (a cut network, a crashed host, a failover
# behind a silent firewall) is found dead after about a minute, not after the kernel's
# defaults (two hours of silence for keepalives; some fifteen minutes of retransmission
# for a statement sent into the void), so a call waiting on it fails and the next one
# gets a fresh connection. Keepalives probe only while the connection is silent (a call
# waiting for a lock or an answer); tcp_user_timeout covers a statement the server never
# acknowledged. A long statement the server is working on is not cut short by either.
_TCP_DEFAULTS: Final = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


def _tcp_defaults(libpq: int) -> dict[str, str]:
    """:data:`_TCP_DEFAULTS` that the libpq of version *libpq* knows: ``tcp_user_timeout``
    came with libpq 12, and an older one refuses a connection string that names it."""
    if libpq >= 120000:
        return dict(_TCP_DEFAULTS)
    return {k: v for k, v in _TCP_DEFAULTS.items() if k != "tcp_user_timeout"}


def _end_read(conn: Connection) -> None:
    """End the transaction psycopg opened for a lone read on a connection of the
    application's pool that is not in autocommit mode (the pool would warn)."""
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.INTRANS:
        conn.rollback()


def _lock_space(schema: str) -> int:
    """The first key of the schema's account locks: a stable signed 32-bit number."""
    return zlib.crc32(f"teamaccess:{schema}".encode()) - 2**31


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _describe(conninfo: str) -> str:
    """Where the server is, without the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "the PostgreSQL server"
    host = str(params.get("host") or params.get("hostaddr") or "the default host")
    port = params.get("port")
    db = params.get("dbname")
    where = f"{host}:{port}" if port else host
    return f"PostgreSQL database {db!r} on {where}" if db else f"PostgreSQL on {where}"


# -- the store ----------------------------------------------------------------------------


#: every store of this process, for the fork handler below
_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _forked() -> None:
    """In a child process: the pool's connections are the parent's sockets. Two processes
    reading one socket hang, or take each other's answers (one child's can() read
    another's row), so the child gets none of them: its next call says what to do."""
    for store in list(_STORES):
        store._forked_from = store._pid
        # Kept, not closed: closing would end the parent's server sessions.
        store._inherited, store._pool = store._pool, None
        # Nor the connection of a unit (or join()) the forking thread had open: it is
        # the parent's too, and a unit's calls use it without asking the pool.
        store._local = threading.local()


os.register_at_fork(after_in_child=_forked)


class PostgresStore:
    """Every row in one PostgreSQL schema, shared by any number of processes and servers.

    *conninfo_or_pool* is a connection string (``"postgresql://app@db.internal/panel"`` or
    ``"host=... dbname=..."``), for which the store keeps its own pool of up to
    *max_size* connections, or a ``psycopg_pool.ConnectionPool`` the application already
    has (the store borrows connections from it and never closes it). *schema* is where
    the tables live; it is created and migrated on first use. *timeout* is how long, in
    seconds, a call waits for a free connection.

    Needs ``pip install 'teamaccess[postgres]'`` (psycopg 3 and psycopg-pool).
    """

    #: The schema version this store found and upgraded from when it opened: 0 for a
    #: database it created, None when it changed nothing (``teamaccess migrate`` says which).
    _migrated_from: int | None = None

    def __init__(
        self,
        conninfo_or_pool: str | ConnectionPool[Any],
        *,
        schema: str = "teamaccess",
        max_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise ValidationError(
                f"schema must be a plain PostgreSQL name (letters, digits and _, at most 63, "
                f"not starting with a digit) like 'teamaccess', not {schema!r}"
            )
        if schema.lower().startswith("pg_"):
            raise ValidationError(f"schema names starting with pg_ are PostgreSQL's: {schema!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValidationError(f"max_size must be a positive integer, not {max_size!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValidationError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.schema = schema
        self.timeout = float(timeout)
        self._lock_space = _lock_space(schema)
        self._local = threading.local()
        self._closed = False
        self._pid = os.getpid()
        #: the process that opened the store, once this one is a fork of it
        self._forked_from: int | None = None
        self._inherited: ConnectionPool[Any] | None = None
        # one refusal diagnosis at a time, and when the last one was made, and its answer
        self._refusal_lock = threading.Lock()
        self._refusal_answer: tuple[float, str | None] = (float("-inf"), None)
        # grant()'s cursor on each pool connection, reused: a new one per call cost about
        # 8 us of a can() of some 35 us on a local server. A connection is used by one
        # thread at a time, and so is its cursor.
        self._grant_cursors: dict[Connection, psycopg.Cursor[Any]] = {}
        self._sql = Statements(f'"{schema}"')
        try:
            from psycopg_pool import ConnectionPool
        except ModuleNotFoundError as exc:
            if exc.name != "psycopg_pool":
                raise
            # psycopg installed on its own (as its docs say): the pool is the extra's too.
            raise ModuleNotFoundError(NEEDS_EXTRA, name=exc.name) from exc

        _STORES.add(self)
        if isinstance(conninfo_or_pool, ConnectionPool):
            self._pool: ConnectionPool[Any] | None = conninfo_or_pool
            self._own_pool = False
            given = conninfo_or_pool.conninfo  # a string, or a function that makes one
            self._where = _describe(given if isinstance(given, str) else "")
            for again in (False, True):
                conn = self._getconn()
                try:
                    self._prepare(conn)
                    return
                except StorageError:
                    # An idle connection of the application's pool that the server had
                    # closed (a restart): once more on a fresh one. Preparing again is
                    # safe whatever was committed: it reads the version under its lock.
                    if again or not (conn.closed or conn.broken):
                        raise
                finally:
                    self._putconn(conn)
        if not isinstance(conninfo_or_pool, str):
            raise ValidationError(
                "PostgresStore takes a connection string like 'postgresql://user@host/db' or "
                f"a psycopg_pool.ConnectionPool, not {type(conninfo_or_pool).__name__}"
            )
        from psycopg.conninfo import conninfo_to_dict

        if "\x00" in conninfo_or_pool or not _encodes(conninfo_or_pool):
            # libpq reads a C string: it would connect to what comes before a NUL. And
            # a lone surrogate (a byte of an environment variable that is not UTF-8)
            # does not encode at all. Neither is shown: the text may hold the password.
            raise ValidationError(
                "the PostgreSQL connection string holds a NUL character or a lone "
                "surrogate (a byte that is not UTF-8, from the environment); pass one "
                "like 'postgresql://user@host/dbname' in plain UTF-8 text"
            )
        try:
            params = conninfo_to_dict(conninfo_or_pool)
        except psycopg.Error as exc:
            # libpq quotes the text it trips over, which may be the password or the
            # whole URL with it: the quoted parts are not shown.
            said = re.sub(r'"[^"]*"', '"(not shown)"', str(exc)).strip()
            said = said.replace(conninfo_or_pool, "(not shown)")
            if conninfo_or_pool.startswith(("postgresql:", "postgres:")):
                # A URL: its fix is in the URL (the command refuses the other form).
                hint = (
                    "write it as 'postgresql://user@host/dbname', with a '%', '@', '/', "
                    "'?' or '#' in the user or password written as %25, %40, %2F, %3F or %23"
                )
            else:
                hint = "pass one like 'postgresql://user@host/dbname' or 'host=... dbname=...'"
            raise ValidationError(f"not a PostgreSQL connection string ({said}); {hint}") from None
        if (
            conninfo_or_pool.startswith(("postgresql:", "postgres:"))
            and "user" not in params
            and "@" in str(params.get("dbname", ""))
        ):
            # A '/' in the password ends libpq's host part there: it reads the user as
            # the host, the password's start as the port and its rest as the database,
            # and every message would show them.
            raise ValidationError(
                "the postgresql:// URL's user or password holds a character the URL form "
                "takes as the end of the host ('/'); percent-encode it ('/' as %2F), or "
                "pass 'host=... dbname=... user=...' and the password in PGPASSWORD "
                "(the URL is not shown: it holds the password)"
            )
        self._where = _describe(conninfo_or_pool)
        self._own_pool = True
        # The TCP defaults, each unless the caller's connection string sets it.
        from psycopg.conninfo import make_conninfo

        defaults = _tcp_defaults(psycopg.pq.version())
        missing = {k: v for k, v in defaults.items() if k not in params}
        conninfo = make_conninfo(conninfo_or_pool, **missing) if missing else conninfo_or_pool
        # Opened directly first: a server that cannot be reached says why, where a pool
        # would only time out; and the migration needs one connection, not a pool. With
        # the caller's own connect_timeout, as the pool connects: overriding it here let
        # a value libpq refuses pass, and then every pooled connection failed unseen.
        wait: dict[str, Any] = {}
        if "connect_timeout" not in params:
            wait["connect_timeout"] = max(2, int(self.timeout))
        try:
            conn = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **wait)
        except psycopg.Error as exc:
            raise self._error(exc, "connecting") from exc
        try:
            self._prepare(conn)
        finally:
            conn.close()
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            timeout=self.timeout,
            # autocommit: the store sends BEGIN itself, and grant() is one round trip.
            # No prepared statements: they live in a server session, which PgBouncer in
            # transaction mode does not keep.
            kwargs={"autocommit": True, "prepare_threshold": None},
            name=f"teamaccess-{schema}",
            open=True,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"schema {self.schema!r}"
        return f"<PostgresStore {self._where} {state}>"

    def __reduce__(self) -> Any:
        # pickle (multiprocessing's spawn and forkserver) raised a bare TypeError about a
        # lock: the pool's connections are this process's sockets.
        raise StorageError(
            f"the PostgresStore of {self._where} cannot be sent to another process "
            "(pickled, as multiprocessing does with spawn or forkserver): its connections "
            "are this process's; pass the connection string, and open the store (build "
            "the TeamAccess) in that process"
        )

    # -- opening ------------------------------------------------------------------------

    def _header(self, conn: Connection) -> tuple[int | None, list[str]]:
        """The schema version (``None`` without ``schema_info``) and the schema's tables."""
        tables = [
            r[0]
            for r in tuples(conn)
            .execute(
                "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s "
                "AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                (self.schema,),
            )
            .fetchall()
        ]
        if "schema_info" not in tables:
            return None, tables
        row = tuples(conn).execute(self._sql.version).fetchone()
        return (0 if row is None else int(row[0])), tables

    def _classify(self, version: int | None, tables: list[str]) -> bool:
        """True if the schema needs migrating; refuses one that is not ours or too new."""
        where = f"schema {self.schema!r} of the {self._where}"
        if version is None:
            if tables:
                raise StorageError(
                    f"{where} holds tables teamaccess did not create ({', '.join(sorted(tables))}"
                    "); pass PostgresStore(..., schema=...) a new or empty schema "
                    "(nothing was changed)"
                )
            return True
        if version > len(MIGRATIONS):
            raise StorageError(
                f"{where} has teamaccess schema version {version}, but this teamaccess knows "
                f"only up to {len(MIGRATIONS)}; upgrade teamaccess (nothing was changed)"
            )
        if version == len(MIGRATIONS):
            missing = TABLES - set(tables)
            if missing:
                raise StorageError(
                    f"{where} lacks the tables {', '.join(sorted(missing))}; it is damaged "
                    "or was changed by hand - restore it from a backup"
                )
            return False
        return True

    def _prepare(self, conn: Connection) -> None:
        try:
            with self._transaction(conn, read=True):
                version, tables = self._header(conn)
            if self._classify(version, tables):
                with self._transaction(conn, read=False):
                    # Once per schema however many processes start together: the others
                    # wait here, then find the work done.
                    tuples(conn).execute(
                        "SELECT pg_advisory_xact_lock(%s::bigint)",
                        (self._lock_space * 2**32 + 0x7461,),
                    )
                    version, tables = self._header(conn)
                    migrating = self._classify(version, tables)
                    if migrating:
                        self._migrate(conn, version, bool(tables))
                if migrating:
                    self._migrated_from = version or 0
        except TeamAccessError:
            raise
        except psycopg.Error as exc:
            raise self._error(exc, "preparing its schema") from exc

    @contextmanager
    def _transaction(self, conn: Connection, *, read: bool) -> Iterator[None]:
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if read else "BEGIN"
        if conn.autocommit:
            tuples(conn).execute(begin)
        try:
            yield
        except BaseException:
            with suppress(psycopg.Error):
                if conn.autocommit:
                    tuples(conn).execute("ROLLBACK")
                else:
                    conn.rollback()
            raise
        if conn.autocommit:
            tuples(conn).execute("COMMIT")
        else:
            conn.commit()

    def _migrate(self, conn: Connection, version: int | None, schema_exists: bool) -> None:
        q = f'"{self.schema}"'
        if version is None:
            exists = (
                tuples(conn)
                .execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (self.schema,))
                .fetchone()
            )
            if exists is None and not schema_exists:
                tuples(conn).execute(f"CREATE SCHEMA {q}")
        start = version or 0
        for number in range(start, len(MIGRATIONS)):
            # One round trip per migration: parameterless statements may go together.
            tuples(conn).execute(";\n".join(MIGRATIONS[number]).replace("{s}", q).encode())
        tuples(conn).execute(
            f"INSERT INTO {q}.schema_info (one, version) VALUES (true, %s) "
            "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
            (len(MIGRATIONS),),
        )

    # -- errors and connections ---------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        """A ``StorageError`` that names the server and schema and says what to do."""
        from psycopg_pool import PoolClosed, PoolTimeout

        # libpq's messages run over several lines; an error stays one line.
        text = " ".join(str(exc).split()) or type(exc).__name__
        where = f"the teamaccess schema {self.schema!r} in the {self._where}"
        refusal = self._refusal() if isinstance(exc, PoolTimeout) else None
        if refusal is not None:
            # Not a pool too small (a larger one would make it worse): the pool could not
            # replace the connections it lost, and says only that it timed out.
            hint = (
                f"had no connection within {self.timeout} s, and the server refuses a new "
                f"one ({refusal}); check that it is up and accepts connections (its "
                "max_connections, a role's or database's CONNECTION LIMIT), then retry"
            )
        elif isinstance(exc, PoolTimeout):
            hint = (
                f"had no free connection within {self.timeout} s; retry, or give the store a "
                "larger pool (max_size=) or a longer timeout="
            )
        elif isinstance(exc, PoolClosed):
            hint = "is closed (its connection pool was closed); open a new PostgresStore"
        elif isinstance(exc, pg_errors.InsufficientPrivilege):
            hint = "refused this database user; grant it the rights on the schema"
        elif isinstance(exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure):
            hint = "met a concurrent transaction and gave up; retry"
        elif isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
            # psycopg counts both as OperationalError: not a lost connection, a wait cut
            # short by the server's lock_timeout or statement_timeout (or a cancel)
            hint = (
                "stopped waiting for a lock or a statement (the server's lock_timeout or "
                "statement_timeout, or a cancel); retry, or raise those settings on the "
                "connections the store uses"
            )
        elif isinstance(exc, pg_errors.DiskFull):
            # psycopg counts the server's own resource errors (class 53) and I/O errors
            # (58) as OperationalError too: the connection is fine, retrying at once is not.
            hint = (
                "is on a server whose disk is full; free space on the database server (its "
                "data or WAL volume), then retry"
            )
        elif isinstance(exc, psycopg.Error) and (exc.sqlstate or "")[:2] == "54":
            # A program limit (a value too long for an index, an expression too deep, too
            # many arguments): psycopg counts it as OperationalError, but the connection
            # is fine and the same call fails the same way every time; never retried.
            hint = (
                "refused a statement past one of the server's limits (a value too long for "
                "an index, too many items in one call, an expression too deep); nothing of "
                "it was written - shorten the values or split the call, do not retry as is"
            )
        elif isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "")[:2] in (
            "53",
            "58",
        ):
            hint = (
                "is on a server that ran out of a resource or failed to read or write its "
                "files (memory, a configured limit, an I/O error); check the server's log "
                "and resources, then retry"
            )
        elif isinstance(exc, psycopg.OperationalError) and doing == "connecting":
            hint = (
                "could not be reached; check the host, port, database name and user, and "
                "that the server is running"
            )
        elif isinstance(exc, psycopg.OperationalError):
            hint = (
                "could not be reached or lost its connection (a server restart or a network "
                "failure); retry - the next call opens a new connection"
            )
        elif unstorable(exc):
            hint = (
                "cannot hold text with a NUL character or a lone surrogate; decode the input "
                "as UTF-8 and drop NUL characters before passing it"
            )
        else:
            hint = "failed; check the server and retry"
        return StorageError(f"{where} {hint} (while {doing}: {text})")

    def _refusal(self) -> str | None:
        """Why the server refuses a new connection (a pool timed out), or ``None`` if it
        takes one: the pool only says it waited, so one connection is tried here.

        One at a time, and the answer is kept for ``_REFUSAL_KEPT`` seconds: when many
        calls time out together, the others wait for that one answer instead of each
        opening a connection to a server that may be short of them already."""
        with self._refusal_lock:
            at, answer = self._refusal_answer
            if time.monotonic() - at < _REFUSAL_KEPT:
                return answer
            answer = self._try_connecting()
            self._refusal_answer = (time.monotonic(), answer)
            return answer

    def _try_connecting(self) -> str | None:
        pool = self._pool
        conninfo = None if pool is None else pool.conninfo
        if pool is None or not isinstance(conninfo, str):
            return None
        try:
            given = pool.kwargs
            kwargs = dict((given() if callable(given) else given) or {})
            kwargs.setdefault("connect_timeout", max(2, int(self.timeout)))
            pool.connection_class.connect(conninfo, **kwargs).close()
        except psycopg.Error as exc:
            # libpq's text names the server, never the password.
            return " ".join(str(exc).split()) or type(exc).__name__
        except Exception:  # a connection_class or kwargs of the application's own
            return None
        return None

    def _fork_error(self) -> StorageError:
        return StorageError(
            f"the PostgresStore for schema {self.schema!r} was opened in process "
            f"{self._forked_from} and is used in process {os.getpid()}, a fork of it, "
            "whose connections are that process's; open the store (build the "
            "TeamAccess) in each process after the fork: in an app factory each worker "
            "calls, not at import time under gunicorn --preload (or in its post_fork "
            "hook; uWSGI: lazy-apps)"
        )

    def _getconn(self) -> Connection:
        pool = self._pool
        if self._forked_from is not None and not self._closed:
            raise self._fork_error()
        if self._closed or pool is None:
            raise StorageError(
                f"the PostgresStore for schema {self.schema!r} is closed; open a new one"
            )
        try:
            conn: Connection = pool.getconn()
        except psycopg.Error as exc:
            raise self._error(exc, "taking a connection from the pool") from exc
        return conn

    def _putconn(self, conn: Connection) -> None:
        if self._forked_from is not None:
            # The end, in a fork, of a unit open at the fork: the connection is the
            # parent's. Closing it would tell the server, over the parent's socket, to
            # end the parent's session (its transaction lost); dropped, psycopg leaves
            # it alone in a process that did not open it.
            return
        pool = self._pool
        if pool is None:  # closed meanwhile
            with suppress(psycopg.Error):
                conn.close()
            return
        dead = conn.broken or conn.closed
        with suppress(psycopg.Error):
            pool.putconn(conn)
        if dead:
            # The server went away (a restart): the other idle connections are dead too.
            # Checking them now means the next call gets a live one, not the next error.
            with suppress(psycopg.Error):
                pool.check()

    def _replace_connection(self, uow: PgStatements) -> None:
        """Give *uow* a fresh pooled connection for its own, which was found dead (see
        ``PgStatements._pipeline``); the dead one goes back to the pool, which drops it
        and checks the other idle ones."""
        local = self._local
        self._putconn(uow._conn)
        local.conn = None  # given back: the unit's end must not give it back again
        conn = self._getconn()
        uow._conn = local.conn = conn

    def _lone_read(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any], doing: str
    ) -> list[Row] | None:
        """The rows of one autocommit statement of committed state, or ``None`` for an
        argument no row can hold. A connection the server had closed (a restart) is
        replaced and the statement runs again, once: a read changes nothing."""
        for again in (False, True):
            conn = self._getconn()
            try:
                rows = tuples(conn).execute(sql, params).fetchall()
                _end_read(conn)
                return rows
            except (psycopg.Error, UnicodeEncodeError) as exc:
                if unstorable(exc):
                    return None
                if again or not lost(conn, exc):
                    raise self._error(exc, doing) from exc
            finally:
                self._putconn(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the Store protocol -------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The version of the schema in the database."""
        conn = self._joined()
        if conn is None:
            rows = self._lone_read(self._sql.version, (), "reading its schema version")
            row = rows[0] if rows else None
        else:
            try:
                row = tuples(conn).execute(self._sql.version).fetchone()
            except psycopg.Error as exc:
                raise self._error(exc, "reading its schema version") from exc
        return 0 if row is None else int(row[0])

    def _joined(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "conn", None)
        return conn

    def begin(self, *, durable: bool = True) -> AbstractContextManager[PgUnitOfWork]:
        return self._unit(write=True, relaxed=not durable)

    def read(self) -> AbstractContextManager[PgUnitOfWork]:
        return self._unit(write=False)

    @contextmanager
    def _unit(self, *, write: bool, relaxed: bool = False) -> Iterator[PgUnitOfWork]:
        local = self._local
        outer: Connection | None = getattr(local, "conn", None)
        if outer is not None:
            # Inside another unit of this store in this thread, or inside join(): a
            # savepoint on the same connection, sharing the outer transaction's fate.
            if self._closed:
                self._getconn()  # raises the "closed" error
            units: list[PgUnitOfWork] = getattr(local, "units", [])
            for open_unit in units:
                if not open_unit._open:
                    # An outer unit that has sent nothing yet: its BEGIN (or savepoint)
                    # goes first, or this unit's savepoint would have no transaction.
                    open_unit.start()
                # What the open units queued (writes in a deferred() block) goes first:
                # this unit's statements must see them.
                if open_unit._queued:
                    open_unit._flush()
                # The connection now carries more than the outer unit's own statements:
                # no retry of its first round trip on another one.
                open_unit._fresh = False
            # (the flush may have replaced a dead connection: the outer unit's one now)
            uow = PgUnitOfWork(self, local.conn, write=write, nested=True)
            local.units = [*units, uow]
            try:
                yield uow
            except BaseException:
                uow.rollback(quiet=True)
                raise
            finally:
                local.units = units
            uow.rollback(quiet=False)
            return
        conn = self._getconn()
        local.conn = conn
        try:
            uow = PgUnitOfWork(self, conn, write=write, nested=False, relaxed=relaxed)
            local.units = [uow]
            try:
                yield uow
            except BaseException:
                uow.rollback(quiet=True)
                raise
            uow.rollback(quiet=False)
        finally:
            # the unit's connection: a fresh one if the first was found dead, None if
            # that one went back to the pool and no other could be had
            held = local.conn
            local.conn = None
            local.units = []
            if held is not None:
                self._putconn(held)

    def grant(
        self, account_id: str, user_id: str, *, _again: bool = False
    ) -> tuple[PermissionSet, datetime | None] | None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return self._grant_on(conn, account_id, user_id)
        pool = self._pool
        if pool is None or self._closed:
            self._getconn()  # raises the "closed" error
            return None
        try:
            conn = pool.getconn()
        except psycopg.Error as exc:
            raise self._error(exc, "taking a connection from the pool") from exc
        try:
            cursor = self._grant_cursors.get(conn)
            if cursor is None:
                cursor = self._grant_cursor(conn)
            key = (account_id, user_id)
            row = cursor.execute(self._sql.grant, key).fetchone()
            if row is not None and row[0] is None:
                # Suspended, or access that ends: the whole row, in a statement of its own
                # (a later snapshot, of committed state all the same).
                row = cursor.execute(self._sql.grant_full, key).fetchone()
            if not conn.autocommit:
                _end_read(conn)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if unstorable(exc):
                # An id no row can hold names no member: MemoryStore's answer.
                return None
            if _again or not lost(conn, exc):
                raise self._error(exc, "looking up a permission") from exc
        else:
            return None if row is None else grant_of(row)
        finally:
            self._putconn(conn)
        # The pooled connection was one the server had closed (a restart): a read
        # changes nothing, so it goes again, once, on a fresh connection.
        return self.grant(account_id, user_id, _again=True)

    def _grant_cursor(self, conn: Connection) -> psycopg.Cursor[Any]:
        # Forget the cursors of connections the pool has closed (replaced, or broken).
        for old in list(self._grant_cursors):
            if old.closed:
                self._grant_cursors.pop(old, None)
        cursor = self._grant_cursors[conn] = tuples(conn)
        return cursor

    def _grant_on(
        self, conn: Connection, account_id: str, user_id: str
    ) -> tuple[PermissionSet, datetime | None] | None:
        key = (account_id, user_id)
        with self.read() as uow:
            row = uow._one(self._sql.grant, key, unstorable_is_none=True)
            if row is not None and row[0] is None:
                row = uow._one(self._sql.grant_full, key, unstorable_is_none=True)
        return None if row is None else grant_of(row)

    def recipients(self, account_id: str, category: str) -> list[tuple[str, str]] | None:
        """``(email, email_key)`` of the owner, then of each contact subscribed to
        *category*, oldest first; ``None`` if there is no such account. One statement,
        so one snapshot; never a cached answer."""
        if getattr(self._local, "conn", None) is not None:
            with self.read() as uow:
                rows = uow._all(self._sql.recipients, {"a": account_id, "c": category}, True)
        else:
            found = self._lone_read(
                self._sql.recipients, {"a": account_id, "c": category}, "looking up recipients"
            )
            if found is None:
                return None  # never stored, so no such account (see grant())
            rows = found
        if not rows:
            return None
        rows.sort(key=lambda r: (r[0], r[1]))  # owner first, then contacts by seq
        if rows[0][0] != 0:
            return None
        return [(r[2], r[3]) for r in rows]

    def account_member(self, account_id: str, user_id: str) -> tuple[Account | None, Member | None]:
        """The account and *user_id*'s membership in it, as a unit's ``account_member()``
        reads them: one autocommit statement of committed state, taking no lock (the
        optional ``CombinedReads`` capability of a store)."""
        if getattr(self._local, "conn", None) is not None:
            with self.read() as uow:
                return uow.account_member(account_id, user_id)
        rows = self._lone_read(
            self._sql.account_member, (user_id, account_id), "reading an account"
        )
        if rows is None:
            return None, None  # never stored, so no such account (see grant())
        return account_member_of(rows[0] if rows else None)

    def invitation_account_member(
        self, invitation_id: str, user_id: str
    ) -> tuple[Invitation | None, Account | None, Member | None]:
        """The invitation, its account and *user_id*'s membership there, as a unit's
        ``get_invitation()``, ``get_account()`` and ``get_member()`` read them: one
        autocommit statement of committed state, taking no lock (the optional
        ``CombinedReads`` capability of a store: the read before a resend's mail is
        rendered)."""
        if getattr(self._local, "conn", None) is not None:
            with self.read() as uow:
                inv = uow.get_invitation(invitation_id)
                if inv is None:
                    return None, None, None
                account, member = uow.account_member(inv.account_id, user_id)
                return inv, account, member
        rows = self._lone_read(
            self._sql.invitation_account_member, (user_id, invitation_id), "reading an invitation"
        )
        if rows is None:
            return None, None, None  # never stored, so no such invitation
        return invitation_account_member_of(rows[0] if rows else None)

    def outbox_row(self, message_id: str) -> OutboxMessage | None:
        """The outbox row as a unit's ``get_outbox()`` reads it: one autocommit
        statement of committed state, taking no lock (the optional ``CombinedReads``
        capability of a store: the read back of mail sent at once, before its send)."""
        if getattr(self._local, "conn", None) is not None:
            with self.read() as uow:
                return uow.get_outbox(message_id)
        rows = self._lone_read(self._sql.outbox_row, (message_id,), "reading an outbox row")
        return outbox_of(rows[0]) if rows else None

    @contextmanager
    def join(self, connection: Connection) -> Iterator[Connection]:
        """Run this store's units of work in the calling thread inside *connection*'s
        open transaction, as savepoints, committing nothing.

        *connection* is the application's ``psycopg.Connection``, inside a transaction
        (``with conn.transaction():``, or a connection that is not in autocommit mode).
        What the units write commits or rolls back with the application's transaction.
        While joined, ``TeamAccess`` sends no mail itself: the mail waits in the outbox
        for ``deliver_pending()`` (``in_host_transaction`` tells it so).
        """
        if not isinstance(connection, psycopg.Connection):
            raise ValidationError(
                f"join() takes a psycopg.Connection, not {type(connection).__name__}"
            )
        if self._closed:
            self._getconn()  # raises the "closed" error
        status = connection.info.transaction_status
        if status == TransactionStatus.INERROR:
            raise StorageError(
                "join(): the connection's transaction has failed already; roll it back first"
            )
        if status != TransactionStatus.INTRANS and (
            connection.autocommit or status != TransactionStatus.IDLE
        ):
            raise ValidationError(
                "join() needs a connection inside a transaction: call it within "
                "`with conn.transaction():`, or on a connection that is not in autocommit mode"
            )
        if getattr(self._local, "conn", None) is not None:
            raise ValidationError(
                "join() cannot start inside a unit of work or another join() of this store "
                "in the same thread"
            )
        self._local.conn = connection
        self._local.joined = True
        try:
            yield connection
        finally:
            self._local.conn = None
            self._local.joined = False

    @property
    def in_host_transaction(self) -> bool:
        """True in a thread inside :meth:`join`: a unit's commit is not a real commit yet,
        so ``TeamAccess`` leaves the mail it writes in the outbox."""
        return bool(getattr(self._local, "joined", False))

    def scrub(self) -> None:
        """``VACUUM`` the teamaccess tables, so the dead row versions an erasure left are
        removed from every table and index page.

        Plain ``VACUUM`` takes no lock that blocks reads or writes. It does not overwrite
        the freed space, nor the WAL and backups; docs/privacy.md says what does. Without
        truncating the empty pages at a table's end: that needs an exclusive lock, which
        VACUUM waits up to five seconds for while the table is in use, and which another
        scrub waiting for the table (two erasures or deletions at once) always denies
        (autovacuum truncates them later). Inside
        ``join()`` the erasure is not committed yet, so nothing is done: the host runs
        ``VACUUM`` after its transaction (autovacuum does, later, in any case).
        """
        if self.in_host_transaction:
            return
        if getattr(self._local, "conn", None) is not None:
            raise StorageError("scrub() cannot run inside a unit of work; call it after it")
        s = self._sql.s
        tables = ", ".join(
            f"{s}.{t}" for t in ("accounts", "members", "invitations", "contacts", "events",
                                 "outbox")
        )  # fmt: skip
        for again in (False, True):
            conn = self._getconn()
            autocommit = conn.autocommit
            try:
                conn.autocommit = True  # VACUUM cannot run inside a transaction block
                tuples(conn).execute(f"VACUUM (TRUNCATE false) {tables}")
                return
            except psycopg.Error as exc:
                # A pooled connection the server closed (a restart): once more on a fresh
                # one, like a lone read. A VACUUM commits nothing a caller relies on, and
                # running it twice is harmless.
                if again or not lost(conn, exc):
                    raise self._error(exc, "vacuuming its tables") from exc
            finally:
                with suppress(psycopg.Error):
                    conn.autocommit = autocommit
                self._putconn(conn)

    def close(self) -> None:
        """Close the store's own pool (never one it was given). Safe to call twice."""
        self._closed = True
        self._grant_cursors.clear()
        pool, self._pool = self._pool, None
        if pool is not None and self._own_pool:
            try:
                pool.close()
            except psycopg.Error as exc:
                raise self._error(exc, "closing it") from exc

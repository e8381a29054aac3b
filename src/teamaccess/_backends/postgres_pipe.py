"""How a PostgreSQL unit of work sends its statements: queued ones ride along.

A statement whose answer nothing waits for (the unit's ``BEGIN``, an advisory lock, and
inside ``deferred()`` a write) is queued, and goes to the server with the next statement
whose answer is needed, in psycopg's pipeline mode: one round trip. The server still runs
them one after the other, each as if sent alone, so a read after a lock reads what the
lock's last holder committed; the first that fails raises the error it raises alone, and
the server skips the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .postgres_schema import Statements

__all__ = ["Params", "PgStatements", "Row", "lost", "many", "tuples", "unstorable"]

Row = tuple[Any, ...]
Params = tuple[Any, ...] | list[Any] | dict[str, Any]
Then = Callable[["psycopg.Cursor[Any]"], None]
# A statement that can wait: its SQL, its parameters, what it is doing (for the error),
# whether an argument no row can hold makes it a no-op (as a read of such a key finds
# nothing), what to do with its cursor once the answer is in, and the advisory lock keys
# it takes (held once the server has answered it).
_Step = tuple[str, Params | None, str, bool, Then | None, tuple[str, ...]]

# Pipeline mode needs libpq 14 or later (psycopg[binary] bundles one); with an older
# libpq the queued statements go one round trip each.
_PIPELINE = psycopg.Pipeline.is_supported()


def tuples(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Row]:
    """A cursor on *conn* whose rows are tuples, whatever row factory the connection has
    (the application's pool may hand out connections returning dicts): every read
    here takes its columns by position."""
    return conn.cursor(row_factory=tuple_row)


def unstorable(exc: BaseException) -> bool:
    """An argument no row can hold: a lone surrogate or a NUL character."""
    return isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, psycopg.DataError) and "NUL" in str(exc)
    )


def lost(conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """*exc* came from *conn*'s end: the server closed it (a restart, a failover,
    ``pg_terminate_backend``) or the network dropped it. A server that ends a session rolls
    back its open transaction."""
    return isinstance(exc, psycopg.OperationalError) and (conn.closed or conn.broken)


def many(conn: psycopg.Connection[Any], sql: str, params: list[tuple[Any, ...]]) -> int:
    """Run *sql* once per tuple of *params* (``executemany``); the rows it wrote.

    psycopg pipelines an ``executemany`` in a pipeline of its own, and when the connection
    is lost in it (a restart, ``pg_terminate_backend``), leaving that pipeline fails too and
    psycopg logs "error ignored terminating <psycopg.Pipeline [BAD]>" on the way out. In a
    pipeline of ours, left with no exception pending, nothing is logged: the error raised
    is the first one met, in the block or on leaving it.
    """
    if not psycopg.Pipeline.is_supported():
        with tuples(conn) as cursor:
            cursor.executemany(sql, params)
            return cursor.rowcount
    first: BaseException | None = None
    with tuples(conn) as cursor:
        try:
            with conn.pipeline():
                try:
                    cursor.executemany(sql, params)
                except (psycopg.Error, UnicodeEncodeError) as exc:
                    first = exc
        except psycopg.Error as exc:  # leaving the pipeline: its sync met the same end
            first = first or exc
        if first is not None:
            raise first
        # Only now: inside the pipeline the answers were not in yet.
        return cursor.rowcount


def _client_side(exc: BaseException) -> bool:
    """An error psycopg raised before sending the statement (an argument it cannot
    encode), as opposed to the server's answer, which carries an SQLSTATE."""
    return isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, psycopg.Error)
        and exc.sqlstate is None
        and not isinstance(exc, psycopg.OperationalError)
    )


class PgStatements:
    """A mixin of ``PgUnitOfWork``: its statement helpers and its queue."""

    if TYPE_CHECKING:
        _s: PostgresStore
        _q: Statements
        _conn: psycopg.Connection[Any]
        _open: bool
        _write: bool

        def start(self) -> None: ...

    def _init_queue(self) -> None:
        # accounts whose advisory lock this unit holds (cleared when its transaction ends)
        self._locked: set[str] = set()
        # lock keys queued and not yet answered: held once answered, dropped if never
        # sent (a statement before them failed), so the next use takes them again
        self._locking: set[str] = set()
        # statements whose answer nothing waits for yet (see the module's docstring)
        self._queued: list[_Step] = []
        # inside deferred(): writes are queued too
        self._deferring = False
        # nothing of this unit has been answered yet on its own pooled connection (see
        # _pipeline): the unit's own transaction, never a savepoint or the host's
        self._fresh = False

    def _queue(
        self,
        sql: str,
        params: Params | None,
        doing: str = "running a query",
        unstorable_is_none: bool = False,
        then: Then | None = None,
        holds: tuple[str, ...] = (),
    ) -> None:
        if not self._open:  # the unit's BEGIN goes first
            self.start()
        self._queued.append((sql, params, doing, unstorable_is_none, then, holds))
        self._locking.update(holds)

    def _holds(self, key: str) -> bool:
        """Whether this unit holds *key*'s lock, or has queued it: a queued lock runs
        before anything queued or sent after it, and if it fails, so does that."""
        return key in self._locked or key in self._locking

    def _flush(self) -> None:
        """Send the queued statements now, in one round trip."""
        steps, self._queued = self._queued, []
        self._pipeline(steps)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Writes inside the block go to the server with the next statement that needs an
        answer, or when the block ends: one round trip for all of them. Each write's
        error is the one it raises alone, raised then (the first, in order); the unit
        must then be discarded (the writes after it were sent too). The optional
        ``DeferredWrites`` capability of a unit of work."""
        outer = self._deferring
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = outer
        if self._queued and not outer:
            self._flush()

    def _send(
        self, sql: str, params: Params, unstorable_is_none: bool = False
    ) -> psycopg.Cursor[Any]:
        """Run *sql* after the queued statements, all in one round trip; its cursor.

        Without queued statements it is a plain ``execute``. An argument no row can hold
        raises ``UnicodeEncodeError`` or a ``DataError`` if *unstorable_is_none* (the
        caller decides what that means); any other error is a ``StorageError``.
        """
        if not self._open:
            self.start()
        if self._s._forked_from is not None:
            raise self._s._fork_error()  # a unit open at a fork: the parent's socket
        if not self._queued:
            try:
                return tuples(self._conn).execute(sql, params)
            except (psycopg.Error, UnicodeEncodeError) as exc:
                if unstorable_is_none and unstorable(exc):
                    raise
                raise self._s._error(exc, "running a query") from exc
        steps, self._queued = self._queued, []
        steps.append((sql, params, "running a query", False, None, ()))
        return self._pipeline(steps, unstorable_is_none)

    def _pipeline(self, steps: list[_Step], last_unstorable: bool = False) -> psycopg.Cursor[Any]:
        """Run *steps* in order in one round trip (see the module's docstring); the last
        step's cursor. Each step's ``then`` runs once all answers are in, in order."""
        if self._s._forked_from is not None:
            raise self._s._fork_error()
        conn = self._conn
        fresh, self._fresh = self._fresh, False  # whatever happens, something was sent
        cursors: list[psycopg.Cursor[Any]] = []
        first: BaseException | None = None  # the first failure, in the order sent
        failed_at = -1
        skipped: set[int] = set()
        try:
            with conn.pipeline() if _PIPELINE else nullcontext():
                for n, (sql, params, _, unstorable_ok, _, _) in enumerate(steps):
                    cursor = tuples(conn)
                    cursors.append(cursor)
                    try:
                        cursor.execute(sql, params)
                    except (psycopg.Error, UnicodeEncodeError) as exc:
                        if _client_side(exc):
                            # Never sent; the steps before it still run (at the sync).
                            if unstorable_ok and unstorable(exc):
                                skipped.add(n)
                                continue
                            first, failed_at = exc, n
                        else:  # an earlier step's answer, met while sending this one
                            first = exc
                        break
        except psycopg.Error as exc:
            # A step the server ran failed: it comes before a later step's client-side
            # error, and is the cause of any "pipeline aborted" that follows it.
            if first is None or _client_side(first):
                first, failed_at = exc, -1
        finally:  # whatever escapes, the locks are counted as the server answered them
            self._settle_locks(steps, cursors, skipped)
        if first is not None:
            if fresh and lost(conn, first):
                # The unit's first round trip, and the connection is gone: the pool had
                # kept one the server closed meanwhile (a restart). That round trip
                # never holds the COMMIT, so nothing of it was committed (the server
                # rolls back a transaction whose connection ends, and its locks with
                # it): all of it goes again, once, on a fresh connection.
                self._locked.clear()
                self._s._replace_connection(self)
                return self._pipeline(steps, last_unstorable)
            if failed_at < 0:
                # The first step without an answer is the one that failed: one never
                # reached counts too (a connection known to be closed fails before the
                # first cursor, and the first step is the unit's BEGIN).
                failed_at = next(
                    (
                        n
                        for n in range(len(steps))
                        if n not in skipped and (n >= len(cursors) or cursors[n].pgresult is None)
                    ),
                    len(steps) - 1,
                )
            if failed_at == len(steps) - 1 and last_unstorable and unstorable(first):
                raise first
            raise self._s._error(first, steps[failed_at][2]) from first
        for n, (cursor, step) in enumerate(zip(cursors, steps, strict=False)):
            then = step[4]
            if then is not None and n not in skipped:
                then(cursor)
        return cursors[-1]

    def _settle_locks(
        self, steps: list[_Step], cursors: list[psycopg.Cursor[Any]], skipped: set[int]
    ) -> None:
        """The locks of *steps* the server answered are held; the others were never
        taken (a step before them failed), and are no longer counted as queued."""
        for n, step in enumerate(steps):
            keys = step[5]
            if not keys:
                continue
            self._locking.difference_update(keys)
            if n < len(cursors) and n not in skipped:
                result = cursors[n].pgresult
                if result is not None and result.status == pq.ExecStatus.TUPLES_OK:
                    self._locked.update(keys)

    def _exec(self, sql: str, params: Params) -> psycopg.Cursor[Any]:
        return self._send(sql, params)

    def _all(self, sql: str, params: Params, unstorable_is_none: bool = False) -> list[Row]:
        try:
            return self._send(sql, params, unstorable_is_none).fetchall()
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if unstorable_is_none and unstorable(exc):
                return []
            raise self._s._error(exc, "running a query") from exc

    def _one(
        self, sql: str, params: tuple[Any, ...], unstorable_is_none: bool = False
    ) -> Row | None:
        rows = self._all(sql, params, unstorable_is_none)
        return rows[0] if rows else None

    def _write_later(self, sql: str, params: Params, then: Then | None = None) -> None:
        """Run a write whose answer only *then* looks at: now, or inside ``deferred()``
        with the next statement sent."""
        if self._deferring:
            self._queue(sql, params, then=then)
            return
        cursor = self._send(sql, params)
        if then is not None:
            then(cursor)

    def _insert(self, sql: str, params: tuple[Any, ...], taken: Callable[[], Exception]) -> None:
        """Run an ``INSERT ... ON CONFLICT DO NOTHING``; raise what *taken* returns when a
        unique key was taken (inside ``deferred()``, once the answer is in).

        ON CONFLICT rather than catching the violation: an error would abort the whole
        transaction, and a unit stays usable after a ``Conflict``.
        """

        def check(cursor: psycopg.Cursor[Any]) -> None:
            if cursor.rowcount != 1:
                raise taken()

        self._write_later(sql, params, check)

    def _lock(self, account_id: str) -> None:
        """Serialise writers of *account_id* until this unit's transaction ends.

        Queued: the statement that needs the lock takes it along, right behind it."""
        if self._write and not self._holds(account_id):
            self._queue(self._q.lock, (self._s._lock_space, account_id), holds=(account_id,))

    def _lock_row(self, table: str, row_id: str) -> None:
        """Lock the account of the row *row_id* of *table*, before reading the row
        (queued, like :meth:`_lock`)."""
        if self._write:
            self._queue(
                self._q.lock_via[table],
                (self._s._lock_space, row_id),
                unstorable_is_none=True,
                then=self._note_locked,
            )

    def _note_locked(self, cursor: psycopg.Cursor[Any]) -> None:
        for account_id, _ in cursor.fetchall():
            self._locked.add(account_id)

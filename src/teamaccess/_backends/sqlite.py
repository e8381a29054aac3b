# The queries are assembled from the constant column lists below; every value is a "?"
# parameter, so there is no injection to guard against.
# ruff: noqa: S608
"""The SQLite backend: one file, several processes, every rule backed by the schema.

Design notes (the why, briefly):

- **Schema in versioned migrations.** ``PRAGMA user_version`` holds how many entries of
  :data:`MIGRATIONS` a file has had applied; ``PRAGMA application_id`` marks the file as
  teamaccess's. Opening applies the missing migrations in one ``BEGIN IMMEDIATE``
  transaction (SQLite DDL is transactional, so a crash leaves the old version intact). A
  file with foreign tables, another application id, or a newer version than this code
  knows is refused before anything is written. The migrations are plain SQL run through
  ``sqlite_utils.Database``, because ``Table.create()`` cannot express partial unique
  indexes, ``WITHOUT ROWID`` tables, ``CHECK`` or ``ON DELETE CASCADE``.
- **Transactions.** ``isolation_level=None`` so Python never opens transactions behind
  our back; ``begin()`` issues ``BEGIN IMMEDIATE`` (the write lock up front, so a
  read-then-write never dead-locks with another writer: SQLITE_BUSY on lock upgrade cannot
  be retried by the busy handler), ``read()`` a deferred ``BEGIN`` (one WAL snapshot).
- **Concurrency.** WAL lets readers run beside the one writer; a busy timeout makes
  writers queue instead of failing. One connection per store, guarded by an ``RLock``,
  so a store can be shared by threads.
- **The hot path.** ``grant()`` is one primary-key look-up on a ``WITHOUT ROWID`` table,
  with a constant SQL string (sqlite3 keeps it prepared in its statement cache). Only the
  *parsing* of the stored permission text is memoised, never the answer.
- **Errors.** Every ``sqlite3`` error becomes a ``StorageError`` naming the file, and a
  unique-index violation the matching ``Conflict``; a failed unit of work is rolled back
  and the connection stays usable.
"""

from __future__ import annotations

import numbers
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from .._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._errors import (
    AlreadyInvited,
    AlreadyMember,
    Conflict,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .._permissions import PermissionSet
from .codec import details_text
from .sqlite_privacy import _PrivacyQueries
from .sqlite_rows import (
    _ACTIVE_GRANTS,
    _DECODE_ERRORS,
    _GRANTS,
    Row,
    _account,
    _active_grant,
    _contact,
    _create_private,
    _dt,
    _event,
    _grant,
    _invitation,
    _is_unique_violation,
    _member,
    _metadata_text,
    _milliseconds,
    _outbox,
    _outbox_params,
    _perms_text,
    _stored_status,
    _ts,
    _ts_or_none,
    _unreadable,
)
from .sqlite_schema import _TABLES, APPLICATION_ID, MIGRATIONS, SEND_ACTIONS_SQL

__all__ = ["MIGRATIONS", "SQLiteStore"]


# Constant SQL strings: sqlite3 caches their prepared statements per connection.
# grant() asks for one column: an active member without an end of access (nearly every
# member) comes back as its permission text, any other as NULL, and only then are its
# state and end read by _GRANT_FULL_SQL. One value made and hashed per can() instead of
# three: about 0.4 us of 5 (the many-processes benchmark).
_GRANT_SQL: Final = (
    "SELECT CASE WHEN status = 'active' AND access_until IS NULL THEN permissions END "
    "FROM members WHERE account_id = ? AND user_id = ?"
)
_GRANT_FULL_SQL: Final = (
    "SELECT permissions, status, access_until FROM members WHERE account_id = ? AND user_id = ?"
)
# recipients(): the owner (part 0) with its stored comparison key, then the contacts
# subscribed to the category (part 1, by creation order), in one statement, so one
# snapshot without a transaction around it. Schema 2 makes each part one covering-index
# search. INDEXED BY because SQLite takes the UNIQUE index on accounts.id for "id = ?"
# without weighing a covering one, and that costs a second search, in the row table. No
# ORDER BY: it made SQLite sort through a temporary B-tree on every call; the store sorts
# the few rows by (part, seq) itself.
_RECIPIENTS_SQL: Final = (
    "SELECT 0, 0, owner_email, owner_email_key FROM accounts "
    "INDEXED BY accounts_recipient WHERE id = ?1 UNION ALL "
    "SELECT 1, seq, email, email_key FROM contact_categories "
    "INDEXED BY contact_categories_recipients WHERE account_id = ?1 AND category = ?2"
)
_ACCOUNT_COLS: Final = "a.id, a.name, a.owner_id, a.owner_email, a.created_at"
_MEMBER_COLS: Final = (
    "account_id, user_id, email, role, permissions, joined_at, granted_by, status, "
    "access_until, metadata"
)
_INVITATION_COLS: Final = (
    "id, account_id, email, permissions, invited_by, status, created_at, expires_at, "
    "token_hash, closed_at, accepted_by, sent_count, language, access_until, note, metadata"
)
_CONTACT_COLS: Final = (
    "c.id, c.account_id, c.name, c.email, c.company, c.phone, c.role, c.created_at, "
    # categories are single-line names, so a newline separates them safely
    "(SELECT group_concat(category, char(10)) FROM contact_categories cc "
    "WHERE cc.contact_id = c.id)"
)
_EVENT_COLS: Final = "id, account_id, at, actor_id, action, target, details"
#: The actions listed in SEND_ACTIONS_SQL.
_SEND_NAMES: Final = frozenset({"invitation.sent", "invitation.resent"})
_OUTBOX_COLS: Final = (
    "id, account_id, kind, recipient, message_id, created_at, next_attempt_at, status, "
    "message, invitation_id, attempts, last_error, sent_at"
)

# -- the store ----------------------------------------------------------------------------


class SQLiteStore:
    """The reference backend: every row in one SQLite file, shared by processes.

    *path* is a file path, ``":memory:"`` (a private database that lives as long as the
    store), or a ``file:`` URI (e.g. ``"file:/srv/team.db?mode=ro"`` for a read-only
    replica). *timeout* is how long, in seconds, a writer waits for another process's
    write lock before ``StorageError``. *synchronous* is SQLite's ``PRAGMA synchronous``:
    ``"FULL"`` (the default) makes every commit durable before it returns (one fsync
    each); ``"NORMAL"``, SQLite's recommendation for WAL, syncs only at checkpoints, so a
    commit costs a tenth here and a crash of the process or the machine still leaves a
    consistent file, but a power cut may lose the last commits (docs/backends.md).

    >>> from teamaccess import SQLiteStore
    >>> store = SQLiteStore(":memory:")
    >>> store.schema_version
    2
    >>> store.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(
                f"path must be a file path (a str or pathlib.Path) or ':memory:', "
                f"not {type(path).__name__}"
            )
        self.path = os.fspath(path)
        if not isinstance(self.path, str):  # a PathLike of bytes: the URI check needs str
            raise ValidationError("path must be a str or pathlib.Path, not a path in bytes")
        # bool is an int, but timeout=True is a slip, not one second; NaN (the value that
        # is not equal to itself) would make the opening retries below never give up.
        # numbers.Real also lets Fraction and numpy numbers in; int | float is for mypy.
        real = isinstance(timeout, int | float | numbers.Real) and not isinstance(timeout, bool)
        if not real or timeout != timeout:
            raise ValidationError(f"timeout must be a number of seconds like 5.0, not {timeout!r}")
        if timeout < 0:
            raise ValidationError("timeout is in seconds and must not be negative, e.g. 5.0")
        try:
            self.timeout: float = float(timeout)
        except OverflowError:  # an int or Fraction beyond any float
            raise ValidationError(
                f"timeout {timeout!r} is too large; pass float('inf') to wait without end"
            ) from None
        # What sqlite3.connect(timeout=...) sets, in the unit PRAGMA busy_timeout takes.
        self._timeout_ms: int = _milliseconds(self.timeout)
        # OFF and EXTRA are left out: OFF can corrupt the file on a power cut, and EXTRA
        # buys nothing in WAL mode.
        if synchronous not in ("FULL", "NORMAL"):
            raise ValidationError(
                f"synchronous must be 'FULL' (every commit durable) or 'NORMAL' (faster "
                f"commits, the last ones may be lost on a power cut), not {synchronous!r}"
            )
        self.synchronous = synchronous
        self._lock = threading.RLock()
        # True while a begin(durable=False) unit has the connection at NORMAL, or if
        # putting it back failed: the next unit restores the store's level first.
        self._sync_lost = False
        self._conn: sqlite3.Connection | None = None
        # grant()'s own cursor, reused: creating one per call cost about 0.2 us of can().
        # Its statement is a primary-key search, which sqlite3 steps to the end and
        # resets within fetchone(), so no read snapshot stays open between calls.
        self._grant_cursor: sqlite3.Cursor | None = None
        self._db: Any = None
        self._open()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"schema {self.schema_version}"
        return f"<SQLiteStore {self.path!r} {state}>"

    # -- opening ------------------------------------------------------------------------

    def _open(self) -> None:
        is_uri = self.path.startswith("file:")
        if not is_uri and self.path not in ("", ":memory:"):
            _create_private(self.path)
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=is_uri,
            )
        except (sqlite3.Error, ValueError, OSError) as exc:
            raise self._error(exc, "opening it") from exc
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._grant_cursor = conn.cursor()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        import sqlite_utils

        db = sqlite_utils.Database(conn, execute_plugins=False, recursive_triggers=False)
        # Processes that open one new file together meet SQLITE_BUSY that SQLite returns
        # without calling the busy handler (switching the journal to WAL, or reading a WAL
        # another process is setting up), so the opening steps are retried here, within
        # the same timeout. Each step is safe to repeat.
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                # An attempt's own waits (the busy handler at BEGIN IMMEDIATE) get only
                # what is left, so opening as a whole stays within the timeout.
                left = _milliseconds(deadline - time.monotonic())
                conn.execute(f"PRAGMA busy_timeout = {left}")
                self._prepare_once(conn, db)
                conn.execute(f"PRAGMA busy_timeout = {self._timeout_ms}")
            except TeamAccessError:
                raise
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY")
                if not busy or time.monotonic() + delay > deadline:
                    raise self._error(exc, "opening it") from exc
                with suppress(sqlite3.Error):  # the retry's BEGIN will say if it is stuck
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            except sqlite3.Error as exc:
                raise self._error(exc, "opening it") from exc
            except Exception as exc:  # sqlite-utils' own errors must not escape either
                raise self._error(exc, "preparing its schema") from exc
            break
        self._db = db

    def _prepare_once(self, conn: sqlite3.Connection, db: Any) -> None:
        # Read before writing anything: a foreign file must stay byte-for-byte intact.
        version, app_id, tables = self._header(conn)
        self._classify(version, app_id, tables)
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted rows are overwritten with zeros, not left in free space, so an erased
        # address is not in the file (docs/privacy.md). Some builds have it on already.
        conn.execute("PRAGMA secure_delete = ON")
        if self.path != ":memory:" and "mode=memory" not in self.path:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"the teamaccess database {self.path} cannot use WAL journaling "
                    f"(it stays in {mode!r} mode); put it on a local file system"
                )
        # A constant from the two checked in __init__, never user text in the SQL.
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        if version < len(MIGRATIONS):
            self._migrate(conn, db)
        self._check_tables(conn)

    @staticmethod
    def _header(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
        """The schema version, application id and table names, read in one snapshot.

        One transaction, because another process may be migrating the file: read apart, a
        version from before its commit and tables from after would look like a foreign file.
        """
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
        except BaseException:
            # The read failed (say, SQLITE_BUSY): end the snapshot without hiding why.
            if own:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        if own:
            conn.execute("COMMIT")
        return int(version), int(app_id), tables

    def _classify(self, version: int, app_id: int, tables: list[str]) -> None:
        """Refuse a file that is not ours or is newer than this code; never alter it."""
        if app_id == APPLICATION_ID:
            if version > len(MIGRATIONS):
                raise StorageError(
                    f"the teamaccess database {self.path} has schema version {version}, but "
                    f"this teamaccess knows only up to {len(MIGRATIONS)}; upgrade teamaccess "
                    "(the file was not changed)"
                )
            return
        if app_id == 0 and version == 0 and not tables:
            return  # a new, empty file
        what = f"tables {', '.join(sorted(tables))}" if tables else "no teamaccess tables"
        raise StorageError(
            f"{self.path} is not a teamaccess database (application id {app_id:#x}, user "
            f"version {version}, {what}); point SQLiteStore at a new file or at one "
            "teamaccess created (the file was not changed)"
        )

    def _migrate(self, conn: sqlite3.Connection, db: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version, app_id, tables = self._header(conn)
            self._classify(version, app_id, tables)
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                # PRAGMAs take no parameters; both values are ints we computed
                conn.execute(f"PRAGMA user_version = {int(number)}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        missing = _TABLES - present
        if missing:
            raise StorageError(
                f"the teamaccess database {self.path} lacks the tables "
                f"{', '.join(sorted(missing))}; it is damaged or was changed by hand - "
                "restore it from a backup"
            )

    # -- errors -------------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        """A ``StorageError`` that names the file and says what to do."""
        name = getattr(exc, "sqlite_errorname", "")
        text = str(exc)
        where = f"the teamaccess database {self.path}"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            hint = (
                f"is locked by another connection and stayed locked past the {self.timeout} s "
                "timeout; retry, or open it with a longer SQLiteStore(..., timeout=...)"
            )
        elif name.startswith("SQLITE_READONLY") or "readonly" in text:
            hint = "is read-only; open a writable file, or fix the file's permissions"
        elif name == "SQLITE_FULL" or "full" in text:
            hint = "is full (no space left on the disk); free some space and retry"
        elif name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in text:
            hint = (
                "is not a SQLite database or is damaged; point SQLiteStore at a teamaccess "
                "file, or restore it from a backup"
            )
        elif name == "SQLITE_CANTOPEN" or "unable to open" in text:
            hint = (
                "cannot be opened; check that the path names a file (not a directory), "
                "that its directory exists, and that this process may write there"
            )
        elif isinstance(exc, sqlite3.ProgrammingError) and "closed" in text:
            hint = "is closed; open a new SQLiteStore"
        elif isinstance(exc, UnicodeEncodeError):
            hint = (
                "cannot hold text with a lone surrogate (an undecodable byte); decode the "
                "input as UTF-8 before passing it"
            )
        else:
            hint = "failed; check the file and retry"
        return StorageError(f"{where} {hint} (while {doing}: {text})")

    # -- the Store protocol ---------------------------------------------------------------

    @property
    def db(self) -> Any:
        """The ``sqlite_utils.Database`` on this store's connection, for inspection.

        Read from it freely (``store.db["members"].count``); change teamaccess's tables
        only through ``TeamAccess``.
        """
        self._connection()
        return self._db

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        with self._lock:
            try:
                return int(self._connection().execute("PRAGMA user_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise self._error(exc, "reading its schema version") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._closed()
        return self._conn

    def _closed(self) -> StorageError:
        return StorageError(f"the teamaccess database {self.path} is closed; open a new "
                            "SQLiteStore")  # fmt: skip

    # begin() and read() hand out _unit()'s context manager itself: one generator layer
    # less on every read (a profile of recipients()).
    def begin(self, *, durable: bool = True) -> AbstractContextManager[_SQLiteUnitOfWork]:
        return self._unit(write=True, relaxed=not durable and self.synchronous == "FULL")

    def read(self) -> AbstractContextManager[_SQLiteUnitOfWork]:
        return self._unit(write=False)

    @contextmanager
    def _unit(self, *, write: bool, relaxed: bool = False) -> Iterator[_SQLiteUnitOfWork]:
        with self._lock:
            conn = self._connection()
            nested = conn.in_transaction
            # begin(durable=False): this commit at synchronous = NORMAL. SQLite refuses to
            # change the setting inside a transaction, so it is switched around the unit,
            # under the lock. In WAL mode the commit stays atomic, only its fsync is
            # skipped, and the next durable commit syncs its frames too. Inside another
            # unit (a savepoint) the outer transaction decides.
            relax = relaxed and not nested
            if relax:
                self._set_synchronous(conn, "NORMAL")
            elif self._sync_lost and not nested:
                self._set_synchronous(conn, self.synchronous)
            try:
                uow = _SQLiteUnitOfWork(self, conn, write=write, nested=nested)
                uow.start()
                try:
                    yield uow
                except BaseException:
                    uow.rollback(quiet=True)
                    raise
                uow.rollback(quiet=False)
            finally:
                if relax:
                    # Quietly: the unit's outcome stands, and should this fail, _sync_lost
                    # stays set and the next unit restores the level before it starts.
                    with suppress(StorageError):
                        self._set_synchronous(conn, self.synchronous)

    def _set_synchronous(self, conn: sqlite3.Connection, level: str) -> None:
        # Until the store's own level is confirmed back, the next unit restores it first.
        self._sync_lost = True
        try:
            # "FULL" or "NORMAL", checked in __init__ or written in _unit: no user text.
            conn.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            raise self._error(exc, "setting its durability") from exc
        self._sync_lost = level != self.synchronous

    def grant(self, account_id: str, user_id: str) -> tuple[PermissionSet, datetime | None] | None:
        lock = self._lock
        lock.acquire()  # not "with": 90 ns less on every can() (see MemoryStore.grant)
        try:
            cursor = self._grant_cursor
            if cursor is None:
                raise self._closed()
            key = (account_id, user_id)
            row = cursor.execute(_GRANT_SQL, key).fetchone()
            if row is not None and row[0] is None:
                # Suspended, or access that ends: the whole row. A statement of its own (a
                # later snapshot): what it reads is committed state all the same.
                row = cursor.execute(_GRANT_FULL_SQL, key).fetchone()
        except UnicodeEncodeError:
            # An id with a lone surrogate (sqlite3 cannot bind it) was never stored, so it
            # names no member: the answer MemoryStore gives, not a storage failure.
            row = None
        except sqlite3.Error as exc:
            raise self._error(exc, "looking up a permission") from exc
        finally:
            lock.release()
        if row is None:
            return None
        # The memos inline: a function call less on every can()
        if len(row) == 1:
            active = _ACTIVE_GRANTS.get(row[0])
            return _active_grant(row[0]) if active is None else active
        found = _GRANTS.get(row)
        return _grant(row) if found is None else found

    def recipients(self, account_id: str, category: str) -> list[tuple[str, str]] | None:
        """``(email, email_key)`` of the owner, then of each contact subscribed to
        *category*, oldest first; ``None`` if there is no such account.

        One statement instead of a unit of work of four; like ``grant()``, never a
        cached answer.
        """
        with self._lock:
            try:
                rows = self._connection().execute(_RECIPIENTS_SQL, (account_id, category))
                found = rows.fetchall()
            except UnicodeEncodeError:
                return None  # never stored, so no such account (see grant())
            except sqlite3.Error as exc:
                raise self._error(exc, "looking up recipients") from exc
        found.sort()  # owner first, then contacts by seq: (part, seq) is unique
        if not found or found[0][0] != 0:
            return None
        return [(r[2], r[3]) for r in found]

    def scrub(self) -> None:
        """Rewrite the file without what was deleted, and empty the WAL.

        ``secure_delete`` zeroes deleted rows, but SQLite moves rows between pages as
        trees grow and shrinks, and may leave old copies in a page's unused space; VACUUM
        writes every page anew. The checkpoint then copies the WAL into the file and
        truncates it, so no earlier version of a page stays there. Holds the write lock
        while it runs (about 1.5 s per 100 MB, docs/privacy.md).
        """
        with self._lock:
            conn = self._connection()
            if conn.in_transaction:
                raise StorageError(
                    "scrub() cannot run inside a unit of work; call it after the unit ends"
                )
            try:
                conn.execute("VACUUM")
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                raise self._error(exc, "rewriting it without deleted data") from exc
        if busy:
            raise StorageError(
                f"the teamaccess database {self.path} was rewritten, but another connection "
                "kept reading it past the timeout, so its WAL file may still hold deleted "
                "data; call store.scrub() again once other processes are idle"
            )

    def close(self) -> None:
        """Close the connection; further use raises ``StorageError``. Safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._grant_cursor = None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self._error(exc, "closing it") from exc


_savepoints = iter(range(1, 2**62))


class _SQLiteUnitOfWork(_PrivacyQueries):
    """One transaction (or, nested in another unit, one savepoint)."""

    def __init__(
        self, store: SQLiteStore, conn: sqlite3.Connection, *, write: bool, nested: bool
    ) -> None:
        self._s = store
        self._conn = conn
        self._write = write
        self._nested = nested
        self._savepoint = f"teamaccess_{next(_savepoints)}"
        self._open = False
        self.committed = False

    # transaction control

    def _run(self, sql: str, doing: str) -> None:
        try:
            self._conn.execute(sql)
        except sqlite3.Error as exc:
            raise self._s._error(exc, doing) from exc

    def start(self) -> None:
        if self._nested:
            self._run(f"SAVEPOINT {self._savepoint}", "starting a nested unit of work")
        else:
            begin = "BEGIN IMMEDIATE" if self._write else "BEGIN"
            self._run(begin, "starting a unit of work")
        self._open = True

    def commit(self) -> None:
        if self._open:
            if self._nested:
                self._run(f"RELEASE {self._savepoint}", "committing a nested unit of work")
            else:
                self._run("COMMIT", "committing")
            self._open = False
        # like MemoryStore: whatever follows a commit is discarded unless committed again
        self.committed = True

    def rollback(self, *, quiet: bool) -> None:
        if not self._open:
            return
        self._open = False
        try:
            # An error such as SQLITE_FULL may already have ended the transaction.
            if self._conn.in_transaction:
                if self._nested:
                    self._conn.execute(f"ROLLBACK TO {self._savepoint}")
                    self._conn.execute(f"RELEASE {self._savepoint}")
                else:
                    self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if not quiet:  # never hide the error that caused the rollback
                raise self._s._error(exc, "rolling back") from exc

    # statement helpers

    def _exec(
        self,
        sql: str,
        params: tuple[Any, ...] | list[Any],
        conflict: Callable[[], TeamAccessError] | None = None,
    ) -> sqlite3.Cursor:
        if not self._open:
            self.start()
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if conflict is not None and _is_unique_violation(exc):
                raise conflict() from exc
            raise self._s._error(exc, "writing a row that breaks the schema's rules") from exc
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._s._error(exc, "running a query") from exc

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Row]:
        cursor = self._exec(sql, params)
        try:
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise self._s._error(exc, "reading rows") from exc

    def _one(self, sql: str, params: tuple[Any, ...]) -> Row | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # many new rows at once (BulkUnitOfWork)

    def add_many(
        self,
        *,
        accounts: Sequence[Account] = (),
        members: Sequence[tuple[Member, str]] = (),
        contacts: Sequence[tuple[Contact, str]] = (),
        events: Sequence[AuditEvent] = (),
    ) -> None:
        from .sqlite_bulk import add_many

        add_many(self, accounts=accounts, members=members, contacts=contacts, events=events)

    # accounts

    def add_account(self, account: Account) -> None:
        self._exec(
            "INSERT INTO accounts (id, name, owner_id, owner_email, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (account.id, account.name, account.owner_id, account.owner_email,
             _ts(account.created_at)),
            lambda: Conflict(f"account {account.id!r} exists already"),
        )  # fmt: skip

    def get_account(self, account_id: str) -> Account | None:
        row = self._one(f"SELECT {_ACCOUNT_COLS} FROM accounts a WHERE a.id = ?", (account_id,))
        return None if row is None else _account(row)

    def update_account(self, account: Account) -> None:
        self._exec(
            "UPDATE accounts SET name = ?, owner_id = ?, owner_email = ?, created_at = ? "
            "WHERE id = ?",
            (account.name, account.owner_id, account.owner_email, _ts(account.created_at),
             account.id),
        )  # fmt: skip

    def accounts_for(self, user_id: str) -> list[Account]:
        rows = self._all(
            f"SELECT {_ACCOUNT_COLS} FROM members m JOIN accounts a ON a.id = m.account_id "
            "WHERE m.user_id = ? ORDER BY a.created_at, a.seq",
            (user_id,),
        )
        return [_account(r) for r in rows]

    # members

    def add_member(self, member: Member, email_key: str) -> None:
        self._exec(
            f"INSERT INTO members ({_MEMBER_COLS}, email_key, seq) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "(SELECT coalesce(max(seq), 0) + 1 FROM members WHERE account_id = ?))",
            (member.account_id, member.user_id, member.email, member.role,
             _perms_text(member.permissions), _ts(member.joined_at), member.granted_by,
             _stored_status(member.status), _ts_or_none(member.access_until),
             _metadata_text(member.metadata), email_key, member.account_id),
            lambda: AlreadyMember(
                f"{member.email} is already a member of account {member.account_id!r}"
            ),
        )  # fmt: skip

    def get_member(self, account_id: str, user_id: str) -> Member | None:
        row = self._one(
            f"SELECT {_MEMBER_COLS} FROM members WHERE account_id = ? AND user_id = ?",
            (account_id, user_id),
        )
        return None if row is None else _member(row)

    def member_by_email(self, account_id: str, email_key: str) -> Member | None:
        row = self._one(
            f"SELECT {_MEMBER_COLS} FROM members WHERE account_id = ? AND email_key = ?",
            (account_id, email_key),
        )
        return None if row is None else _member(row)

    def update_member(self, member: Member) -> None:
        self._exec(
            "UPDATE members SET email = ?, role = ?, permissions = ?, joined_at = ?, "
            "granted_by = ?, status = ?, access_until = ?, metadata = ? "
            "WHERE account_id = ? AND user_id = ?",
            (member.email, member.role, _perms_text(member.permissions),
             _ts(member.joined_at), member.granted_by, _stored_status(member.status),
             _ts_or_none(member.access_until), _metadata_text(member.metadata),
             member.account_id, member.user_id),
        )  # fmt: skip

    def delete_member(self, account_id: str, user_id: str) -> None:
        self._exec(
            "DELETE FROM members WHERE account_id = ? AND user_id = ?", (account_id, user_id)
        )

    def members(self, account_id: str) -> list[Member]:
        rows = self._all(
            f"SELECT {_MEMBER_COLS} FROM members WHERE account_id = ? "
            "ORDER BY role != 'owner', joined_at, seq",
            (account_id,),
        )
        return [_member(r) for r in rows]

    # invitations

    def add_invitation(self, invitation: Invitation, email_key: str) -> None:
        # The token itself is never written: only its hash.
        i = invitation
        self._exec(
            f"INSERT INTO invitations ({_INVITATION_COLS}, email_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (i.id, i.account_id, i.email, _perms_text(i.permissions), i.invited_by, i.status,
             _ts(i.created_at), _ts(i.expires_at), i.token_hash, _ts_or_none(i.closed_at),
             i.accepted_by, i.sent_count, i.language, _ts_or_none(i.access_until), i.note,
             _metadata_text(i.metadata), email_key),
            lambda: self._invitation_conflict(i),
        )  # fmt: skip

    def _invitation_conflict(self, invitation: Invitation) -> Conflict:
        if self.get_invitation(invitation.id) is not None:
            return Conflict(f"invitation {invitation.id!r} exists already")
        return AlreadyInvited(f"{invitation.email} has a pending invitation already")

    def get_invitation(self, invitation_id: str) -> Invitation | None:
        row = self._one(
            f"SELECT {_INVITATION_COLS} FROM invitations WHERE id = ?", (invitation_id,)
        )
        return None if row is None else _invitation(row)

    def update_invitation(self, invitation: Invitation) -> None:
        i = invitation
        # Only the columns that may change: SQLite rewrites every index holding a column
        # of the SET list, so naming the fixed ones cost two index pages per update.
        self._exec(
            "UPDATE invitations SET permissions = ?, invited_by = ?, status = ?, "
            "expires_at = ?, token_hash = ?, closed_at = ?, accepted_by = ?, sent_count = ?, "
            "language = ?, access_until = ?, note = ?, metadata = ? WHERE id = ?",
            (_perms_text(i.permissions), i.invited_by, i.status, _ts(i.expires_at),
             i.token_hash, _ts_or_none(i.closed_at), i.accepted_by, i.sent_count, i.language,
             _ts_or_none(i.access_until), i.note, _metadata_text(i.metadata), i.id),
            lambda: AlreadyInvited(f"{i.email} has a pending invitation already"),
        )  # fmt: skip

    def pending_invitation_for(self, account_id: str, email_key: str) -> Invitation | None:
        row = self._one(
            f"SELECT {_INVITATION_COLS} FROM invitations "
            "WHERE account_id = ? AND email_key = ? AND status = 'pending'",
            (account_id, email_key),
        )
        return None if row is None else _invitation(row)

    def invitations(
        self,
        account_id: str,
        *,
        status: str | None = None,
        invited_by: str | None = None,
    ) -> list[Invitation]:
        sql = f"SELECT {_INVITATION_COLS} FROM invitations WHERE account_id = ?"
        params = [account_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if invited_by is not None:
            sql += " AND invited_by = ?"
            params.append(invited_by)
        rows = self._all(sql + " ORDER BY created_at, id", params)
        return [_invitation(r) for r in rows]

    # contacts

    def add_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        self._exec(
            "INSERT INTO contacts (id, account_id, name, email, email_key, company, phone, "
            "role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (c.id, c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at)),
            lambda: Conflict(f"contact {c.id!r} exists already"),
        )  # fmt: skip
        self._set_categories(c)

    def _set_categories(self, contact: Contact) -> None:
        self._exec("DELETE FROM contact_categories WHERE contact_id = ?", (contact.id,))
        for category in sorted(contact.categories):
            # seq, email and email_key from the contact's row just written (schema 2)
            self._exec(
                "INSERT INTO contact_categories (contact_id, account_id, category, seq, "
                "email, email_key) SELECT id, account_id, ?, seq, email, email_key "
                "FROM contacts WHERE id = ?",
                (category, contact.id),
            )

    def get_contact(self, contact_id: str) -> Contact | None:
        row = self._one(f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.id = ?", (contact_id,))
        return None if row is None else _contact(row)

    def update_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        self._exec(
            "UPDATE contacts SET account_id = ?, name = ?, email = ?, email_key = ?, "
            "company = ?, phone = ?, role = ?, created_at = ? WHERE id = ?",
            (c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at), c.id),
        )  # fmt: skip
        self._set_categories(c)

    def delete_contact(self, contact_id: str) -> None:
        # contact_categories rows go with it (ON DELETE CASCADE)
        self._exec("DELETE FROM contacts WHERE id = ?", (contact_id,))

    def contacts(self, account_id: str) -> list[Contact]:
        rows = self._all(
            f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.account_id = ? ORDER BY c.seq",
            (account_id,),
        )
        return [_contact(r) for r in rows]

    # audit

    def add_event(self, event: AuditEvent) -> None:
        e = event
        details = details_text(e.details)
        self._exec(
            f"INSERT INTO events ({_EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (e.id, e.account_id, _ts(e.at), e.actor_id, e.action, e.target, details),
            lambda: Conflict(f"audit event {e.id!r} exists already"),
        )

    def events(self, account_id: str, *, limit: int) -> list[AuditEvent]:
        if limit <= 0:
            return []
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM events WHERE account_id = ? ORDER BY seq DESC LIMIT ?",
            (account_id, limit),
        )
        return [_event(r) for r in rows]

    def event_times(
        self, account_id: str, actions: Collection[str], since: datetime
    ) -> list[datetime]:
        names = sorted(set(actions))
        if not names:
            return []
        marks = ", ".join("?" for _ in names)
        # The send actions (the rate limit's) are read from their partial index (schema
        # 6), which SQLite uses only when the query repeats its condition word for word.
        sends = f"action IN {SEND_ACTIONS_SQL} AND " if _SEND_NAMES.issuperset(names) else ""
        rows = self._all(
            f"SELECT at FROM events WHERE account_id = ? AND {sends}action IN "
            f"({marks}) AND at >= ? ORDER BY at, seq",
            (account_id, *names, _ts(since)),
        )
        try:
            return [_dt(r[0]) for r in rows]
        except _DECODE_ERRORS as exc:
            raise _unreadable("an audit event time", exc) from exc

    def invitation_mail_times(self, email_key: str, since: datetime) -> list[datetime]:
        rows = self._all(
            "SELECT o.created_at FROM invitations i JOIN outbox o ON o.invitation_id = i.id "
            "WHERE i.email_key = ? AND o.kind = 'invitation' AND o.created_at >= ? "
            "ORDER BY o.created_at",
            (email_key, _ts(since)),
        )
        try:
            return [_dt(r[0]) for r in rows]
        except _DECODE_ERRORS as exc:
            raise _unreadable("an outbox time", exc) from exc

    # outbox

    def add_outbox(self, message: OutboxMessage) -> None:
        self._exec(
            "INSERT INTO outbox (account_id, kind, recipient, message_id, created_at, "
            "next_attempt_at, status, message, invitation_id, attempts, last_error, sent_at, "
            "id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _outbox_params(message),
            lambda: Conflict(f"outbox message {message.id!r} exists already"),
        )

    def update_outbox(self, message: OutboxMessage) -> None:
        m = message
        # The delivery state only (see update_invitation): the invitation index stays put.
        self._exec(
            "UPDATE outbox SET next_attempt_at = ?, status = ?, attempts = ?, "
            "last_error = ?, sent_at = ? WHERE id = ?",
            (_ts(m.next_attempt_at), m.status, m.attempts, m.last_error,
             _ts_or_none(m.sent_at), m.id),
        )  # fmt: skip

    def get_outbox(self, message_id: str) -> OutboxMessage | None:
        row = self._one(f"SELECT {_OUTBOX_COLS} FROM outbox WHERE id = ?", (message_id,))
        return None if row is None else _outbox(row)

    def outbox(
        self,
        *,
        status: str | None = None,
        due_before: datetime | None = None,
        invitation_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxMessage]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            # The literal lets SQLite use the due index, which holds pending rows only.
            ("status = 'pending'" if status == "pending" else "status = ?", status),
            ("next_attempt_at <= ?", _ts_or_none(due_before)),
            ("invitation_id = ?", invitation_id),
        ):
            if value is not None:
                where.append(clause)
                if "?" in clause:
                    params.append(value)
        sql = f"SELECT {_OUTBOX_COLS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        return [_outbox(r) for r in self._all(sql, params)]

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxMessage]:
        # A write unit holds the one write lock from BEGIN IMMEDIATE on, so no other unit
        # can claim between this read and the conditional UPDATE; the condition repeats
        # the read's so a row is only ever moved while due.
        due = self.outbox(status="pending", due_before=now, limit=max(limit, 0))
        if not due:
            return []
        lease = _ts(lease_until)
        ids = [m.id for m in due]
        for start in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self._exec(
                f"UPDATE outbox SET next_attempt_at = ? WHERE id IN ({marks}) "
                "AND status = 'pending' AND next_attempt_at <= ?",
                (lease, *chunk, _ts(now)),
            )
        return [attrs.evolve(m, next_attempt_at=lease_until) for m in due]

# The queries are assembled from the constant column lists below; every value is a "?"
# parameter, so there is no injection to guard against.
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
import weakref
from contextlib import AbstractContextManager, suppress
from datetime import datetime
from types import ModuleType
from typing import Any, Final, Literal

from .._domain import Account, Invitation, Member, OutboxMessage
from .._errors import (
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .._permissions import PermissionSet
from .sqlite_rows import (
    _ACTIVE_GRANTS,
    _BY_KEY,
    _GRANTS,
    _INVITATION_BY_KEY_I,
    _INVITATION_UNNUMBERED_I,
    _OUTBOX_COLS,
    _OUTBOX_UNNUMBERED,
    _active_grant,
    _by_id,
    _check_siblings,
    _create_private,
    _grant,
    _milliseconds,
    _outbox,
    _private_if_empty,
)
from .sqlite_schema import _TABLES, APPLICATION_ID, MIGRATIONS
from .sqlite_unit import (
    _ACCOUNT_MEMBER_SQL,
    _INVITATION_ACCOUNT_MEMBER_SQL,
    _account_member,
    _invitation_account_member,
    _SQLiteUnitOfWork,
)
from .sqlite_uri import _check_uri, _file_of_uri, _immutable, _in_memory, _read_only

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


_OUTBOX_ROW_SQL: Final = f"SELECT {_OUTBOX_COLS} FROM outbox WHERE "  # noqa: S608 (constants)


# -- the store ----------------------------------------------------------------------------

#: every store of this process open on a file, for the fork handler below
_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
#: the connections a forked child inherited busy: kept referenced, never closed or used
_INHERITED: list[sqlite3.Connection] = []
#: their files, as (device, inode): no store may open one in this process (see _open)
_INHERITED_FILES: set[tuple[int, int]] = set()


def _forked() -> None:
    """In a child process: SQLite's file locks are the parent's, not the child's (POSIX
    locks are not inherited), so a connection used on both sides of a fork can corrupt
    the file. The child gets none: its next call says what to do.

    Never raises: an exception out of an at-fork handler ends it there, and a store it
    did not reach would keep its connection in the child. Each store is handled apart."""
    for store in list(_STORES):
        try:
            _fork_one(store)
        except Exception:  # noqa: S112 - nothing may stop the next store's turn
            # What matters most is done first in _fork_one: the store has no connection.
            continue


def _fork_one(store: SQLiteStore) -> None:
    """:func:`_forked` for one store: it gives up its connection, kept alive if busy."""
    conn = store._conn
    if conn is None:
        return
    store._forked_from = store._pid
    # Held first: whatever fails below, a busy connection is never freed (its close
    # would roll back into the shared WAL index).
    _INHERITED.append(conn)
    store._conn = store._grant_cursor = None
    try:
        # Closed if it was idle at the fork: while it stays open, SQLite's table of this
        # process's locks says they are held, so a store the child opens on the file
        # takes none, and the parent's close, seeing no other holder, deletes the WAL the
        # child writes into. Its close cannot checkpoint or delete anything: the parent's
        # real locks refuse the child the exclusive lock that needs. Kept open, never
        # used, if a thread or a transaction had it at the fork: a rollback here would
        # write into the shared WAL index, and another thread's mutex never lets go.
        if store._lock.acquire(blocking=False):
            try:
                if not conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.close()
                    _INHERITED.remove(conn)
                    conn = None
            finally:
                store._lock.release()
        if conn is not None:
            # Never freed, not even as the child ends: the list is emptied then, and the
            # last reference's close rolls the transaction back, which cleans the
            # parent's uncommitted frames out of the shared WAL index, so the parent's
            # own transaction read "database disk image is malformed". If that fails
            # (ctypes broken), the list's reference is what is left: the rest goes on.
            with suppress(Exception):
                _keep_for_ever(conn)
            if store._file_id is not None:
                _INHERITED_FILES.add(store._file_id)
    finally:
        # Another thread of the parent may have held it at the fork: it never lets go.
        store._lock = threading.RLock()


def _file_id(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """The (device, inode) of *conn*'s main database file, ``None`` in memory: the key
    SQLite's own table of a process's locks uses, whatever name opened the file."""
    # The PRAGMA, not pragma_database_list in a SELECT: that reads the schema, and so
    # the file, before the store has checked it. As bytes: a file name that is not UTF-8
    # would not decode to str.
    conn.text_factory = bytes
    try:
        files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == b"main"]
    except sqlite3.Error:  # opening it says what is wrong
        return None
    finally:
        conn.text_factory = str
    if not files or not files[0]:
        return None
    try:
        found = os.stat(os.fsdecode(files[0]))
    except (OSError, ValueError):  # memdb's name for a database is no file
        return None
    return found.st_dev, found.st_ino


#: ctypes, imported in the parent as a store opens on a file (see _keep_for_ever)
_CTYPES: list[ModuleType] = []


def _import_ctypes() -> None:
    """Import ctypes now, in the parent, for :func:`_keep_for_ever` in a child: an import
    in a forked child hangs for ever if another thread of the parent was inside that
    import at the fork (the child inherits its module lock, held by a thread it lacks).
    Not at ``import teamaccess``: only a store on a file needs it."""
    if _CTYPES:
        return
    try:
        import ctypes
    except ImportError:  # a Python built without ctypes: the list's reference is all
        return
    _CTYPES.append(ctypes)


def _keep_for_ever(obj: object) -> None:
    """One reference to *obj* nothing ever drops: Python frees it at no time, exit included.
    Imports nothing: it runs in a forked child (see :func:`_import_ctypes`)."""
    for ctypes in _CTYPES:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


os.register_at_fork(after_in_child=_forked)


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
    *page_size* is the page size in bytes of a file the store creates (an existing file
    keeps its own): each commit writes a whole page for every page it changes, so 1024
    writes about a third of the default 4096's WAL bytes per invite or accept, for slower
    reads of a large file out of the cache and a larger file (docs/backends.md).

    >>> from teamaccess import SQLiteStore
    >>> store = SQLiteStore(":memory:")
    >>> store.schema_version
    10
    >>> store.close()
    """

    #: The schema version this store found and upgraded from when it opened: 0 for a
    #: database it created, None when it changed nothing (``teamaccess migrate`` says which).
    _migrated_from: int | None = None
    #: the process that opened the store, once this one is a fork of it
    _forked_from: int | None = None
    #: the file's (device, inode), for a store on a file
    _file_id: tuple[int, int] | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        page_size: int = 4096,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(
                f"path must be a file path (a str or pathlib.Path) or ':memory:', "
                f"not {type(path).__name__}"
            )
        self.path = os.fspath(path)
        if not isinstance(self.path, str):  # a PathLike of bytes: the URI check needs str
            raise ValidationError("path must be a str or pathlib.Path, not a path in bytes")
        if "\x00" in self.path or (self.path.startswith("file:") and "%00" in self.path):
            # No file name holds a NUL; os.open() and sqlite3 raise a bare ValueError.
            raise ValidationError(
                f"path {self.path!r} holds a NUL character, which no file name can; remove it"
            )
        try:
            os.fsencode(self.path)
        except UnicodeEncodeError as exc:
            # A lone surrogate (say from a JSON "\ud800"): no file name is written with
            # it, and os.open() raised a bare UnicodeEncodeError.
            bad = self.path[exc.start]
            raise ValidationError(
                f"path {self.path!r} holds {bad!r}, which no file name here can be written "
                "with; remove it"
            ) from None
        if self.path.startswith("file:"):
            _check_uri(self.path)
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
        # SQLite silently keeps its default for any other value.
        if (
            not isinstance(page_size, int)
            or isinstance(page_size, bool)
            or not 512 <= page_size <= 65536
            or page_size & (page_size - 1)
        ):
            raise ValidationError(
                "page_size must be a power of two from 512 to 65536 (bytes; 4096 by "
                f"default, 1024 writes less per commit), not {page_size!r}"
            )
        self.page_size = page_size
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

    def __reduce__(self) -> Any:
        # pickle (multiprocessing's spawn and forkserver) raised a bare TypeError about a
        # lock: the connection and its file locks are this process's.
        raise StorageError(
            f"the SQLiteStore of {self.path} cannot be sent to another process (pickled, "
            "as multiprocessing does with spawn or forkserver): its connection and file "
            "locks are this process's; pass the path, and open the store (build the "
            "TeamAccess) in that process"
        )

    # -- opening ------------------------------------------------------------------------

    def _open(self) -> None:
        is_uri = self.path.startswith("file:")
        if not is_uri and self.path not in ("", ":memory:"):
            _create_private(self.path)
        elif is_uri and (file := _file_of_uri(self.path)) is not None:
            _create_private(file)  # SQLite would create it readable by every local user
        elif is_uri and (file := _file_of_uri(self.path, ("rw",))) is not None:
            # rw creates no file, but writes a new database into an empty one.
            _private_if_empty(file)
        if not is_uri and self.path not in ("", ":memory:"):
            _check_siblings(self.path)
        elif (
            is_uri
            # immutable: SQLite neither reads nor writes a file beside the database
            and not _immutable(self.path)
            and (file := _file_of_uri(self.path, ("rwc", "rw", "ro"))) is not None
        ):
            _check_siblings(file)
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
            file_id = _file_id(conn)
            if file_id is not None and file_id in _INHERITED_FILES:
                raise self._forked_in_a_unit()
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._grant_cursor = conn.cursor()
        # A database in memory is the child's own copy after a fork, and safe to use.
        # Compared in SQL: a file name that is not UTF-8 would not decode to str. The memdb
        # VFS ("file:/name?vfs=memdb") names a file that is none: SQLite keeps its journal
        # in memory, which no file the store opens is in (each is switched to WAL).
        on_file = (
            "SELECT file != '' AND (SELECT journal_mode FROM pragma_journal_mode) != 'memory' "
            "FROM pragma_database_list WHERE name = 'main'"
        )
        if conn.execute(on_file).fetchone()[0]:
            self._pid = os.getpid()
            self._file_id = file_id
            _import_ctypes()  # before any fork that needs it: never in the child
            _STORES.add(self)

    def _forked_in_a_unit(self) -> StorageError:
        return StorageError(
            f"the teamaccess database {self.path} cannot be opened in process "
            f"{os.getpid()}: this process was forked while a unit of work on that file was "
            "open (in this thread or another), and SQLite counts that unit's locks as held "
            "here for the life of the process, so a store opened here would take none (it "
            "could not write, and could go on reading data other processes have since "
            "changed); fork outside any unit of work (not inside store.begin() or "
            "store.read()), or start the process with multiprocessing's 'spawn' or "
            "'forkserver' method (nothing was opened)"
        )

    def _prepare(self, conn: sqlite3.Connection) -> None:
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
                self._prepare_once(conn)
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

    def _database(self, conn: sqlite3.Connection) -> Any:
        """The ``sqlite_utils.Database`` on *conn*, made when first needed: a migration,
        or :attr:`db`. Opening a file already at this version does without it, and
        without importing sqlite-utils (which loads click, pluggy and more: many times
        ``import teamaccess``)."""
        if self._db is None:
            import sqlite_utils

            # Neither setting touches the connection: no PRAGMA, no plugin's functions.
            self._db = sqlite_utils.Database(conn, execute_plugins=False, recursive_triggers=False)
        return self._db

    def _prepare_once(self, conn: sqlite3.Connection) -> None:
        # Read before writing anything: a foreign file must stay byte-for-byte intact.
        version, app_id, tables = self._header(conn)
        self._classify(version, app_id, tables)
        if app_id == APPLICATION_ID and version < len(MIGRATIONS) and _read_only(self.path):
            # Upgrading writes; opened read-only, SQLite would only say "attempt to write
            # a readonly database", which does not say that the schema is the reason.
            raise StorageError(
                f"the teamaccess database {self.path} has schema version {version}, older "
                f"than this teamaccess's {len(MIGRATIONS)}, and is opened read-only, so it "
                "cannot be upgraded: open it once writable, as a user who may write it "
                "(SQLiteStore on its path upgrades it), then read it again (the file was "
                "not changed)"
            )
        if version == 0 and not tables:
            # Takes effect only before the first page is written: a new, empty file.
            conn.execute(f"PRAGMA page_size = {self.page_size}")  # an int checked in __init__
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted rows are overwritten with zeros, not left in free space, so an erased
        # address is not in the file (docs/privacy.md). Some builds have it on already.
        conn.execute("PRAGMA secure_delete = ON")
        if not _in_memory(self.path) and not _immutable(self.path):
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"the teamaccess database {self.path} cannot use WAL journaling "
                    f"(it stays in {mode!r} mode); put it on a local file system"
                )
        # A constant from the two checked in __init__, never user text in the SQL.
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        if version < len(MIGRATIONS):
            self._migrate(conn, self._database(conn))
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
            start = version
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                # PRAGMAs take no parameters; both values are ints we computed
                conn.execute(f"PRAGMA user_version = {int(number)}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
            if start < len(MIGRATIONS):
                self._migrated_from = start
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
        elif name.startswith("SQLITE_IOERR"):
            # A write past a disk quota or a file size limit is an I/O error to SQLite,
            # not SQLITE_FULL (that is ENOSPC alone); so is a failing disk.
            hint = (
                "could not be written or read (an I/O error: a disk quota or file size "
                "limit reached, the disk full or failing); free space or raise the limit, "
                "check the disk, then retry"
            )
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
        conn = self._connection()
        with self._lock:
            return self._database(conn)

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
        if self._forked_from is not None:
            return StorageError(
                f"the SQLiteStore of {self.path} was opened in process {self._forked_from} "
                f"and is used in process {os.getpid()}, a fork of it, whose file locks are "
                "that process's; open the store (build the TeamAccess) in each process "
                "after the fork: in an app factory each worker calls, not at import time "
                "under gunicorn --preload (or in its post_fork hook; uWSGI: lazy-apps)"
            )
        return StorageError(f"the teamaccess database {self.path} is closed; open a new "
                            "SQLiteStore")  # fmt: skip

    # begin() and read() hand out the unit's context manager itself, a class rather than
    # a generator: entering and leaving one cost 2.4 us more as a generator, three to four
    # times a use case (see _Unit).
    def begin(self, *, durable: bool = True) -> AbstractContextManager[_SQLiteUnitOfWork]:
        return self._unit(write=True, relaxed=not durable and self.synchronous == "FULL")

    def read(self) -> AbstractContextManager[_SQLiteUnitOfWork]:
        return self._unit(write=False)

    def _unit(self, *, write: bool, relaxed: bool = False) -> _Unit:
        return _Unit(self, write, relaxed)

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

    def account_member(self, account_id: str, user_id: str) -> tuple[Account | None, Member | None]:
        """The account and *user_id*'s membership in it, as a unit's ``account_member()``
        reads them, in one statement instead of a unit of work of four (the optional
        ``CombinedReads`` capability of a store)."""
        with self._lock:
            try:
                row = self._connection().execute(_ACCOUNT_MEMBER_SQL, (user_id, account_id))
                found = row.fetchone()
            except UnicodeEncodeError:
                return None, None  # never stored, so no such account (see grant())
            except sqlite3.Error as exc:
                raise self._error(exc, "reading an account") from exc
        return _account_member(found)

    def invitation_account_member(
        self, invitation_id: str, user_id: str
    ) -> tuple[Invitation | None, Account | None, Member | None]:
        """The invitation, its account and *user_id*'s membership there, as a unit's
        ``get_invitation()``, ``get_account()`` and ``get_member()`` read them, in one
        statement instead of a unit of work (the optional ``CombinedReads`` capability
        of a store: the read before a resend's mail is rendered)."""
        with self._lock:
            try:
                execute = self._connection().execute
                # By the key first, then among rows stored without their number (as
                # _SQLiteUnitOfWork._keyed_one): two statements only for those.
                found = _by_id(
                    lambda sql, params: execute(sql, params).fetchone(),
                    _INVITATION_ACCOUNT_MEMBER_SQL, _INVITATION_BY_KEY_I,
                    _INVITATION_UNNUMBERED_I, (user_id,), invitation_id, "inv_",
                )  # fmt: skip
            except UnicodeEncodeError:
                return None, None, None  # never stored, so no such invitation
            except sqlite3.Error as exc:
                raise self._error(exc, "reading an invitation") from exc
        return _invitation_account_member(found)

    def outbox_row(self, message_id: str) -> OutboxMessage | None:
        """The outbox row as a unit's ``get_outbox()`` reads it, in one statement of
        committed state instead of a unit of work (the optional ``CombinedReads``
        capability of a store: the read back of mail sent at once, before its send)."""
        with self._lock:
            try:
                execute = self._connection().execute
                found = _by_id(
                    lambda sql, params: execute(sql, params).fetchone(),
                    _OUTBOX_ROW_SQL, _BY_KEY, _OUTBOX_UNNUMBERED, (), message_id, "msg_",
                )  # fmt: skip
            except UnicodeEncodeError:
                return None  # never stored, so no such row
            except sqlite3.Error as exc:
                raise self._error(exc, "reading an outbox row") from exc
        return None if found is None else _outbox(found)

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
                deadline = time.monotonic() + self.timeout
                while True:
                    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                    # Busy at once, the busy handler not asked, while another connection
                    # checkpoints (another scrub, a commit's automatic checkpoint): that
                    # ends within milliseconds, so try again within the timeout.
                    if not busy or time.monotonic() >= deadline:
                        break
                    time.sleep(0.005)
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


class _Unit:
    """One unit of work on *store*'s connection, under its lock, as a context manager:
    rolled back unless committed, also when the body raises (quietly then, so the body's
    error is the one that propagates).

    A unit with *relaxed* (``begin(durable=False)``) commits at ``synchronous = NORMAL``.
    SQLite refuses to change the setting inside a transaction, so it is switched around
    the unit, under the lock. In WAL mode the commit stays atomic, only its fsync is
    skipped, and the next durable commit syncs its frames too. Inside another unit (a
    savepoint) the outer transaction decides.
    """

    __slots__ = ("_conn", "_lock", "_relax", "_relaxed", "_store", "_uow", "_write")

    def __init__(self, store: SQLiteStore, write: bool, relaxed: bool) -> None:
        self._store = store
        self._write = write
        self._relaxed = relaxed
        self._relax = False

    def __enter__(self) -> _SQLiteUnitOfWork:
        store = self._store
        # The lock taken is the one released: a fork inside the unit gives the child's
        # store a new lock, and releasing that one raised RuntimeError in the child.
        lock = self._lock = store._lock
        lock.acquire()
        try:
            conn = self._conn = store._connection()
            nested = conn.in_transaction
            relax = self._relax = self._relaxed and not nested
            if relax:
                store._set_synchronous(conn, "NORMAL")
            elif store._sync_lost and not nested:
                store._set_synchronous(conn, store.synchronous)
            try:
                uow = self._uow = _SQLiteUnitOfWork(store, conn, write=self._write, nested=nested)
                uow.start()
            except BaseException:
                self._restore()
                raise
        except BaseException:
            lock.release()
            raise
        return uow

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            try:
                # After an error, quietly: never hide the error that ended the unit.
                self._uow.rollback(quiet=exc_type is not None)
            finally:
                self._restore()
        finally:
            self._lock.release()

    def _restore(self) -> None:
        if self._relax:
            # Quietly: the unit's outcome stands, and should this fail, _sync_lost stays
            # set and the next unit restores the level before it starts.
            with suppress(StorageError):
                self._store._set_synchronous(self._conn, self._store.synchronous)

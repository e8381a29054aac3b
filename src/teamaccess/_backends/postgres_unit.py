# The queries are assembled from constant column lists and a schema name checked by
# PostgresStore; every value is a %s parameter.
# ruff: noqa: S608
"""The PostgreSQL unit of work: rows in, domain objects out, accounts locked on first use."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from .._domain import (
    SEND_ACTIONS,
    Account,
    AuditEvent,
    Contact,
    Invitation,
    Member,
    OutboxMessage,
)
from .._errors import AlreadyInvited, AlreadyMember, Conflict, ValidationError
from .._permissions import PermissionSet
from .codec import DECODE_ERRORS as _DECODE_ERRORS
from .codec import details_text
from .codec import metadata_text as _metadata_text
from .codec import parse_perms as perms
from .codec import perms_text as _perms_text
from .codec import unreadable as _unreadable
from .postgres_privacy import _PgPrivacyQueries
from .postgres_schema import (
    _ACCOUNT_COLS,
    _CONTACT_COLS,
    _EVENT_COLS,
    _INVITATION_COLS,
    _MEMBER_COLS,
    _OUTBOX_COLS,
)

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "PgUnitOfWork",
    "account_member_of",
    "grant_of",
    "invitation_account_member_of",
    "perms",
    "tuples",
    "unstorable",
]

Connection = psycopg.Connection[Any]
Row = tuple[Any, ...]
Params = tuple[Any, ...] | list[Any] | dict[str, Any]
# A statement whose answer can wait: its SQL, its parameters, what it is doing (for the
# error), whether an argument no row can hold makes it a no-op (as a read of such a key
# finds nothing), and what to do with its rows once they are in.
_Step = tuple[str, Params | None, str, bool, "Callable[[list[Row]], None] | None"]


def tuples(conn: Connection) -> psycopg.Cursor[Row]:
    """A cursor on *conn* whose rows are tuples, whatever row factory the connection has
    (the application's pool may hand out connections returning dicts): every read
    here takes its columns by position."""
    return conn.cursor(row_factory=tuple_row)


# -- value conversion ---------------------------------------------------------------------


def _ts(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationError(
            f"PostgresStore stores timezone-aware datetimes only, not {value!r}; "
            "use datetime.now(UTC) or a Clock"
        )
    return value


def _ts_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _ts(value)


def _dt(value: datetime) -> datetime:
    # psycopg returns timestamptz in the session's time zone; the library speaks UTC.
    return value.astimezone(UTC)


def _dt_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


# grant() memo: stored (permissions, status, access_until) -> the parsed answer; like
# the permission-list memo a pure function of the row, never anyone's current grant.
_GRANTS: dict[Row, tuple[PermissionSet, datetime | None]] = {}
# The same for an active member without an end: stored permission text -> the answer.
_ACTIVE_GRANTS: dict[str, tuple[PermissionSet, None]] = {}


def grant_of(row: Row) -> tuple[PermissionSet, datetime | None]:
    """What ``grant()`` answers for a row of ``permissions, status, access_until``: a
    suspended member may use nothing. A row of one column is ``Statements.grant``'s for
    an active member without an end: its permissions."""
    if len(row) == 1:
        active = _ACTIVE_GRANTS.get(row[0])
        if active is None:
            active = (perms(row[0]), None)
            if len(_ACTIVE_GRANTS) > 4096:
                _ACTIVE_GRANTS.clear()
            _ACTIVE_GRANTS[row[0]] = active
        return active
    found = _GRANTS.get(row)
    if found is None:
        held = PermissionSet.none() if row[1] == "suspended" else perms(row[0])
        try:
            found = (held, _dt_or_none(row[2]))
        except _DECODE_ERRORS as exc:
            raise _unreadable(f"an end of access {str(row[2])[:40]!r}", exc) from exc
        if len(_GRANTS) > 4096:
            _GRANTS.clear()
        _GRANTS[row] = found
    return found


def _stored_status(status: str) -> str:
    # "expired" is read off the clock, never stored.
    return "suspended" if status == "suspended" else "active"


def _account(r: Row) -> Account:
    try:
        return Account(id=r[0], name=r[1], owner_id=r[2], owner_email=r[3], created_at=_dt(r[4]))
    except _DECODE_ERRORS as exc:
        raise _unreadable("an account row", exc) from exc


def _member(r: Row) -> Member:
    try:
        return Member(account_id=r[0], user_id=r[1], email=r[2], role=r[3],
                      permissions=perms(r[4]), joined_at=_dt(r[5]), granted_by=r[6],
                      status=r[7], access_until=_dt_or_none(r[8]),
                      metadata=json.loads(r[9]))  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("a member row", exc) from exc


def _invitation(r: Row) -> Invitation:
    try:
        return Invitation(
            id=r[0], account_id=r[1], email=r[2], permissions=perms(r[3]), invited_by=r[4],
            status=r[5], created_at=_dt(r[6]), expires_at=_dt(r[7]), token_hash=r[8],
            closed_at=_dt_or_none(r[9]), accepted_by=r[10], sent_count=r[11], language=r[12],
            access_until=_dt_or_none(r[13]), note=r[14], metadata=json.loads(r[15]),
        )  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an invitation row", exc) from exc


def _contact(r: Row) -> Contact:
    try:
        return Contact(id=r[0], account_id=r[1], name=r[2], email=r[3], company=r[4], phone=r[5],
                       role=r[6], created_at=_dt_or_none(r[7]), categories=r[8])  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("a contact row", exc) from exc


def _event(r: Row) -> AuditEvent:
    try:
        return AuditEvent(id=r[0], account_id=r[1], at=_dt(r[2]), actor_id=r[3], action=r[4],
                          target=r[5], details=json.loads(r[6]))  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an audit event row", exc) from exc


def _outbox(r: Row) -> OutboxMessage:
    try:
        return OutboxMessage(
            id=r[0], account_id=r[1], kind=r[2], recipient=r[3], message_id=r[4],
            created_at=_dt(r[5]), next_attempt_at=_dt(r[6]), status=r[7],
            message=None if r[8] is None else bytes(r[8]), invitation_id=r[9], attempts=r[10],
            last_error=r[11], sent_at=_dt_or_none(r[12]),
        )  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an outbox row", exc) from exc


def account_member_of(row: Row | None) -> tuple[Account | None, Member | None]:
    """The answer of ``account_member()`` from a row of ``Statements.account_member``."""
    if row is None:
        return None, None
    return _account(row), None if row[5] is None else _member(row[5:])


def invitation_account_member_of(
    row: Row | None,
) -> tuple[Invitation | None, Account | None, Member | None]:
    """The answer of ``invitation_account_member()`` from a row of
    ``Statements.invitation_account_member``."""
    if row is None:
        return None, None, None
    account = None if row[16] is None else _account(row[16:21])
    return _invitation(row[:16]), account, None if row[21] is None else _member(row[21:])


def unstorable(exc: BaseException) -> bool:
    """An argument no row can hold: a lone surrogate or a NUL character."""
    return isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, psycopg.DataError) and "NUL" in str(exc)
    )


def _client_side(exc: BaseException) -> bool:
    """An error psycopg raised before sending the statement (an argument it cannot
    encode), as opposed to the server's answer, which carries an SQLSTATE."""
    return isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, psycopg.Error)
        and exc.sqlstate is None
        and not isinstance(exc, psycopg.OperationalError)
    )


_savepoints = iter(range(1, 2**62))
# Pipeline mode needs libpq 14 or later (psycopg[binary] bundles one); with an older
# libpq the queued statements go one round trip each, as before.
_PIPELINE = psycopg.Pipeline.is_supported()


class PgUnitOfWork(_PgPrivacyQueries):
    """One transaction (or, nested in another unit or in join(), one savepoint)."""

    def __init__(
        self,
        store: PostgresStore,
        conn: Connection,
        *,
        write: bool,
        nested: bool,
        relaxed: bool = False,
    ) -> None:
        self._s = store
        self._q = store._sql
        self._conn = conn
        self._write = write
        self._nested = nested
        self._relaxed = relaxed
        self._savepoint = f"teamaccess_{next(_savepoints)}"
        self._open = False
        # accounts whose advisory lock this unit holds (cleared when its transaction ends)
        self._locked: set[str] = set()
        # status of each invitation as this unit read it: its update is conditional on it
        self._seen: dict[str, str] = {}
        # account of each invitation this unit read (cancel_outbox() needs no lock then)
        self._accounts_of: dict[str, str] = {}
        # Statements whose answer nothing waits for (the unit's BEGIN, its locks): sent
        # with the next statement whose answer is needed, in one round trip (_send).
        self._queued: list[_Step] = []
        self.committed = False

    # transaction control

    def _run(self, sql: str, doing: str) -> None:
        try:
            tuples(self._conn).execute(sql)
        except psycopg.Error as exc:
            raise self._s._error(exc, doing) from exc

    def start(self) -> None:
        """Queue the statements that open the unit; the first statement sent takes them
        along (one statement each: a pipeline carries no multi-statement string)."""
        conn = self._conn
        doing = "starting a unit of work"
        if self._nested:
            self._queue(f"SAVEPOINT {self._savepoint}", None, "starting a nested unit of work")
        elif conn.autocommit:
            if self._write:
                # READ COMMITTED whatever the server's default: each statement after a
                # lock reads what the lock's previous holder committed.
                self._queue("BEGIN ISOLATION LEVEL READ COMMITTED", None, doing)
            else:
                self._queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", None, doing)
        else:
            # psycopg opens the transaction itself on a connection not in autocommit mode
            self._queue(
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
                if self._write
                else "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
                None,
                doing,
            )
        if self._write and self._relaxed and not self._nested:
            self._queue("SET LOCAL synchronous_commit = off", None, doing)
        self._open = True

    def commit(self) -> None:
        if self._open:
            if self._queued:  # nothing waits for them, but they were asked for
                self._flush()
            self._open = False
            if self._nested:
                self._run(f"RELEASE SAVEPOINT {self._savepoint}", "committing a nested unit")
            elif self._conn.autocommit:
                self._run("COMMIT", "committing")
            else:
                try:
                    self._conn.commit()
                except psycopg.Error as exc:
                    raise self._s._error(exc, "committing") from exc
            if not self._nested:
                self._locked.clear()
        # like MemoryStore: whatever follows a commit is discarded unless committed again
        self.committed = True

    def rollback(self, *, quiet: bool) -> None:
        if not self._open:
            return
        self._open = False
        self._locked.clear()
        self._seen.clear()
        self._queued.clear()
        conn = self._conn
        try:
            if conn.broken or conn.closed:
                return
            if self._nested:
                if conn.info.transaction_status in (
                    TransactionStatus.INTRANS,
                    TransactionStatus.INERROR,
                ):
                    tuples(conn).execute(
                        f"ROLLBACK TO SAVEPOINT {self._savepoint}; "
                        f"RELEASE SAVEPOINT {self._savepoint}"
                    )
            elif conn.autocommit:
                tuples(conn).execute("ROLLBACK")
            else:
                conn.rollback()
        except psycopg.Error as exc:
            if not quiet:  # never hide the error that caused the rollback
                raise self._s._error(exc, "rolling back") from exc

    # statement helpers

    def _queue(
        self,
        sql: str,
        params: Params | None,
        doing: str = "running a query",
        unstorable_is_none: bool = False,
        then: Callable[[list[Row]], None] | None = None,
    ) -> None:
        self._queued.append((sql, params, doing, unstorable_is_none, then))

    def _flush(self) -> None:
        """Send the queued statements now, in one round trip."""
        steps, self._queued = self._queued, []
        self._pipeline(steps)

    def _send(
        self, sql: str, params: Params, unstorable_is_none: bool = False
    ) -> psycopg.Cursor[Any]:
        """Run *sql* after the queued statements, all in one round trip; its cursor.

        Without queued statements it is a plain ``execute``. An argument no row can hold
        raises ``UnicodeEncodeError`` or a ``DataError`` (the caller decides what that
        means); any other error is a ``StorageError``.
        """
        if not self._open:
            self.start()
        if not self._queued:
            try:
                return tuples(self._conn).execute(sql, params)
            except (psycopg.Error, UnicodeEncodeError) as exc:
                if unstorable_is_none and unstorable(exc):
                    raise
                raise self._s._error(exc, "running a query") from exc
        steps, self._queued = self._queued, []
        steps.append((sql, params, "running a query", False, None))
        return self._pipeline(steps, unstorable_is_none)

    def _pipeline(self, steps: list[_Step], last_unstorable: bool = False) -> psycopg.Cursor[Any]:
        """Run *steps* in order in psycopg's pipeline mode: each goes to the server without
        waiting for the answer to the one before, and the server runs them one after the
        other as if each had been sent alone (so a read after a lock reads what the lock's
        last holder committed). The first that fails raises what it raises alone; the
        server skips the rest. Returns the last step's cursor."""
        conn = self._conn
        cursors: list[psycopg.Cursor[Any]] = []
        first: BaseException | None = None  # the first failure, in the order sent
        failed_at = -1
        skipped: set[int] = set()
        try:
            with conn.pipeline() if _PIPELINE else nullcontext():
                for n, (sql, params, _, unstorable_ok, _) in enumerate(steps):
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
        if first is not None:
            if failed_at < 0:  # the first step without an answer is the one that failed
                failed_at = next(
                    (n for n, c in enumerate(cursors) if c.pgresult is None and n not in skipped),
                    len(steps) - 1,
                )
            if failed_at == len(steps) - 1 and last_unstorable and unstorable(first):
                raise first
            raise self._s._error(first, steps[failed_at][2]) from first
        for n, (cursor, step) in enumerate(zip(cursors, steps, strict=False)):
            then = step[4]
            if then is not None and n not in skipped:
                then(cursor.fetchall())
        return cursors[-1]

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

    def _insert(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Run an ``INSERT ... ON CONFLICT DO NOTHING``; False if a unique key was taken.

        ON CONFLICT rather than catching the violation: an error would abort the whole
        transaction, and a unit stays usable after a ``Conflict``.
        """
        return self._exec(sql, params).rowcount == 1

    def _lock(self, account_id: str) -> None:
        """Serialise writers of *account_id* until this unit's transaction ends.

        Queued: the statement that needs the lock takes it along, right behind it."""
        if self._write and account_id not in self._locked:
            self._queue(self._q.lock, (self._s._lock_space, account_id))
            self._locked.add(account_id)

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

    def _note_locked(self, rows: list[Row]) -> None:
        for account_id, _ in rows:
            self._locked.add(account_id)

    # many new rows at once (BulkUnitOfWork)

    def add_many(
        self,
        *,
        accounts: Sequence[Account] = (),
        members: Sequence[tuple[Member, str]] = (),
        contacts: Sequence[tuple[Contact, str]] = (),
        events: Sequence[AuditEvent] = (),
    ) -> None:
        """One pipelined ``executemany`` per table. The accounts added here need no
        lock (no other transaction sees them before this one commits); any other account
        written to is locked as a single ``add_*`` would lock it."""
        new = {a.id for a in accounts}
        touched = [m.account_id for m, _ in members] + [c.account_id for c, _ in contacts]
        for account_id in dict.fromkeys(touched + [e.account_id for e in events]):
            if account_id not in new:
                self._lock(account_id)
        details = [details_text(e.details) for e in events]
        s = self._q.s
        steps: list[tuple[str, list[tuple[Any, ...]], Callable[[], Conflict]]] = [
            (f"INSERT INTO {s}.accounts (id, name, owner_id, owner_email, created_at) "
             "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
             [(a.id, a.name, a.owner_id, a.owner_email, _ts(a.created_at)) for a in accounts],
             lambda: Conflict("one of the accounts exists already; nothing of this unit "
                              "is kept")),
            (f"INSERT INTO {s}.members ({_MEMBER_COLS}, email_key) "
             "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
             [(m.account_id, m.user_id, m.email, m.role, _perms_text(m.permissions),
               _ts(m.joined_at), m.granted_by, _stored_status(m.status),
               _ts_or_none(m.access_until), _metadata_text(m.metadata), key)
              for m, key in members],
             lambda: AlreadyMember("one of the members is a member of its account already; "
                                   "nothing of this unit is kept")),
            (f"INSERT INTO {s}.contacts (id, account_id, name, email, email_key, company, "
             "phone, role, created_at, categories) "
             "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
             [(c.id, c.account_id, c.name, c.email, key, c.company, c.phone, c.role,
               _ts_or_none(c.created_at), sorted(c.categories)) for c, key in contacts],
             lambda: Conflict("one of the contacts exists already; nothing of this unit "
                              "is kept")),
            (f"INSERT INTO {s}.events ({_EVENT_COLS}) "
             "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
             [(e.id, e.account_id, _ts(e.at), e.actor_id, e.action, e.target, d)
              for e, d in zip(events, details, strict=True)],
             lambda: Conflict("one of the audit events exists already; nothing of this "
                              "unit is kept")),
        ]  # fmt: skip
        if not self._open:
            self.start()
        if self._queued:
            self._flush()
        for sql, params, conflict in steps:
            if not params:
                continue
            try:
                with tuples(self._conn) as cursor:
                    cursor.executemany(sql, params)
                    written = cursor.rowcount
            except (psycopg.Error, UnicodeEncodeError) as exc:
                raise self._s._error(exc, "writing rows") from exc
            # ON CONFLICT DO NOTHING, as in the single adds: a taken key writes no row
            # instead of aborting the transaction.
            if written != len(params):
                raise conflict()

    # accounts

    def add_account(self, account: Account) -> None:
        a = account
        self._lock(a.id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.accounts (id, name, owner_id, owner_email, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (a.id, a.name, a.owner_id, a.owner_email, _ts(a.created_at)),
        ):
            raise Conflict(f"account {a.id!r} exists already")

    def get_account(self, account_id: str) -> Account | None:
        self._lock(account_id)
        row = self._one(
            f"SELECT {_ACCOUNT_COLS} FROM {self._q.s}.accounts WHERE id = %s", (account_id,), True
        )
        return None if row is None else _account(row)

    def update_account(self, account: Account) -> None:
        a = account
        self._lock(a.id)
        self._exec(
            f"UPDATE {self._q.s}.accounts SET name = %s, owner_id = %s, owner_email = %s, "
            "created_at = %s WHERE id = %s",
            (a.name, a.owner_id, a.owner_email, _ts(a.created_at), a.id),
        )

    def accounts_for(self, user_id: str) -> list[Account]:
        # A writer reads a user's accounts to count the ones it created (the account
        # rate limit): creators of one user's accounts are serialised like writers of an
        # account, or racing processes would all pass the count.
        self._lock(f"user {user_id}")
        s = self._q.s
        rows = self._all(
            f"SELECT a.id, a.name, a.owner_id, a.owner_email, a.created_at FROM {s}.members m "
            f"JOIN {s}.accounts a ON a.id = m.account_id WHERE m.user_id = %s "
            "ORDER BY a.created_at, a.seq",
            (user_id,),
            True,
        )
        return [_account(r) for r in rows]

    # members

    def add_member(self, member: Member, email_key: str) -> None:
        m = member
        self._lock(m.account_id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.members ({_MEMBER_COLS}, email_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (m.account_id, m.user_id, m.email, m.role, _perms_text(m.permissions),
             _ts(m.joined_at), m.granted_by, _stored_status(m.status),
             _ts_or_none(m.access_until), _metadata_text(m.metadata), email_key),
        ):  # fmt: skip
            raise AlreadyMember(f"{m.email} is already a member of account {m.account_id!r}")

    def get_member(self, account_id: str, user_id: str) -> Member | None:
        self._lock(account_id)
        row = self._one(
            f"SELECT {_MEMBER_COLS} FROM {self._q.s}.members "
            "WHERE account_id = %s AND user_id = %s",
            (account_id, user_id),
            True,
        )
        return None if row is None else _member(row)

    def member_by_email(self, account_id: str, email_key: str) -> Member | None:
        self._lock(account_id)
        row = self._one(
            f"SELECT {_MEMBER_COLS} FROM {self._q.s}.members "
            "WHERE account_id = %s AND email_key = %s",
            (account_id, email_key),
            True,
        )
        return None if row is None else _member(row)

    def update_member(self, member: Member) -> None:
        m = member
        self._lock(m.account_id)
        self._exec(
            f"UPDATE {self._q.s}.members SET email = %s, role = %s, permissions = %s, "
            "joined_at = %s, granted_by = %s, status = %s, access_until = %s, metadata = %s "
            "WHERE account_id = %s AND user_id = %s",
            (m.email, m.role, _perms_text(m.permissions), _ts(m.joined_at), m.granted_by,
             _stored_status(m.status), _ts_or_none(m.access_until), _metadata_text(m.metadata),
             m.account_id, m.user_id),
        )  # fmt: skip

    def delete_member(self, account_id: str, user_id: str) -> None:
        self._lock(account_id)
        self._exec(
            f"DELETE FROM {self._q.s}.members WHERE account_id = %s AND user_id = %s",
            (account_id, user_id),
        )

    def members(self, account_id: str) -> list[Member]:
        self._lock(account_id)
        rows = self._all(
            f"SELECT {_MEMBER_COLS} FROM {self._q.s}.members WHERE account_id = %s "
            "ORDER BY role <> 'owner', joined_at, seq",
            (account_id,),
            True,
        )
        return [_member(r) for r in rows]

    # invitations

    def add_invitation(self, invitation: Invitation, email_key: str) -> None:
        # The token itself is never written: only its hash.
        i = invitation
        self._lock(i.account_id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.invitations ({_INVITATION_COLS}, email_key) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (i.id, i.account_id, i.email, _perms_text(i.permissions), i.invited_by, i.status,
             _ts(i.created_at), _ts(i.expires_at), i.token_hash, _ts_or_none(i.closed_at),
             i.accepted_by, i.sent_count, i.language, _ts_or_none(i.access_until), i.note,
             _metadata_text(i.metadata), email_key),
        ):  # fmt: skip
            if self.get_invitation(i.id) is not None:
                raise Conflict(f"invitation {i.id!r} exists already")
            raise AlreadyInvited(f"{i.email} has a pending invitation already")

    def get_invitation(self, invitation_id: str) -> Invitation | None:
        self._lock_row("invitations", invitation_id)
        row = self._one(
            f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations WHERE id = %s",
            (invitation_id,),
            True,
        )
        if row is None:
            return None
        if self._write:
            self._seen[row[0]] = row[5]
        self._accounts_of[row[0]] = row[1]
        return _invitation(row)

    def update_invitation(self, invitation: Invitation) -> None:
        i = invitation
        if i.account_id not in self._locked:
            self._lock_row("invitations", i.id)
        # A second pending invitation for the address would break the unique index and,
        # with it, the whole transaction: the guard turns it into AlreadyInvited instead.
        # Single use: a status change is conditional on the status this unit read (the
        # account lock already keeps other writers out; this holds without it too).
        seen = self._seen.get(i.id)
        s = self._q.s
        done = self._exec(
            f"UPDATE {s}.invitations i SET permissions = %s, invited_by = %s, status = %s, "
            "expires_at = %s, token_hash = %s, closed_at = %s, accepted_by = %s, "
            "sent_count = %s, language = %s, access_until = %s, note = %s, metadata = %s "
            "WHERE i.id = %s AND NOT (%s = 'pending' AND "
            f"i.status <> 'pending' AND EXISTS (SELECT 1 FROM {s}.invitations o WHERE "
            "o.account_id = i.account_id AND o.email_key = i.email_key "
            "AND o.status = 'pending' AND o.id <> i.id)) "
            "AND (%s::text IS NULL OR i.status = %s::text)",
            (_perms_text(i.permissions), i.invited_by, i.status, _ts(i.expires_at),
             i.token_hash, _ts_or_none(i.closed_at), i.accepted_by, i.sent_count, i.language,
             _ts_or_none(i.access_until), i.note, _metadata_text(i.metadata), i.id, i.status,
             seen, seen),
        ).rowcount  # fmt: skip
        if done:
            self._seen[i.id] = i.status
            return
        now = self._one(f"SELECT status FROM {s}.invitations WHERE id = %s", (i.id,), True)
        if now is not None and seen is not None and now[0] != seen:
            raise Conflict(
                f"invitation {i.id} became {now[0]!r} in another transaction after this one "
                f"read it as {seen!r}; nothing was changed - retry"
            )
        if now is not None and i.status == "pending":
            raise AlreadyInvited(f"{i.email} has a pending invitation already")

    def pending_invitation_for(self, account_id: str, email_key: str) -> Invitation | None:
        self._lock(account_id)
        row = self._one(
            f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations "
            "WHERE account_id = %s AND email_key = %s AND status = 'pending'",
            (account_id, email_key),
            True,
        )
        return None if row is None else _invitation(row)

    def invitations(
        self,
        account_id: str,
        *,
        status: str | None = None,
        invited_by: str | None = None,
    ) -> list[Invitation]:
        self._lock(account_id)
        sql = f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations WHERE account_id = %s"
        params = [account_id]
        if status is not None:
            sql += " AND status = %s"
            params.append(status)
        if invited_by is not None:
            sql += " AND invited_by = %s"
            params.append(invited_by)
        rows = self._all(sql + " ORDER BY created_at, seq", params, True)
        return [_invitation(r) for r in rows]

    # combined reads: the optional capability ``CombinedReads`` (_ports.py), one
    # statement where the use cases would otherwise run two, after the same locks

    def account_member(self, account_id: str, user_id: str) -> tuple[Account | None, Member | None]:
        self._lock(account_id)
        return account_member_of(self._one(self._q.account_member, (user_id, account_id), True))

    def address_in_use(self, account_id: str, email_key: str) -> tuple[bool, Invitation | None]:
        self._lock(account_id)
        row = self._one(
            self._q.address_in_use, (account_id, email_key, account_id, email_key), True
        )
        if row is None:  # an unstorable key: no member, no invitation holds it
            return False, None
        if row[1] is None:
            return bool(row[0]), None
        self._accounts_of[row[1]] = row[2]
        return bool(row[0]), _invitation(row[1:])

    def send_marks(
        self,
        account_id: str,
        since: datetime,
        nth: int,
        email_key: str,
        mail_since: datetime,
        mail_nth: int,
    ) -> tuple[datetime | None, datetime | None]:
        # event_times()'s lock of the account, then invitation_mail_times()'s of the
        # address, in that order: in one round trip where neither is held yet.
        mail_key = f"to {email_key}"
        if self._write:
            space = self._s._lock_space
            if account_id not in self._locked and mail_key not in self._locked:
                self._queue(self._q.lock_two, (space, account_id, space, mail_key))
                self._locked.update((account_id, mail_key))
            else:
                self._lock(account_id)
                self._lock(mail_key)
        row = self._one(
            self._q.send_marks,
            (account_id, sorted(SEND_ACTIONS), _ts(since), max(nth, 1) - 1, email_key,
             _ts(mail_since), max(mail_nth, 1) - 1),
            True,
        )  # fmt: skip
        if row is None:  # an unstorable key: nothing stored holds it
            return None, None
        try:
            return _dt_or_none(row[0]), _dt_or_none(row[1])
        except _DECODE_ERRORS as exc:
            raise _unreadable("an audit event or outbox time", exc) from exc

    def invitation_and_inviter(self, invitation_id: str) -> tuple[Invitation | None, Member | None]:
        # get_invitation()'s lock (the account, through the row), which is also
        # get_member()'s.
        self._lock_row("invitations", invitation_id)
        row = self._one(self._q.invitation_and_inviter, (invitation_id,), True)
        if row is None:
            return None, None
        if self._write:
            self._seen[row[0]] = row[5]
        self._accounts_of[row[0]] = row[1]
        return _invitation(row), None if row[16] is None else _member(row[16:])

    def cancel_outbox(self, invitation_id: str) -> None:
        # What update_outbox() of each pending row with status "cancelled" writes, after
        # its lock of the rows' account unless this unit holds it already.
        if self._write and self._accounts_of.get(invitation_id) not in self._locked:
            self._queue(
                self._q.lock_outbox_of,
                (self._s._lock_space, invitation_id),
                unstorable_is_none=True,
                then=self._note_locked,
            )
        self._exec(
            f"UPDATE {self._q.s}.outbox SET status = 'cancelled' "
            "WHERE invitation_id = %s AND status = 'pending'",
            (invitation_id,),
        )

    def update_outbox_sent(self, message_id: str, sent_at: datetime) -> None:
        # What update_outbox() writes for the row as stored, marked sent, after its lock.
        self._lock_row("outbox", message_id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET status = 'sent', attempts = attempts + 1, "
            "last_error = NULL, sent_at = %s WHERE id = %s",
            (_ts(sent_at), message_id),
        )

    # contacts

    def add_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        self._lock(c.account_id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.contacts (id, account_id, name, email, email_key, "
            "company, phone, role, created_at, categories) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (c.id, c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at), sorted(c.categories)),
        ):  # fmt: skip
            raise Conflict(f"contact {c.id!r} exists already")

    def get_contact(self, contact_id: str) -> Contact | None:
        self._lock_row("contacts", contact_id)
        row = self._one(
            f"SELECT {_CONTACT_COLS} FROM {self._q.s}.contacts WHERE id = %s", (contact_id,), True
        )
        return None if row is None else _contact(row)

    def update_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        if c.account_id not in self._locked:
            self._lock_row("contacts", c.id)
            self._lock(c.account_id)
        self._exec(
            f"UPDATE {self._q.s}.contacts SET account_id = %s, name = %s, email = %s, "
            "email_key = %s, company = %s, phone = %s, role = %s, created_at = %s, "
            "categories = %s WHERE id = %s",
            (c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at), sorted(c.categories), c.id),
        )  # fmt: skip

    def delete_contact(self, contact_id: str) -> None:
        self._lock_row("contacts", contact_id)
        self._exec(f"DELETE FROM {self._q.s}.contacts WHERE id = %s", (contact_id,))

    def contacts(self, account_id: str) -> list[Contact]:
        self._lock(account_id)
        rows = self._all(
            f"SELECT {_CONTACT_COLS} FROM {self._q.s}.contacts WHERE account_id = %s ORDER BY seq",
            (account_id,),
            True,
        )
        return [_contact(r) for r in rows]

    # audit

    def add_event(self, event: AuditEvent) -> None:
        e = event
        details = details_text(e.details)
        self._lock(e.account_id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.events ({_EVENT_COLS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (e.id, e.account_id, _ts(e.at), e.actor_id, e.action, e.target, details),
        ):
            raise Conflict(f"audit event {e.id!r} exists already")

    def events(self, account_id: str, *, limit: int) -> list[AuditEvent]:
        if limit <= 0:
            return []
        self._lock(account_id)
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM {self._q.s}.events WHERE account_id = %s "
            "ORDER BY seq DESC LIMIT %s",
            (account_id, limit),
            True,
        )
        return [_event(r) for r in rows]

    def event_times(
        self, account_id: str, actions: Collection[str], since: datetime
    ) -> list[datetime]:
        names = sorted(set(actions))
        if not names:
            return []
        self._lock(account_id)
        rows = self._all(
            f"SELECT at FROM {self._q.s}.events WHERE account_id = %s "
            "AND action = ANY (%s) AND at >= %s ORDER BY at, seq",
            (account_id, names, _ts(since)),
            True,
        )
        return [_dt(r[0]) for r in rows]

    def invitation_mail_times(self, email_key: str, since: datetime) -> list[datetime]:
        # Two accounts inviting one address at once count each other's mail: writers of
        # an address are serialised like writers of an account.
        self._lock(f"to {email_key}")
        rows = self._all(
            f"SELECT o.created_at FROM {self._q.s}.invitations i JOIN {self._q.s}.outbox o "
            "ON o.invitation_id = i.id WHERE i.email_key = %s AND o.kind = 'invitation' "
            "AND o.created_at >= %s ORDER BY o.created_at",
            (email_key, _ts(since)),
            True,
        )
        return [_dt(r[0]) for r in rows]

    # outbox

    def add_outbox(self, message: OutboxMessage) -> None:
        m = message
        self._lock(m.account_id)
        if not self._insert(
            f"INSERT INTO {self._q.s}.outbox ({_OUTBOX_COLS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (m.id, m.account_id, m.kind, m.recipient, m.message_id, _ts(m.created_at),
             _ts(m.next_attempt_at), m.status, m.message, m.invitation_id, m.attempts,
             m.last_error, _ts_or_none(m.sent_at)),
        ):  # fmt: skip
            raise Conflict(f"outbox message {m.id!r} exists already")

    def update_outbox(self, message: OutboxMessage) -> None:
        m = message
        if m.account_id not in self._locked:
            self._lock_row("outbox", m.id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET next_attempt_at = %s, status = %s, attempts = %s, "
            "last_error = %s, sent_at = %s WHERE id = %s",
            (_ts(m.next_attempt_at), m.status, m.attempts, m.last_error,
             _ts_or_none(m.sent_at), m.id),
        )  # fmt: skip

    def get_outbox(self, message_id: str) -> OutboxMessage | None:
        self._lock_row("outbox", message_id)
        row = self._one(
            f"SELECT {_OUTBOX_COLS} FROM {self._q.s}.outbox WHERE id = %s", (message_id,), True
        )
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
            ("status = %s", status),
            ("next_attempt_at <= %s", _ts_or_none(due_before)),
            ("invitation_id = %s", invitation_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_OUTBOX_COLS} FROM {self._q.s}.outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, seq"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(max(limit, 0))
        return [_outbox(r) for r in self._all(sql, params, True)]

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxMessage]:
        # FOR UPDATE SKIP LOCKED: rows another unit holds (a worker claiming at this very
        # moment, a unit cancelling an invitation's mail) are left to it, so concurrent
        # workers take different rows and never wait for each other. No account lock: the
        # claim is this one statement, and moves nothing but the lease.
        s = self._q.s
        rows = self._all(
            f"WITH due AS (SELECT id AS due_id FROM {s}.outbox "
            "WHERE status = 'pending' AND next_attempt_at <= %s "
            "ORDER BY created_at, seq LIMIT %s FOR UPDATE SKIP LOCKED), "
            f"claimed AS (UPDATE {s}.outbox SET next_attempt_at = %s FROM due "
            f"WHERE id = due.due_id RETURNING {_OUTBOX_COLS}, seq) "
            f"SELECT {_OUTBOX_COLS} FROM claimed ORDER BY created_at, seq",
            (_ts(now), max(limit, 0), _ts(lease_until)),
        )
        return [_outbox(r) for r in rows]

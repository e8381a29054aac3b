# The queries are assembled from constant column lists and a schema name checked by
# PostgresStore; every value is a %s parameter.
# ruff: noqa: S608
"""The PostgreSQL unit of work: rows in, domain objects out, accounts locked on first use."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus

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
from .postgres_pipe import PgStatements, Row, many, tuples, unstorable
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
    "outbox_of",
    "perms",
    "tuples",
    "unstorable",
]

Connection = psycopg.Connection[Any]


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
            last_error=r[11], sent_at=_dt_or_none(r[12]), leased_until=_dt_or_none(r[13]),
        )  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an outbox row", exc) from exc


def account_member_of(row: Row | None) -> tuple[Account | None, Member | None]:
    """The answer of ``account_member()`` from a row of ``Statements.account_member``."""
    if row is None:
        return None, None
    return _account(row), None if row[5] is None else _member(row[5:])


def outbox_of(row: Row) -> OutboxMessage:
    """An outbox row read with ``Statements.outbox_row``."""
    return _outbox(row)


def invitation_account_member_of(
    row: Row | None,
) -> tuple[Invitation | None, Account | None, Member | None]:
    """The answer of ``invitation_account_member()`` from a row of
    ``Statements.invitation_account_member``."""
    if row is None:
        return None, None, None
    account = None if row[16] is None else _account(row[16:21])
    return _invitation(row[:16]), account, None if row[21] is None else _member(row[21:])


_savepoints = iter(range(1, 2**62))


class PgUnitOfWork(_PgPrivacyQueries, PgStatements):
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
        self._init_queue()
        self._fresh = not nested
        # status of each invitation as this unit read it: its update is conditional on it
        self._seen: dict[str, str] = {}
        # account of each invitation this unit read (cancel_outbox() needs no lock then),
        # and of each contact, by ("contacts", id) (delete_contact() needs none then)
        self._accounts_of: dict[str | tuple[str, str], str] = {}
        self.committed = False

    # transaction control

    def _run(self, sql: str, doing: str) -> None:
        if self._s._forked_from is not None:
            raise self._s._fork_error()  # a unit open at a fork: the parent's socket
        try:
            tuples(self._conn).execute(sql)
        except psycopg.Error as exc:
            raise self._s._error(exc, doing) from exc

    def start(self) -> None:
        """Queue the statements that open the unit; the first statement sent takes them
        along (one statement each: a pipeline carries no multi-statement string)."""
        conn = self._conn
        doing = "beginning the transaction"
        self._open = True  # before the first _queue(), which would start it again
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

    def commit(self) -> None:
        if self._open:
            if self._s._forked_from is not None:
                raise self._s._fork_error()
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
                self._locking.clear()
        # like MemoryStore: whatever follows a commit is discarded unless committed again
        self.committed = True

    def rollback(self, *, quiet: bool) -> None:
        if not self._open:
            return
        self._open = False
        self._locked.clear()
        self._locking.clear()
        self._seen.clear()
        self._queued.clear()
        conn = self._conn
        if self._s._forked_from is not None:
            return  # the parent's transaction, over the parent's socket: not ours to end
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
                written = many(self._conn, sql, params)
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
        self._insert(
            f"INSERT INTO {self._q.s}.accounts (id, name, owner_id, owner_email, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (a.id, a.name, a.owner_id, a.owner_email, _ts(a.created_at)),
            lambda: Conflict(f"account {a.id!r} exists already"),
        )  # fmt: skip

    def get_account(self, account_id: str) -> Account | None:
        self._lock(account_id)
        row = self._one(
            f"SELECT {_ACCOUNT_COLS} FROM {self._q.s}.accounts WHERE id = %s", (account_id,), True
        )
        return None if row is None else _account(row)

    def update_account(self, account: Account) -> None:
        a = account
        self._lock(a.id)
        self._write_later(
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
        self._insert(
            f"INSERT INTO {self._q.s}.members ({_MEMBER_COLS}, email_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (m.account_id, m.user_id, m.email, m.role, _perms_text(m.permissions),
             _ts(m.joined_at), m.granted_by, _stored_status(m.status),
             _ts_or_none(m.access_until), _metadata_text(m.metadata), email_key),
            lambda: AlreadyMember(f"{m.email} is already a member of account {m.account_id!r}"),
        )  # fmt: skip

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
        self._write_later(
            f"UPDATE {self._q.s}.members SET email = %s, role = %s, permissions = %s, "
            "joined_at = %s, granted_by = %s, status = %s, access_until = %s, metadata = %s "
            "WHERE account_id = %s AND user_id = %s",
            (m.email, m.role, _perms_text(m.permissions), _ts(m.joined_at), m.granted_by,
             _stored_status(m.status), _ts_or_none(m.access_until), _metadata_text(m.metadata),
             m.account_id, m.user_id),
        )  # fmt: skip

    def delete_member(self, account_id: str, user_id: str) -> None:
        self._lock(account_id)
        self._write_later(
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

        def taken() -> Conflict:
            if self.get_invitation(i.id) is not None:
                return Conflict(f"invitation {i.id!r} exists already")
            return AlreadyInvited(f"{i.email} has a pending invitation already")

        self._insert(
            f"INSERT INTO {self._q.s}.invitations ({_INVITATION_COLS}, email_key) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (i.id, i.account_id, i.email, _perms_text(i.permissions), i.invited_by, i.status,
             _ts(i.created_at), _ts(i.expires_at), i.token_hash, _ts_or_none(i.closed_at),
             i.accepted_by, i.sent_count, i.language, _ts_or_none(i.access_until), i.note,
             _metadata_text(i.metadata), email_key),
            taken,
        )  # fmt: skip

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
        if not self._holds(i.account_id):
            self._lock_row("invitations", i.id)
        # A second pending invitation for the address would break the unique index and,
        # with it, the whole transaction: the guard turns it into AlreadyInvited instead.
        # Single use: a status change is conditional on the status this unit read (the
        # account lock already keeps other writers out; this holds without it too).
        seen = self._seen.get(i.id)
        s = self._q.s

        def check(cursor: psycopg.Cursor[Any]) -> None:
            if cursor.rowcount:
                self._seen[i.id] = i.status
                return
            now = self._one(f"SELECT status FROM {s}.invitations WHERE id = %s", (i.id,), True)
            if now is not None and seen is not None and now[0] != seen:
                raise Conflict(
                    f"invitation {i.id} became {now[0]!r} in another transaction after this "
                    f"one read it as {seen!r}; nothing was changed - retry"
                )
            if now is not None and i.status == "pending":
                raise AlreadyInvited(f"{i.email} has a pending invitation already")

        self._write_later(
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
            check,
        )  # fmt: skip

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

    def invitations_accepted_by(self, user_id: str) -> list[Invitation]:
        # Across accounts, as invitations_involving(): a read, under no account's lock.
        rows = self._all(
            f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations WHERE accepted_by = %s "
            "ORDER BY created_at, seq",
            (user_id,),
            True,
        )
        return [_invitation(r) for r in rows]

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
            if not self._holds(account_id) and not self._holds(mail_key):
                self._queue(
                    self._q.lock_two,
                    (space, account_id, space, mail_key),
                    holds=(account_id, mail_key),
                )
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

    def contact_and_member(
        self, contact_id: str, user_id: str
    ) -> tuple[Contact | None, Member | None]:
        # get_contact()'s lock (the account, through the row), which is also get_member()'s.
        self._lock_row("contacts", contact_id)
        row = self._one(self._q.contact_and_member, (user_id, contact_id), True)
        if row is None:
            return None, None
        self._accounts_of[("contacts", row[0])] = row[1]
        return _contact(row), None if row[9] is None else _member(row[9:])

    def cancel_outbox(self, invitation_id: str) -> None:
        # What update_outbox() of each pending row with status "cancelled" writes, after
        # its lock of the rows' account unless this unit holds it already.
        account_id = self._accounts_of.get(invitation_id)
        if self._write and (account_id is None or not self._holds(account_id)):
            self._queue(
                self._q.lock_outbox_of,
                (self._s._lock_space, invitation_id),
                unstorable_is_none=True,
                then=self._note_locked,
            )
        self._write_later(
            f"UPDATE {self._q.s}.outbox SET status = 'cancelled' "
            "WHERE invitation_id = %s AND status = 'pending'",
            (invitation_id,),
        )

    def update_outbox_sent(self, message_id: str, sent_at: datetime) -> None:
        # What update_outbox() writes for the row as stored, marked sent, after its lock.
        self._lock_row("outbox", message_id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET status = 'sent', attempts = attempts + 1, "
            "last_error = NULL, sent_at = %s, leased_until = NULL WHERE id = %s",
            (_ts(sent_at), message_id),
        )

    # contacts

    def add_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        self._lock(c.account_id)
        self._insert(
            f"INSERT INTO {self._q.s}.contacts (id, account_id, name, email, email_key, "
            "company, phone, role, created_at, categories) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (c.id, c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at), sorted(c.categories)),
            lambda: Conflict(f"contact {c.id!r} exists already"),
        )  # fmt: skip

    def get_contact(self, contact_id: str) -> Contact | None:
        self._lock_row("contacts", contact_id)
        row = self._one(
            f"SELECT {_CONTACT_COLS} FROM {self._q.s}.contacts WHERE id = %s", (contact_id,), True
        )
        if row is None:
            return None
        self._accounts_of[("contacts", row[0])] = row[1]
        return _contact(row)

    def update_contact(self, contact: Contact, email_key: str) -> None:
        c = contact
        # The account's lock alone: a contact stays in the account it was added to (the
        # service writes back the contact it read), so its row's account is this one.
        self._lock(c.account_id)
        self._write_later(
            f"UPDATE {self._q.s}.contacts SET account_id = %s, name = %s, email = %s, "
            "email_key = %s, company = %s, phone = %s, role = %s, created_at = %s, "
            "categories = %s WHERE id = %s",
            (c.account_id, c.name, c.email, email_key, c.company, c.phone, c.role,
             _ts_or_none(c.created_at), sorted(c.categories), c.id),
        )  # fmt: skip

    def delete_contact(self, contact_id: str) -> None:
        # Through the row, unless this unit read the contact and holds its account's
        # lock already (the same lock: a contact stays in the account it was added to).
        account_id = self._accounts_of.get(("contacts", contact_id))
        if account_id is None or not self._holds(account_id):
            self._lock_row("contacts", contact_id)
        self._write_later(f"DELETE FROM {self._q.s}.contacts WHERE id = %s", (contact_id,))

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
        self._insert(
            f"INSERT INTO {self._q.s}.events ({_EVENT_COLS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (e.id, e.account_id, _ts(e.at), e.actor_id, e.action, e.target, details),
            lambda: Conflict(f"audit event {e.id!r} exists already"),
        )  # fmt: skip

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
        self._insert(
            f"INSERT INTO {self._q.s}.outbox ({_OUTBOX_COLS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (m.id, m.account_id, m.kind, m.recipient, m.message_id, _ts(m.created_at),
             _ts(m.next_attempt_at), m.status, m.message, m.invitation_id, m.attempts,
             m.last_error, _ts_or_none(m.sent_at), _ts_or_none(m.leased_until)),
            lambda: Conflict(f"outbox message {m.id!r} exists already"),
        )  # fmt: skip

    def update_outbox(self, message: OutboxMessage) -> None:
        m = message
        if not self._holds(m.account_id):
            self._lock_row("outbox", m.id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET next_attempt_at = %s, status = %s, attempts = %s, "
            "last_error = %s, sent_at = %s, leased_until = %s WHERE id = %s",
            (_ts(m.next_attempt_at), m.status, m.attempts, m.last_error,
             _ts_or_none(m.sent_at), _ts_or_none(m.leased_until), m.id),
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
            f"claimed AS (UPDATE {s}.outbox SET next_attempt_at = %s, leased_until = %s "
            f"FROM due WHERE id = due.due_id RETURNING {_OUTBOX_COLS}, seq) "
            f"SELECT {_OUTBOX_COLS} FROM claimed ORDER BY created_at, seq",
            (_ts(now), max(limit, 0), _ts(lease_until), _ts(lease_until)),
        )
        return [_outbox(r) for r in rows]

    def waiting_accounts(self, *, now: datetime) -> list[str]:
        """The accounts with rows ``retry_outbox()`` would move at *now*, sorted: for
        ``retry_waiting()``, which moves them one account at a time (see there)."""
        rows = self._all(
            f"SELECT DISTINCT account_id FROM {self._q.s}.outbox WHERE status = 'pending' "
            "AND next_attempt_at > %(now)s AND (leased_until IS NULL OR leased_until <= %(now)s) "
            "ORDER BY account_id",
            {"now": _ts(now)},
        )
        return [r[0] for r in rows]

    def retry_outbox(self, *, now: datetime, account_id: str | None = None) -> list[OutboxMessage]:
        # One statement, no account lock (as claim_outbox()): a row a claim holds at this
        # moment is waited for, and its condition read again on the row the claim left,
        # which has a lease; a row this UPDATE holds is skipped by a claim (SKIP LOCKED).
        s = self._q.s
        sql = (
            f"WITH made AS (UPDATE {s}.outbox SET next_attempt_at = %(now)s, "
            "leased_until = NULL WHERE status = 'pending' AND next_attempt_at > %(now)s "
            "AND (leased_until IS NULL OR leased_until <= %(now)s)"
        )
        params: dict[str, Any] = {"now": _ts(now)}
        if account_id is not None:
            sql += " AND account_id = %(account)s"
            params["account"] = account_id
        sql += (
            f" RETURNING {_OUTBOX_COLS}, seq) "
            f"SELECT {_OUTBOX_COLS} FROM made ORDER BY created_at, seq"
        )
        return [_outbox(r) for r in self._all(sql, params)]

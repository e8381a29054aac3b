# The queries are assembled from the constant column lists in sqlite_rows; every value is a "?"
# parameter, so there is no injection to guard against.
# ruff: noqa: S608
"""The SQLite unit of work: one transaction (or savepoint) of :class:`SQLiteStore`, and
every query the use cases run in it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._domain import (
    SEND_ACTIONS,
    Account,
    AuditEvent,
    Contact,
    Invitation,
    Member,
    OutboxMessage,
)
from .._errors import (
    AlreadyInvited,
    AlreadyMember,
    Conflict,
    TeamAccessError,
)
from .codec import details_text
from .sqlite_privacy import _PrivacyQueries
from .sqlite_rows import (
    _ACCOUNT_COLS,
    _BY_KEY,
    _CONTACT_COLS,
    _DECODE_ERRORS,
    _EVENT_COLS,
    _INVITATION_BY_KEY_I,
    _INVITATION_COLS,
    _INVITATION_UNNUMBERED,
    _INVITATION_UNNUMBERED_I,
    _MEMBER_COLS,
    _OUTBOX_COLS,
    _OUTBOX_UNNUMBERED,
    Row,
    _account,
    _by_id,
    _contact,
    _dt,
    _dt_or_none,
    _event,
    _id_number,
    _invitation,
    _is_unique_violation,
    _member,
    _member_seq,
    _metadata_text,
    _outbox,
    _outbox_params,
    _perms_text,
    _stored_status,
    _ts,
    _ts_or_none,
    _unreadable,
)
from .sqlite_schema import SEND_ACTIONS_SQL

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

__all__ = ["_SQLiteUnitOfWork"]


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
        if self._s._forked_from is not None:
            raise self._s._closed()  # a unit open at a fork: the connection is the parent's
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
        if self._s._forked_from is not None:
            return  # the parent's transaction, on the parent's connection: not ours to end
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
        elif self._s._forked_from is not None:
            raise self._s._closed()
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

    def _keyed_one(
        self, sql: str, unnumbered: str, row_id: str, prefix: str, by_key: str = _BY_KEY
    ) -> Row | None:
        """One row by id: *sql* ends in a WHERE clause completed with *by_key* or
        *unnumbered* (see sqlite_rows)."""
        return _by_id(self._one, sql, by_key, unnumbered, (), row_id, prefix)

    def _keyed_write(
        self,
        sql: str,
        unnumbered: str,
        head: tuple[Any, ...],
        row_id: str,
        prefix: str,
        conflict: Callable[[], TeamAccessError] | None = None,
    ) -> None:
        """An UPDATE or DELETE of one row by id (as :meth:`_keyed_one` finds it), *head*
        the values before the WHERE clause."""
        number = _id_number(row_id, prefix)
        if (
            number is not None
            and self._exec(sql + _BY_KEY, (*head, number, row_id), conflict).rowcount
        ):
            return
        self._exec(sql + unnumbered, (*head, row_id), conflict)

    def _add_numbered(
        self,
        table: str,
        sql: str,
        params: tuple[Any, ...],
        conflict: Callable[[], TeamAccessError],
    ) -> None:
        """Run the INSERT *sql*, whose first value is the row's key and second its id: the
        number in the id (schema 7), or NULL, so that SQLite picks one, for an id without
        one or whose number another row holds (a row written without it, by hand or by
        another program)."""
        number = params[0]
        if number is not None:
            # Not if a row stored without its number holds the id (its key was taken when
            # it was written, and may be free now): the id index has only those. A search
            # of its own, under the unit's write lock like the INSERT: as the INSERT's
            # condition (INSERT ... SELECT ... WHERE NOT EXISTS), it made SQLite copy the
            # row through a temporary table, since the SELECT read the table written to,
            # which cost twice this search.
            if self._one(_UNNUMBERED_ID[table], (params[1],)) is not None:
                raise conflict()
            try:
                self._exec(sql, params, _KeyTaken)
                return
            except _KeyTaken as taken:
                cause = taken.__cause__
                if getattr(cause, "sqlite_errorname", "") != "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise conflict() from cause
                held = self._one(f"SELECT id FROM {table} WHERE key = ?", (number,))
                if held is not None and held[0] == params[1]:
                    raise conflict() from cause  # the same id: a row that exists already
            params = (None, *params[1:])
        self._exec(sql, params, conflict)

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
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (member.account_id, member.user_id, member.email, member.role,
             _perms_text(member.permissions), _ts(member.joined_at), member.granted_by,
             _stored_status(member.status), _ts_or_none(member.access_until),
             _metadata_text(member.metadata), email_key, _member_seq()),
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
        self._add_numbered(
            "invitations",
            f"INSERT INTO invitations (key, {_INVITATION_COLS}, email_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_id_number(i.id, "inv_"), i.id, i.account_id, i.email, _perms_text(i.permissions),
             i.invited_by, i.status, _ts(i.created_at), _ts(i.expires_at), i.token_hash,
             _ts_or_none(i.closed_at), i.accepted_by, i.sent_count, i.language,
             _ts_or_none(i.access_until), i.note, _metadata_text(i.metadata), email_key),
            lambda: self._invitation_conflict(i),
        )  # fmt: skip

    def _invitation_conflict(self, invitation: Invitation) -> Conflict:
        if self.get_invitation(invitation.id) is not None:
            return Conflict(f"invitation {invitation.id!r} exists already")
        return AlreadyInvited(f"{invitation.email} has a pending invitation already")

    def get_invitation(self, invitation_id: str) -> Invitation | None:
        row = self._keyed_one(
            f"SELECT {_INVITATION_COLS} FROM invitations WHERE ",
            _INVITATION_UNNUMBERED,
            invitation_id,
            "inv_",
        )
        return None if row is None else _invitation(row)

    def update_invitation(self, invitation: Invitation) -> None:
        i = invitation
        # Only the columns that may change: SQLite rewrites every index holding a column
        # of the SET list, so naming the fixed ones cost two index pages per update.
        self._keyed_write(
            "UPDATE invitations SET permissions = ?, invited_by = ?, status = ?, "
            "expires_at = ?, token_hash = ?, closed_at = ?, accepted_by = ?, sent_count = ?, "
            "language = ?, access_until = ?, note = ?, metadata = ? WHERE ",
            _INVITATION_UNNUMBERED,
            (_perms_text(i.permissions), i.invited_by, i.status, _ts(i.expires_at),
             i.token_hash, _ts_or_none(i.closed_at), i.accepted_by, i.sent_count, i.language,
             _ts_or_none(i.access_until), i.note, _metadata_text(i.metadata)),
            i.id,
            "inv_",
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

    # combined reads: the optional capability ``CombinedReads`` (_ports.py), one
    # statement where the use cases would otherwise run two

    def invitations_accepted_by(self, user_id: str) -> list[Invitation]:
        # "accepted_by = ?" implies the partial index's "IS NOT NULL", so SQLite uses it
        rows = self._all(
            f"SELECT {_INVITATION_COLS} FROM invitations WHERE accepted_by = ? "
            "ORDER BY created_at, id",
            (user_id,),
        )
        return [_invitation(r) for r in rows]

    def account_member(self, account_id: str, user_id: str) -> tuple[Account | None, Member | None]:
        row = self._one(_ACCOUNT_MEMBER_SQL, (user_id, account_id))
        return _account_member(row)

    def address_in_use(self, account_id: str, email_key: str) -> tuple[bool, Invitation | None]:
        row = self._one(_ADDRESS_SQL, (account_id, email_key, account_id, email_key))
        assert row is not None  # the outer SELECT has one row, whatever is stored
        return row[0] is not None, None if row[1] is None else _invitation(row[1:])

    def send_marks(
        self,
        account_id: str,
        since: datetime,
        nth: int,
        email_key: str,
        mail_since: datetime,
        mail_nth: int,
    ) -> tuple[datetime | None, datetime | None]:
        # Stored times are fixed-width UTC text, so text order is time order and "at > ?"
        # is the service's "after since".
        row = self._one(
            _SEND_MARKS_SQL,
            (account_id, _ts(since), max(nth, 1) - 1, email_key, _ts(mail_since),
             max(mail_nth, 1) - 1),
        )  # fmt: skip
        assert row is not None  # a SELECT of two scalar subqueries has one row
        try:
            return _dt_or_none(row[0]), _dt_or_none(row[1])
        except _DECODE_ERRORS as exc:
            raise _unreadable("an audit event or outbox time", exc) from exc

    def invitation_and_inviter(self, invitation_id: str) -> tuple[Invitation | None, Member | None]:
        row = self._keyed_one(
            _INVITATION_INVITER_SQL,
            _INVITATION_UNNUMBERED_I,
            invitation_id,
            "inv_",
            _INVITATION_BY_KEY_I,
        )
        if row is None:
            return None, None
        inviter = None if row[16] is None else _member(row[16:])
        return _invitation(row), inviter

    def cancel_outbox(self, invitation_id: str) -> None:
        # What update_outbox() of each pending row with status "cancelled" writes.
        self._exec(
            "UPDATE outbox SET status = 'cancelled' WHERE invitation_id = ? AND status = 'pending'",
            (invitation_id,),
        )

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
        sends = f"action IN {SEND_ACTIONS_SQL} AND " if SEND_ACTIONS.issuperset(names) else ""
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
        self._add_numbered(
            "outbox",
            "INSERT INTO outbox (key, id, account_id, kind, recipient, message_id, "
            "created_at, next_attempt_at, status, message, invitation_id, attempts, "
            "last_error, sent_at, leased_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_id_number(message.id, "msg_"), message.id, *_outbox_params(message)),
            lambda: Conflict(f"outbox message {message.id!r} exists already"),
        )

    def update_outbox(self, message: OutboxMessage) -> None:
        m = message
        # The delivery state only (see update_invitation): the invitation index stays put.
        self._keyed_write(
            "UPDATE outbox SET next_attempt_at = ?, status = ?, attempts = ?, "
            "last_error = ?, sent_at = ?, leased_until = ? WHERE ",
            _OUTBOX_UNNUMBERED,
            (_ts(m.next_attempt_at), m.status, m.attempts, m.last_error,
             _ts_or_none(m.sent_at), _ts_or_none(m.leased_until)),
            m.id,
            "msg_",
        )  # fmt: skip

    def update_outbox_sent(self, message_id: str, sent_at: datetime) -> None:
        # What update_outbox() writes for the row as stored, marked sent (_record).
        self._keyed_write(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, "
            "sent_at = ?, leased_until = NULL WHERE ",
            _OUTBOX_UNNUMBERED,
            (_ts(sent_at),),
            message_id,
            "msg_",
        )

    def get_outbox(self, message_id: str) -> OutboxMessage | None:
        row = self._keyed_one(
            f"SELECT {_OUTBOX_COLS} FROM outbox WHERE ", _OUTBOX_UNNUMBERED, message_id, "msg_"
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
        # The outbox() query for due mail, with each row's key (schema 7: no index on every
        # id), so the UPDATE finds the rows by rowid.
        rows = self._all(
            f"SELECT key, {_OUTBOX_COLS} FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at <= ? ORDER BY created_at, id LIMIT ?",
            (_ts(now), max(limit, 0)),
        )
        if not rows:
            return []
        due = [_outbox(r[1:]) for r in rows]
        lease = _ts(lease_until)
        keys = [r[0] for r in rows]
        for start in range(0, len(keys), 500):  # under SQLite's limit of bound parameters
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self._exec(
                # The numbered parameters come first: a bare "?" takes the next number.
                "UPDATE outbox SET next_attempt_at = ?1, leased_until = ?1 "
                f"WHERE status = 'pending' AND next_attempt_at <= ?2 AND key IN ({marks})",
                (lease, _ts(now), *chunk),
            )
        return [attrs.evolve(m, next_attempt_at=lease_until, leased_until=lease_until) for m in due]

    def retry_outbox(self, *, now: datetime, account_id: str | None = None) -> list[OutboxMessage]:
        # The one write lock (BEGIN IMMEDIATE) keeps claims out between the read and the
        # UPDATE, whose condition repeats the read's all the same.
        waiting = (
            "status = 'pending' AND next_attempt_at > ?1 "
            "AND (leased_until IS NULL OR leased_until <= ?1)"
        )
        params: tuple[Any, ...] = (_ts(now),)
        if account_id is not None:
            waiting += " AND account_id = ?2"
            params += (account_id,)
        rows = self._all(
            f"SELECT key, {_OUTBOX_COLS} FROM outbox WHERE {waiting} ORDER BY created_at, id",
            params,
        )
        keys = [r[0] for r in rows]
        for start in range(0, len(keys), 500):  # under SQLite's limit of bound parameters
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            self._exec(
                f"UPDATE outbox SET next_attempt_at = ?1, leased_until = NULL "
                f"WHERE {waiting} AND key IN ({marks})",
                (*params, *chunk),
            )
        return [attrs.evolve(_outbox(r[1:]), next_attempt_at=now, leased_until=None) for r in rows]


# The search for a row stored without its number that holds an id: one of the id index.
_UNNUMBERED: Final = {"invitations": _INVITATION_UNNUMBERED, "outbox": _OUTBOX_UNNUMBERED}
_UNNUMBERED_ID: Final = {
    table: f"SELECT 1 FROM {table} WHERE {where}" for table, where in _UNNUMBERED.items()
}


class _KeyTaken(Conflict):
    """An INSERT of a numbered row met a unique key (see _add_numbered)."""


def _qualified(cols: str, table: str) -> str:
    return ", ".join(f"{table}.{c}" for c in cols.split(", "))


def _account_member(row: Row | None) -> tuple[Account | None, Member | None]:
    if row is None:
        return None, None
    return _account(row), None if row[5] is None else _member(row[5:])


def _invitation_account_member(
    row: Row | None,
) -> tuple[Invitation | None, Account | None, Member | None]:
    if row is None:
        return None, None, None
    account = None if row[16] is None else _account(row[16:21])
    return _invitation(row[:16]), account, None if row[21] is None else _member(row[21:])


#: The account and one user's membership in it (a LEFT JOIN: the user may be none).
_ACCOUNT_MEMBER_SQL: Final = (
    f"SELECT {_ACCOUNT_COLS}, {_qualified(_MEMBER_COLS, 'm')} FROM accounts a "
    "LEFT JOIN members m ON m.account_id = a.id AND m.user_id = ? WHERE a.id = ?"
)
#: Whether an address is a member's, and its pending invitation: the conditions are
#: member_by_email()'s and pending_invitation_for()'s, word for word (their indexes).
_ADDRESS_SQL: Final = (
    "SELECT (SELECT 1 FROM members WHERE account_id = ? AND email_key = ?), "
    f"{_qualified(_INVITATION_COLS, 'i')} FROM (SELECT 1) LEFT JOIN invitations i "
    "ON i.account_id = ? AND i.email_key = ? AND i.status = 'pending'"
)
#: The nth newest of the account's sends (event_times() of the send actions) and of the
#: address's invitation mails (invitation_mail_times()) after a time, or NULL: an index
#: range read from the newest end, however many there are.
_SEND_MARKS_SQL: Final = (
    "SELECT (SELECT at FROM events WHERE account_id = ? AND "
    f"action IN {SEND_ACTIONS_SQL} AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?), "
    "(SELECT o.created_at FROM invitations i JOIN outbox o ON o.invitation_id = i.id "
    "WHERE i.email_key = ? AND o.kind = 'invitation' AND o.created_at > ? "
    "ORDER BY o.created_at DESC LIMIT 1 OFFSET ?)"
)
#: An invitation, its account and one user's membership there (the read before a resend's
#: mail is rendered): get_invitation()'s, get_account()'s and get_member()'s conditions.
#: This and the next end in WHERE, completed with _INVITATION_BY_KEY_I or
#: _INVITATION_UNNUMBERED_I (qualified: accounts has an id column too).
_INVITATION_ACCOUNT_MEMBER_SQL: Final = (
    f"SELECT {_qualified(_INVITATION_COLS, 'i')}, {_ACCOUNT_COLS}, "
    f"{_qualified(_MEMBER_COLS, 'm')} FROM invitations i "
    "LEFT JOIN accounts a ON a.id = i.account_id "
    "LEFT JOIN members m ON m.account_id = i.account_id AND m.user_id = ? WHERE "
)
#: An invitation and its inviter's membership (none for SYSTEM or a removed member).
_INVITATION_INVITER_SQL: Final = (
    f"SELECT {_qualified(_INVITATION_COLS, 'i')}, {_qualified(_MEMBER_COLS, 'm')} "
    "FROM invitations i LEFT JOIN members m "
    "ON m.account_id = i.account_id AND m.user_id = i.invited_by WHERE "
)

"""The SQLite backend's bulk write (``BulkUnitOfWork.add_many``): one ``executemany`` per
table and statement shape, with the same rows, columns and values the single ``add_*``
methods write."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._domain import Account, AuditEvent, Contact, Member
from .._errors import AlreadyMember, Conflict, TeamAccessError
from .._permissions import PermissionSet
from .codec import details_text
from .sqlite_rows import (
    _is_unique_violation,
    _member_seq,
    _metadata_text,
    _perms_text,
    _stored_status,
    _ts,
    _ts_or_none,
)

if TYPE_CHECKING:
    from .sqlite_unit import _SQLiteUnitOfWork

__all__ = ["add_many"]

_ACCOUNT_SQL = (
    "INSERT INTO accounts (id, name, owner_id, owner_email, created_at) VALUES (?, ?, ?, ?, ?)"
)
# Each member's seq from _member_seq(), as add_member() writes it: nothing is read first.
_MEMBER_SQL = (
    "INSERT INTO members (account_id, user_id, email, role, permissions, joined_at, "
    "granted_by, status, access_until, metadata, email_key, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CONTACT_SQL = (
    "INSERT INTO contacts (id, account_id, name, email, email_key, company, phone, role, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# seq, email and email_key from the contact's row just written (schema 2)
_CATEGORY_SQL = (
    "INSERT INTO contact_categories (contact_id, account_id, category, seq, email, "
    "email_key) SELECT id, account_id, ?, seq, email, email_key FROM contacts WHERE id = ?"
)
_EVENT_SQL = (
    "INSERT INTO events (id, account_id, at, actor_id, action, target, details) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _memo(convert: Callable[[Any], str]) -> Callable[[Any], str]:
    """*convert* remembered per value: an import shares a few permission sets and one
    time among thousands of rows."""
    seen: dict[Any, str] = {}

    def cached(value: Any) -> str:
        text = seen.get(value)
        if text is None:
            text = seen[value] = convert(value)
        return text

    return cached


def add_many(
    uow: _SQLiteUnitOfWork,
    *,
    accounts: Sequence[Account],
    members: Sequence[tuple[Member, str]],
    contacts: Sequence[tuple[Contact, str]],
    events: Sequence[AuditEvent],
) -> None:
    ts: Callable[[datetime], str] = _memo(_ts)
    texts: dict[int, tuple[PermissionSet, str]] = {}

    def perms(value: PermissionSet) -> str:
        # By identity: an import shares a few sets among thousands of members, and a
        # set's own hash is computed anew on every call. The set is kept with its text,
        # so its id cannot be reused while this runs.
        found = texts.get(id(value))
        if found is None:
            found = texts[id(value)] = (value, _perms_text(value))
        return found[1]

    rows: list[tuple[Any, ...]] = []
    for m, key in members:
        rows.append((
            m.account_id, m.user_id, m.email, m.role, perms(m.permissions), ts(m.joined_at),
            m.granted_by, _stored_status(m.status), _ts_or_none(m.access_until),
            _metadata_text(m.metadata) if m.metadata else "{}", key, _member_seq(),
        ))  # fmt: skip
    details = [details_text(e.details) for e in events]
    steps: list[tuple[str, Iterable[tuple[Any, ...]]]] = [
        (_ACCOUNT_SQL, [(a.id, a.name, a.owner_id, a.owner_email, ts(a.created_at))
                        for a in accounts]),
        (_MEMBER_SQL, rows),
        (_CONTACT_SQL, [(c.id, c.account_id, c.name, c.email, key, c.company, c.phone, c.role,
                         _ts_or_none(c.created_at)) for c, key in contacts]),
        (_CATEGORY_SQL, [(category, c.id) for c, _key in contacts
                         for category in sorted(c.categories)]),
        (_EVENT_SQL, [(e.id, e.account_id, ts(e.at), e.actor_id, e.action, e.target, d)
                      for e, d in zip(events, details, strict=True)]),
    ]  # fmt: skip
    if not uow._open:
        uow.start()
    conn = uow._conn
    for sql, params in steps:
        if not params:
            continue
        try:
            conn.executemany(sql, params)
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise _conflict(exc) from exc
            raise uow._s._error(exc, "writing a row that breaks the schema's rules") from exc
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise uow._s._error(exc, "writing rows") from exc


def _conflict(exc: sqlite3.IntegrityError) -> TeamAccessError:
    # "UNIQUE constraint failed: accounts.id" names the table, not the row.
    table = str(exc).rpartition(": ")[2].partition(".")[0] or "a table"
    error = AlreadyMember if table == "members" else Conflict
    return error(
        f"a row for {table} exists already (its unique key is taken: {exc}); "
        "nothing of this unit is kept"
    )

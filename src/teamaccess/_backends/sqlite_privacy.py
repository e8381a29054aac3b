# The queries are assembled from sqlite_rows' constant column lists; every value is a "?"
# parameter (a list of them as one JSON array), so there is no injection to guard against.
# ruff: noqa: S608
"""SQLiteStore's queries for personal data: a person across every account, erasure, purge.

They run rarely (an access or erasure request, a nightly purge), so they scan tables
instead of adding indexes that every invitation and acceptance would have to update. A
list of values goes in as one JSON array parameter, read with ``json_each``, so the SQL
text stays constant whatever the list's length. The measured cost is in docs/privacy.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._domain import AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._errors import TeamAccessError
from . import sqlite_rows as _rows
from .codec import details_text
from .search import AT_FORMS, ESCAPES, _ascii_lower

__all__ = ["_PrivacyQueries"]

Row = tuple[Any, ...]


def _list(values: Collection[str]) -> str:
    return json.dumps(sorted(set(values)))


def _needles(values: Collection[str]) -> str:
    # SQLite's lower() changes A-Z only, as the Store protocol asks.
    return json.dumps(sorted({_ascii_lower(v) for v in values}))


def _odd(text: str) -> str:
    """The condition that the SQL expression *text* holds a character that is not ASCII
    (its byte and character lengths differ) or starts an escape: one of ``ESCAPES``."""
    escape = " OR ".join(f"instr({text}, '{e}')" for e in ESCAPES)
    return f"({escape} OR length(CAST({text} AS BLOB)) != length({text}))"


def _disguised(text: str) -> str:
    """The condition that the SQL expression *text* may write an address otherwise
    (``search.disguised()``), the rarer half first: most text is plain ASCII."""
    at = " OR ".join(f"instr({text}, '{form}')" for form in AT_FORMS)
    return f"({_odd(text)} AND ({at}))"


def _hidden(needles: Collection[str]) -> bool:
    """Whether the search also finds text that may write an address otherwise: where a
    needle is an address."""
    return any("@" in n for n in needles)


def _in_json(column: str, hidden: bool) -> str:
    """The condition that a string in the JSON text *column*, nested ones too, decoded,
    holds a needle of ?1 (json_tree walks them: the stored text escapes characters), or
    with *hidden*, may write an address otherwise. Walking the strings costs more than a
    search of the stored text, so that comes first: text without a character that is not
    ASCII or a backslash escapes nothing and holds every string as it is (a key too, which
    the walk then tells apart); only other text may hold an address written otherwise.
    Most rows hold no metadata at all: ``{}``."""
    walk = (
        f"EXISTS (SELECT 1 FROM json_tree({column}) t, json_each(?1) n "
        "WHERE t.type = 'text' AND instr(lower(t.value), n.value))"
    )
    if hidden:
        walk += (
            f" OR EXISTS (SELECT 1 FROM json_tree({column}) t "
            f"WHERE t.type = 'text' AND {_disguised('t.value')})"
        )
    return (
        f"({column} != '{{}}' AND (EXISTS (SELECT 1 FROM json_each(?1) n "
        f"WHERE instr(lower({column}), n.value)) OR {_odd(column)}) AND ({walk}))"
    )


#: The contact fields a person may be named in besides the address.
_CONTACT_TEXT = ("name", "company", "phone", "role")


def _only(
    alias: str, accounts: Collection[str] | None, number: int = 2
) -> tuple[str, tuple[str, ...]]:
    """The condition and parameter (number *number*) that keep a search to *accounts*
    (through each table's index on its account), or nothing for every account."""
    if accounts is None:
        return "", ()
    found = f" AND {alias}.account_id IN (SELECT value FROM json_each(?{number}))"
    return found, (_list(accounts),)


class _PrivacyQueries:
    """A mixin of ``_SQLiteUnitOfWork``: the privacy part of the ``UnitOfWork`` protocol."""

    #: The rowid (seq) of each event events_with() found in this unit, by event id: an
    #: event's id has no index (every event written would update it), its rowid is the key.
    _event_seqs: dict[str, int] | None = None

    if TYPE_CHECKING:

        def _exec(
            self,
            sql: str,
            params: tuple[Any, ...] | list[Any],
            conflict: Callable[[], TeamAccessError] | None = None,
        ) -> sqlite3.Cursor: ...

        def _all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Row]: ...

        def _keyed_write(
            self,
            sql: str,
            unnumbered: str,
            head: tuple[Any, ...],
            row_id: str,
            prefix: str,
            conflict: Callable[[], TeamAccessError] | None = None,
        ) -> None: ...

    def members_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Member]:
        only, more = _only("m", accounts, 3)
        rows = self._all(
            f"SELECT {_rows._MEMBER_COLS} FROM members m "
            "WHERE (user_id IN (SELECT value FROM json_each(?1)) "
            "OR granted_by IN (SELECT value FROM json_each(?1)) "
            f"OR email_key IN (SELECT value FROM json_each(?2))){only} "
            "ORDER BY joined_at, account_id, user_id",
            (_list(user_ids), _list(email_keys), *more),
        )
        return [_rows._member(r) for r in rows]

    def invitations_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Invitation]:
        only, more = _only("i", accounts, 3)
        rows = self._all(
            f"SELECT {_rows._INVITATION_COLS} FROM invitations i "
            "WHERE (email_key IN (SELECT value FROM json_each(?2)) "
            "OR invited_by IN (SELECT value FROM json_each(?1)) "
            f"OR accepted_by IN (SELECT value FROM json_each(?1))){only} "
            "ORDER BY created_at, id",
            (_list(user_ids), _list(email_keys), *more),
        )
        return [_rows._invitation(r) for r in rows]

    def contacts_with(
        self, email_keys: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        only, more = _only("c", accounts)
        rows = self._all(
            f"SELECT {_rows._CONTACT_COLS} FROM contacts c "
            f"WHERE c.email_key IN (SELECT value FROM json_each(?1)){only} ORDER BY c.seq",
            (_list(email_keys), *more),
        )
        return [_rows._contact(r) for r in rows]

    def events_with(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[AuditEvent]:
        # json_tree walks every string in details, nested ones too, decoded: the stored
        # text escapes non-ASCII characters, so searching the raw JSON would miss them.
        only, more = _only("e", accounts)
        details = _in_json("e.details", _hidden(needles))
        rows = self._all(
            f"SELECT {_rows._EVENT_COLS}, seq FROM events e WHERE (EXISTS ("
            "SELECT 1 FROM json_each(?1) n WHERE instr(lower(e.actor_id), n.value) "
            f"OR instr(lower(e.target), n.value)) OR {details}){only} ORDER BY e.seq",
            (_needles(needles), *more),
        )
        if self._event_seqs is None:
            self._event_seqs = {}
        self._event_seqs.update((r[0], r[-1]) for r in rows)
        return [_rows._event(r) for r in rows]

    def members_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Member]:
        only, more = _only("m", accounts)
        metadata = _in_json("m.metadata", _hidden(needles))
        rows = self._all(
            f"SELECT {_rows._MEMBER_COLS} FROM members m WHERE {metadata}{only} "
            "ORDER BY joined_at, account_id, user_id",
            (_needles(needles), *more),
        )
        return [_rows._member(r) for r in rows]

    def invitations_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Invitation]:
        only, more = _only("i", accounts)
        hidden = f" OR {_disguised('i.note')}" if _hidden(needles) else ""
        rows = self._all(
            f"SELECT {_rows._INVITATION_COLS} FROM invitations i WHERE (EXISTS ("
            "SELECT 1 FROM json_each(?1) n WHERE instr(lower(i.note), n.value)) OR "
            f"{_in_json('i.metadata', _hidden(needles))}{hidden}){only} ORDER BY created_at, id",
            (_needles(needles), *more),
        )
        return [_rows._invitation(r) for r in rows]

    def contacts_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        found = " OR ".join(f"instr(lower(c.{col}), n.value)" for col in _CONTACT_TEXT)
        only, more = _only("c", accounts)
        hidden = ""
        if _hidden(needles):
            hidden = "".join(f" OR {_disguised(f'c.{col}')}" for col in _CONTACT_TEXT)
        rows = self._all(
            f"SELECT {_rows._CONTACT_COLS} FROM contacts c WHERE (EXISTS ("
            f"SELECT 1 FROM json_each(?1) n WHERE {found}){hidden}){only} ORDER BY c.seq",
            (_needles(needles), *more),
        )
        return [_rows._contact(r) for r in rows]

    def outbox_with(self, needles: Collection[str]) -> list[OutboxMessage]:
        rows = self._all(
            f"SELECT {_rows._OUTBOX_COLS} FROM outbox WHERE EXISTS ("
            "SELECT 1 FROM json_each(?) n WHERE instr(lower(recipient), n.value)) "
            "ORDER BY created_at, id",
            (_needles(needles),),
        )
        return [_rows._outbox(r) for r in rows]

    def event_mark(self) -> object:
        # The newest event's rowid and id: rows added later get a higher rowid as long as
        # that row is there (SQLite gives max(rowid) + 1), which changed_accounts() checks.
        # The same for the outbox (its key is the rowid).
        event = self._all("SELECT seq, id FROM events ORDER BY seq DESC LIMIT 1", ())
        mail = self._all(
            f"SELECT key, {_rows._OUTBOX_COLS} FROM outbox ORDER BY key DESC LIMIT 1", ()
        )
        return (
            "events",
            *(event[0] if event else (0, None)),
            *((mail[0][0], _rows._outbox(mail[0][1:]).id) if mail else (0, None)),
        )

    def changed_accounts(self, mark: object) -> set[str] | None:
        if not (isinstance(mark, tuple) and len(mark) == 5 and mark[0] == "events"):
            return None
        _, seq, event_id, _, _ = mark
        # From the marked row on (a range of the rowid's own B-tree): if it is gone, a
        # row added since may have taken its rowid or a lower one, and nobody can tell.
        rows = self._all(
            "SELECT seq, id, account_id FROM events WHERE seq >= ? ORDER BY seq", (seq,)
        )
        if event_id is not None:
            if not rows or (rows[0][0], rows[0][1]) != (seq, event_id):
                return None
            rows = rows[1:]
        return {r[2] for r in rows}

    def outbox_since(self, needles: Collection[str], mark: object) -> list[OutboxMessage] | None:
        if not (isinstance(mark, tuple) and len(mark) == 5 and mark[0] == "events"):
            return None
        _, _, _, key, message_id = mark
        # From the marked row on, which must still be there (as in changed_accounts()).
        rows = self._all(
            f"SELECT key, {_rows._OUTBOX_COLS} FROM outbox WHERE key >= ?1 AND (key = ?1 "
            "OR EXISTS (SELECT 1 FROM json_each(?2) n WHERE instr(lower(recipient), n.value))) "
            "ORDER BY key",
            (key, _needles(needles)),
        )
        found = [(r[0], _rows._outbox(r[1:])) for r in rows]
        if message_id is not None:
            if not found or (found[0][0], found[0][1].id) != (key, message_id):
                return None
            found = found[1:]
        return [row for _, row in found]

    def outbox_texts(self, *, after: int = 0, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        # The row's key (its rowid) is its place: a walk of the table's own B-tree.
        rows = self._all(
            f"SELECT key, {_rows._OUTBOX_COLS} FROM outbox WHERE key > ? "
            "AND (message IS NOT NULL OR last_error IS NOT NULL) ORDER BY key LIMIT ?",
            (after, max(limit, 0)),
        )
        return [(r[0], _rows._outbox(r[1:])) for r in rows]

    def rewrite_outbox(self, message: OutboxMessage) -> None:
        self._keyed_write(
            "UPDATE outbox SET message = ?, last_error = ? WHERE ",
            _rows._OUTBOX_UNNUMBERED,
            (message.message, message.last_error),
            message.id,
            "msg_",
        )

    def delete_invitation(self, invitation_id: str) -> None:
        self._keyed_write(
            "DELETE FROM invitations WHERE ", _rows._INVITATION_UNNUMBERED, (), invitation_id,
            "inv_",
        )  # fmt: skip

    def delete_outbox(self, message_id: str) -> None:
        self._keyed_write(
            "DELETE FROM outbox WHERE ", _rows._OUTBOX_UNNUMBERED, (), message_id, "msg_"
        )

    def update_event(self, event: AuditEvent) -> None:
        details = details_text(event.details)
        values = (event.actor_id, event.target, details, event.id)
        seq = (self._event_seqs or {}).get(event.id)
        if seq is not None:
            # The id is checked too, in case the row was purged in this unit meanwhile.
            updated = self._exec(
                "UPDATE events SET actor_id = ?, target = ?, details = ? WHERE seq = ? AND id = ?",
                (*values[:3], seq, event.id),
            ).rowcount
            if updated:
                return
        # An event this unit did not find through events_with(): a scan, as it is rare.
        self._exec("UPDATE events SET actor_id = ?, target = ?, details = ? WHERE id = ?", values)

    def purge_invitations(self, before: datetime) -> int:
        cursor = self._exec(
            "DELETE FROM invitations WHERE (status = 'pending' AND expires_at < ?1) "
            "OR (status != 'pending' AND coalesce(closed_at, expires_at) < ?1)",
            (_rows._ts(before),),
        )
        return cursor.rowcount

    def purge_outbox(self, before: datetime) -> int:
        cursor = self._exec(
            "DELETE FROM outbox WHERE (status = 'sent' AND coalesce(sent_at, created_at) < ?1) "
            "OR (status = 'cancelled' AND created_at < ?1)",
            (_rows._ts(before),),
        )
        return cursor.rowcount

    def purge_events(
        self,
        before: datetime,
        *,
        keep_actions: Collection[str] = (),
        keep_since: datetime | None = None,
    ) -> int:
        if keep_since is None or not keep_actions:
            cursor = self._exec("DELETE FROM events WHERE at < ?", (_rows._ts(before),))
        else:
            cursor = self._exec(
                "DELETE FROM events WHERE at < ?1 AND NOT ("
                "action IN (SELECT value FROM json_each(?2)) AND at >= ?3)",
                (_rows._ts(before), _list(keep_actions), _rows._ts(keep_since)),
            )
        return cursor.rowcount

    def delete_account(self, account_id: str) -> dict[str, int]:
        # Every table that refers to the account, the account's own row last (the foreign
        # keys are enforced); each through its index on the account but the outbox, which
        # has none (a scan: rare, as the erasure's are). The categories first, in one
        # statement: they would go with their contacts (ON DELETE CASCADE), but one
        # contact at a time.
        counts: dict[str, int] = {}
        for table, name in (
            ("contact_categories", None),
            ("contacts", "contacts"),
            ("members", "members"),
            ("invitations", "invitations"),
            ("outbox", "messages"),
            ("events", "events"),
        ):
            deleted = self._exec(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))
            if name is not None:
                counts[name] = deleted.rowcount
        self._exec("DELETE FROM accounts WHERE id = ?", (account_id,))
        return counts

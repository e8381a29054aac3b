# The queries are assembled from constant column lists and a schema name checked by
# PostgresStore; every value is a %s parameter.
# ruff: noqa: S608
"""PostgresStore's queries for personal data: a person across every account, erasure, purge.

Rare operations (an access or erasure request, a nightly purge), so they scan rather
than add indexes every invitation would have to update, as SQLiteStore does. Each row a
unit deletes or rewrites locks its account first, like every other write.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._domain import AuditEvent, Contact, Invitation, Member, OutboxMessage

# postgres_unit imports this module to define its unit of work; the converters are looked
# up on it when a query runs, by which time it is fully imported.
from . import postgres_unit as _pu
from .codec import details_text
from .postgres_schema import (
    _CONTACT_COLS,
    _EVENT_COLS,
    _INVITATION_COLS,
    _MEMBER_COLS,
    _OUTBOX_COLS,
)
from .search import AT_FORMS, ESCAPES, _ascii_lower

if TYPE_CHECKING:
    import psycopg

    from .postgres_schema import Statements

__all__ = ["_PgPrivacyQueries"]

Row = tuple[Any, ...]

# translate() rather than lower(): the protocol folds A-Z only, and lower() would fold
# other letters too, by the database's collation.
_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"


#: A regular expression: a character that is not ASCII, or one that starts an escape
#: (``search.ESCAPES``).
_ODD = "[" + "".join(e.replace("\\", "\\\\") for e in ESCAPES) + r"]|[^\x01-\x7f]"
#: A regular expression: an "@" in some form (``search.AT_FORMS``; a JSON escape's
#: backslash escaped).
_AT = "|".join(form.replace("\\", "\\\\") for form in AT_FORMS)


def _disguised(text: str) -> str:
    """The condition that the SQL expression *text* may write an address otherwise
    (``search.disguised()``): two regular expressions, not a function call a form (the
    planner's estimate grows with each, and past ``jit_inline_above_cost`` compiling the
    query takes longer than running it). A "%" is doubled: every query has parameters."""
    return f"({text} ~ '{_ODD}' AND {text} ~ '{_AT}')".replace("%", "%%")


def _json_disguised(column: str) -> str:
    """The condition that a string in the JSON text *column* may write an address
    otherwise. The stored text holds such a string only if it holds a character that is
    not ASCII or starts an escape itself (a backslash is escaped, and a character that is
    not ASCII written as itself or as a ``\\u`` escape), so that is checked first; then
    one ``jsonb_path_exists()`` call, not a walk of its own (see ``_disguised()``)."""
    odd, at = (r.replace("\\", "\\\\").replace('"', '\\"') for r in (_ODD, _AT))
    path = f'strict $.** ? (@.type() == "string" && @ like_regex "{odd}" && @ like_regex "{at}")'
    return (f"({column} ~ '{_ODD}' AND jsonb_path_exists(({column})::jsonb, '{path}'))").replace(
        "%", "%%"
    )


def _hidden(needles: Collection[str]) -> bool:
    """Whether the search also finds text that may write an address otherwise: where a
    needle is an address."""
    return any("@" in n for n in needles)


def _in_json(column: str, hidden: bool) -> str:
    """The condition that a string in the JSON text *column*, nested ones too, holds a
    needle of the ``%(n)s`` parameter (decoded: the stored text escapes characters), or
    with *hidden*, may write an address otherwise."""
    value = _FOLD.format("(v #>> '{}')")
    found = (
        f"EXISTS (SELECT 1 FROM jsonb_path_query(({column})::jsonb, 'strict $.**') v, "
        f"unnest(%(n)s::text[]) n WHERE jsonb_typeof(v) = 'string' AND strpos({value}, n) > 0)"
    )
    return f"({found} OR {_json_disguised(column)})" if hidden else found


def _pg_mark(mark: object) -> tuple[int, str, int, str] | None:
    """The events' newest seq, the oldest running xid, the outbox's newest seq and the
    snapshot of a mark event_mark() gave, or None for anything else."""
    if not (isinstance(mark, tuple) and len(mark) == 5 and mark[0] == "events"):
        return None
    _, seq, oldest, mail, snapshot = mark
    if (
        isinstance(seq, int)
        and isinstance(oldest, str)
        and isinstance(mail, int)
        and isinstance(snapshot, str)
    ):
        return seq, oldest, mail, snapshot
    return None


def _needles(values: Collection[str]) -> list[str]:
    return sorted({_ascii_lower(v) for v in values})


def _only(column: str, accounts: Collection[str] | None) -> tuple[str, dict[str, Any]]:
    """The condition and parameter that keep a search to *accounts* (through each table's
    index on its account), or nothing for every account."""
    if accounts is None:
        return "", {}
    return f" AND {column} = ANY (%(a)s)", {"a": sorted(set(accounts))}


class _PgPrivacyQueries:
    """A mixin of ``PgUnitOfWork``: the privacy part of the ``UnitOfWork`` protocol."""

    if TYPE_CHECKING:
        _q: Statements
        _locked: set[str]
        _locking: set[str]
        # (mark, snapshot, accounts) of this unit's last full changed_accounts() read
        _changes_read: tuple[object, str, frozenset[str]]

        def _exec(self, sql: str, params: Any) -> psycopg.Cursor[Any]: ...
        def _all(self, sql: str, params: Any, unstorable_is_none: bool = False) -> list[Row]: ...
        def _lock(self, account_id: str) -> None: ...
        def _lock_row(self, table: str, row_id: str) -> None: ...

    def members_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Member]:
        only, more = _only("account_id", accounts)
        rows = self._all(
            f"SELECT {_MEMBER_COLS} FROM {self._q.s}.members WHERE (user_id = ANY (%(ids)s) "
            f"OR granted_by = ANY (%(ids)s) OR email_key = ANY (%(keys)s)){only} "
            "ORDER BY joined_at, account_id, user_id",
            {"ids": sorted(set(user_ids)), "keys": sorted(set(email_keys)), **more},
            True,
        )
        return [_pu._member(r) for r in rows]

    def invitations_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Invitation]:
        only, more = _only("account_id", accounts)
        rows = self._all(
            f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations "
            "WHERE (email_key = ANY (%(keys)s) OR invited_by = ANY (%(ids)s) "
            f"OR accepted_by = ANY (%(ids)s)){only} ORDER BY created_at, seq",
            {"ids": sorted(set(user_ids)), "keys": sorted(set(email_keys)), **more},
            True,
        )
        return [_pu._invitation(r) for r in rows]

    def contacts_with(
        self, email_keys: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        only, more = _only("account_id", accounts)
        rows = self._all(
            f"SELECT {_CONTACT_COLS} FROM {self._q.s}.contacts "
            f"WHERE email_key = ANY (%(keys)s){only} ORDER BY seq",
            {"keys": sorted(set(email_keys)), **more},
            True,
        )
        return [_pu._contact(r) for r in rows]

    def events_with(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[AuditEvent]:
        # Every string in details, nested ones too, decoded from the stored JSON text.
        actor, target = _FOLD.format("e.actor_id"), _FOLD.format("e.target")
        only, more = _only("e.account_id", accounts)
        details = _in_json("e.details", _hidden(needles))
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM {self._q.s}.events e WHERE (EXISTS ("
            f"SELECT 1 FROM unnest(%(n)s::text[]) n WHERE strpos({actor}, n) > 0 "
            f"OR strpos({target}, n) > 0) OR {details}){only} "
            "ORDER BY e.seq",
            {"n": _needles(needles), **more},
            True,
        )
        return [_pu._event(r) for r in rows]

    def members_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Member]:
        only, more = _only("m.account_id", accounts)
        metadata = _in_json("m.metadata", _hidden(needles))
        rows = self._all(
            f"SELECT {_MEMBER_COLS} FROM {self._q.s}.members m WHERE {metadata}{only} "
            "ORDER BY joined_at, account_id, user_id",
            {"n": _needles(needles), **more},
            True,
        )
        return [_pu._member(r) for r in rows]

    def invitations_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Invitation]:
        note = _FOLD.format("i.note")
        only, more = _only("i.account_id", accounts)
        hidden = ""
        if _hidden(needles):
            hidden = f" OR {_disguised('i.note')}"
        metadata = _in_json("i.metadata", _hidden(needles))
        rows = self._all(
            f"SELECT {_INVITATION_COLS} FROM {self._q.s}.invitations i WHERE (EXISTS ("
            f"SELECT 1 FROM unnest(%(n)s::text[]) n WHERE strpos({note}, n) > 0) OR "
            f"{metadata}{hidden}){only} ORDER BY created_at, seq",
            {"n": _needles(needles), **more},
            True,
        )
        return [_pu._invitation(r) for r in rows]

    def contacts_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        columns = ("name", "company", "phone", "role")
        found = " OR ".join(f"strpos({_FOLD.format(col)}, n) > 0" for col in columns)
        only, more = _only("account_id", accounts)
        if _hidden(needles):
            # The fields as one text, a regular expression a row, not one a field; inside
            # the search of the needles (for an address), so it stays one semi-join,
            # which the server may run in parallel.
            joined = f"concat_ws(' ', {', '.join(columns)})"
            found += f" OR (strpos(n, '@') > 0 AND {_disguised(joined)})"
        rows = self._all(
            f"SELECT {_CONTACT_COLS} FROM {self._q.s}.contacts WHERE EXISTS ("
            f"SELECT 1 FROM unnest(%(n)s::text[]) n WHERE {found}){only} ORDER BY seq",
            {"n": _needles(needles), **more},
            True,
        )
        return [_pu._contact(r) for r in rows]

    def outbox_with(self, needles: Collection[str]) -> list[OutboxMessage]:
        rows = self._all(
            f"SELECT {_OUTBOX_COLS} FROM {self._q.s}.outbox WHERE EXISTS ("
            f"SELECT 1 FROM unnest(%s::text[]) n WHERE strpos({_FOLD.format('recipient')}, n) > 0"
            ") ORDER BY created_at, seq",
            (_needles(needles),),
            True,
        )
        return [_pu._outbox(r) for r in rows]

    def event_mark(self) -> object:
        # The newest seq and the oldest transaction still running now. An identity is
        # taken when a row is inserted, not when it commits: a transaction running now
        # (or one that took its seq now and its xid just after) may commit an event
        # with a lower seq later. Its rows carry an xid at or after that oldest one,
        # also when they were written in a savepoint (a subtransaction's xid, which the
        # snapshot's list of running transactions does not name, is newer than its
        # parent's). The outbox's newest seq besides, for outbox_since(); and the
        # snapshot itself, which tells a later read whether anything committed since.
        s = self._q.s
        rows = self._all(
            f"SELECT (SELECT coalesce(max(seq), 0) FROM {s}.events), "
            "pg_snapshot_xmin(pg_current_snapshot())::text, "
            f"(SELECT coalesce(max(seq), 0) FROM {s}.outbox), pg_current_snapshot()::text",
            (),
        )
        seq, oldest, mail, snapshot = rows[0]
        # as a 32-bit xid, which a row's xmin holds (an xid8 modulo 2**32)
        return ("events", int(seq), str(int(oldest) % 2**32), int(mail), str(snapshot))

    def changed_accounts(self, mark: object) -> set[str] | None:
        parts = _pg_mark(mark)
        if parts is None:
            return None
        seq, oldest, _, then = parts
        # Reading every event's xmin is a scan of the log. A snapshot (xmin:xmax:running
        # xids) changes whenever a transaction ends, so where this statement's equals the
        # mark's, or that of this unit's last scan for the same mark, no other
        # transaction committed in between: the answer is the one known for it, and this
        # unit's own events, in accounts it has locked (every write locks first).
        last = getattr(self, "_changes_read", None)
        known = {then: frozenset[str]()}
        if last is not None and last[0] == mark:
            known[last[1]] = last[2]
        # age() counts back from the newest xid, so the comparison holds across the
        # 32-bit xid's wraparound; a frozen row's age is the largest there is. The
        # scan runs only where the CASE needs it (an InitPlan runs when first used).
        rows = self._all(
            "SELECT x.snap, CASE WHEN x.snap = ANY (%(known)s::text[]) THEN NULL ELSE ARRAY("
            f"SELECT DISTINCT account_id FROM {self._q.s}.events "
            "WHERE seq > %(seq)s OR age(xmin) <= age(%(oldest)s::text::xid)) END "
            "FROM (SELECT pg_current_snapshot()::text AS snap) x",
            {"known": sorted(known), "seq": seq, "oldest": oldest},
        )
        snapshot, accounts = rows[0]
        if accounts is None:
            return set(known[snapshot]) | self._locked | self._locking
        self._changes_read = (mark, snapshot, frozenset(accounts))
        return set(accounts)

    def outbox_since(self, needles: Collection[str], mark: object) -> list[OutboxMessage] | None:
        parts = _pg_mark(mark)
        if parts is None:
            return None
        _, oldest, seq, then = parts
        # As changed_accounts() finds the events written since the mark; and, as there,
        # nothing another transaction committed where the snapshot is still the mark's
        # (the comparison is a one-time filter: the table is not read then).
        rows = self._all(
            f"SELECT {_OUTBOX_COLS} FROM {self._q.s}.outbox "
            "WHERE pg_current_snapshot()::text <> %(then)s "
            "AND (seq > %(seq)s OR age(xmin) <= age(%(oldest)s::text::xid)) AND EXISTS ("
            "SELECT 1 FROM unnest(%(n)s::text[]) n "
            f"WHERE strpos({_FOLD.format('recipient')}, n) > 0) ORDER BY created_at, seq",
            {"then": then, "seq": seq, "oldest": oldest, "n": _needles(needles)},
            True,
        )
        return [_pu._outbox(r) for r in rows]

    def outbox_texts(self, *, after: int = 0, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        rows = self._all(
            f"SELECT seq, {_OUTBOX_COLS} FROM {self._q.s}.outbox WHERE seq > %s "
            "AND (message IS NOT NULL OR last_error IS NOT NULL) ORDER BY seq LIMIT %s",
            (after, max(limit, 0)),
            True,
        )
        return [(r[0], _pu._outbox(r[1:])) for r in rows]

    def rewrite_outbox(self, message: OutboxMessage) -> None:
        self._lock_row("outbox", message.id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET message = %s, last_error = %s WHERE id = %s",
            (message.message, message.last_error, message.id),
        )

    def cancel_outbox_message(self, message_id: str) -> None:
        # The status alone, and only of a waiting row: a delivery run claims a row without
        # the account's lock, so a lease it committed since this unit read the row stays.
        self._lock_row("outbox", message_id)
        self._exec(
            f"UPDATE {self._q.s}.outbox SET status = 'cancelled' "
            "WHERE id = %s AND status = 'pending'",
            (message_id,),
        )

    def delete_invitation(self, invitation_id: str) -> None:
        self._lock_row("invitations", invitation_id)
        self._exec(f"DELETE FROM {self._q.s}.invitations WHERE id = %s", (invitation_id,))

    def delete_outbox(self, message_id: str) -> None:
        self._lock_row("outbox", message_id)
        self._exec(f"DELETE FROM {self._q.s}.outbox WHERE id = %s", (message_id,))

    def update_event(self, event: AuditEvent) -> None:
        details = details_text(event.details)
        s = self._q.s
        for (account_id,) in self._all(
            f"SELECT account_id FROM {s}.events WHERE id = %s", (event.id,), True
        ):
            self._lock(account_id)
        self._exec(
            f"UPDATE {s}.events SET actor_id = %s, target = %s, details = %s WHERE id = %s",
            (event.actor_id, event.target, details, event.id),
        )

    def delete_account(self, account_id: str) -> dict[str, int]:
        # The account's lock first, as every writer of it takes: a writer that comes later
        # finds nothing, and a delivery run that claimed one of its outbox rows finds the
        # row gone when it reads it again under that lock. The account's own row last
        # (the foreign keys).
        self._lock(account_id)
        s = self._q.s
        counts = {
            name: self._exec(
                f"DELETE FROM {s}.{table} WHERE account_id = %s", (account_id,)
            ).rowcount
            for table, name in (
                ("contacts", "contacts"),
                ("members", "members"),
                ("invitations", "invitations"),
                ("outbox", "messages"),
                ("events", "events"),
            )
        }
        self._exec(f"DELETE FROM {s}.accounts WHERE id = %s", (account_id,))
        return counts

    # Purges delete rows no use case changes any more (closed invitations, sent mail, old
    # events) in every account at once, so they take no account locks; and they skip a
    # row another transaction holds (SKIP LOCKED), so they never wait for one. A purge
    # scans in the table's physical order, while a unit that deletes or rewrites rows
    # (delete_account(), an erasure) takes them in an index's order: waiting, the purge
    # could hold one of that unit's rows while it waits for another, a deadlock. A skipped
    # row is being changed or deleted; the next purge takes what is left of it.

    def _purge(self, table: str, where: str, params: Any) -> int:
        s = self._q.s
        # A locking CTE is run once and kept (never inlined): each row is locked, or
        # skipped, once, and the DELETE then finds it by its key.
        return self._exec(
            f"WITH gone AS (SELECT id FROM {s}.{table} WHERE {where} FOR UPDATE SKIP LOCKED) "
            f"DELETE FROM {s}.{table} t USING gone WHERE t.id = gone.id",
            params,
        ).rowcount

    def purge_invitations(self, before: datetime) -> int:
        return self._purge(
            "invitations",
            "(status = 'pending' AND expires_at < %(t)s) "
            "OR (status <> 'pending' AND coalesce(closed_at, expires_at) < %(t)s)",
            {"t": _pu._ts(before)},
        )

    def purge_outbox(self, before: datetime) -> int:
        return self._purge(
            "outbox",
            "(status = 'sent' AND coalesce(sent_at, created_at) < %(t)s) "
            "OR (status = 'cancelled' AND created_at < %(t)s)",
            {"t": _pu._ts(before)},
        )

    def purge_events(
        self,
        before: datetime,
        *,
        keep_actions: Collection[str] = (),
        keep_since: datetime | None = None,
    ) -> int:
        if keep_since is None or not keep_actions:
            return self._purge("events", "at < %s", (_pu._ts(before),))
        return self._purge(
            "events",
            "at < %s AND NOT (action = ANY (%s) AND at >= %s)",
            (_pu._ts(before), sorted(set(keep_actions)), _pu._ts(keep_since)),
        )

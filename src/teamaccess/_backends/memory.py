"""The in-memory backend: a real store for tests and scripts, held to the same contract."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import attrs

from .._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._errors import AlreadyInvited, AlreadyMember, Conflict, StorageError
from .._permissions import PermissionSet
from .._ports import add_each
from .search import _ascii_lower, any_contains, mentions

__all__ = ["MemoryStore"]

K = TypeVar("K")
V = TypeVar("V")


class MemoryStore:
    """Every row in dictionaries, one writer at a time.

    A unit of work records an undo action for every change and plays them back unless
    committed, so a failed use case leaves nothing behind.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        # (account_id, user_id) -> Member
        self._members: dict[tuple[str, str], Member] = {}
        # (account_id, user_id) -> what grant() returns, built when the member is written,
        # so the hot path is one dict look-up
        self._grants: dict[tuple[str, str], tuple[PermissionSet, datetime | None]] = {}
        self._member_keys: dict[tuple[str, str], str] = {}  # (account, email_key) -> user
        self._member_email_keys: dict[tuple[str, str], str] = {}  # (account, user) -> key
        self._invitations: dict[str, Invitation] = {}
        self._invitation_keys: dict[str, str] = {}  # invitation id -> email_key
        self._contacts: dict[str, Contact] = {}
        self._contact_keys: dict[str, str] = {}  # contact id -> email_key
        self._events: dict[str, list[AuditEvent]] = {}
        self._outbox: dict[str, OutboxMessage] = {}
        # message id -> its place (outbox_texts()): the order rows were added, which the
        # dict's order is not once a rollback puts a deleted row back at its end.
        self._outbox_places: dict[str, int] = {}
        self._outbox_counter = itertools.count(1)
        self._event_order: dict[str, int] = {}  # event id -> sequence, across accounts
        # account -> the event count when its log last changed (changed_accounts());
        # kept through a rollback: naming an account too many is allowed
        self._event_count = 0
        self._log_changed: dict[str, int] = {}
        # Indexes on what is looked up, so no use case scans every row of a big test
        # suite's store. An "id set" is a dict with None values: it keeps insertion order,
        # which is the order the lists below promise, and it undoes like any other table.
        self._account_order: dict[str, int] = {}  # account -> creation sequence
        self._account_members: dict[str, dict[str, None]] = {}  # account -> user ids
        self._user_accounts: dict[str, dict[str, None]] = {}  # user -> account ids
        self._account_invitations: dict[str, dict[str, None]] = {}  # account -> ids
        self._pending: dict[tuple[str, str], str] = {}  # (account, email_key) -> inv id
        self._account_contacts: dict[str, dict[str, None]] = {}  # account -> contact ids
        self._outbox_status: dict[str, dict[str, None]] = {}  # status -> message ids
        self._invitation_outbox: dict[str, dict[str, None]] = {}  # inv id -> message ids
        self._key_invitations: dict[str, dict[str, None]] = {}  # email_key -> inv ids
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryStore accounts={len(self._accounts)} members={len(self._members)}>"

    def __reduce__(self) -> Any:
        # pickle (multiprocessing's spawn and forkserver) raised a bare TypeError about a
        # lock; a copy in another process would not share a row with this one anyway.
        raise StorageError(
            "a MemoryStore cannot be sent to another process (pickled, as multiprocessing "
            "does with spawn or forkserver): its rows live in this process, and a copy "
            "there would never share a change; for processes that share data, open a "
            "SQLiteStore on one file (or a PostgresStore) in each of them"
        )

    @contextmanager
    def begin(self, *, durable: bool = True) -> Iterator[_MemoryUnitOfWork]:
        # durable is a hint for backends that write to a disk; nothing here outlives the
        # process anyway.
        with self._lock:
            self._check_open()
            uow = _MemoryUnitOfWork(self)
            try:
                yield uow
            finally:
                # Undo whatever was written since the last commit() (all of it if none).
                uow.rollback()

    read = begin

    def grant(self, account_id: str, user_id: str) -> tuple[PermissionSet, datetime | None] | None:
        # Under the lock: a unit of work writes in place, so a read from another thread
        # must wait for its commit or rollback rather than see it half done. acquire() and
        # release() rather than "with": 90 ns less on can()'s path.
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                self._check_open()
            return self._grants.get((account_id, user_id))
        finally:
            lock.release()

    def recipients(self, account_id: str, category: str) -> list[tuple[str, str]] | None:
        with self._lock:
            self._check_open()
            account = self._accounts.get(account_id)
            if account is None:
                return None
            owner_key = self._member_email_keys[(account_id, account.owner_id)]
            contacts = self._contacts
            keys = self._contact_keys
            return [(account.owner_email, owner_key)] + [
                (contacts[cid].email, keys[cid])
                for cid in self._account_contacts.get(account_id, ())
                if category in contacts[cid].categories
            ]

    def scrub(self) -> None:
        # Nothing outlives the process; deleted rows are left to the garbage collector.
        self._check_open()

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("this MemoryStore is closed; create a new one")


class _MemoryUnitOfWork:
    def __init__(self, store: MemoryStore) -> None:
        self._s = store
        self._undo: list[Callable[[], None]] = []
        self.committed = False

    def commit(self) -> None:
        self.committed = True
        self._undo.clear()

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _remember(self, table: dict[K, V], key: K) -> None:
        if key in table:
            old = table[key]

            def undo() -> None:
                table[key] = old

        else:

            def undo() -> None:
                table.pop(key, None)

        self._undo.append(undo)

    def _put(self, table: dict[K, V], key: K, value: V) -> None:
        self._remember(table, key)
        table[key] = value

    def _drop(self, table: dict[K, V], key: K) -> None:
        self._remember(table, key)
        table.pop(key, None)

    def _index(self, index: dict[K, dict[str, None]], key: K, item: str) -> None:
        self._put(index.setdefault(key, {}), item, None)

    def _unindex(self, index: dict[K, dict[str, None]], key: K, item: str) -> None:
        ids = index.get(key)
        if ids is not None and item in ids:
            self._drop(ids, item)

    def add_many(
        self,
        *,
        accounts: Sequence[Account] = (),
        members: Sequence[tuple[Member, str]] = (),
        contacts: Sequence[tuple[Contact, str]] = (),
        events: Sequence[AuditEvent] = (),
    ) -> None:
        # Dictionaries have no per-statement cost to save: the single adds are the bulk
        # path here, each with its undo action.
        add_each(self, accounts=accounts, members=members, contacts=contacts, events=events)

    # accounts
    def add_account(self, account: Account) -> None:
        if account.id in self._s._accounts:
            raise Conflict(f"account {account.id!r} exists already")
        self._put(self._s._accounts, account.id, account)
        self._put(self._s._account_order, account.id, len(self._s._account_order))

    def get_account(self, account_id: str) -> Account | None:
        return self._s._accounts.get(account_id)

    def update_account(self, account: Account) -> None:
        self._put(self._s._accounts, account.id, account)

    def accounts_for(self, user_id: str) -> list[Account]:
        # Accounts created at the same instant (a frozen clock, a fast script) keep their
        # creation order.
        accounts = self._s._accounts
        found = [accounts[a] for a in self._s._user_accounts.get(user_id, ())]
        # The index is in joining order; the accounts' creation order breaks ties.
        order = self._s._account_order
        return sorted(found, key=lambda a: (a.created_at, order[a.id]))

    # members
    def add_member(self, member: Member, email_key: str) -> None:
        key = (member.account_id, member.user_id)
        if key in self._s._members or (member.account_id, email_key) in self._s._member_keys:
            raise AlreadyMember(
                f"{member.email} is already a member of account {member.account_id!r}"
            )
        self._put(self._s._members, key, _own(member))
        self._put(self._s._grants, key, _grant(member))
        self._put(self._s._member_keys, (member.account_id, email_key), member.user_id)
        self._put(self._s._member_email_keys, key, email_key)
        self._index(self._s._account_members, member.account_id, member.user_id)
        self._index(self._s._user_accounts, member.user_id, member.account_id)

    def get_member(self, account_id: str, user_id: str) -> Member | None:
        member = self._s._members.get((account_id, user_id))
        return None if member is None else _own(member)

    def member_by_email(self, account_id: str, email_key: str) -> Member | None:
        user_id = self._s._member_keys.get((account_id, email_key))
        return None if user_id is None else self.get_member(account_id, user_id)

    def update_member(self, member: Member) -> None:
        key = (member.account_id, member.user_id)
        if key not in self._s._members:
            return  # like UPDATE ... WHERE on no row
        self._put(self._s._members, key, _own(member))
        self._put(self._s._grants, key, _grant(member))

    def delete_member(self, account_id: str, user_id: str) -> None:
        self._drop(self._s._members, (account_id, user_id))
        self._drop(self._s._grants, (account_id, user_id))
        self._unindex(self._s._account_members, account_id, user_id)
        self._unindex(self._s._user_accounts, user_id, account_id)
        email_key = self._s._member_email_keys.get((account_id, user_id))
        if email_key is not None:
            self._drop(self._s._member_keys, (account_id, email_key))
            self._drop(self._s._member_email_keys, (account_id, user_id))

    def members(self, account_id: str) -> list[Member]:
        # The members dict is in joining order (an update keeps a key's place), and the
        # stable sort keeps it for members who joined at the same instant.
        members = self._s._members
        found = [members[(account_id, u)] for u in self._s._account_members.get(account_id, ())]
        return [_own(m) for m in sorted(found, key=lambda m: (m.role != "owner", m.joined_at))]

    # invitations
    def add_invitation(self, invitation: Invitation, email_key: str) -> None:
        if invitation.id in self._s._invitations:
            raise Conflict(f"invitation {invitation.id!r} exists already")
        if invitation.status == "pending" and (
            pending := self.pending_invitation_for(invitation.account_id, email_key)
        ):
            raise AlreadyInvited(
                f"{invitation.email} has a pending invitation already",
                invitation_id=pending.id,
            )
        self._put(self._s._invitations, invitation.id, _stored(invitation))
        self._put(self._s._invitation_keys, invitation.id, email_key)
        self._index(self._s._key_invitations, email_key, invitation.id)
        self._index(self._s._account_invitations, invitation.account_id, invitation.id)
        if invitation.status == "pending":
            self._put(self._s._pending, (invitation.account_id, email_key), invitation.id)

    def get_invitation(self, invitation_id: str) -> Invitation | None:
        invitation = self._s._invitations.get(invitation_id)
        return None if invitation is None else _own(invitation)

    def update_invitation(self, invitation: Invitation) -> None:
        old = self._s._invitations.get(invitation.id)
        if old is None:
            return  # like UPDATE ... WHERE id = ? on no row
        # What the Store protocol fixes at add_invitation stays, as in SQLiteStore.
        kept = attrs.evolve(
            _stored(invitation),
            account_id=old.account_id,
            email=old.email,
            created_at=old.created_at,
        )
        self._put(self._s._invitations, invitation.id, kept)
        pending_key = (old.account_id, self._s._invitation_keys[invitation.id])
        if kept.status == "pending":
            if pending_key not in self._s._pending:
                self._put(self._s._pending, pending_key, kept.id)
        elif self._s._pending.get(pending_key) == kept.id:
            self._drop(self._s._pending, pending_key)

    def pending_invitation_for(self, account_id: str, email_key: str) -> Invitation | None:
        inv_id = self._s._pending.get((account_id, email_key))
        return None if inv_id is None else _own(self._s._invitations[inv_id])

    def invitations(
        self,
        account_id: str,
        *,
        status: str | None = None,
        invited_by: str | None = None,
    ) -> list[Invitation]:
        invitations = self._s._invitations
        found = [
            inv
            for inv in map(
                invitations.__getitem__, self._s._account_invitations.get(account_id, ())
            )
            if (status is None or inv.status == status)
            and (invited_by is None or inv.invited_by == invited_by)
        ]
        # dicts keep insertion order; the stable sort keeps it for equal timestamps
        return [_own(i) for i in sorted(found, key=lambda i: i.created_at)]

    # contacts
    def add_contact(self, contact: Contact, email_key: str) -> None:
        if contact.id in self._s._contacts:
            raise Conflict(f"contact {contact.id!r} exists already")
        self._put(self._s._contacts, contact.id, contact)
        self._put(self._s._contact_keys, contact.id, email_key)
        self._index(self._s._account_contacts, contact.account_id, contact.id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._s._contacts.get(contact_id)

    def update_contact(self, contact: Contact, email_key: str) -> None:
        self._put(self._s._contacts, contact.id, contact)
        self._put(self._s._contact_keys, contact.id, email_key)

    def delete_contact(self, contact_id: str) -> None:
        old = self._s._contacts.get(contact_id)
        if old is not None:
            self._unindex(self._s._account_contacts, old.account_id, contact_id)
        self._drop(self._s._contacts, contact_id)
        self._drop(self._s._contact_keys, contact_id)

    def contacts(self, account_id: str) -> list[Contact]:
        # the index keeps insertion order, which is creation order
        contacts = self._s._contacts
        return [contacts[c] for c in self._s._account_contacts.get(account_id, ())]

    # audit
    def add_event(self, event: AuditEvent) -> None:
        log = self._s._events.setdefault(event.account_id, [])
        event = _own_event(event)  # a listener is handed the object given here
        log.append(event)
        self._undo.append(lambda: log.remove(event))
        self._log_changed_in(event.account_id)
        self._put(self._s._event_order, event.id, len(self._s._event_order))

    def _log_changed_in(self, account_id: str) -> None:
        self._s._event_count += 1
        self._s._log_changed[account_id] = self._s._event_count

    def event_mark(self) -> object:
        # the outbox's newest place besides: a row added later gets a higher one
        return ("events", self._s._event_count, max(self._s._outbox_places.values(), default=0))

    def changed_accounts(self, mark: object) -> set[str] | None:
        if not (isinstance(mark, tuple) and len(mark) == 3 and mark[0] == "events"):
            return None
        return {a for a, count in self._s._log_changed.items() if count > mark[1]}

    def outbox_since(self, needles: Collection[str], mark: object) -> list[OutboxMessage] | None:
        if not (isinstance(mark, tuple) and len(mark) == 3 and mark[0] == "events"):
            return None
        places = self._s._outbox_places
        lowered = [_ascii_lower(n) for n in needles]
        found = [
            m
            for m in self._s._outbox.values()
            if places[m.id] > mark[2] and any(n in _ascii_lower(m.recipient) for n in lowered)
        ]
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def events(self, account_id: str, *, limit: int) -> list[AuditEvent]:
        log = self._s._events.get(account_id, [])
        return [_own_event(e) for e in log[::-1][:limit]] if limit > 0 else []

    def event_times(
        self, account_id: str, actions: Collection[str], since: datetime
    ) -> list[datetime]:
        return [
            e.at
            for e in self._s._events.get(account_id, [])
            if e.at >= since and e.action in actions
        ]

    def invitation_mail_times(self, email_key: str, since: datetime) -> list[datetime]:
        s = self._s
        times = [
            m.created_at
            for inv_id in s._key_invitations.get(email_key, ())
            for message_id in s._invitation_outbox.get(inv_id, ())
            if (m := s._outbox.get(message_id)) is not None
            and m.kind == "invitation"
            and m.created_at >= since
        ]
        return sorted(times)

    # outbox
    def add_outbox(self, message: OutboxMessage) -> None:
        if message.id in self._s._outbox:
            raise Conflict(f"outbox message {message.id!r} exists already")
        self._put(self._s._outbox, message.id, message)
        self._put(self._s._outbox_places, message.id, next(self._s._outbox_counter))
        self._index(self._s._outbox_status, message.status, message.id)
        if message.invitation_id is not None:
            self._index(self._s._invitation_outbox, message.invitation_id, message.id)

    def update_outbox(self, message: OutboxMessage) -> None:
        old = self._s._outbox.get(message.id)
        if old is None:
            return
        m = message
        kept = attrs.evolve(
            old,
            status=m.status,
            next_attempt_at=m.next_attempt_at,
            attempts=m.attempts,
            last_error=m.last_error,
            sent_at=m.sent_at,
            leased_until=m.leased_until,
        )
        self._put(self._s._outbox, message.id, kept)
        if kept.status != old.status:
            self._unindex(self._s._outbox_status, old.status, old.id)
            self._index(self._s._outbox_status, kept.status, old.id)

    def get_outbox(self, message_id: str) -> OutboxMessage | None:
        return self._s._outbox.get(message_id)

    def outbox(
        self,
        *,
        status: str | None = None,
        due_before: datetime | None = None,
        invitation_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxMessage]:
        outbox = self._s._outbox
        if invitation_id is not None:
            ids: Iterable[str] = self._s._invitation_outbox.get(invitation_id, ())
        elif status is not None:
            ids = self._s._outbox_status.get(status, ())
        else:
            ids = outbox
        found = sorted(
            (
                m
                for m in map(outbox.__getitem__, ids)
                if (status is None or m.status == status)
                and (due_before is None or m.next_attempt_at <= due_before)
                and (invitation_id is None or m.invitation_id == invitation_id)
            ),
            key=lambda m: (m.created_at, m.id),
        )
        return found if limit is None else found[:limit]

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxMessage]:
        # One writer at a time (the store's lock), so reading and writing here is atomic.
        claimed = []
        for row in self.outbox(status="pending", due_before=now, limit=max(limit, 0)):
            taken = attrs.evolve(row, next_attempt_at=lease_until, leased_until=lease_until)
            self.update_outbox(taken)
            claimed.append(taken)
        return claimed

    def retry_outbox(self, *, now: datetime, account_id: str | None = None) -> list[OutboxMessage]:
        # One writer at a time (the store's lock), so reading and writing here is atomic.
        made_due = []
        for row in self.outbox(status="pending"):
            if (
                row.next_attempt_at > now
                and (row.leased_until is None or row.leased_until <= now)
                and account_id in (None, row.account_id)
            ):
                due = attrs.evolve(row, next_attempt_at=now, leased_until=None)
                self.update_outbox(due)
                made_due.append(due)
        return made_due

    # personal data (export, erasure, retention): rare, so plain scans of every row

    def members_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Member]:
        ids, keys = set(user_ids), set(email_keys)
        kept = None if accounts is None else set(accounts)
        found = [
            m
            for k, m in self._s._members.items()
            if (
                m.user_id in ids or m.granted_by in ids or self._s._member_email_keys.get(k) in keys
            )
            and (kept is None or m.account_id in kept)
        ]
        return [
            _own(m) for m in sorted(found, key=lambda m: (m.joined_at, m.account_id, m.user_id))
        ]

    def invitations_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Invitation]:
        ids, keys = set(user_ids), set(email_keys)
        kept = None if accounts is None else set(accounts)
        found = [
            inv
            for inv in self._s._invitations.values()
            if (
                self._s._invitation_keys.get(inv.id) in keys
                or inv.invited_by in ids
                or inv.accepted_by in ids
            )
            and (kept is None or inv.account_id in kept)
        ]
        return [_own(i) for i in sorted(found, key=lambda i: i.created_at)]

    def contacts_with(
        self, email_keys: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        keys = set(email_keys)
        kept = None if accounts is None else set(accounts)
        contact_keys = self._s._contact_keys
        return [
            c
            for c in self._s._contacts.values()
            if contact_keys.get(c.id) in keys and (kept is None or c.account_id in kept)
        ]

    def events_with(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[AuditEvent]:
        logs = self._s._events
        found = [
            e
            for log in (logs.values() if accounts is None else (logs.get(a, []) for a in accounts))
            for e in log
            if mentions(e.actor_id, e.target, e.details, needles)
        ]
        # one list per account: the sequence ids in _event_order say what came first
        order = self._s._event_order
        return [_own_event(e) for e in sorted(found, key=lambda e: order.get(e.id, 0))]

    def members_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Member]:
        s = self._s
        rows: Iterable[Member] = (
            s._members.values()
            if accounts is None
            else (s._members[(a, u)] for a in accounts for u in s._account_members.get(a, ()))
        )
        found = [m for m in rows if any_contains([m.metadata], needles)]
        return [
            _own(m) for m in sorted(found, key=lambda m: (m.joined_at, m.account_id, m.user_id))
        ]

    def invitations_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Invitation]:
        s = self._s
        rows: Iterable[Invitation] = (
            s._invitations.values()
            if accounts is None
            else (s._invitations[i] for a in accounts for i in s._account_invitations.get(a, ()))
        )
        found = [inv for inv in rows if any_contains([inv.note, inv.metadata], needles)]
        return [_own(i) for i in sorted(found, key=lambda i: i.created_at)]

    def contacts_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        s = self._s
        if accounts is None:
            rows: Iterable[Contact] = s._contacts.values()
        else:
            # in the order added, as over every account
            ids = {i for a in accounts for i in s._account_contacts.get(a, ())}
            rows = (c for i, c in s._contacts.items() if i in ids)
        return [c for c in rows if any_contains([c.name, c.company, c.phone, c.role], needles)]

    def outbox_with(self, needles: Collection[str]) -> list[OutboxMessage]:
        lowered = [_ascii_lower(n) for n in needles]
        found = [
            m
            for m in self._s._outbox.values()
            if any(n in _ascii_lower(m.recipient) for n in lowered)
        ]
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def outbox_texts(self, *, after: int = 0, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        places = self._s._outbox_places
        found = (
            (places[m.id], m)
            for m in self._s._outbox.values()
            if places[m.id] > after and (m.message is not None or m.last_error is not None)
        )
        return heapq.nsmallest(max(limit, 0), found, key=lambda pair: pair[0])

    def rewrite_outbox(self, message: OutboxMessage) -> None:
        old = self._s._outbox.get(message.id)
        if old is not None:
            kept = attrs.evolve(old, message=message.message, last_error=message.last_error)
            self._put(self._s._outbox, message.id, kept)

    def delete_invitation(self, invitation_id: str) -> None:
        inv = self._s._invitations.get(invitation_id)
        if inv is None:
            return
        key = self._s._invitation_keys.get(invitation_id)
        if key is not None and self._s._pending.get((inv.account_id, key)) == invitation_id:
            self._drop(self._s._pending, (inv.account_id, key))
        self._unindex(self._s._account_invitations, inv.account_id, invitation_id)
        if key is not None:
            self._unindex(self._s._key_invitations, key, invitation_id)
        self._drop(self._s._invitations, invitation_id)
        self._drop(self._s._invitation_keys, invitation_id)

    def delete_outbox(self, message_id: str) -> None:
        old = self._s._outbox.get(message_id)
        if old is None:
            return
        self._unindex(self._s._outbox_status, old.status, message_id)
        if old.invitation_id is not None:
            self._unindex(self._s._invitation_outbox, old.invitation_id, message_id)
        self._drop(self._s._outbox, message_id)
        self._drop(self._s._outbox_places, message_id)

    def update_event(self, event: AuditEvent) -> None:
        for log in self._s._events.values():
            for i, old in enumerate(log):
                if old.id == event.id:
                    self._log_changed_in(old.account_id)
                    self._replace(
                        log,
                        i,
                        attrs.evolve(
                            old,
                            actor_id=event.actor_id,
                            target=event.target,
                            details=_json_copy(event.details),
                        ),
                    )
                    return

    def _replace(self, log: list[AuditEvent], index: int, event: AuditEvent) -> None:
        old = log[index]

        def undo() -> None:
            log[index] = old

        log[index] = event
        self._undo.append(undo)

    def purge_invitations(self, before: datetime) -> int:
        doomed = [
            inv.id
            for inv in self._s._invitations.values()
            if (inv.status == "pending" and inv.expires_at < before)
            or (inv.status != "pending" and (inv.closed_at or inv.expires_at) < before)
        ]
        for inv_id in doomed:
            self.delete_invitation(inv_id)
        return len(doomed)

    def purge_outbox(self, before: datetime) -> int:
        doomed = [
            m.id
            for m in self._s._outbox.values()
            if (m.status == "sent" and (m.sent_at or m.created_at) < before)
            or (m.status == "cancelled" and m.created_at < before)
        ]
        for message_id in doomed:
            self.delete_outbox(message_id)
        return len(doomed)

    def purge_events(
        self,
        before: datetime,
        *,
        keep_actions: Collection[str] = (),
        keep_since: datetime | None = None,
    ) -> int:
        removed = 0
        for log in self._s._events.values():
            kept = [
                e
                for e in log
                if e.at >= before
                or (e.action in keep_actions and keep_since is not None and e.at >= keep_since)
            ]
            if len(kept) != len(log):
                removed += len(log) - len(kept)
                old = list(log)
                for gone in {e.id for e in log} - {e.id for e in kept}:
                    self._drop(self._s._event_order, gone)

                def undo(log: list[AuditEvent] = log, old: list[AuditEvent] = old) -> None:
                    log[:] = old

                log[:] = kept
                self._undo.append(undo)
        return removed

    def delete_account(self, account_id: str) -> dict[str, int]:
        s = self._s
        if account_id not in s._accounts:
            return dict.fromkeys(("members", "invitations", "contacts", "messages", "events"), 0)
        users = list(s._account_members.get(account_id, ()))
        invitations = list(s._account_invitations.get(account_id, ()))
        contacts = list(s._account_contacts.get(account_id, ()))
        # The outbox has no index on the account: a scan, as the erasure's searches.
        messages = [m.id for m in s._outbox.values() if m.account_id == account_id]
        for user_id in users:
            self.delete_member(account_id, user_id)
        for invitation_id in invitations:
            self.delete_invitation(invitation_id)
        for contact_id in contacts:
            self.delete_contact(contact_id)
        for message_id in messages:
            self.delete_outbox(message_id)
        log = s._events.get(account_id, [])
        for event in log:
            self._drop(s._event_order, event.id)
        self._drop(s._events, account_id)
        self._log_changed_in(account_id)
        for index in (s._account_members, s._account_invitations, s._account_contacts):
            self._drop(index, account_id)
        self._drop(s._accounts, account_id)
        self._drop(s._account_order, account_id)
        return {
            "members": len(users),
            "invitations": len(invitations),
            "contacts": len(contacts),
            "messages": len(messages),
            "events": len(log),
        }


def _grant(member: Member) -> tuple[PermissionSet, datetime | None]:
    """What grant() answers for *member*: a suspended member may use nothing."""
    if member.status == "suspended":
        return PermissionSet.none(), member.access_until
    return member.permissions, member.access_until


def _stored(invitation: Invitation) -> Invitation:
    """What a backend keeps: never the token itself, and metadata of its own."""
    if invitation.token is None:
        return _own(invitation)
    return attrs.evolve(invitation, token=None, metadata=_json_copy(invitation.metadata))


def _json_copy(value: Any) -> Any:
    """A copy of metadata or an event's details (JSON values: dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


R = TypeVar("R", Member, Invitation)


def _own(row: R) -> R:
    """*row* with its metadata copied, so the caller that gave or got it and the store
    never share a dict: a change to one must not change the other, as it cannot on a
    backend that writes rows out. Empty metadata needs no copy."""
    return attrs.evolve(row, metadata=_json_copy(row.metadata)) if row.metadata else row


def _own_event(event: AuditEvent) -> AuditEvent:
    """*event* with its details copied, as :func:`_own` copies metadata."""
    return attrs.evolve(event, details=_json_copy(event.details)) if event.details else event

"""The ports: small protocols the service talks to, one job each.

``Store`` opens units of work; a ``UnitOfWork`` is one transaction, rolled back unless
``commit()`` is called. ``Mailer`` sends one stdlib ``EmailMessage``. ``Clock`` says what
time it is. Nothing here is SQLite-specific: a PostgreSQL backend implements the same.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from ._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from ._errors import ClockError, TeamAccessError
from ._permissions import PermissionSet

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = [
    "CLOCK_END",
    "CLOCK_FIRST",
    "AccountDeletion",
    "BatchMailer",
    "BulkUnitOfWork",
    "Clock",
    "CombinedReads",
    "DeferredWrites",
    "Mailer",
    "Store",
    "SystemClock",
    "UnitOfWork",
    "as_utc",
    "check_clock_time",
    "read_clock",
]


#: The first instant a clock may read, and the first past the last (both in UTC). The
#: longest period the library adds to or takes from a reading is a century
#: (``LONGEST_PERIOD``), so any range a century inside datetime's (years 1 to 9999) would
#: do; four-digit years also keep every date in a mail, a page and a stored row in one
#: form (``strftime`` writes year 999 as "999").
CLOCK_FIRST: Final = datetime(1000, 1, 1, tzinfo=UTC)
CLOCK_END: Final = datetime(9000, 1, 1, tzinfo=UTC)
_NEEDED: Final = "a timezone-aware datetime from the year 1000 to 8999"


@runtime_checkable
class Clock(Protocol):
    """Says what time it is. ``TeamAccess`` reads it for every change and every status.

    ``now()`` returns a timezone-aware ``datetime`` from the year 1000 to 8999 (in UTC),
    so that every period the library adds or subtracts (at most a century) stays within
    datetime's range. Any other reading, or an exception from ``now()``, is refused where
    it is read, with ``ClockError``; nothing is stored or sent then.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware, from the year 1000 to 8999."""
        ...


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= 100 else f"{text[:97]}..."


def check_clock_time(value: object, what: str, needed: str, example: str) -> datetime:
    """*value* in UTC if it is a time a clock may give, else ``ClockError``: "*what*
    <value>, <why>; *needed* <the range>, e.g. *example*".

    What comes back is a plain ``datetime`` with ``tzinfo=UTC``, so nothing after depends
    on the reading's zone: a zone with summer time adds and compares by the wall clock (a
    week across its end lasted a week and an hour), a broken one may fail for a later
    day, and a ``datetime`` subclass may do its own arithmetic.
    """
    if type(value) is datetime and value.tzinfo is UTC and CLOCK_FIRST <= value < CLOCK_END:
        return value  # the usual reading, datetime.now(UTC): nothing to convert
    try:
        if not isinstance(value, datetime):
            why = "not a datetime"
        elif (utc := as_utc(value)) is None:
            why = "a naive datetime (no time zone)"
        elif CLOCK_FIRST <= utc < CLOCK_END:
            return utc
        else:
            why = "outside the years 1000 to 8999 (in UTC)"
    except OverflowError:  # UTC lies before year 1 or after 9999
        why = "outside the years 1000 to 8999 (in UTC)"
    except Exception as exc:  # a tzinfo whose offset cannot be read
        why = f"whose time zone fails ({type(exc).__name__}: {exc})"
    raise ClockError(f"{what} {_shown(value)}, {why}; {needed} {_NEEDED}, e.g. {example}")


def as_utc(value: datetime) -> datetime | None:
    """*value* as a plain ``datetime`` in UTC (``tzinfo=UTC``), or ``None`` if it is naive.

    The offset is read once; what the tzinfo raises, and ``OverflowError`` for an instant
    before year 1 or after 9999 in UTC, go to the caller.
    """
    offset = value.utcoffset()  # datetime checks it: None, or less than a day either way
    if offset is None:
        return None
    # Built from its fields: not a subclass, and no tzinfo left to ask again.
    wall = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond,
    )  # fmt: skip
    return (wall - offset).replace(tzinfo=UTC)


def read_clock(clock: Clock) -> datetime:
    """``clock.now()``, checked (:func:`check_clock_time`); what it raises becomes a
    ``ClockError`` too, unless it is a ``TeamAccessError`` already."""
    try:
        value = clock.now()
    except TeamAccessError:
        raise
    except Exception as exc:
        raise ClockError(
            f"the clock's now() raised {type(exc).__name__}: {exc}; it must return "
            f"{_NEEDED}, e.g. datetime.now(UTC)"
        ) from exc
    return check_clock_time(
        value, "the clock's now() returned", "it must return", "datetime.now(UTC)"
    )


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


@runtime_checkable
class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver *message* or raise; any exception counts as a failed delivery."""
        ...


@runtime_checkable
class BatchMailer(Protocol):
    """An optional capability of a ``Mailer``: send many messages as one batch.

    ``batch()`` returns a context manager whose ``Mailer`` sends consecutive messages over
    one connection (reconnecting as it needs to); each ``send()`` still succeeds or fails
    for its own message. Delivery uses it when a mailer has it; a plain ``Mailer`` is
    always enough.
    """

    def batch(self) -> AbstractContextManager[Mailer]:
        """A mailer for consecutive ``send()`` calls, closed when the block ends."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every table. Discarded unless :meth:`commit` is called.

    Lookups return ``None`` for a missing row; the service turns that into ``NotFound``.
    ``add_*`` for a row whose unique key exists raises ``teamaccess.Conflict`` (or a
    subclass), and any backend failure raises ``teamaccess.StorageError``.
    ``email_key`` arguments are the comparison form of the address
    (see ``teamaccess.normalize_email``), which backends index but never compute.
    """

    def commit(self) -> None: ...

    # accounts
    def add_account(self, account: Account) -> None: ...
    def get_account(self, account_id: str) -> Account | None: ...
    def update_account(self, account: Account) -> None: ...
    def accounts_for(self, user_id: str) -> list[Account]:
        """Accounts the user is a member (or owner) of, oldest first."""
        ...

    # members
    def add_member(self, member: Member, email_key: str) -> None: ...
    def get_member(self, account_id: str, user_id: str) -> Member | None: ...
    def member_by_email(self, account_id: str, email_key: str) -> Member | None: ...
    def update_member(self, member: Member) -> None: ...
    def delete_member(self, account_id: str, user_id: str) -> None: ...
    def members(self, account_id: str) -> list[Member]:
        """The owner first, then members in the order they joined."""
        ...

    # invitations
    def add_invitation(self, invitation: Invitation, email_key: str) -> None: ...
    def get_invitation(self, invitation_id: str) -> Invitation | None:
        """The invitation with ``token_hash`` filled in and ``token`` None."""
        ...

    def update_invitation(self, invitation: Invitation) -> None:
        """Write what may change; ``account_id``, ``email`` and ``created_at`` stay as
        added (a backend need not rewrite the indexes on them)."""
        ...

    def pending_invitation_for(self, account_id: str, email_key: str) -> Invitation | None: ...
    def invitations(
        self,
        account_id: str,
        *,
        status: str | None = None,
        invited_by: str | None = None,
    ) -> list[Invitation]:
        """Invitations of the account, oldest first, optionally filtered."""
        ...

    # contacts
    def add_contact(self, contact: Contact, email_key: str) -> None: ...
    def get_contact(self, contact_id: str) -> Contact | None: ...
    def update_contact(self, contact: Contact, email_key: str) -> None: ...
    def delete_contact(self, contact_id: str) -> None: ...
    def contacts(self, account_id: str) -> list[Contact]:
        """Contacts of the account, oldest first."""
        ...

    # audit
    def add_event(self, event: AuditEvent) -> None: ...
    def events(self, account_id: str, *, limit: int) -> list[AuditEvent]:
        """The newest *limit* events, newest first."""
        ...

    def event_times(
        self, account_id: str, actions: Collection[str], since: datetime
    ) -> list[datetime]:
        """When events with one of *actions* happened at or after *since*, oldest first."""
        ...

    def invitation_mail_times(self, email_key: str, since: datetime) -> list[datetime]:
        """When invitation mails (outbox rows of kind ``"invitation"``, one per first send
        or resend) to invitations for *email_key*, in any account, were written at or
        after *since*, oldest first. A writing unit serialises it with other writers of
        that address, as ``event_times`` is with the account's."""
        ...

    # outbox
    def add_outbox(self, message: OutboxMessage) -> None: ...
    def update_outbox(self, message: OutboxMessage) -> None:
        """Write the delivery state (``status``, ``next_attempt_at``, ``attempts``,
        ``last_error``, ``sent_at``, ``leased_until``); the rest stays as added."""
        ...

    def get_outbox(self, message_id: str) -> OutboxMessage | None:
        """The row whose ``id`` is *message_id*."""
        ...

    def outbox(
        self,
        *,
        status: str | None = None,
        due_before: datetime | None = None,
        invitation_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxMessage]:
        """Outbox rows, oldest first; ``due_before`` keeps those with
        ``next_attempt_at <= due_before``."""
        ...

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxMessage]:
        """Claim up to *limit* due rows for one delivery run, oldest first.

        A due row is ``pending`` with ``next_attempt_at <= now``. Each claimed row gets
        ``next_attempt_at = lease_until`` and is returned as written, so no other run sees
        it due until the lease ends (then it is due again: a worker that died mid-send
        leaves it to the next). The claim is atomic: two units claiming at once never
        return the same row. SQLite's single writer makes a conditional ``UPDATE`` enough;
        PostgreSQL selects the rows ``FOR UPDATE SKIP LOCKED``, so concurrent workers take
        different rows without waiting for each other. Written by this unit: it counts
        once the caller commits. ``leased_until`` is set to *lease_until* as well.
        """
        ...

    def retry_outbox(self, *, now: datetime, account_id: str | None = None) -> list[OutboxMessage]:
        """Make the waiting rows (of *account_id* only, if given) due at *now*; the rows
        made due, as written, oldest first.

        A waiting row is ``pending`` with ``next_attempt_at > now`` and no lease in
        force (``leased_until`` is ``None`` or not after *now*); each gets
        ``next_attempt_at = now`` and ``leased_until = None``. A row a sender holds
        (``leased_until`` after *now*) is never touched, whatever another unit does at
        the same moment: atomic against ``claim_outbox()`` as two claims are against each
        other. Written by this unit: it counts once the caller commits.
        """
        ...

    # personal data: export, erasure and retention (every account at once)
    def members_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Member]:
        """Memberships in every account (of *accounts* only, if given) whose user is one
        of *user_ids*, whose address's key is one of *email_keys*, or whose
        ``granted_by`` is one of *user_ids*; ordered by ``joined_at``, then account id
        and user id."""
        ...

    def invitations_involving(
        self,
        user_ids: Collection[str],
        email_keys: Collection[str],
        *,
        accounts: Collection[str] | None = None,
    ) -> list[Invitation]:
        """Invitations in every account (of *accounts* only, if given) sent to one of
        *email_keys*, or whose ``invited_by`` or ``accepted_by`` is one of *user_ids*;
        oldest first (as ``invitations()``, ``token_hash`` as ``get_invitation()``)."""
        ...

    def contacts_with(
        self, email_keys: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        """Contacts in every account (of *accounts* only, if given) whose address's key is
        one of *email_keys*, in the order they were added."""
        ...

    def events_with(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[AuditEvent]:
        """Events of every account (of *accounts* only, if given) whose ``actor_id``,
        ``target`` or any string in ``details`` (inside lists and mappings too) contains
        one of *needles*, ignoring the case of the ASCII letters A-Z only; in the order
        they were added. (A coarse search: the service looks closer.)"""
        ...

    def outbox_with(self, needles: Collection[str]) -> list[OutboxMessage]:
        """Outbox rows whose ``recipient`` contains one of *needles*, ignoring the case of
        A-Z; oldest first (as ``outbox()``)."""
        ...

    def members_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Member]:
        """Memberships in every account (of *accounts* only, if given) with a string in
        ``metadata`` (inside lists and mappings too) that contains one of *needles*,
        ignoring the case of A-Z; ordered as ``members_involving()``. (A coarse search:
        the service looks closer.)"""
        ...

    def invitations_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Invitation]:
        """Invitations in every account (of *accounts* only, if given) whose ``note`` or
        a string in ``metadata`` contains one of *needles*, ignoring the case of A-Z;
        ordered as ``invitations_involving()``."""
        ...

    def contacts_with_text(
        self, needles: Collection[str], *, accounts: Collection[str] | None = None
    ) -> list[Contact]:
        """Contacts in every account (of *accounts* only, if given) whose ``name``,
        ``company``, ``phone`` or ``role`` contains one of *needles*, ignoring the case of
        A-Z; in the order added."""
        ...

    def event_mark(self) -> object:
        """Where the audit log ends now: an opaque value to pass to ``changed_accounts()``
        in a later unit."""
        ...

    def changed_accounts(self, mark: object) -> set[str] | None:
        """The accounts that got an event since ``event_mark()`` returned *mark* (more may
        be named; an event rewritten by ``update_event()``, which only an erasure does and
        which only takes text out, need not be), or ``None`` if the store cannot tell (say
        the log was cut back past the mark). Every change a use case makes writes an event in
        the changed row's account, so an erasure searches others' free text before its
        write unit and, inside it, only in the accounts this names besides those it
        found. (Optional: without it, the erasure searches every account inside.)"""
        ...

    def outbox_since(self, needles: Collection[str], mark: object) -> list[OutboxMessage] | None:
        """Outbox rows added since ``event_mark()`` returned *mark* whose ``recipient``
        contains one of *needles*, as ``outbox_with()`` finds them (more may be
        returned), or ``None`` if the store cannot tell which rows were added since.
        Rows the calling unit added itself need not be returned (an erasure adds none
        before it asks). (Optional: an erasure searches the rows before its write unit,
        and inside it only these and those it found.)"""
        ...

    def outbox_texts(self, *, after: int = 0, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        """Outbox rows of every account that hold text: a stored ``message`` or a
        ``last_error``. Each comes with its place in the store, an int above 0 that grows
        with the rows added; those placed after *after*, in that order, at most *limit*
        (the caller pages through them with the last place it got)."""
        ...

    def rewrite_outbox(self, message: OutboxMessage) -> None:
        """Write ``message`` and ``last_error`` of the row ``message.id``; the rest stays
        (an erasure rewrites text that names the person in mail to others)."""
        ...

    def delete_invitation(self, invitation_id: str) -> None: ...
    def delete_outbox(self, message_id: str) -> None: ...
    def update_event(self, event: AuditEvent) -> None:
        """Rewrite ``actor_id``, ``target`` and ``details`` of the event ``event.id``; its
        account, time, action and place in the log stay."""
        ...

    def purge_invitations(self, before: datetime) -> int:
        """Delete invitations closed before *before* (by ``closed_at``, or ``expires_at``
        if that is unset) and pending ones that expired before it; how many."""
        ...

    def purge_outbox(self, before: datetime) -> int:
        """Delete rows sent before *before* (``sent_at``) and cancelled rows written before
        it (``created_at``); never a pending row. How many."""
        ...

    def purge_events(
        self,
        before: datetime,
        *,
        keep_actions: Collection[str] = (),
        keep_since: datetime | None = None,
    ) -> int:
        """Delete events that happened before *before*, except those whose action is in
        *keep_actions* and that happened at or after *keep_since*; how many."""
        ...


@runtime_checkable
class BulkUnitOfWork(Protocol):
    """An optional capability of a ``UnitOfWork``: write many new rows at once.

    ``import_accounts()`` uses it when the store's units have it (one ``executemany`` per
    table instead of a statement per row); without it, it calls ``add_account``,
    ``add_member``, ``add_contact`` and ``add_event`` row by row, which is always correct.
    """

    def add_many(
        self,
        *,
        accounts: Sequence[Account] = (),
        members: Sequence[tuple[Member, str]] = (),
        contacts: Sequence[tuple[Contact, str]] = (),
        events: Sequence[AuditEvent] = (),
    ) -> None:
        """Add the rows as ``add_account`` for each account, then ``add_member`` for each
        ``(member, email_key)``, ``add_contact`` for each ``(contact, email_key)`` and
        ``add_event`` for each event would, in the order given (members of one account
        keep their order).

        A unique key that is taken raises ``teamaccess.Conflict`` (or a subclass); unlike
        a single ``add_*``, the unit may then hold some of the rows and must be discarded
        (the service never commits it). A backend may skip the per-account write locks for
        the accounts added in the same call: no other unit can see them before it commits.
        """
        ...


class CombinedReads(Protocol):
    """An optional capability of a ``UnitOfWork``: reads the use cases make together,
    each answered in one statement where a backend can, and two writes that need no read
    before them.

    The service uses each method a unit has, and otherwise makes the single reads (and
    ``update_outbox()`` calls) named below, which is always correct. A store may also
    have ``account_member()`` itself: the same answer from one consistent read of
    committed state, outside any unit (the read before an invitation mail is rendered;
    the write unit checks it afresh). So too ``invitation_account_member(invitation_id,
    user_id)``, a store's own only: ``(get_invitation(invitation_id), get_account(its
    account_id), get_member(its account_id, user_id))``, or ``(None, None, None)`` if
    there is no such invitation (the read before a resend's mail is rendered). And
    ``outbox_row(message_id)``, a store's own only: ``get_outbox(message_id)`` in one
    statement (the read back of mail sent at once, before its send).
    """

    def account_member(self, account_id: str, user_id: str) -> tuple[Account | None, Member | None]:
        """``(get_account(account_id), get_member(account_id, user_id))``; the member is
        ``None`` when the account is."""
        ...

    def address_in_use(self, account_id: str, email_key: str) -> tuple[bool, Invitation | None]:
        """``(member_by_email(account_id, email_key) is not None,
        pending_invitation_for(account_id, email_key))``."""
        ...

    def send_marks(
        self,
        account_id: str,
        since: datetime,
        nth: int,
        email_key: str,
        mail_since: datetime,
        mail_nth: int,
    ) -> tuple[datetime | None, datetime | None]:
        """The *nth* newest of ``event_times(account_id, {"invitation.sent",
        "invitation.resent"}, since)`` later than *since*, and the *mail_nth* newest of
        ``invitation_mail_times(email_key, mail_since)`` later than *mail_since*; each
        ``None`` if there are fewer (*nth* and *mail_nth* are at least 1). A limit of
        *nth* is reached exactly when the first is not ``None``."""
        ...

    def invitation_and_inviter(self, invitation_id: str) -> tuple[Invitation | None, Member | None]:
        """``get_invitation(invitation_id)`` and its inviter's membership
        (``get_member(account_id, invited_by)``); ``(None, None)`` if there is none."""
        ...

    def contact_and_member(
        self, contact_id: str, user_id: str
    ) -> tuple[Contact | None, Member | None]:
        """``get_contact(contact_id)`` and *user_id*'s membership in its account
        (``get_member(account_id, user_id)``); ``(None, None)`` if there is no contact."""
        ...

    def cancel_outbox(self, invitation_id: str) -> None:
        """Set ``status = "cancelled"`` on the invitation's ``pending`` outbox rows, as
        ``update_outbox()`` of each would; the rest of each row stays."""
        ...

    def update_outbox_sent(self, message_id: str, sent_at: datetime) -> None:
        """Mark the outbox row sent, as ``update_outbox()`` of the row as stored with
        ``status="sent"``, ``attempts + 1``, ``last_error=None`` and *sent_at* would; no
        row, no change."""
        ...

    def invitations_accepted_by(self, user_id: str) -> list[Invitation]:
        """The invitations in every account whose ``accepted_by`` is *user_id*, oldest
        first (as ``invitations_involving([user_id], ())`` keeps them, ``token_hash`` as
        ``get_invitation()``), found through an index on ``accepted_by``: the cost
        follows the user's own acceptances, not the invitations of their accounts."""
        ...


class DeferredWrites(Protocol):
    """An optional capability of a ``UnitOfWork``: writes that may reach the store
    together, without a wait for each one's answer.

    The service uses it around writes it makes one after the other without reading
    between them (an invitation, its outbox row and its audit event; an acceptance's
    member, invitation, outbox and event); without it, each write is made alone, which is
    always correct.
    """

    def deferred(self) -> AbstractContextManager[None]:
        """Inside the block, the writes (``add_*``, ``update_account``, ``update_member``,
        ``update_contact``, ``update_invitation``, ``delete_member``, ``delete_contact``,
        ``cancel_outbox``) may be sent with the next read or when the block ends. Each
        raises the error it would raise alone (``Conflict`` and its subclasses), but at
        the latest when the block ends, the first in order; the unit may then hold the
        writes sent after it, and must be discarded, as after ``add_many``'s
        ``Conflict``. A read inside the block sees every write before it."""
        ...


class AccountDeletion(Protocol):
    """An optional capability of a ``UnitOfWork``: delete an account with every row of it.

    ``TeamAccess.delete_account()`` needs it; with a unit without it, that call raises
    ``StorageError`` naming it, and nothing is changed.
    """

    def delete_account(self, account_id: str) -> dict[str, int]:
        """Delete the account *account_id* and every row that belongs to it: its members,
        invitations, contacts (with their categories), outbox rows (whatever their status)
        and audit events, then the account itself. How many of each were deleted, under
        the keys ``"members"``, ``"invitations"``, ``"contacts"``, ``"messages"`` and
        ``"events"``; all 0 if there is no such account (and nothing changes).

        Written by this unit: it counts once the caller commits, and a rollback keeps
        every row. A writer of the account that comes after the commit finds nothing (a
        delivery run that claimed one of its outbox rows before finds the row gone)."""
        ...


def add_each(
    uow: UnitOfWork,
    *,
    accounts: Sequence[Account] = (),
    members: Sequence[tuple[Member, str]] = (),
    contacts: Sequence[tuple[Contact, str]] = (),
    events: Sequence[AuditEvent] = (),
) -> None:
    """``BulkUnitOfWork.add_many`` done with the single adds, for a unit without it."""
    for account in accounts:
        uow.add_account(account)
    for member, key in members:
        uow.add_member(member, key)
    for contact, key in contacts:
        uow.add_contact(contact, key)
    for event in events:
        uow.add_event(event)


class Store(Protocol):
    """A backend. Each use case runs in one unit of work."""

    def begin(self, *, durable: bool = True) -> AbstractContextManager[UnitOfWork]:
        """A unit of work that may write; rolled back on exit unless committed.

        Writers are serialised: a backend takes its write lock here, before the first
        read, so a read-then-write never dead-locks against another writer.

        ``durable=False`` marks a unit whose loss in a power cut is harmless, because it
        only records that something repeatable was done (the service uses it for "this
        mail went out": lost, the mail goes out again, and delivery stays at least once;
        an invitation's repeat carries a new link, and the first one stops working).
        A backend may then commit without waiting for the disk (SQLite: ``PRAGMA
        synchronous = NORMAL`` for that commit; PostgreSQL: ``SET LOCAL
        synchronous_commit = off``). The commit must still be atomic and must not weaken
        any other unit; ignoring the hint is always correct. A unit opened inside another
        is part of its transaction and shares its durability.
        """
        ...

    def read(self) -> AbstractContextManager[UnitOfWork]:
        """A unit of work that only reads, from one consistent snapshot."""
        ...

    def grant(self, account_id: str, user_id: str) -> tuple[PermissionSet, datetime | None] | None:
        """The permissions a member may use and when that ends (its ``access_until``),
        or ``None`` if not a member. A suspended member's permissions are
        ``PermissionSet.none()``; the service compares the end with its clock.

        The hot path of ``can()``: one indexed look-up of committed state, never a cached
        answer. Return the same tuple object for the same stored row where you can (a
        memo of the parsed row): building one per call is a cost on every request.
        """
        ...

    def recipients(self, account_id: str, category: str) -> list[tuple[str, str]] | None:
        """``(email, email_key)`` of the owner, then of each contact subscribed to
        *category*, oldest contact first; ``None`` if there is no such account.

        The hot path of ``recipients()`` and every notification: one consistent read of
        committed state (one statement on SQLite), never a cached answer. Duplicates are
        left in; the service removes them.
        """
        ...

    def scrub(self) -> None:
        """Make what units of work deleted unrecoverable from the backend's own files, as
        far as the backend can (SQLite: rewrite the file and empty its WAL). Called after
        an erasure, outside any unit of work; a backend without files does nothing."""
        ...

    def close(self) -> None: ...

"""Input checks, ids and the unit-of-work record shared by the use-case modules."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from types import FunctionType
from typing import TYPE_CHECKING, Final

from .._domain import (
    LONGEST_PERIOD,
    NOTE_MAX_LENGTH,
    SYSTEM,
    AuditEvent,
)
from .._emails import TEXT_LIMIT, check_length, check_line
from .._errors import (
    AccountNotFound,
    ScrubFailed,
    ValidationError,
)
from .._permissions import PermissionSet
from .._ports import UnitOfWork, as_utc

if TYPE_CHECKING:
    import logging

    from .._ports import Store

__all__ = [
    "_ALL",
    "_CONTACT_FIELDS",
    "_DELIVERY_LEASE",
    "_NOT_NAMES",
    "Listener",
    "_Work",
    "_check_flag",
    "_check_id",
    "_check_ids",
    "_check_listener",
    "_check_methods",
    "_check_new_user",
    "_check_note",
    "_check_text",
    "_check_timedelta",
    "_check_until",
    "_check_user",
    "_log",
    "_new_id",
    "_no_account",
    "_not_str",
    "_numbered_id",
    "_scrub_after",
    "_together",
    "_token_hex",
]


def _scrub_after(store: Store, done: str, report: object) -> None:
    """``store.scrub()`` after *done* (what the call deleted, named without a person's
    data) was committed: a failure here must not read as if nothing happened. The caller
    gets ``ScrubFailed`` with *report*; repeating the call would find nothing to delete
    and so scrub nothing, so the message says what finishes the scrub."""
    try:
        store.scrub()
    except Exception as exc:
        # Any store's failure (a third party's too): the deletion stands either way.
        raise ScrubFailed(
            f"{done} is committed, but scrubbing the store afterwards failed "
            f"({type(exc).__name__}: {exc}), so the deleted data may still be in the "
            "database's files; do not repeat the call (it finds nothing left to delete): "
            "call store.scrub() (teamaccess scrub) once other connections are idle",
            report=report,
        ) from exc


def _log() -> logging.Logger:
    """The ``teamaccess`` logger, with a ``NullHandler`` like every library's.

    logging loads on the first record, not at import (the import-time budget), so the
    handler is added then: before that nothing was logged. Without it, an application
    that configured no logging would see each record printed by Python's last-resort
    handler on stderr.
    """
    import logging

    logger = logging.getLogger("teamaccess")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


Listener = Callable[[AuditEvent], object]

_CONTACT_FIELDS: Final = ("company", "phone", "role")
#: How long a delivery attempt owns its outbox row. A row is written due this far ahead,
#: and ``deliver_pending()`` pushes it this far ahead before sending, so a concurrent
#: ``deliver_pending()`` does not send it a second time (and, for an invitation, mint a
#: token that kills the link just mailed). A process that dies mid-send leaves the row
#: due again after the lease.
_DELIVERY_LEASE: Final = timedelta(minutes=5)
_ALL = PermissionSet.all()
_NOT_NAMES: Final = (Mapping, bytes, bytearray)


def _token_hex(nbytes: int) -> str:
    # secrets (with hashlib and random) and urllib load on first use: the import-time budget.
    import secrets

    return secrets.token_hex(nbytes)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_token_hex(10)}"


_last_number = 0
_number_lock = threading.Lock()


def _forget_last_number() -> None:
    # Processes forked from one (a pre-forking server) would otherwise count on from the
    # same last number and, within one millisecond, make the same next id.
    global _last_number
    _last_number = 0


os.register_at_fork(after_in_child=_forget_last_number)


def _numbered_id(prefix: str) -> str:
    """An id that sorts by time: *prefix*, "_", 16 hex digits of a 63-bit number, the
    milliseconds since 1970 (until the year 2109) and 21 bits, random for a millisecond's
    first id and counted up from it for the rest, never repeated or going back within a
    process; then 8 random hex digits.

    Two processes can make the same number in the same millisecond (about one pair in
    two million); the random tail keeps their ids apart, and ``SQLiteStore`` stores the
    second row without its number. Without the tail the second invite or ``notify()``
    failed with ``Conflict``: about once in 16 ten-second runs of four processes
    notifying a thousand recipients a second.

    Invitations and outbox rows get these: ``SQLiteStore`` keeps such a row under its
    number (a new row goes at the end of its table, and no index on the id is written).
    Ids stay opaque strings: the ids written before, and any other, keep working.
    """
    import secrets
    import time

    global _last_number
    with _number_lock:
        millisecond = time.time_ns() // 1_000_000
        if millisecond > _last_number >> 21:
            number = max(_last_number + 1, millisecond << 21 | secrets.randbits(21))
        else:
            # The rest of a millisecond's ids follow its first. Each drawn anew and kept
            # only if above the last, they piled up below the millisecond's top, where
            # another process's burst piles up too: two bursts shared hundreds of ids.
            number = _last_number + 1
        _last_number = number
    return f"{prefix}_{number:016x}{secrets.token_hex(4)}"


def _check_id(what: str, value: object) -> str:
    check_line(what, value)
    assert isinstance(value, str)
    if not value.strip():
        raise ValidationError(f"{what} must not be empty")
    return value


def _check_ids(**ids: object) -> None:
    """Each keyword is an id parameter and its value; ``ValidationError`` names a bad one."""
    for what, value in ids.items():
        _check_id(what, value)


def _not_str(**values: object) -> None:
    """The slow path behind a hot method's ``type(x) is str`` test.

    A ``str`` subclass passes; anything else would reach the store as an unhashable key
    or a bad SQL parameter, so it is refused here, by name.
    """
    for what, value in values.items():
        if not isinstance(value, str):
            raise ValidationError(f"{what} must be a string, not {type(value).__name__}")


def _check_text(what: str, value: object, expected: str = "a string") -> str:
    """A mail body: any text up to ``TEXT_LIMIT`` characters, line breaks allowed, but it
    must encode (no lone surrogate) and hold no NUL, which no mail may carry (RFC 5322)
    and the stdlib would write raw into a 7bit part."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be {expected}, not {type(value).__name__}")
    check_length(what, value, TEXT_LIMIT)
    if "\0" in value:
        raise ValidationError(
            f"{what} holds a NUL character, which no mail may carry; remove it (a NUL "
            "usually means the input was read from a binary file)"
        )
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                f"{what} is not valid Unicode text (it holds a lone surrogate); decode the "
                "input as UTF-8 before passing it"
            ) from None
    return value


def _check_note(value: object) -> str:
    """An inviter's personal note: text of at most ``NOTE_MAX_LENGTH`` characters, line
    breaks allowed (it goes only into mail bodies, escaped), no NUL or other control
    characters that a mail client would show as garbage."""
    if value is None:
        return ""
    note = _check_text("note", value).strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError(
            f"note is {len(note)} characters long; keep it within {NOTE_MAX_LENGTH}"
        )
    for c in note:
        if c < " " and c not in "\n\t":
            raise ValidationError(
                f"note holds the control character {c!r}; use plain text with line breaks"
            )
    return note


def _check_until(what: str, value: object, now: datetime) -> datetime | None:
    """An instant access ends: ``None``, or a timezone-aware datetime after *now*."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(
            f"{what} must be a timezone-aware datetime such as datetime(2026, 12, 31, "
            f"tzinfo=UTC), or None for no end; not {type(value).__name__}"
        )
    try:
        # In UTC from here: stores, mails and comparisons never ask its zone again (one
        # with summer time compares by the wall clock; a broken one may fail later).
        utc = as_utc(value)
    except OverflowError:
        # mails and stores write it in UTC, which may lie past year 9999 (or before year 1)
        if value.year > 1:
            raise ValidationError(
                f"{what} {_minute(value)}{value:%z} lies past the end of year 9999 in UTC; "
                "pass an earlier instant"
            ) from None
        raise ValidationError(
            f"{what} {_minute(value)} is not in the future; to end access now, "
            "suspend or remove the member"
        ) from None
    except Exception as exc:
        raise ValidationError(
            f"{what} has a time zone whose offset cannot be read ({type(exc).__name__}: "
            f"{exc}); pass it in UTC, e.g. datetime(2026, 12, 31, tzinfo=UTC)"
        ) from exc
    if utc is None:
        raise ValidationError(f"{what} must be timezone-aware, not {value!r}; e.g. add tzinfo=UTC")
    if utc <= now:
        raise ValidationError(
            f"{what} {_minute(value)} is not in the future; to end access now, "
            "suspend or remove the member"
        )
    return utc


def _minute(value: datetime) -> str:
    """*value* to the minute, its year in four digits (strftime writes year 1 as "1")."""
    return f"{value.year:04d}-{value:%m-%d %H:%M}"


def _check_flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be True or False, not {value!r}")
    return value


def _check_timedelta(what: str, value: object, example: str) -> timedelta:
    # Checked here: the value is only compared with and added to datetimes later, where
    # anything else fails with a bare TypeError.
    if not isinstance(value, timedelta):
        raise ValidationError(f"{what} must be a timedelta, e.g. {example}, not {value!r}")
    if value > LONGEST_PERIOD:
        # added to (or taken from) the clock, it would leave datetime's range
        raise ValidationError(f"{what} must be at most 100 years, e.g. {example}, not {value!r}")
    return value


def _check_methods(what: str, value: object, example: str, *methods: str) -> None:
    """A cheap duck-type check of a port: only that the methods used later exist."""
    if isinstance(value, type) and any(_instance_method(value, m) for m in methods):
        # The class passed for an instance (MemoryStore for MemoryStore()) has the methods,
        # but each call then fails with a bare TypeError about 'self'.
        raise ValidationError(
            f"{what} must be an instance, {example}, not the class {value.__name__}; "
            f"create one: {_call_of(value)}"
        )
    for method in methods:
        if not callable(getattr(value, method, None)):
            raise ValidationError(
                f"{what} must be {example}, with a {method}() method; not {type(value).__name__}"
            )


def _instance_method(cls: type, name: str) -> bool:
    """Whether *name* on *cls* is a plain function, which needs an instance to be called
    (a staticmethod or classmethod works on the class itself)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return isinstance(vars(klass)[name], FunctionType)
    return False


def _call_of(cls: type) -> str:
    """``Name()`` if the class takes no required argument, else ``Name(...)``."""
    import inspect  # only on this error path: it costs milliseconds at import

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return f"{cls.__name__}(...)"
    required = [
        p for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]  # fmt: skip
    return f"{cls.__name__}({'...' if required else ''})"


def _check_listener(listener: object, what: str = "listener") -> Listener:
    # A listener is called only after a commit, where its failure is logged, not raised:
    # a non-callable would otherwise be silently useless.
    if not callable(listener):
        raise ValidationError(
            f"{what} must be a callable taking an AuditEvent, not {type(listener).__name__}"
        )
    return listener


def _no_account(account_id: str) -> AccountNotFound:
    return AccountNotFound(
        f"no account {account_id!r}; check the id (accounts_for(user_id) lists a user's accounts)"
    )


def _check_user(what: str, value: object) -> str:
    """A real person's id: ``SYSTEM`` acts, but never owns or joins an account."""
    user_id = _check_id(what, value)
    if user_id == SYSTEM:
        raise ValidationError(
            f"{what} cannot be teamaccess.SYSTEM; pass the id of a user of your application"
        )
    return user_id


#: The longest user id that becomes an owner or a member (OpenID Connect's longest
#: ``sub``). PostgreSQL indexes (account, user) in at most ~2,700 bytes, which a longer
#: id may pass; every backend holds the same limit.
USER_ID_MAX_LENGTH: Final = 255


def _check_new_user(what: str, value: object) -> str:
    """:func:`_check_user`, for an id about to be stored as an owner or a member: at most
    :data:`USER_ID_MAX_LENGTH` characters. (Ids stored before the limit still act, are
    found and can be erased.)"""
    return check_length(what, _check_user(what, value), USER_ID_MAX_LENGTH)


def _together(uow: UnitOfWork) -> AbstractContextManager[None]:
    """The unit's ``deferred()`` where it has one (``DeferredWrites``): the writes in the
    block may reach the store together, their errors raised by the block's end."""
    deferred = getattr(uow, "deferred", None)
    if deferred is None:
        return nullcontext()
    block: AbstractContextManager[None] = deferred()
    return block


class _Work:
    """A unit of work plus the audit events it wrote, for the listeners after commit."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self.events: list[AuditEvent] = []

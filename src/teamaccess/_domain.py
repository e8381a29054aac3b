"""Domain objects: frozen, validated, changed only by ``attrs.evolve``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final, Literal, cast

import attrs

from ._emails import check_line
from ._errors import ValidationError
from ._permissions import PermissionSet
from ._repr import attrs_repr, eq_hash

__all__ = [
    "LONGEST_PERIOD",
    "METADATA_MAX_BYTES",
    "NOTE_MAX_LENGTH",
    "SEND_ACTIONS",
    "SYSTEM",
    "Account",
    "AuditEvent",
    "Contact",
    "Invitation",
    "InvitationStatus",
    "Member",
    "MemberStatus",
    "OutboxMessage",
    "check_metadata",
    "check_period",
    "integer_too_long",
]

#: ``actor_id`` for the vendor's own staff or automation. It passes every permission
#: check (it may, say, transfer ownership for a customer) and is audited as itself.
SYSTEM: Final = "teamaccess:system"

#: The audit actions of an invitation mail sent: the per-account rate limit counts them,
#: and every store reads them so (``event_times()``, ``send_marks()``).
SEND_ACTIONS: Final = frozenset({"invitation.sent", "invitation.resent"})

InvitationStatus = Literal["pending", "accepted", "declined", "revoked", "expired"]
Role = Literal["owner", "member"]
#: ``"active"``; ``"suspended"`` (grants kept, nothing allowed); ``"expired"`` (its
#: ``access_until`` has passed). Backends store only the first two; "expired" is read off
#: the clock.
MemberStatus = Literal["active", "suspended", "expired"]

#: The longest personal note an invitation carries, in characters.
NOTE_MAX_LENGTH: Final = 500
#: The largest ``metadata`` dict, as compact JSON in UTF-8 bytes.
METADATA_MAX_BYTES: Final = 2048


#: The longest duration a setting takes (a lifetime, a window, a retention period): a
#: century. Longer ones are typos (``days=`` for ``minutes=``), and added to the clock
#: they leave datetime's range (year 9999).
LONGEST_PERIOD: Final = timedelta(days=36_525)


def check_period(what: str, value: timedelta) -> timedelta:
    """*value* if it is positive and at most :data:`LONGEST_PERIOD`, else a
    ``ValidationError`` naming *what*."""
    if value <= timedelta(0) or value > LONGEST_PERIOD:
        raise ValidationError(
            f"{what} must be positive and at most 100 years, e.g. timedelta(days=90), not {value!r}"
        )
    return value


def check_metadata(value: object) -> dict[str, object]:
    """A vendor's metadata, checked: a dict with string keys at every level that JSON can
    carry, at most :data:`METADATA_MAX_BYTES` as JSON. Returns the JSON round trip, so
    what is returned later (tuples as lists) equals what is returned now."""
    import json  # loads on use: import teamaccess stays light

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(
            f"metadata must be a dict such as {{'customer_no': '4711'}}, not {type(value).__name__}"
        )
    refused = _key_not_a_string(value)
    if refused is not None:
        raise ValidationError(refused)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise ValidationError(
            "metadata is nested too deeply to write as JSON; keep it within "
            f"{METADATA_MAX_BYTES} bytes (store an id here and the rest in your own database)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(_unwritable(exc)) from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValidationError(
            "metadata holds text that is not valid Unicode (a lone surrogate)"
        ) from None
    if size > METADATA_MAX_BYTES:
        raise ValidationError(
            f"metadata is {size} bytes as JSON; keep it within {METADATA_MAX_BYTES} bytes "
            "(store an id here and the rest in your own database)"
        )
    result: dict[str, object] = json.loads(text)
    return result


#: A step down into metadata: (the dict or list, its key or index there, the step above).
_Step = tuple[object, object, "_Step | None"]
#: How many keys and indexes a message shows of a path to a refused key, at each end.
_PATH_ENDS: Final = 4


def _key_not_a_string(value: dict[object, object]) -> str | None:
    """What to say of a key that is not a string, at any depth of *value*, with the path
    to the dict holding it; ``None`` if every key is a string.

    JSON writes such a key below the top as a string (``1`` as ``"1"``, ``None`` as
    ``"null"``, two keys as one), so what came back would not be what was given. Walked
    without recursion and each container once: a value nested deeper than Python
    recurses, or holding itself, is refused by ``json.dumps`` afterwards in its own words.
    """
    seen: set[int] = set()
    todo: list[_Step] = [(value, None, None)]
    while todo:
        step = todo.pop()
        node = step[0]
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    where = _path(step)
                    return f"metadata keys must be strings, not {key!r}" + (
                        f" (a key of metadata{where})" if where else ""
                    )
            items: Iterable[tuple[object, object]] = node.items()
        else:
            items = enumerate(cast("list[object]", node))
        below = [(item, key, step) for key, item in items if isinstance(item, dict | list | tuple)]
        todo.extend(reversed(below))  # the first below is looked at first
    return None


def _path(step: _Step) -> str:
    """``['a'][0]``: the keys and indexes from the top of the metadata down to *step*;
    a long one shows its ends only."""
    keys: list[str] = []
    at: _Step | None = step
    while at is not None and at[2] is not None:
        keys.append(f"[{at[1]!r}]")
        at = at[2]
    keys.reverse()
    if len(keys) > 2 * _PATH_ENDS:
        keys[_PATH_ENDS:-_PATH_ENDS] = ["..."]
    return "".join(keys)


def integer_too_long(exc: ValueError) -> str | None:
    """What to say of metadata holding an integer longer than Python converts to or from
    text (``json`` says only "integer string conversion"), or ``None`` for another error.
    """
    import re

    found = re.search(r"limit \((\d+) digits\)", str(exc))
    if found is None or "integer string conversion" not in str(exc):
        return None
    limit = found.group(1)
    length = re.search(r"value has (\d+) digits", str(exc))
    size = f"of {length.group(1)} digits" if length else f"of more than {limit} digits"
    return (
        f"metadata holds an integer {size} and may hold integers of at most {limit} "
        "digits (Python's limit on converting them); write a longer number as a string, "
        'like {"customer_no": "12345678901234567890"}'
    )


def _unwritable(exc: TypeError | ValueError) -> str:
    """What to say of metadata ``json.dumps`` refuses, in words a vendor acts on."""
    import re

    text = str(exc)
    if isinstance(exc, ValueError):
        if (digits := integer_too_long(exc)) is not None:
            return digits
        if "Out of range float" in text:
            return (
                "metadata holds NaN or an infinity, which JSON cannot carry; write it as a "
                'string, like {"ratio": "NaN"}, or leave it out'
            )
        if "Circular reference" in text:
            return "metadata holds itself (a circular reference); pass plain, copied data"
    found = re.search(r"Object of type (\w+)|keys must be .*, not (\w+)$", text)
    if found is not None:
        where = "a value" if found.group(1) else "a key"
        kind = found.group(1) or found.group(2)
        return (
            f"metadata must hold only JSON values (str, int, float, bool, None, list, dict, "
            f"with str keys); {where} is a {kind}"
        )
    return f"metadata must hold only JSON values (str, int, float, bool, None, list, dict): {exc}"


def _line(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_line(attribute.name, value)


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


# eq=False, then eq_hash: attrs' equality and hashing, built without compiling (_repr).
@eq_hash
@attrs.frozen(eq=False)
class Account:
    """A customer account; exactly one owner."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    id: str
    name: str = attrs.field(validator=_line)
    owner_id: str
    owner_email: str
    created_at: datetime


@eq_hash
@attrs.frozen(eq=False)
class Member:
    """A user who may log in to the account. The owner is a member with ``role="owner"``."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    account_id: str
    user_id: str
    email: str
    role: Role
    permissions: PermissionSet
    joined_at: datetime
    #: who invited the member or last set its permissions (``None`` for the first owner)
    granted_by: str | None = None
    #: as stored: "active" or "suspended"; as returned by the service, "expired" too
    status: MemberStatus = "active"
    #: the instant the member's access ends (``None``: no end)
    access_until: datetime | None = None
    #: the vendor's own data (a customer number), carried over from the invitation
    metadata: Mapping[str, object] = attrs.field(factory=dict, hash=False)

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def status_at(self, now: datetime) -> MemberStatus:
        """The status at *now*: past ``access_until`` a member is "expired", suspended or
        not (reactivating would not bring it back)."""
        if self.access_until is not None and now >= self.access_until:
            return "expired"
        return "suspended" if self.status == "suspended" else "active"

    def is_active(self, now: datetime) -> bool:
        """May the member use its grants at *now*?"""
        return self.status_at(now) == "active"


@eq_hash
@attrs.frozen(eq=False)
class Invitation:
    """An offer of membership sent by mail.

    ``token`` is set only on the object ``invite()`` or ``resend_invitation()`` returns;
    backends keep nothing but ``token_hash``.
    """

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    id: str
    account_id: str
    email: str
    permissions: PermissionSet
    invited_by: str
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    token: str | None = attrs.field(default=None, repr=False)
    token_hash: str | None = attrs.field(default=None, repr=False)
    #: when the status last changed (accepted, declined, revoked, expired)
    closed_at: datetime | None = None
    #: the user who accepted it
    accepted_by: str | None = None
    sent_count: int = 1
    #: language of the invitation mail ("en" or "de")
    language: str = "en"
    #: when the member's access will end, if the invitation is accepted
    access_until: datetime | None = None
    #: the inviter's personal note, shown in the mail
    note: str = ""
    #: the vendor's own data, carried to the member on acceptance
    metadata: Mapping[str, object] = attrs.field(factory=dict, hash=False)

    def is_expired(self, now: datetime) -> bool:
        """Past its lifetime, or past the end of the access it offers."""
        return now >= self.expires_at or (
            self.access_until is not None and now >= self.access_until
        )

    def status_at(self, now: datetime) -> InvitationStatus:
        """The status a user sees at *now*: a pending invitation past its lifetime is expired."""
        if self.status == "pending" and self.is_expired(now):
            return "expired"
        return self.status

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


@eq_hash
@attrs.frozen(eq=False)
class Contact:
    """Someone who never logs in but receives the chosen categories of mail."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    id: str
    account_id: str
    name: str = attrs.field(validator=_line)
    email: str
    categories: frozenset[str] = attrs.field(converter=_names)
    company: str = attrs.field(default="", validator=_line)
    phone: str = attrs.field(default="", validator=_line)
    role: str = attrs.field(default="", validator=_line)
    created_at: datetime | None = None


@eq_hash
@attrs.frozen(eq=False)
class AuditEvent:
    """One change, written in the same unit of work as the change itself."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    id: str
    account_id: str
    at: datetime
    actor_id: str
    action: str
    target: str
    details: Mapping[str, object] = attrs.field(factory=dict)


OutboxStatus = Literal["pending", "sent", "cancelled"]


@eq_hash
@attrs.frozen(eq=False)
class OutboxMessage:
    """A mail written in the same unit of work as the change that causes it.

    ``kind="invitation"`` rows carry no message: the mail holds a token, and tokens are
    never stored, so the message is rendered (with a fresh token) when it is delivered.
    Every other row carries the finished message as bytes.

    ``leased_until`` is set while a process holds the row to send it (a delivery run's
    claim, or the call that wrote it under ``delivery="now"``) and cleared when the try
    is recorded or the row handed back: a row waiting out its backoff has none, so
    ``retry_waiting()`` can make it due without taking it from a live sender.
    """

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    id: str
    account_id: str
    kind: str
    recipient: str
    message_id: str
    created_at: datetime
    next_attempt_at: datetime
    status: OutboxStatus = "pending"
    message: bytes | None = attrs.field(default=None, repr=False)
    invitation_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    leased_until: datetime | None = None

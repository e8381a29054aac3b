"""What the delivery path decides on its own: how an outbox row reads after a try
(refused, bounced, closed), whether a claimed row is still a run's, and how addresses
are masked in log lines."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeGuard

import attrs

from .._domain import OutboxMessage
from .._ports import BatchMailer, Mailer
from .checks import _log

if TYPE_CHECKING:
    from email.message import EmailMessage
    from types import ModuleType

__all__ = ["masked", "masked_text"]

# Classes whose every instance is a BatchMailer: they define batch() themselves.
_BATCH_CLASSES: set[type] = set()


def _is_batch_mailer(mailer: Mailer) -> TypeGuard[BatchMailer]:
    """``isinstance(mailer, BatchMailer)``, known per class once an instance passed: the
    runtime protocol check walks the protocol's members on every call, about 10 us of
    each mail sent at once. An instance of a class that has ``batch()`` is one whatever
    its own attributes say, so such a class is kept; any other mailer is asked anew
    (one with no ``batch`` at all is none unless its class is registered as one)."""
    cls = type(mailer)
    if cls in _BATCH_CLASSES:
        return True
    if getattr(mailer, "batch", None) is None and not issubclass(cls, BatchMailer):
        return False
    if not isinstance(mailer, BatchMailer):
        return False
    if issubclass(cls, BatchMailer):
        _BATCH_CLASSES.add(cls)
    return True


class _Refusal(str):
    """The error text of a message the last check refused: recorded, never retried."""


class _Bounced(str):
    """The error text of a message the mailer says was refused for good
    (``DeliveryRefused``): retried until ``give_up_after`` such refusals in a row."""


#: How a pending row's ``last_error`` counts its permanent refusals in a row. The count
#: lives in the reason the row shows (every store keeps ``last_error`` as written), so no
#: store, schema or contract changes; any other failure writes its own text over it,
#: and so starts the count afresh.
#: How ``last_error`` begins on a row closed after them.
_UNDELIVERABLE: Final = "undeliverable: "
#: How ``last_error`` begins on a row closed after waiting ``expire_after``.
_EXPIRED: Final = _UNDELIVERABLE + "expired: "


def _days(span: timedelta) -> str:
    """*span* as a person reads it: days and hours, or hours and minutes."""
    hours, rest = divmod(int(span.total_seconds()), 3600)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h {rest // 60} min"


#: How ``last_error`` begins on a row the last check refused (closed, never retried).
_REFUSED: Final = "refused before sending, and not retried: "
# Patterns as text, compiled by re on first use (re caches them): only a failed or
# refused mail needs them, and compiling both cost import teamaccess 0.25 ms.
_IN_A_ROW: Final = r"refused for good \((\d+) in a row"


class _FullWay:
    """A stored message to parse and check in full before sending."""


FULL_WAY: Final = _FullWay()


def _sends_wire(smtp: ModuleType | None, mailer: Mailer) -> bool:
    """Whether *mailer* is an ``SmtpMailer`` (or its batch) or a ``FileMailer`` that takes
    checked bytes rather than a ``send()`` call; *smtp* is the SMTP module if loaded (else
    the mailer cannot be an ``SmtpMailer``)."""
    # loaded with the last check, which uses it; absolute: see _render_invitation()
    from teamaccess._mail.mailers import FileMailer

    if smtp is not None and isinstance(mailer, smtp.SmtpMailer | smtp._Batch):
        return bool(mailer._sends_wire())
    return isinstance(mailer, FileMailer) and mailer._sends_wire()


#: An address inside a text (a server's reply, an error): a local part and a domain.
_ADDRESS_IN_TEXT: Final = r"(?<![\w.+-])([\w.+%=!#$&'*/?^`{|}~-]+)@([\w-]+(?:\.[\w-]+)+)"


def masked(address: str) -> str:
    """*address* as a log line shows it: the first character of its local part and its
    domain (``j***@example.com``). Log files outlive an erasure, and are not the store's
    to rewrite; the outbox id next to it finds the row."""
    local, at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


def masked_text(text: str) -> str:
    """*text* (a server's reply, an error) with every address in it masked: a server's
    refusal usually repeats the recipient, and may name others."""
    return re.sub(_ADDRESS_IN_TEXT, lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)


def _refused(row: OutboxMessage, exc: Exception) -> _Refusal:
    refusal = _Refusal(f"{_REFUSED}{exc}")
    _log().error("mail %s to %s %s", row.id, masked(row.recipient), masked_text(refusal))
    return refusal


def _failed(row: OutboxMessage, error: str, *, bounced: bool = False) -> str:
    error = error[:500]
    # Never log the message: an invitation carries its token in the body.
    _log().warning(
        "delivery of %s to %s failed: %s", row.id, masked(row.recipient), masked_text(error)
    )
    return _Bounced(error) if bounced else error


def _closed(current: OutboxMessage, reason: str, now: datetime) -> OutboxMessage:
    """*current* after a try that closes it for good (refused, bounced, expired).

    A closed row is never due again, so its ``next_attempt_at`` keeps when it was closed,
    which ``teamaccess deliver --list --refused`` shows."""
    return attrs.evolve(
        current, status="cancelled", attempts=current.attempts + 1, last_error=reason,
        next_attempt_at=now, leased_until=None,
    )  # fmt: skip


def _leased(now: datetime, due: datetime) -> datetime | None:
    """The lease of a new outbox row due at *due*: one due later than it is written
    (*now*) is held by the call that wrote it, which sends it at once."""
    return due if due > now else None


def _refusals_in_row(last_error: str | None) -> int:
    """The permanent refusals in a row that *last_error*, a pending row's, counts."""
    found = re.match(_IN_A_ROW, last_error or "")
    return int(found[1]) if found else 0


def _still_ours(current: OutboxMessage | None, claimed: OutboxMessage) -> bool:
    """Whether *current* is still the pending row as this run claimed it.

    A row's lease only ever moves forward (the next claim's ends later), so an unchanged
    ``next_attempt_at`` means no other run has claimed it since.
    """
    return (
        current is not None
        and current.status == "pending"
        and current.attempts == claimed.attempts
        and current.next_attempt_at == claimed.next_attempt_at
    )


class _Unavailable:
    """The mailer of a run whose batch could not be opened: every send fails alike."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def send(self, message: EmailMessage) -> None:
        raise self._error

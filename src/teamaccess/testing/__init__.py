"""Fakes and the store contract suite, public so vendors can use them in their own tests.

``FrozenClock`` gives tests control of time; ``MemoryMailer`` records messages;
``FailingMailer`` fails on demand; ``StoreContract`` (in ``teamaccess.testing.contract``)
is the test suite every backend runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import cast

from .._errors import ClockError, ValidationError
from .._mail.mailers import MemoryMailer
from .._ports import check_clock_time

__all__ = ["FailingMailer", "FrozenClock", "MemoryMailer"]


class FrozenClock:
    """A clock that moves only when told to.

    >>> from datetime import UTC, datetime, timedelta
    >>> clock = FrozenClock(datetime(2026, 5, 1, tzinfo=UTC))
    >>> clock.advance(timedelta(days=8)).isoformat()
    '2026-05-09T00:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        # Refused here, with the ClockError the service would raise at its first reading,
        # so a test suite learns at the line that set the time.
        self._now = _checked(start, "FrozenClock(start) got")

    def now(self) -> datetime:
        """The time set, until ``advance()`` or ``set()`` moves it."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by *delta* and return the new time."""
        if not isinstance(delta, timedelta):
            raise ValidationError(
                f"FrozenClock.advance needs a timedelta, e.g. timedelta(days=8), not {delta!r}"
            )
        if delta < timedelta(0):
            raise ValidationError(
                f"a FrozenClock only moves forward, not by {delta!r}; "
                "to go back in time, jump to an earlier time with set(datetime)"
            )
        try:
            later = self._now + delta
        except OverflowError:
            raise ClockError(
                f"FrozenClock.advance({delta!r}) leaves datetime's range; the clock must "
                "read a timezone-aware datetime from the year 1000 to 8999"
            ) from None
        self._now = _checked(later, f"FrozenClock.advance({delta!r}) would reach")
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to *when* (back in time too)."""
        self._now = _checked(when, "FrozenClock.set got")

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()!r})"


def _checked(value: object, what: str) -> datetime:
    check_clock_time(value, what, "pass", "datetime(2026, 5, 1, tzinfo=UTC)")
    # Kept as set, in its own zone: the service takes each reading into UTC itself.
    return cast(datetime, value)


class FailingMailer(MemoryMailer):
    """A ``MemoryMailer`` that raises while ``failing`` is true (a mail server that is down).

    *error* is the exception each failing ``send()`` raises, an instance or a class
    (default ``ConnectionRefusedError("mail server is down")``); ``attempts`` counts
    every call of ``send()``, failed or not.
    """

    def __init__(
        self,
        *,
        failing: bool = True,
        error: Exception | type[Exception] | None = None,
    ) -> None:
        super().__init__()
        if error is not None and not (
            isinstance(error, Exception)
            or (isinstance(error, type) and issubclass(error, Exception))
        ):
            # Refused here: raised at each send, it would fail with "exceptions must derive
            # from BaseException" instead of the error the test meant.
            raise ValidationError(
                "FailingMailer(error=) must be an exception to raise, such as "
                f"DeliveryRefused('550 5.1.1 no such user', code=550) or TimeoutError, "
                f"not {error!r}"
            )
        self.failing = failing
        self.error: Exception | type[Exception] = error or ConnectionRefusedError(
            "mail server is down"
        )
        self.attempts = 0

    def send(self, message: EmailMessage) -> None:
        """Count the attempt; raise ``error`` while ``failing``, else keep the message."""
        self.attempts += 1
        if self.failing:
            raise self.error
        super().send(message)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} failing={self.failing} attempts={self.attempts} "
            f"outbox={len(self.outbox)}>"
        )


def __getattr__(name: str) -> object:
    # PEP 562: the contract suite imports pytest, so it loads only when asked for.
    if name == "StoreContract":
        from .contract import StoreContract

        return StoreContract
    raise AttributeError(f"module 'teamaccess.testing' has no attribute {name!r}")

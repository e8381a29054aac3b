"""Fakes and the store contract suite, public so vendors can use them in their own tests.

``FrozenClock`` gives tests control of time; ``MemoryMailer`` records messages;
``FailingMailer`` fails on demand; ``StoreContract`` (in ``teamaccess.testing.contract``)
is the test suite every backend runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage

from .._errors import ValidationError
from .._mail.mailers import MemoryMailer

__all__ = ["FailingMailer", "FrozenClock", "MemoryMailer"]


class FrozenClock:
    """A clock that moves only when told to.

    >>> from datetime import UTC, datetime, timedelta
    >>> clock = FrozenClock(datetime(2026, 5, 1, tzinfo=UTC))
    >>> clock.advance(timedelta(days=8)).isoformat()
    '2026-05-09T00:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValidationError(
                "FrozenClock needs a timezone-aware datetime, e.g. datetime(2026, 5, 1, tzinfo=UTC)"
            )
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by *delta* and return the new time."""
        if delta < timedelta(0):
            raise ValidationError("a FrozenClock only moves forward")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValidationError("FrozenClock.set needs a timezone-aware datetime")
        self._now = when

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()!r})"


class FailingMailer(MemoryMailer):
    """A ``MemoryMailer`` that raises while ``failing`` is true (a mail server that is down)."""

    def __init__(self, *, failing: bool = True, error: Exception | None = None) -> None:
        super().__init__()
        self.failing = failing
        self.error = error or ConnectionRefusedError("mail server is down")
        self.attempts = 0

    def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        if self.failing:
            raise self.error
        super().send(message)


def __getattr__(name: str) -> object:
    # PEP 562: the contract suite imports pytest, so it loads only when asked for.
    if name == "StoreContract":
        from .contract import StoreContract

        return StoreContract
    raise AttributeError(f"module 'teamaccess.testing' has no attribute {name!r}")

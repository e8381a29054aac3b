"""Attack round 16 on the clock's reading and the instants a caller passes in.

A reading (or an ``access_until``) is taken into UTC once, where it is checked, so that
nothing later depends on its time zone: a zone whose offset fails for another day, or
one with summer time, whose arithmetic is wall-clock arithmetic (a week across the end
of summer time lasted seven days and an hour), or a ``datetime`` subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import SECRET, add_member

from teamaccess import (
    ClockError,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SQLiteStore,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")


class _FirstDayOnly(tzinfo):
    """A zone whose table covers only the first of each month (a broken zone file): the
    reading itself checks out, a week later fails."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None or dt.day != 1:
            raise RuntimeError("no zone data for that day")
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


class _Raising(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no zone data")


class _Shifty(datetime):
    """A datetime subclass whose arithmetic is its own (a time-travel library's)."""

    def __add__(self, other: object) -> datetime:
        return datetime(2001, 1, 1, tzinfo=UTC)

    __radd__ = __add__


class _Reading:
    def __init__(self, value: datetime) -> None:
        self.value = value

    def now(self) -> datetime:
        return self.value


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    if request.param == "memory":
        return MemoryStore
    return lambda: SQLiteStore(":memory:")


def _team(store: Store, clock: object) -> TeamAccess:
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock)  # type: ignore[arg-type]


class TestReadingInUtc:
    """``TeamAccess.now()`` is a plain ``datetime`` in UTC, whatever the clock's zone."""

    @pytest.mark.parametrize(
        "reading",
        [
            datetime(2026, 5, 1, 12, tzinfo=_FirstDayOnly()),
            datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),
            _Shifty(2026, 5, 1, 9, tzinfo=UTC),
        ],
        ids=["broken-zone-later", "berlin-fold", "subclass"],
    )
    def test_now(self, reading: datetime) -> None:
        team = _team(MemoryStore(), _Reading(reading))
        now = team.now()
        assert type(now) is datetime
        assert now.tzinfo is UTC
        assert now == reading.astimezone(UTC).replace(tzinfo=UTC)

    def test_a_zone_failing_for_a_later_day(self, make_store: Callable[[], Store]) -> None:
        # The reading's own offset reads; the invitation's end, a week on, did not: a bare
        # RuntimeError from invite() (or a ValueError for an offset out of range).
        team = _team(make_store(), _Reading(datetime(2026, 5, 1, 12, tzinfo=_FirstDayOnly())))
        acc = team.create_account(name="Muster GmbH", owner_id="owner", owner_email="c@muster.de")
        inv = team.invite(
            acc.id, actor_id="owner", email="dev@agentur.de", permissions=PermissionSet.none()
        )
        assert inv.expires_at == datetime(2026, 5, 8, 11, tzinfo=UTC)
        assert team.pending_invitations(acc.id)[0].id == inv.id

    def test_a_week_across_the_end_of_summer_time(self, make_store: Callable[[], Store]) -> None:
        # 2026-10-20 12:00 in Berlin plus seven days was 2026-10-27 12:00 there: an hour
        # more than a week, as the invitation's life.
        team = _team(make_store(), _Reading(datetime(2026, 10, 20, 12, tzinfo=BERLIN)))
        acc = team.create_account(name="Muster GmbH", owner_id="owner", owner_email="c@muster.de")
        inv = team.invite(
            acc.id, actor_id="owner", email="dev@agentur.de", permissions=PermissionSet.none()
        )
        assert inv.expires_at - inv.created_at == team.invitation_ttl
        assert inv.expires_at.astimezone(UTC) - inv.created_at.astimezone(UTC) == timedelta(days=7)

    def test_a_subclass_does_its_own_arithmetic_no_more(self) -> None:
        team = _team(MemoryStore(), _Reading(_Shifty(2026, 5, 1, 9, tzinfo=UTC)))
        acc = team.create_account(name="Muster GmbH", owner_id="owner", owner_email="c@muster.de")
        inv = team.invite(
            acc.id, actor_id="owner", email="dev@agentur.de", permissions=PermissionSet.none()
        )
        assert inv.expires_at == datetime(2026, 5, 8, 9, tzinfo=UTC)

    def test_frozen_clock_keeps_its_zone(self) -> None:
        # The test fake reads as set; the service takes it into UTC.
        clock = FrozenClock(datetime(2026, 5, 1, 11, tzinfo=BERLIN))
        assert clock.now().tzinfo is BERLIN
        assert _team(MemoryStore(), clock).now() == datetime(2026, 5, 1, 9, tzinfo=UTC)

    def test_a_broken_zone_is_still_a_clock_error(self) -> None:
        team = _team(MemoryStore(), _Reading(datetime(2026, 5, 1, tzinfo=_Raising())))
        with pytest.raises(ClockError, match="RuntimeError: no zone data"):
            team.now()


class TestAccessUntil:
    """``access_until`` with a zone whose offset fails is a ``ValidationError``, and is
    kept in UTC."""

    def _account(self, team: TeamAccess) -> str:
        return team.create_account(
            name="Muster GmbH", owner_id="owner", owner_email="c@muster.de"
        ).id

    def test_a_raising_zone(self, make_store: Callable[[], Store]) -> None:
        team = _team(make_store(), FrozenClock(datetime(2026, 5, 1, tzinfo=UTC)))
        acc = self._account(team)
        with pytest.raises(ValidationError, match=r"access_until.*time zone.*tzinfo=UTC"):
            team.invite(
                acc, actor_id="owner", email="dev@agentur.de",
                permissions=PermissionSet.none(),
                access_until=datetime(2026, 6, 1, tzinfo=_Raising()),
            )  # fmt: skip
        assert team.pending_invitations(acc) == []

    def test_kept_in_utc(self, make_store: Callable[[], Store]) -> None:
        team = _team(make_store(), FrozenClock(datetime(2026, 5, 1, tzinfo=UTC)))
        acc = self._account(team)
        until = datetime(2026, 6, 1, 12, tzinfo=_FirstDayOnly())
        inv = team.invite(
            acc, actor_id="owner", email="dev@agentur.de",
            permissions=PermissionSet.none(), access_until=until,
        )  # fmt: skip
        assert inv.access_until is not None
        assert inv.access_until.tzinfo is UTC
        assert inv.access_until == datetime(2026, 6, 1, 11, tzinfo=UTC)
        # Read back: no comparison with it calls the broken zone again.
        assert team.pending_invitations(acc)[0].access_until == inv.access_until

    def test_suspend_until(self, make_store: Callable[[], Store]) -> None:
        clock = FrozenClock(datetime(2026, 5, 1, tzinfo=UTC))
        team = _team(make_store(), clock)
        acc = self._account(team)
        add_member(team, acc, "u2", PermissionSet.none())
        with pytest.raises(ValidationError, match=r"until.*time zone"):
            team.set_access_until(
                acc, "u2", actor_id="owner", until=datetime(2026, 6, 1, tzinfo=_Raising())
            )

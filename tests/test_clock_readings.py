"""A clock's reading is checked where it is read: a naive datetime, a date, a string, a
time near year 1 or 9999, or a ``now()`` that raises is a ``ClockError`` naming what the
clock returned, and nothing is written or sent.

Before, year 9999 made ``invite()`` raise a bare ``OverflowError`` (year 1:
``create_account()``, ``purge()``), and the other readings escaped as ``TypeError`` from
the first comparison, or were stored as they were.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, START, add_member
from tests.test_input_types import CALLS, Call, Ctx, _added_listener, snapshot

from teamaccess import (
    SYSTEM,
    ClockError,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    Retention,
    SQLiteStore,
    Store,
    TeamAccess,
    TeamAccessError,
    ValidationError,
)
from teamaccess._domain import LONGEST_PERIOD
from teamaccess.testing import FrozenClock


class _BrokenZone(tzinfo):
    """A time zone whose offset cannot be read."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no zone data")


class _NoOffset(tzinfo):
    """A tzinfo that gives no offset: the datetime counts as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None


class SwitchClock:
    """A clock a test can break: ``now()`` returns ``reading`` (raises it if it is an
    exception) and counts its calls."""

    def __init__(self) -> None:
        self.reading: object = START
        self.reads = 0

    def now(self) -> Any:
        self.reads += 1
        if isinstance(self.reading, BaseException):
            raise self.reading
        return self.reading


WEST = timezone(timedelta(hours=-2))
#: reading -> what the message says about it
BAD: dict[str, tuple[object, str]] = {
    "naive": (datetime(2026, 5, 1, 9, 0), r"datetime\.datetime\(2026, 5, 1, 9, 0\), a naive"),
    "date": (date(2026, 5, 1), r"datetime\.date\(2026, 5, 1\), not a datetime"),
    "string": ("2026-05-01T09:00:00+00:00", r"'2026-05-01T09:00:00\+00:00', not a datetime"),
    "none": (None, "None, not a datetime"),
    "timestamp": (1_777_000_000, "1777000000, not a datetime"),
    "year-9999": (datetime(9999, 12, 31, tzinfo=UTC), r"datetime\(9999, 12, 31.*outside"),
    "year-1": (datetime(1, 1, 1, tzinfo=UTC), r"datetime\(1, 1, 1.*outside"),
    "year-9000": (datetime(9000, 1, 1, tzinfo=UTC), "outside the years 1000 to 8999"),
    "year-999": (datetime(999, 12, 31, 23, 59, tzinfo=UTC), "outside the years 1000 to 8999"),
    "9000-in-utc": (datetime(8999, 12, 31, 23, 0, tzinfo=WEST), "outside the years"),
    "no-offset": (datetime(2026, 5, 1, tzinfo=_NoOffset()), "a naive datetime"),
    "broken-zone": (datetime(2026, 5, 1, tzinfo=_BrokenZone()), "RuntimeError: no zone data"),
    "raises": (RuntimeError("time server unreachable"), "RuntimeError: time server unreachab"),
}
NEEDED = "a timezone-aware datetime from the year 1000 to 8999"


def _calls() -> list[Call]:
    """Every public method of TeamAccess that takes arguments, with a call that works."""
    token_calls = [
        Call("inspect_invitation", ("token",), lambda c: {"token": c.token}),
        Call("decline_invitation", ("token",), lambda c: {"token": c.token}),
    ]
    return [*CALLS, *token_calls]


METHODS = {call.method: call for call in _calls()}


def _setup(team: TeamAccess) -> Ctx:
    """An account with a member ``u2``, a pending invitation, a contact, and a queued
    notification (so ``deliver_pending()`` has work)."""
    acc = team.create_account(name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de")
    add_member(team, acc.id, "u2", PermissionSet.of("billing.view", "services.view"))
    inv = team.invite(
        acc.id,
        actor_id="owner",
        email="dev@agentur.de",
        permissions=PermissionSet.of("orders.place"),
    )
    con = team.add_contact(
        acc.id, actor_id="owner", name="Kontakt", email="kontakt@example.org",
        categories=["billing"],
    )  # fmt: skip
    team.delivery = "queue"
    team.notify(acc.id, "billing", subject="Rechnung", text="Ihre Rechnung")
    team.add_listener(_added_listener)  # for remove_listener() to take back
    assert inv.token is not None
    return Ctx(acc.id, inv.id, inv.token, con.id)


@pytest.fixture
def clock() -> SwitchClock:
    return SwitchClock()


@pytest.fixture
def broken(clock: SwitchClock, mailer: MemoryMailer) -> tuple[TeamAccess, Ctx]:
    team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET, clock=clock)
    return team, _setup(team)


class TestEveryMethod:
    """Each public method either reads no clock and works, or refuses the reading with
    ClockError and changes nothing."""

    @pytest.mark.parametrize("reading", sorted(BAD))
    @pytest.mark.parametrize("method", sorted(METHODS))
    def test_refused_and_nothing_changed(
        self,
        broken: tuple[TeamAccess, Ctx],
        clock: SwitchClock,
        mailer: MemoryMailer,
        method: str,
        reading: str,
    ) -> None:
        team, ctx = broken
        before = snapshot(team, mailer, ctx)
        clock.reading, message = BAD[reading]
        clock.reads = 0
        refused: ClockError | None = None
        try:
            METHODS[method].run(team, ctx)
        except ClockError as exc:
            refused = exc
        if refused is None:
            # Only a method that never asked the clock may succeed.
            assert clock.reads == 0, f"{method} used the reading {clock.reading!r}"
        else:
            text = str(refused)
            assert clock.reads > 0
            assert text.startswith("the clock's now() ")
            assert NEEDED in text
            assert re.search(message, text), text
        clock.reading = START
        assert snapshot(team, mailer, ctx) == before

    def test_the_clock_is_read_by_the_use_cases(
        self, broken: tuple[TeamAccess, Ctx], clock: SwitchClock
    ) -> None:
        # So the test above is not vacuous: these all ask the clock.
        team, ctx = broken
        asked = set()
        for method in sorted(METHODS):
            clock.reads = 0
            clock.reading = RuntimeError("down")
            try:
                METHODS[method].run(team, ctx)
            except ClockError:
                asked.add(method)
            clock.reading = START
        assert asked >= {
            "create_account", "invite", "resend_invitation", "revoke_invitation",
            "accept_invitation", "decline_invitation", "inspect_invitation", "add_contact",
            "notify", "purge", "deliver_pending", "import_accounts", "export_person",
            "erase_person", "set_permissions", "suspend_member", "set_access_until",
            "pending_invitations", "members", "get_member", "transfer_ownership",
        }  # fmt: skip


class TestEdgesOfTheRange:
    """The first and the last instant a clock may give work everywhere, with every
    period at its longest: nothing added to or taken from them leaves datetime's range."""

    @pytest.mark.parametrize(
        "now",
        [
            datetime(1000, 1, 1, tzinfo=UTC),
            datetime(1000, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(8999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(8999, 12, 31, 21, 59, tzinfo=WEST),
        ],
        ids=["first", "first-east", "last", "last-west"],
    )
    def test_every_method_works(
        self, clock: SwitchClock, mailer: MemoryMailer, tmp_path: Path, now: datetime
    ) -> None:
        longest = LONGEST_PERIOD
        for method in sorted(METHODS):
            clock.reading = now
            team = TeamAccess(
                SQLiteStore(tmp_path / f"{method}.db"), mailer, secret_key=SECRET, clock=clock,
                invitation_ttl=longest, rate_window=longest, recipient_rate_window=longest,
                account_rate_window=longest, delivery_lease=longest, expire_after=longest,
                max_retry_backoff=longest,
                retention=Retention(
                    closed_invitations=longest, sent_mail=longest, audit_events=longest
                ),
            )  # fmt: skip
            ctx = _setup(team)
            call = METHODS[method]
            params = call.good(ctx)
            for name in ("until", "access_until"):
                if name in params:
                    params[name] = now + longest
            args = [params.pop(name) for name in call.positional]
            getattr(team, method)(*args, **params)
            team.close()


def _rows(path: Path) -> dict[str, list[str]]:
    """Every row of every table in the file, as text (a change in place shows too)."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: sorted(map(repr, db.execute(f'SELECT * FROM "{t}"')))  # noqa: S608
            for t in tables
        }


WRITERS = [
    "create_account", "invite", "resend_invitation", "accept_invitation", "add_contact",
    "notify", "purge", "deliver_pending", "import_accounts", "erase_person",
    "set_permissions", "remove_member", "transfer_ownership", "set_access_until",
]  # fmt: skip


class TestNothingWritten:
    """On a SQLite file: no row more or less, no mail."""

    @pytest.mark.parametrize("reading", ["year-9999", "year-1", "string", "raises"])
    @pytest.mark.parametrize("method", WRITERS)
    def test_sqlite_file(
        self, clock: SwitchClock, tmp_path: Path, method: str, reading: str
    ) -> None:
        path = tmp_path / "t.db"
        mailer = MemoryMailer()
        team = TeamAccess(SQLiteStore(path), mailer, secret_key=SECRET, clock=clock)
        ctx = _setup(team)
        team.delivery = "now"
        team.close()
        before, sent = _rows(path), len(mailer.outbox)
        team = TeamAccess(SQLiteStore(path), mailer, secret_key=SECRET, clock=clock)
        clock.reading = BAD[reading][0]
        with pytest.raises(ClockError, match=r"^the clock's now"):
            METHODS[method].run(team, ctx)
        team.close()
        assert _rows(path) == before
        assert sum(map(len, before.values())) > 10
        assert len(mailer.outbox) == sent

    def test_year_9999_invite_is_not_an_overflow(self, clock: SwitchClock) -> None:
        # The case found first: now + invitation_ttl left datetime's range.
        mailer = MemoryMailer()
        store: Store = MemoryStore()
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
        acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        clock.reading = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
        with pytest.raises(ClockError, match=r"returned datetime\.datetime\(9999, 12, 31, 23"):
            team.invite(acc.id, actor_id="max", email="x@agentur.de",
                        permissions=PermissionSet.all())  # fmt: skip
        clock.reading = START
        assert team.invitations(acc.id) == []
        assert [e.action for e in team.audit_log(acc.id)] == ["account.created"]
        assert mailer.outbox == []


class TestTheError:
    """ClockError is a TeamAccessError (and a ValueError), not a ValidationError."""

    def test_class(self) -> None:
        assert issubclass(ClockError, TeamAccessError)
        assert issubclass(ClockError, ValueError)
        assert not issubclass(ClockError, ValidationError)

    def test_cause_is_kept(self, broken: tuple[TeamAccess, Ctx], clock: SwitchClock) -> None:
        team, ctx = broken
        clock.reading = cause = RuntimeError("time server unreachable")
        with pytest.raises(ClockError) as info:
            team.members(ctx.account_id)
        assert info.value.__cause__ is cause

    def test_a_teamaccess_error_passes_through(
        self, broken: tuple[TeamAccess, Ctx], clock: SwitchClock
    ) -> None:
        # A vendor's clock that reads the time from its own store may fail as one.
        team, ctx = broken
        from teamaccess import StorageError

        clock.reading = StorageError("the time table is locked")
        with pytest.raises(StorageError, match="time table"):
            team.members(ctx.account_id)

    def test_the_clock_is_the_callers_own(self) -> None:
        clock = FrozenClock(START)
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, clock=clock)
        assert team.clock is clock
        assert team.now() == START
        clock.advance(timedelta(days=1))
        assert team.now() == START + timedelta(days=1)

    def test_now_checks_the_reading(self, clock: SwitchClock) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, clock=clock)
        clock.reading = "now"
        with pytest.raises(ClockError, match=r"^the clock's now\(\) returned 'now', not a dat"):
            team.now()

    def test_a_long_reading_is_cut(self, clock: SwitchClock) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, clock=clock)
        clock.reading = "x" * 10_000
        with pytest.raises(ClockError) as info:
            team.now()
        assert len(str(info.value)) < 300


class TestFrozenClock:
    """FrozenClock refuses, at the line that sets it, what the service would refuse."""

    @pytest.mark.parametrize(
        "value",
        [
            datetime(9999, 12, 31, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(9000, 1, 1, tzinfo=UTC),
            datetime(8999, 12, 31, 23, 0, tzinfo=WEST),
            datetime(2026, 5, 1),
            date(2026, 5, 1),
            "2026-05-01",
        ],
        ids=["9999", "1", "9000", "9000-in-utc", "naive", "date", "string"],
    )
    def test_start_and_set(self, value: Any) -> None:
        with pytest.raises(ClockError, match=f"^FrozenClock.* {NEEDED}"):
            FrozenClock(value)
        clock = FrozenClock(START)
        with pytest.raises(ClockError, match=f"^FrozenClock.set.* {NEEDED}"):
            clock.set(value)
        assert clock.now() == START

    @pytest.mark.parametrize(
        "delta", [timedelta(days=3_000_000), timedelta.max], ids=["past-9000", "max"]
    )
    def test_advance_out_of_range(self, delta: timedelta) -> None:
        clock = FrozenClock(START)
        with pytest.raises(ClockError, match=f"^FrozenClock.advance.* {NEEDED}"):
            clock.advance(delta)
        assert clock.now() == START

    def test_advance_needs_a_timedelta(self) -> None:
        clock = FrozenClock(START)
        with pytest.raises(ValidationError, match="advance needs a timedelta"):
            clock.advance(5)  # type: ignore[arg-type]
        assert clock.now() == START

    def test_the_edges(self) -> None:
        first = datetime(1000, 1, 1, tzinfo=UTC)
        clock = FrozenClock(first)
        assert clock.now() == first
        clock.set(datetime(8999, 12, 31, 23, 59, tzinfo=UTC))
        assert clock.advance(timedelta(seconds=59)).year == 8999


class _LateClock:
    """Good for the first *budget* readings, then *bad*: finds every reading of a request."""

    def __init__(self, good: datetime, bad: object, budget: int) -> None:
        self.good, self.bad, self.budget = good, bad, budget

    def now(self) -> Any:
        self.budget -= 1
        return self.good if self.budget >= 0 else self.bad


class TestClockFailsMidway:
    """A clock that breaks while mail is on its way: a mail that left is recorded as
    sent (the time its send began stands in), so it never goes twice, and what a run did
    not try is due again at once, not held for its lease."""

    def _sent_rows(self, team: TeamAccess) -> list[Any]:
        with team.store.read() as uow:
            return uow.outbox(status="sent")

    @pytest.mark.parametrize("backend_name", ["memory", "sqlite"])
    def test_invite_sending_now(self, tmp_path: Path, backend_name: str) -> None:
        outcomes = set()
        for budget in range(12):
            mailer = MemoryMailer()
            clock = _LateClock(START, "broken", 10**6)
            store = (
                MemoryStore()
                if backend_name == "memory"
                else SQLiteStore(tmp_path / f"{budget}.db")
            )
            team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
            acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
            clock.budget = budget
            try:
                team.invite(acc.id, actor_id="max", email="x@agentur.de",
                            permissions=PermissionSet.all())  # fmt: skip
                outcomes.add("ok")
            except ClockError:
                outcomes.add("refused")
                assert mailer.outbox == []  # refused: nothing was sent...
                clock.budget = 10**6
                assert team.invitations(acc.id) == []  # ...nor stored
            clock.budget = 10**6
            assert len(self._sent_rows(team)) == len(mailer.outbox)
            assert team.pending_messages() == []
            team.close()
        assert outcomes == {"ok", "refused"}

    @pytest.mark.parametrize("kind", ["notification", "invitation"])
    def test_deliver_pending(self, kind: str) -> None:
        seen = set()
        for budget in range(14):
            mailer = MemoryMailer()
            clock = _LateClock(START, "broken", 10**6)
            team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET, clock=clock,
                              delivery="queue")  # fmt: skip
            acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
            for n in range(3):
                if kind == "notification":
                    team.notify(acc.id, "general", subject="S", text="T")
                else:
                    team.invite(acc.id, actor_id="max", email=f"x{n}@agentur.de",
                                permissions=PermissionSet.all())  # fmt: skip
            clock.budget = budget
            try:
                team.deliver_pending()
            except ClockError:
                seen.add(len(mailer.outbox))
            clock.budget = 10**6
            assert len(self._sent_rows(team)) == len(mailer.outbox)
            waiting = team.pending_messages()
            assert len(waiting) == 3 - len(mailer.outbox)
            assert all(row.next_attempt_at <= START for row in waiting)
            assert all(row.attempts == 0 for row in waiting)  # no try counted
            team.close()
        assert seen >= {0, 1, 2}  # the clock broke before the run, and between sends


class TestWebPages:
    """Every reading a page makes, the pages' own included: a broken clock is the error
    page (500, the customer's words), never a traceback, and changes nothing."""

    TEXT = "Something is wrong with the settings of this service"

    def _sweep(self, request: Any, bad: object) -> int:
        """Break the clock at each reading of *request* in turn; how many failed."""
        from tests.web_panel import Panel

        for budget in range(60):
            panel = Panel()
            status, body = request(panel, _LateClock(panel.clock.now(), bad, budget))
            if status != 500:
                # Past the request's last reading: it worked, having read *budget* times.
                assert budget, "the request never read the clock"
                return budget
            assert self.TEXT in body, body[:300]
        raise AssertionError("the request read the clock more than 60 times")

    @pytest.mark.parametrize("bad", [datetime(2026, 3, 2, 10, 0), "10:00"], ids=["naive", "str"])
    def test_accept_page(self, bad: object) -> None:
        pytest.importorskip("flask")

        def request(panel: Any, clock: _LateClock) -> tuple[int, str]:
            panel.invite("buchhaltung@muster.de", "billing.view")
            link = panel.link()
            panel.team.clock = clock
            return panel.get(None, link)  # type: ignore[no-any-return]

        assert self._sweep(request, bad) >= 2

    @pytest.mark.parametrize("bad", [datetime(2026, 3, 2, 10, 0), "10:00"], ids=["naive", "str"])
    def test_invite_twice(self, bad: object) -> None:
        # The second submission finds the first one's invitation and asks the clock
        # whether it was sent moments ago.
        pytest.importorskip("flask")

        def request(panel: Any, clock: _LateClock) -> tuple[int, str]:
            form = {"email": "b@muster.de", "scope": "selected", "permission": "billing.view"}
            assert panel.post("max", panel.users() + "/invite", form)[0] == 303
            before = panel.team.audit_log(panel.account)
            client = panel.client("max")
            page = client.get(panel.users()).get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf is not None
            panel.team.clock = clock
            response = client.post(panel.users() + "/invite", data={**form, "csrf_token": csrf[1]})
            panel.team.clock = panel.clock
            assert len(panel.mailer.outbox) == 1  # the second submission sends nothing
            if response.status_code == 500:
                assert panel.team.audit_log(panel.account) == before
            return response.status_code, response.get_data(as_text=True)

        assert self._sweep(request, bad) >= 2

    @pytest.mark.parametrize("bad", [datetime(2026, 3, 2, 10, 0), "10:00"], ids=["naive", "str"])
    def test_end_of_access(self, bad: object) -> None:
        # The form's own errors are ValueErrors: a clock failing at any one reading must
        # never read as a date typed wrong ("Please enter a date such as ...").
        pytest.importorskip("flask")
        from tests.web_panel import Panel

        failed = 0
        for reading in range(12):
            panel = Panel()
            panel.join("bea", "billing.view")
            page = panel.users() + "/bea"
            client = panel.client("max")
            body = client.get(page).get_data(as_text=True)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', body)
            assert csrf is not None
            before = panel.team.get_member(panel.account, "bea")
            panel.team.clock = _OnceClock(panel.clock.now(), bad, reading)
            response = client.post(
                page + "/access-until", data={"until": "2026-04-01", "csrf_token": csrf[1]}
            )
            text = response.get_data(as_text=True)
            assert "Please enter a date" not in text, reading
            assert "Choose a day in the future" not in text, reading
            if response.status_code == 500:
                failed += 1
                assert self.TEXT in text
                assert panel.team.get_member(panel.account, "bea") == before
        assert failed >= 2


class _OnceClock(_LateClock):
    """Bad at reading number *budget* only (a clock that hiccups once)."""

    def now(self) -> Any:
        self.budget -= 1
        return self.bad if self.budget == -1 else self.good


def test_system_actor_is_refused_too(clock: SwitchClock) -> None:
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, clock=clock)
    acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
    clock.reading = date(2026, 5, 1)
    with pytest.raises(ClockError):
        team.invite(acc.id, actor_id=SYSTEM, email="x@agentur.de", permissions=PermissionSet.all())

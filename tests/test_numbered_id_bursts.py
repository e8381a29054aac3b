"""Ids that sort by time: the ids of one millisecond after its first are counted up from
it. Drawn anew for each id and kept only if above the last (as before), a burst's ids (a
notify() to an account with many contacts makes one after another) piled up below the
top of the millisecond's numbers, where another process's burst piled up too: two
processes making 20,000 ids each from the same instant shared 69 to 1,332 of them, in
each of nine tries; counted up from a random start, none in twelve. (Two bursts in the
same millisecond still meet if their starts are closer than their lengths (about 0.1% for
1,000 ids each): the random tail after the number keeps their ids apart, and the second
row is stored without its number.)"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import PermissionSet, SQLiteStore, TeamAccess
from teamaccess._service import checks
from teamaccess.testing import FailingMailer

P = PermissionSet.of("billing.view")

MS = 1_796_000_000_000  # a millisecond in 2026


def numbers(count: int) -> list[int]:
    return [int(checks._numbered_id("msg")[4:20], 16) for _ in range(count)]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The clock, in milliseconds, as a list to change; a process that made no id yet."""
    now = [MS]
    monkeypatch.setattr(time, "time_ns", lambda: now[0] * 1_000_000 + 123)
    monkeypatch.setattr(checks, "_last_number", 0)
    return now


def test_a_burst_in_one_millisecond_counts_up_from_a_random_start(frozen: list[int]) -> None:
    made = numbers(1000)
    assert made == list(range(made[0], made[0] + 1000))
    assert made[0] >> 21 == MS
    # where a burst starts is drawn: five processes' bursts start in five places
    starts = set()
    for _ in range(5):
        checks._last_number = 0
        starts.add(numbers(1)[0])
    assert len(starts) == 5


def test_the_next_millisecond_draws_again_and_nothing_goes_back(frozen: list[int]) -> None:
    first = numbers(3)
    frozen[0] += 1
    later = numbers(3)
    assert later[0] >> 21 == MS + 1
    assert later == list(range(later[0], later[0] + 3))
    frozen[0] -= 5  # the clock steps back
    after = numbers(3)
    assert first < later < after
    assert after == list(range(later[-1] + 1, later[-1] + 4))


def test_a_random_tail_follows_the_number(frozen: list[int]) -> None:
    made = [checks._numbered_id("inv") for _ in range(50)]
    assert len({m[20:] for m in made}) > 40
    assert all(len(m) == 28 and int(m[4:], 16) >= 0 for m in made)


class TestTwoProcessesMakeTheSameNumber:
    """The same number in two processes (the same millisecond and the same 21 bits: about
    one pair in two million, or overlapping bursts) is not a Conflict: the random tail
    keeps the ids apart, and SQLiteStore stores the second row without its number."""

    def test_both_invitations_are_stored_found_and_accepted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import secrets

        db = tmp_path / "team.db"
        owner = TeamAccess(SQLiteStore(db), FailingMailer(failing=False), secret_key=SECRET)
        acc = owner.create_account(name="A", owner_id="o", owner_email="o@example.org")
        owner.close()
        # Two processes: each its own store on the file, each starting from the same
        # millisecond with the same draw.
        monkeypatch.setattr(time, "time_ns", lambda: MS * 1_000_000)
        monkeypatch.setattr(secrets, "randbits", lambda bits: 7)
        made = []
        for n in range(2):
            monkeypatch.setattr(checks, "_last_number", 0)
            team = TeamAccess(SQLiteStore(db), FailingMailer(failing=False), secret_key=SECRET)
            made.append(team.invite(acc.id, actor_id="o", email=f"p{n}@example.org", permissions=P))
            team.close()
        first, second = made
        assert first.id[:20] == second.id[:20]
        assert first.id != second.id
        team = TeamAccess(SQLiteStore(db), FailingMailer(failing=False), secret_key=SECRET)
        for n, inv in enumerate(made):
            assert team.get_invitation(inv.id).email == f"p{n}@example.org"
            assert inv.token is not None
            team.accept_invitation(inv.token, user_id=f"u{n}", email=f"p{n}@example.org")
        assert {m.user_id for m in team.members(acc.id)} == {"o", "u0", "u1"}
        team.close()
        key = int(first.id[4:20], 16)
        conn = sqlite3.connect(db)
        try:
            stored = dict(conn.execute("SELECT id, key FROM invitations").fetchall())
            assert stored[first.id] == key
            assert stored[second.id] != key  # stored without its number
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()

"""Ids that sort by time: the ids of one millisecond after its first are counted up from
it. Drawn anew for each id and kept only if above the last (as before), a burst's ids (a
notify() to an account with many contacts makes one after another) piled up below the
top of the millisecond's numbers, where another process's burst piled up too: two
processes making 20,000 ids each from the same instant shared 69 to 1,332 of them, in
each of nine tries; counted up from a random start, none in twelve. (Two bursts in the
same millisecond still meet if their starts are closer than their lengths: about 0.1% for
1,000 ids each, then a Conflict and nothing written.)"""

from __future__ import annotations

import time

import pytest

from teamaccess._service import checks

MS = 1_796_000_000_000  # a millisecond in 2026


def numbers(count: int) -> list[int]:
    return [int(checks._numbered_id("msg")[4:], 16) for _ in range(count)]


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

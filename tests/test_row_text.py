"""The SQLite backend's value text, written and read by shortcuts, held to the plain way.

Times are formatted once per instant (a memo), empty metadata is read without the JSON
decoder, audit details are written by one kept encoder: each is compared with the code
it replaced on random and awkward values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teamaccess import ValidationError
from teamaccess._backends.codec import details_text
from teamaccess._backends.sqlite_rows import _json_object, _ts


def _plain_ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_zones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-5, minutes=-30)),
        ZoneInfo("Europe/Berlin"),
        ZoneInfo("America/New_York"),
    ]
)


class _Later(datetime):
    """A datetime subclass that writes itself otherwise: never answered from the memo."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "later:" + super().isoformat(sep, timespec)


class TestTimes:
    @settings(max_examples=400)
    @given(st.lists(st.tuples(st.datetimes(timezones=_zones), st.booleans()), max_size=40))
    def test_as_formatted_anew(self, values: list[tuple[datetime, bool]]) -> None:
        for value, fold in values:
            value = value.replace(fold=int(fold))
            # twice: the second may come from the memo
            assert _ts(value) == _plain_ts(value)
            assert _ts(value) == _plain_ts(value)

    def test_the_repeated_hour(self) -> None:
        # Equal in their zone (fold is ignored when comparing), an hour apart as instants.
        first = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        second = first.replace(fold=1)
        assert first == second
        assert (_ts(first), _ts(second)) == (_plain_ts(first), _plain_ts(second))
        assert _ts(first) != _ts(second)

    def test_utc_and_the_same_instant_elsewhere(self) -> None:
        at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
        assert _ts(at) == "2026-11-30T12:00:00.123456+00:00"
        assert _ts(at.astimezone(timezone(timedelta(hours=3)))) == _ts(at)

    def test_a_subclass_is_its_own(self) -> None:
        at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        _ts(at)
        later = _Later(2026, 11, 30, 12, 0, tzinfo=UTC)
        assert _ts(later) == _plain_ts(later)
        assert _ts(later).startswith("later:")

    def test_naive_is_refused_after_its_twin_was_written(self) -> None:
        at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        _ts(at)
        with pytest.raises(ValidationError, match="timezone-aware"):
            _ts(at.replace(tzinfo=None))

    def test_the_memo_stays_small(self) -> None:
        from teamaccess._backends import sqlite_rows

        start = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(1000):
            at = start + timedelta(microseconds=i)
            assert _ts(at) == _plain_ts(at)
        assert len(sqlite_rows._TS_MEMO) <= 64


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


class TestJson:
    @given(st.one_of(_json_values.map(json.dumps), st.sampled_from(["{}", " {}", "{ }", "[]"])))
    def test_objects_read_as_json_loads(self, text: str) -> None:
        assert _json_object(text) == json.loads(text)
        assert type(_json_object(text)) is type(json.loads(text))

    def test_empty_object_is_a_new_dict(self) -> None:
        first = _json_object("{}")
        first["x"] = 1
        assert _json_object("{}") == {}

    @pytest.mark.parametrize("text", [b"{}", 7, None, "{", ""])
    def test_other_values_fail_or_read_as_before(self, text: Any) -> None:
        try:
            expected = json.loads(text)
        except (TypeError, ValueError) as exc:
            with pytest.raises(type(exc)):
                _json_object(text)
        else:
            assert _json_object(text) == expected

    @settings(max_examples=300)
    @given(st.dictionaries(st.text(max_size=6), _json_values, max_size=5))
    def test_details_as_json_dumps(self, details: dict[str, Any]) -> None:
        assert details_text(details) == json.dumps(dict(details), sort_keys=True)

    def test_details_that_json_cannot_hold(self) -> None:
        with pytest.raises(ValidationError, match="JSON values"):
            details_text({"at": datetime(2026, 1, 1, tzinfo=UTC)})
        with pytest.raises(ValidationError, match="JSON values"):
            details_text({"a": 1, 2: "mixed keys cannot be sorted"})  # type: ignore[dict-item]

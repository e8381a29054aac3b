"""A vendor's metadata written as JSON text: ``invite --metadata`` and the ``metadata``
column of ``import``, read one way so that both say the same of the same text.

The service checks the dict (``check_metadata``); this reads the text, where Python's own
words would otherwise show: a parser's recursion, its limit on an integer's digits, and
the ``NaN``, ``Infinity`` and too-large numbers it reads as floats JSON cannot carry. A
key written twice in one object is refused too: the parser would keep the last value
and drop the other without a word.
"""

from __future__ import annotations

import json
import math
from typing import Final

from .._domain import METADATA_MAX_BYTES, integer_too_long
from .._errors import ValidationError

__all__ = ["read_metadata"]

_LIKE: Final = 'metadata must be a JSON object like {"customer_no": "4711"}'
#: JSON's names for what a value other than an object is.
_KINDS: Final = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class _NotANumber(ValueError):
    """A number in the text that JSON cannot carry (``NaN``, ``1e400``)."""

    def __init__(self, written: str) -> None:
        super().__init__(written)
        self.written = written


class _Twice(ValueError):
    """A key written twice in one object of the text."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Twice(key)
            seen.add(key)
    return data


def _constant(written: str) -> float:
    # NaN, Infinity and -Infinity: Python's json reads them; JSON has no such values.
    raise _NotANumber(written)


def _float(written: str) -> float:
    number = float(written)
    if not math.isfinite(number):  # 1e400: valid JSON, but no float holds it
        raise _NotANumber(written)
    return number


def read_metadata(text: str) -> dict[str, object]:
    """*text* as a JSON object; anything else is a ``ValidationError`` whose message
    starts with "metadata" and says what to write instead."""
    try:
        data = json.loads(
            text, parse_constant=_constant, parse_float=_float, object_pairs_hook=_object
        )
    except _Twice as exc:
        key = json.dumps(exc.key, ensure_ascii=False)
        shown = key if len(key) <= 24 else f'{key[:20]}..."'
        raise ValidationError(
            f"metadata names the key {shown} twice in one object; give each key once (JSON "
            "readers keep only one of the two values)"
        ) from None
    except _NotANumber as exc:
        shown = exc.written if len(exc.written) <= 24 else f"{exc.written[:20]}..."
        raise ValidationError(
            f"metadata holds the number {shown}, which JSON cannot carry (it is not a "
            f'standard JSON number, or too large for one); write it as a string, like {{"ratio": '
            f'"{shown}"}}, or leave it out'
        ) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{_LIKE}; this is not valid JSON ({exc.msg.lower()} at character {exc.pos + 1})"
        ) from None
    except ValueError as exc:  # the digits of an integer, beyond Python's limit
        raise ValidationError(integer_too_long(exc) or f"{_LIKE}; this is not valid JSON") from None
    except RecursionError:  # nested deeper than the parser recurses
        raise ValidationError(
            f"{_LIKE}, of at most {METADATA_MAX_BYTES} bytes; this one is nested too deeply to read"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(f"{_LIKE}, not {_KINDS.get(type(data), 'a number')}")
    return data

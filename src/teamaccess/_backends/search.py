"""The coarse search for a person every store's ``events_with()`` and ``outbox_with()``
do: ASCII case folding, as SQL's ``lower()`` does, so every backend can agree on it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["AT_FORMS", "ESCAPES", "any_contains", "disguised", "mentions"]


#: How an "@" may be written in a text that hides an address: as itself, the full-width
#: or the small "@" (both "@" after NFKC), an HTML character reference (any "&#"),
#: ``&commat;``, percent-encoded, or as a JSON escape.
AT_FORMS = ("@", "\uff20", "\ufe6b", "&#", "&commat;", "%40", "\\u0040", "\\U0040")
#: The characters that start an escape (percent-encoding, an HTML reference, JSON).
ESCAPES = ("%", "&", "\\")


def disguised(text: str) -> bool:
    """Whether *text* may hold an address written otherwise than in plain ASCII: it holds
    one of :data:`AT_FORMS` and a character that is not ASCII or one of :data:`ESCAPES`.
    Where a needle holds an "@" (an address), every store's coarse search of free text
    (the ``*_with_text`` searches, and the details in ``events_with()``) also finds a
    string for which this holds; the erasure then reads the text as it shows (escapes
    decoded, full-width forms and invisible characters folded) and decides."""
    return any(f in text for f in AT_FORMS) and (
        not text.isascii() or any(e in text for e in ESCAPES)
    )


def mentions(
    actor_id: str, target: str, details: Mapping[str, object], needles: Collection[str]
) -> bool:
    """The coarse search every store's ``events_with()`` does: whether the actor, the target
    or any string in *details* contains one of *needles*, ignoring the case of ASCII
    letters, or (where a needle is an address) a string in *details* may hold an address
    written otherwise (:func:`disguised`). (Stores may do it in SQL; this is the reference.)"""
    lowered = [_ascii_lower(n) for n in needles]
    if any(_contains(v, lowered) for v in (actor_id, target)):
        return True
    return _contains(details, lowered, any("@" in n for n in lowered))


def any_contains(values: Iterable[object], needles: Collection[str]) -> bool:
    """Whether a string among *values* (or inside a list or mapping of them) contains one
    of *needles*, ignoring the case of ASCII letters, or (where a needle is an address)
    may hold an address written otherwise (:func:`disguised`): the reference of the
    ``*_with_text`` searches."""
    lowered = [_ascii_lower(n) for n in needles]
    hidden = any("@" in n for n in lowered)
    return any(_contains(v, lowered, hidden) for v in values)


def _contains(value: object, needles: list[str], hidden: bool = False) -> bool:
    if isinstance(value, str):
        text = _ascii_lower(value)
        return any(n in text for n in needles) or (hidden and disguised(value))
    if isinstance(value, Mapping):
        return any(_contains(v, needles, hidden) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains(v, needles, hidden) for v in value)
    return False


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(value: str) -> str:
    """SQL ``lower()``: only A-Z change, so every backend can agree on it."""
    return value.translate(_ASCII_LOWER)

"""The coarse search for a person every store's ``events_with()`` and ``outbox_with()``
do: ASCII case folding, as SQL's ``lower()`` does, so every backend can agree on it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["any_contains", "mentions"]


def mentions(
    actor_id: str, target: str, details: Mapping[str, object], needles: Collection[str]
) -> bool:
    """The coarse search every store's ``events_with()`` does: whether the actor, the target
    or any string in *details* contains one of *needles*, ignoring the case of ASCII
    letters. (Stores may do it in SQL; this is the reference.)"""
    lowered = [_ascii_lower(n) for n in needles]
    return any(_contains(v, lowered) for v in (actor_id, target, details))


def any_contains(values: Iterable[object], needles: Collection[str]) -> bool:
    """Whether a string among *values* (or inside a list or mapping of them) contains one
    of *needles*, ignoring the case of ASCII letters: the reference of the ``*_with_text``
    searches."""
    lowered = [_ascii_lower(n) for n in needles]
    return any(_contains(v, lowered) for v in values)


def _contains(value: object, needles: list[str]) -> bool:
    if isinstance(value, str):
        text = _ascii_lower(value)
        return any(n in text for n in needles)
    if isinstance(value, Mapping):
        return any(_contains(v, needles) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains(v, needles) for v in value)
    return False


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(value: str) -> str:
    """SQL ``lower()``: only A-Z change, so every backend can agree on it."""
    return value.translate(_ASCII_LOWER)

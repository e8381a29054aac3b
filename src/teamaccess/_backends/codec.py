"""What the SQL backends store the same way: permission lists and metadata as JSON text,
and the one error for a stored value that cannot be read back."""

from __future__ import annotations

import json
from collections.abc import Mapping

from .._errors import StorageError, ValidationError
from .._permissions import PermissionSet

__all__ = [
    "DECODE_ERRORS",
    "details_text",
    "metadata_text",
    "parse_perms",
    "perms_text",
    "unreadable",
]

# What decoding a damaged row raises (bad JSON, a bad date, a value a validator refuses,
# a wrong type): turned into StorageError, never passed on raw.
DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)

# Parsing memo: stored text -> PermissionSet. It caches a pure function of the text, not
# anyone's permissions, so a revoked permission is still seen on the next look-up.
_PARSED: dict[str, PermissionSet] = {}


def unreadable(what: str, exc: BaseException) -> StorageError:
    return StorageError(
        f"the teamaccess database holds {what} that cannot be read ({type(exc).__name__}: "
        f"{str(exc)[:100]}); the data was changed by something else than teamaccess or is "
        "damaged: restore it from a backup or repair that row"
    )


# Writing memo: PermissionSet -> its stored text, the inverse of _PARSED (a pure function
# of a frozen value); most writes store one of a few sets.
_TEXTS: dict[PermissionSet, str] = {}


def perms_text(permissions: PermissionSet) -> str:
    found = _TEXTS.get(permissions)
    if found is None:
        found = json.dumps(permissions.to_list())
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        _TEXTS[permissions] = found
    return found


def parse_perms(text: str) -> PermissionSet:
    found = _PARSED.get(text)
    if found is None:
        try:
            found = PermissionSet.from_list(json.loads(text))
        except DECODE_ERRORS as exc:
            raise unreadable(f"a permission list {str(text)[:60]!r}", exc) from exc
        if len(_PARSED) > 4096:
            _PARSED.clear()
        _PARSED[text] = found
    return found


def metadata_text(metadata: Mapping[str, object]) -> str:
    if not metadata:
        return "{}"  # what json.dumps writes for it, without the encoder (most rows)
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))


_DETAILS_ENCODER = json.JSONEncoder(sort_keys=True)


def details_text(details: Mapping[str, object]) -> str:
    """An audit event's details as stored; a value JSON cannot hold is the caller's error."""
    try:
        # json.dumps(dict(details), sort_keys=True), without a new encoder every call
        return _DETAILS_ENCODER.encode(dict(details))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"audit event details must be JSON values (str, int, list, dict ...): {exc}"
        ) from exc

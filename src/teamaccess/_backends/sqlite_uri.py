"""What a path or ``file:`` URI handed to ``SQLiteStore`` means to SQLite: read-only,
immutable, in memory, the file it creates; and the URIs Python's parser would read apart
from SQLite, refused. Read as SQLite reads them, since the store's checks (a private
file, a refused read-only open) must judge the same file SQLite then opens."""

from __future__ import annotations

import os
import re

from .._errors import ValidationError

__all__ = ["_check_uri", "_file_of_uri", "_immutable", "_in_memory", "_read_only"]


def _read_only(path: str) -> bool:
    """Whether *path* is a ``file:`` URI SQLite opens read-only (``mode=ro`` or
    ``immutable=1``)."""
    if not path.startswith("file:"):
        return False
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(path).query))
    return query.get("mode", "").lower() == "ro" or _immutable(path)


def _immutable(path: str) -> bool:
    """Whether *path* is a ``file:`` URI with ``immutable=1``: SQLite reads such a file
    as it is, with no journal, so its journal mode reads ``delete`` and cannot change."""
    if not path.startswith("file:"):
        return False
    from urllib.parse import parse_qsl, urlsplit

    # The first "immutable", blank or not, as SQLite looks a parameter up
    # (sqlite3_uri_boolean): dict() kept the last, so "immutable=0&immutable=1" was
    # immutable here, and never switched to WAL, while SQLite wrote the file as any other.
    query = parse_qsl(urlsplit(path).query, keep_blank_values=True)
    value = next((v for k, v in query if k == "immutable"), "")
    # As SQLite reads a boolean (sqlite3GetBoolean): a value starting with a digit is a
    # number ("2" and "01" are true), else yes, true or on in any case.
    if value[:1].isascii() and value[:1].isdigit():
        return _sqlite_int(value) != 0
    return value.lower() in ("true", "yes", "on")


def _sqlite_int(text: str) -> int:
    """*text*, which starts with a digit, as SQLite's sqlite3Atoi() reads it: its leading
    digits (or 0x and up to 8 hex digits), 0 when that is no 32-bit integer."""
    hexa = re.match(r"0[xX]0*([0-9a-fA-F]{0,8})([0-9a-fA-F]?)", text)
    if hexa is not None and text[2:3] and text[2] in "0123456789abcdefABCDEF":
        number = int(hexa[1] or "0", 16)
        return number if number < 2**31 and not hexa[2] else 0
    digits = re.match(r"0*([0-9]{0,11})", text)
    assert digits is not None
    if len(digits[1]) > 10 or int(digits[1] or "0") > 2**31 - 1:
        return 0
    return int(digits[1] or "0")


def _in_memory(path: str) -> bool:
    """Whether *path* names an in-memory database (no file, so no WAL): ``":memory:"``,
    or a URI such as ``file::memory:?cache=shared``, ``file:name?mode=memory`` or
    ``file:/name?vfs=memdb``."""
    if path == ":memory:":
        return True
    if not path.startswith("file:"):
        return False
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query))
    return (
        unquote(parts.path) == ":memory:"
        or query.get("mode") == "memory"
        or query.get("vfs") == "memdb"
    )


def _file_of_uri(path: str, modes: tuple[str, ...] = ("rwc",)) -> str | None:
    """The file a ``file:`` URI has SQLite create when it is missing (no ``mode``, or
    ``mode=rwc``; with ``immutable=1`` too, empty), to be created private first as a
    path's is; ``None`` for a URI that creates none (``ro``, ``rw``, in memory, another
    host). With *modes*, the file of a URI opened in one of those modes."""
    from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query))
    # The bytes SQLite decodes, not UTF-8 text: unquote() turns "%E9" (a Latin-1 "é")
    # into U+FFFD, so the store made "team\ufffd.db" private while SQLite created
    # "team\xe9.db" readable by all. fsdecode() gives os.open() those bytes back.
    file = os.fsdecode(unquote_to_bytes(parts.path))
    if query.get("mode", "rwc") not in modes or file in ("", ":memory:") or _in_memory(path):
        return None
    return file if parts.netloc in ("", "localhost") else None


def _check_uri(path: str) -> None:
    """Refuse a ``file:`` URI that Python's parser, which the store's checks use, would
    read apart from SQLite: it drops a tab, CR or LF anywhere (SQLite keeps them, so the
    store made ``team.db`` private while SQLite created ``team<TAB>.db`` readable by all,
    and ``?mo<TAB>de=ro`` was read-only to one and not the other), and it raises a bare
    ``ValueError`` on a host it cannot read."""
    from urllib.parse import urlsplit

    for c in path:
        if c < " " or c == "\x7f":
            raise ValidationError(
                f"the file: URI {path!r} holds the control character {c!r}; write it "
                f"percent-encoded (%{ord(c):02X}), or pass the file's path instead of a URI"
            )
    try:
        urlsplit(path)
    except ValueError as exc:
        raise ValidationError(
            f"{path!r} is not a file: URI SQLite and the store read alike ({exc}); write "
            "e.g. file:/srv/team.db?mode=ro, or pass the file's path"
        ) from None

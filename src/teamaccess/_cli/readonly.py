"""A SQLite database file this user may read but not write (a monitoring user's view):
commands that only read open it read-only, commands that change it are refused first."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from .._errors import StorageError

__all__ = ["READERS", "read_only_uri", "refuse_writing", "unwritable"]

#: Commands that work on a file this user may not write, for the error messages.
READERS = "members, permissions show/check, invitations, audit, deliver --list, export"


def _side_files(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _writable(path: Path) -> bool:
    # os.access() asks the kernel, so it also says no for an immutable file (chattr +i)
    # or a read-only mount, which refuse even root.
    return os.access(path, os.W_OK)


def unwritable(path: Path) -> str | None:
    """Why this process cannot write the existing database *path*, or ``None`` if it can:
    SQLite writes the file itself, and its ``-wal`` and ``-shm`` files beside it (created
    in the directory when missing)."""
    if not _writable(path):
        return "the file is not writable for this user"
    folder = path.parent
    for side in _side_files(path):
        if side.exists():
            if not _writable(side):
                return f"{side.name} is not writable for this user"
        elif not _writable(folder):
            return (
                f"its directory {folder} is not writable for this user, and SQLite "
                f"creates {side.name} there"
            )
    return None


def refuse_writing(db: str, why: str) -> StorageError:
    """The error of a command that would change a database this user cannot write."""
    return StorageError(
        f"the database {db} is read-only ({why}); this command changes it, so run it as a "
        "user who may write the file and its directory (the file's owner) or fix their "
        f"permissions. Commands that only read work on it as it is ({READERS})"
    )


def read_only_uri(db: str) -> str:
    """A SQLite URI that opens the existing file *db* read-only, as this user can.

    A WAL database is read through its ``-shm`` file; when that is missing and the
    directory is read-only, SQLite cannot create it. With no ``-wal`` file either, every
    committed change is in the file itself, so it is read as it is (``immutable``). A
    ``-wal`` without its ``-shm`` holds changes only a writer can bring in: refused.
    """
    path = Path(db)
    wal, shm = _side_files(path)
    options = "mode=ro"
    if not shm.exists() and not _writable(path.parent):
        if wal.exists() and wal.stat().st_size > 0:
            raise StorageError(
                f"the database {db} cannot be read by this user: {wal.name} holds changes "
                f"not yet in the file, and SQLite needs {shm.name} to read them, which it "
                f"cannot create in the read-only directory {path.parent}; open the "
                "database once as its owner (e.g. 'teamaccess migrate'), which writes the "
                "changes into the file, then read it again"
            )
        options += "&immutable=1"
    # '?', '#' and '%' in a path would end or escape the URI's path part.
    return f"file:{quote(str(path.absolute()))}?{options}"

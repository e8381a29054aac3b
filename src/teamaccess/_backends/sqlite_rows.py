"""Value conversion for the SQLite backend: Python values to column text and rows back to
domain objects; unreadable stored data becomes ``StorageError``."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from .._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._errors import (
    StorageError,
    ValidationError,
)
from .._permissions import PermissionSet
from .codec import DECODE_ERRORS as _DECODE_ERRORS
from .codec import metadata_text as _metadata_text
from .codec import parse_perms as _perms
from .codec import perms_text as _perms_text
from .codec import unreadable as _unreadable
from .sqlite_schema import NUMBERED_INVITATION, NUMBERED_OUTBOX

__all__ = [
    "_ACCOUNT_COLS",
    "_ACTIVE_GRANTS",
    "_BY_KEY",
    "_CONTACT_COLS",
    "_DECODE_ERRORS",
    "_EVENT_COLS",
    "_GRANTS",
    "_INVITATION_BY_KEY_I",
    "_INVITATION_COLS",
    "_INVITATION_UNNUMBERED",
    "_INVITATION_UNNUMBERED_I",
    "_MEMBER_COLS",
    "_OUTBOX_COLS",
    "_OUTBOX_UNNUMBERED",
    "Row",
    "_account",
    "_active_grant",
    "_by_id",
    "_check_siblings",
    "_contact",
    "_create_private",
    "_dt",
    "_dt_or_none",
    "_event",
    "_grant",
    "_id_number",
    "_invitation",
    "_is_unique_violation",
    "_member",
    "_member_seq",
    "_metadata_text",
    "_milliseconds",
    "_outbox",
    "_outbox_params",
    "_perms",
    "_perms_text",
    "_private_if_empty",
    "_stored_status",
    "_ts",
    "_ts_or_none",
    "_unreadable",
]


Row = tuple[Any, ...]


# -- value conversion ---------------------------------------------------------------------


def _ts(value: datetime) -> str:
    """ISO-8601 in UTC, fixed width, so text order is time order."""
    if value.tzinfo is None:
        raise ValidationError(
            f"SQLiteStore stores timezone-aware datetimes only, not {value!r}; "
            "use datetime.now(UTC) or a Clock"
        )
    if type(value) is not datetime or value.tzinfo is not UTC:
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    # A use case writes its one "now" into several columns (an invite: the invitation,
    # its outbox row, its audit event): each instant is formatted once. Only in UTC: two
    # equal times in one local zone may be the two instants of a repeated hour (fold).
    found = _TS_MEMO.get(value)
    if found is None:
        found = value.isoformat(timespec="microseconds")
        if len(_TS_MEMO) >= 64:
            _TS_MEMO.clear()
        _TS_MEMO[value] = found
    return found


_TS_MEMO: dict[datetime, str] = {}


def _json_object(text: Any) -> Any:
    """``json.loads(text)``: the empty object most rows' metadata is, without the decoder."""
    return {} if text == "{}" else json.loads(text)


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _dt_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# grant() memo: stored (permissions, status, access_until) -> the parsed answer. Like the
# permission-list memo it caches a pure function of the row's text, never anyone's
# current grant: the row is read on every call.
_GRANTS: dict[Row, tuple[PermissionSet, datetime | None]] = {}


def _grant(row: Row) -> tuple[PermissionSet, datetime | None]:
    found = _GRANTS.get(row)
    if found is None:
        held = PermissionSet.none() if row[1] == "suspended" else _perms(row[0])
        try:
            found = (held, _dt_or_none(row[2]))
        except _DECODE_ERRORS as exc:
            raise _unreadable(f"an end of access {str(row[2])[:40]!r}", exc) from exc
        if len(_GRANTS) > 4096:
            _GRANTS.clear()
        _GRANTS[row] = found
    return found


# The same for an active member without an end (grant()'s one-column answer): stored
# permission text -> (permissions, None).
_ACTIVE_GRANTS: dict[str, tuple[PermissionSet, None]] = {}


def _active_grant(text: str) -> tuple[PermissionSet, None]:
    found = _ACTIVE_GRANTS.get(text)
    if found is None:
        found = (_perms(text), None)
        if len(_ACTIVE_GRANTS) > 4096:
            _ACTIVE_GRANTS.clear()
        _ACTIVE_GRANTS[text] = found
    return found


def _account(row: Row) -> Account:
    try:
        return Account(id=row[0], name=row[1], owner_id=row[2], owner_email=row[3],
                       created_at=_dt(row[4]))  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an account row", exc) from exc


def _not_text(value: object, column: str) -> str:
    # SQLite keeps the type a value was written with: another program may have put a BLOB
    # where text belongs, which would fail later as a TypeError far from here.
    return f"{type(value).__name__} in the {column} column, where text belongs"


def _member(row: Row) -> Member:
    try:
        if type(row[2]) is not str:
            raise TypeError(_not_text(row[2], "email"))
        return Member(
            account_id=row[0],
            user_id=row[1],
            email=row[2],
            role=row[3],
            permissions=_perms(row[4]),
            joined_at=_dt(row[5]),
            granted_by=row[6],
            status=row[7],
            access_until=_dt_or_none(row[8]),
            metadata=_json_object(row[9]),
        )
    except _DECODE_ERRORS as exc:
        raise _unreadable("a member row", exc) from exc


def _invitation(row: Row) -> Invitation:
    try:
        return Invitation(
            id=row[0],
            account_id=row[1],
            email=row[2],
            permissions=_perms(row[3]),
            invited_by=row[4],
            status=row[5],
            created_at=_dt(row[6]),
            expires_at=_dt(row[7]),
            token_hash=row[8],
            closed_at=_dt_or_none(row[9]),
            accepted_by=row[10],
            sent_count=row[11],
            language=row[12],
            access_until=_dt_or_none(row[13]),
            note=row[14],
            metadata=_json_object(row[15]),
        )
    except _DECODE_ERRORS as exc:
        raise _unreadable("an invitation row", exc) from exc


def _contact(row: Row) -> Contact:
    try:
        return Contact(
            id=row[0],
            account_id=row[1],
            name=row[2],
            email=row[3],
            company=row[4],
            phone=row[5],
            role=row[6],
            created_at=_dt_or_none(row[7]),
            categories=row[8].split("\n") if row[8] else (),
        )
    except _DECODE_ERRORS as exc:
        raise _unreadable("a contact row", exc) from exc


def _event(row: Row) -> AuditEvent:
    try:
        for index, column in ((3, "actor_id"), (4, "action"), (5, "target")):
            if type(row[index]) is not str:
                raise TypeError(_not_text(row[index], column))
        return AuditEvent(id=row[0], account_id=row[1], at=_dt(row[2]), actor_id=row[3],
                          action=row[4], target=row[5], details=json.loads(row[6]))  # fmt: skip
    except _DECODE_ERRORS as exc:
        raise _unreadable("an audit event row", exc) from exc


def _outbox(row: Row) -> OutboxMessage:
    try:
        if row[11] is not None and type(row[11]) is not str:
            raise TypeError(_not_text(row[11], "last_error"))
        if row[8] is not None and type(row[8]) is not bytes:
            # bytes() of a number is that many NUL bytes (a huge one: no memory left).
            raise TypeError(f"{type(row[8]).__name__} in the message column, where a BLOB belongs")
        return OutboxMessage(
            id=row[0],
            account_id=row[1],
            kind=row[2],
            recipient=row[3],
            message_id=row[4],
            created_at=_dt(row[5]),
            next_attempt_at=_dt(row[6]),
            status=row[7],
            message=None if row[8] is None else bytes(row[8]),
            invitation_id=row[9],
            attempts=row[10],
            last_error=row[11],
            sent_at=_dt_or_none(row[12]),
            leased_until=_dt_or_none(row[13]),
        )
    except _DECODE_ERRORS as exc:
        raise _unreadable("an outbox row", exc) from exc


def _outbox_params(m: OutboxMessage) -> tuple[Any, ...]:
    """The columns of an outbox row after its key and id, in the table's order."""
    return (
        m.account_id, m.kind, m.recipient, m.message_id, _ts(m.created_at),
        _ts(m.next_attempt_at), m.status, m.message, m.invitation_id, m.attempts,
        m.last_error, _ts_or_none(m.sent_at), _ts_or_none(m.leased_until),
    )  # fmt: skip


# A member's seq orders members who joined at the same instant, as they were added. It
# was the account's largest seq plus one, read in every insert: a scan of the account's
# members (the table is keyed by account and user), about 5 us at 50 members and growing
# with the account. A clock reading in nanoseconds, never repeated or going back within a
# process, orders them the same way without reading anything, and is larger than every
# per-account number stored before.
_last_member_seq = 0
_member_seq_lock = threading.Lock()


def _member_seq() -> int:
    """A new member's seq: later than any this process handed out, and than the clock."""
    global _last_member_seq
    with _member_seq_lock:
        _last_member_seq = max(_last_member_seq + 1, time.time_ns())
        return _last_member_seq


def _stored_status(status: str) -> str:
    # "expired" is read off the clock, never stored: a member read back through the
    # service and written again stays "active" underneath.
    return "suspended" if status == "suspended" else "active"


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600), if it is new.

    SQLite would create it 0644 (less the umask), readable by every local user, and gives
    its -wal and -shm files the mode of the database file, so they are 0600 as well. An
    existing file with data keeps its mode; an empty file is a new database to SQLite,
    and is made 0600 too (see :func:`_private_if_empty`). A symlink to no file yet has
    the file it names created so.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not os.path.islink(path):
            _private_if_empty(path)
            return
        # A symlink (O_EXCL never follows one) to a file that may not be there yet, say
        # on a data volume: SQLite follows it and would create that file 0644.
        try:
            fd = os.open(os.path.realpath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            _private_if_empty(path)
            return
        except OSError:
            return
    except OSError:
        return  # it cannot be created: sqlite3.connect() says why, if it matters
    os.close(fd)


def _private_if_empty(path: str) -> None:
    """Make an empty file the process owns 0600 before SQLite writes a database into it.

    An empty file is a new database to SQLite, which keeps the file's mode (and gives it
    to the -wal and -shm files): a file made with ``touch`` (0644 less the umask) would
    hold every address readable by every local user. One with data keeps its mode (the
    operator's choice for a database); an empty one another user owns, which this
    process cannot make private, is refused before anything is written into it.
    """
    if os.name != "posix":
        return  # no Unix modes to tighten
    # Decided on the name first, and a descriptor opened only for an empty file: closing
    # any descriptor of a file drops every POSIX lock the process holds on it, those of
    # a store already open on it in this process included, so the next process to close
    # the file took it for unused and deleted the WAL that store went on writing into.
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return  # not there: sqlite3.connect() says why, if it matters
    if not stat.S_ISREG(st.st_mode) or st.st_size or not st.st_mode & 0o077:
        return
    try:
        # Non-blocking: a FIFO at the path must not hang the open (SQLite refuses it).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return  # not there or not readable: sqlite3.connect() says why, if it matters
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size or not st.st_mode & 0o077:
            return
        if st.st_uid == os.geteuid():
            os.fchmod(fd, 0o600)  # through the descriptor: the file checked, not a swap
            return
    except OSError as exc:
        raise StorageError(
            f"the database file {path} is empty, so SQLite would write the new database "
            f"into it, readable by other users (mode {stat.S_IMODE(st.st_mode):04o}), "
            f"and making it private failed ({exc}); chmod 600 it, or remove it so that "
            "it is created 0600, and open it again"
        ) from exc
    finally:
        os.close(fd)
    raise StorageError(
        f"the database file {path} is empty, so SQLite would write the new database into "
        f"it, readable by other users (mode {stat.S_IMODE(st.st_mode):04o}), and it "
        f"belongs to another user (uid {st.st_uid}), so this process cannot make it "
        "private; as its owner, chmod 600 it, or remove it so that it is created 0600, "
        "and open it again"
    )


#: the files SQLite keeps beside a database, and writes its data into
_SIBLINGS: Final = ("-wal", "-shm", "-journal")


def _may_use(uid: int, db: os.stat_result) -> bool:
    """Whether the user *uid* may read the database file *db* anyway (so a file of
    theirs beside it shows them nothing new)."""
    if uid in (0, db.st_uid) or db.st_mode & 0o004:
        return True
    if not db.st_mode & 0o040:
        return False
    import grp
    import pwd

    try:
        user = pwd.getpwuid(uid)
        return user.pw_gid == db.st_gid or user.pw_name in grp.getgrgid(db.st_gid).gr_mem
    except KeyError:
        return False  # a user or group the system does not know


def _check_siblings(path: str) -> None:
    """Refuse, or make private, a -wal, -shm or -journal file already beside the database
    file that would let someone read (or write) what SQLite writes into it who may not
    read the database file itself.

    SQLite gives a -wal it creates the database file's mode, but writes into one that is
    there as it is: a stale 0644 one (a database removed without it, a restore with
    ``cp``), or one another local user made in a shared folder, a symlink included,
    received every change. A file of this process's user is given the database file's
    mode; one of another user who may not read the database, or that is not a plain
    file, or that has another name (a hard link), is refused before anything is written.
    A co-user's file (one who may read the database) is left as it is, whatever its
    group: its creator's, as SQLite makes it.
    """
    if os.name != "posix":
        return  # no Unix modes to compare
    real = os.path.realpath(path)  # SQLite names the files after the resolved path
    try:
        db = os.stat(real)
    except (OSError, ValueError):
        return  # no database file yet: sqlite3.connect() says why, if it matters
    if not stat.S_ISREG(db.st_mode):
        return
    db_mode = stat.S_IMODE(db.st_mode)
    for suffix in _SIBLINGS:
        name = real + suffix
        try:
            st = os.lstat(name)
        except (OSError, ValueError):
            continue
        why = ""
        todo = "remove it once no process has the database open, and open the store again"
        if not stat.S_ISREG(st.st_mode):
            why = "is not a plain file (SQLite would write into what it points to)"
        elif st.st_nlink > 1:
            # A hard link: made private here, the other name's file would change mode,
            # and SQLite would write the changes into it (a descriptor opened there
            # before keeps reading them).
            why = f"is a hard link (one file with {st.st_nlink} names: it changes under each)"
            todo = (
                "remove its other names (a copy made with cp -l or cp -al links the "
                "files it copies), or this one once no process has the database open"
            )
        elif not _may_use(st.st_uid, db):
            why = f"belongs to another user (uid {st.st_uid}) who may not read the database"
        if why:
            raise StorageError(
                f"{name}, beside the database file {path}, {why}, so SQLite would write "
                f"the database's changes into it; {todo}"
            )
        mode = stat.S_IMODE(st.st_mode)
        same_group = st.st_gid == db.st_gid
        # Access every local user has to it and not to the database file; and its
        # group's where the database file gives its own group none, or is of the same
        # group and gives it less (a file of another group beside a database shared
        # with a group is its creator's, as SQLite makes it, and left so).
        others = mode & 0o006 & ~db_mode
        in_group = mode & 0o060
        group = bool(in_group) and (in_group >> 3) & ~db_mode & 0o006 != 0
        group = group and (not db_mode & 0o060 or (same_group and in_group & ~db_mode != 0))
        if not (others or group):
            continue
        if st.st_uid != os.geteuid():
            if others:
                raise StorageError(
                    f"{name}, beside the database file {path}, may be read by every local "
                    f"user (mode {mode:04o}), the database file not ({db_mode:04o}), and "
                    f"it belongs to another user (uid {st.st_uid}); as its owner, chmod "
                    f"{db_mode:o} it, or remove it once no process has the database open"
                )
            continue  # a co-user's file, its group its creator's (see above)
        # No more for every user than the database file gives; for the group, the
        # database file's bits (none in another group).
        tightened = mode & ~0o007 | mode & db_mode & 0o007
        if group:
            tightened = tightened & ~0o070 | (db_mode & 0o070 if same_group else 0)
        try:
            # By name: a descriptor closed here would drop the POSIX locks a store of
            # this process holds on the -shm.
            os.chmod(name, tightened | 0o600)
        except OSError as exc:
            raise StorageError(
                f"{name}, beside the database file {path}, may be read by more users "
                f"(mode {mode:04o}) than the database file ({db_mode:04o}), and making "
                f"it private failed ({exc}); chmod {db_mode:o} it, or remove it once no "
                "process has the database open"
            ) from exc


def _milliseconds(seconds: float) -> int:
    """*seconds* for ``PRAGMA busy_timeout``: never negative, and capped, since SQLite keeps
    it in a C int (an infinite timeout waits about 25 days between retries)."""
    return int(min(max(seconds, 0.0), (2**31 - 1) / 1000) * 1000)


def _id_number(value: str, prefix: str) -> int | None:
    """The key a row whose id is *value* is stored under: the number in an id that starts
    with *prefix* and 16 lowercase hex digits, whatever follows (schema 7), or None for
    any other id."""
    if len(value) < len(prefix) + 16 or not value.startswith(prefix):
        return None
    digits = value[len(prefix) : len(prefix) + 16]
    try:
        number = int(digits, 16)
    except ValueError:
        return None
    # int() also takes "+", "_", spaces and capitals: only the exact form is numbered, so
    # the id starts with printf('<prefix>%016x', key) of its row.
    return number if number < 2**63 and f"{number:016x}" == digits else None


# One row by its id (schema 7): first by its key, for an id with a number (one rowid
# search: the rows the service writes); if no row is there, through the partial index of
# rows stored without their number (an older file's rows, ids of any other form). Built
# from the schema's constants only: no value is put into the text.
_BY_KEY: Final = "key = ? AND id = ?"
_INVITATION_UNNUMBERED: Final = f"id = ? AND {NUMBERED_INVITATION}"
_OUTBOX_UNNUMBERED: Final = f"id = ? AND {NUMBERED_OUTBOX}"
# The same for invitations as "i" in a join with a table of its own id column.
_INVITATION_BY_KEY_I: Final = "i.key = ? AND i.id = ?"
_INVITATION_UNNUMBERED_I: Final = (
    "i.id = ? AND substr(i.id, 1, 20) IS NOT printf('inv_%016x', i.key)"
)


def _by_id(
    one: Callable[[str, tuple[Any, ...]], Row | None],
    sql: str,
    by_key: str,
    unnumbered: str,
    head: tuple[Any, ...],
    row_id: str,
    prefix: str,
) -> Row | None:
    """One row by its id, read with *one*: *sql* ends in a WHERE clause completed with
    *by_key* (the values *head*, the key, the id) or, if that finds nothing, with
    *unnumbered* (*head*, the id); the key only for an id with a number."""
    number = _id_number(row_id, prefix)
    if number is not None:
        row = one(sql + by_key, (*head, number, row_id))
        if row is not None:
            return row
    return one(sql + unnumbered, (*head, row_id))


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    return "UNIQUE constraint failed" in str(exc)


# The columns each query reads, in the order the converters above take them.
_ACCOUNT_COLS: Final = "a.id, a.name, a.owner_id, a.owner_email, a.created_at"
_MEMBER_COLS: Final = (
    "account_id, user_id, email, role, permissions, joined_at, granted_by, status, "
    "access_until, metadata"
)
_INVITATION_COLS: Final = (
    "id, account_id, email, permissions, invited_by, status, created_at, expires_at, "
    "token_hash, closed_at, accepted_by, sent_count, language, access_until, note, metadata"
)
_CONTACT_COLS: Final = (
    "c.id, c.account_id, c.name, c.email, c.company, c.phone, c.role, c.created_at, "
    # categories are single-line names, so a newline separates them safely
    "(SELECT group_concat(category, char(10)) FROM contact_categories cc "
    "WHERE cc.contact_id = c.id)"
)
_EVENT_COLS: Final = "id, account_id, at, actor_id, action, target, details"
_OUTBOX_COLS: Final = (
    "id, account_id, kind, recipient, message_id, created_at, next_attempt_at, status, "
    "message, invitation_id, attempts, last_error, sent_at, leased_until"
)

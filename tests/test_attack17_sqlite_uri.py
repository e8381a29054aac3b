"""Attack round 17 on ``SQLiteStore``'s file names: percent-encoded bytes in a ``file:``
URI, and a path no file name can be written with.

SQLite decodes ``%HH`` in a URI's path to that byte; the store decoded it as UTF-8
(``unquote()``), which makes U+FFFD of a byte that starts no UTF-8 sequence. So
``file:team%E9.db`` (a Latin-1 "é") had the store create ``team\\ufffd.db`` private and
SQLite create ``team\\xe9.db``, with its -wal and -shm files, readable by every local user.
A path holding a lone surrogate raised a bare ``UnicodeEncodeError``. And ``immutable=2``
is true to SQLite and was not to the store.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from teamaccess import FileMailer, SQLiteStore, TeamAccess, ValidationError

SECRET = "k" * 32


@pytest.fixture(autouse=True)
def _umask_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)  # SQLite would create 0644
    try:
        yield
    finally:
        os.umask(old)


def _modes(directory: Path) -> dict[bytes, int]:
    return {
        name: stat.S_IMODE(os.stat(os.path.join(os.fsencode(directory), name)).st_mode)
        for name in os.listdir(os.fsencode(directory))
    }


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("file:team%E9.db", b"team\xe9.db"),  # Latin-1
        ("file:team%FF.db?mode=rwc", b"team\xff.db"),
        ("file:team%C3.db", b"team\xc3.db"),  # a UTF-8 sequence cut short
        ("file:team%C3%A9.db", "teamé".encode() + b".db"),  # UTF-8: held before too
    ],
)
def test_the_file_sqlite_creates_is_the_private_one(uri: str, name: bytes, tmp_path: Path) -> None:
    store = SQLiteStore(uri)
    TeamAccess(store, FileMailer(tmp_path / "mail"), secret_key=SECRET).create_account(
        name="A", owner_id="o", owner_email="o@example.com"
    )
    try:
        modes = _modes(tmp_path)
    finally:
        store.close()
    modes.pop(b"mail", None)
    # Only the database and its -wal and -shm, under the name SQLite gave them, all 0600;
    # no empty stray file under another name.
    assert modes == {name: 0o600, name + b"-wal": 0o600, name + b"-shm": 0o600}


@pytest.mark.parametrize("path", ["team\ud800.db", "file:team\udfff.db", "file:team.db?x=\ud83d"])
def test_a_lone_surrogate_is_refused(path: str, tmp_path: Path) -> None:
    """A str that no file name can be written with (a lone surrogate, as a JSON
    ``"\\ud800"`` decodes to) is a ``ValidationError``, with nothing created; it was a bare
    ``UnicodeEncodeError`` from ``os.open()``."""
    with pytest.raises(ValidationError, match=r"which no file name here can be written with"):
        SQLiteStore(path)
    assert os.listdir(tmp_path) == []


def test_bytes_a_file_name_holds_are_fine(tmp_path: Path) -> None:
    """What ``os.fsdecode()`` gives for a name that is no UTF-8 opens (its surrogates stand
    for the bytes)."""
    SQLiteStore(os.fsdecode(b"team\xff.db")).close()
    assert _modes(tmp_path) == {b"team\xff.db": 0o600}


@pytest.mark.parametrize("value", ["2", "01", "0x1", "TRUE", "2abc"])
def test_immutable_as_sqlite_reads_it(value: str, tmp_path: Path) -> None:
    """``immutable=2`` (or ``01``, ``0x1``) is true to SQLite, which reads a boolean from a
    leading number; the store read only ``1``, ``true``, ``yes`` and ``on``, expected WAL
    journaling of the file SQLite opened immutable, and refused it as a file that "cannot
    use WAL journaling", on a local file system."""
    store = SQLiteStore("team.db")
    account = TeamAccess(store, FileMailer(tmp_path / "mail"), secret_key=SECRET).create_account(
        name="A", owner_id="o", owner_email="o@example.com"
    )
    store.close()
    reader = SQLiteStore(f"file:team.db?immutable={value}")
    try:
        team = TeamAccess(reader, FileMailer(tmp_path / "mail"), secret_key=SECRET)
        assert team.get_account(account.id).name == "A"
    finally:
        reader.close()


@pytest.mark.parametrize("value", ["0", "00", "no", "+1", "99999999999", "0x80000000"])
def test_not_immutable_as_sqlite_reads_it(value: str, tmp_path: Path) -> None:
    """What SQLite reads as false (a number that is 0, or none of 32 bits) opens as usual,
    in WAL mode, writable."""
    store = SQLiteStore(f"file:team.db?immutable={value}")
    try:
        TeamAccess(store, FileMailer(tmp_path / "mail"), secret_key=SECRET).create_account(
            name="A", owner_id="o", owner_email="o@example.com"
        )
        assert (tmp_path / "team.db-wal").exists()
    finally:
        store.close()

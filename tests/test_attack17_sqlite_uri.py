"""Attack round 17 on the ``file:`` URIs of ``SQLiteStore``: percent-encoded bytes.

SQLite decodes ``%HH`` in a URI's path to that byte; the store decoded it as UTF-8
(``unquote()``), which makes U+FFFD of a byte that starts no UTF-8 sequence. So
``file:team%E9.db`` (a Latin-1 "é") had the store create ``team\\ufffd.db`` private and
SQLite create ``team\\xe9.db``, with its -wal and -shm files, readable by every local user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from teamaccess import FileMailer, SQLiteStore, TeamAccess

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

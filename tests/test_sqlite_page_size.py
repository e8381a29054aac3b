"""The page size of the files SQLiteStore creates: SQLite's 4 KiB, or as chosen.

Each commit appends a whole page to the WAL for every B-tree page it changes, and an
invite or an accept changes one page in each of about a dozen trees (the rows and the
indexes the rules need): smaller pages write and sync less for the same rows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess, ValidationError


def header_page_size(path: Path) -> int:
    """The page size as the file's header holds it (bytes 16 and 17, big-endian)."""
    head = path.read_bytes()[:100]
    assert head.startswith(b"SQLite format 3\x00")
    value = int.from_bytes(head[16:18], "big")
    return 65536 if value == 1 else value


def wal_bytes_of_one_invite_and_accept(path: Path) -> int:
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    for n in range(30):  # trees of some size
        inv = team.invite(account.id, actor_id="owner", email=f"m{n}@example.org",
                          permissions=PermissionSet.of("billing.view"))  # fmt: skip
        team.accept_invitation(inv.token, user_id=f"u{n}", email=f"m{n}@example.org")
    wal = Path(f"{path}-wal")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = wal.stat().st_size
    inv = team.invite(account.id, actor_id="owner", email="new@example.org",
                      permissions=PermissionSet.of("billing.view"))  # fmt: skip
    team.accept_invitation(inv.token, user_id="new", email="new@example.org")
    grown = wal.stat().st_size - before  # before the last close removes the WAL
    team.close()
    return grown


def test_a_new_file_has_sqlites_default_pages(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "team.db").close()
    assert header_page_size(tmp_path / "team.db") == 4096


@pytest.mark.parametrize("size", [512, 1024, 65536])
def test_the_page_size_can_be_chosen_for_a_new_file(tmp_path: Path, size: int) -> None:
    SQLiteStore(tmp_path / "team.db", page_size=size).close()
    assert header_page_size(tmp_path / "team.db") == size


def test_a_database_in_memory_takes_it_too() -> None:
    store = SQLiteStore(":memory:", page_size=1024)
    with store.read() as uow:
        assert uow._conn.execute("PRAGMA page_size").fetchone() == (1024,)
    store.close()


def test_an_existing_file_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    SQLiteStore(path, page_size=1024).close()
    store = SQLiteStore(path, page_size=8192)  # for a new file only
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    assert team.can("owner", account.id, "billing.view")
    team.close()
    assert header_page_size(path) == 1024


def test_smaller_pages_write_less_wal_for_the_same_rows(tmp_path: Path) -> None:
    small = wal_bytes_of_one_invite_and_accept_at(tmp_path / "small.db", 1024)
    large = wal_bytes_of_one_invite_and_accept_at(tmp_path / "large.db", 4096)
    # The same B-tree pages change either way; each is a quarter of the size.
    assert large > 1.8 * small, (small, large)


def wal_bytes_of_one_invite_and_accept_at(path: Path, page_size: int) -> int:
    SQLiteStore(path, page_size=page_size).close()
    return wal_bytes_of_one_invite_and_accept(path)


@pytest.mark.parametrize("bad", [0, 1000, 256, 131072, True, 1024.0, "1024", None])
def test_a_page_size_sqlite_would_ignore_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(
        ValidationError, match=r"page_size must be a power of two from 512 to 65536"
    ):
        SQLiteStore(tmp_path / "team.db", page_size=bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing created

"""SQLite's in-memory databases, by name or by URI, open as ``":memory:"`` does: no
file, so no WAL to ask for (``file::memory:`` was refused as a file that "cannot use WAL
journaling"), and the library works on them. A path with a NUL, which no file can
have, is a ValidationError (os.open raised a bare ValueError)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from teamaccess import PermissionSet, SQLiteStore, TeamAccess, ValidationError
from teamaccess.testing import MemoryMailer


@pytest.mark.parametrize(
    "path",
    [":memory:", "file::memory:", "file::memory:?cache=shared", "file:team?mode=memory",
     "file:team?mode=memory&cache=shared",
     # SQLite's memdb VFS: an empty 0600 "team.db" was left behind, and the store was
     # refused as a file that "cannot use WAL journaling"
     "file:team.db?vfs=memdb", "file:/team?vfs=memdb"],
)  # fmt: skip
def test_in_memory(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key="k" * 32,
                      accept_url="https://panel.example.com/accept?token={token}")  # fmt: skip
    try:
        account = team.create_account(name="M", owner_id="o", owner_email="o@example.org")
        token = team.invite(account.id, actor_id="o", email="d@example.org",
                            permissions=PermissionSet.of("billing.view")).token  # fmt: skip
        assert token is not None
        team.accept_invitation(token, user_id="d", email="d@example.org")
        assert team.can("d", account.id, "billing.view")
    finally:
        team.close()
    assert os.listdir(tmp_path) == []  # nothing written to disk


@pytest.mark.parametrize("path", ["a\x00b.db", "file:d%00x.db", "file:d\x00x.db?mode=rwc"])
def test_a_nul_in_the_path_is_refused(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="holds a NUL character, which no file name can"):
        SQLiteStore(path)
    assert os.listdir(tmp_path) == []

"""How a SQLite unit of work ends when its rollback fails.

Left without a commit, the unit rolls back, and a failing rollback is a StorageError:
nothing may pass for done that was not. Left by an exception, that exception is the one
the caller sees; a rollback failing after it never hides it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import START

from teamaccess import Account, SQLiteStore, StorageError


def _account() -> Account:
    return Account(id="acc", name="A", owner_id="o", owner_email="o@example.org",
                   created_at=START)  # fmt: skip


def _unit_whose_rollback_fails(store: SQLiteStore, error: Exception | None) -> None:
    with store.begin() as uow:
        uow.add_account(_account())
        uow._conn.close()  # the rollback at the end of the block now fails
        if error is not None:
            raise error


def test_a_failing_rollback_without_an_error_is_a_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "team.db")
    with pytest.raises(StorageError, match="rolling back"):
        _unit_whose_rollback_fails(store, None)


def test_a_failing_rollback_after_an_error_keeps_that_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "team.db")
    with pytest.raises(KeyError, match="the caller's"):
        _unit_whose_rollback_fails(store, KeyError("the caller's"))

"""The SQLite fork handler handles every store even when keeping one inherited busy
connection alive fails: an exception out of an at-fork handler ends the handler there,
and the stores after it kept their connection in the child, usable on the parent's open
transaction without its file locks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import START
from tests.fork_helpers import in_a_fork

from teamaccess import Account, SQLiteStore, StorageError
from teamaccess._backends import sqlite as sqlite_backend


def account(name: str) -> Account:
    return Account(id=name, name=name, owner_id="o", owner_email="o@example.org",
                   created_at=START)  # fmt: skip


def test_every_store_is_handled_when_keeping_one_alive_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = [SQLiteStore(tmp_path / "one.db"), SQLiteStore(tmp_path / "two.db")]
    calls: list[object] = []

    def fails_first(obj: object) -> None:
        calls.append(obj)
        if len(calls) == 1:  # whichever store the handler meets first
            raise RuntimeError("keeping it alive failed")

    monkeypatch.setattr(sqlite_backend, "_keep_for_ever", fails_first)
    with stores[0].begin() as first, stores[1].begin() as second:
        units: list[Any] = [first, second]
        for i, uow in enumerate(units):
            uow.add_account(account(f"parent-{i}"))

        def in_the_child() -> object:
            refused = []
            for i, uow in enumerate(units):
                try:
                    uow.add_account(account(f"child-{i}"))
                    refused.append(False)
                except StorageError as exc:
                    refused.append("a fork of it" in str(exc))
            return refused

        assert in_a_fork(in_the_child) == {"result": "[True, True]"}
        for uow in units:
            uow.commit()
    for i, store in enumerate(stores):
        with store.read() as uow:
            assert uow.get_account(f"parent-{i}") is not None
            assert uow.get_account(f"child-{i}") is None
        store.close()

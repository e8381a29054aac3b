"""Attack round 18: a store handed to a process started with ``spawn`` or ``forkserver``.

``multiprocessing`` pickles a ``Process``'s arguments for those start methods (macOS and
Windows start with ``spawn``; Python 3.14 makes ``forkserver`` the default on Linux), and
a ``TeamAccess`` or store among them failed with a bare ``TypeError: cannot pickle
'_thread.RLock' object``. Each store now refuses with a ``StorageError`` that says to
open the store in that process.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, StorageError, TeamAccess
from teamaccess._ports import Store


def _count(team: TeamAccess) -> None:  # pragma: no cover (never runs: nothing is sent)
    team.accounts_for("o")


def test_a_store_is_not_pickled(store_factory: Callable[[], Store], backend: str) -> None:
    store = store_factory()
    with pytest.raises(StorageError, match=r"open the store .* in that process|open a SQLiteStore"):
        pickle.dumps(store)


def test_a_spawned_process_is_told_to_open_its_own(store_factory: Callable[[], Store]) -> None:
    team = TeamAccess(store_factory(), MemoryMailer(), secret_key=SECRET)
    process = multiprocessing.get_context("spawn").Process(target=_count, args=(team,))
    with pytest.raises(StorageError, match="cannot be sent to another process"):
        process.start()
    # Nothing was started, and the store still works here.
    assert team.accounts_for("o") == []

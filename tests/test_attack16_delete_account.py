"""Attack round 16 on ``delete_account()``.

An account whose own row was damaged (a name with a line break another program wrote, a
date SQLite cannot read) could not be deleted: the call read the account first and
stopped with "restore it from a backup or repair that row", though deleting it is the
repair the vendor asked for, and its owner could then never be erased. What held: two
deletions at once (one report, the other ``AccountNotFound``), a deletion by anyone but
``SYSTEM`` (refused before the account is read, the same for every id).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import SECRET, START
from tests.test_damaged_data import backend, damage

from teamaccess import (
    SYSTEM,
    AccountNotFound,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    Store,
    TeamAccess,
)
from teamaccess.testing import FrozenClock

__all__ = ["backend"]  # a fixture, imported for pytest

DAMAGED_ACCOUNT = {
    "a name with a line break": "UPDATE accounts SET name = 'A' || {nl} || 'Bcc: x'",
    "an owner address that is none": "UPDATE accounts SET owner_email = 'not an address'",
}
SQLITE_ONLY = {"a bad creation time": "UPDATE accounts SET created_at = 'soon'"}


def _team(store: Store) -> TeamAccess:
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))


class TestDamagedAccountRow:
    """A damaged account row is deleted with the rest; its owner can then be erased."""

    @pytest.mark.parametrize("what", sorted(DAMAGED_ACCOUNT))
    def test_deleted(
        self, backend: str, store_factory: Callable[[], Store], tmp_path: Path, what: str
    ) -> None:
        self._deleted(backend, store_factory, tmp_path, what)

    # PostgreSQL's timestamptz columns hold only times: these run on SQLite alone
    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    @pytest.mark.parametrize("what", sorted(SQLITE_ONLY))
    def test_deleted_sqlite(
        self, backend: str, store_factory: Callable[[], Store], tmp_path: Path, what: str
    ) -> None:
        self._deleted(backend, store_factory, tmp_path, what)

    def _deleted(
        self, backend: str, store_factory: Callable[[], Store], tmp_path: Path, what: str
    ) -> None:
        team = _team(store_factory())
        acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.com")
        team.invite(acc.id, actor_id="owner", email="bob@example.com",
                    permissions=PermissionSet.of("billing.view"))  # fmt: skip
        other = team.create_account(name="B", owner_id="otto", owner_email="ot@example.com")
        damage(backend, tmp_path, {**DAMAGED_ACCOUNT, **SQLITE_ONLY}[what] + " WHERE id = "
               f"'{acc.id}'")  # fmt: skip
        team = _team(store_factory())
        report = team.delete_account(acc.id, actor_id=SYSTEM)
        assert (report.members, report.invitations) == (1, 1)
        with pytest.raises(AccountNotFound):
            team.get_account(acc.id)
        assert team.get_account(other.id).name == "B"
        team.erase_person(user_id="owner", actor_id=SYSTEM)

    def test_still_only_the_vendor(
        self, backend: str, store_factory: Callable[[], Store], tmp_path: Path
    ) -> None:
        team = _team(store_factory())
        acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.com")
        damage(backend, tmp_path, DAMAGED_ACCOUNT["a name with a line break"])
        with pytest.raises(PermissionDenied):
            _team(store_factory()).delete_account(acc.id, actor_id="owner")


class TestTwoAtOnce:
    """Two deletions of one account at once: one report, the other AccountNotFound."""

    def test_one_wins(self, backend: str, store_factory: Callable[[], Store]) -> None:
        team = _team(store_factory())
        acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.com")
        for n in range(20):
            team.invite(acc.id, actor_id="owner", email=f"u{n}@example.com",
                        permissions=PermissionSet.none())  # fmt: skip
        teams = [_team(store_factory()) for _ in range(2)]
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def delete(t: TeamAccess) -> None:
            start.wait()
            try:
                outcomes.append(t.delete_account(acc.id, actor_id=SYSTEM))
            except Exception as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=delete, args=(t,)) for t in teams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reports = [o for o in outcomes if not isinstance(o, Exception)]
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert len(reports) == 1, outcomes
        assert [type(e) for e in errors] == [AccountNotFound], outcomes
        assert reports[0].invitations == 20  # type: ignore[attr-defined]


def test_the_service_knows_what_the_stores_chain() -> None:
    """The service tells a damaged row from a failing store by the error chained to the
    ``StorageError``: the list it keeps must be the backends' own."""
    from teamaccess._backends.codec import DECODE_ERRORS
    from teamaccess._service.account_deletion import _UNREADABLE

    assert _UNREADABLE == DECODE_ERRORS

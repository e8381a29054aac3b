"""Shared fixtures: a frozen clock, a recording mailer, and a store per backend."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, Store, TeamAccess
from teamaccess.testing import FrozenClock

# CI runs the same examples every time, so a red run is reproducible and not a coin toss;
# locally Hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SECRET = "test-secret-key"
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

BACKENDS = ["memory", "sqlite"]


def make_store(backend: str, path: Path) -> Store:
    if backend == "memory":
        return MemoryStore()
    from teamaccess import SQLiteStore

    return SQLiteStore(path / "teamaccess.db")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the backend's store; for SQLite every call opens the same file anew."""
    opened: list[Store] = []

    def factory() -> Store:
        store = make_store(backend, tmp_path)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    return store_factory()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def team(store: Store, mailer: MemoryMailer, clock: FrozenClock) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=clock,
        accept_url="https://panel.example.com/accept?token={token}",
    )


@pytest.fixture
def account(team: TeamAccess):  # type: ignore[no-untyped-def]
    """An account owned by ``owner`` (chef@muster.de)."""
    return team.create_account(name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de")


def add_member(
    team: TeamAccess,
    account_id: str,
    user_id: str,
    permissions: PermissionSet,
    *,
    actor_id: str = "owner",
    email: str | None = None,
) -> None:
    """Invite and accept in one step: a member with *permissions*."""
    address = email or f"{user_id}@example.org"
    inv = team.invite(account_id, actor_id=actor_id, email=address, permissions=permissions)
    assert inv.token is not None
    team.accept_invitation(inv.token, user_id=user_id, email=address)

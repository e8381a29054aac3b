"""Shared fixtures: a frozen clock, a recording mailer, and a store per backend."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

BACKENDS = ["memory", "sqlite", "postgres"]
#: Backends whose stores, opened twice, share their data (a file, a server).
SHARED = ("sqlite", "postgres")

#: A PostgreSQL server for the tests: a connection string, e.g. the one `.ci/postgres
#: start` prints. Each test gets a schema of its own, dropped afterwards.
POSTGRES_ENV = "TEAMACCESS_TEST_POSTGRES"


HOW_TO_RUN_POSTGRES = (
    f'to run them, export {POSTGRES_ENV}="$(.ci/postgres start)" (see docs/backends.md)'
)
_SKIPPED_POSTGRES = pytest.StashKey[int]()


def postgres_conninfo() -> str:
    """The test server's connection string; fails the test without one.

    Without a server the PostgreSQL tests are not even run (see
    pytest_collection_modifyitems), except under CI=true, where they fail here.
    """
    conninfo = os.environ.get(POSTGRES_ENV)
    if not conninfo:
        pytest.fail(f"no PostgreSQL server: {POSTGRES_ENV} is not set; {HOW_TO_RUN_POSTGRES}")
    return conninfo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test on the "postgres" backend is marked, so `-m postgres` selects them all.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)
    if os.environ.get(POSTGRES_ENV) or os.environ.get("CI"):
        return  # run them (and under CI without a server, fail them)
    # Without a server: one line in the summary instead of a skip line per test.
    skipped = [item for item in items if item.get_closest_marker("postgres")]
    if skipped:
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]
        config.hook.pytest_deselected(items=skipped)
        config.stash[_SKIPPED_POSTGRES] = len(skipped)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.config.stash.get(_SKIPPED_POSTGRES, 0)
    if skipped:
        terminalreporter.write_line(
            f"PostgreSQL: {skipped} tests skipped, no server configured; {HOW_TO_RUN_POSTGRES}"
        )


def postgres_schema(path: Path) -> str:
    """The schema a test's stores use: one per test directory, so one per test."""
    return "t_" + hashlib.blake2b(str(path).encode(), digest_size=8).hexdigest()


# Creating the schema costs a test some 50 ms; emptying a finished test's schema and
# renaming it for the next test costs a third of that. Only a schema at the current
# version with every table is passed on; anything a test changed by hand is dropped.
_ADMIN: list[Any] = []  # one autocommit connection for the schema chores
_FREE: list[str] = []  # emptied schemas of this process, ready for the next test
_READY: set[str] = set()  # schemas handed to a test in this process


def _admin() -> Any:
    import psycopg

    if not _ADMIN or _ADMIN[0].closed or _ADMIN[0].broken:
        _ADMIN[:] = [psycopg.connect(postgres_conninfo(), autocommit=True)]
    return _ADMIN[0]


def prepare_postgres_schema(path: Path) -> str:
    """The test's schema, an emptied one of an earlier test if there is one."""
    name = postgres_schema(path)
    if name not in _READY:
        _READY.add(name)
        if _FREE:
            _admin().execute(f'ALTER SCHEMA "{_FREE.pop()}" RENAME TO "{name}"')
    return name


def drop_postgres_schema(path: Path) -> None:
    from teamaccess._backends.postgres_schema import MIGRATIONS, TABLES

    name = postgres_schema(path)
    _READY.discard(name)
    conn = _admin()
    tables = {
        r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (name,))
    }
    if not tables:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        return
    version = None
    if "schema_info" in tables:
        sql = f'SELECT version FROM "{name}".schema_info'  # noqa: S608 (the test's own schema)
        version = conn.execute(sql).fetchone()
    if version != (len(MIGRATIONS),) or not tables >= TABLES or len(_FREE) >= 8:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        return
    data = ", ".join(f'"{name}"."{t}"' for t in sorted(tables - {"schema_info"}))
    free = f"free_{os.getpid()}_{len(_FREE)}_{name}"
    conn.execute(f"TRUNCATE {data} RESTART IDENTITY")
    conn.execute(f'ALTER SCHEMA "{name}" RENAME TO "{free}"')
    _FREE.append(free)


@pytest.fixture
def schema(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL schema of the test's own for a store to create, dropped after it."""
    yield postgres_schema(tmp_path)
    drop_postgres_schema(tmp_path)


@pytest.fixture(params=[True, False], ids=["pipelined", "one-by-one"])
def pipelined(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways PostgresStore sends queued statements: pipelined, and one round trip
    each (what a libpq older than 14 gets)."""
    from teamaccess._backends import postgres_pipe

    monkeypatch.setattr(postgres_pipe, "_PIPELINE", request.param)
    return bool(request.param)


@pytest.fixture(scope="session", autouse=True)
def _drop_free_postgres_schemas() -> Iterator[None]:
    yield
    if _ADMIN:
        for name in _FREE:
            _ADMIN[0].execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        _FREE.clear()
        _ADMIN[0].close()


def make_store(backend: str, path: Path) -> Store:
    if backend == "memory":
        return MemoryStore()
    if backend == "postgres":
        from teamaccess import PostgresStore

        schema = prepare_postgres_schema(path)
        return PostgresStore(postgres_conninfo(), schema=schema, max_size=4)
    from teamaccess import SQLiteStore

    return SQLiteStore(path / "teamaccess.db")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_conninfo()
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the backend's store; for SQLite and PostgreSQL every call opens the same
    data anew."""
    opened: list[Store] = []

    def factory() -> Store:
        store = make_store(backend, tmp_path)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    if backend == "postgres":
        drop_postgres_schema(tmp_path)


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

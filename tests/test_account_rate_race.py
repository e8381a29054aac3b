"""The per-user account limit holds when several processes create accounts at once.

``create_account`` counts the accounts the user created in the window, then inserts one;
racing processes must not all pass the count. SQLite serialises writers; PostgreSQL
serialises the creators of one user's accounts with a lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import (
    SECRET,
    START,
    drop_postgres_schema,
    postgres_conninfo,
    postgres_schema,
)

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess
from teamaccess._ports import Store
from teamaccess.testing import FrozenClock

CHILD = str(Path(__file__).with_name("account_race_child.py"))
ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 8
TRIES = 2
LIMIT = 5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "race.db"), ""
    else:
        yield "postgres", postgres_conninfo(), postgres_schema(tmp_path)
        drop_postgres_schema(tmp_path)


def open_store(backend: str, where: str, schema: str) -> Store:
    if backend == "postgres":
        from teamaccess import PostgresStore

        return PostgresStore(where, schema=schema, max_size=1)
    return SQLiteStore(where)


def test_racing_processes_create_exactly_the_limit(
    target: tuple[str, str, str], tmp_path: Path
) -> None:
    backend, where, schema = target
    # The parent creates the database, so the children only race on the accounts.
    team = TeamAccess(
        open_store(backend, where, schema),
        MemoryMailer(),
        secret_key=SECRET,
        clock=FrozenClock(START),
        account_rate_limit=LIMIT,
    )
    start = tmp_path / "start"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                CHILD,
                backend,
                where,
                schema,
                START.isoformat(),
                str(start),
                "racer",
                str(TRIES),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline()) == {"ready": True}, child.stderr
        start.touch()
        outcomes = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outcomes += [json.loads(line)["outcome"] for line in out.splitlines()]
    finally:
        for child in children:
            child.kill()
    total = PROCESSES * TRIES
    assert sorted(outcomes) == ["created"] * LIMIT + ["limited"] * (total - LIMIT)
    assert len(team.accounts_for("racer")) == LIMIT
    team.close()

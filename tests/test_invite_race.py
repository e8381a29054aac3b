"""The invitation rules hold when several processes invite at once.

``invite`` reads what its rules need (is the address a member's, has it a pending
invitation, how many invitations did the account send and the address receive), then
writes; racing processes must not all pass the reads. Each race starts together in
separate processes, on SQLite and on PostgreSQL.
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

CHILD = str(Path(__file__).with_name("invite_race_child.py"))
ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 6


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


def race(
    target: tuple[str, str, str], tmp_path: Path, calls: list[tuple[str, str, list[str]]]
) -> list[dict[str, str]]:
    """Start one child per ``(account_id, actor_id, emails)`` at once; their outcomes."""
    backend, where, schema = target
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
                account_id,
                actor_id,
                *emails,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for account_id, actor_id, emails in calls
    ]
    outcomes: list[dict[str, str]] = []
    try:
        for child in children:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline()) == {"ready": True}, child.stderr
        start.touch()
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outcomes += [json.loads(line) for line in out.splitlines()]
    finally:
        for child in children:
            child.kill()
    return outcomes


@pytest.fixture
def team(target: tuple[str, str, str]) -> Iterator[TeamAccess]:
    team = TeamAccess(
        open_store(*target), MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START)
    )
    yield team
    team.close()


def test_one_pending_invitation_per_address(
    target: tuple[str, str, str], tmp_path: Path, team: TeamAccess
) -> None:
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    outcomes = race(target, tmp_path, [(acc.id, "boss", ["ana@example.org"])] * PROCESSES)
    assert sorted(o["outcome"] for o in outcomes) == ["invited already"] * (PROCESSES - 1) + [
        "sent"
    ]
    assert [i.email for i in team.pending_invitations(acc.id)] == ["ana@example.org"]


def test_account_rate_limit_is_exact(
    target: tuple[str, str, str], tmp_path: Path, team: TeamAccess
) -> None:
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    calls = [(acc.id, "boss", [f"p{n}a@example.org", f"p{n}b@example.org"]) for n in range(4)]
    outcomes = race(target, tmp_path, calls)
    assert sorted(o["outcome"] for o in outcomes) == ["limited"] * 3 + ["sent"] * 5
    assert {o.get("who") for o in outcomes if o["outcome"] == "limited"} == {"account"}
    assert len(team.pending_invitations(acc.id)) == 5


def test_address_rate_limit_is_exact_across_accounts(
    target: tuple[str, str, str], tmp_path: Path, team: TeamAccess
) -> None:
    accounts = [
        team.create_account(name=f"A{n}", owner_id=f"boss{n}", owner_email="b@example.org")
        for n in range(PROCESSES)
    ]
    calls = [(acc.id, acc.owner_id, ["ana@example.org"]) for acc in accounts]
    outcomes = race(target, tmp_path, calls)
    assert sorted(o["outcome"] for o in outcomes) == ["limited"] * (PROCESSES - 3) + ["sent"] * 3
    assert {o.get("who") for o in outcomes if o["outcome"] == "limited"} == {"address"}
    assert sum(len(team.pending_invitations(acc.id)) for acc in accounts) == 3

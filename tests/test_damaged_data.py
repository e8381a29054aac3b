"""Stored data that cannot be read is a StorageError, never a raw JSONDecodeError or
ValueError. Only a backend that decodes what it stores can hold such data: SQLiteStore and
PostgresStore (MemoryStore keeps the objects themselves)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import SECRET, START, postgres_conninfo, postgres_schema

from teamaccess import MemoryMailer, PermissionSet, StorageError, Store, TeamAccess
from teamaccess.testing import FrozenClock

#: what another program may write; {nl} is a line feed in the backend's SQL
DAMAGE = {
    "bad JSON in a member's permissions": (
        "UPDATE members SET permissions = '{{not json' WHERE user_id = 'bob'"
    ),
    "a number instead of a permission list": (
        "UPDATE members SET permissions = '42' WHERE user_id = 'bob'"
    ),
    "a list of numbers": "UPDATE members SET permissions = '[1, 2]' WHERE user_id = 'bob'",
    "bad JSON in an invitation": "UPDATE invitations SET permissions = '[\"billing.view\"'",
    "bad JSON in an audit event": "UPDATE events SET details = '{{'",
    "a name with a line break": "UPDATE accounts SET name = 'A' || {nl} || 'Bcc: x'",
}
SQLITE_ONLY = {
    "a bad join date": "UPDATE members SET joined_at = 'yesterday' WHERE user_id = 'bob'",
    "a bad audit time": "UPDATE events SET at = 'soon'",
}

READS: dict[str, Callable[[TeamAccess, str], object]] = {
    "can": lambda t, a: t.can("bob", a, "billing.view"),
    "permissions_of": lambda t, a: t.permissions_of("bob", a),
    "members": lambda t, a: t.members(a),
    "pending_invitations": lambda t, a: t.pending_invitations(a),
    "audit_log": lambda t, a: t.audit_log(a),
    "get_account": lambda t, a: t.get_account(a),
    "invite": lambda t, a: t.invite(
        a, actor_id="owner", email="new@example.com", permissions=PermissionSet.none()
    ),
}


def damage(backend: str, path: Path, sql: str) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(path / "teamaccess.db")
        with conn:
            conn.execute(sql.format(nl="char(10)"))
        conn.close()
        return
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as pg:
        pg.execute(f'SET search_path TO "{postgres_schema(path)}"')
        pg.execute(sql.format(nl="chr(10)"))  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_conninfo()
    return str(request.param)


class TestDamagedRows:
    """Every read of a damaged row is a StorageError that says what to do."""

    @pytest.mark.parametrize("what", sorted(DAMAGE) + sorted(SQLITE_ONLY))
    def test_damage(
        self, backend: str, store_factory: Callable[[], Store], tmp_path: Path, what: str
    ) -> None:
        if what in SQLITE_ONLY and backend != "sqlite":
            pytest.skip("PostgreSQL's timestamptz columns hold only times")
        team = TeamAccess(store_factory(), MemoryMailer(), secret_key=SECRET,
                          clock=FrozenClock(START))  # fmt: skip
        acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.com")
        bob = PermissionSet.of("billing.view")
        inv = team.invite(acc.id, actor_id="owner", email="bob@example.com", permissions=bob)
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="bob", email="bob@example.com")
        team.invite(acc.id, actor_id="owner", email="eve@example.com", permissions=bob)
        damage(backend, tmp_path, {**DAMAGE, **SQLITE_ONLY}[what])
        team = TeamAccess(store_factory(), MemoryMailer(), secret_key=SECRET,
                          clock=FrozenClock(START))  # fmt: skip
        messages = []
        for read in READS.values():
            try:
                read(team, acc.id)
            except StorageError as exc:
                messages.append(str(exc))
            # any other exception fails the test
        assert messages, f"no read noticed {what}"
        assert all("restore it from a backup" in m for m in messages)

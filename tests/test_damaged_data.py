"""Stored data that cannot be read is a StorageError, never a raw JSONDecodeError or
ValueError. Only a backend that decodes what it stores can hold such data: SQLiteStore
(MemoryStore keeps the objects themselves)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import SECRET, START

from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, StorageError, TeamAccess
from teamaccess.testing import FrozenClock

DAMAGE = {
    "bad JSON in a member's permissions": (
        "UPDATE members SET permissions = '{not json' WHERE user_id = 'bob'"
    ),
    "a number instead of a permission list": (
        "UPDATE members SET permissions = '42' WHERE user_id = 'bob'"
    ),
    "a list of numbers": "UPDATE members SET permissions = '[1, 2]' WHERE user_id = 'bob'",
    "a bad join date": "UPDATE members SET joined_at = 'yesterday' WHERE user_id = 'bob'",
    "bad JSON in an invitation": "UPDATE invitations SET permissions = '[\"billing.view\"'",
    "bad JSON in an audit event": "UPDATE events SET details = '{'",
    "a bad audit time": "UPDATE events SET at = 'soon'",
    "a name with a line break": "UPDATE accounts SET name = 'A' || char(10) || 'Bcc: x'",
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


def setup(path: Path) -> tuple[TeamAccess, str]:
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET,
                      clock=FrozenClock(START))  # fmt: skip
    acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.com")
    inv = team.invite(
        acc.id,
        actor_id="owner",
        email="bob@example.com",
        permissions=PermissionSet.of("billing.view"),
    )
    assert inv.token is not None
    team.accept_invitation(inv.token, user_id="bob", email="bob@example.com")
    team.invite(acc.id, actor_id="owner", email="eve@example.com", permissions=PermissionSet.none())
    team.close()
    return team, acc.id


class TestDamagedRows:
    """Every read of a damaged row is a StorageError that says what to do."""

    @pytest.mark.parametrize("damage", sorted(DAMAGE))
    def test_damage(self, tmp_path: Path, damage: str) -> None:
        path = tmp_path / "t.db"
        _, account_id = setup(path)
        with sqlite3.connect(path) as conn:
            conn.execute(DAMAGE[damage])
        conn.close()
        team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET,
                          clock=FrozenClock(START))  # fmt: skip
        messages = []
        for read in READS.values():
            try:
                read(team, account_id)
            except StorageError as exc:
                messages.append(str(exc))
            # any other exception fails the test
        assert messages, f"no read noticed {damage}"
        assert all("restore it from a backup" in m for m in messages)
        team.close()

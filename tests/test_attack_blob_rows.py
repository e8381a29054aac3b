"""A BLOB where text belongs, written into the SQLite file by another program.

SQLite keeps the type a value was written with, whatever the column says, so a text
column can hold bytes. Every call on such a row is a ``TeamAccessError`` (a
``StorageError`` where the row is read), never a ``TypeError`` from deep inside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    StorageError,
    TeamAccess,
    TeamAccessError,
)
from teamaccess.testing import FrozenClock

COLUMNS = [
    ("members", "email"), ("members", "user_id"), ("accounts", "owner_email"),
    ("invitations", "email"), ("invitations", "note"), ("contacts", "name"),
    ("contacts", "email"), ("events", "action"), ("events", "actor_id"),
    ("events", "target"), ("outbox", "recipient"),
]  # fmt: skip


def open_team(path: Path) -> TeamAccess:
    return TeamAccess(
        SQLiteStore(path), MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START)
    )


@pytest.mark.parametrize(("table", "column"), COLUMNS)
def test_a_blob_in_a_text_column_is_a_teamaccess_error(
    tmp_path: Path, table: str, column: str
) -> None:
    path = tmp_path / "t.db"
    team = open_team(path)
    acc = team.create_account(name="A", owner_id="boss", owner_email="boss@example.org")
    inv = team.invite(acc.id, actor_id="boss", email="x@example.org", note="hi",
                      permissions=PermissionSet.of("users.manage"))  # fmt: skip
    team.add_contact(acc.id, actor_id="boss", name="C", email="c@example.org",
                     categories=["general"])  # fmt: skip
    team.close()
    with sqlite3.connect(path) as db:
        # table and column come from COLUMNS above, not from outside
        db.execute(f"UPDATE {table} SET {column} = CAST({column} AS BLOB)")  # noqa: S608
    db.close()
    team = open_team(path)
    calls: dict[str, Callable[[], object]] = {
        "invite": lambda: team.invite(
            acc.id, actor_id="boss", email="y@example.org", permissions=PermissionSet.none()
        ),
        "members": lambda: team.members(acc.id),
        "can": lambda: team.can("boss", acc.id, "billing.view"),
        "pending": lambda: team.pending_invitations(acc.id),
        "accept": lambda: team.accept_invitation(
            inv.token or "", user_id="u", email="x@example.org"
        ),
        "contacts": lambda: team.contacts(acc.id),
        "notify": lambda: team.notify(acc.id, "general", subject="s", text="t"),
        "audit": lambda: team.audit_log(acc.id),
        "export": lambda: team.export_person(email="x@example.org"),
        "deliver": lambda: team.deliver_pending(),
        "accounts_for": lambda: team.accounts_for("boss"),
    }
    errors = {}
    for name, call in calls.items():
        try:
            call()
        except TeamAccessError as exc:
            errors[name] = exc
        # anything else fails the test
    for exc in errors.values():
        if isinstance(exc, StorageError):
            assert "restore it from a backup" in str(exc)
    if (table, column) == ("members", "email"):
        assert isinstance(errors["invite"], StorageError)
    if table == "events":
        assert isinstance(errors["export"], StorageError)
    team.close()

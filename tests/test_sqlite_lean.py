"""Schema version 4: fewer B-trees written per invitation round trip, data kept on upgrade."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import SECRET, START

from teamaccess import DeliveryFailed, PermissionSet, SQLiteStore, TeamAccess
from teamaccess._backends import sqlite as sqlite_backend
from teamaccess._backends import sqlite_schema
from teamaccess.testing import FailingMailer, FrozenClock


def indexes(path: Path) -> dict[str, str | None]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    finally:
        conn.close()


def filled(path: Path, mailer: FailingMailer, clock: FrozenClock) -> tuple[TeamAccess, str]:
    team = TeamAccess(SQLiteStore(path), mailer, secret_key=SECRET, clock=clock)
    acc = team.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
    for n in range(3):
        with contextlib.suppress(DeliveryFailed):  # the mail waits in the outbox
            team.invite(
                acc.id,
                actor_id="owner",
                email=f"m{n}@example.org",
                permissions=PermissionSet.of("billing.view"),
            )
        clock.advance(timedelta(minutes=1))
    return team, acc.id


class TestVersion6:
    """Events lose their id index, the outbox's due index holds pending rows only."""

    def test_a_version_2_file_is_upgraded_with_its_log_and_its_waiting_mail(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db = tmp_path / "team.db"
        clock = FrozenClock(START)
        mailer = FailingMailer(failing=True)
        # Every version before 6 (today's service writes the member columns of version 3).
        before = sqlite_backend.MIGRATIONS.index(sqlite_schema._migration_4)
        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:before])
        old, acc = filled(db, mailer, clock)
        assert old.store.schema_version == before  # type: ignore[attr-defined]
        log = old.audit_log(acc)
        waiting = old.pending_messages()
        old.close()
        assert "sqlite_autoindex_events_1" in indexes(db)
        monkeypatch.undo()

        team = TeamAccess(SQLiteStore(db), mailer, secret_key=SECRET, clock=clock)
        assert team.store.schema_version == len(sqlite_backend.MIGRATIONS)  # type: ignore[attr-defined]
        assert team.audit_log(acc) == log
        assert [m.id for m in team.pending_messages()] == [m.id for m in waiting]
        assert len(waiting) == 3
        # new events go after the old ones, and the rate limit still counts them all
        team.rename_account(acc, actor_id="owner", name="Neu")
        assert [e.action for e in team.audit_log(acc, limit=2)] == [
            "account.renamed",
            log[0].action,
        ]
        # the waiting mail goes out from the upgraded file
        mailer.failing = False
        clock.advance(timedelta(hours=1))
        assert len(team.deliver_pending()) == 3
        assert team.pending_messages() == []
        assert sorted(m["To"] for m in mailer.outbox) == [f"m{n}@example.org" for n in range(3)]
        team.close()
        found = indexes(db)
        assert "sqlite_autoindex_events_1" not in found
        assert "WHERE status = 'pending'" in (found["outbox_due"] or "")
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()

    def test_due_mail_is_found_through_the_small_index(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        SQLiteStore(db).close()
        conn = sqlite3.connect(db)
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE status = 'pending' "
                "AND next_attempt_at <= ? ORDER BY created_at, id",
                ("2026-01-01",),
            )
        )
        conn.close()
        assert "USING INDEX outbox_due" in plan

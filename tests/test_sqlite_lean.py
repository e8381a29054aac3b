"""Schema version 4: fewer B-trees written per invitation round trip, data kept on upgrade."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import SECRET, START
from tests.sqlite_older import older_file

from teamaccess import (
    AlreadyInvited,
    DeliveryFailed,
    PermissionSet,
    RateLimited,
    SQLiteStore,
    TeamAccess,
)
from teamaccess._backends import sqlite as sqlite_backend
from teamaccess._backends import sqlite_schema
from teamaccess._domain import SEND_ACTIONS
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
        # The last version before 4, holding what today's service wrote.
        before = sqlite_backend.MIGRATIONS.index(sqlite_schema._migration_4)
        today = tmp_path / "today.db"
        old, acc = filled(today, mailer, clock)
        log = old.audit_log(acc)
        waiting = old.pending_messages()
        old.close()
        older_file(today, db, before)
        assert "sqlite_autoindex_events_1" in indexes(db)

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


def plan(path: Path, sql: str, *params: object) -> str:
    conn = sqlite3.connect(path)
    try:
        return " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        conn.close()


class TestSchema6:
    """One unique index for an address's invitations; the rate limit's index holds sends."""

    def test_a_version_5_file_is_upgraded_and_its_rules_and_limits_still_hold(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db = tmp_path / "team.db"
        clock = FrozenClock(START)
        mailer = FailingMailer(failing=False)
        before = sqlite_backend.MIGRATIONS.index(sqlite_schema._migration_6)
        today = tmp_path / "today.db"
        old = TeamAccess(
            SQLiteStore(today), mailer, secret_key=SECRET, clock=clock, rate_limit=4,
            recipient_rate_limit=3,
        )  # fmt: skip
        acc = old.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
        other = old.create_account(name="Zwei", owner_id="owner2", owner_email="b@muster.de")
        perms = PermissionSet.of("billing.view")
        # sent and accepted, sent and revoked, sent and still pending: all to one address
        # in two accounts, three invitation mails in the recipient's window
        first = old.invite(acc.id, actor_id="owner", email="pia@example.org", permissions=perms)
        old.revoke_invitation(first.id, actor_id="owner")
        pending = old.invite(acc.id, actor_id="owner", email="pia@example.org", permissions=perms)
        taken = old.invite(other.id, actor_id="owner2", email="pia@example.org", permissions=perms)
        assert taken.token is not None
        old.accept_invitation(taken.token, user_id="pia", email="pia@example.org")
        listed = old.invitations(acc.id)
        old.close()
        older_file(today, db, before)
        assert "invitations_email_key" in indexes(db)

        team = TeamAccess(
            SQLiteStore(db), mailer, secret_key=SECRET, clock=clock, rate_limit=4,
            recipient_rate_limit=3,
        )  # fmt: skip
        assert team.store.schema_version == len(sqlite_backend.MIGRATIONS)  # type: ignore[attr-defined]
        found = indexes(db)
        for gone in ("invitations_one_pending", "invitations_email_key", "events_action_time"):
            assert gone not in found
        assert "WHERE action IN ('invitation.resent', 'invitation.sent')" in (
            found["events_sends"] or ""
        )
        assert team.invitations(acc.id) == listed
        # one pending invitation per address and account, held by the file itself
        with pytest.raises(AlreadyInvited):
            team.invite(acc.id, actor_id="owner", email="PIA@example.org", permissions=perms)
        conn = sqlite3.connect(db)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(
                "INSERT INTO invitations (id, account_id, email, email_key, permissions, "
                "invited_by, status, created_at, expires_at, token_hash, closed_at, "
                "accepted_by, sent_count, language, access_until, note, metadata) "
                "SELECT 'inv_twin', account_id, email, email_key, "
                "permissions, invited_by, status, created_at, expires_at, token_hash, "
                "closed_at, accepted_by, sent_count, language, access_until, note, metadata "
                "FROM invitations WHERE id = ?",
                (pending.id,),
            )
        conn.close()
        # the per-recipient limit counts the three mails written before the upgrade
        third = team.create_account(name="Drei", owner_id="owner3", owner_email="c@muster.de")
        with pytest.raises(RateLimited, match="from all accounts together"):
            team.invite(third.id, actor_id="owner3", email="pia@example.org", permissions=perms)
        # the account's limit counts its sends from before the upgrade (two) too
        for n in range(2):
            team.invite(acc.id, actor_id="owner", email=f"m{n}@example.org", permissions=perms)
        with pytest.raises(RateLimited, match="the limit is 4"):
            team.invite(acc.id, actor_id="owner", email="m9@example.org", permissions=perms)
        # a closed invitation frees the address for a new one
        team.revoke_invitation(pending.id, actor_id="owner")
        clock.advance(timedelta(days=2))
        again = team.invite(acc.id, actor_id="owner", email="pia@example.org", permissions=perms)
        assert [i.status for i in team.invitations(acc.id) if i.email == "pia@example.org"] == [
            "revoked",
            "revoked",
            "pending",
        ]
        assert again.token is not None
        team.accept_invitation(again.token, user_id="pia", email="pia@example.org")
        team.close()
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()

    def test_the_rules_queries_search_the_new_indexes(self, tmp_path: Path) -> None:
        assert sqlite_schema.SEND_ACTIONS_SQL == "('invitation.resent', 'invitation.sent')"
        # the actions the service's rate limit counts are the ones the index holds
        listed = ", ".join(f"'{action}'" for action in sorted(SEND_ACTIONS))
        assert f"({listed})" == sqlite_schema.SEND_ACTIONS_SQL
        db = tmp_path / "team.db"
        SQLiteStore(db).close()
        pending = plan(
            db,
            "SELECT id FROM invitations WHERE account_id = ? AND email_key = ? "
            "AND status = 'pending'",
            "a", "k",
        )  # fmt: skip
        assert "USING INDEX invitations_address (email_key=? AND account_id=?)" in pending
        mails = plan(
            db,
            "SELECT o.created_at FROM invitations i JOIN outbox o ON o.invitation_id = i.id "
            "WHERE i.email_key = ? AND o.kind = 'invitation' AND o.created_at >= ?",
            "k", "t",
        )  # fmt: skip
        assert "USING INDEX invitations_address (email_key=?)" in mails
        assert "USING INDEX outbox_invitation" in mails
        sends = plan(
            db,
            "SELECT at FROM events WHERE account_id = ? AND action IN "
            "('invitation.resent', 'invitation.sent') AND action IN (?) AND at >= ? "
            "ORDER BY at, seq",
            "a", "invitation.sent", "t",
        )  # fmt: skip
        assert "USING INDEX events_sends" in sends
        assert "SCAN" not in pending + mails + sends

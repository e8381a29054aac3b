# The SQL below is built from table names and the store's own constants only.
# ruff: noqa: S608
"""Schema 7: invitations and outbox rows stored under the number in their id, with no
index on the id; older files, old tokens and ids of any other form keep working."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import SECRET, START
from tests.sqlite_older import older_file

from teamaccess import (
    Account,
    Conflict,
    DeliveryFailed,
    InvitationUsed,
    OutboxMessage,
    PermissionSet,
    SQLiteStore,
    TeamAccess,
)
from teamaccess._backends.sqlite_schema import MIGRATIONS
from teamaccess._service import delivery_send as delivery_module
from teamaccess._service import invitations as invitations_module
from teamaccess._service.checks import _new_id
from teamaccess.testing import FailingMailer, FrozenClock

P = PermissionSet.of("billing.view")


def rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def plan(path: Path, sql: str, *params: object) -> str:
    return " ".join(str(r[-1]) for r in rows(path, "EXPLAIN QUERY PLAN " + sql, *params))


class TestSchema7:
    """Rows found by the number in their id; a version 6 file upgraded with its data."""

    def test_a_version_6_file_is_upgraded_and_its_links_and_waiting_mail_work(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        today, db = tmp_path / "today.db", tmp_path / "team.db"
        clock = FrozenClock(START)
        mailer = FailingMailer(failing=False)
        # Random ids, as every version before 7 wrote them.
        for module in (invitations_module, delivery_module):
            monkeypatch.setattr(module, "_numbered_id", _new_id)
        old = TeamAccess(SQLiteStore(today), mailer, secret_key=SECRET, clock=clock)
        acc = old.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
        linked = old.invite(acc.id, actor_id="owner", email="a@example.org", permissions=P)
        used = old.invite(acc.id, actor_id="owner", email="u@example.org", permissions=P)
        assert linked.token is not None
        assert used.token is not None
        old.accept_invitation(used.token, user_id="u", email="u@example.org")
        mailer.failing = True
        with pytest.raises(DeliveryFailed) as failed:
            old.invite(acc.id, actor_id="owner", email="w@example.org", permissions=P)
        waiting = failed.value.invitation
        assert waiting is not None
        old.close()
        monkeypatch.undo()
        assert re.fullmatch(r"inv_[0-9a-f]{20}", linked.id)
        older_file(today, db, 6)

        team = TeamAccess(SQLiteStore(db), mailer, secret_key=SECRET, clock=clock)
        # upgraded to the newest schema (7 brought the numbered ids; later ones follow)
        assert team.store.schema_version == len(MIGRATIONS)  # type: ignore[attr-defined]
        # the link mailed before the upgrade still works, and only once
        assert team.inspect_invitation(linked.token).id == linked.id
        team.accept_invitation(linked.token, user_id="a", email="a@example.org")
        with pytest.raises(InvitationUsed):
            team.accept_invitation(used.token, user_id="u2", email="u@example.org")
        # the mail that waited goes out from the upgraded file, and is recorded as sent
        mailer.failing = False
        clock.advance(timedelta(hours=1))
        assert [m.invitation_id for m in team.deliver_pending()] == [waiting.id]
        assert team.pending_messages() == []
        resent = team.resend_invitation(waiting.id, actor_id="owner")
        assert resent.token is not None
        team.accept_invitation(resent.token, user_id="w", email="w@example.org")
        # a new invitation gets a numbered id, stored under its number
        new = team.invite(acc.id, actor_id="owner", email="n@example.org", permissions=P)
        assert re.fullmatch(r"inv_[0-9a-f]{24}", new.id)
        assert team.get_invitation(new.id).status == "pending"
        team.revoke_invitation(new.id, actor_id="owner")
        assert [i.status for i in team.invitations(acc.id)] == [
            "accepted", "accepted", "accepted", "revoked",
        ]  # fmt: skip
        assert [m.user_id for m in team.members(acc.id)] == ["owner", "u", "a", "w"]
        team.close()
        assert rows(db, "SELECT key FROM invitations WHERE id = ?", new.id) == [
            (int(new.id[4:20], 16),)
        ]
        # only the rows from before are in the partial index on the id
        assert rows(
            db,
            "SELECT count(*) FROM invitations INDEXED BY invitations_id "
            "WHERE substr(id, 1, 20) IS NOT printf('inv_%016x', key)",
        ) == [(3,)]
        unnumbered = "substr(id, 1, 20) IS NOT printf('msg_%016x', key)"
        assert rows(db, f"SELECT count(*) FROM outbox WHERE {unnumbered}") == [(3,)]
        assert rows(db, "SELECT count(*) FROM outbox") == [(5,)]
        names = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert not {"sqlite_autoindex_invitations_1", "sqlite_autoindex_outbox_1"} & names
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]

    def test_new_ids_sort_in_the_order_they_were_made(self, tmp_path: Path) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "team.db"), FailingMailer(failing=False),
                          secret_key=SECRET, clock=FrozenClock(START))  # fmt: skip
        acc = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        made = [
            team.invite(acc.id, actor_id="owner", email=f"m{n}@example.org", permissions=P).id
            for n in range(20)
        ]
        assert sorted(made) == made
        assert len(set(made)) == 20
        team.close()

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_forked_process_does_not_count_on_from_its_parent(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from teamaccess._service import checks

        # The parent's last number a minute ahead of the clock: it counts on from there.
        ahead = (time.time_ns() // 1_000_000 + 60_000) << 21
        monkeypatch.setattr(checks, "_last_number", ahead)
        assert checks._numbered_id("inv")[:20] == f"inv_{ahead + 1:016x}"
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own ids, from the clock
            os.close(read)
            os.write(write, checks._numbered_id("inv").encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            child = pipe.read().decode()
        os.waitpid(pid, 0)
        assert re.fullmatch(r"inv_[0-9a-f]{24}", child)
        assert int(child[4:20], 16) < ahead

    def test_an_id_whose_number_another_row_holds_is_stored_and_found(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        store = SQLiteStore(db)
        with store.begin() as uow:
            uow.add_account(Account(id="acc", name="A", owner_id="o",
                                    owner_email="o@example.org", created_at=START))  # fmt: skip
            uow.commit()
        # Another program writes a row without a key: SQLite numbers it.
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute(
            "INSERT INTO outbox (id, account_id, kind, recipient, message_id, created_at, "
            "next_attempt_at, status, attempts) VALUES ('by hand', 'acc', 'notice', "
            "'x@example.org', '<1@x>', ?1, ?1, 'pending', 0)",
            (START.isoformat(timespec="microseconds"),),
        )
        [(held,)] = conn.execute("SELECT key FROM outbox WHERE id = 'by hand'").fetchall()
        conn.close()

        def message(message_id: str) -> OutboxMessage:
            return OutboxMessage(id=message_id, account_id="acc", kind="notice",
                                 recipient="y@example.org", message_id="<2@x>",
                                 created_at=START, next_attempt_at=START, message=b"x")  # fmt: skip

        taken = f"msg_{held:016x}"
        with store.begin() as uow:
            uow.add_outbox(message(taken))
            uow.commit()
        with store.begin() as uow:
            uow.update_outbox_sent(taken, START)
            uow.commit()
        with store.read() as uow:
            mine, theirs = uow.get_outbox(taken), uow.get_outbox("by hand")
        assert mine is not None
        assert (mine.status, mine.recipient) == ("sent", "y@example.org")
        assert theirs is not None
        assert theirs.status == "pending"
        # the same id twice is refused, numbered or not
        for again in (taken, "by hand"):
            with pytest.raises(Conflict), store.begin() as uow:
                uow.add_outbox(message(again))
        free = f"msg_{held + 1000:016x}"
        with store.begin() as uow:
            uow.add_outbox(message(free))
            uow.commit()
        with pytest.raises(Conflict), store.begin() as uow:
            uow.add_outbox(message(free))
        store.close()
        assert rows(db, "SELECT key FROM outbox WHERE id = ?", free) == [(held + 1000,)]
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]

    def test_a_row_is_found_by_its_key_or_the_small_index_without_a_scan(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "team.db"
        SQLiteStore(db).close()
        from teamaccess._backends.sqlite_rows import (
            _BY_KEY,
            _INVITATION_BY_KEY_I,
            _INVITATION_UNNUMBERED,
            _INVITATION_UNNUMBERED_I,
            _OUTBOX_UNNUMBERED,
        )
        from teamaccess._backends.sqlite_unit import (
            _INVITATION_ACCOUNT_MEMBER_SQL,
            _INVITATION_INVITER_SQL,
        )

        for table, unnumbered in (
            ("invitations", _INVITATION_UNNUMBERED),
            ("outbox", _OUTBOX_UNNUMBERED),
        ):
            heads = [f"SELECT id FROM {table} WHERE ",
                     f"UPDATE {table} SET status = 'x' WHERE ",
                     f"DELETE FROM {table} WHERE "]  # fmt: skip
            for head in heads:
                by_key = plan(db, head + _BY_KEY, 7, "inv_0000000000000007")
                assert "USING INTEGER PRIMARY KEY (rowid=?)" in by_key, by_key
                by_id = plan(db, head + unnumbered, "inv_1")
                assert f"INDEX {table}_id (id=?)" in by_id, by_id
                assert "SCAN" not in by_key + by_id
        # the joins, with the invitation as "i"
        for head, user in ((_INVITATION_INVITER_SQL, ()), (_INVITATION_ACCOUNT_MEMBER_SQL, ("u",))):
            by_key = plan(db, head + _INVITATION_BY_KEY_I, *user, 7, "inv_0000000000000007")
            assert "SEARCH i USING INTEGER PRIMARY KEY (rowid=?)" in by_key, by_key
            by_id = plan(db, head + _INVITATION_UNNUMBERED_I, *user, "inv_1")
            assert "SEARCH i USING INDEX invitations_id (id=?)" in by_id, by_id
            assert "SCAN" not in by_key + by_id

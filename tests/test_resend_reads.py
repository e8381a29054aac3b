"""The read before a resend's mail is rendered: one statement where the store can.

``SQLiteStore`` and ``PostgresStore`` have ``invitation_account_member()`` (part of the
optional ``CombinedReads`` capability of a store), so ``resend_invitation()`` reads the
invitation, its account and the actor in one statement with no transaction; a store
without it (``MemoryStore``) gives the same answers through a read unit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from tests.conftest import SECRET, add_member

from teamaccess import (
    SYSTEM,
    AccountNotFound,
    InvitationNotFound,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    PostgresStore,
    SQLiteStore,
    TeamAccess,
)
from teamaccess._ports import Store
from teamaccess.testing import FrozenClock
from teamaccess.testing import contract as c

P = PermissionSet.of


def _statements_before_the_write_unit(team: TeamAccess, call: object) -> list[str]:
    """The SQL a call sends before its write unit begins (BEGIN IMMEDIATE)."""
    store = team.store
    assert isinstance(store, SQLiteStore)
    seen: list[str] = []
    conn = store.db.conn
    conn.set_trace_callback(seen.append)
    try:
        assert callable(call)
        call()
    finally:
        conn.set_trace_callback(None)
    return seen[: seen.index("BEGIN IMMEDIATE")]


class TestOneStatement:
    """On SQLite the read before rendering a resend is one statement, outside any unit."""

    def test_resend_reads_once_before_rendering(self, tmp_path: Path, clock: FrozenClock) -> None:
        team = TeamAccess(
            SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET, clock=clock
        )
        acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        add_member(team, acc.id, "admin", P("users.manage"))
        inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
        for actor in ("owner", "admin", SYSTEM):
            before = _statements_before_the_write_unit(
                team, lambda actor=actor: team.resend_invitation(inv.id, actor_id=actor)
            )
            assert len(before) == 1, before
            assert before[0].startswith("SELECT")
        # invite() reads once before rendering too (account_member()).
        before = _statements_before_the_write_unit(
            team,
            lambda: team.invite(acc.id, actor_id="admin", email="b@example.org", permissions=P()),
        )
        assert len(before) == 1, before
        team.close()

    def test_the_read_searches_indexes(self, tmp_path: Path) -> None:
        """Each table is searched by a key, however many rows there are."""
        from teamaccess._backends.sqlite_rows import (
            _INVITATION_BY_KEY_I,
            _INVITATION_UNNUMBERED_I,
        )
        from teamaccess._backends.sqlite_unit import _INVITATION_ACCOUNT_MEMBER_SQL

        store = SQLiteStore(tmp_path / "t.db")
        # schema 7: the invitation by its key, or (an id without its number) by its id
        for where, params in (
            (_INVITATION_BY_KEY_I, ("u", 7, "inv_0000000000000007")),
            (_INVITATION_UNNUMBERED_I, ("u", "inv")),
        ):
            plan = [
                row[-1]
                for row in store.db.execute(
                    "EXPLAIN QUERY PLAN " + _INVITATION_ACCOUNT_MEMBER_SQL + where, params
                ).fetchall()
            ]
            assert len(plan) == 3, plan
            assert all(step.startswith("SEARCH ") for step in plan), plan
        store.close()


class TestSameAnswers:
    """Every backend gives the read's answers alike (the store contract checks the
    method itself against the single reads)."""

    def test_unknown_invitation(self, store: Store, clock: FrozenClock) -> None:
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock)
        with pytest.raises(InvitationNotFound, match=r"^no invitation 'inv_nope'; "):
            team.resend_invitation("inv_nope", actor_id="owner")

    def test_the_actor_is_read_in_the_invitations_account(
        self, store: Store, clock: FrozenClock
    ) -> None:
        """A user who may invite in another account only is not a member here."""
        mailer = MemoryMailer()
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
        here = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        there = team.create_account(name="B", owner_id="boss", owner_email="b@example.org")
        add_member(team, there.id, "admin", PermissionSet.all(), actor_id="boss")
        inv = team.invite(here.id, actor_id="owner", email="neu@example.org", permissions=P())
        with pytest.raises(
            PermissionDenied, match=f"^user 'admin' is not a member of account {here.id!r}$"
        ):
            team.resend_invitation(inv.id, actor_id="admin")
        sent = len(mailer.outbox)
        again = team.resend_invitation(inv.id, actor_id="owner")
        assert len(mailer.outbox) == sent + 1
        assert again.sent_count == 2


def test_an_invitation_whose_account_is_gone_is_account_not_found(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A row left by another program without its account: a clear error, not a crash."""
    import sqlite3

    path = tmp_path / "t.db"
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET, clock=clock)
    acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    inv = team.invite(acc.id, actor_id="owner", email="neu@example.org", permissions=P())
    team.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA foreign_keys = OFF")
    raw.execute("DELETE FROM members WHERE account_id = ?", (acc.id,))
    raw.execute("DELETE FROM accounts WHERE id = ?", (acc.id,))
    raw.commit()
    raw.close()
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET, clock=clock)
    with pytest.raises(AccountNotFound, match=f"^no account '{acc.id}'"):
        team.resend_invitation(inv.id, actor_id="owner")
    team.close()


@pytest.mark.postgres
class TestPostgres:
    """PostgresStore's invitation_account_member(): committed state with no lock, and
    inside store.join() what the host's transaction has written."""

    @pytest.fixture
    def pg(self, tmp_path: Path) -> Iterator[PostgresStore]:
        from tests.conftest import drop_postgres_schema, postgres_conninfo, postgres_schema

        store = PostgresStore(postgres_conninfo(), schema=postgres_schema(tmp_path), max_size=3)
        with store.begin() as uow:
            uow.add_account(c.account())
            owner = c.member("owner", role="owner", permissions=PermissionSet.all())
            uow.add_member(owner, c.key("owner"))
            uow.add_invitation(c.invitation("inv1"), "new@example.org")
            uow.commit()
        yield store
        store.close()
        drop_postgres_schema(tmp_path)

    def test_waits_for_no_writer(self, pg: PostgresStore) -> None:
        answers: list[object] = []
        with pg.begin() as uow:  # holds acc1's lock, uncommitted
            inv = uow.get_invitation("inv1")
            assert inv is not None
            uow.update_invitation(attrs.evolve(inv, status="revoked"))
            thread = threading.Thread(
                target=lambda: answers.append(pg.invitation_account_member("inv1", "owner"))
            )
            thread.start()
            thread.join(10)
            assert not thread.is_alive(), "invitation_account_member() waited for a writer"
        found, account, member = answers[0]  # type: ignore[misc]
        assert found == c.invitation("inv1")  # committed state only: still pending
        assert account == c.account()
        assert member is not None
        assert member.user_id == "owner"

    def test_inside_join_reads_the_hosts_transaction(self, pg: PostgresStore) -> None:
        import psycopg
        from tests.conftest import postgres_conninfo

        with psycopg.connect(postgres_conninfo()) as conn, pg.join(conn):
            with pg.begin() as uow:
                uow.add_member(c.member("u1"), c.key("u1"))
                uow.add_invitation(c.invitation("inv2", "b@example.org"), "b@example.org")
                uow.commit()
            inv, account, member = pg.invitation_account_member("inv2", "u1")
            assert (inv, account, member) == (
                c.invitation("inv2", "b@example.org"), c.account(), c.member("u1"),
            )  # fmt: skip
            assert pg.invitation_account_member("nope", "u1") == (None, None, None)
            conn.rollback()
        assert pg.invitation_account_member("inv2", "u1") == (None, None, None)

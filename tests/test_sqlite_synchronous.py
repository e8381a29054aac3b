"""SQLiteStore(synchronous=...): the durability a deployment chooses for its commits."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    Account,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

# PRAGMA synchronous reads back as a number: 1 is NORMAL, 2 is FULL.
_LEVEL = {"NORMAL": 1, "FULL": 2}


def level(store: SQLiteStore) -> int:
    return int(store.db.execute("PRAGMA synchronous").fetchone()[0])


class TestSynchronous:
    """The setting reaches the connection, is checked, and keeps committed work."""

    def test_default_is_full(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        assert store.synchronous == "FULL"
        assert level(store) == _LEVEL["FULL"]
        store.close()

    def test_normal_is_applied_to_the_connection(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db", synchronous="NORMAL")
        assert level(store) == _LEVEL["NORMAL"]
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.close()

    @pytest.mark.parametrize("value", ["OFF", "EXTRA", "normal", 1, None])
    def test_other_values_are_refused(self, tmp_path: Path, value: object) -> None:
        with pytest.raises(ValidationError, match=r"synchronous must be 'FULL'.*or 'NORMAL'"):
            SQLiteStore(tmp_path / "team.db", synchronous=value)  # type: ignore[arg-type]
        assert not (tmp_path / "team.db").exists()

    def test_a_killed_process_loses_no_commit(self, tmp_path: Path) -> None:
        # NORMAL gives up durability only against a power cut: a process that dies
        # without closing the store leaves every commit it returned from in the file.
        path = tmp_path / "team.db"
        script = f"""
import os
from datetime import datetime
from teamaccess import MemoryMailer, SQLiteStore, TeamAccess
from teamaccess.testing import FrozenClock
clock = FrozenClock(datetime.fromisoformat({START.isoformat()!r}))
store = SQLiteStore({str(path)!r}, synchronous="NORMAL")
team = TeamAccess(store, MemoryMailer(), secret_key={SECRET!r}, clock=clock)
for i in range(20):
    team.create_account(name=f"Firma {{i}}", owner_id=f"boss{{i}}", owner_email=f"b{{i}}@f.example")
os._exit(0)
"""
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        team = TeamAccess(
            SQLiteStore(path), MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START)
        )
        assert len(team.accounts_for("boss19")) == 1
        assert sum(len(team.accounts_for(f"boss{i}")) for i in range(20)) == 20
        assert team.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # type: ignore[attr-defined]

    def test_invite_and_accept_work_the_same(self, tmp_path: Path) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(
            SQLiteStore(tmp_path / "team.db", synchronous="NORMAL"),
            mailer,
            secret_key=SECRET,
            clock=FrozenClock(START),
        )
        account = team.create_account(name="Firma", owner_id="boss", owner_email="b@f.example")
        inv = team.invite(
            account.id,
            actor_id="boss",
            email="ana@f.example",
            permissions=PermissionSet.of("billing.view"),
        )
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="ana", email="ana@f.example")
        assert team.can("ana", account.id, "billing.view")
        assert [m["To"] for m in mailer.outbox] == ["ana@f.example"]
        assert team.pending_messages() == []  # the delivery was recorded


class TestNotDurableUnits:
    """begin(durable=False): that one commit skips its fsync; no other unit is weakened."""

    def test_the_unit_runs_at_normal_and_the_store_returns_to_full(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        with store.begin(durable=False) as uow:
            assert level(store) == _LEVEL["NORMAL"]
            uow.commit()
        assert level(store) == _LEVEL["FULL"]
        with store.begin():
            assert level(store) == _LEVEL["FULL"]
        store.close()

    def test_level_returns_after_a_failed_unit(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        with pytest.raises(RuntimeError), store.begin(durable=False):
            raise RuntimeError("boom")
        assert level(store) == _LEVEL["FULL"]
        store.close()

    def test_a_normal_store_stays_normal(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db", synchronous="NORMAL")
        with store.begin(durable=False):
            assert level(store) == _LEVEL["NORMAL"]
        assert level(store) == _LEVEL["NORMAL"]
        store.close()

    def test_inside_a_durable_unit_the_outer_one_decides(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        with store.begin() as outer:
            with store.begin(durable=False) as inner:  # a savepoint of the outer unit
                assert level(store) == _LEVEL["FULL"]
                inner.commit()
            outer.commit()
        assert level(store) == _LEVEL["FULL"]
        store.close()

    def test_a_lost_level_is_restored_before_the_next_unit(self, tmp_path: Path) -> None:
        # If putting FULL back failed, the next unit must not run at NORMAL.
        store = SQLiteStore(tmp_path / "team.db")
        store.db.execute("PRAGMA synchronous = NORMAL")
        store._sync_lost = True
        with store.begin():
            assert level(store) == _LEVEL["FULL"]
        store.close()

    def test_only_the_delivery_record_is_not_durable(self, tmp_path: Path) -> None:
        # The invitation itself must be on disk before its link goes out; only the note
        # that the mail went out may be lost in a power cut (it then goes out again).
        store = SQLiteStore(tmp_path / "team.db")
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="Firma", owner_id="boss", owner_email="b@f.example")
        seen: list[tuple[str, int]] = []
        conn = store.db.conn

        def trace(sql: str) -> None:
            # A statement is reported again for each trigger it fires: once is enough.
            if sql.startswith(("INSERT", "UPDATE", "COMMIT")) and (
                not seen or seen[-1][0] != sql.split(" (")[0][:20]
            ):
                # The level in force when this statement runs, read without tracing.
                conn.set_trace_callback(None)
                seen.append((sql.split(" (")[0][:20], level(store)))
                conn.set_trace_callback(trace)

        conn.set_trace_callback(trace)
        inv = team.invite(
            account.id, actor_id="boss", email="ana@f.example", permissions=PermissionSet.all()
        )
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="ana", email="ana@f.example")
        conn.set_trace_callback(None)
        full, normal = _LEVEL["FULL"], _LEVEL["NORMAL"]
        assert seen == [
            ("INSERT INTO invitati", full),
            ("INSERT INTO outbox", full),
            ("INSERT INTO events", full),
            ("COMMIT", full),
            ("UPDATE outbox SET st", normal),  # marked sent
            ("COMMIT", normal),
            ("INSERT INTO members", full),
            ("UPDATE invitations S", full),
            ("UPDATE outbox SET st", full),  # its mail cancelled, were it still waiting
            ("INSERT INTO events", full),
            ("COMMIT", full),
        ]
        assert team.pending_messages() == []
        store.close()


class _FailingRestore:
    """A connection stand-in whose first ``PRAGMA synchronous = FULL`` fails."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.failed = False

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "PRAGMA synchronous = FULL" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


class TestRestoreFailure:
    def test_the_unit_stands_and_the_next_one_runs_at_full(self, tmp_path: Path) -> None:
        store = SQLiteStore(tmp_path / "team.db")
        real = store._conn
        store._conn = _FailingRestore(real)  # type: ignore[assignment]
        account = Account(
            id="a1", name="A", owner_id="o", owner_email="o@example.org", created_at=START
        )
        with store.begin(durable=False) as uow:  # no error: the commit happened
            uow.add_account(account)
            uow.commit()
        assert store._conn.failed  # type: ignore[attr-defined]
        assert level(store) == _LEVEL["NORMAL"]  # left behind by the failed restore...
        with store.begin():
            assert level(store) == _LEVEL["FULL"]  # ...and put back before the next unit
        with store.read() as uow:
            assert uow.get_account("a1") == account
        store._conn = real
        store.close()


class _OldStore(MemoryStore):
    """A backend written before Store.begin() took durable=."""

    def begin(self) -> Any:  # type: ignore[override]
        return super().begin()


class _Forwarding:
    """A wrapper around an older store that forwards whatever it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.begin(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TestOlderBackends:
    @pytest.mark.parametrize(
        "make",
        [_OldStore, lambda: _Forwarding(_OldStore()), lambda: MagicMock(wraps=_OldStore())],
        ids=["old-store", "forwarding-wrapper", "mock-wrapping-it"],
    )
    def test_a_store_whose_begin_takes_no_durable_keyword_still_works(self, make: Any) -> None:
        # Its delivery records are committed durably instead of failing after the mail
        # went out (which left the row pending and mailed a new link on every retry).
        mailer = MemoryMailer()
        team = TeamAccess(make(), mailer, secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="Firma", owner_id="boss", owner_email="b@f.example")
        for email in ("ana@f.example", "ben@f.example"):
            team.invite(account.id, actor_id="boss", email=email, permissions=PermissionSet.all())
        assert len(mailer.outbox) == 2
        assert team.pending_messages() == []
        assert team.deliver_pending() == []


class TestTimeout:
    """What timeout= becomes on the connection, for opening and for every unit after."""

    def busy_timeout(self, store: SQLiteStore) -> int:
        return int(store.db.execute("PRAGMA busy_timeout").fetchone()[0])

    @pytest.mark.parametrize(
        ("timeout", "ms"),
        [(5.0, 5000), (Fraction(1, 3), 333), (0, 0), (float("inf"), 2**31 - 1)],
    )
    def test_after_opening_the_whole_timeout_applies(
        self, tmp_path: Path, timeout: object, ms: int
    ) -> None:
        # Opening waits only for what is left of the timeout in each attempt; once open,
        # every unit gets all of it again.
        store = SQLiteStore(tmp_path / "team.db", timeout=timeout)  # type: ignore[arg-type]
        assert self.busy_timeout(store) == ms
        store.close()

    def test_a_timeout_beyond_any_float_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="too large; pass float"):
            SQLiteStore(tmp_path / "team.db", timeout=10**400)
        assert not (tmp_path / "team.db").exists()

"""A scrub that fails after erase_person(), delete_account() or purge() committed: the
caller learns that the deletion happened (ScrubFailed, a StorageError, with the report)
and what finishes it; store.scrub() (teamaccess scrub) then does. Real faults: a reader
of the SQLite file that keeps its snapshot past the timeout, so the WAL cannot be
emptied; on PostgreSQL a session holding a table's lock past the store's lock_timeout,
so VACUUM cannot start."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from teamaccess import (
    SYSTEM,
    PermissionSet,
    PurgeReport,
    Retention,
    ScrubFailed,
    SQLiteStore,
    StorageError,
    Store,
    TeamAccess,
    error_message,
)
from teamaccess.testing import FrozenClock

from .test_privacy import make

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
P = PermissionSet.of
ADDRESS = b"pia.scrubbed@example.org"


def seeded(store: Store) -> tuple[TeamAccess, FrozenClock, str]:
    clock = FrozenClock(T0)
    team = make(store, clock, retention=Retention(sent_mail=timedelta(days=1)))
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org").id
    inv = team.invite(acc, actor_id="o", email=ADDRESS.decode(), permissions=P())
    team.accept_invitation(inv.token or "", user_id="pia", email=ADDRESS.decode())
    return team, clock, acc


@contextmanager
def sqlite_reader(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection inside a read transaction, holding an old snapshot."""
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM accounts").fetchone()
        yield reader
    finally:
        reader.close()


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


class TestSQLite:
    """The WAL cannot be emptied while another connection reads an old snapshot."""

    def _fails(
        self, tmp_path: Path, call: Callable[[TeamAccess, str, FrozenClock], object]
    ) -> tuple[ScrubFailed, TeamAccess, sqlite3.Connection]:
        path = tmp_path / "teamaccess.db"
        team, clock, acc = seeded(SQLiteStore(path, timeout=0.2))
        reader_cm = sqlite_reader(path)
        reader = reader_cm.__enter__()
        try:
            with pytest.raises(ScrubFailed) as caught:
                call(team, acc, clock)
        except BaseException:
            reader_cm.__exit__(None, None, None)
            raise
        self._reader_cm = reader_cm
        return caught.value, team, reader

    def _finish(self, team: TeamAccess, tmp_path: Path, *, gone: bool = True) -> None:
        reader = self._reader_cm
        reader.__exit__(None, None, None)
        team._store.scrub()  # type: ignore[attr-defined]  # what the message says
        if gone:
            assert ADDRESS not in file_bytes(tmp_path / "teamaccess.db")
        team.close()

    def test_erasure(self, tmp_path: Path) -> None:
        exc, team, _reader = self._fails(
            tmp_path, lambda t, _acc, _clock: t.erase_person(user_id="pia", actor_id=SYSTEM)
        )
        assert isinstance(exc, StorageError)
        assert "the erasure (3 row(s) deleted" in str(exc)
        assert "is committed" in str(exc)
        assert "call store.scrub()" in str(exc)
        assert ADDRESS.decode() not in str(exc)  # the error names no person
        assert type(exc.report).__name__ == "ErasureReport"
        assert exc.report.memberships == 1  # type: ignore[attr-defined]
        assert team.accounts_for("pia") == []  # done, whatever the scrub
        # Repeating the call finds nothing to delete, so it does not scrub either.
        assert team.erase_person(user_id="pia", actor_id=SYSTEM).removed == 0
        assert "not repeat" in error_message(exc)
        self._finish(team, tmp_path)

    def test_account_deletion(self, tmp_path: Path) -> None:
        exc, team, _reader = self._fails(
            tmp_path, lambda t, acc, _clock: t.delete_account(acc, actor_id=SYSTEM)
        )
        assert "the deletion of account acc_" in str(exc)
        assert type(exc.report).__name__ == "AccountDeletionReport"
        assert exc.report.members == 2  # type: ignore[attr-defined]
        assert team.accounts_for("pia") == []
        self._finish(team, tmp_path)

    def test_purge(self, tmp_path: Path) -> None:
        def purge(t: TeamAccess, _acc: str, clock: FrozenClock) -> object:
            clock.advance(timedelta(days=200))
            return t.purge()

        exc, team, _reader = self._fails(tmp_path, purge)
        assert isinstance(exc.report, PurgeReport)
        assert exc.report.messages == 1
        assert "the purge (" in str(exc)
        self._finish(team, tmp_path, gone=False)  # pia is still a member


def test_cli_scrub_finishes_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from teamaccess._cli import cli

    path = tmp_path / "teamaccess.db"
    team, _clock, _acc = seeded(SQLiteStore(path, timeout=0.2))
    with sqlite_reader(path), pytest.raises(ScrubFailed):
        team.erase_person(user_id="pia", actor_id=SYSTEM)
    team.close()
    result = CliRunner().invoke(cli, ["--db", str(path), "scrub"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ADDRESS not in file_bytes(path)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_vacuum_that_cannot_start(
    backend: str, store_factory: Callable[[], Store], tmp_path: Path
) -> None:
    """VACUUM waits for a table another session locked; past the store's lock_timeout
    it fails, after the erasure committed."""
    import psycopg

    from teamaccess import PostgresStore

    from .conftest import postgres_conninfo, postgres_schema

    store_factory()  # the schema, made
    schema = postgres_schema(tmp_path)
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(postgres_conninfo(), options="-c lock_timeout=300")
    impatient = PostgresStore(conninfo, schema=schema, max_size=2)
    team, _clock, _acc = seeded(impatient)
    holder: Any
    with psycopg.connect(postgres_conninfo()) as holder:
        holder.execute(f'LOCK TABLE "{schema}".events IN SHARE UPDATE EXCLUSIVE MODE')
        with pytest.raises(ScrubFailed, match=r"the erasure \(3 row\(s\) deleted") as caught:
            team.erase_person(user_id="pia", actor_id=SYSTEM)
        holder.rollback()
    assert type(caught.value.report).__name__ == "ErasureReport"
    assert team.accounts_for("pia") == []
    team._store.scrub()  # type: ignore[attr-defined]
    team.close()

# The schema names in the SQL below come from tests/conftest.py, not from input.
# ruff: noqa: S608
"""PostgresStore on a real server: opening, migrations, errors, and several processes.

The contract and service suites run on PostgreSQL through tests/conftest.py; this module
holds what only a server database has. Needs TEAMACCESS_TEST_POSTGRES (see conftest).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from tests.conftest import (
    SECRET,
    START,
    add_member,
    drop_postgres_schema,
    postgres_conninfo,
    postgres_schema,
)
from tests.fork_helpers import in_a_fork

from teamaccess import (
    InvitationUsed,
    MemoryMailer,
    PermissionSet,
    PostgresStore,
    StorageError,
    TeamAccess,
    TeamAccessError,
    ValidationError,
)
from teamaccess._backends import postgres as pg_backend
from teamaccess.testing import FrozenClock

pytestmark = pytest.mark.postgres

HELPERS = str(Path(__file__).with_name("postgres_helpers.py"))
ROOT = Path(__file__).resolve().parent.parent
P = PermissionSet.of


@pytest.fixture
def conninfo() -> str:
    return postgres_conninfo()


@pytest.fixture
def schema(conninfo: str, tmp_path: Path) -> Iterator[str]:
    yield postgres_schema(tmp_path)
    drop_postgres_schema(tmp_path)


@pytest.fixture
def raw(conninfo: str) -> Iterator[Any]:
    """A plain psycopg connection, to look at the database the way a DBA would."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn


def open_team(conninfo: str, schema: str, **kw: Any) -> TeamAccess:
    store = PostgresStore(conninfo, schema=schema, **kw)
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))


@pytest.fixture
def team(conninfo: str, schema: str) -> Iterator[TeamAccess]:
    team = open_team(conninfo, schema)
    yield team
    team.close()


class Child:
    """A helper process from tests/postgres_helpers.py that reports in JSON lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, HELPERS, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def report(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            self.proc.wait(10)
            assert self.proc.stderr is not None
            pytest.fail(f"child ended without a report: {self.proc.stderr.read()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[Callable[..., Child]]:
    started: list[Child] = []

    def start(*args: str) -> Child:
        child = Child(*args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.finish()


class TestOpening:
    """Opening creates the schema once, and refuses what it must not change."""

    def test_creates_the_schema_and_reopens_it(self, conninfo: str, schema: str, raw: Any) -> None:
        store = PostgresStore(conninfo, schema=schema)
        assert store.schema_version == len(pg_backend.MIGRATIONS)
        store.close()
        tables = {
            r[0]
            for r in raw.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
        assert {"accounts", "members", "invitations", "outbox", "schema_info"} <= tables
        again = PostgresStore(conninfo, schema=schema)
        assert again.schema_version == len(pg_backend.MIGRATIONS)
        assert "closed" not in repr(again)
        again.close()
        assert "closed" in repr(again)

    def test_version_1_schema_is_upgraded(
        self, conninfo: str, schema: str, raw: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A version-1 schema with a member, written as version 1's store wrote it.
        monkeypatch.setattr(pg_backend, "MIGRATIONS", pg_backend.MIGRATIONS[:1])
        old = PostgresStore(conninfo, schema=schema)
        assert old.schema_version == 1
        old.close()
        monkeypatch.undo()
        raw.execute(
            f'INSERT INTO "{schema}".accounts (id, name, owner_id, owner_email, created_at) '
            "VALUES ('acc', 'Alt', 'owner', 'o@example.org', now())"
        )
        raw.execute(
            f'INSERT INTO "{schema}".members (account_id, user_id, email, email_key, role, '
            "permissions, joined_at) VALUES ('acc', 'owner', 'o@example.org', "
            "'o@example.org', 'owner', '\"*\"', now())"
        )
        store = PostgresStore(conninfo, schema=schema)
        assert store.schema_version == len(pg_backend.MIGRATIONS)
        with store.read() as uow:
            member = uow.get_member("acc", "owner")
        assert member is not None
        assert (member.status, member.access_until, member.metadata) == ("active", None, {})
        assert store.grant("acc", "owner") == (PermissionSet.all(), None)
        store.close()

    def test_newer_schema_is_refused_unchanged(self, conninfo: str, schema: str, raw: Any) -> None:
        PostgresStore(conninfo, schema=schema).close()
        raw.execute(f'UPDATE "{schema}".schema_info SET version = 99')
        before = raw.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s", (schema,)
        ).fetchone()
        with pytest.raises(StorageError, match=r"version 99.*upgrade teamaccess"):
            PostgresStore(conninfo, schema=schema)
        assert raw.execute(f'SELECT version FROM "{schema}".schema_info').fetchone() == (99,)
        assert (
            raw.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s",
                (schema,),
            ).fetchone()
            == before
        )

    def test_foreign_tables_are_refused_unchanged(
        self, conninfo: str, schema: str, raw: Any
    ) -> None:
        raw.execute(f'CREATE SCHEMA "{schema}"')
        raw.execute(f'CREATE TABLE "{schema}".accounts (id int)')
        with pytest.raises(StorageError, match=r"did not create.*accounts"):
            PostgresStore(conninfo, schema=schema)
        columns = raw.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        assert columns == [("id",)]

    def test_an_empty_schema_made_by_an_administrator_is_used(
        self, conninfo: str, schema: str, raw: Any
    ) -> None:
        raw.execute(f'CREATE SCHEMA "{schema}"')
        store = PostgresStore(conninfo, schema=schema)
        assert store.schema_version == len(pg_backend.MIGRATIONS)
        store.close()

    @pytest.mark.slow
    def test_eight_processes_starting_together_migrate_once(
        self, conninfo: str, schema: str, tmp_path: Path, children: Callable[..., Child]
    ) -> None:
        start = tmp_path / "start"
        openers = [children("open", conninfo, schema, str(start)) for _ in range(8)]
        for opener in openers:
            assert opener.report() == {"ready": True}
        start.touch()
        results = [opener.report() for opener in openers]
        assert {r.get("version") for r in results} == {len(pg_backend.MIGRATIONS)}, results
        team = open_team(conninfo, schema)
        assert len(team.accounts_for("o")) == 8
        team.close()

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"schema": "bad-name"}, "plain PostgreSQL name"),
            ({"schema": "pg_mine"}, "PostgreSQL's"),
            ({"schema": 3}, "plain PostgreSQL name"),
            ({"max_size": 0}, "max_size"),
            ({"timeout": -1}, "timeout"),
            ({"timeout": True}, "timeout"),
        ],
    )
    def test_bad_settings(self, conninfo: str, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValidationError, match=match):
            PostgresStore(conninfo, **kwargs)

    def test_bad_conninfo(self) -> None:
        with pytest.raises(ValidationError, match="connection string"):
            PostgresStore("this is = not = one")
        with pytest.raises(ValidationError, match="connection string"):
            PostgresStore(42)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "conninfo",
        [
            # libpq quotes what it trips over: the password, or the whole URL
            "postgresql://u:hunter2%zz@127.0.0.1:1/db",
            "postgresql://u:hunter2@[::1/db",
            # a '/' ends the host part: the user became the host, "hunter2" the port
            # and "xyz@127.0.0.1:1/db" the database, each named in the error
            "postgresql://u:hunter2/xyz@127.0.0.1:1/db",
        ],
    )
    def test_bad_url_never_shows_its_password(self, conninfo: str) -> None:
        with pytest.raises(ValidationError) as info:
            PostgresStore(conninfo)
        assert "hunter2" not in str(info.value)
        assert "xyz" not in str(info.value)

    def test_unreachable_server_is_a_storage_error(self, tmp_path: Path) -> None:
        with pytest.raises(StorageError, match="could not be reached") as info:
            PostgresStore(f"host={tmp_path} port=1 dbname=x user=u password=hunter2")
        assert "hunter2" not in str(info.value)
        assert info.value.__cause__ is not None


class TestTheApplicationsPool:
    """A psycopg_pool.ConnectionPool the application owns works, and stays open."""

    @pytest.mark.parametrize("autocommit", [True, False])
    def test_works_and_is_not_closed(self, conninfo: str, schema: str, autocommit: bool) -> None:
        from psycopg_pool import ConnectionPool

        with ConnectionPool(
            conninfo, min_size=1, max_size=2, kwargs={"autocommit": autocommit}, open=True
        ) as pool:
            store = PostgresStore(pool, schema=schema)
            team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
            account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
            add_member(team, account.id, "u2", P("billing.view"), actor_id="o")
            assert team.can("u2", account.id, "billing.view")
            assert team.recipients(account.id, "billing") == ["o@example.org"]
            assert [m.user_id for m in team.members(account.id)] == ["o", "u2"]
            team.close()
            with pool.connection() as conn:  # the pool is still open, its connections idle
                assert conn.execute("SELECT 1").fetchone() == (1,)


class TestGrant:
    """grant(), can()'s look-up: one column for an active member without an end, the
    whole row only for others, on a cursor each connection keeps."""

    def test_columns_statements_and_cursors(self, conninfo: str, schema: str) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        sent: list[tuple[str, int]] = []
        made: list[int] = []

        class Recording(psycopg.Cursor[Any]):
            """A real cursor that notes what it sends and how many columns come back."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                made.append(1)

            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                result = super().execute(query, params, **kw)
                sent.append((str(query), len(self.description or ())))
                return result

        with ConnectionPool(
            conninfo, min_size=1, max_size=1,
            kwargs={"autocommit": True, "cursor_factory": Recording}, open=True,
        ) as pool:  # fmt: skip
            store = PostgresStore(pool, schema=schema)
            team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
            acc = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
            for user in ("active", "suspended", "ending"):
                add_member(team, acc.id, user, P("billing.view"), actor_id="owner")
            team.suspend_member(acc.id, "suspended", actor_id="owner")
            until = START + timedelta(days=3)
            team.set_access_until(acc.id, "ending", until, actor_id="owner")
            sent.clear()
            assert store.grant(acc.id, "active") == (P("billing.view"), None)
            assert [columns for _, columns in sent] == [1]  # one statement, one column
            assert store.grant(acc.id, "suspended") == (PermissionSet.none(), None)
            assert store.grant(acc.id, "ending") == (P("billing.view"), until)
            assert store.grant(acc.id, "nobody") is None
            assert [columns for _, columns in sent] == [1, 1, 3, 1, 3, 1]
            made.clear()
            for _ in range(5):
                assert team.can("active", acc.id, "billing.view")
                assert not team.can("suspended", acc.id, "billing.view")
            assert made == []  # the connection's grant cursor is reused
            team.close()


class TestErrors:
    """No psycopg exception reaches a caller."""

    def test_closed_store(self, conninfo: str, schema: str) -> None:
        store = PostgresStore(conninfo, schema=schema)
        store.close()
        store.close()
        with pytest.raises(StorageError, match="closed"):
            store.recipients("a", "billing")
        with pytest.raises(StorageError, match="closed"):
            _ = store.schema_version

    def test_missing_rights_are_a_storage_error(
        self, conninfo: str, schema: str, raw: Any, team: TeamAccess
    ) -> None:
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        raw.execute(f'ALTER TABLE "{schema}".members RENAME TO members_gone')
        try:
            with pytest.raises(StorageError, match=f"schema '{schema}'") as info:
                team.can("o", account.id, "billing.view")
            assert not isinstance(info.value.__cause__, TeamAccessError)
            with pytest.raises(StorageError):
                team.members(account.id)
        finally:
            raw.execute(f'ALTER TABLE "{schema}".members_gone RENAME TO members')
        assert team.can("o", account.id, "billing.view")

    def test_pool_timeout_is_a_storage_error(self, conninfo: str, schema: str) -> None:
        store = PostgresStore(conninfo, schema=schema, max_size=1, timeout=0.2)
        try:
            with store.read():  # holds the only connection
                errors: list[BaseException] = []

                def other() -> None:
                    try:
                        store.grant("a", "b")
                    except BaseException as exc:
                        errors.append(exc)

                thread = threading.Thread(target=other)
                thread.start()
                thread.join(10)
            assert len(errors) == 1
            assert isinstance(errors[0], StorageError)
            assert "no free connection" in str(errors[0])
        finally:
            store.close()


class TestConcurrentWriters:
    """Writers of one account queue on its lock; the rules stay exact."""

    def test_rate_limit_is_exact_with_twelve_concurrent_inviters(
        self, conninfo: str, schema: str, team: TeamAccess
    ) -> None:
        from teamaccess import RateLimited

        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        barrier = threading.Barrier(12)
        outcomes: list[str] = []

        def inviter(n: int) -> None:
            own = TeamAccess(
                PostgresStore(conninfo, schema=schema, max_size=1), MemoryMailer(),
                secret_key=SECRET, clock=FrozenClock(START), rate_limit=5,
            )  # fmt: skip
            try:
                barrier.wait(10)
                own.invite(account.id, actor_id="owner", email=f"p{n}@example.org",
                           permissions=P("billing.view"))  # fmt: skip
                outcomes.append("sent")
            except RateLimited:
                outcomes.append("limited")
            finally:
                own.close()

        threads = [threading.Thread(target=inviter, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["limited"] * 7 + ["sent"] * 5
        assert len(team.pending_invitations(account.id)) == 5

    def test_a_status_change_is_conditional_on_the_status_read(
        self, conninfo: str, schema: str, team: TeamAccess, raw: Any
    ) -> None:
        # The account lock keeps other writers of teamaccess out; a writer that bypasses
        # it (here: plain SQL) still cannot make one invitation accepted twice.
        import attrs

        from teamaccess import Conflict

        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        inv = team.invite(
            account.id, actor_id="owner", email="neu@example.org", permissions=P("billing.view")
        )
        store = team.store
        with store.begin() as uow:
            read = uow.get_invitation(inv.id)
            assert read is not None
            assert read.status == "pending"
            raw.execute(
                f'UPDATE "{schema}".invitations SET status = %s WHERE id = %s',
                ("declined", inv.id),
            )
            with pytest.raises(Conflict, match=r"became 'declined'.*retry"):
                uow.update_invitation(attrs.evolve(read, status="accepted", accepted_by="x"))
            uow.commit()
        assert team.get_invitation(inv.id).status == "declined"
        assert team.get_invitation(inv.id).accepted_by is None

    def test_writers_of_other_accounts_do_not_wait(self, conninfo: str, schema: str) -> None:
        store = PostgresStore(conninfo, schema=schema, max_size=2)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        first = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        second = team.create_account(name="B", owner_id="o", owner_email="o@example.org")
        done = threading.Event()
        try:
            with store.begin() as uow:  # holds the first account's lock, uncommitted
                uow.get_account(first.id)

                def other() -> None:
                    team.rename_account(second.id, actor_id="o", name="B2")
                    done.set()

                thread = threading.Thread(target=other)
                thread.start()
                assert done.wait(10), "a writer of another account waited for this one"
                thread.join(10)
        finally:
            team.close()


@pytest.mark.slow
class TestProcesses:
    """Several processes on one server: one winner per token, revocations seen at once."""

    def test_eight_processes_accept_one_token(
        self,
        conninfo: str,
        schema: str,
        team: TeamAccess,
        tmp_path: Path,
        children: Callable[..., Child],
    ) -> None:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        inv = team.invite(
            account.id, actor_id="owner", email="neu@example.org", permissions=P("billing.view")
        )
        assert inv.token is not None
        start = tmp_path / "start"
        accept_args = ("accept", conninfo, schema, START.isoformat(), str(start), inv.token)
        racers = [children(*accept_args, f"racer{n}", "neu@example.org") for n in range(8)]
        for racer in racers:
            assert racer.report() == {"ready": True}
        start.touch()
        results = [racer.report() for racer in racers]
        winners = [r for r in results if "member" in r]
        losers = [r for r in results if "error" in r]
        assert len(winners) == 1, results
        assert len(losers) == 7, results
        for loser in losers:
            assert loser["teamaccess"] is True, loser
            assert loser["error"] in (InvitationUsed.__name__, "AlreadyMember"), loser
        assert [m.user_id for m in team.members(account.id)] == ["owner", winners[0]["member"]]
        assert team.get_invitation(inv.id).status == "accepted"

    def test_no_reader_process_sees_a_revoked_permission(
        self,
        conninfo: str,
        schema: str,
        team: TeamAccess,
        tmp_path: Path,
        children: Callable[..., Child],
    ) -> None:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        add_member(team, account.id, "u2", P("billing.view", "billing.pay"))
        revoked = tmp_path / "revoked"
        check_args = ("check", conninfo, schema, "u2", account.id, "billing.pay", str(revoked))
        readers = [children(*check_args) for _ in range(4)]
        for reader in readers:
            assert reader.report() == {"ready": True}
        # The readers are asking; revoke in the middle of it, then tell them it committed.
        team.set_permissions(account.id, "u2", P("billing.view"), actor_id="owner")
        revoked.touch()
        results = [reader.report() for reader in readers]
        for result in results:
            assert result["first"] is True, results
            assert result["after"] == 50, results
            assert result["stale"] == 0, results


class TestFork:
    """A store opened before a fork: its pooled connections are the parent's sockets.
    Shared by several children they hang or hand one child another's answer; the child
    is refused, saying to open the store after the fork, and the parent goes on."""

    def test_the_child_is_refused_and_told_what_to_do(self, team: TeamAccess) -> None:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        assert team.can("owner", account.id, "billing.view")  # the pool is in use
        got = in_a_fork(lambda: team.can("owner", account.id, "billing.view"))
        assert got.get("error") == "StorageError", got
        assert "a fork of it" in got["message"]
        assert "in each process after the fork" in got["message"]
        got = in_a_fork(lambda: team.members(account.id))
        assert got.get("error") == "StorageError", got

    def test_the_parent_goes_on_and_a_store_opened_in_the_child_works(
        self, conninfo: str, schema: str, team: TeamAccess
    ) -> None:
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")

        def closes_then_opens_its_own() -> object:
            team.close()  # must not end the parent's sessions
            own = open_team(conninfo, schema)
            try:
                return own.can("owner", account.id, "billing.view")
            finally:
                own.close()

        assert in_a_fork(closes_then_opens_its_own) == {"result": "True"}
        assert team.can("owner", account.id, "billing.view")
        assert [m.user_id for m in team.members(account.id)] == ["owner"]


@pytest.mark.slow
class TestDeliveryWorkers:
    """Two worker processes drain one outbox: every mail goes out once."""

    def test_two_workers_no_duplicate(
        self, conninfo: str, schema: str, tmp_path: Path, children: Callable[..., Child]
    ) -> None:
        import email
        import email.policy

        store = PostgresStore(conninfo, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, delivery="queue")
        account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
        for n in range(30):
            team.add_contact(account.id, actor_id="owner", name=f"C{n}",
                             email=f"c{n}@example.org", categories=["billing"])  # fmt: skip
        team.notify(account.id, "billing", subject="Rechnung", text="Ihre Rechnung")
        for n in range(6):
            team.invite(account.id, actor_id="owner", email=f"i{n}@example.org",
                        permissions=P("billing.view"))  # fmt: skip
        waiting = team.pending_messages()
        assert len(waiting) == 37
        start = tmp_path / "start"
        workers = [
            children("drain", conninfo, schema, str(start), str(tmp_path / f"w{n}"))
            for n in range(2)
        ]
        for worker in workers:
            assert worker.report() == {"ready": True}
        start.touch()
        reports = [worker.report() for worker in workers]
        assert sum(r["sent"] for r in reports) == 37, reports
        files = sorted(tmp_path.glob("w*/*.eml"))
        messages = [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.SMTP) for f in files
        ]
        ids = [m["Message-ID"] for m in messages]
        assert len(ids) == 37
        assert len(set(ids)) == 37
        assert sorted(str(m["To"]) for m in messages) == sorted(m.recipient for m in waiting)
        assert team.pending_messages() == []
        with store.read() as uow:
            assert {m.status for m in uow.outbox()} == {"sent"}
        team.close()


class TestServerRestart:
    """After a restart of the server, the first call of each kind works: it meets a pooled
    connection the restart closed, and goes again on a fresh one."""

    @pytest.fixture
    def own_server(self) -> Iterator[tuple[str, str]]:
        # A cluster of its own, so restarting it disturbs no other test.
        directory = tempfile.mkdtemp(prefix="teamaccess-pg-restart-")
        script = str(ROOT / ".ci" / "postgres")
        done = subprocess.run(
            [script, "start", directory, "5599", "fsync=off"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            subprocess.run([script, "stop", directory], capture_output=True, timeout=60)
            pytest.fail(f".ci/postgres could not start a server: {done.stderr}")
        try:
            yield done.stdout.strip(), directory
        finally:
            subprocess.run([script, "stop", directory], capture_output=True, timeout=60)

    @pytest.mark.slow
    def test_first_call_after_a_restart_works(
        self, conninfo: str, own_server: tuple[str, str]
    ) -> None:
        url, directory = own_server
        store = PostgresStore(url, max_size=3)
        mailer = MemoryMailer()
        team = TeamAccess(store, mailer, secret_key=SECRET)
        queued = TeamAccess(store, mailer, secret_key=SECRET, delivery="queue")
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")

        def restart() -> None:
            # Several idle connections in the pool, all of which the restart kills.
            barrier = threading.Barrier(3)

            def hold() -> None:
                with store.read() as uow:
                    barrier.wait(10)
                    uow.get_account(account.id)

            threads = [threading.Thread(target=hold) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            subprocess.run(
                [str(ROOT / ".ci" / "postgres"), "restart", directory], check=True, timeout=120
            )

        restart()
        assert team.can("o", account.id, "billing.view")
        restart()
        team.invite(account.id, actor_id="o", email="a@example.org", permissions=P())
        assert len(mailer.outbox) == 1
        restart()
        assert [m.user_id for m in team.members(account.id)] == ["o"]
        queued.invite(account.id, actor_id="o", email="b@example.org", permissions=P())
        assert len(mailer.outbox) == 1
        restart()
        assert [m.status for m in queued.deliver_pending()] == ["sent"]
        restart()
        team.rename_account(account.id, actor_id="o", name="B")
        assert team.get_account(account.id).name == "B"
        restart()
        store.scrub()  # a VACUUM outside any transaction
        assert sorted(str(m["To"]) for m in mailer.outbox) == ["a@example.org", "b@example.org"]
        team.close()


class TestJoin:
    """store.join(conn): teamaccess's writes commit or roll back with the host's transaction."""

    @pytest.fixture
    def customers(self, conninfo: str, schema: str, raw: Any) -> Iterator[str]:
        """The vendor's own table, beside teamaccess's schema."""
        table = f"public.{schema}_customers"
        raw.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, account_id text)")
        yield table
        raw.execute(f"DROP TABLE {table}")

    @pytest.fixture
    def mailer(self) -> MemoryMailer:
        return MemoryMailer()

    @pytest.fixture
    def shop(self, conninfo: str, schema: str, mailer: MemoryMailer) -> Iterator[TeamAccess]:
        team = TeamAccess(
            PostgresStore(conninfo, schema=schema),
            mailer,
            secret_key=SECRET,
            accept_url="https://panel.example.com/accept?token={token}",
        )
        yield team
        team.close()

    def sign_up(self, conn: Any, shop: TeamAccess, customers: str) -> tuple[str, str]:
        """The vendor's sign-up: its customer row, the account, an invitation, all in
        the vendor's transaction."""
        store = shop.store
        assert isinstance(store, PostgresStore)
        with store.join(conn):
            assert store.in_host_transaction
            account = shop.create_account(
                name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de"
            )
            conn.execute(f"INSERT INTO {customers} VALUES ('c1', %s)", (account.id,))
            inv = shop.invite(
                account.id, actor_id="owner", email="dev@agentur.de", permissions=P("billing.view")
            )
            # Inside the transaction its own writes are visible, to the service too.
            assert shop.can("owner", account.id, "billing.pay")
            assert [i.id for i in shop.pending_invitations(account.id)] == [inv.id]
        assert not store.in_host_transaction
        return account.id, inv.id

    def test_rollback_leaves_nothing_and_sends_nothing(
        self, conninfo: str, shop: TeamAccess, mailer: MemoryMailer, customers: str, raw: Any
    ) -> None:
        import psycopg

        with psycopg.connect(conninfo) as conn:  # not autocommit: the vendor's transaction
            account_id, _ = self.sign_up(conn, shop, customers)
            assert mailer.outbox == []
            conn.rollback()
        assert raw.execute(f"SELECT count(*) FROM {customers}").fetchone() == (0,)
        with pytest.raises(TeamAccessError, match="account"):
            shop.get_account(account_id)
        assert shop.accounts_for("owner") == []
        assert shop.pending_messages() == []
        assert shop.deliver_pending() == []
        assert mailer.outbox == []

    def test_a_connection_returning_dicts_is_joined_like_any_other(
        self, conninfo: str, shop: TeamAccess, customers: str, raw: Any
    ) -> None:
        # The vendor's connection has row_factory=dict_row; the store reads its own rows
        # as tuples and leaves the connection's factory alone.
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(conninfo, row_factory=dict_row) as conn:
            account_id, inv_id = self.sign_up(conn, shop, customers)
            assert conn.row_factory is dict_row
            row = conn.execute(f"SELECT account_id FROM {customers}").fetchone()
            assert row == {"account_id": account_id}
            conn.commit()
        assert shop.get_invitation(inv_id).status == "pending"

    def test_commit_keeps_everything_and_the_mail_waits_in_the_outbox(
        self, conninfo: str, shop: TeamAccess, mailer: MemoryMailer, customers: str, raw: Any
    ) -> None:
        import psycopg

        with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
            account_id, inv_id = self.sign_up(conn, shop, customers)
        assert raw.execute(f"SELECT account_id FROM {customers}").fetchall() == [(account_id,)]
        assert shop.get_account(account_id).name == "Muster GmbH"
        assert shop.get_invitation(inv_id).status == "pending"
        assert mailer.outbox == []
        waiting = shop.pending_messages()
        assert [m.invitation_id for m in waiting] == [inv_id]
        sent = shop.deliver_pending()
        assert [m.status for m in sent] == ["sent"]
        assert len(mailer.outbox) == 1
        # The mailed link works.
        mail = mailer.outbox[0]
        assert mail["To"] == "dev@agentur.de"
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        link = next(w for w in body.get_content().split() if "token=" in w)
        from urllib.parse import parse_qs, urlsplit

        token = parse_qs(urlsplit(link).query)["token"][0]
        member = shop.accept_invitation(token, user_id="dev", email="dev@agentur.de")
        assert member.account_id == account_id

    def test_a_failing_use_case_undoes_only_its_own_part(
        self, conninfo: str, shop: TeamAccess, customers: str
    ) -> None:
        import psycopg

        from teamaccess import AlreadyInvited

        with psycopg.connect(conninfo) as conn:
            account_id, _ = self.sign_up(conn, shop, customers)
            store = shop.store
            assert isinstance(store, PostgresStore)
            with store.join(conn):
                with pytest.raises(AlreadyInvited):
                    shop.invite(
                        account_id, actor_id="owner", email="dev@agentur.de",
                        permissions=P("billing.view"),
                    )  # fmt: skip
                shop.rename_account(account_id, actor_id="owner", name="Neu GmbH")
            conn.commit()
        assert shop.get_account(account_id).name == "Neu GmbH"
        assert len(shop.pending_invitations(account_id)) == 1

    def test_other_threads_do_not_see_the_open_transaction(
        self, conninfo: str, shop: TeamAccess, customers: str
    ) -> None:
        import psycopg

        seen: list[object] = []
        with psycopg.connect(conninfo) as conn:
            account_id, _ = self.sign_up(conn, shop, customers)
            store = shop.store
            assert isinstance(store, PostgresStore)
            with store.join(conn):
                thread = threading.Thread(
                    target=lambda: seen.append(shop.store.grant(account_id, "owner"))
                )
                thread.start()
                thread.join(10)
                assert shop.store.grant(account_id, "owner") == (PermissionSet.all(), None)
            conn.rollback()
        assert seen == [None]

    def test_deliver_pending_is_refused_inside(
        self, conninfo: str, shop: TeamAccess, customers: str
    ) -> None:
        import psycopg

        store = shop.store
        assert isinstance(store, PostgresStore)
        with (
            psycopg.connect(conninfo) as conn,
            store.join(conn),
            pytest.raises(ValidationError, match=r"after leaving store\.join"),
        ):
            shop.deliver_pending()

    def test_misuse(self, conninfo: str, shop: TeamAccess) -> None:
        import psycopg

        store = shop.store
        assert isinstance(store, PostgresStore)
        with pytest.raises(ValidationError, match=r"psycopg\.Connection"):
            store.join("not a connection").__enter__()  # type: ignore[arg-type]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            with pytest.raises(ValidationError, match="inside a transaction"):
                store.join(conn).__enter__()
            with conn.transaction(), store.join(conn):
                with pytest.raises(ValidationError, match="another join"):
                    store.join(conn).__enter__()
                with store.begin(), pytest.raises(ValidationError, match="another join"):
                    store.join(conn).__enter__()
        with psycopg.connect(conninfo) as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
            with pytest.raises(StorageError, match="roll it back"):
                store.join(conn).__enter__()

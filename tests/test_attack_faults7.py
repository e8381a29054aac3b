"""Faults of the environment, with real components: the database locked by another
connection (or full, or refusing connections) at the worst moment. Each failure is a
``TeamAccessError`` that says what happened and what to do, nothing is half-written, the
library recovers once the fault clears, and no mail goes out twice."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

import pytest
from tests.conftest import (
    SECRET,
    START,
    drop_postgres_schema,
    postgres_conninfo,
    postgres_schema,
    prepare_postgres_schema,
)

from teamaccess import (
    DeliveryFailed,
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    StorageError,
    TeamAccess,
)
from teamaccess.testing import FrozenClock

LEASE = timedelta(minutes=5)


class LockingMailer(MemoryMailer):
    """Delivers, then (once armed) has another connection take the file's write lock, as
    another process's long write does while the mail is on its way."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.armed = False
        self.other: sqlite3.Connection | None = None

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        if self.armed and self.other is None:
            self.other = sqlite3.connect(self.path, isolation_level=None)
            self.other.execute("BEGIN IMMEDIATE")

    def unlock(self) -> None:
        self.armed = False
        if self.other is not None:
            self.other.execute("ROLLBACK")
            self.other.close()
            self.other = None

    def to(self, address: str) -> int:
        return sum(m["To"] == address for m in self.outbox)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def mailer(tmp_path: Path) -> LockingMailer:
    return LockingMailer(tmp_path / "team.db")


def open_team(mailer: LockingMailer, clock: FrozenClock, delivery: str = "now") -> TeamAccess:
    # A short busy timeout: the lock is held for good until the test lets go.
    store = SQLiteStore(mailer.path, timeout=0.1)
    return TeamAccess(store, mailer, secret_key=SECRET, clock=clock, delivery=delivery)  # type: ignore[arg-type]


def with_contacts(team: TeamAccess, *addresses: str) -> str:
    account = team.create_account(name="Muster", owner_id="owner", owner_email="o@example.org")
    for n, address in enumerate(addresses):
        team.add_contact(
            account.id, actor_id="owner", name=f"C{n}", email=address, categories=["billing"]
        )
    return account.id


class TestLockedWhileRecordingASentMail:
    """The mail went out; recording that fails because another writer holds the lock."""

    def test_invite_returns_the_invitation_and_its_mail_goes_once(
        self, mailer: LockingMailer, clock: FrozenClock
    ) -> None:
        team = open_team(mailer, clock)
        account = team.create_account(name="Muster", owner_id="owner", owner_email="o@ex.org")
        mailer.armed = True
        # The invitation is saved and its mail delivered: that is what invite() promises,
        # so it returns (a StorageError saying "retry" would make the caller try again
        # and meet AlreadyInvited, with the first link killed by a later resend).
        inv = team.invite(
            account.id, actor_id="owner", email="new@example.org", permissions=PermissionSet.all()
        )
        assert inv.token is not None
        assert mailer.to("new@example.org") == 1
        mailer.unlock()
        clock.advance(LEASE * 3)
        assert team.deliver_pending() == []
        assert mailer.to("new@example.org") == 1
        assert team.pending_messages() == []
        # The link that went out still works: no later mail replaced its token.
        member = team.accept_invitation(inv.token, user_id="new", email="new@example.org")
        assert member.user_id == "new"
        team.close()

    def test_notify_says_what_went_and_nothing_goes_twice(
        self, mailer: LockingMailer, clock: FrozenClock
    ) -> None:
        team = open_team(mailer, clock)
        account_id = with_contacts(team, "a@example.org", "b@example.org")
        mailer.armed = True
        # The owner's mail went; recording it failed. A StorageError saying "retry" would
        # have the caller notify everyone again. The others wait in the outbox.
        with pytest.raises(DeliveryFailed, match=r"2 of 3 .*deliver_pending\(\)") as failed:
            team.notify(account_id, "billing", subject="Invoice", text="Your invoice")
        assert "do not call notify() again" in str(failed.value)
        assert "locked" in str(failed.value)
        assert len(failed.value.message_ids) == 2
        assert mailer.to("o@example.org") == 1
        assert len(mailer.outbox) == 1
        mailer.unlock()
        clock.advance(LEASE * 3)
        sent = team.deliver_pending()
        assert sorted(r.recipient for r in sent) == ["a@example.org", "b@example.org"]
        assert all(r.status == "sent" for r in sent)
        clock.advance(LEASE * 3)
        assert team.deliver_pending() == []
        assert [mailer.to(a) for a in ("o@example.org", "a@example.org", "b@example.org")] == [
            1,
            1,
            1,
        ]
        team.close()

    def test_the_worker_records_it_on_its_next_run_and_sends_it_once(
        self, mailer: LockingMailer, clock: FrozenClock
    ) -> None:
        team = open_team(mailer, clock, delivery="queue")
        account_id = with_contacts(team, "a@example.org")
        team.notify(account_id, "billing", subject="Invoice", text="Your invoice")
        mailer.armed = True
        with pytest.raises(StorageError, match=r"was sent, but recording it failed.*locked"):
            team.deliver_pending()
        assert len(mailer.outbox) == 1
        mailer.unlock()
        # The next run (the worker's next round) first records what it sent; the message
        # it never tried waits for its lease, then goes once.
        assert team.deliver_pending() == []
        assert len(team.pending_messages()) == 1
        clock.advance(LEASE * 3)
        assert [r.status for r in team.deliver_pending()] == ["sent"]
        clock.advance(LEASE * 3)
        assert team.deliver_pending() == []
        assert [mailer.to(a) for a in ("o@example.org", "a@example.org")] == [1, 1]
        team.close()


class KillingMailer(MemoryMailer):
    """Delivers, then (once armed) has the server end the store's connections, as a
    restart or a failover does while the mail is on its way."""

    def __init__(self, schema: str) -> None:
        super().__init__()
        self.schema = schema
        self.armed = False

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        if self.armed:
            self.armed = False
            import psycopg

            with psycopg.connect(postgres_conninfo(), autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND application_name = %s",
                    (self.schema,),
                ).fetchone()
            assert killed is not None
            assert killed[0] >= 1


@pytest.mark.postgres
def test_postgres_connection_lost_while_recording_a_sent_invitation(
    tmp_path: Path, clock: FrozenClock
) -> None:
    import psycopg.conninfo

    from teamaccess import PostgresStore

    schema = prepare_postgres_schema(tmp_path)
    # Named, so the mailer ends this store's connections and no other.
    conninfo = psycopg.conninfo.make_conninfo(postgres_conninfo(), application_name=schema)
    store = PostgresStore(conninfo, schema=schema, max_size=1)
    mailer = KillingMailer(schema)
    try:
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock)
        account = team.create_account(name="Muster", owner_id="owner", owner_email="o@ex.org")
        mailer.armed = True
        inv = team.invite(
            account.id, actor_id="owner", email="new@example.org", permissions=PermissionSet.all()
        )
        assert inv.token is not None
        assert len(mailer.outbox) == 1
        assert team.deliver_pending() == []  # records the sent mail on a new connection
        clock.advance(LEASE * 3)
        assert team.deliver_pending() == []
        assert len(mailer.outbox) == 1
        assert team.accept_invitation(inv.token, user_id="new", email="new@example.org")
    finally:
        store.close()
        drop_postgres_schema(tmp_path)


@pytest.mark.postgres
def test_postgres_refusing_new_connections_is_named_not_blamed_on_the_pool(
    tmp_path: Path,
) -> None:
    """A server that refuses new connections (its max_connections, a role's CONNECTION
    LIMIT) is what the error names, not a pool too small: a larger pool would make it
    worse. Once it accepts again, the store's pool reconnects by itself."""
    import psycopg
    import psycopg.conninfo

    from teamaccess import PostgresStore

    schema = postgres_schema(tmp_path)  # made by the role's store, dropped here
    role = f"r{schema}"
    admin = psycopg.connect(postgres_conninfo(), autocommit=True)
    superuser = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if superuser.fetchone() != (True,):
        admin.close()
        pytest.skip("needs a superuser on the test server to make a role with a limit")
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'GRANT CREATE ON DATABASE "{admin.info.dbname}" TO "{role}"')
    conninfo = psycopg.conninfo.make_conninfo(postgres_conninfo(), user=role)
    store = PostgresStore(conninfo, schema=schema, max_size=1, timeout=1)
    try:
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        account = team.create_account(name="Muster", owner_id="owner", owner_email="o@ex.org")
        admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        messages = []
        for _ in range(2):  # the call the lost connection breaks, then one that waits
            with pytest.raises(StorageError) as refused:
                team.can("owner", account.id, "billing.view")
            messages.append(str(refused.value))
        assert "too many connections" in messages[-1]
        assert "larger pool" not in messages[-1]
        assert "CONNECTION LIMIT" in messages[-1]
        assert all(role not in m or "password" not in m for m in messages)
        admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        for _ in range(10):  # the pool's reconnection backs off for a second or so
            try:
                assert team.can("owner", account.id, "billing.view")
                break
            except StorageError:
                continue
        else:
            pytest.fail("the store did not reconnect once the server accepted connections")
    finally:
        store.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        admin.execute(f'REVOKE CREATE ON DATABASE "{admin.info.dbname}" FROM "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


# A child with a file size limit, as a disk quota or a full disk under a limit looks to
# SQLite: writes fail with EFBIG (the signal that would kill the process is ignored).
FILE_SIZE_CHILD = """
import json, resource, signal, sys
from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess
path, limit = sys.argv[1], int(sys.argv[2])
team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key="k" * 32)
account = team.accounts_for("o")[0]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    team.invite(account.id, actor_id="o", email="new@example.org",
                permissions=PermissionSet.all())
    out = {"ok": True}
except Exception as exc:
    out = {"error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
           "message": str(exc)}
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
out["mails"] = len(team._mailer.outbox)
out["after"] = team.invite(account.id, actor_id="o", email="new@example.org",
                           permissions=PermissionSet.all()).email
print(json.dumps(out))
"""


def test_a_file_size_limit_is_named_and_leaves_nothing_written(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    if not hasattr(__import__("signal"), "SIGXFSZ"):
        pytest.skip("no file size limits on this system")
    path = tmp_path / "team.db"
    team = TeamAccess(SQLiteStore(path), MemoryMailer(), secret_key=SECRET)
    team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    team.close()
    limit = 4096  # less than one WAL frame: the commit cannot be written
    proc = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_CHILD, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "StorageError" in out["mro"], out
    assert "could not be written" in out["message"]
    assert "quota" in out["message"]
    assert "check the file and retry" not in out["message"]
    # Nothing of the failed call: no mail, and the second invite() was not AlreadyInvited.
    assert out["mails"] == 0
    assert out["after"] == "new@example.org"
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT count(*) FROM invitations").fetchone() == (1,)
    check.close()


def fill(out: BinaryIO) -> None:
    while True:
        out.write(b"\0" * 4096)


@pytest.mark.postgres
def test_postgres_server_disk_full_is_named_and_leaves_nothing_written(tmp_path: Path) -> None:
    """The server's disk full (here: a tablespace on a 1 MiB tmpfs that is filled up) is
    a server without space, not "a lost connection": retrying at once changes nothing,
    freeing space does. Nothing of the call stays; the next call after works."""
    import os
    import subprocess
    import tempfile

    import psycopg

    from teamaccess import PostgresStore

    admin = psycopg.connect(postgres_conninfo(), autocommit=True)
    datadir = admin.execute("SHOW data_directory").fetchone()
    if datadir is None or not os.path.isdir(datadir[0]) or os.geteuid() != 0:
        admin.close()
        pytest.skip("needs root and a superuser on a local test server (a tablespace on tmpfs)")
    # Under /tmp, not the test's directory: the server's user must reach it.
    space = Path(tempfile.mkdtemp(prefix="teamaccess-space-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(space)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        admin.close()
        space.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    schema = postgres_schema(tmp_path)
    tablespace = f"ts_{schema}"
    store = None
    try:
        owner = os.stat(datadir[0])
        os.chown(space, owner.st_uid, owner.st_gid)
        admin.execute(f"CREATE TABLESPACE \"{tablespace}\" LOCATION '{space}'")
        store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        account = team.create_account(name="Muster", owner_id="owner", owner_email="o@ex.org")
        admin.execute(f'ALTER TABLE "{schema}".contacts SET TABLESPACE "{tablespace}"')
        filler = space / "filler"
        with filler.open("wb", buffering=0) as out, pytest.raises(OSError, match="No space"):
            fill(out)

        def add_until_it_fails() -> None:
            for n in range(100):  # the table's first page fills after a few rows
                team.add_contact(
                    account.id, actor_id="owner", name="X" * 200, email=f"c{n}@example.org",
                    categories=["billing"],
                )  # fmt: skip

        with pytest.raises(StorageError) as full:
            add_until_it_fails()
        message = str(full.value)
        assert "lost its connection" not in message
        assert "disk" in message
        assert "free space" in message
        stored = len(team.contacts(account.id))
        events = len(team.audit_log(account.id, limit=1000))
        assert events == 1 + stored  # each stored contact has its event; the failed none
        filler.unlink()
        team.add_contact(
            account.id, actor_id="owner", name="After", email="after@example.org",
            categories=["billing"],
        )  # fmt: skip
        assert team.contacts(account.id)[-1].name == "After"
    finally:
        if store is not None:
            store.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.execute(f'DROP TABLESPACE IF EXISTS "{tablespace}"')
        # Lazily: should the server still hold a file there, the mount goes once it lets go.
        subprocess.run(["umount", "-l", str(space)], check=False)
        with contextlib.suppress(OSError):
            space.rmdir()
        admin.close()

"""``retry_waiting()`` and ``teamaccess deliver --retry-now``: mail waiting out its retry
backoff is made due now, and a message a live worker holds (its lease) never is: a real
second worker process holds a lease on a SQLite file and on PostgreSQL, its message held
in hand by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, drop_postgres_schema, postgres_conninfo, prepare_postgres_schema
from tests.smtp_server import HOST, SmtpServer, free_port
from tests.test_cli_postgres import to_url

from teamaccess import (
    SYSTEM,
    AccountNotFound,
    DeliveryFailed,
    MemoryStore,
    PermissionDenied,
    PermissionSet,
    PostgresStore,
    SmtpMailer,
    SQLiteStore,
    StorageError,
    Store,
    TeamAccess,
)
from teamaccess.testing import FailingMailer

ACCEPT = "https://panel.example.com/accept?token={token}"
SENDER = "Panel <noreply@panel.example.com>"
P = PermissionSet.of("billing.view")


class Backend:
    """A database for the in-process teams and, for a file or a server, the command's
    environment that opens the same one."""

    def __init__(self, make: Callable[[], Store], env: dict[str, str] | None) -> None:
        self.make = make
        self.env = env
        self._shared: Store | None = None

    def store(self) -> Store:
        if self.env is None:  # MemoryStore: one store for every team of the test
            if self._shared is None:
                self._shared = self.make()
            return self._shared
        return self.make()

    def done(self, team: TeamAccess) -> None:
        """Close *team*, unless its store is the one every team of the test shares."""
        if self.env is not None:
            team.close()


def _backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind == "memory":
        yield Backend(MemoryStore, None)
    elif kind == "sqlite":
        db = tmp_path / "team.db"
        yield Backend(lambda: SQLiteStore(db), {"TEAMACCESS_DB": str(db)})
    else:
        conninfo = postgres_conninfo()
        schema = prepare_postgres_schema(tmp_path)
        env = {"TEAMACCESS_DB": to_url(conninfo), "TEAMACCESS_SCHEMA": schema}
        yield Backend(lambda: PostgresStore(conninfo, schema=schema, max_size=2), env)
        drop_postgres_schema(tmp_path)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, tmp_path)


def team_on(store: Store, port: int) -> TeamAccess:
    """A panel that only queues its mail (a worker sends it), with an SmtpMailer."""
    return TeamAccess(
        store, SmtpMailer(HOST, port), secret_key=SECRET, delivery="queue",
        accept_url=ACCEPT, sender=SENDER,
    )  # fmt: skip


def waiting_invitation(backend: Backend) -> tuple[str, str]:
    """An account and the outbox id of an invitation mail whose send failed (nothing
    listened), waiting out its backoff."""
    team = team_on(backend.store(), free_port())
    acc = team.create_account(name="Muster", owner_id="max", owner_email="max@muster.de")
    team.invite(acc.id, actor_id="max", email="a@example.org", permissions=P)
    (failed,) = team.deliver_pending()
    assert failed.status == "pending"
    assert failed.attempts == 1
    assert failed.next_attempt_at > team.now()
    assert failed.leased_until is None
    backend.done(team)
    return acc.id, failed.id


class TestRetryWaiting:
    def test_waiting_mail_is_due_now_and_audited(self, backend: Backend) -> None:
        account_id, message_id = waiting_invitation(backend)
        with SmtpServer() as server:
            team = team_on(backend.store(), server.port)
            (before,) = team.pending_messages()
            (made,) = team.retry_waiting(actor_id=SYSTEM, account_id=account_id)
            assert made.id == message_id
            assert made.next_attempt_at <= team.now()
            assert made.leased_until is None
            assert made.attempts == before.attempts
            assert made.last_error == before.last_error
            (event,) = [e for e in team.audit_log(account_id) if e.action == "mail.retried_now"]
            assert (event.actor_id, event.target) == (SYSTEM, account_id)
            assert event.details == {"messages": [message_id], "count": 1}
            # Nothing waits any more: a second call moves nothing and writes nothing.
            assert team.retry_waiting(actor_id=SYSTEM) == []
            assert [e.action for e in team.audit_log(account_id)].count("mail.retried_now") == 1
            (sent,) = team.deliver_pending()
            assert (sent.id, sent.status) == (message_id, "sent")
            assert [r.rcpt_tos for r in server.received] == [["a@example.org"]]
            backend.done(team)

    def test_only_the_vendor_may(self, backend: Backend) -> None:
        account_id, _ = waiting_invitation(backend)
        team = team_on(backend.store(), free_port())
        (before,) = team.pending_messages()
        # The owner of the very account is refused too: retrying is the operator's call.
        for account in (account_id, None):
            with pytest.raises(PermissionDenied, match=r"only the vendor \(teamaccess.SYSTEM\)"):
                team.retry_waiting(actor_id="max", account_id=account)
        with pytest.raises(AccountNotFound):
            team.retry_waiting(actor_id=SYSTEM, account_id="acc_nope")
        assert team.pending_messages() == [before]
        assert "mail.retried_now" not in [e.action for e in team.audit_log(account_id)]
        backend.done(team)

    def test_closed_mail_stays_closed(self, backend: Backend) -> None:
        with SmtpServer(rcpt_replies={"weg@example.org": "550 5.1.1 no such user"}) as server:
            team = team_on(backend.store(), server.port)
            team.give_up_after = 1
            acc = team.create_account(name="M", owner_id="max", owner_email="max@muster.de")
            team.invite(acc.id, actor_id="max", email="weg@example.org", permissions=P)
            (closed,) = team.deliver_pending()
            assert closed.status == "cancelled"
            assert team.retry_waiting(actor_id=SYSTEM) == []
            assert team.undeliverable_messages() == [closed]
            backend.done(team)

    def test_mail_a_call_is_sending_itself_is_not_made_due(self, backend: Backend) -> None:
        # delivery="now": the row is held by the call that wrote it while it sends; a
        # failure is recorded, and then the row waits (and may be retried).
        with SmtpServer(block_at=1) as server:
            team = TeamAccess(backend.store(), SmtpMailer(HOST, server.port),
                              secret_key=SECRET, accept_url=ACCEPT, sender=SENDER)  # fmt: skip
            acc = team.create_account(name="M", owner_id="max", owner_email="max@muster.de")
            operator = team_on(backend.store(), server.port)
            result: list[object] = []
            invite = {"actor_id": "max", "email": "a@example.org", "permissions": P}
            inviting = threading.Thread(
                target=lambda: result.append(_outcome(team.invite, acc.id, **invite))
            )
            inviting.start()
            assert server.blocked.wait(30)
            (held,) = operator.pending_messages()
            assert held.leased_until is not None
            assert held.leased_until > operator.now()
            assert operator.retry_waiting(actor_id=SYSTEM) == []
            assert operator.deliver_pending() == []  # not due: its sender holds it
            server.release(accept=False)
            inviting.join(30)
            assert isinstance(result[0], DeliveryFailed)
            (waiting,) = operator.pending_messages()
            assert waiting.leased_until is None
            assert [m.id for m in operator.retry_waiting(actor_id=SYSTEM)] == [held.id]
            (sent,) = operator.deliver_pending()
            assert sent.status == "sent"
            backend.done(operator)
            backend.done(team)


def _outcome(call: Callable[..., object], *args: object, **kwargs: object) -> object:
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        return exc


def command(backend: Backend, port: int, *args: str) -> subprocess.Popen[str]:
    """``teamaccess deliver`` in a process of its own, on the backend's database."""
    assert backend.env is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "teamaccess", "--mail", f"smtp://{HOST}:{port}?security=plain",
         "--accept-url", ACCEPT, "--sender", SENDER, "deliver", "--json", *args],
        env={**clean, **backend.env, "TEAMACCESS_SECRET_KEY": SECRET},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database other processes open too."""
    yield from _backend(request.param, tmp_path)


class TestRetryNowBesideALiveWorker:
    def test_a_leased_message_is_never_made_due_nor_sent_twice(self, shared: Backend) -> None:
        account_id, waiting_id = waiting_invitation(shared)
        team = team_on(shared.store(), free_port())
        team.invite(account_id, actor_id="max", email="b@example.org", permissions=P)
        (held_id,) = [m.id for m in team.pending_messages() if m.id != waiting_id]
        with SmtpServer(block_at=1) as server:
            # The worker claims the one due message and sends it; the server holds the
            # reply, so the worker holds the message (and its lease) in hand.
            worker = command(shared, server.port)
            try:
                assert server.blocked.wait(60), worker.stderr.read() if worker.stderr else ""
                leased = {m.id: m for m in team.pending_messages()}[held_id]
                assert leased.leased_until is not None
                assert leased.leased_until > team.now()
                # The operator fixed the mail setting: the waiting message goes now, the
                # one in the worker's hand stays the worker's.
                retry = command(shared, server.port, "--retry-now")
                out, err = retry.communicate(timeout=120)
                assert retry.returncode == 0, err
                result = json.loads(out)
                assert result["retried"] == [waiting_id]
                assert [(m["id"], m["status"]) for m in result["messages"]] == [
                    (waiting_id, "sent")
                ]
                assert {m.id: m for m in team.pending_messages()}[held_id] == leased
            finally:
                server.release(accept=True)
                out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            assert [m["id"] for m in json.loads(out)["messages"]] == [held_id]
            got = sorted(r.rcpt_tos[0] for r in server.received)
            assert got == ["a@example.org", "b@example.org"]
        assert team.pending_messages() == []
        events = [e for e in team.audit_log(account_id) if e.action == "mail.retried_now"]
        assert [(e.actor_id, e.details["messages"]) for e in events] == [(SYSTEM, [waiting_id])]
        shared.done(team)

    def test_usage(self, shared: Backend) -> None:
        for args, says in (
            (("--list", "--retry-now"), "--list only shows what waits"),
            (("--account", "acc_x"), "--account goes with --list or --retry-now"),
        ):
            proc = command(shared, free_port(), *args)
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 2, err
            assert says in err


class TestRetryNowWithTheWorker:
    def test_watch_makes_waiting_mail_due_once_then_works(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        backend = Backend(lambda: SQLiteStore(db), {"TEAMACCESS_DB": str(db)})
        _, waiting_id = waiting_invitation(backend)
        with SmtpServer() as server:
            worker = command(backend, server.port, "--watch", "--retry-now", "--interval", "0.05")
            try:
                assert worker.stdout is not None
                assert json.loads(worker.stdout.readline()) == {"retried": [waiting_id]}
                batch = json.loads(worker.stdout.readline())
                assert batch["delivered"] == 1
            finally:
                worker.send_signal(signal.SIGTERM)
                _out, err = worker.communicate(timeout=60)
            assert worker.returncode == 130, err
            assert [r.rcpt_tos for r in server.received] == [["a@example.org"]]

    def test_an_unknown_account_exits_4_and_moves_nothing(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        backend = Backend(lambda: SQLiteStore(db), {"TEAMACCESS_DB": str(db)})
        waiting_invitation(backend)
        team = team_on(backend.store(), free_port())
        before = team.pending_messages()
        proc = command(backend, free_port(), "--retry-now", "--account", "acc_nope")
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        assert "acc_nope" in err
        assert team.pending_messages() == before
        team.close()


class _UnitBeforeTheLease:
    """A unit of a backend written before ``retry_outbox()``: everything else passes on."""

    def __init__(self, uow: object) -> None:
        self._uow = uow

    def __getattr__(self, name: str) -> object:
        if name == "retry_outbox":
            raise AttributeError(name)
        return getattr(self._uow, name)


class _StoreBeforeTheLease(MemoryStore):
    def begin(self, *, durable: bool = True) -> Any:
        @contextmanager
        def unit() -> Iterator[object]:
            with MemoryStore.begin(self, durable=durable) as uow:
                yield _UnitBeforeTheLease(uow)

        return unit()


def test_a_store_without_retry_outbox_is_refused_and_nothing_moves() -> None:
    """retry_waiting() emulated retry_outbox() with outbox() and update_outbox(): on a
    store that does not keep leased_until, that made mail a worker was sending due again,
    and it went out twice."""
    mailer = FailingMailer()
    team = TeamAccess(_StoreBeforeTheLease(), mailer, secret_key=SECRET)
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    with pytest.raises(DeliveryFailed):
        team.invite(account.id, actor_id="owner", email="a@example.org",
                    permissions=PermissionSet.of("billing.view"))  # fmt: skip
    before = team.pending_messages()
    (waiting,) = before
    assert waiting.next_attempt_at > team.now()
    with pytest.raises(StorageError, match=r"does not implement UnitOfWork.retry_outbox\(\)"):
        team.retry_waiting(actor_id=SYSTEM)
    assert team.pending_messages() == before
    assert "mail.retried_now" not in [e.action for e in team.audit_log(account.id)]

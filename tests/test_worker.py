"""The delivery worker as it runs in production: real processes of the installed
``teamaccess deliver --watch`` on one SQLite file, sending to a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import HOST, SmtpServer

from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).with_name("teamaccess"))
ACCEPT_URL = "https://panel.muster.example.com/accept?token={token}"
SENDER = "Panel <noreply@muster.example.com>"


def queue_mail(db: Path, contacts: int, invitations: int = 0) -> set[str]:
    """Queue one notice to the owner and *contacts* contacts, and *invitations*
    invitations; the Message-IDs of every queued message."""
    team = TeamAccess(
        SQLiteStore(db), MemoryMailer(), secret_key=SECRET, delivery="queue",
        accept_url=ACCEPT_URL, sender=SENDER,
    )  # fmt: skip
    try:
        account = team.create_account(
            name="Muster GmbH", owner_id="max", owner_email="chef@muster.example.com"
        )
        for n in range(contacts):
            team.add_contact(
                account.id, actor_id="max", name=f"C{n}", email=f"c{n}@example.org",
                categories=["billing"],
            )  # fmt: skip
        for n in range(invitations):
            team.invite(
                account.id, actor_id="max", email=f"i{n}@example.org",
                permissions=PermissionSet.of("billing.view"),
            )  # fmt: skip
        team.notify(account.id, "billing", subject="Invoice 42", text="ready")
        return {m.message_id for m in team.pending_messages()}
    finally:
        team.close()


def outbox_rows(db: Path) -> dict[str, tuple[str, int]]:
    """message_id -> (status, attempts), read from the file."""
    store = SQLiteStore(db)
    try:
        with store.read() as uow:
            return {m.message_id: (m.status, m.attempts) for m in uow.outbox()}
    finally:
        store.close()


def worker(db: Path, server: SmtpServer, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TEAMACCESS_SECRET_KEY": SECRET}
    for name in ("TEAMACCESS_MAIL", "TEAMACCESS_OUTBOX", "TEAMACCESS_SMTP_HOST"):
        env.pop(name, None)
    return subprocess.Popen(
        [COMMAND, "--db", str(db), "--mail", f"smtp://{HOST}:{server.port}?security=plain",
         "--accept-url", ACCEPT_URL, "--sender", SENDER,
         "deliver", "--watch", "--interval", "0.05", "--max-interval", "0.2", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def handles_sigterm(proc: subprocess.Popen[str]) -> bool:
    """Whether *proc* has its own SIGTERM handler yet (Linux: the SigCgt mask); a signal
    sent before, while a loaded machine still imports, would kill it outright."""
    if not Path("/proc/self/status").exists():  # not Linux: give it a second, as before
        time.sleep(1)
        return True
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return proc.poll() is not None  # gone: let the assertions say how it ended
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def received_ids(server: SmtpServer) -> list[str]:
    return [str(r.message["Message-ID"]) for r in server.received]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "teamaccess.db"


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to kill if a test fails before it stops them."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # closes its pipes


class TestTwoWorkers:
    """Two worker processes drain one outbox: every message arrives exactly once."""

    def test_no_message_is_sent_twice(self, db: Path, stopped: list[subprocess.Popen[str]]) -> None:
        queued = queue_mail(db, contacts=59, invitations=10)
        assert len(queued) == 70
        # A few milliseconds per message, so the two workers' batches overlap in time.
        with SmtpServer(delay=0.005) as server:
            workers = [worker(db, server, "--limit", "5") for _ in range(2)]
            stopped.extend(workers)
            wait_for(lambda: len(server.received) >= len(queued), "every message")
            time.sleep(0.5)  # a duplicate would have time to arrive
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            outputs = [proc.communicate(timeout=30) for proc in workers]
        ids = received_ids(server)
        assert sorted(ids) == sorted(queued)  # each exactly once
        assert [proc.returncode for proc in workers] == [130, 130]
        assert set(outbox_rows(db).values()) == {("sent", 1)}
        lines = [line for out, _ in outputs for line in out.splitlines()]
        # one line per batch, saying where the mail went
        assert lines
        assert all(f"sent to SMTP server {HOST}:{server.port}" in line for line in lines)
        assert sum(int(line.split(" UTC  ")[1].split()[0]) for line in lines) == 70
        # both took part
        assert all(out.strip() for out, _ in outputs), outputs


class TestKilledWorker:
    """A worker killed mid-batch leaves the rest, and the message in hand, to the next
    worker once its lease ends; nothing arrives twice."""

    def test_the_rest_is_delivered_after_the_lease(
        self, db: Path, stopped: list[subprocess.Popen[str]]
    ) -> None:
        queued = queue_mail(db, contacts=11, invitations=2)
        with SmtpServer(block_at=4) as server:
            first = worker(db, server, "--lease", "3")
            stopped.append(first)
            # The fourth message is on the wire, its reply held back: kill the worker now.
            wait_for(server.blocked.is_set, "the fourth message")
            assert len(server.received) == 3
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed_at = time.monotonic()
            server.release(accept=False)  # a 451 to a dead connection: nothing kept
            second = worker(db, server, "--lease", "3")
            stopped.append(second)
            wait_for(lambda: len(server.received) >= len(queued), "every message")
            done_at = time.monotonic()
            time.sleep(0.5)
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=30)
        assert second.returncode == 130
        assert sorted(received_ids(server)) == sorted(queued)
        # The killed worker's messages waited for its lease (3 s from its claim).
        assert done_at - killed_at > 1
        assert set(outbox_rows(db).values()) == {("sent", 1)}


class TestStopping:
    """SIGTERM and Ctrl-C end the worker after the message in hand, with exit status 130."""

    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
    def test_finishes_the_message_in_hand(
        self, db: Path, stopped: list[subprocess.Popen[str]], signum: int
    ) -> None:
        queued = queue_mail(db, contacts=5)
        with SmtpServer(block_at=2) as server:
            proc = worker(db, server)
            stopped.append(proc)
            wait_for(server.blocked.is_set, "the second message")
            proc.send_signal(signum)
            time.sleep(0.3)  # the signal arrives while the message is in hand
            assert proc.poll() is None
            server.release(accept=True)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err == ""
        assert len(server.received) == 2  # the one in hand was finished, no more begun
        rows = outbox_rows(db)
        assert sorted(rows.values()) == [("pending", 0)] * 4 + [("sent", 1)] * 2
        assert len(queued) == 6
        [line] = out.splitlines()  # one batch, one line
        assert " UTC  2 sent to SMTP server" in line

    def test_an_idle_worker_stops_at_once(
        self, db: Path, stopped: list[subprocess.Popen[str]]
    ) -> None:
        # An empty database, as `teamaccess migrate` leaves it: the worker refuses a
        # missing one instead of creating it.
        env = {**os.environ, "TEAMACCESS_SECRET_KEY": SECRET}
        subprocess.run([COMMAND, "--db", str(db), "migrate"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        with SmtpServer() as server:
            proc = worker(db, server, "--interval", "30", "--max-interval", "30")
            stopped.append(proc)
            wait_for(lambda: handles_sigterm(proc), "the worker's SIGTERM handler")
            time.sleep(0.5)  # into its idle wait
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 130
        assert time.monotonic() - started < 5
        assert (out, err) == ("", "")

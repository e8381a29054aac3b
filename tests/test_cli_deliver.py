"""``teamaccess deliver`` against a real SMTP server (aiosmtpd) and a SQLite file:
``--give-up-after`` closes what the server refuses for good, and a one-off run whose
database fails after the server took a message records that send before it exits, or
names the messages that may go twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.smtp_server import HOST, SmtpServer, free_port

from teamaccess import PermissionSet, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess.testing import FrozenClock

DEAD = "weg@example.org"  # the server answers 550 5.1.1 to RCPT TO for it
NO_USER = "550 5.1.1 <weg@example.org>: no such user"
LINKS = (
    "--accept-url", "https://panel.example.com/accept?token={token}",
    "--sender", "Panel <noreply@panel.example.com>",
)  # fmt: skip


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(rcpt_replies={DEAD: NO_USER}) as server:
        yield server


def queued(db: Path, server: SmtpServer, *recipients: str) -> None:
    """An account whose billing contacts *recipients* each have a notice waiting."""
    team = TeamAccess(
        SQLiteStore(db), SmtpMailer(HOST, server.port), secret_key=SECRET, delivery="queue",
        accept_url="https://panel.example.com/accept?token={token}",
        sender="Panel <noreply@panel.example.com>",
    )  # fmt: skip
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="m@muster.de")
    for i, email in enumerate(recipients):
        team.add_contact(account.id, actor_id="max", name=f"K{i}", email=email,
                         categories=["billing"])  # fmt: skip
    team.notify(account.id, "billing", subject="Rechnung", text="Ihre Rechnung")
    team.close()


def deliver(
    db: Path, server: SmtpServer | int, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The command on *server* (or on a port number where nothing may listen)."""
    port = server if isinstance(server, int) else server.port
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "teamaccess", "--db", str(db), "--mail",
         f"smtp://{HOST}:{port}?security=plain", *LINKS, "deliver", *args],
        env={**clean, "TEAMACCESS_SECRET_KEY": SECRET, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def once(
    db: Path, server: SmtpServer, *args: str, env: dict[str, str] | None = None, code: int = 0
) -> dict[str, Any]:
    proc = deliver(db, server, "--json", *args, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    result: dict[str, Any] = json.loads(out)
    return result


class TestGiveUpAfter:
    """--give-up-after N (TEAMACCESS_GIVE_UP_AFTER) closes a message refused N times."""

    def test_one_closes_at_the_first_refusal(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, DEAD, "k@example.org")
        result = once(db, smtp, "--give-up-after", "1", code=11)  # the others went
        rows = {r["recipient"]: r for r in result["messages"]}
        assert rows[DEAD]["status"] == "cancelled"
        assert rows[DEAD]["last_error"].startswith("undeliverable: refused for good 1 time(s)")
        assert NO_USER in rows[DEAD]["last_error"]
        assert rows["k@example.org"]["status"] == "sent"
        assert (result["cancelled"], result["delivered"]) == (1, 2)  # the owner's and k's
        assert [m.rcpt_tos for m in smtp.received if DEAD in m.rcpt_tos] == []
        assert ("RCPT", DEAD) in smtp.answered
        proc = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--list",
             "--undeliverable", "--json"],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")},
        )  # fmt: skip
        [closed] = json.loads(proc.stdout)
        assert closed["recipient"] == DEAD

    @pytest.mark.parametrize(
        ("args", "env", "closed_at"),
        [
            ((), {}, 12),
            (("--give-up-after", "3"), {}, 3),
            ((), {"TEAMACCESS_GIVE_UP_AFTER": "5"}, 5),
            (("--give-up-after", "4"), {"TEAMACCESS_GIVE_UP_AFTER": "1"}, 4),
        ],
    )
    def test_counted_against_the_option_the_variable_or_twelve(
        self,
        tmp_path: Path,
        smtp: SmtpServer,
        args: tuple[str, ...],
        env: dict[str, str],
        closed_at: int,
    ) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, DEAD)
        result = once(db, smtp, *args, env=env, code=11)  # the owner's went
        rows = {r["recipient"]: r for r in result["messages"]}
        assert rows[DEAD]["status"] == "pending"
        assert rows[DEAD]["last_error"].startswith(
            f"refused for good (1 in a row; closed at {closed_at})"
        )

    def test_the_watch_worker_closes_too(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, DEAD)
        proc = deliver(db, smtp, "--watch", "--interval", "0.2",
                       env={"TEAMACCESS_GIVE_UP_AFTER": "1"})  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and ("RCPT", DEAD) not in smtp.answered:
                time.sleep(0.1)
            time.sleep(0.5)  # the record after the refusal
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
        assert proc.returncode == 130
        with sqlite3.connect(db) as con:
            [(status, error)] = con.execute(
                "SELECT status, last_error FROM outbox WHERE recipient = ?", (DEAD,)
            ).fetchall()
        assert status == "cancelled"
        assert error.startswith("undeliverable: ")


class TestExitStatus:
    """A one-off run says by its exit status whether its mail went: 0 all of it (or there
    was none), 9 none of it, 11 only some. The summary goes to stdout all the same."""

    def test_all_sent_is_0(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, "k@example.org")
        assert once(db, smtp)["delivered"] == 2
        # and a run with nothing due
        assert once(db, smtp)["messages"] == []

    def test_a_server_that_is_down_is_9(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        with SmtpServer() as server:
            queued(db, server, "k@example.org")
        down = free_port()  # nothing listens there
        proc = deliver(db, down)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 9, err
        assert out.endswith(f"0 sent to SMTP server {HOST}:{down}, 2 failed (retried "
                            "later); 2 still waiting\n")  # fmt: skip
        assert err == (
            "error: nothing could be sent: 2 failed and wait to be retried "
            "('teamaccess deliver --list')\n"
        )
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT DISTINCT status FROM outbox").fetchall() == [("pending",)]

    def test_a_server_that_refuses_every_recipient_is_9(self, tmp_path: Path) -> None:
        owner = "m@muster.de"
        with SmtpServer(rcpt_replies={DEAD: NO_USER, owner: NO_USER}) as server:
            db = tmp_path / "team.db"
            queued(db, server, DEAD)
            result = once(db, server, code=9)
            assert (result["delivered"], result["failed"]) == (0, 2)
            assert server.received == []
            # closed at the first refusal: still nothing sent, and it says so (the two
            # refused before wait for their retry, so only the new two are due)
            queued(db, server, DEAD)
            proc = deliver(db, server, "--give-up-after", "1")
            _, err = proc.communicate(timeout=120)
        assert proc.returncode == 9, err
        assert err == ("error: nothing could be sent: 2 refused for good and closed, not retried\n")

    def test_some_sent_is_11(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, DEAD, "k@example.org")
        proc = deliver(db, smtp)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 11, err
        assert out.endswith(", 1 failed (retried later); 1 still waiting\n")
        assert err == (
            "error: 1 of 3 message(s) could not be sent: 1 failed and wait to be retried "
            "('teamaccess deliver --list')\n"
        )
        assert [m.rcpt_tos for m in smtp.received] == [["m@muster.de"], ["k@example.org"]]

    def test_a_cancelled_invitation_is_no_failure(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        # Invited three weeks ago, and the mail never went: the invitation has expired,
        # so the run cancels its mail instead of sending a dead link. Nothing failed.
        team = TeamAccess(
            SQLiteStore(db), SmtpMailer(HOST, smtp.port), secret_key=SECRET, delivery="queue",
            accept_url="https://panel.example.com/accept?token={token}",
            sender="Panel <noreply@panel.example.com>",
            clock=FrozenClock(datetime.now(UTC) - timedelta(days=21)),
        )  # fmt: skip
        try:
            account = team.create_account(name="M", owner_id="max", owner_email="m@muster.de")
            team.invite(account.id, actor_id="max", email="dev@example.org",
                        permissions=PermissionSet.none())  # fmt: skip
        finally:
            team.close()
        result = once(db, smtp)
        assert [r["status"] for r in result["messages"]] == ["cancelled"]
        assert smtp.received == []


class TestSendsRecordedBeforeExit:
    """A one-off run whose database fails after the server took a message retries the
    record, and says which messages went and whether they may go again."""

    def run_with_the_database_locked(
        self, tmp_path: Path, unlock_after: float | None
    ) -> tuple[subprocess.Popen[str], str, Path]:
        db = tmp_path / "team.db"
        with SmtpServer(block_at=1) as server:
            queued(db, server)  # the owner's notice only
            proc = deliver(db, server)
            assert server.blocked.wait(60), "the message never reached the server"
            locker = sqlite3.connect(db, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            server.release(accept=True)  # the server takes it; recording it fails
            try:
                if unlock_after is not None:
                    time.sleep(unlock_after)
                    locker.execute("ROLLBACK")
                _, err = proc.communicate(timeout=120)
            finally:
                locker.close()
            assert len(server.received) == 1
        return proc, err, db

    def test_recorded_on_a_retry(self, tmp_path: Path) -> None:
        # The first record waits out the 5 s busy timeout; the retry finds the lock gone.
        proc, err, db = self.run_with_the_database_locked(tmp_path, unlock_after=6.5)
        assert proc.returncode == 10, err
        with sqlite3.connect(db) as con:
            [(msg_id, status)] = con.execute("SELECT id, status FROM outbox").fetchall()
        assert status == "sent"
        assert err == (
            "error: the database failed during delivery (the teamaccess database "
            f"{db} is locked by another connection and stayed locked past the 5.0 s "
            "timeout; retry once the other process is done (while starting a unit of work: "
            f"database is locked)); message(s) {msg_id} had gone out and were recorded on a "
            "retry, so they do not go again. The messages not tried wait until their lease "
            "ends (300 s); then run 'teamaccess deliver' again\n"
        )

    @pytest.mark.slow
    def test_named_when_every_retry_fails(self, tmp_path: Path) -> None:
        proc, err, db = self.run_with_the_database_locked(tmp_path, unlock_after=None)
        assert proc.returncode == 10, err
        with sqlite3.connect(db) as con:
            [(msg_id, status)] = con.execute("SELECT id, status FROM outbox").fetchall()
        assert status == "pending"
        assert err.startswith(f"error: message(s) {msg_id} went out, but the database failed")
        assert "also on 3 retries" in err
        assert "they may go out twice: once their lease ends (300 s after this run" in err


class TestInterrupted:
    """Ctrl-C stops a one-off run as it stops the worker: the message in hand is
    finished and recorded (never cut off unrecorded, to go twice), the rest handed back."""

    def test_the_message_in_hand_is_finished(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        with SmtpServer(block_at=1) as server:
            queued(db, server, "k1@example.org", "k2@example.org")
            proc = deliver(db, server, "--json")
            assert server.blocked.wait(60), "the first message never reached the server"
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)  # the signal lands while the reply is held back
            server.release(accept=True)
            out, err = proc.communicate(timeout=60)
            assert len(server.received) == 1
        assert proc.returncode == 130, err
        assert err == (
            "error: interrupted; the message in hand was finished and recorded, the rest "
            "wait for the next 'teamaccess deliver'\n"
        )
        result = json.loads(out)
        assert (result["delivered"], result["waiting"]) == (1, 2)
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT status, next_attempt_at FROM outbox").fetchall()
        assert sorted(status for status, _ in rows) == ["pending", "pending", "sent"]
        # handed back, due at once: not left to wait out the lease
        now = time.time()
        assert all(
            datetime.fromisoformat(due).timestamp() <= now
            for status, due in rows
            if status == "pending"
        )


def listing(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", *args],
        capture_output=True, text=True, timeout=120, env=clean,
    )  # fmt: skip


class TestListRefused:
    """`deliver --list --refused` shows what never went out: the messages the last check
    refused and those the server refused for good, with the reason and when."""

    def test_both_kinds_with_reason_and_when(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, DEAD, "k@example.org", "k2@example.org")
        with sqlite3.connect(db) as con:
            [(row_id, message)] = con.execute(
                "SELECT id, message FROM outbox WHERE recipient = 'k2@example.org'"
            ).fetchall()
            altered = bytes(message).replace(b"Subject:", b"Bcc: eve@example.com\nSubject:")
            con.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row_id))
        con.close()
        before = datetime.now(UTC)
        once(db, smtp, "--give-up-after", "1", code=11)
        after = datetime.now(UTC)

        proc = listing(db, "--list", "--refused", "--json")
        assert proc.returncode == 0, proc.stderr
        rows = {r["recipient"]: r for r in json.loads(proc.stdout)}
        assert sorted(rows) == ["k2@example.org", DEAD]  # not the sent ones
        assert rows["k2@example.org"]["id"] == row_id
        assert rows["k2@example.org"]["last_error"].startswith("refused before sending")
        assert rows[DEAD]["last_error"].startswith("undeliverable: refused for good 1")
        for row in rows.values():
            assert row["account_id"].startswith("acc_")
            assert before <= datetime.fromisoformat(row["closed_at"]) <= after

        table = listing(db, "--list", "--refused")
        assert table.returncode == 0, table.stderr
        header, _, *lines = table.stdout.splitlines()
        assert header.split() == ["ID", "ACCOUNT", "TO", "CLOSED", "REASON"]
        assert len(lines) == 2
        [line] = [x for x in lines if row_id in x]
        assert "k2@example.org" in line
        assert f"{after:%Y-%m-%d}" in line
        assert "refused before sending, and not retried" in line

        # --account narrows it; --undeliverable still shows only the server's refusals
        account = rows[DEAD]["account_id"]
        assert len(json.loads(listing(db, "--list", "--refused", "--account", account,
                                      "--json").stdout)) == 2  # fmt: skip
        [only] = json.loads(listing(db, "--list", "--undeliverable", "--json").stdout)
        assert only["recipient"] == DEAD

    def test_none_and_misuse(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, "k@example.org")
        empty = listing(db, "--list", "--refused")
        assert (empty.returncode, empty.stdout) == (0, "no refused messages\n")
        unknown = listing(db, "--list", "--refused", "--account", "acc_nope")
        assert unknown.returncode == 4, unknown.stderr
        alone = listing(db, "--refused")
        assert alone.returncode == 2
        assert "--refused goes with --list" in alone.stderr
        both = listing(db, "--list", "--refused", "--undeliverable")
        assert both.returncode == 2
        assert "give one of the two" in both.stderr


class TestZeroIsAUsageError:
    """`deliver --limit 0` and `purge --sent-mail 0` are refused alike (exit status 2, the
    option and its range named) and change nothing: the mail still waits, none is purged."""

    def test_deliver_limit_0_and_purge_sent_mail_0(self, tmp_path: Path, smtp: SmtpServer) -> None:
        db = tmp_path / "team.db"
        queued(db, smtp, "k@example.org")
        zero = deliver(db, smtp, "--limit", "0")
        _, err = zero.communicate(timeout=120)
        assert zero.returncode == 2
        assert err == (
            "error: invalid value for '--limit': 0 is not in the range x>=1; see "
            "'teamaccess deliver --help'\n"
        )
        assert smtp.received == []
        once(db, smtp)  # both go
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        purge = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "purge", "--sent-mail", "0"],
            capture_output=True, text=True, timeout=120, env=clean,
        )  # fmt: skip
        assert purge.returncode == 2
        assert purge.stderr == (
            "error: invalid value for '--sent-mail': 0 is not in the range 1<=x<=36525; see "
            "'teamaccess purge --help'\n"
        )
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT status FROM outbox").fetchall() == [("sent",), ("sent",)]
        con.close()


class TestPrivateCa:
    """A relay whose certificate comes from the vendor's own CA: SSL_CERT_FILE names it,
    as docs/cli.md says, and without it the stored error says so."""

    def run(self, db: Path, server: SmtpServer, env: dict[str, str]) -> dict[str, Any]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMACCESS_", "SSL_"))}
        proc = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "--mail",
             f"smtp://{HOST}:{server.port}?security=starttls", *LINKS, "deliver", "--json"],
            env={**clean, "TEAMACCESS_SECRET_KEY": SECRET, **env},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(proc.stdout)
        result["code"] = proc.returncode
        return result

    def test_ssl_cert_file_trusts_it(self, tmp_path: Path) -> None:
        from tests.smtp_server import Certificates

        certs = Certificates.create()
        ca = tmp_path / "ca.pem"
        certs.ca.cert_pem.write_to_path(str(ca))
        db = tmp_path / "team.db"
        with SmtpServer(mode="starttls", certs=certs) as server:
            queued(db, server, "k@example.org")
            refused = self.run(db, server, {})
            assert refused["code"] == 9
            assert "SSL_CERT_FILE" in refused["messages"][0]["last_error"]
            assert server.received == []
            with sqlite3.connect(db) as con:  # due again at once, not after the backoff
                con.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
            sent = self.run(db, server, {"SSL_CERT_FILE": str(ca)})
            assert sent["code"] == 0
            assert sent["delivered"] == 2
            assert all(r.tls for r in server.received)

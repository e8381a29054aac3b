"""The ``teamaccess`` command sends as ``deliver_pending()`` does with its mailer alone:
``deliver`` (once, and as the ``--watch`` worker) hands a queued row of the builder's plain
shape to ``SmtpMailer`` as its stored bytes, and every command still says where its mail
went. Real processes of the installed command, a SQLite file, a real SMTP server
(aiosmtpd)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.conftest import SECRET
from tests.smtp_server import HOST, SmtpServer

from teamaccess import MemoryMailer, PermissionSet, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._cli import cli
from teamaccess._cli.config import Settings

COMMAND = str(Path(sys.executable).with_name("teamaccess"))
SENDER = "Panel <noreply@panel.example.net>"
ACCEPT_URL = "https://panel.example.net/accept?token={token}"
EVERYONE = ["i@example.org", "k1@example.org", "k2@example.org", "o@example.org"]


def queue_mail(db: Path) -> None:
    """A billing notice to the owner and two contacts, and an invitation, all queued."""
    team = TeamAccess(
        SQLiteStore(db), MemoryMailer(), secret_key=SECRET, delivery="queue",
        sender=SENDER, accept_url=ACCEPT_URL,
    )  # fmt: skip
    try:
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        for address in ("k1@example.org", "k2@example.org"):
            team.add_contact(acc.id, actor_id="o", name="K", email=address, categories=["billing"])
        team.invite(acc.id, actor_id="o", email="i@example.org", permissions=PermissionSet.all())
        team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag")
    finally:
        team.close()


def long_subject(db: Path, recipient: str) -> bytes:
    """Give *recipient*'s queued row a subject of 108 characters on one line, as a mail
    program may store it (the builder folds it, and so does the standard library when it
    writes a message out again); the row's new bytes."""
    with sqlite3.connect(db) as conn:
        [(row_id, message)] = conn.execute(
            "SELECT id, message FROM outbox WHERE recipient = ?", (recipient,)
        ).fetchall()
        altered = bytes(message).replace(
            b"Subject: Rechnung", b"Subject: " + b" ".join([b"Rechnung"] * 12)
        )
        assert altered != message
        conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row_id))
    conn.close()
    return bytes(altered)


def outbox(db: Path) -> dict[str, tuple[str, int, str | None]]:
    """recipient -> (status, attempts, last error), read from the file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT recipient, status, attempts, last_error FROM outbox")
        found = {r: (s, a, e) for r, s, a, e in rows}
    conn.close()
    return found


def command(db: Path, server: SmtpServer, *args: str) -> list[str]:
    return [
        COMMAND, "--db", str(db), "--mail", f"smtp://{HOST}:{server.port}?security=plain",
        "--sender", SENDER, "--accept-url", ACCEPT_URL, *args,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    env["TEAMACCESS_SECRET_KEY"] = SECRET
    return env


def received_by(server: SmtpServer, recipient: str) -> bytes:
    [got] = [g for g in server.received if g.rcpt_tos == [recipient]]
    return got.content


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "teamaccess.db"
    queue_mail(path)
    return path


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


class TestDeliverCommand:
    """``teamaccess deliver`` sends a stored row's checked bytes as they are."""

    def test_a_stored_row_reaches_the_server_byte_for_byte(
        self, db: Path, server: SmtpServer
    ) -> None:
        stored = long_subject(db, "k1@example.org")
        proc = subprocess.run(
            command(db, server, "deliver"), env=environment(), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == (
            f"4 sent to SMTP server {HOST}:{server.port}; 0 still waiting"
        )
        # Written out again (as smtplib's send_message() does), the 108-character line
        # would have been folded: the bytes the last check read went out unchanged.
        assert received_by(server, "k1@example.org") == stored.replace(b"\n", b"\r\n")
        assert sorted(to for got in server.received for to in got.rcpt_tos) == EVERYONE
        assert server.connections == 1  # the run's batch
        assert set(outbox(db).values()) == {("sent", 1, None)}
        # The invitation went out with a link that works, and the command never shows it.
        invitation = received_by(server, "i@example.org")
        assert b"https://panel.example.net/accept?token=" in invitation
        assert "token=" not in proc.stdout + proc.stderr

    def test_a_refused_recipient_fails_alone_and_no_link_is_shown(self, db: Path) -> None:
        with SmtpServer(refuse=["i@example.org", "k2@example.org"]) as server:
            stored = long_subject(db, "k1@example.org")
            proc = subprocess.run(
                command(db, server, "deliver", "--json"), env=environment(),
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        assert proc.returncode == 11, proc.stderr  # some sent, some not
        report = json.loads(proc.stdout)
        assert (report["delivered"], report["failed"], report["waiting"]) == (2, 2, 2)
        rows = outbox(db)
        for refused in ("i@example.org", "k2@example.org"):
            status, attempts, error = rows[refused]
            assert (status, attempts) == ("pending", 1)
            assert error is not None
            assert "refused every recipient" in error
            assert "550" in error
        assert rows["k1@example.org"][:2] == rows["o@example.org"][:2] == ("sent", 1)
        assert received_by(server, "k1@example.org") == stored.replace(b"\n", b"\r\n")
        assert "token=" not in proc.stdout + proc.stderr

    def test_the_last_check_refuses_an_altered_row(self, db: Path, server: SmtpServer) -> None:
        """A queued row altered behind the library's back to add a recipient is closed
        with its reason and never reaches the server; the others go out."""
        with sqlite3.connect(db) as conn:
            [(row_id, message)] = conn.execute(
                "SELECT id, message FROM outbox WHERE recipient = 'k2@example.org'"
            ).fetchall()
            altered = bytes(message).replace(b"Subject:", b"Bcc: eve@example.com\nSubject:")
            conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row_id))
        conn.close()
        proc = subprocess.run(
            command(db, server, "deliver"), env=environment(), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 11, proc.stderr  # some sent, one refused
        assert proc.stdout.splitlines()[-1] == (
            f"3 sent to SMTP server {HOST}:{server.port}, 1 cancelled; 0 still waiting"
        )
        status, attempts, error = outbox(db)["k2@example.org"]
        assert (status, attempts) == ("cancelled", 1)
        assert error is not None
        assert error.startswith("refused before sending, and not retried")
        received = sorted(to for got in server.received for to in got.rcpt_tos)
        assert received == ["i@example.org", "k1@example.org", "o@example.org"]

    def test_the_worker_sends_the_stored_bytes(self, db: Path, server: SmtpServer) -> None:
        stored = long_subject(db, "k1@example.org")
        proc = subprocess.Popen(
            command(db, server, "deliver", "--watch", "--interval", "0.05"),
            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(server.received) < len(EVERYONE) and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert received_by(server, "k1@example.org") == stored.replace(b"\n", b"\r\n")
        assert sorted(to for got in server.received for to in got.rcpt_tos) == EVERYONE
        assert out.splitlines()[0].endswith(f"UTC  4 sent to SMTP server {HOST}:{server.port}")
        assert set(outbox(db).values()) == {("sent", 1, None)}


class TestMailSentAtOnce:
    """Commands that send at once still name each recipient they sent to."""

    def test_notify_and_invite_name_their_recipients(self, db: Path, server: SmtpServer) -> None:
        env = environment()
        [account] = json.loads(
            subprocess.run(
                command(db, server, "accounts", "list", "o", "--json"), env=env,
                capture_output=True, text=True, check=True, timeout=60,
            ).stdout
        )  # fmt: skip
        notify = subprocess.run(
            command(db, server, "notify", account["id"], "billing", "--subject", "Mahnung",
                    "--text", "Bitte zahlen"),
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert notify.returncode == 0, notify.stderr
        where = f"sent to SMTP server {HOST}:{server.port}"
        assert sorted(notify.stdout.splitlines()) == [
            f"mail to {to} {where}" for to in ("k1@example.org", "k2@example.org", "o@example.org")
        ]
        invite = subprocess.run(
            command(db, server, "invite", account["id"], "b@example.org", "--all", "--as", "o",
                    "--json"),
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert invite.returncode == 0, invite.stderr
        assert json.loads(invite.stdout)["mail"] == {
            "status": "sent",
            "to": ["b@example.org"],
            "via": f"smtp://{HOST}:{server.port}?security=plain",
        }
        got = sorted(to for g in server.received for to in g.rcpt_tos)
        assert got == ["b@example.org", "k1@example.org", "k2@example.org", "o@example.org"]


class Counting(SmtpMailer):
    """Overrides send() as a vendor would: notes each message, adds a header, sends on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str | None]] = []

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        self.seen.append((str(message["To"]), envelope_to))
        message["X-Panel-Count"] = str(len(self.seen))
        super().send(message, envelope_to=envelope_to)


class TestOverriddenSend:
    """The command hands its settings' mailer to the service as it is, so a subclass that
    overrides send() sees every message. (The command line builds only SmtpMailer and
    FileMailer; a program that runs the command with settings of its own may give one.)"""

    def test_the_override_sees_every_message(
        self, db: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mailer = Counting(HOST, server.port)
        monkeypatch.setattr(Settings, "mailer", lambda self: mailer)
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TEAMACCESS")}
        env["TEAMACCESS_SECRET_KEY"] = SECRET
        runner = CliRunner(env=env)
        args = command(db, server)[1:]
        result = runner.invoke(cli, [*args, "deliver"])
        assert result.exit_code == 0, result.output
        assert sorted(mailer.seen) == [(to, to) for to in EVERYONE]
        assert sorted(str(got.message["X-Panel-Count"]) for got in server.received) == [
            "1", "2", "3", "4",
        ]  # fmt: skip
        assert server.connections == 1  # its super().send() used the run's batch
        [account] = json.loads(
            runner.invoke(cli, [*args, "accounts", "list", "o", "--json"]).stdout
        )
        result = runner.invoke(cli, [*args, "invite", account["id"], "b@example.org", "--all",
                                     "--as", "o"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert mailer.seen[-1] == ("b@example.org", "b@example.org")
        assert f"mail to b@example.org sent to SMTP server {HOST}:{server.port}" in result.stdout

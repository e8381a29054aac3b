"""A subclass of SmtpMailer that overrides send() sees every message the service sends,
queued or at once, batched or not; one that does not override it keeps the fast way
(the stored bytes sent as they are). Against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import PermissionSet, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.mailers import build_message

SENDER = "Panel <noreply@panel.example.net>"


class Counting(SmtpMailer):
    """Overrides send() as a vendor would: notes each message, adds a header, sends on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str | None]] = []

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        self.seen.append((str(message["To"]), envelope_to))
        message["X-Panel-Count"] = str(len(self.seen))
        super().send(message, envelope_to=envelope_to)


class Refusing(Counting):
    """An override that refuses one recipient, quoting the message in its error."""

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        if envelope_to == "i@example.org":
            body = message.get_body(("plain",))
            assert body is not None
            raise RuntimeError(f"relay refused this mail: {body.get_content()}")
        super().send(message, envelope_to=envelope_to)


class MessageOnly(SmtpMailer):
    """An override written against the plain Mailer protocol: no envelope_to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []

    def send(self, message: EmailMessage) -> None:  # type: ignore[override]
        self.seen.append(str(message["To"]))
        super().send(message)


class Relaying(SmtpMailer):
    """An override that never calls super(): every message goes to another server."""

    def __init__(self, host: str, port: int, relay: SmtpMailer) -> None:
        super().__init__(host, port)
        self.relay = relay

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        self.relay.send(message, envelope_to=envelope_to)


class Tagged(SmtpMailer):
    """A subclass that changes nothing about sending."""

    tag = "eu-1"


class Batches(SmtpMailer):
    """Overrides batch() only: counts the batches the service opens."""

    opened = 0

    @contextmanager
    def batch(self) -> Iterator[Any]:
        self.opened += 1
        with super().batch() as sender:
            yield sender


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def team_for(mailer: SmtpMailer, db: Path, delivery: str = "queue") -> TeamAccess:
    return TeamAccess(
        SQLiteStore(db), mailer, secret_key=SECRET, delivery=delivery,  # type: ignore[arg-type]
        sender=SENDER, accept_url="https://panel.example.net/accept?token={token}",
    )  # fmt: skip


def mail_for_all(team: TeamAccess) -> str:
    """An account whose owner and two contacts get a billing mail, and an invitation to
    i@example.org; the account's id."""
    acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
    for address in ("k1@example.org", "k2@example.org"):
        team.add_contact(acc.id, actor_id="o", name="K", email=address, categories=["billing"])
    team.invite(acc.id, actor_id="o", email="i@example.org", permissions=PermissionSet.all())
    team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag")
    return acc.id


EVERYONE = ["i@example.org", "k1@example.org", "k2@example.org", "o@example.org"]


class TestOverriddenSend:
    """The service calls the subclass's send() for every message, with the checked
    envelope, and keeps its guarantees."""

    def test_queued_mail_goes_through_the_override(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        mailer = Counting(server.host, server.port)
        team = team_for(mailer, tmp_path / "t.db")
        mail_for_all(team)
        assert mailer.seen == []
        assert server.received == []
        done = team.deliver_pending()
        assert sorted(row.status for row in done) == ["sent"] * 4
        assert all(row.attempts == 1 for row in done)
        # The override saw each message once, with its checked recipient as envelope.
        assert sorted(mailer.seen) == [(to, to) for to in EVERYONE]
        assert sorted(got.rcpt_tos[0] for got in server.received) == EVERYONE
        # What the override changed went out, on every message.
        assert sorted(got.message["X-Panel-Count"] for got in server.received) == [
            "1", "2", "3", "4",
        ]  # fmt: skip
        # Its super().send() used the run's batch: one connection for the run.
        assert server.connections == 1
        assert team.pending_messages() == []

    def test_mail_sent_at_once_goes_through_the_override(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        mailer = Counting(server.host, server.port)
        team = team_for(mailer, tmp_path / "t.db", delivery="now")
        mail_for_all(team)
        assert sorted(mailer.seen) == [(to, to) for to in EVERYONE]
        assert sorted(got.rcpt_tos[0] for got in server.received) == EVERYONE
        assert all(got.message["X-Panel-Count"] for got in server.received)
        assert team.pending_messages() == []

    def test_a_batch_used_directly_calls_the_override(self, server: SmtpServer) -> None:
        mailer = Counting(server.host, server.port)
        with mailer.batch() as sender:
            for i in range(3):
                sender.send(build_message(
                    sender=SENDER, to=f"k{i}@example.org", subject="x", text="t", html=None,
                    message_id=f"<m{i}@panel.example.net>", language="en",
                ), envelope_to=f"k{i}@example.org")  # fmt: skip
        assert mailer.seen == [(f"k{i}@example.org",) * 2 for i in range(3)]
        assert server.connections == 1
        assert [got.message["X-Panel-Count"] for got in server.received] == ["1", "2", "3"]

    def test_a_failing_override_fails_its_message_alone_without_the_token(
        self, server: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        mailer = Refusing(server.host, server.port)
        team = team_for(mailer, tmp_path / "t.db")
        mail_for_all(team)
        with caplog.at_level(logging.DEBUG, logger="teamaccess"):
            done = {row.recipient: row for row in team.deliver_pending()}
        failed = done.pop("i@example.org")
        assert failed.status == "pending"
        assert failed.attempts == 1
        assert failed.last_error is not None
        assert failed.last_error.startswith("RuntimeError: ")
        # The override quoted the invitation mail; neither the record nor the log keeps
        # its accept link.
        assert "token=" not in failed.last_error
        assert "panel.example.net/accept" not in failed.last_error
        assert caplog.records  # the failure was logged
        assert "token=" not in caplog.text
        assert {row.status for row in done.values()} == {"sent"}
        assert sorted(got.rcpt_tos[0] for got in server.received) == sorted(done)

    def test_the_last_check_comes_before_the_override(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        """A queued row altered to add a recipient is refused; the override never sees it."""
        db = tmp_path / "t.db"
        mailer = Counting(server.host, server.port)
        team = team_for(mailer, db)
        mail_for_all(team)
        bad = next(r for r in team.pending_messages() if r.recipient == "k1@example.org")
        assert bad.message is not None
        altered = bad.message.replace(b"Subject:", b"Bcc: eve@example.com\nSubject:")
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, bad.id))
        conn.close()
        done = {row.recipient: row for row in team.deliver_pending()}
        assert done["k1@example.org"].status == "cancelled"
        assert "k1@example.org" not in [to for to, _ in mailer.seen]
        received = [to for got in server.received for to in got.rcpt_tos]
        assert "eve@example.com" not in received
        assert sorted(received) == ["i@example.org", "k2@example.org", "o@example.org"]

    def test_an_override_without_envelope_to_gets_the_message(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        mailer = MessageOnly(server.host, server.port)
        team = team_for(mailer, tmp_path / "t.db")
        mail_for_all(team)
        assert {row.status for row in team.deliver_pending()} == {"sent"}
        assert sorted(mailer.seen) == EVERYONE
        assert sorted(got.rcpt_tos[0] for got in server.received) == EVERYONE

    def test_an_override_may_send_through_another_mailer(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        with SmtpServer() as relay_server:
            relay = SmtpMailer(relay_server.host, relay_server.port)
            team = team_for(Relaying(server.host, server.port, relay), tmp_path / "t.db")
            mail_for_all(team)
            assert {row.status for row in team.deliver_pending()} == {"sent"}
            assert server.received == []
            assert sorted(got.rcpt_tos[0] for got in relay_server.received) == EVERYONE


def long_subject(db: Path, team: TeamAccess, recipient: str) -> bytes:
    """Give *recipient*'s queued row a subject of 108 characters on one line, as a
    mail program may store it (the builder folds it); the row's new bytes."""
    row = next(r for r in team.pending_messages() if r.recipient == recipient)
    assert row.message is not None
    altered = row.message.replace(
        b"Subject: Rechnung", b"Subject: " + b" ".join([b"Rechnung"] * 12)
    )
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE outbox SET message = ? WHERE id = ?", (altered, row.id))
    conn.close()
    return altered


class TestFastWayKept:
    """A mailer whose send() is SmtpMailer's own sends a queued row's stored bytes as
    they are; an override is handed the message, which smtplib writes out afresh."""

    @pytest.mark.parametrize("cls", [SmtpMailer, Tagged, Batches])
    def test_without_an_override_the_stored_bytes_go_out_as_they_are(
        self, server: SmtpServer, tmp_path: Path, cls: type[SmtpMailer]
    ) -> None:
        db = tmp_path / "t.db"
        mailer = cls(server.host, server.port)
        team = team_for(mailer, db)
        mail_for_all(team)
        stored = long_subject(db, team, "k1@example.org")
        assert {row.status for row in team.deliver_pending()} == {"sent"}
        [got] = [g for g in server.received if g.rcpt_tos == ["k1@example.org"]]
        # Byte for byte, the long line unfolded: the message was not written again.
        assert got.content == stored.replace(b"\n", b"\r\n")
        assert server.connections == 1
        if isinstance(mailer, Batches):
            assert mailer.opened == 1  # the subclass's batch() served the run

    def test_with_an_override_the_message_is_written_afresh(
        self, server: SmtpServer, tmp_path: Path
    ) -> None:
        db = tmp_path / "t.db"
        mailer = Counting(server.host, server.port)
        team = team_for(mailer, db)
        mail_for_all(team)
        stored = long_subject(db, team, "k1@example.org")
        assert {row.status for row in team.deliver_pending()} == {"sent"}
        [got] = [g for g in server.received if g.rcpt_tos == ["k1@example.org"]]
        assert ("k1@example.org", "k1@example.org") in mailer.seen
        assert got.content != stored.replace(b"\n", b"\r\n")
        assert got.message["Subject"] == " ".join(["Rechnung"] * 12)
        subject_lines = got.content.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert all(len(line) <= 78 for line in subject_lines)

    def test_overriding_both_batch_and_send(self, server: SmtpServer, tmp_path: Path) -> None:
        class Both(Counting):
            opened = 0

            @contextmanager
            def batch(self) -> Iterator[Any]:
                self.opened += 1
                with super().batch() as sender:
                    yield sender

        mailer = Both(server.host, server.port)
        team = team_for(mailer, tmp_path / "t.db")
        mail_for_all(team)
        assert {row.status for row in team.deliver_pending()} == {"sent"}
        assert mailer.opened == 1
        assert sorted(mailer.seen) == [(to, to) for to in EVERYONE]
        assert server.connections == 1

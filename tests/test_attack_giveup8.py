"""Attacks on closing mail a server refuses for good: a refusal that is the panel's own
misconfiguration (its relay, its login, its sender) must never close mail, however the
server words it. Against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.smtp_server import HOST, SmtpServer

from teamaccess import DeliveryFailed, DeliveryRefused, MemoryStore, SmtpMailer, TeamAccess
from teamaccess._mail.mailers import build_message
from teamaccess.testing import FrozenClock

TO = "kunde@example.org"

#: Replies to RCPT TO that refuse the panel (its relay, its sender), not the recipient,
#: as real servers word them.
PANELS_FAULT = {
    # qmail writes the enhanced status code at the end, in parentheses
    "qmail, relaying": "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
    # Exim has no enhanced status codes; its default configuration's relay refusal
    "exim, relaying": "550 relay not permitted",
    # Postfix checks the sender at RCPT TO (smtpd_delay_reject = yes, the default); X.1.7
    # and X.1.8 are the sender's address (RFC 3463)
    "postfix, sender domain": (
        "550 5.1.8 <noreply@panel.example.net>: Sender address rejected: Domain not found"
    ),
    "postfix, sender syntax": (
        "553 5.1.7 <noreply@panel.example.net>: Sender address rejected: malformed address"
    ),
}


def message(to: str = TO) -> EmailMessage:
    return build_message(
        sender="Panel <noreply@panel.example.net>", to=to, subject="Rechnung", text="t",
        html=None, message_id="<a8@panel.example.net>", language="en",
    )  # fmt: skip


@pytest.mark.parametrize("reply", PANELS_FAULT.values(), ids=PANELS_FAULT.keys())
def test_smtp_mailer_does_not_call_it_for_good(reply: str) -> None:
    with SmtpServer(rcpt_replies={TO: reply}) as server:
        with pytest.raises(DeliveryFailed) as info:
            SmtpMailer(HOST, server.port).send(message(), envelope_to=TO)
        assert server.answered == [("RCPT", TO)]
    assert reply.split()[0] in str(info.value)
    assert not isinstance(info.value, DeliveryRefused)


@pytest.mark.parametrize("reply", PANELS_FAULT.values(), ids=PANELS_FAULT.keys())
def test_the_mail_still_waits_after_give_up_after_refusals(reply: str) -> None:
    clock = FrozenClock(datetime(2026, 5, 1, 9, tzinfo=UTC))
    with SmtpServer(rcpt_replies={TO: reply}) as server:
        team = TeamAccess(
            MemoryStore(), SmtpMailer(HOST, server.port), secret_key=SECRET, clock=clock,
            sender="Panel <noreply@panel.example.net>",
            accept_url="https://panel.example.net/accept", delivery="queue", give_up_after=2,
        )  # fmt: skip
        acc = team.create_account(name="Muster", owner_id="o", owner_email=TO)
        team.notify(acc.id, "billing", subject="Rechnung", text="t")
        for _ in range(4):
            [row] = team.deliver_pending()
            assert row.status == "pending"
            clock.set(row.next_attempt_at)
        # Once the panel's relay or sender is fixed, the mail goes out.
        server.rcpt_replies.clear()
        [row] = team.deliver_pending()
        assert row.status == "sent"
    assert [got.rcpt_tos for got in server.received] == [[TO]]
    assert "mail.bounced" not in [e.action for e in team.audit_log(acc.id)]


class _DataCommandRefuser:
    """A real SMTP server on a socket, as strict as Postfix about its transactions: it
    answers the first DATA command with 554 (as Postfix's smtpd_data_restrictions do)
    and a MAIL FROM inside an open transaction with 503 (nested MAIL command)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.delivered: list[list[str]] = []
        self.refused_data = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn, conn.makefile("rb") as lines:
                    self._session(conn, lines)

    def _session(self, conn: socket.socket, lines: Any) -> None:
        conn.sendall(b"220 strict ESMTP\r\n")
        rcpts: list[str] | None = None
        for raw in lines:
            verb = raw.decode("ascii", "replace").strip()
            word = verb.split(" ", 1)[0].upper()
            if word in ("EHLO", "HELO"):
                conn.sendall(b"250-strict\r\n250 8BITMIME\r\n")
            elif word == "MAIL":
                if rcpts is not None:
                    conn.sendall(b"503 5.5.1 Error: nested MAIL command\r\n")
                else:
                    rcpts = []
                    conn.sendall(b"250 2.1.0 Ok\r\n")
            elif word == "RCPT" and rcpts is not None:
                rcpts.append(verb.split(":", 1)[1].strip(" <>"))
                conn.sendall(b"250 2.1.5 Ok\r\n")
            elif word == "DATA" and rcpts:
                if not self.refused_data:
                    self.refused_data += 1
                    conn.sendall(b"554 5.5.1 Error: no valid recipients\r\n")
                    continue  # the transaction stays open until RSET, as in Postfix
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                for body in lines:
                    if body == b".\r\n":
                        break
                self.delivered.append(rcpts)
                rcpts = None
                conn.sendall(b"250 2.0.0 Ok: queued\r\n")
            elif word == "RSET":
                rcpts = None
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif word == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"503 5.5.1 Error: bad sequence of commands\r\n")

    def close(self) -> None:
        self.sock.close()


def test_a_batch_after_a_refused_data_command_sends_the_next_message() -> None:
    """A 554 to the DATA command itself is raised by smtplib's data() before its
    sendmail() resets the transaction; the batch kept the connection after it (a refusal
    of the message), so the next message's MAIL FROM was refused as nested."""
    server = _DataCommandRefuser()
    try:
        outcomes: list[str] = []
        with SmtpMailer(HOST, server.port).batch() as sender:
            for to in ("a@example.org", "b@example.org"):
                try:
                    sender.send(message(to), envelope_to=to)
                    outcomes.append("sent")
                except DeliveryFailed as exc:
                    outcomes.append(str(exc))
    finally:
        server.close()
    assert "554" in outcomes[0]
    assert outcomes[1:] == ["sent"]
    assert server.delivered == [["b@example.org"]]


def test_a_server_without_smtputf8_is_named_as_such() -> None:
    """contacts-and-mail.md: an address whose local part is not ASCII needs a server that
    offers SMTPUTF8, and is otherwise a DeliveryFailed naming the missing extension. It
    said so in the standard library's words and then told to check the STARTTLS and login
    settings, which cannot help."""
    to = "jörg@example.org"
    with SmtpServer() as server, pytest.raises(DeliveryFailed) as info:  # no SMTPUTF8
        SmtpMailer(HOST, server.port).send(message(to), envelope_to=to)
    assert "does not offer SMTPUTF8" in str(info.value)
    assert "STARTTLS" not in str(info.value)
    assert not isinstance(info.value, DeliveryRefused)

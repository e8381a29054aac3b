"""invite + accept against its honest floor: the parts it cannot do without.

The floor validates the address, signs and verifies a token, builds the invitation mail
with the library's own ``build_message`` and serialises it as a mailer must, in the
fastest way known here (the library's own wire policy: ``policy.SMTP``'s bytes, each
shared header folded once), and writes the same logical rows as the library in three
commits: the invitation with its outbox row and audit event (durable); the outbox row
marked sent (not durable, as the library's delivery record); the member, the invitation
closed and its audit event (durable). Its tables have nothing but their primary keys,
one B-tree each, stored the cheapest way known here: invitations and outbox rows under
the number in their ids (the library's own ids, which sort by time, so a new row goes at
the end of its table), events appended under a sequence number, members keyed by account
and user. So the WAL it writes is the least those rows take.

Every part the library must also do is done the fastest way known here, the library's
own where that is the fastest: the builder, the wire policy that writes the mail, the
token signer (HMAC in one call, no try at compressing), the ids.

The library side sends to a mailer that serialises each message the same way, so neither
side hides that cost.
"""

from __future__ import annotations

import sqlite3
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from teamaccess import SmtpMailer
from teamaccess._mail.smtp import _Tracking
from teamaccess._service.checks import _numbered_id

from ._data import SECRET

_LEAN_SCHEMA = (
    # key: the number in the id; events: seq, the order they were written in
    """CREATE TABLE IF NOT EXISTS invitations (key INTEGER PRIMARY KEY, id TEXT,
    account_id TEXT, email TEXT, email_key TEXT, permissions TEXT, invited_by TEXT,
    status TEXT, created_at TEXT, expires_at TEXT, token_hash TEXT, closed_at TEXT,
    accepted_by TEXT, sent_count INTEGER, language TEXT)""",
    """CREATE TABLE IF NOT EXISTS outbox (key INTEGER PRIMARY KEY, id TEXT, account_id TEXT,
    kind TEXT, recipient TEXT, message_id TEXT, created_at TEXT, next_attempt_at TEXT,
    status TEXT, invitation_id TEXT, attempts INTEGER, last_error TEXT, sent_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT, account_id TEXT,
    at TEXT, actor_id TEXT, action TEXT, target TEXT, details TEXT)""",
    """CREATE TABLE IF NOT EXISTS members (account_id TEXT, user_id TEXT, email TEXT,
    email_key TEXT, role TEXT, permissions TEXT, joined_at TEXT, granted_by TEXT,
    PRIMARY KEY (account_id, user_id)) WITHOUT ROWID""",
)


class SerialisingMailer:
    """Delivers nowhere, but turns each message into the bytes an SMTP server gets."""

    def __init__(self) -> None:
        from email.policy import SMTP

        self._policy = SMTP
        self.sent_bytes = 0

    def send(self, message: EmailMessage) -> None:
        self.sent_bytes += len(message.as_bytes(policy=self._policy))


class _CountingConnection(_Tracking):
    """An SMTP connection that takes every message and only counts its bytes."""

    def __init__(self) -> None:
        self.sent_bytes = 0

    def __enter__(self) -> _CountingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def sendmail(self, from_addr: str, to_addrs: Any, msg: bytes, *options: Any) -> dict[str, Any]:
        self.sent_bytes += len(msg)
        return {}

    def quit(self) -> None:
        return None

    def close(self) -> None:
        return None


class WireMailer(SmtpMailer):
    """``SmtpMailer`` with the socket left out: what the library does to send a mail.

    ``SmtpMailer`` sends the bytes the last check before sending wrote and read back, so
    the message is serialised once; this runs that same path (the check, the envelope,
    ``sendmail()`` of the checked bytes) into a connection that only counts the bytes.
    ``SerialisingMailer`` stands for a third-party mailer that writes the message again.
    """

    def __init__(self) -> None:
        super().__init__("localhost")
        self.connection = _CountingConnection()

    def _open(self, progress: list[str]) -> Any:
        return self.connection


class HonestFloor:
    """The floor, callable as ``floor(account_id, email, user_id)``."""

    label = "validate, sign+verify, mail built+serialised, same rows in 2+1 commits"

    def __init__(self, path: Path, synchronous: str, page_size: int | None = None) -> None:
        from datetime import UTC, datetime

        from teamaccess import DefaultTemplates, InvitationContext
        from teamaccess._mail.mailers import wire_policy
        from teamaccess._tokens import TokenSigner

        # The fastest signer known here: the library's (itsdangerous' format, the HMAC in
        # one OpenSSL call, no try at compressing). Until the fourth round on 2026-11-30
        # the floor signed with URLSafeTimedSerializer's defaults, some 30 us more a round.
        self.tokens = TokenSigner(SECRET)
        self.synchronous = synchronous
        # The fastest writer known here, as the builder is: the same bytes as
        # policy.SMTP writes, about 0.1 ms less a mail (the library sends with it too).
        self.policy = wire_policy(False)
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        if page_size is not None:  # else SQLite's default, as the goal's floor has it
            self.conn.execute(f"PRAGMA page_size = {int(page_size)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        for sql in _LEAN_SCHEMA:
            self.conn.execute(sql)
        # Rendered once, the token put in by str.replace: generous to the floor, which
        # does not escape anything per call.
        self.rendered = DefaultTemplates().invitation(
            InvitationContext(
                language="en",
                brand="",
                account_name="Firma 1",
                inviter_email="b1@f.example",
                invitee_email="new1@invitee1.example",
                accept_url="https://panel.example.com/invitations/accept?token=TOKEN",
                expires_at=datetime(2026, 11, 30, tzinfo=UTC),
                all_permissions=False,
                permission_labels=["View invoices"],
            )
        )

    def __call__(self, account_id: str, email: str, user_id: str) -> None:
        import secrets
        from datetime import UTC, datetime, timedelta

        import email_validator

        from teamaccess._mail.mailers import build_message

        execute = self.conn.execute
        now = datetime.now(UTC)
        at = now.isoformat()
        # invite: validate, sign, store the invitation, its outbox row and its event
        address = email_validator.validate_email(email, check_deliverability=False)
        inv_id = _numbered_id("inv")
        msg_id = _numbered_id("msg")
        inv_key, msg_key = int(inv_id[4:20], 16), int(msg_id[4:20], 16)
        token, digest = self.tokens.issue(inv_id)
        execute("BEGIN IMMEDIATE")
        execute(
            "INSERT INTO invitations VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, NULL, "
            "NULL, 1, 'en')",
            (
                inv_key,
                inv_id,
                account_id,
                address.normalized,
                address.normalized.lower(),
                '["billing.view"]',
                "boss",
                at,
                (now + timedelta(days=7)).isoformat(),
                digest,
            ),
        )
        execute(
            "INSERT INTO outbox VALUES (?, ?, ?, 'invitation', ?, ?, ?, ?, 'pending', ?, 0, "
            "NULL, NULL)",
            (
                msg_key,
                msg_id,
                account_id,
                address.normalized,
                f"<{msg_id}@panel.example.com>",
                at,
                at,
                inv_id,
            ),
        )
        execute(
            "INSERT INTO events VALUES (NULL, ?, ?, ?, 'boss', 'invitation.sent', ?, '{}')",
            ("evt_" + secrets.token_hex(10), account_id, at, inv_id),
        )
        execute("COMMIT")
        # the mail: built, serialised as a mailer must, then recorded as sent (not durable)
        r = self.rendered
        message = build_message(
            sender="Customer Center <noreply@panel.example.com>",
            to=address.normalized,
            subject=r.subject,
            text=r.text.replace("TOKEN", token),
            html=None if r.html is None else r.html.replace("TOKEN", token),
            message_id=f"<{msg_id}@panel.example.com>",
            language="en",
            date=now,
        )
        message.as_bytes(policy=self.policy)
        execute("PRAGMA synchronous = NORMAL")
        execute("BEGIN IMMEDIATE")
        execute(
            "UPDATE outbox SET status = 'sent', attempts = 1, sent_at = ? WHERE key = ?",
            (at, msg_key),
        )
        execute("COMMIT")
        execute(f"PRAGMA synchronous = {self.synchronous}")
        # accept: verify, then the member in, the invitation closed, the event
        opened = self.tokens.open(token)
        key = int(opened[4:20], 16)
        execute("BEGIN IMMEDIATE")
        row = execute(
            "SELECT account_id, email, email_key, permissions, invited_by FROM invitations "
            "WHERE key = ?",
            (key,),
        ).fetchone()
        execute(
            "INSERT INTO members VALUES (?, ?, ?, ?, 'member', ?, ?, ?)",
            (row[0], user_id, row[1], row[2], row[3], at, row[4]),
        )
        execute(
            "UPDATE invitations SET status = 'accepted', closed_at = ?, accepted_by = ? "
            "WHERE key = ?",
            (at, user_id, key),
        )
        execute(
            "INSERT INTO events VALUES (NULL, ?, ?, ?, ?, 'invitation.accepted', ?, '{}')",
            ("evt_" + secrets.token_hex(10), row[0], at, user_id, opened),
        )
        execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def wal_frames(path: Path) -> int:
    """Frames in *path*'s WAL now (a passive checkpoint reports them)."""
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def restart_wal(path: Path) -> None:
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def page_size(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def wal_bytes_per_call(path: Path, call: Any, args: list[tuple[str, str, str]]) -> float:
    """WAL bytes written per ``call(*a)``: frames (page plus 24-byte header) over a run
    short enough that no automatic checkpoint restarts the log."""
    restart_wal(path)
    before = wal_frames(path)
    for a in args:
        call(*a)
    frames = wal_frames(path) - before
    return frames * (page_size(path) + 24) / len(args)


def count_statements(
    conn: sqlite3.Connection, call: Any, args: list[tuple[str, str, str]]
) -> float:
    """SQL statements per ``call(*a)`` on *conn*, by its trace callback (BEGIN, COMMIT
    and PRAGMA count). A trigger firing reports the statement that fired it again, so a
    repeat of the statement just seen is not counted."""
    seen: list[str] = []

    def trace(sql: str) -> None:
        if not seen or seen[-1] != sql:
            seen.append(sql)

    conn.set_trace_callback(trace)
    try:
        for a in args:
            call(*a)
    finally:
        conn.set_trace_callback(None)
    return len(seen) / len(args)

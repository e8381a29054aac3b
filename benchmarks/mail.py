"""Mail throughput against a real SMTP server: queued delivery and ``notify()``.

The server is aiosmtpd on 127.0.0.1 in a process of its own (``_smtpd.py``), requiring
STARTTLS with a certificate made here and a login. The figures:

- queued delivery: ``deliver_pending()`` sending the waiting messages of a SQLite file
  through ``SmtpMailer`` (one batch: a connection carries up to ``max_per_connection``
  messages), against plain ``smtplib`` sending the same messages, already built, over one
  connection (STARTTLS and login once);
- the same with one connection per message on both sides (``SmtpMailer.send()`` without a
  batch, against ``smtplib`` connecting, securing and logging in for every message);
- ``notify()`` of one category to an account with 1,000 contacts, queued, against the
  standard library building the same messages and plain ``sqlite3`` inserting their rows
  in one transaction.
- the ``teamaccess deliver`` command sending the same number of waiting messages: its
  process's CPU time per message (its start, measured on an empty outbox, taken off),
  beside ``deliver_pending()``'s in this process (information: the command should cost
  what the library does).

Every side's messages are counted by the server, and the run stops if a count is off.
"""

from __future__ import annotations

import itertools
import os
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from ._data import SECRET
from ._timing import Result, compare, fmt_ns

DELIVERY_GOAL = 1.3
NOTIFY_GOAL = 2.0
CATEGORY = "billing"
SUBJECT = "Ihre Rechnung für November"
TEXT = (
    "Guten Tag,\n\nIhre Rechnung für November ist bereit. Sie finden sie im Kundencenter "
    "unter Rechnungen.\n\nDer Betrag wird am 15. vom hinterlegten Konto abgebucht.\n"
)
SENDER = "Panel <billing@panel.kunde.example>"


@dataclass(frozen=True)
class Sizes:
    contacts: int  # contacts of the notified account (the owner is a recipient too)
    queued: int  # notify() calls whose messages one delivery round sends
    per_connection: int  # messages per round with a connection each
    rounds: int


QUICK = Sizes(contacts=49, queued=1, per_connection=10, rounds=3)
FULL = Sizes(contacts=1_000, queued=2, per_connection=200, rounds=7)


@dataclass
class Costs:
    """Per side: CPU seconds of this process and of the server, messages, per run."""

    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)

    def per_message(self, what: list[float]) -> float:
        return statistics.median(c / n for c, n in zip(what, self.messages, strict=True))


class _Measured:
    """A side that also notes its own and the server's CPU time, and checks that the
    server received exactly the messages the side sent."""

    def __init__(self, server: Any, run: Callable[[Sequence[Any]], int]) -> None:
        self.server = server
        self.run = run
        self.costs = Costs()

    def __call__(self, batch: Sequence[Any]) -> None:
        before = self.server.stats()
        cpu = time.process_time()
        sent = self.run(batch)
        cpu = time.process_time() - cpu
        after = self.server.stats()
        got = after.messages - before.messages
        if got != sent:
            raise RuntimeError(f"the SMTP server received {got} messages, {sent} were sent")
        self.costs.client_cpu.append(cpu)
        self.costs.server_cpu.append(after.cpu_s - before.cpu_s)
        self.costs.messages.append(sent)


class _OneByOne:
    """A mailer without ``batch()``: each message over a connection of its own, as a
    third-party ``Mailer`` (or ``SmtpMailer`` before batches) sends it."""

    def __init__(self, mailer: Any) -> None:
        self._mailer = mailer

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        self._mailer.send(message, envelope_to=envelope_to)


class Bench:
    """The server, the library's SQLite files with the notified accounts, and the sides."""

    def __init__(self, workdir: Path, sizes: Sizes, server: Any) -> None:
        from teamaccess import SmtpMailer

        from ._smtpd import PASSWORD, USER

        self.workdir = workdir
        self.sizes = sizes
        self.server = server
        self.ctx = server.client_context()
        self.smtp = SmtpMailer(
            server.host, server.port, security="starttls", username=USER, password=PASSWORD,
            ssl_context=self.ctx,
        )  # fmt: skip

    def team(self, path: Path, mailer: Any) -> Any:
        from teamaccess import SQLiteStore, TeamAccess

        return TeamAccess(
            SQLiteStore(path), mailer, secret_key=SECRET, delivery="queue", sender=SENDER,
            accept_url="https://panel.kunde.example/accept", rate_limit=10**9,
        )  # fmt: skip

    @staticmethod
    def account(team: Any, name: str, contacts: int) -> str:
        """An account whose owner and *contacts* contacts receive CATEGORY."""
        account = team.create_account(
            name=f"{name} GmbH", owner_id="owner", owner_email=f"chef@{name}.example"
        )
        with team.batch():
            for c in range(contacts):
                team.add_contact(
                    account.id, actor_id="owner", name=f"Kontakt {c}",
                    email=f"kontakt{c}@{name}.example", categories=[CATEGORY],
                )  # fmt: skip
        return str(account.id)

    # -- queued delivery ---------------------------------------------------------------

    def delivery(self, name: str, one_by_one: bool, floor_name: str,
                 floor: Callable[[Sequence[EmailMessage]], int], contacts: int, calls: int
                 ) -> tuple[Result, _Measured, _Measured]:  # fmt: skip
        """deliver_pending() of what *calls* notify() calls to an account with *contacts*
        contacts queued, against *floor* sending the same messages."""
        path = self.workdir / f"deliver-{'single' if one_by_one else 'batch'}.sqlite"
        team = self.team(path, _OneByOne(self.smtp) if one_by_one else self.smtp)
        account = self.account(team, "kunde", contacts)

        def deliver(batch: Sequence[Any]) -> int:  # the waiting rows
            done = team.deliver_pending(limit=len(batch))
            if len(done) != len(batch) or any(r.status != "sent" for r in done):
                raise RuntimeError(f"deliver_pending() sent {len(done)} of {len(batch)}")
            return len(done)

        def batches(_round: int) -> tuple[list[Any], list[Any]]:
            for _ in range(calls):
                team.notify(account, CATEGORY, subject=SUBJECT, text=TEXT)
            waiting = team.pending_messages(account)
            return waiting, [_built(row) for row in waiting]

        lib = _Measured(self.server, deliver)
        plain = _Measured(self.server, floor)
        result = compare(name, lib, floor_name, plain, batches, rounds=self.sizes.rounds,
                         warmup=1)  # fmt: skip
        return result, lib, plain

    def smtplib_one_connection(self, batch: Sequence[EmailMessage]) -> int:
        from ._smtpd import PASSWORD, USER

        with smtplib.SMTP(self.server.host, self.server.port) as smtp:
            smtp.starttls(context=self.ctx)
            smtp.login(USER, PASSWORD)
            for message in batch:
                smtp.send_message(message)
        return len(batch)

    def smtplib_per_message(self, batch: Sequence[EmailMessage]) -> int:
        from ._smtpd import PASSWORD, USER

        for message in batch:
            with smtplib.SMTP(self.server.host, self.server.port) as smtp:
                smtp.starttls(context=self.ctx)
                smtp.login(USER, PASSWORD)
                smtp.send_message(message)
        return len(batch)

    # -- the command ---------------------------------------------------------------------

    def command(self, contacts: int, calls: int) -> tuple[float, float]:
        """``teamaccess deliver`` of what *calls* notify() calls to an account with
        *contacts* contacts queued, in rounds: the command's CPU seconds per message (its
        start taken off), and its start."""
        from ._smtpd import PASSWORD, USER

        path = self.workdir / "deliver-command.sqlite"
        team = self.team(path, self.smtp)
        account = self.account(team, "kunde", contacts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        env.update(
            TEAMACCESS_SECRET_KEY=SECRET, TEAMACCESS_SMTP_PASSWORD=PASSWORD,
            SSL_CERT_FILE=str(self.server.ca_file()),  # the default context trusts the CA
        )  # fmt: skip
        args = [
            sys.executable, "-m", "teamaccess", "--db", str(path), "--mail",
            f"smtp://{USER}@{self.server.host}:{self.server.port}?security=starttls",
            "--sender", SENDER, "--accept-url", "https://panel.kunde.example/accept",
            "deliver", "--limit", "1000000",
        ]  # fmt: skip

        def cpu(expected: int) -> float:
            """Run the command once; its own CPU seconds (user and system)."""
            before = self.server.stats()
            with (self.workdir / "deliver-command.out").open("w+b") as out:
                proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
                _pid, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                out.seek(0)
                said = out.read()
            last = said.rstrip().rpartition(b"\n")[2]
            if proc.returncode != 0 or not last.startswith(b"%d sent to " % expected):
                raise RuntimeError(f"teamaccess deliver failed: {said[-500:]!r}")
            got = self.server.stats().messages - before.messages
            if got != expected:
                raise RuntimeError(f"the SMTP server received {got} messages, not {expected}")
            return usage.ru_utime + usage.ru_stime

        per_message, starts = [], []
        for _round in range(self.sizes.rounds):
            for _ in range(calls):
                team.notify(account, CATEGORY, subject=SUBJECT, text=TEXT)
            waiting = len(team.pending_messages(account))
            sent = cpu(waiting)
            start = cpu(0)  # the outbox is empty now: the command's start alone
            per_message.append((sent - start) / waiting)
            starts.append(start)
        team.close()
        return statistics.median(per_message), statistics.median(starts)

    # -- notify() ----------------------------------------------------------------------

    def notify(self) -> Result:
        """notify(), queued, on a file of its own (its messages are never sent)."""
        team = self.team(self.workdir / "notify.sqlite", self.smtp)
        account = self.account(team, "kunde", self.sizes.contacts)
        recipients = team.recipients(account, CATEGORY)
        team.notify(account, CATEGORY, subject=SUBJECT, text=TEXT)
        row = team.pending_messages(account)[0]
        assert row.message is not None
        sample = message_from_bytes(row.message, policy=policy.default)
        assert isinstance(sample, EmailMessage)
        floor = _FloorOutbox(self.workdir / "notify-floor.sqlite").notify(sample, account)

        def library(batch: Sequence[str]) -> None:
            sent = team.notify(account, CATEGORY, subject=SUBJECT, text=TEXT)
            assert len(sent) == len(batch)

        return compare(
            f"notify(), {len(recipients):,} recipients, queued, SQLiteStore",
            library,
            "stdlib build + sqlite3 insert, one transaction",
            floor,
            lambda _round: (recipients, recipients),
            rounds=self.sizes.rounds,
            warmup=1,
        )


def _built(row: Any) -> EmailMessage:
    """The message of a waiting outbox row as the library built it before storing it:
    the same builder, fields, Message-ID and date (the floor sends these)."""
    from teamaccess._mail.mailers import build_message

    assert row.message is not None
    stored = message_from_bytes(row.message, policy=policy.default)
    assert isinstance(stored, EmailMessage)
    text, html = stored.get_body(("plain",)), stored.get_body(("html",))
    assert text is not None
    return build_message(
        sender=str(stored["From"]),
        to=row.recipient,
        subject=str(stored["Subject"]),
        text=text.get_content(),
        html=html.get_content() if html is not None else None,
        message_id=row.message_id,
        language=str(stored["Content-Language"]),
        date=stored["Date"].datetime,
    )


class _FloorOutbox:
    """The notify() floor's file: the library's schema, written with plain ``sqlite3``."""

    def __init__(self, path: Path) -> None:
        from teamaccess import SQLiteStore

        SQLiteStore(path).close()  # the same tables and indexes, fsynced alike (FULL)
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def notify(self, sample: EmailMessage, account_id: str) -> Callable[[Sequence[str]], None]:
        """A side building one message per address as the library's *sample* (same
        subject, sender and body) and inserting the rows in one transaction."""
        import secrets

        # The account row the outbox's foreign key needs, copied as the library wrote it.
        self.conn.execute(
            "INSERT INTO accounts (id, name, owner_id, owner_email, created_at, owner_email_key)"
            " VALUES (?, 'Kunde GmbH', 'owner', 'chef@kunde.test', '2026-01-01T00:00:00+00:00',"
            " 'chef@kunde.test')",
            (account_id,),
        )
        subject, sender = str(sample["Subject"]), str(sample["From"])
        body = sample.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        html_part = sample.get_body(("html",))
        html = html_part.get_content() if html_part is not None else None
        lang = sample.get("Content-Language")

        # ids that sort by time, as the library makes them: the millisecond, then a count
        keys = itertools.count((time.time_ns() // 1_000_000) << 21 | secrets.randbits(21))

        def run(batch: Sequence[str]) -> None:
            rows = []
            now = formatdate(localtime=False)
            at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            for to in batch:
                msg = EmailMessage()
                msg["From"] = sender
                msg["To"] = to
                msg["Subject"] = subject
                msg["Date"] = now
                msg["Message-ID"] = msgid = make_msgid(domain="panel.test")
                if lang is not None:
                    msg["Content-Language"] = lang
                msg.set_content(text)
                if html is not None:
                    msg.add_alternative(html, subtype="html")
                # Stored under the number in its id, as the library stores its own (schema
                # 7), so the floor writes no id index either.
                key = next(keys)
                rows.append(
                    (key, f"msg_{key:016x}", account_id, f"notification.{CATEGORY}",
                     to, msgid, at, at, "pending", msg.as_bytes(), 0)
                )  # fmt: skip
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT INTO outbox (key, id, account_id, kind, recipient, message_id, "
                "created_at, next_attempt_at, status, message, attempts) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self.conn.execute("COMMIT")

        return run


def run(workdir: Path, quick: bool) -> Iterator[str]:
    """The mail figures, each printed row as it is measured, then the costs beside."""
    from ._smtpd import SmtpServerProcess
    from .pairs import ratio_line

    sizes = QUICK if quick else FULL
    with SmtpServerProcess(workdir) as server:
        bench = Bench(workdir, sizes, server)
        yield ratio_line(bench.notify(), NOTIFY_GOAL).row()
        queued = sizes.queued * (sizes.contacts + 1)
        batched, b_lib, b_plain = bench.delivery(
            f"queued delivery, {queued:,} messages, SmtpMailer batch", False,
            "smtplib, one connection", bench.smtplib_one_connection, sizes.contacts,
            sizes.queued,
        )  # fmt: skip
        yield ratio_line(batched, DELIVERY_GOAL).row()
        single, s_lib, s_plain = bench.delivery(
            f"queued delivery (informational), {sizes.per_connection:,} messages, "
            "a connection each", True,
            "smtplib, a connection each", bench.smtplib_per_message,
            sizes.per_connection - 1, 1,
        )  # fmt: skip
        yield ratio_line(single, None).row()
        command, start = bench.command(sizes.contacts, sizes.queued)
    yield ""
    yield from _costs(batched, single, (b_lib, b_plain, s_lib, s_plain))
    library = b_lib.costs.per_message(b_lib.costs.client_cpu)
    yield (
        f"CPU per message, teamaccess deliver of {queued:,} messages (a process; its start "
        f"of {fmt_ns(start * 1e9)} taken off): {fmt_ns(command * 1e9)}, deliver_pending() "
        f"{fmt_ns(library * 1e9)} ({command / library:.2f}x) (information)"
    )


def _costs(batched: Result, single: Result, measured: tuple[_Measured, ...]) -> list[str]:
    b_lib, b_plain, s_lib, s_plain = measured
    lines = [
        f"one connection per message costs the library {single.median / batched.median:.1f}x "
        f"and smtplib {single.floor_median / batched.floor_median:.1f}x the time per message "
        "of one batch (information)",
    ]
    for what, lib, plain in (("batch", b_lib, b_plain), ("a connection each", s_lib, s_plain)):
        lc, pc = (
            lib.costs.per_message(lib.costs.client_cpu),
            plain.costs.per_message(plain.costs.client_cpu),
        )
        ls, ps = (
            lib.costs.per_message(lib.costs.server_cpu),
            plain.costs.per_message(plain.costs.server_cpu),
        )
        lines.append(
            f"CPU per message, {what}: library {fmt_ns(lc * 1e9)}, smtplib {fmt_ns(pc * 1e9)} "
            f"({lc / pc:.2f}x); server {fmt_ns(ls * 1e9)} and {fmt_ns(ps * 1e9)} (information)"
        )
    return lines

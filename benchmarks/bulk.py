"""Bulk import: ``with team.batch():`` against plain ``sqlite3`` writing the same rows.

Each round imports one batch of accounts (the owner and nine members each, made by
``invite`` + ``accept_invitation`` as ``SYSTEM``) through the public API in one
``team.batch()``; the floor writes the rows that leaves behind (account, members,
invitations, their outbox rows, audit events) into a file of the same schema with plain
``sqlite3``, one transaction per batch. Rounds alternate, so both files grow alike.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from teamaccess import SYSTEM, SQLiteStore, TeamAccess

from ._data import GRANTS, SECRET, NullMailer
from ._timing import Result, compare

MEMBERS = 10  # per account, the owner included
GOAL = 2.0


def _rid(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class PlainImport:
    """The floor: the same rows, ``executemany`` per table, one transaction per batch."""

    def __init__(self, path: Path) -> None:
        SQLiteStore(path).close()  # the same schema and indexes as the library's file
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def __call__(self, batch: list[int]) -> None:
        now = datetime.now(UTC)
        at = now.isoformat()
        expires = (now + timedelta(days=7)).isoformat()
        accounts, members, invitations, outbox, events = [], [], [], [], []
        for a in batch:
            acc = _rid("acc")
            owner, owner_email = f"owner{a}", f"chef{a}@kunde{a}.example"
            accounts.append((acc, f"Kunde {a} GmbH", owner, owner_email, at, owner_email))
            members.append((acc, owner, owner_email, owner_email, "owner", '"*"', at, None, 0))
            events.append((_rid("evt"), acc, at, owner, "account.created", acc, "{}"))
            for m in range(1, MEMBERS):
                user, email = f"user{a}-{m}", f"user{a}-{m}@kunde{a}.example"
                perms = json.dumps(GRANTS[m % len(GRANTS)].to_list())
                inv = _rid("inv")
                invitations.append(
                    (inv, acc, email, email, perms, SYSTEM, "accepted", at, expires,
                     secrets.token_hex(32), at, user, 1, "en")
                )  # fmt: skip
                outbox.append(
                    (_rid("msg"), acc, "invitation", email, f"<{inv}@panel.example.com>", at,
                     at, "cancelled", inv, 0)
                )  # fmt: skip
                members.append((acc, user, email, email, "member", perms, at, SYSTEM, m))
                events.append((_rid("evt"), acc, at, SYSTEM, "invitation.sent", inv, "{}"))
                events.append((_rid("evt"), acc, at, user, "invitation.accepted", inv, "{}"))
        x = self.conn.executemany
        self.conn.execute("BEGIN IMMEDIATE")
        x("INSERT INTO accounts (id, name, owner_id, owner_email, created_at, owner_email_key) "
          "VALUES (?, ?, ?, ?, ?, ?)", accounts)  # fmt: skip
        x("INSERT INTO members (account_id, user_id, email, email_key, role, permissions, "
          "joined_at, granted_by, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", members)  # fmt: skip
        x("INSERT INTO invitations (id, account_id, email, email_key, permissions, invited_by, "
          "status, created_at, expires_at, token_hash, closed_at, accepted_by, sent_count, "
          "language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", invitations)  # fmt: skip
        x("INSERT INTO outbox (id, account_id, kind, recipient, message_id, created_at, "
          "next_attempt_at, status, invitation_id, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?)", outbox)  # fmt: skip
        x("INSERT INTO events (id, account_id, at, actor_id, action, target, details) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)", events)  # fmt: skip
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class LibraryImport:
    """The library: one ``team.batch()`` per batch of accounts, public API only."""

    def __init__(self, path: Path) -> None:
        self.team = TeamAccess(SQLiteStore(path), NullMailer(), secret_key=SECRET,
                               rate_limit=10**9)  # fmt: skip

    def __call__(self, batch: list[int]) -> None:
        team = self.team
        with team.batch():
            for a in batch:
                acc = team.create_account(
                    name=f"Kunde {a} GmbH", owner_id=f"owner{a}",
                    owner_email=f"chef{a}@kunde{a}.example",
                )  # fmt: skip
                for m in range(1, MEMBERS):
                    email = f"user{a}-{m}@kunde{a}.example"
                    inv = team.invite(
                        acc.id, actor_id=SYSTEM, email=email,
                        permissions=GRANTS[m % len(GRANTS)],
                    )  # fmt: skip
                    team.accept_invitation(inv.token or "", user_id=f"user{a}-{m}", email=email)

    def close(self) -> None:
        self.team.close()


def run(workdir: Path, accounts_per_batch: int, rounds: int) -> Result:
    library = LibraryImport(workdir / "bulk-library.db")
    floor = PlainImport(workdir / "bulk-floor.db")
    counter = iter(range(10**9))

    def batches(_round: int) -> tuple[list[Any], list[Any]]:
        ids = [next(counter) for _ in range(accounts_per_batch)]
        return ids, ids

    try:
        return compare(
            f"bulk import in team.batch(), {accounts_per_batch:,} accounts x {MEMBERS} "
            "members per batch",
            lambda b: library(list(b)),
            "plain sqlite3, the same rows, a transaction per batch",
            lambda b: floor(list(b)),
            batches,
            rounds=rounds,
            warmup=1,
        )
    finally:
        library.close()
        floor.close()

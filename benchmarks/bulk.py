"""Bulk import: ``import_accounts()`` against plain ``sqlite3`` writing the same rows.

The figure held to the goal: each round imports one chunk of accounts (an owner and nine
members each, with ids given, as ``teamaccess import`` gives them) with
``team.import_accounts(rows)``, which checks every row and commits the chunk; the floor
takes the same row dicts and writes the rows the library writes (the account, ten
members, one audit event) into a file of the same schema (its triggers included) with
plain ``sqlite3``: ``executemany`` per table, one transaction per chunk, no checks. Rounds
alternate, so both files grow alike; 100 rounds of 1,000 accounts are 100,000 accounts of
ten members on each side.

For comparison, the earlier figure: members made by ``invite`` + ``accept_invitation``
in one ``team.batch()``, against the rows that leaves behind (with invitations, outbox
rows and three events per member), at a small size.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from teamaccess import SYSTEM, SQLiteStore, TeamAccess

from ._data import GRANTS, SECRET, NullMailer, page_size
from ._timing import Result, compare

MEMBERS = 10  # per account, the owner included
GOAL = 2.0
_INFO = None  # the batch() figure is held to no goal any more


def import_rows(first: int, count: int) -> list[dict[str, Any]]:
    """Accounts *first* to *first + count - 1* as ``import_accounts()`` rows."""
    rows = []
    for a in range(first, first + count):
        rows.append(
            {
                "id": f"K-{a}",
                "name": f"Kunde {a} GmbH",
                "owner_id": f"owner{a}",
                "owner_email": f"chef{a}@kunde{a}.example",
                "members": [
                    {
                        "user_id": f"user{a}-{m}",
                        "email": f"user{a}-{m}@kunde{a}.example",
                        "permissions": GRANTS[m % len(GRANTS)].to_list(),
                    }
                    for m in range(1, MEMBERS)
                ],
            }
        )
    return rows


class PlainRows:
    """The floor of ``import_accounts()``: the rows it writes, from the same row dicts."""

    def __init__(self, path: Path) -> None:
        SQLiteStore(path, page_size=page_size()).close()  # the same schema, indexes and triggers
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        texts: dict[Any, str] = {}
        accounts: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for row in rows:
            acc, owner = row["id"], row["owner_id"]
            accounts.append((acc, row["name"], owner, row["owner_email"], at))
            members.append((acc, owner, row["owner_email"], "owner", '"*"', at, None, "active",
                            None, "{}", row["owner_email"], 1))  # fmt: skip
            for seq, m in enumerate(row["members"], start=2):
                perms = m["permissions"]
                key = tuple(perms) if isinstance(perms, list) else perms
                text = texts.get(key)
                if text is None:
                    text = texts[key] = json.dumps(perms)
                members.append((acc, m["user_id"], m["email"], "member", text, at, SYSTEM,
                                "active", None, "{}", m["email"], seq))  # fmt: skip
            details = {"name": row["name"], "owner_id": owner, "contacts": 0,
                       "members": [m["user_id"] for m in row["members"]]}  # fmt: skip
            events.append((_rid("evt"), acc, at, SYSTEM, "account.imported", acc,
                           json.dumps(details, sort_keys=True)))  # fmt: skip
        x = self.conn.executemany
        self.conn.execute("BEGIN IMMEDIATE")
        x("INSERT INTO accounts (id, name, owner_id, owner_email, created_at) "
          "VALUES (?, ?, ?, ?, ?)", accounts)  # fmt: skip
        x("INSERT INTO members (account_id, user_id, email, role, permissions, joined_at, "
          "granted_by, status, access_until, metadata, email_key, seq) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", members)  # fmt: skip
        x("INSERT INTO events (id, account_id, at, actor_id, action, target, details) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)", events)  # fmt: skip
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class LibraryRows:
    """The library: ``import_accounts()`` on a chunk of rows (one commit)."""

    def __init__(self, path: Path) -> None:
        self.team = TeamAccess(
            SQLiteStore(path, page_size=page_size()), NullMailer(), secret_key=SECRET
        )

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.team.import_accounts(rows, chunk_size=len(rows))

    def close(self) -> None:
        self.team.close()


def run_import(workdir: Path, accounts: int, chunk: int) -> Result:
    """*accounts* accounts on each side, *chunk* per round (a commit each)."""
    library = LibraryRows(workdir / "import-library.db")
    floor = PlainRows(workdir / "import-floor.db")
    rounds = max(1, accounts // chunk)

    def batches(i: int) -> tuple[list[Any], list[Any]]:
        rows = import_rows(i * chunk, chunk)
        return rows, rows

    try:
        return compare(
            f"import_accounts(), {rounds * chunk:,} accounts x {MEMBERS} members, "
            f"{chunk:,} a commit",
            library,
            f"plain sqlite3, the same rows, a transaction per {chunk:,} accounts",
            floor,
            batches,
            rounds=rounds,
            warmup=1,
        )
    finally:
        library.close()
        floor.close()


def _rid(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class PlainImport:
    """The floor: the same rows, ``executemany`` per table, one transaction per batch."""

    def __init__(self, path: Path) -> None:
        SQLiteStore(
            path, page_size=page_size()
        ).close()  # the same schema and indexes as the library's file
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def __call__(self, batch: list[int]) -> None:
        now = datetime.now(UTC)
        at = now.isoformat()
        expires = (now + timedelta(days=7)).isoformat()
        accounts: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        invitations: list[tuple[Any, ...]] = []
        outbox: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
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
        self.team = TeamAccess(SQLiteStore(path, page_size=page_size()), NullMailer(),
                               secret_key=SECRET, rate_limit=10**9)  # fmt: skip

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
            f"for comparison: invite + accept in team.batch(), {accounts_per_batch:,} "
            f"accounts x {MEMBERS} members per batch",
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

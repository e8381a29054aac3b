"""Child processes for tests/test_postgres.py: each is a separate process on one server.

Run as ``python tests/postgres_helpers.py COMMAND CONNINFO SCHEMA ARGS...``; every command
reports on stdout, one JSON object per line, so the parent asserts what the child saw.

- ``accept NOW START TOKEN USER EMAIL``: say ``ready``, wait for the file START to exist
  (so all racers start together), accept the invitation, report the outcome.
- ``open START``: wait for START, open the store (and so create or migrate the schema),
  add an account, report the schema version.
- ``check USER ACCOUNT PERMISSION REVOKED``: ask ``can()`` once, say ``ready``, then ask
  over and over. Before each question it looks whether the file REVOKED exists (the
  parent creates it once the revocation has committed); after 50 answers past that point
  it reports the first answer, how many came before and after, and how many of those
  after were still "yes".
- ``drain START OUTDIR``: wait for START, then ``deliver_pending(limit=3)`` until nothing
  is due, writing the mail as files to OUTDIR; report how many it sent.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from typing import Any

from teamaccess import MemoryMailer, PostgresStore, TeamAccess, TeamAccessError
from teamaccess.testing import FrozenClock

SECRET = "test-secret-key"


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.001)  # a start line for the race, not a clock


def team_on(store: PostgresStore, now: str | None = None) -> TeamAccess:
    clock = FrozenClock(datetime.fromisoformat(now)) if now else None
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock)


def accept(conninfo: str, schema: str, now: str, start: str, token: str, user: str,
           email: str) -> None:  # fmt: skip
    team = team_on(PostgresStore(conninfo, schema=schema, max_size=1), now)
    say(ready=True)
    wait_for(start)
    try:
        member = team.accept_invitation(token, user_id=user, email=email)
    except Exception as exc:
        say(error=type(exc).__name__, teamaccess=isinstance(exc, TeamAccessError),
            message=str(exc))  # fmt: skip
    else:
        say(member=member.user_id)
    team.close()


def open_fresh(conninfo: str, schema: str, start: str) -> None:
    say(ready=True)
    wait_for(start)
    try:
        store = PostgresStore(conninfo, schema=schema, max_size=1)
    except TeamAccessError as exc:
        say(error=type(exc).__name__, message=str(exc))
        return
    team = team_on(store)
    account = team.create_account(name="Race", owner_id="o", owner_email="o@example.org")
    say(version=store.schema_version, account=account.id)
    team.close()


def check(conninfo: str, schema: str, user: str, account: str, permission: str,
          revoked: str) -> None:  # fmt: skip
    team = team_on(PostgresStore(conninfo, schema=schema, max_size=1))
    counts: dict[str, Any] = {"before": 0, "after": 0, "stale": 0, "first": None}
    counts["first"] = team.can(user, account, permission)
    say(ready=True)
    # Ask until 50 answers came after the revocation committed.
    while counts["after"] < 50:
        after = os.path.exists(revoked)
        answer = team.can(user, account, permission)
        if after:
            counts["after"] += 1
            counts["stale"] += answer
        else:
            counts["before"] += 1
    say(**counts)
    team.close()


def drain(conninfo: str, schema: str, start: str, outdir: str) -> None:
    from teamaccess import FileMailer

    store = PostgresStore(conninfo, schema=schema, max_size=1)
    team = TeamAccess(store, FileMailer(outdir), secret_key=SECRET, delivery="queue")
    say(ready=True)
    wait_for(start)
    sent = 0
    # Small batches, so the two workers take turns at the outbox many times.
    while rows := team.deliver_pending(limit=3):
        sent += sum(row.status == "sent" for row in rows)
    say(sent=sent)
    team.close()


COMMANDS = {"accept": accept, "open": open_fresh, "check": check, "drain": drain}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])

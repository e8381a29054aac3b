"""Child processes for tests/test_sqlite.py: each is a separate process on one SQLite file.

Run as ``python tests/sqlite_helpers.py COMMAND ARGS...``; every command reports on
stdout, one JSON object per line, so the parent asserts what the child saw.

- ``accept DB NOW START TOKEN USER EMAIL``: say ``ready``, wait for the file START to
  exist (so all racers start together), accept the invitation, report the outcome.
- ``open DB START``: wait for START, open (and so create) the file, add an account.
- ``open-rounds DIR ROUNDS``: for each round N, say ``ready``, wait for DIR/startN, open
  (and so create) DIR/N.db, add an account, close it, report; many races per process.
- ``watch DB``: a long-lived process; for every ``USER ACCOUNT PERMISSION`` line on
  stdin, answer ``can()``.
- ``hang DB NOW TOKEN USER EMAIL WHEN``: accept, but stop for good just before
  (WHEN=before) or just after (WHEN=after) the COMMIT, having said so; the parent kills it.
- ``accept-all DB NOW USER-PREFIX TOKEN...``: accept each token in turn, reporting each.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess, TeamAccessError
from teamaccess.testing import FrozenClock

SECRET = "test-secret-key"


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def team_on(store: SQLiteStore, now: str) -> TeamAccess:
    clock = FrozenClock(datetime.fromisoformat(now))
    return TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock)


def outcome(call: Any) -> dict[str, object]:
    try:
        member = call()
    except Exception as exc:
        return {
            "error": type(exc).__name__,
            "teamaccess": isinstance(exc, TeamAccessError),
            "message": str(exc),
        }
    return {"member": member.user_id}


def accept(db: str, now: str, start: str, token: str, user: str, email: str) -> None:
    team = team_on(SQLiteStore(db), now)
    say(ready=True)
    while not os.path.exists(start):
        time.sleep(0.001)  # a start line for the race, not a clock
    say(**outcome(lambda: team.accept_invitation(token, user_id=user, email=email)))


def open_fresh(db: str, start: str) -> None:
    say(ready=True)
    while not os.path.exists(start):
        time.sleep(0.001)  # a start line for the race, not a clock
    try:
        store = SQLiteStore(db)
    except TeamAccessError as exc:
        say(error=type(exc).__name__, message=str(exc))
        return
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    account = team.create_account(name="Race", owner_id="o", owner_email="o@example.org")
    say(version=store.schema_version, account=account.id)


def open_rounds(directory: str, rounds: str) -> None:
    for n in range(int(rounds)):
        say(ready=n)
        start = os.path.join(directory, f"start{n}")
        while not os.path.exists(start):
            time.sleep(0.0005)  # a start line for the race, not a clock
        try:
            store = SQLiteStore(os.path.join(directory, f"{n}.db"))
            team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
            team.create_account(name="Race", owner_id="o", owner_email="o@example.org")
            version = store.schema_version
            # Closing too: the last connection to close checkpoints the WAL, which is one
            # of the moments another process's opening meets an unhandled SQLITE_BUSY.
            team.close()
        except TeamAccessError as exc:
            say(n=n, error=type(exc).__name__, message=str(exc))
        else:
            say(n=n, version=version)


def watch(db: str) -> None:
    store = SQLiteStore(db)
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    say(ready=True)
    for line in sys.stdin:
        user, account, permission = line.split()
        say(can=team.can(user, account, permission))


class HangingStore(SQLiteStore):
    """Stops for good around the COMMIT of its first write unit, after saying so."""

    when = "before"

    @contextmanager
    def begin(self) -> Iterator[Any]:
        with super().begin() as uow:
            real_commit = uow.commit

            def commit() -> None:
                if self.when == "after":
                    real_commit()
                say(stopped=self.when)
                time.sleep(3600)  # killed here by the parent

            uow.commit = commit
            yield uow


def hang(db: str, now: str, token: str, user: str, email: str, when: str) -> None:
    store = HangingStore(db)
    store.when = when
    team = team_on(store, now)
    team.accept_invitation(token, user_id=user, email=email)


def accept_all(db: str, now: str, prefix: str, *tokens: str) -> None:
    team = team_on(SQLiteStore(db), now)
    for n, token in enumerate(tokens):
        user = f"{prefix}{n}"
        say(
            n=n,
            **outcome(
                partial(team.accept_invitation, token, user_id=user, email=f"{user}@example.org")
            ),
        )


COMMANDS = {
    "open": open_fresh,
    "accept": accept,
    "open-rounds": open_rounds,
    "watch": watch,
    "hang": hang,
    "accept-all": accept_all,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])

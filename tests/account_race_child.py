"""A child process for tests/test_account_rate_race.py: one of several racing creators.

Run as ``python tests/account_race_child.py BACKEND TARGET SCHEMA NOW START USER TRIES``
(BACKEND is ``sqlite`` with TARGET a file, or ``postgres`` with TARGET a conninfo). It
opens the store, says ``ready``, waits for the file START to exist (so all racers start
together), then tries TRIES times to create an account owned by USER and reports each
outcome on stdout, one JSON object per line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime

from teamaccess import MemoryMailer, RateLimited, SQLiteStore, TeamAccess
from teamaccess.testing import FrozenClock


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(
    backend: str, target: str, schema: str, now: str, start: str, user: str, tries: str
) -> None:
    if backend == "postgres":
        from teamaccess import PostgresStore

        store = PostgresStore(target, schema=schema, max_size=1)
    else:
        store = SQLiteStore(target, timeout=30)
    team = TeamAccess(
        store,
        MemoryMailer(),
        secret_key="test-secret-key",
        clock=FrozenClock(datetime.fromisoformat(now)),
        account_rate_limit=5,
    )
    say(ready=True)
    while not os.path.exists(start):
        time.sleep(0.001)  # a start line for the race, not a clock
    for n in range(int(tries)):
        try:
            team.create_account(name=f"A{n}", owner_id=user, owner_email="o@example.org")
        except RateLimited:
            say(outcome="limited")
        except Exception as exc:
            say(outcome="error", error=type(exc).__name__, message=str(exc))
        else:
            say(outcome="created")
    team.close()


if __name__ == "__main__":
    main(*sys.argv[1:])

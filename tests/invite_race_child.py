"""A child process for tests/test_invite_race.py: one of several racing inviters.

Run as ``python tests/invite_race_child.py BACKEND TARGET SCHEMA NOW START ACCOUNT ACTOR
EMAIL...`` (BACKEND is ``sqlite`` with TARGET a file, or ``postgres`` with TARGET a
conninfo). It opens the store, says ``ready``, waits for the file START to exist (so all
racers start together), then has ACTOR invite each EMAIL into ACCOUNT and reports each
outcome on stdout, one JSON object per line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime

from teamaccess import (
    AlreadyInvited,
    MemoryMailer,
    PermissionSet,
    RateLimited,
    SQLiteStore,
    TeamAccess,
)
from teamaccess.testing import FrozenClock


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(
    backend: str, target: str, schema: str, now: str, start: str, account: str, actor: str,
    *emails: str,
) -> None:  # fmt: skip
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
        rate_limit=5,
        recipient_rate_limit=3,
    )
    say(ready=True)
    while not os.path.exists(start):
        time.sleep(0.001)  # a start line for the race, not a clock
    for email in emails:
        try:
            team.invite(account, actor_id=actor, email=email, permissions=PermissionSet.none())
        except AlreadyInvited:
            say(outcome="invited already")
        except RateLimited as exc:
            say(outcome="limited", who="address" if email in str(exc) else "account")
        except Exception as exc:
            say(outcome="error", error=type(exc).__name__, message=str(exc))
        else:
            say(outcome="sent")
    team.close()


if __name__ == "__main__":
    main(*sys.argv[1:])

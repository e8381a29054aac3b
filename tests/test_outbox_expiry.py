"""A queue lifetime: a message that waits ``expire_after`` in the outbox is closed as
expired at its next failed try, whatever the failures were (refusals and network failures
in turn never reach ``give_up_after`` refusals in a row). Against a real SMTP server and a
port where nothing listens, on every backend, and through ``teamaccess deliver``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import HOST, SmtpServer, free_port

from teamaccess import SmtpMailer, SQLiteStore, Store, TeamAccess, ValidationError
from teamaccess.testing import FrozenClock

DEAD = "weg@example.org"
NO_USER = "550 5.1.1 <weg@example.org>: no such user"


def team_for(store: Store, clock: FrozenClock, port: int, **kw: object) -> TeamAccess:
    return TeamAccess(
        store, SmtpMailer(HOST, port, timeout=5), secret_key=SECRET, clock=clock,
        accept_url="https://panel.example.com/accept?token={token}",
        sender="Panel <noreply@panel.example.com>", delivery="queue", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_alternating_failures_are_closed_once_expired(store: Store, clock: FrozenClock) -> None:
    down = free_port()  # nothing listens: a network failure
    with SmtpServer(rcpt_replies={DEAD: NO_USER}) as server:
        refusing = team_for(store, clock, server.port, expire_after=timedelta(hours=30))
        failing = team_for(store, clock, down, expire_after=timedelta(hours=30))
        acc = refusing.create_account(name="M", owner_id="o", owner_email="o@example.org").id
        refusing.add_contact(acc, actor_id="o", name="K", email=DEAD, categories=["billing"])
        refusing.notify(acc, "billing", subject="Rechnung", text="Ihre Rechnung")
        statuses = []
        for turn in range(12):
            team = refusing if turn % 2 == 0 else failing
            rows = [r for r in team.deliver_pending() if r.recipient == DEAD]
            if rows:
                statuses.append((rows[0].status, (rows[0].last_error or "")[:40]))
            if rows and rows[0].status == "cancelled":
                break
            clock.advance(timedelta(hours=6, minutes=1))
    [closed] = [m for m in refusing.undeliverable_messages(acc) if m.recipient == DEAD]
    assert closed.status == "cancelled"
    assert closed.last_error is not None
    assert closed.last_error.startswith("undeliverable: expired: waited 1 d ")
    assert "(expire_after 1 d 6 h), not retried; last error: " in closed.last_error
    # Before that it waited, its refusals never two in a row.
    assert [s for s, _ in statuses[:-1]] == ["pending"] * (len(statuses) - 1)
    assert (clock.now() - closed.created_at) >= timedelta(hours=30)
    assert closed.next_attempt_at == clock.now()  # when it was closed, for --list --refused
    events = [e for e in refusing.audit_log(acc) if e.action == "mail.expired"]
    assert [e.target for e in events] == [closed.id]
    assert events[0].details["email"] == DEAD
    assert refusing.pending_messages(acc) == []


def test_younger_messages_wait(store: Store, clock: FrozenClock) -> None:
    team = team_for(store, clock, free_port(), expire_after=timedelta(days=5))
    acc = team.create_account(name="M", owner_id="o", owner_email="o@example.org").id
    team.notify(acc, "billing", subject="Rechnung", text="Ihre Rechnung")
    clock.advance(timedelta(days=4, hours=23))
    [row] = team.deliver_pending()
    assert (row.status, row.attempts) == ("pending", 1)


@pytest.mark.parametrize("value", [timedelta(0), timedelta(hours=-1), 5, "5d", None])
def test_a_bad_lifetime_is_refused(store: Store, value: object) -> None:
    with pytest.raises(ValidationError, match="expire_after must be a positive timedelta"):
        team_for(store, FrozenClock(datetime.now(UTC)), free_port(), expire_after=value)


@pytest.mark.parametrize(
    ("args", "env", "closed"),
    [
        ((), {}, False),  # 5 days by default: a day-old message waits
        (("--expire-after", "12"), {}, True),
        ((), {"TEAMACCESS_EXPIRE_AFTER": "12"}, True),
        (("--expire-after", "48"), {"TEAMACCESS_EXPIRE_AFTER": "12"}, False),
    ],
)
def test_through_the_command(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], closed: bool
) -> None:
    db = tmp_path / "team.db"
    day_ago = FrozenClock(datetime.now(UTC) - timedelta(days=1))
    team = team_for(SQLiteStore(db), day_ago, free_port())
    acc = team.create_account(name="M", owner_id="o", owner_email="o@example.org").id
    team.notify(acc, "billing", subject="Rechnung", text="Ihre Rechnung")
    team.close()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", str(db), "--mail",
         f"smtp://{HOST}:{free_port()}?security=plain",
         "--accept-url", "https://panel.example.com/accept?token={token}",
         "--sender", "Panel <noreply@panel.example.com>", "deliver", "--json", *args],
        env={**clean, "TEAMACCESS_SECRET_KEY": SECRET, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    [row] = json.loads(proc.stdout)["messages"]
    if closed:
        assert row["status"] == "cancelled"
        assert row["last_error"].startswith("undeliverable: expired: waited 1 d 0 h")
        assert "(expire_after 12 h 0 min)" in row["last_error"]
        listed = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--list",
             "--refused", "--json"],
            env={**clean, "TEAMACCESS_SECRET_KEY": SECRET},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        [shown] = json.loads(listed.stdout)
        assert (shown["id"], shown["closed_at"]) == (row["id"], row["next_attempt_at"])
    else:
        assert row["status"] == "pending"

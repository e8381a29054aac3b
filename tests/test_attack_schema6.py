"""Attacks on SQLite schema 6: the rules that now rest on unique indexes alone, raced by
real processes on one file.

One unique index holds "one pending invitation per address and account", and accepting
no longer asks whether the user or the address is a member: it relies on the member
insert's uniqueness. Several processes racing on one file must still get one invitation,
one member, and clear errors, with nothing half-written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess

# A racer: opens the file, says it is ready, waits for the start file, makes one call,
# and reports the outcome as one JSON line.
_RACER = """
import json, os, sys, time
from teamaccess import MemoryMailer, PermissionSet, SQLiteStore, TeamAccess, TeamAccessError
secret, db, start, call, *args = sys.argv[1:]
team = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=secret,
                  require_email_match=False,
                  recipient_rate_limit=int(os.environ.get("RACE_RECIPIENT_LIMIT", "10")))
print(json.dumps({"ready": True}), flush=True)
while not os.path.exists(start):
    time.sleep(0.001)  # a start line for the race, not a clock
try:
    if call == "invite":
        account, email = args
        done = team.invite(account, actor_id="owner", email=email,
                           permissions=PermissionSet.of("billing.view")).id
    else:
        token, user, email = args
        done = team.accept_invitation(token, user_id=user, email=email).user_id
    print(json.dumps({"done": done}), flush=True)
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__,
                      "teamaccess": isinstance(exc, TeamAccessError)}), flush=True)
"""


def race(db: Path, calls: list[list[str]], **env_vars: str) -> list[dict[str, object]]:
    """Run one process per call, all released at once; their reports in call order."""
    start = db.with_name(f"start-{len(list(db.parent.iterdir()))}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env_vars}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, SECRET, str(db), str(start), *call],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for call in calls
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline()) == {"ready": True}
        start.touch()
        reports = []
        for child in children:
            out, _ = child.communicate(timeout=120)
            reports.append(json.loads(out))
        return reports
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def open_team(db: Path) -> TeamAccess:
    return TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=SECRET, require_email_match=False)


def integrity(db: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


@pytest.mark.slow
class TestRacesOnOneFile:
    """Six processes at once: one invitation per address, one membership per person."""

    def test_one_address_invited_by_six_processes(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        team = open_team(db)
        acc = team.create_account(name="Muster", owner_id="owner", owner_email="o@example.org")
        # the same address as six spellings: one comparison key
        spellings = ["pia@example.org", "Pia@example.org", "PIA@EXAMPLE.ORG",
                     "pia@Example.Org", " pia@example.org", "pIa@example.ORG"]  # fmt: skip
        reports = race(db, [["invite", acc.id, e] for e in spellings])
        done = [r for r in reports if "done" in r]
        assert len(done) == 1, reports
        assert sorted(r.get("error") for r in reports if "error" in r) == ["AlreadyInvited"] * 5
        assert all(r.get("teamaccess", True) for r in reports)
        [pending] = team.pending_invitations(acc.id)
        assert pending.id == done[0]["done"]
        assert integrity(db) == [("ok",)]

    def test_one_user_accepting_six_invitations_becomes_one_member(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        team = open_team(db)
        acc = team.create_account(name="Muster", owner_id="owner", owner_email="o@example.org")
        tokens = []
        for n in range(6):
            inv = team.invite(
                acc.id, actor_id="owner", email=f"alias{n}@example.org",
                permissions=PermissionSet.of("billing.view"),
            )  # fmt: skip
            assert inv.token is not None
            tokens.append(inv.token)
        # require_email_match=False: each accepts with the same login and address
        reports = race(db, [["accept", t, "pia", "pia@example.org"] for t in tokens])
        assert [r for r in reports if "done" in r] == [{"done": "pia"}], reports
        assert sorted(r.get("error") for r in reports if "error" in r) == ["AlreadyMember"] * 5
        assert [m.user_id for m in team.members(acc.id)] == ["owner", "pia"]
        # the losers' invitations are untouched: nothing of their unit was kept
        assert len(team.pending_invitations(acc.id)) == 5
        assert integrity(db) == [("ok",)]

    def test_six_users_with_one_address_make_one_member(self, tmp_path: Path) -> None:
        db = tmp_path / "team.db"
        team = open_team(db)
        acc = team.create_account(name="Muster", owner_id="owner", owner_email="o@example.org")
        calls = []
        for n in range(6):
            inv = team.invite(
                acc.id, actor_id="owner", email=f"alias{n}@example.org",
                permissions=PermissionSet.of("billing.view"),
            )  # fmt: skip
            assert inv.token is not None
            calls.append(["accept", inv.token, f"user{n}", "Shared@Example.org"])
        reports = race(db, calls)
        assert len([r for r in reports if "done" in r]) == 1, reports
        assert sorted(r.get("error") for r in reports if "error" in r) == ["AlreadyMember"] * 5
        members = team.members(acc.id)
        assert [m.email.lower() for m in members] == ["o@example.org", "shared@example.org"]
        assert integrity(db) == [("ok",)]

    def test_the_per_recipient_limit_holds_across_six_processes(self, tmp_path: Path) -> None:
        """The limit counts the address's invitation mails through the same index."""
        db = tmp_path / "team.db"
        team = open_team(db)
        accounts = [
            team.create_account(name=f"K{n}", owner_id="owner", owner_email=f"o{n}@example.org").id
            for n in range(6)
        ]
        calls = [["invite", acc, "pia@example.org"] for acc in accounts]
        reports = race(db, calls, RACE_RECIPIENT_LIMIT="3")
        assert len([r for r in reports if "done" in r]) == 3, reports
        assert sorted(r.get("error") for r in reports if "error" in r) == ["RateLimited"] * 3
        pending = [len(team.pending_invitations(acc)) for acc in accounts]
        assert sum(pending) == 3
        assert integrity(db) == [("ok",)]

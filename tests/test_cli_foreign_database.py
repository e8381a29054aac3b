"""A database some other program made (the panel, with its own secret key) and no key
file beside it: the command does not make up a key of its own, since every link it then
signed would fail in the panel ("altered"), and a mail worker would send such links with
exit status 0. It says to give the panel's key, with exit status 3, and writes nothing.
Real subprocesses on a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from teamaccess import PermissionSet, SQLiteStore, TeamAccess
from teamaccess.testing import MemoryMailer

PANEL_KEY = "the-panel-key-" + "p" * 20
URL = "https://panel.example.com/accept?token={token}"


def panel_database(tmp_path: Path) -> tuple[Path, str]:
    """What a panel leaves: a file with an account and a queued invitation, no key file."""
    db = tmp_path / "team.db"
    team = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=PANEL_KEY, accept_url=URL,
                      delivery="queue")  # fmt: skip
    try:
        account = team.create_account(name="Muster", owner_id="max", owner_email="m@muster.de")
        team.invite(account.id, actor_id="max", email="dev@example.org",
                    permissions=PermissionSet.of("billing.view"))  # fmt: skip
    finally:
        team.close()
    return db, account.id


def command(
    db: Path, *args: str, key: str | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command on *db*, its mail written as files into outbox/ beside it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    env.update(extra or {})
    if key is not None:
        env["TEAMACCESS_SECRET_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", "--db", str(db), "--accept-url", URL,
         "--mail", f"file:{db.parent / 'outbox'}", *args],
        cwd=db.parent, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def outbox(db: Path) -> list[tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(db) as con:
        return con.execute("SELECT status, recipient FROM outbox ORDER BY id").fetchall()


@pytest.mark.parametrize(
    "args",
    [
        ("deliver",),
        ("invite", "ACCOUNT", "x@example.org", "--all", "--as", "max"),
        ("accounts", "create", "--name", "B", "--owner-id", "b", "--owner-email", "b@b.de"),
    ],
    ids=["deliver", "invite", "create-account"],
)
def test_no_key_of_its_own_for_a_database_it_did_not_make(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db, account = panel_database(tmp_path)
    before = db.read_bytes(), outbox(db)
    proc = command(db, *(account if a == "ACCOUNT" else a for a in args))
    assert proc.returncode == 3, proc.stderr
    key = f"{db}.secret"
    assert proc.stderr == (
        f"error: the database {db} has no key file {key} beside it: the program that made "
        "it keeps its secret key elsewhere. Set TEAMACCESS_SECRET_KEY to that key (links "
        "this command signed or checked with another would not open); if no other program "
        "uses the "
        f"database, create a key file: (umask 077; python -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))' > {key})\n"
    )
    assert not Path(key).exists()
    assert not (tmp_path / "outbox").exists()
    assert outbox(db) == before[1]


def test_with_the_panel_key_the_worker_sends_a_link_the_panel_opens(tmp_path: Path) -> None:
    db, _ = panel_database(tmp_path)
    proc = command(db, "deliver", key=PANEL_KEY)
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"{db}.secret").exists()
    mails = sorted((tmp_path / "outbox").glob("*.eml"))
    invitation = [m for m in mails if b"dev@example.org" in m.read_bytes()]
    assert len(invitation) == 1
    import re
    from email import message_from_bytes, policy

    read = message_from_bytes(invitation[0].read_bytes(), policy=policy.default)
    text = read.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"token=([\w.\-]+)", text)
    assert token is not None
    panel = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=PANEL_KEY, accept_url=URL)
    try:
        member = panel.accept_invitation(token.group(1), user_id="dev", email="dev@example.org")
    finally:
        panel.close()
    assert member.user_id == "dev"


def test_a_new_database_still_gets_its_key_file(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    proc = command(db, "accounts", "create", "--name", "A", "--owner-id", "a",
                   "--owner-email", "a@a.de")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(f"{db}.secret").stat().st_mode & 0o777 == 0o600
    again = command(db, "accounts", "create", "--name", "B", "--owner-id", "b",
                    "--owner-email", "b@b.de")  # fmt: skip
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("purge",), {}),
        (("delete-account", "ACCOUNT", "--as", "system", "--yes"), {}),
        (("erase", "--email", "dev@example.org", "--as", "system", "--yes"),
         {"TEAMACCESS_PSEUDONYM_KEY": "the-pseudonym-key-" + "q" * 20}),
    ],
    ids=["purge", "delete-account", "erase-with-pseudonym-key"],
)  # fmt: skip
def test_what_signs_nothing_runs_without_the_key(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    """Purging, deleting an account, and erasing with a pseudonym key of its own sign no
    link and derive nothing from the secret key: they run on the panel's database, and
    leave no key file."""
    db, account = panel_database(tmp_path)
    proc = command(db, *(account if a == "ACCOUNT" else a for a in args), extra=env)
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"{db}.secret").exists()


def test_inspect_asks_for_the_panels_key_rather_than_call_its_link_altered(
    tmp_path: Path,
) -> None:
    """``inspect`` checks a link: with a key made up for the panel's database it told an
    operator that the customer's genuine link was invalid or altered (exit status 7)."""
    db, account = panel_database(tmp_path)
    panel = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=PANEL_KEY, accept_url=URL)
    try:
        token = panel.invite(account, actor_id="max", email="ops@example.org",
                             permissions=PermissionSet.none()).token  # fmt: skip
    finally:
        panel.close()
    assert token is not None
    proc = command(db, "inspect", token)
    assert proc.returncode == 3, proc.stderr
    assert "has no key file" in proc.stderr
    assert "Set TEAMACCESS_SECRET_KEY" in proc.stderr
    assert not Path(f"{db}.secret").exists()
    found = command(db, "inspect", token, key=PANEL_KEY)
    assert found.returncode == 0, found.stderr
    assert "ops@example.org" in found.stdout


def test_listing_needs_no_key(tmp_path: Path) -> None:
    """What only reads (members, the waiting mail) runs on the panel's database as before."""
    db, account = panel_database(tmp_path)
    for args in (("members", account), ("deliver", "--list"), ("audit", account)):
        proc = command(db, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert not Path(f"{db}.secret").exists()


def test_erasing_without_a_pseudonym_key_needs_the_panels_key(tmp_path: Path) -> None:
    db, _ = panel_database(tmp_path)
    proc = command(db, "erase", "--email", "dev@example.org", "--as", "system", "--yes")
    assert proc.returncode == 3, proc.stderr
    assert "Set TEAMACCESS_SECRET_KEY" in proc.stderr


def test_migrate_first_then_invite(tmp_path: Path) -> None:
    """``migrate`` on a new path makes the key file with the database, so the commands
    after it find one (it made none, and the next command refused the database)."""
    db = tmp_path / "new.db"
    assert command(db, "migrate").returncode == 0
    assert Path(f"{db}.secret").stat().st_mode & 0o777 == 0o600
    made = command(db, "accounts", "create", "--name", "A", "--owner-id", "a",
                   "--owner-email", "a@a.de")  # fmt: skip
    assert made.returncode == 0, made.stderr
    account = made.stdout.split()[2]
    invited = command(db, "invite", account, "x@example.org", "--all", "--as", "a")
    assert invited.returncode == 0, invited.stderr


def test_a_refused_new_database_takes_its_key_file_along(tmp_path: Path) -> None:
    """A command refused on a new path leaves neither the database nor the key file
    it made with it."""
    db = tmp_path / "new.db"
    proc = command(db, "invite", "acc_00000000000000000000", "x@example.org", "--all",
                   "--as", "a")  # fmt: skip
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []

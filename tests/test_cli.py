"""The ``teamaccess`` command, through click's runner on the real default (a SQLite file
and ``.eml`` files in ``./outbox``), plus one real run of the installed command."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from tests.smtp_server import Certificates, SmtpServer

from teamaccess import SYSTEM, SQLiteStore
from teamaccess._cli import cli
from teamaccess._cli.app import Integer

ENV_VARS = [
    "TEAMACCESS_DB",
    "TEAMACCESS_OUTBOX",
    "TEAMACCESS_SECRET_KEY",
    "TEAMACCESS_SECRET_KEY_FALLBACKS",
    "TEAMACCESS_SMTP_HOST",
    "TEAMACCESS_SMTP_PORT",
    "TEAMACCESS_SMTP_SECURITY",
    "TEAMACCESS_SMTP_USER",
    "TEAMACCESS_SMTP_PASSWORD",
    "TEAMACCESS_ACCEPT_URL",
    "TEAMACCESS_LANGUAGE",
    "TEAMACCESS_SENDER",
    "TEAMACCESS_ACTOR",
    "TEAMACCESS_MAIL",
    "TEAMACCESS_DELIVERY",
    "TEAMACCESS_PSEUDONYM_KEY",
    "TEAMACCESS_CATALOG",
    "TEAMACCESS_TEMPLATES",
]


class Cli:
    """Runs the command in a temporary folder with no TEAMACCESS_* settings inherited."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env: dict[str, str | None] = dict.fromkeys(ENV_VARS)

    def __call__(self, *args: str, input: str | None = None, code: int = 0) -> Result:
        result = CliRunner(env=self.env).invoke(cli, list(args), input=input)
        if result.exit_code != code:
            raise AssertionError(
                f"teamaccess {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
            )
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)

    def error(self, *args: str, code: int, input: str | None = None) -> str:
        """The one ``error:`` line the command printed."""
        result = self(*args, input=input, code=code)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        assert "Traceback" not in result.stderr
        return lines[0]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path)


@pytest.fixture
def account(run: Cli) -> str:
    data = run.json(
        "accounts", "create", "--name", "Muster GmbH", "--owner-id", "max",
        "--owner-email", "chef@muster.example.com",
    )  # fmt: skip
    return str(data["id"])


def invite(run: Cli, account: str, email: str, *perms: str) -> dict[str, Any]:
    args = [f"--permission={p}" for p in perms] or ["--all"]
    data: dict[str, Any] = run.json("invite", account, email, *args, "--as", "max")
    return data


def member(run: Cli, account: str, user: str, email: str, *perms: str) -> None:
    token = invite(run, account, email, *perms)["token"]
    run("accept", token, "--user", user, "--email", email)


def eml_files(folder: Path) -> list[Path]:
    return sorted((folder / "outbox").glob("*.eml"))


#: The operator acting (teamaccess.SYSTEM), said explicitly as every change must.
OP = ("--as", "system")

#: What a command that mails real people over SMTP must be told (no example defaults).
REAL_LINKS = (
    "--accept-url", "https://panel.muster.example.com/accept?token={token}",
    "--sender", "Panel <noreply@muster.example.com>",
)  # fmt: skip


def free_port() -> int:
    """A port nothing listens on: a mail server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestDefaults:
    """The embedded default: ./teamaccess.db, ./outbox, settings from options or env."""

    def test_database_and_outbox_in_the_working_folder(self, run: Cli, account: str) -> None:
        invite(run, account, "dev@agentur.example.com", "services.view")
        assert (run.folder / "teamaccess.db").is_file()
        [mail] = eml_files(run.folder)
        assert "To: dev@agentur.example.com" in mail.read_text()

    def test_db_option_and_env(self, run: Cli) -> None:
        run("--db", "other.db", "accounts", "create", "--name", "A", "--owner-id", "u1",
            "--owner-email", "u1@example.com")  # fmt: skip
        assert (run.folder / "other.db").is_file()
        run.env["TEAMACCESS_DB"] = "other.db"
        [found] = run.json("accounts", "list", "u1")
        assert found["name"] == "A"
        run.env["TEAMACCESS_DB"] = None
        line = run.error("accounts", "list", "u1", code=3)
        assert "there is no database teamaccess.db yet" in line
        assert not (run.folder / "teamaccess.db").exists()

    @pytest.mark.parametrize(
        ("uri", "path"),
        [
            ("file:team.db?mode=rwc", "team.db"),
            ("file:team.db", "team.db"),
            ("file:///srv/panel/my%20team.db?mode=ro", "'/srv/panel/my team.db'"),
            ("file::memory:?cache=shared", ":memory:"),
            ("file://db.example.com/team.db", "teamaccess.db"),
        ],
    )
    @pytest.mark.parametrize("given", ["option", "env"])
    def test_a_sqlite_uri_is_refused(self, run: Cli, uri: str, path: str, given: str) -> None:
        """The command works on the file's path (the key file beside it, read-only
        opening by itself), so it asks for that path: with a URI it wrote a key file named
        after the whole URI."""
        args = ["--db", uri] if given == "option" else []
        run.env["TEAMACCESS_DB"] = uri if given == "env" else None
        line = run.error(*args, "accounts", "create", "--name", "A", "--owner-id", "u1",
                         "--owner-email", "u1@example.com", code=3)  # fmt: skip
        assert line == (
            "error: --db (TEAMACCESS_DB) takes the SQLite file's path, not a file: URI; give "
            f"--db {path}. The command opens a file this user may not write read-only by "
            "itself, and keeps the secret key beside the file"
        )
        assert list(run.folder.iterdir()) == []  # no database, no key file

    def test_outbox_option_language_and_accept_url(self, run: Cli, account: str) -> None:
        data = run.json(
            "--outbox", "mails", "--language", "de",
            "--accept-url", "https://kunden.example.com/einladung/{token}",
            "invite", account, "b@example.com", "--all", "--as", "max",
        )  # fmt: skip
        assert data["accept_url"].startswith("https://kunden.example.com/einladung/")
        [mail] = sorted((run.folder / "mails").glob("*.eml"))
        message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        assert message["Subject"] == "chef@muster.example.com lädt Sie zu Muster GmbH ein"

    def test_missing_database_folder(self, run: Cli) -> None:
        line = run.error("--db", "nowhere/x.db", "accounts", "list", "u", code=3)
        assert "nowhere" in line
        assert "does not exist" in line or "no database" in line

    def test_python_dash_m_and_version(self, run: Cli) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--help"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "Usage: teamaccess" in out
        assert "demo" in out
        assert "teamaccess, version" in run("--version").stdout

    def test_import_teamaccess_does_not_load_the_command(self) -> None:
        code = (
            "import sys, teamaccess; "
            "print('teamaccess._cli' in sys.modules, 'click' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.split() == ["False", "False"]


class TestSecretKey:
    """Generated once next to the database with mode 0o600, reused; or from the env."""

    def test_created_owner_only_and_reused(self, run: Cli, account: str) -> None:
        path = run.folder / "teamaccess.db.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key = path.read_text()
        assert len(key.strip()) >= 40
        token = invite(run, account, "dev@example.com", "services.view")["token"]
        # a token signed in one run opens in the next: the key was reused, not replaced
        run("accept", token, "--user", "dev", "--email", "dev@example.com")
        assert path.read_text() == key

    def test_env_key_wins_and_no_file_is_written(self, run: Cli) -> None:
        run.env["TEAMACCESS_SECRET_KEY"] = "from-the-environment"
        data = run.json("accounts", "create", "--name", "A", "--owner-id", "max",
                        "--owner-email", "u@example.com")  # fmt: skip
        token = invite(run, data["id"], "x@example.com")["token"]
        assert not (run.folder / "teamaccess.db.secret").exists()
        run.env["TEAMACCESS_SECRET_KEY"] = "another-key"
        line = run.error("inspect", token, code=7)
        assert "invalid or was altered" in line

    def test_existing_key_file_is_used(self, run: Cli) -> None:
        path = run.folder / "teamaccess.db.secret"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"my-own-key\n")
        os.close(fd)
        data = run.json("accounts", "create", "--name", "A", "--owner-id", "max",
                        "--owner-email", "u@example.com")  # fmt: skip
        token = invite(run, data["id"], "x@example.com")["token"]
        run.env["TEAMACCESS_SECRET_KEY"] = "my-own-key"
        assert run.json("inspect", token)["email"] == "x@example.com"

    def test_key_file_readable_by_others_is_refused(self, run: Cli, account: str) -> None:
        path = run.folder / "teamaccess.db.secret"
        path.chmod(0o644)
        line = run.error("members", account, code=3)
        assert f"run: chmod 600 {path.name}" in line
        assert "readable by others" in line


class TestAccounts:
    """accounts create, list, show, rename; transfer."""

    def test_create_list_show(self, run: Cli) -> None:
        out = run("accounts", "create", "--name", "Muster GmbH", "--owner-id", "max",
                  "--owner-email", "Chef@Muster.example.com").stdout  # fmt: skip
        assert out.startswith("created account acc_")
        assert "owner max" in out
        listing = run("accounts", "list", "max").stdout.splitlines()
        assert listing[0].split() == ["ID", "NAME", "OWNER", "OWNER", "EMAIL", "CREATED"]
        assert "Muster GmbH" in listing[2]
        [data] = run.json("accounts", "list", "max")
        assert data["owner_email"] == "Chef@muster.example.com"
        shown = run("accounts", "show", data["id"]).stdout
        assert "name:" in shown
        assert "Muster GmbH" in shown
        assert run.json("accounts", "show", data["id"])["members"] == 1
        assert run("accounts", "list", "nobody").stdout == "no accounts\n"

    def test_rename_needs_profile_edit(self, run: Cli, account: str) -> None:
        member(run, account, "dev", "dev@example.com", "services.view")
        line = run.error("accounts", "rename", account, "--name", "X", "--as", "dev", code=5)
        assert "profile.edit" in line
        assert run.json("accounts", "rename", *OP, account, "--name", "Muster AG")["name"] == (
            "Muster AG"
        )

    def test_transfer(self, run: Cli, account: str) -> None:
        member(run, account, "bea", "bea@example.com")
        line = run.error("transfer", account, "bea", "--as", "bea", code=6)
        assert "only the owner" in line
        out = run("transfer", account, "bea", "--as", "max").stdout
        assert out == f"bea now owns account {account}; the old owner stays a member\n"
        roles = {m["user_id"]: m["role"] for m in run.json("members", account)}
        assert roles == {"bea": "owner", "max": "member"}


class TestInvitations:
    """invite, invitations, inspect, accept, decline, resend, revoke."""

    def test_invite_prints_the_link_once_and_lists_pending(self, run: Cli, account: str) -> None:
        out = run("invite", account, "dev@example.com", "-p", "services.view,support.tickets",
                  "--as", "max").stdout  # fmt: skip
        assert "invited dev@example.com" in out
        assert "services.view, support.tickets" in out
        assert "mail to dev@example.com written to outbox/ (a file: not sent)" in out
        assert out.count("token=") == 1
        listing = run("invitations", account).stdout.splitlines()
        assert listing[0].split()[:3] == ["ID", "EMAIL", "STATUS"]
        assert "dev@example.com" in listing[2]
        assert "pending" in listing[2]
        [data] = run.json("invitations", account)
        assert data["token"] is None
        assert "token_hash" not in data
        assert data["permissions"] == ["services.view", "support.tickets"]

    def test_accept_from_argument_and_from_stdin(self, run: Cli, account: str) -> None:
        t1 = invite(run, account, "a@example.com", "billing.view")["token"]
        t2 = invite(run, account, "b@example.com")["token"]
        out = run("accept", t1, "--user", "a", "--email", "A@example.com").stdout
        assert out == f"a joined {account} with billing.view\n"
        data = run.json("accept", "--user", "b", "--email", "b@example.com", input=t2 + "\n")
        assert data["permissions"] == "*"
        assert run.json("invitations", account) == []
        statuses = [i["status"] for i in run.json("invitations", account, "--all")]
        assert statuses == ["accepted", "accepted"]

    def test_inspect_and_decline(self, run: Cli, account: str) -> None:
        token = invite(run, account, "a@example.com", "billing.view")["token"]
        assert "billing.view" in run("inspect", token).stdout
        assert run("decline", "-", input=token).stdout.startswith("declined invitation inv_")
        assert run.json("inspect", token)["status"] == "declined"
        line = run.error("accept", token, "--user", "a", "--email", "a@example.com", code=7)
        assert "declined" in line

    def test_resend_replaces_the_token_and_revoke(self, run: Cli, account: str) -> None:
        first = invite(run, account, "a@example.com", "billing.view")
        again = run.json("resend", first["id"], "--as", "max")
        assert again["token"] != first["token"]
        assert len(eml_files(run.folder)) == 2
        line = run.error("accept", first["token"], "--user", "a", "--email", "a@example.com",
                         code=7)  # fmt: skip
        assert "no longer valid" in line
        assert "resent invitation" in run("resend", first["id"], "--as", "max").stdout
        assert run("revoke", *OP, first["id"]).stdout == (
            f"revoked invitation {first['id']} for a@example.com\n"
        )
        assert run("invitations", account).stdout == "no invitations\n"

    def test_the_whole_link_from_the_mail_is_taken(self, run: Cli, account: str) -> None:
        """An operator pastes the link a customer forwarded; it was refused as "invalid or
        altered, copy the whole link", which is what they had done."""
        first = invite(run, account, "a@example.com", "billing.view")
        assert run.json("inspect", first["accept_url"])["email"] == "a@example.com"
        assert run("decline", input=first["accept_url"] + "\n").stdout.startswith("declined")
        # the token in the path, where --accept-url has {token}
        url = "https://kunden.example.com/einladung/{token}"
        second = run.json("--accept-url", url, "invite", account, "b@example.com", "--all",
                          "--as", "max")  # fmt: skip
        assert "?" not in second["accept_url"]
        data = run.json("--accept-url", url, "inspect", second["accept_url"])
        assert data["email"] == "b@example.com"
        joined = run("--accept-url", url, "accept", second["accept_url"], "--user", "b",
                     "--email", "b@example.com").stdout  # fmt: skip
        assert joined.startswith("b joined")

    def test_a_link_without_a_token(self, run: Cli, account: str) -> None:
        link = "https://panel.example.com/team/invitations/accept?invitation=0123456789abcdef"
        line = run.error("inspect", link, code=3)
        assert "holds no invitation token" in line
        assert link not in line

    def test_a_link_from_the_mails_source(self, run: Cli, account: str) -> None:
        """Copied from the quoted-printable source, "token=3D..." was called altered."""
        link = invite(run, account, "a@example.com")["accept_url"]
        source = link.replace("token=", "token=3D")
        for args, stdin in (((source,), None), ((), source + "\n")):
            line = run.error("inspect", *args, input=stdin, code=3)
            assert "copied from the mail's source" in line
            assert "=3D" in line
            assert link.partition("token=")[2] not in line
        assert run.json("inspect", link)["email"] == "a@example.com"

    def test_no_token_given(self, run: Cli) -> None:
        line = run.error("accept", "--user", "a", "--email", "a@example.com", input="", code=2)
        assert "token" in line

    def test_token_is_not_in_errors(self, run: Cli, account: str) -> None:
        token = invite(run, account, "a@example.com")["token"]
        result = run("accept", token, "--user", "z", "--email", "z@example.com", code=7)
        assert token not in result.stderr
        assert "another address" in result.stderr


class TestMembersAndPermissions:
    """members, permissions show/check/set, remove."""

    def test_members_table_and_json(self, run: Cli, account: str) -> None:
        member(run, account, "dev", "dev@example.com", "services.view")
        lines = run("members", account).stdout.splitlines()
        assert lines[0].split() == [
            "USER", "EMAIL", "ROLE", "STATUS", "PERMISSIONS", "JOINED", "ACCESS", "UNTIL",
        ]  # fmt: skip
        assert lines[2].split()[:5] == ["max", "chef@muster.example.com", "owner", "active", "all"]
        assert lines[3].split()[:5] == [
            "dev", "dev@example.com", "member", "active", "services.view",
        ]  # fmt: skip
        # columns line up: every row starts its EMAIL column at the same place
        col = lines[0].index("EMAIL")
        assert all(line[col - 2 : col] == "  " for line in lines[2:])
        assert [m["user_id"] for m in run.json("members", account)] == ["max", "dev"]

    def test_show_check_set(self, run: Cli, account: str) -> None:
        member(run, account, "dev", "dev@example.com", "services.view")
        rows = run.json("permissions", "show", account, "dev")
        shown = {r["permission"]: r["allowed"] for r in rows}
        assert shown["services.view"] is True
        assert shown["billing.view"] is False
        assert len(shown) == 13
        # the label the table shows is in the JSON too
        assert isinstance(rows[0]["label"], str)
        assert rows[0]["label"]
        out = run("permissions", "check", account, "dev", "services.view", "billing.view").stdout
        assert [line.split() for line in out.splitlines()[2:]] == [
            ["services.view", "yes"],
            ["billing.view", "no"],
        ]
        result = run("permissions", "check", account, "dev", "billing.view", "--require", code=5)
        assert "may not use 'billing.view'" in result.stderr
        data = run.json("permissions", "set", account, "dev", "-p", "billing.view", "--as", "max")
        assert data["permissions"] == ["billing.view"]
        assert run.json("permissions", "check", account, "dev", "billing.view") == {
            "billing.view": True
        }
        assert (
            run("permissions", "set", *OP, account, "dev", "--none").stdout
            == "dev now holds none\n"
        )

    def test_scopes_states_and_access_until(self, run: Cli, account: str) -> None:
        member(run, account, "agency", "web@agentur.example", "billing.view,services.manage@srv-1")
        data = run.json("members", account)[1]
        assert data["permissions"] == ["billing.view", "services.manage@srv-1"]
        assert (data["status"], data["access_until"], data["metadata"]) == ("active", None, {})
        row = run("members", account).stdout.splitlines()[3]
        assert "billing.view, services.manage@srv-1" in row
        check = ("permissions", "check", account, "agency", "services.manage")
        assert run.json(*check, "--resource", "srv-1") == {"services.manage": True}
        assert run.json(*check, "--resource", "srv-2") == {"services.manage": False}
        assert run.json(*check) == {"services.manage": False}
        assert run("resources", account, "agency", "services.manage").stdout == "srv-1\n"
        assert run("resources", account, "max", "services.manage").stdout == "all\n"
        assert run.json("resources", account, "agency", "services.view") == {
            "all": False, "ids": [],
        }  # fmt: skip
        assert run.json("suspend", account, "agency", "--as", "max")["status"] == "suspended"
        assert "suspended" in run("members", account).stdout.splitlines()[3]
        assert run.json(*check, "--resource", "srv-1") == {"services.manage": False}
        assert run("reactivate", account, "agency", "--as", "max").stdout == (
            f"agency is active in {account}\n"
        )
        out = run("access-until", account, "agency", "2099-12-31T18:00", "--as", "max").stdout
        assert out == f"agency's access in {account} ends: 2099-12-31 18:00 UTC\n"
        assert run.json("members", account)[1]["access_until"] == "2099-12-31T18:00:00+00:00"
        assert "2099-12-31 18:00 UTC" in run("members", account).stdout
        run("access-until", account, "agency", "never", "--as", "max")
        assert run.json("members", account)[1]["access_until"] is None
        line = run.error("access-until", account, "agency", "tomorrow", "--as", "max", code=2)
        assert "ISO 8601" in line
        out = run("forget-resource", account, "srv-1", "--as", "max").stdout
        assert out == f"forgot srv-1 in {account}: changed agency\n"
        assert run.json("members", account)[1]["permissions"] == ["billing.view"]
        line = run.error("invite", account, "x@example.com", "-p", "billing.view@srv-1",
                         "--as", "max", code=3)  # fmt: skip
        assert "cannot be granted on single resources" in line

    def test_invite_with_end_note_and_metadata(self, run: Cli, account: str) -> None:
        data = run.json(
            "invite", account, "free@lance.example", "-p", "services.view",
            "--until", "2099-01-31", "--note", "Willkommen!", "--metadata", '{"ticket": "T-1"}',
            "--as", "max",
        )  # fmt: skip
        assert data["access_until"] == "2099-01-31T00:00:00+00:00"
        assert (data["note"], data["metadata"]) == ("Willkommen!", {"ticket": "T-1"})
        run("accept", data["token"], "--user", "fred", "--email", "free@lance.example")
        joined = run.json("members", account)[1]
        assert joined["access_until"] == "2099-01-31T00:00:00+00:00"
        assert joined["metadata"] == {"ticket": "T-1"}
        line = run.error("invite", account, "y@example.com", "--none", "--metadata", "[1]",
                         "--as", "max", code=2)  # fmt: skip
        assert "JSON object" in line
        # nested far deeper than the JSON parser recurses: an error line, no traceback
        line = run.error("invite", account, "y@example.com", "--none", "--metadata",
                         "[" * 5_000, "--as", "max", code=2)  # fmt: skip
        assert "JSON object" in line

    def test_remove_and_leave(self, run: Cli, account: str) -> None:
        member(run, account, "a", "a@example.com")
        member(run, account, "b", "b@example.com", "services.view")
        assert run("remove", account, "a", "--as", "max").stdout == f"removed a from {account}\n"
        run("remove", account, "b", "--as", "b")
        assert [m["user_id"] for m in run.json("members", account)] == ["max"]
        events = [e["action"] for e in run.json("audit", account)]
        assert events[:2] == ["member.left", "member.removed"]

    def test_catalog(self, run: Cli) -> None:
        out = run("catalog").stdout
        assert "firewall.unblock" in out
        assert "billing" in out
        assert "IP-Sperre aufheben" in run("catalog", "--language", "de").stdout
        data = run.json("catalog")
        assert len(data["permissions"]) == 13
        assert [c["name"] for c in data["categories"]] == [
            "general", "billing", "product", "support"
        ]  # fmt: skip


class TestContactsAndMail:
    """contacts add/list/show/update/remove, recipients, notify, deliver."""

    def test_contacts_lifecycle(self, run: Cli, account: str) -> None:
        out = run("contacts", "add", *OP, account, "--name", "Steuerbüro Klein",
                  "--email", "kanzlei@example.com", "-c", "billing", "--role", "Steuerberater",
                  ).stdout  # fmt: skip
        assert "added contact con_" in out
        [contact] = run.json("contacts", "list", account)
        assert contact["categories"] == ["billing"]
        assert contact["role"] == "Steuerberater"
        assert "Steuerbüro Klein" in run("contacts", "show", contact["id"]).stdout
        updated = run.json("contacts", "update", *OP, contact["id"], "-c", "billing,support",
                           "--phone", "+49 30 1234")  # fmt: skip
        assert updated["categories"] == ["billing", "support"]
        assert updated["phone"] == "+49 30 1234"
        assert run("recipients", account, "support").stdout.splitlines() == [
            "chef@muster.example.com",
            "kanzlei@example.com",
        ]
        assert run.json("recipients", account, "general") == ["chef@muster.example.com"]
        run("contacts", "remove", *OP, contact["id"])
        assert run("contacts", "list", account).stdout == "no contacts\n"

    def test_contacts_need_a_category_and_something_to_change(self, run: Cli, account: str) -> None:
        assert "--category" in run.error(
            "contacts", "add", account, "--name", "A", "--email", "a@example.com",
            *OP, code=2,
        )  # fmt: skip
        line = run.error("contacts", "update", "con_x", *OP, code=2)
        assert "nothing to change" in line
        line = run.error("contacts", "add", account, "--name", "A", "--email", "a@example.com",
                         "-c", "invoices", *OP, code=3)  # fmt: skip
        assert "unknown mail category 'invoices'" in line

    def test_notify_one_file_per_recipient(self, run: Cli, account: str) -> None:
        run(
            "contacts",
            "add",
            *OP,
            account,
            "--name",
            "K",
            "--email",
            "k@example.com",
            "-c",
            "billing",
        )
        out = run("notify", account, "billing", "--subject", "Invoice 42",
                  "--text", "-", input="Your invoice is ready.\n").stdout  # fmt: skip
        assert out.splitlines() == [
            "mail to chef@muster.example.com written to outbox/ (a file: not sent)",
            "mail to k@example.com written to outbox/ (a file: not sent)",
        ]
        mails = [p.read_text() for p in eml_files(run.folder)]
        assert len(mails) == 2
        assert all("Subject: Invoice 42" in m for m in mails)
        assert not any("k@example.com" in m and "chef@" in m for m in mails)
        html = run.folder / "body.html"
        html.write_text("<p>Ready</p>")
        sent = run.json("notify", account, "general", "--subject", "Hi", "--text", "Hello",
                        "--html", str(html))  # fmt: skip
        assert sent == {
            "recipients": ["chef@muster.example.com"],
            # what the text output's mail lines say, as data
            "mail": {"status": "written", "to": ["chef@muster.example.com"], "via": "file:outbox"},
        }

    def test_notify_in_german(self, run: Cli, account: str) -> None:
        run("notify", account, "billing", "--subject", "Rechnung 42", "--text", "Neu",
            "--language", "de")  # fmt: skip
        [mail] = [p.read_text() for p in eml_files(run.folder)]
        assert "Content-Language: de" in mail
        assert "Rechnungen" in mail  # the category's German label
        assert "is not one of 'en', 'de'" in run.error(
            "notify", account, "billing", "--subject", "S", "--text", "T", "--language", "fr",
            code=2,
        )  # fmt: skip

    def test_deliver_list_of_one_account(self, run: Cli, account: str) -> None:
        down = ["--smtp-host", "127.0.0.1", "--smtp-port", str(free_port()),
                "--smtp-security", "plain", *REAL_LINKS]  # fmt: skip
        other = run.json("accounts", "create", "--name", "Andere AG", "--owner-id", "chef",
                         "--owner-email", "chef@andere.example.com")["id"]  # fmt: skip
        run.error(*down, "invite", *OP, account, "dev@example.com", "--all", code=9)
        run.error(*down, "invite", *OP, other, "ops@example.com", "--all", code=9)
        assert len(run.json("deliver", "--list")) == 2
        [mine] = run.json("deliver", "--list", "--account", account)
        assert mine["recipient"] == "dev@example.com"
        assert "--account goes with --list" in run.error("deliver", "--account", account, code=2)
        assert "no account" in run.error("deliver", "--list", "--account", "acc_nope", code=4)

    def test_mail_server_down_then_deliver(self, run: Cli, account: str) -> None:
        down = ["--smtp-host", "127.0.0.1", "--smtp-port", str(free_port()),
                "--smtp-security", "plain", *REAL_LINKS]  # fmt: skip
        line = run.error(*down, "invite", *OP, account, "dev@example.com", "--all", code=9)
        assert "retried by 'teamaccess deliver'" in line
        assert "teamaccess resend inv_" in line
        [waiting] = run.json("deliver", "--list")
        assert waiting["kind"] == "invitation"
        assert waiting["attempts"] == 1
        assert waiting["last_error"]
        assert "dev@example.com" in run("deliver", "--list").stdout
        assert eml_files(run.folder) == []
        # The retry waits out its backoff (a minute), so nothing is due yet.
        assert run(*down, "deliver").stdout == (
            f"no messages\n0 sent to SMTP server 127.0.0.1:{down[3]}; 1 still waiting\n"
        )
        # The invitation stayed pending; resending it through ./outbox delivers it.
        [pending] = run.json("invitations", account)
        run("resend", *OP, pending["id"])
        [mail] = eml_files(run.folder)
        assert "To: dev@example.com" in mail.read_text()
        assert run.json("deliver", "--list") == []

    def test_smtp_settings_reach_a_real_server(self, run: Cli, account: str) -> None:
        certs = Certificates.create()
        ca_file = run.folder / "ca.pem"
        certs.ca.cert_pem.write_to_path(str(ca_file))
        run.env["SSL_CERT_FILE"] = str(ca_file)  # the default TLS context trusts the test CA
        with SmtpServer(mode="starttls", certs=certs, users={"panel": "s3cret"}) as server:
            run.env["TEAMACCESS_SMTP_HOST"] = server.host
            run.env["TEAMACCESS_SMTP_PASSWORD"] = "wrong"
            smtp = ["--smtp-port", str(server.port), "--smtp-user", "panel", *REAL_LINKS]
            line = run.error(*smtp, "invite", *OP, account, "a@example.com", "--all", code=9)
            assert "wrong" not in line
            run.env["TEAMACCESS_SMTP_PASSWORD"] = "s3cret"
            out = run(*smtp, "invite", *OP, account, "b@example.com", "--all").stdout
            assert f"mail to b@example.com sent to SMTP server {server.host}:{server.port}" in out
            [received] = server.received
        assert received.rcpt_tos == ["b@example.com"]
        assert received.tls
        assert received.login == "panel"
        assert eml_files(run.folder) == []

    def test_bare_command_shows_help(self, run: Cli) -> None:
        result = run(code=2)
        assert "Usage: teamaccess [OPTIONS] COMMAND" in result.output
        assert "demo" in result.output

    @pytest.mark.parametrize("missing", ["--accept-url", "--sender"])
    def test_smtp_needs_real_links(self, run: Cli, account: str, missing: str) -> None:
        settings = dict(zip(REAL_LINKS[::2], REAL_LINKS[1::2], strict=True))
        del settings[missing]
        smtp = ["--smtp-host", "127.0.0.1", *(x for kv in settings.items() for x in kv)]
        line = run.error(*smtp, "invite", *OP, account, "a@example.com", "--all", code=3)
        assert f"set {missing} (or TEAMACCESS_" in line

    def test_smtp_password_only_from_env(self, run: Cli) -> None:
        result = run("--smtp-password", "x", "catalog", code=2)
        assert "no such option" in result.stderr.lower()


class TestAudit:
    """audit prints the log newest first."""

    def test_audit(self, run: Cli, account: str) -> None:
        member(run, account, "dev", "dev@example.com", "services.view")
        lines = run("audit", account).stdout.splitlines()
        assert lines[0].split() == ["WHEN", "ACTOR", "ACTION", "TARGET"]
        assert [line.split()[4] for line in lines[2:]] == [
            "invitation.accepted",
            "invitation.sent",
            "account.created",
        ]
        assert len(run.json("audit", account, "--limit", "1")) == 1


class TestErrors:
    """One `error:` line naming the problem and the fix, an exit code per family."""

    @pytest.mark.parametrize(
        ("args", "code", "text"),
        [
            (["members", "acc_missing"], 4, "no account 'acc_missing'"),
            (["accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email", "nope"],
             3, "not a valid email address"),
            (["invite", *OP, "ACC", "x@example.com", "-p", "billing.veiw"], 3,
             "unknown permission 'billing.veiw'"),
            (["invite", *OP, "ACC", "x@example.com"], 2, "choose exactly one of --all"),
            (["invite", "ACC", "x@example.com", "--all", "--as", "stranger"], 5,
             "is not a member"),
            (["accounts", "create", "--name", "A"], 2, "missing option '--owner-id'"),
            (["frobnicate"], 2, "no such command 'frobnicate'"),
            (["permissions", "check", "ACC", "max", "nope"], 3, "unknown permission 'nope'"),
            # the forms `members --json` and the audit log show, copied into a check
            (["permissions", "check", "ACC", "max", "services.manage@srv-1"], 2,
             "write services.manage --resource srv-1"),
            (["permissions", "check", "ACC", "max", "*"], 2, "name each permission to check"),
            (["resend", *OP, "inv_missing"], 4, "no invitation 'inv_missing'"),
            (["remove", *OP, "ACC", "max"], 6, "transfer ownership first"),
        ],
    )  # fmt: skip
    def test_error_line_and_exit_code(
        self, run: Cli, account: str, args: list[str], code: int, text: str
    ) -> None:
        line = run.error(*[account if a == "ACC" else a for a in args], code=code)
        assert text in line

    def test_storage_error(self, run: Cli) -> None:
        (run.folder / "junk.db").write_text("not a database")
        line = run.error("--db", "junk.db", "accounts", "list", "max", code=10)
        assert "junk.db is not a SQLite database" in line

    def test_usage_error_points_to_help(self, run: Cli) -> None:
        line = run.error("accounts", "create", "--name", "A", code=2)
        assert "see 'teamaccess accounts create --help'" in line

    def test_already_invited(self, run: Cli, account: str) -> None:
        invite(run, account, "a@example.com")
        line = run.error("invite", *OP, account, "a@example.com", "--all", code=6)
        assert "resend or revoke it instead" in line


class TestDemo:
    """`teamaccess demo` plays the story and can run again on the same database."""

    def test_demo_twice_through_the_runner(self, run: Cli) -> None:
        first = run("demo").stdout
        assert "run 1" in first
        for step in ("== 1.", "== 4.", "== 8."):
            assert step in first
        assert "denied" in first
        second = run("demo").stdout
        assert "run 2" in second
        assert "max now owns 2 demo accounts" in second
        assert len(run.json("accounts", "list", "anna.dev")) == 2
        # 2 invitations + 2 billing notices per run
        assert len(eml_files(run.folder)) == 8

    def test_installed_command_twice_in_a_fresh_folder(self, tmp_path: Path) -> None:
        exe = shutil.which("teamaccess", path=os.path.dirname(sys.executable))
        command = [exe] if exe else [sys.executable, "-m", "teamaccess"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        outputs = []
        for _ in range(2):
            proc = subprocess.run(
                [*command, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            assert proc.stderr == ""
            outputs.append(proc.stdout)
        assert "run 1" in outputs[0]
        assert "run 2" in outputs[1]
        assert "PERMISSION" in outputs[1]
        assert "invitation.accepted" in outputs[1]
        secret = tmp_path / "teamaccess.db.secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 8


class TestNothingWrittenByReading:
    """Commands that only read create no files; the key file follows a clean open."""

    @pytest.mark.parametrize(
        "args",
        [
            ["catalog"],
            ["catalog", "--json"],
            ["--help"],
            ["members", "--help"],
            ["members", "acc_1"],
            ["invitations", "acc_1"],
            ["audit", "acc_1"],
            ["accounts", "list", "max"],
            ["contacts", "list", "acc_1"],
            ["permissions", "show", "acc_1", "max"],
            ["deliver", "--list"],
        ],
    )
    def test_no_file_appears(self, run: Cli, args: list[str]) -> None:
        result = CliRunner(env=run.env).invoke(cli, args)
        assert result.exit_code in (0, 3), result.output
        if result.exit_code == 3:
            assert "there is no database teamaccess.db yet" in result.stderr
        assert list(run.folder.iterdir()) == []

    def test_reading_an_existing_database_writes_no_key(self, run: Cli, account: str) -> None:
        (run.folder / "teamaccess.db.secret").unlink()
        run("members", account)
        assert not (run.folder / "teamaccess.db.secret").exists()

    def test_no_key_file_when_the_database_does_not_open(self, run: Cli) -> None:
        (run.folder / "teamaccess.db").write_bytes(b"this is not a database, " * 100)
        run.error("accounts", "create", "--name", "A", "--owner-id", "u", "--owner-email",
                  "u@example.com", code=10)  # fmt: skip
        assert not (run.folder / "teamaccess.db.secret").exists()


class TestWhoActs:
    """A change says who acts: --as USER or --as system; nothing defaults to the operator."""

    def test_a_change_without_as_is_refused(self, run: Cli, account: str) -> None:
        line = run.error("invite", account, "dev@example.com", "--all", code=2)
        assert "say who acts: --as USER" in line
        assert "--as system" in line
        assert run.json("invitations", account) == []

    def test_as_system_is_the_operator(self, run: Cli, account: str) -> None:
        data = invite(run, account, "dev@example.com")
        run("accept", data["token"], "--user", "dev", "--email", "dev@example.com")
        run("transfer", account, "dev", *OP)
        [event] = run.json("audit", account, "--limit", "1")
        assert (event["action"], event["actor_id"]) == ("account.ownership_transferred", SYSTEM)

    def test_env_names_the_actor(self, run: Cli, account: str) -> None:
        run.env["TEAMACCESS_ACTOR"] = "max"
        run("contacts", "add", account, "--name", "K", "--email", "k@example.com", "-c", "billing")
        [event] = run.json("audit", account, "--limit", "1")
        assert event["actor_id"] == "max"


class TestDemoKeepsToItself:
    """The demo never writes into a database holding anything but demo data."""

    def test_refuses_a_database_with_real_data(self, run: Cli, account: str) -> None:
        before = run.json("accounts", "list", "max")
        line = run.error("demo", code=3)
        assert "holds data that is not the demo's" in line
        assert "--db demo.db" in line
        assert run.json("accounts", "list", "max") == before

    def test_refuses_a_demo_account_with_a_real_member(self, run: Cli) -> None:
        run("demo")
        [acc] = run.json("accounts", "list", "max")
        data = invite(run, acc["id"], "real@example.com")
        run("accept", data["token"], "--user", "real", "--email", "real@example.com")
        assert "not the demo's" in run.error("demo", code=3)

    def test_runs_again_on_its_own_data(self, run: Cli) -> None:
        run("demo")
        assert "run 2" in run("demo").stdout


class TestJsonCarriesTheText:
    """--json holds every field the text output shows."""

    def test_accounts_show(self, run: Cli, account: str) -> None:
        invite(run, account, "dev@example.com")
        run("contacts", "add", account, "--name", "K", "--email", "k@example.com", "-c",
            "billing", "--as", "max")  # fmt: skip
        text = run("accounts", "show", account).stdout
        data = run.json("accounts", "show", account)
        assert (data["members"], data["pending_invitations"], data["contacts"]) == (1, 1, 1)
        assert "pending invitations:  1" in text


class TestErrorsInARealProcess:
    """An error is one line on stderr, with nothing logged before it."""

    def test_mail_server_down(self, run: Cli, account: str) -> None:
        env = {**os.environ, **{k: v for k, v in run.env.items() if v is not None}}
        for name, value in run.env.items():
            if value is None:
                env.pop(name, None)
        mail = f"smtp://127.0.0.1:{free_port()}?security=plain"
        proc = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--mail", mail, *REAL_LINKS,
             "invite", account, "dev@example.com", "--all", "--as", "max"],
            capture_output=True, text=True, cwd=run.folder, env=env, check=False,
        )  # fmt: skip
        assert proc.returncode == 9
        [line] = proc.stderr.splitlines()
        assert line.startswith("error: 1 of 1 message(s) could not be sent now")
        assert proc.stdout == ""


def _commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


class TestIntegerRangesInHelp:
    """--help shows each integer option's range, and none where there is no bound."""

    def test_no_bound_shows_no_range(self, run: Cli) -> None:
        text = " ".join(run("--help").stdout.split())
        assert "--smtp-port INTEGER Deprecated. --smtp-security" in text
        assert "None" not in text

    def test_every_integer_option(self, run: Cli) -> None:
        shown: list[str] = []
        for path, command in _commands(cli):
            types = [
                p.type
                for p in command.params
                if isinstance(p, click.Option) and isinstance(p.type, Integer)
            ]
            if not types:
                continue
            text = " ".join(run(*path, "--help").stdout.split())
            assert "None" not in text, path
            for kind in types:
                if kind.min is None and kind.max is None:
                    continue
                bounds = f"x>={kind.min}" if kind.max is None else f"{kind.min}<=x<={kind.max}"
                # the end of the option's help: "[default: 50; x>=1]" or "[x>=1]"
                assert re.search(rf"[\[ ]{re.escape(bounds)}\]", text), (path, bounds)
                shown.append(bounds)
        assert {"x>=1", "1<=x<=876000", "1<=x<=36525", "0<=x<=65535"} <= set(shown)


def test_migrate_says_whether_it_created_the_database(run: Cli) -> None:
    first = run("migrate").stdout
    again = run("migrate").stdout
    version = run.json("migrate")["schema_version"]
    assert first == f"teamaccess.db: created, schema version {version}\n"
    assert again == f"teamaccess.db: schema version {version}, up to date\n"


def test_migrate_says_it_upgraded_an_older_file(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """It said "up to date" after upgrading a file, as if it had found nothing to do."""
    from teamaccess._backends import sqlite as sqlite_backend

    version = len(sqlite_backend.MIGRATIONS)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:5])
        SQLiteStore(run.folder / "old.db").close()
        SQLiteStore(run.folder / "json.db").close()
    assert run("--db", "old.db", "migrate").stdout == (
        f"old.db: upgraded from schema version 5 to {version}\n"
    )
    assert (
        run("--db", "old.db", "migrate").stdout == f"old.db: schema version {version}, up to date\n"
    )
    assert run.json("--db", "json.db", "migrate") == {
        "database": "json.db", "schema_version": version, "previous_version": 5,
    }  # fmt: skip
    assert run.json("--db", "json.db", "migrate")["previous_version"] == version
    assert run.json("--db", "new.db", "migrate")["previous_version"] == 0

"""``teamaccess export``, ``erase``, ``purge`` and ``delete-account`` on the real default
(a SQLite file)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import OP, Cli, account, member, run
from tests.test_cli_operators import command, operators_words

__all__ = ["account", "run"]  # fixtures, imported for pytest


class TestExportAndErase:
    """An access request answered as JSON, an erasure that leaves no byte behind."""

    def test_export_then_erase(self, run: Cli, account: str) -> None:
        member(run, account, "pia", "Pia@Example.net", "billing.view")
        doc = json.loads(run("export", "--user", "pia").stdout)
        assert [m["account_id"] for m in doc["memberships"]] == [account]
        by_email = json.loads(run("export", "--email", "pia@example.NET").stdout)
        assert by_email["request"] == {"user_id": None, "email": "pia@example.net"}
        for part in ("memberships", "invitations_received", "mail", "audit_events"):
            assert by_email[part] == doc[part] != [], part

        out = run("erase", "--as", "system", "--email", "pia@example.net", "--yes").stdout
        assert "1 membership(s)" in out
        assert "erased:" in out
        doc = json.loads(run("export", "--user", "pia").stdout)
        assert doc["memberships"] == doc["audit_events"] == []
        data = (run.folder / "teamaccess.db").read_bytes().lower()
        assert b"pia@example.net" not in data
        wal = run.folder / "teamaccess.db-wal"
        assert not wal.exists() or b"pia@example.net" not in wal.read_bytes().lower()

    def test_erase_says_what_it_rewrote_in_others_rows(self, run: Cli, account: str) -> None:
        member(run, account, "pia", "pia@example.net", "billing.view")
        run("contacts", "add", account, "--name", "Deputy", "--email", "d@example.org",
            "--category", "billing", "--role", "stands in for pia@example.net", *OP)  # fmt: skip
        plain = run("erase", *OP, "--user", "pia", "--yes").stdout
        assert "0 message(s) and 1 text(s) now say [erased]" in plain
        [deputy] = run.json("contacts", "list", account)
        assert deputy["role"] == "stands in for [erased]"

    def test_erase_asks_first(self, run: Cli, account: str) -> None:
        member(run, account, "pia", "pia@example.net", "billing.view")
        refused = run("erase", "--as", "system", "--user", "pia", input="n\n", code=1)
        assert "erase pia everywhere?" in refused.stderr
        assert "error: nothing was erased" in refused.stderr
        assert len(json.loads(run("export", "--user", "pia").stdout)["memberships"]) == 1
        report = run.json("erase", "--as", "system", "--user", "pia", input="y\n")
        assert (report["memberships"], report["user_ids"]) == (1, ["pia"])

    def test_pseudonym_key_from_the_environment(self, run: Cli, account: str) -> None:
        member(run, account, "pia", "pia@example.net", "billing.view")
        member(run, account, "paul", "paul@example.net", "billing.view")
        derived = run.json("erase", "--as", "system", "--user", "pia", "--yes")["pseudonym"]
        run.env["TEAMACCESS_PSEUDONYM_KEY"] = "a key kept elsewhere"
        keyed = run.json("erase", "--as", "system", "--user", "paul", "--yes")["pseudonym"]
        assert derived.startswith("erased:")
        assert keyed.startswith("erased:")
        assert derived != keyed

    def test_owner_and_usage_errors(self, run: Cli, account: str) -> None:
        line = run.error("erase", "--as", "system", "--user", "max", "--yes", code=6)
        assert "transfer ownership" in line
        assert "--user" in run.error("export", code=2)
        line = run.error("erase", "--as", "system", "--user", "pia", "--as", "max", "--yes", code=5)
        assert "only the vendor (--as system, acting on a request)" in line


class TestPurge:
    """``teamaccess purge`` from cron: counts, and the periods as options."""

    def test_purge_counts(self, run: Cli, account: str) -> None:
        member(run, account, "pia", "pia@example.net", "billing.view")
        assert run.json("purge") == {"invitations": 0, "messages": 0, "events": 0, "total": 0}
        assert "purged: 0 invitation(s)" in run("purge", "--no-scrub").stdout
        assert "0 is not in the range" in run.error("purge", "--sent-mail", "0", code=2)

    def test_help_names_the_defaults(self, run: Cli) -> None:
        text = " ".join(run("purge", "--help").stdout.split())
        assert "(default 90)" in text
        assert "(default 730)" in text


class TestDeleteAccount:
    """``teamaccess delete-account``, run as the installed command: asks first, only for
    the operator, and afterwards the former owner can be erased."""

    def test_delete_then_erase_the_owner(self, tmp_path: Path) -> None:
        made = command(tmp_path, "accounts", "create", "--name", "Muster GmbH",
                       "--owner-id", "max", "--owner-email", "chef@muster.example.com",
                       "--json")  # fmt: skip
        account = json.loads(made.stdout)["id"]
        owner = command(tmp_path, "delete-account", account, "--as", "max", "--yes")
        assert owner.returncode == 5
        assert "only the vendor (--as system) may delete an account" in operators_words(
            owner.stderr
        )
        refused = command(tmp_path, "erase", "--user", "max", *OP, "--yes")
        assert refused.returncode == 6
        assert "delete the account ('teamaccess delete-account')" in operators_words(refused.stderr)
        unanswered = command(tmp_path, "delete-account", account, *OP, input=b"")
        assert unanswered.returncode == 1
        assert (
            f"delete account {account} ('Muster GmbH', owner max) with everything of it?"
            in unanswered.stderr
        )
        assert unanswered.stderr.endswith(
            f"error: nothing was deleted: deleting account {account} needs a 'y' at the "
            "question, or --yes\n"
        )
        declined = command(tmp_path, "delete-account", account, *OP, input=b"n\n")
        assert declined.returncode == 1

        done = command(tmp_path, "delete-account", account, *OP, "--yes", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "account_id": account, "members": 1, "invitations": 0, "contacts": 0,
            "messages": 0, "events": 1, "removed": 2,
        }  # fmt: skip
        for suffix in ("", "-wal"):
            db = tmp_path / f"teamaccess.db{suffix}"
            assert not db.exists() or b"chef@muster" not in db.read_bytes(), suffix
        erased = command(tmp_path, "erase", "--user", "max", *OP, "--yes")
        assert erased.returncode == 0, erased.stderr
        again = command(tmp_path, "delete-account", account, *OP, "--yes")
        assert again.returncode == 4
        assert f"no account '{account}'" in again.stderr

    def test_asked_with_a_y_and_no_database_created(self, tmp_path: Path) -> None:
        made = command(tmp_path, "accounts", "create", "--name", "A", "--owner-id", "max",
                       "--owner-email", "max@example.com", "--json")  # fmt: skip
        account = json.loads(made.stdout)["id"]
        done = command(tmp_path, "delete-account", account, *OP, input=b"y\n")
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"deleted account {account}: 1 member(s), 0 invitation(s), 0 contact(s), "
            "0 message(s), 1 audit event(s)\n"
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        missing = command(elsewhere, "delete-account", account, *OP, "--yes")
        assert missing.returncode == 3
        assert list(elsewhere.iterdir()) == []

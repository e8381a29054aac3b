"""Attack round 16 on the command: ``--db`` with a ``file:`` URI Python cannot parse, and
``delete-account``'s question.

``--db 'file://[/team.db'`` ended in a Python traceback (a bare ``ValueError`` from the
URL parser). ``delete-account`` asked its question before it knew whether the account
existed or the actor might delete it, so ``--as max`` or a mistyped id was asked "delete
account ...?" and told no only after a 'y'; and the question named the id alone, so an
operator who pasted the wrong (existing) id was not shown which customer goes.
"""

from __future__ import annotations

import pytest
from tests.test_cli import OP, Cli, account, run

__all__ = ["account", "run"]  # fixtures, imported for pytest


class TestUnparsableDbUri:
    """A ``file:`` URI the parser refuses is the usual one-line refusal, exit 3."""

    @pytest.mark.parametrize("uri", ["file://[/team.db", "file://a]/team.db"])
    def test_refused(self, run: Cli, uri: str) -> None:
        line = run.error("--db", uri, "accounts", "list", "max", code=3)
        assert line.startswith(
            "error: --db (TEAMACCESS_DB) takes the SQLite file's path, not a file: URI; give "
            "--db teamaccess.db."
        )
        assert list(run.folder.iterdir()) == []


class TestDeleteAccountAsks:
    """The question comes only when the answer decides, and names whose account goes."""

    def test_someone_else_is_refused_without_a_question(self, run: Cli, account: str) -> None:
        line = run.error("delete-account", account, "--as", "max", input="y\n", code=5)
        assert line.startswith("error: only the vendor (--as system) may delete an account")
        run("accounts", "show", account)  # still there

    def test_no_such_account_without_a_question(self, run: Cli, account: str) -> None:
        line = run.error("delete-account", "acc_no_such", *OP, input="y\n", code=4)
        assert line.startswith("error: no account 'acc_no_such'")

    def test_a_bad_id_without_a_question(self, run: Cli, account: str) -> None:
        # Not echoed raw into the question: the terminal would obey the escape.
        line = run.error("delete-account", "acc\x1b[2Jx", *OP, input="y\n", code=4)
        assert line.startswith("error: no account 'acc\\x1b[2Jx'")

    def test_the_question_names_the_account(self, run: Cli, account: str) -> None:
        result = run("delete-account", account, *OP, input="n\n", code=1)
        assert (
            f"delete account {account} ('Muster GmbH', owner max) with everything of it? "
            "This cannot be undone"
        ) in result.stderr
        run("accounts", "show", account)  # still there

    def test_yes_still_deletes(self, run: Cli, account: str) -> None:
        result = run("delete-account", account, *OP, input="y\n")
        assert result.stdout.startswith(f"deleted account {account}: 1 member(s)")
        run.error("accounts", "show", account, code=4)


class TestMailSecurityTwice:
    """``--mail ...?security=tls&security=plain`` is refused: the last one won silently."""

    @pytest.mark.parametrize(
        "url", ["smtp://mail.example.com?security=tls&security=plain",
                "smtp://localhost?security=plain&security=plain"],
    )  # fmt: skip
    def test_refused(self, run: Cli, url: str) -> None:
        line = run.error("--mail", url, "accounts", "list", "max", code=3)
        assert line == "error: --mail names ?security= 2 times; give it once, e.g. ?security=tls"

"""Attack round 20 on the command's words for the newest refusals: nobody changes their
own access, and access given ends no later than the giver's own. The command printed
the library's Python hints (``remove_member() yourself``, ``set_access_until()``), where
an operator types a command; and it refused, as no ISO 8601 instant, the end of access
written as its own refusal and ``access-until`` print it ("2026-12-31 00:00 UTC")."""

from __future__ import annotations

import pytest
from tests.test_cli import Cli, account, member, run
from tests.test_cli_operators import operators_words

__all__ = ["account", "run"]  # fixtures, imported for pytest

ENDS = "2026-12-31 00:00 UTC"


@pytest.fixture
def temp(run: Cli, account: str) -> str:
    """A member managing users whose access the owner limited, and one without an end."""
    member(run, account, "temp", "temp@example.com", "users.manage,billing.view")
    member(run, account, "anna", "anna@example.com", "billing.view")
    run("access-until", account, "temp", "2026-12-31", "--as", "max")
    return "temp"


class TestTheCommandsWords:
    def test_changing_ones_own_access_says_how_to_leave(
        self, run: Cli, account: str, temp: str
    ) -> None:
        for args in (
            ("access-until", account, temp, "never"),
            ("suspend", account, temp),
            ("permissions", "set", account, temp, "-p", "billing.view"),
        ):
            line = operators_words(run.error(*args, "--as", temp, code=5))
            assert "nobody changes their own permissions or access" in line
            assert "(to leave the account: 'teamaccess remove ACCOUNT USER --as USER')" in line

    def test_a_refusal_in_time_says_what_to_run_first(
        self, run: Cli, account: str, temp: str
    ) -> None:
        run("suspend", account, "anna", "--as", "max")
        line = operators_words(run.error("reactivate", account, "anna", "--as", temp, code=5))
        assert "first set its end with 'teamaccess access-until'" in line
        run("reactivate", account, "anna", "--as", "max")
        more = ("permissions", "set", account, "anna", "-p", "billing.view,users.manage")
        line = operators_words(run.error(*more, "--as", temp, code=5))
        assert "first set its end with 'teamaccess access-until'" in line

    def test_the_end_the_refusal_names_is_taken(self, run: Cli, account: str, temp: str) -> None:
        line = run.error("invite", account, "me2@example.com", "-p", "billing.view",
                         "--as", temp, code=5)  # fmt: skip
        assert f"give an end on or before {ENDS}" in line
        data = run.json("invite", account, "me2@example.com", "-p", "billing.view",
                        "--until", ENDS, "--as", temp)  # fmt: skip
        assert data["access_until"].startswith("2026-12-31T00:00:00")
        run("access-until", account, "anna", ENDS, "--as", temp)
        run("access-until", account, "anna", "2026-12-30 18:00 utc", "--as", temp)
        # a zone given twice is no instant
        line = run.error("access-until", account, "anna", "2026-12-30T18:00+01:00 UTC",
                         "--as", temp, code=2)  # fmt: skip
        assert "is not an ISO 8601 date or time" in line


class TestOneContactPerAddress:
    """The contact rules of the last round spoke Python to the operator too."""

    def test_a_second_contact_of_an_address_names_the_command(self, run: Cli, account: str) -> None:
        first = run.json("contacts", "add", account, "--name", "N", "--email", "n@example.com",
                         "-c", "general", "--as", "max")["id"]  # fmt: skip
        again = ("contacts", "add", account, "--name", "N", "--email", "N@EXAMPLE.com")
        line = operators_words(run.error(*again, "-c", "billing", "--as", "max", code=6))
        assert f"instead ('teamaccess contacts update {first} --category ...')" in line
        other = run.json("contacts", "add", account, "--name", "M", "--email", "m@example.com",
                         "-c", "general", "--as", "max")["id"]  # fmt: skip
        onto = ("contacts", "update", other, "--email", "n@example.com")
        line = operators_words(run.error(*onto, "--as", "max", code=6))
        assert f"('teamaccess contacts update {first} --category ...')" in line

    def test_no_category_names_the_options(self, run: Cli, account: str) -> None:
        made = run.json("contacts", "add", account, "--name", "N", "--email", "n@example.com",
                        "-c", "general", "--as", "max")["id"]  # fmt: skip
        line = run.error("contacts", "update", made, "-c", ",", "--as", "max", code=3)
        assert "categories=" not in line, line
        assert "e.g. --category general" in line
        assert "remove it ('teamaccess contacts remove')" in line

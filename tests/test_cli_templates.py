"""``--templates python:MODULE:NAME``: the command, and so its delivery worker, words the
mail it builds with the panel's own templates (it used the shipped ones, so a panel with
its own wording had to write its worker in Python)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from tests.test_cli import Cli, run

from teamaccess import PermissionSet, SQLiteStore, TeamAccess

__all__ = ["run"]  # the fixture, imported for pytest

PANEL_MODULE = """
from teamaccess import DefaultTemplates

TEMPLATES = DefaultTemplates(
    brand="HostPress", strings={"en": {"invitation.action": "Join the team"}}
)


def make_templates():
    return TEMPLATES


class Templates(DefaultTemplates):
    def __init__(self):
        super().__init__(brand="HostPress")


NUMBER = 5


def broken():
    raise RuntimeError("settings missing")
"""


@pytest.fixture
def panel(run: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    (run.folder / "templates19_panel.py").write_text(PANEL_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(run.folder))
    return run


def _text(mail: Path) -> str:
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    return str(plain.get_content())


def test_the_worker_words_the_mail_with_the_panels_templates(panel: Cli) -> None:
    # The panel queues an invitation; its mail is built by the worker, not stored.
    team = TeamAccess(
        SQLiteStore(panel.folder / "panel.db"), None, secret_key="the panel's key",
        delivery="queue", sender="Panel <noreply@panel.example>",
    )  # fmt: skip
    account = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
    wanted = PermissionSet.of("billing.view")
    team.invite(account.id, actor_id="max", email="dev@m.de", permissions=wanted)
    team.close()
    panel.env["TEAMACCESS_SECRET_KEY"] = "the panel's key"
    panel.env["TEAMACCESS_TEMPLATES"] = "python:templates19_panel:TEMPLATES"
    panel("--db", "panel.db", "--mail", "file:outbox", "deliver")
    [mail] = (panel.folder / "outbox").glob("*.eml")
    text = _text(mail)
    # without it: "... in the customer center." and "Accept invitation"
    assert "in the HostPress." in text
    assert "Join the team" in text


@pytest.mark.parametrize("name", ["TEMPLATES", "make_templates", "Templates"])
def test_an_invite_of_the_command_takes_them(panel: Cli, name: str) -> None:
    spec = ("--templates", f"python:templates19_panel:{name}")
    made = panel.json(
        *spec, "accounts", "create", "--name", "M", "--owner-id", "max",
        "--owner-email", "chef@muster.de",
    )["id"]  # fmt: skip
    panel(*spec, "invite", made, "dev@m.de", "--all", "--as", "max")
    [mail] = (panel.folder / "outbox").glob("*.eml")
    assert "in the HostPress." in _text(mail)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            "templates19_panel:TEMPLATES",
            "error: --templates takes python:MODULE:NAME, e.g. python:mypanel.mail:TEMPLATES",
        ),
        (
            "python:templates19_nowhere:TEMPLATES",
            "error: --templates python:templates19_nowhere:TEMPLATES: could not import "
            "templates19_nowhere (ModuleNotFoundError",
        ),
        (
            "python:templates19_panel:MISSING",
            "error: --templates python:templates19_panel:MISSING: templates19_panel has no "
            "MISSING; ",
        ),
        (
            "python:templates19_panel:NUMBER",
            "error: --templates python:templates19_panel:NUMBER: NUMBER is int, not mail templates",
        ),
        (
            "python:templates19_panel:broken",
            "error: --templates python:templates19_panel:broken: broken() raised "
            "RuntimeError: settings missing",
        ),
    ],
    ids=["no-python", "no-module", "no-name", "not-templates", "raises"],
)
def test_bad_templates_are_refused(panel: Cli, spec: str, said: str) -> None:
    made = panel.json(
        "accounts", "create", "--name", "M", "--owner-id", "max",
        "--owner-email", "chef@muster.de",
    )["id"]  # fmt: skip
    line = panel.error("--templates", spec, "invite", made, "dev@m.de", "--all", "--as", "max",
                       code=3)  # fmt: skip
    assert line.startswith(said), line
    assert panel.json("invitations", made) == []  # nothing written

"""Attack round 17 on the command's ``inspect``/``accept``/``decline`` taking the whole
link from the mail.

A link whose host Python's URL parser cannot read (``https://[panel/...``: a bracket
copied along, or a link cut at the wrong place) ended in a Python traceback, the bare
``ValueError`` of ``urlsplit()``; it is the usual one-line refusal now, without the link
(which may hold a token). A link whose path matches ``--accept-url`` is still read.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.test_cli import ENV_VARS, Cli, account, invite, run

__all__ = ["account", "run"]  # fixtures, imported for pytest


def _command(run: Cli, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", *args], input=stdin, capture_output=True,
        text=True, cwd=run.folder, env=env, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("command", [["inspect"], ["decline"], ["accept", "--user", "b",
                                     "--email", "b@example.com"]])  # fmt: skip
@pytest.mark.parametrize(
    "link",
    ["https://[panel.example.com/accept?token=SECRETTOKEN",
     "https://panel]example.com/accept?token=SECRETTOKEN"],
)  # fmt: skip
def test_an_unreadable_link_is_a_one_line_refusal(
    run: Cli, account: str, command: list[str], link: str
) -> None:
    done = _command(run, command[0], link, *command[1:])
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        "error: this link cannot be read as a URL (Invalid IPv6 URL); give the link from "
        "the invitation mail as it is, or the token alone\n"
    )
    assert "SECRETTOKEN" not in done.stderr
    assert done.returncode == 3
    # on stdin too
    again = _command(run, command[0], *command[1:], stdin=link + "\n")
    assert (again.returncode, again.stderr) == (3, done.stderr)


def test_an_unreadable_host_matching_accept_url_still_works(run: Cli, account: str) -> None:
    url = "https://[panel.example.com/einladung/{token}"
    data = invite(run, account, "b@example.com")
    link = url.replace("{token}", data["token"])
    done = _command(run, "--accept-url", url, "inspect", link, "--json")
    assert done.returncode == 0, done.stderr
    assert '"email": "b@example.com"' in done.stdout

"""Attack round 20 on ``--catalog`` and ``--templates python:MODULE:NAME``: a function
NAME that raised when called was reported as "reading NAME raised ...", which sent the
reader to the name, which was there, rather than to the function that failed (``--mail``
said "NAME() raised"). A module whose attribute itself raises on reading keeps the
"reading" wording. Nothing is written either way."""

from __future__ import annotations

import pytest
from tests.test_cli import Cli, run

__all__ = ["run"]  # fixture, imported for pytest

PANEL = """\
class _Lazy:
    def __getattr__(self, name):
        raise ImportError("the provider SDK is not installed")


lazy = _Lazy()


def broken():
    raise RuntimeError("settings missing")
"""


@pytest.mark.parametrize("option", ["--catalog", "--templates"])
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("broken", "broken() raised RuntimeError: settings missing; fix it (it is called with "
                   "no arguments), or name your panel's "),
        ("lazy.thing", "reading lazy.thing raised ImportError: the provider SDK is not installed"),
    ],
)  # fmt: skip
def test_the_failing_step_is_named(
    run: Cli, monkeypatch: pytest.MonkeyPatch, option: str, name: str, said: str
) -> None:
    (run.folder / "attack20_panel.py").write_text(PANEL, encoding="utf-8")
    monkeypatch.syspath_prepend(str(run.folder))
    spec = f"python:attack20_panel:{name}"
    line = run.error(option, spec, "accounts", "create", "--name", "M", "--owner-id", "max",
                     "--owner-email", "chef@muster.de", code=3)  # fmt: skip
    assert line.startswith(f"error: {option} {spec}: {said}"), line
    assert not (run.folder / "teamaccess.db").exists()  # nothing written


@pytest.mark.parametrize("option", ["--catalog", "--templates"])
def test_an_empty_one_is_refused(run: Cli, option: str) -> None:
    """``--catalog "$VAR"`` with the variable unset ran with the built-in catalog (or the
    shipped wording) without a word: the worker's mail then left the panel's own
    permissions out, what the option is there to prevent (``--db ""`` and ``--mail ""``
    are refused alike). An empty environment variable is no option, as click reads it."""
    line = run.error(option, "", "accounts", "create", "--name", "M", "--owner-id", "max",
                     "--owner-email", "chef@muster.de", code=3)  # fmt: skip
    assert line.startswith(f"error: {option} is empty: "), line
    assert f"leave {option} out" in line
    assert not (run.folder / "teamaccess.db").exists()  # nothing written
    run.env[f"TEAMACCESS_{option[2:].upper()}"] = ""
    run("accounts", "create", "--name", "M", "--owner-id", "max",
        "--owner-email", "chef@muster.de")  # fmt: skip

"""--catalog: a function that fails inside is told as failing, not as missing."""

from __future__ import annotations

import pytest
from tests.test_cli import Cli, run

__all__ = ["run"]  # a fixture, imported for pytest

PANEL = """
import types

settings = types.SimpleNamespace()


def from_settings():
    return settings.CATALOG  # never set: an AttributeError inside the function
"""


def test_an_attribute_error_inside_the_function(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (run.folder / "review19_panel.py").write_text(PANEL, encoding="utf-8")
    monkeypatch.syspath_prepend(str(run.folder))
    line = run.error("--catalog", "python:review19_panel:from_settings", "catalog", code=3)
    # Before: "review19_panel has no from_settings", which it has.
    assert line == (
        "error: --catalog python:review19_panel:from_settings: from_settings() raised "
        "AttributeError: 'types.SimpleNamespace' object has no attribute 'CATALOG'; fix it "
        "(it is called with no arguments), or name your panel's Catalog"
    )

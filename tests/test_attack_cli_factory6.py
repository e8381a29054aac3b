"""Attacks on ``--mail python:MODULE:FACTORY``: a vendor's module or factory that fails
in ways besides raising from the call still gives a clear error (exit 3), no traceback,
and leaves no file behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.test_cli_mailer_factory import assert_refused_creating_nothing

MODULE = """
import sys


class SendProperty:
    @property
    def send(self):
        raise RuntimeError("the API client is not configured")


def send_property():
    return SendProperty()


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no text")


def unprintable():
    raise Unprintable()


def exits():
    sys.exit(4)


def __getattr__(name):
    if name == "lazy":
        raise ImportError("the provider SDK is not installed")
    raise AttributeError(name)
"""

EXITS_ON_IMPORT = "import sys\nsys.exit(5)\n"


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("vendor6:send_property", "send of what send_property() returned raised RuntimeError"),
        ("vendor6:unprintable", "unprintable() raised Unprintable: (its message cannot be read)"),
        ("vendor6:exits", "exits() raised SystemExit: exit(4) was called"),
        ("vendor6:lazy", "reading lazy raised ImportError: the provider SDK is not installed"),
        ("vendor6_exits:make", "could not import vendor6_exits (SystemExit: exit(5) was called)"),
    ],
)
def test_a_factory_failing_otherwise_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: str, says: str
) -> None:
    folder = tmp_path / "vendor"
    folder.mkdir()
    (folder / "vendor6.py").write_text(MODULE, encoding="utf-8")
    (folder / "vendor6_exits.py").write_text(EXITS_ON_IMPORT, encoding="utf-8")
    for name in ("vendor6", "vendor6_exits"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert_refused_creating_nothing(tmp_path, folder, monkeypatch, factory, says)

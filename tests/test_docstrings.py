"""Every example in a docstring of the library runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import teamaccess

SRC = Path(teamaccess.__file__).parent
WITH_EXAMPLES = sorted(
    ".".join(("teamaccess", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
    for path in SRC.rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8")
)


def test_examples_are_found() -> None:
    # SQLiteStore's example among them: a schema change must update what it shows
    assert "teamaccess._backends.sqlite" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional part that is not installed here
        pytest.skip(f"{name} needs {exc.name}: pip install 'teamaccess[web,postgres]'")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} example(s) printed something else"


def _undocumented(cls: type) -> list[str]:
    return [
        f"{cls.__name__}.{name}"
        for name in dir(cls)
        if not name.startswith("_")
        and callable(getattr(cls, name))
        and not (getattr(cls, name).__doc__ or "").strip()
    ]


def test_help_shows_what_each_call_of_the_service_and_the_fakes_does() -> None:
    # A developer at the REPL reads help(team.get_member) or help(FrozenClock.now); an
    # empty docstring there sends them to the docs for a one-line answer.
    import teamaccess.testing as testing

    classes = [teamaccess.TeamAccess, testing.FrozenClock, testing.FailingMailer,
               testing.MemoryMailer, teamaccess.RenderedMail]  # fmt: skip
    missing = [name for cls in classes for name in _undocumented(cls)]
    missing += [cls.__name__ for cls in classes if not (cls.__doc__ or "").strip()]
    assert missing == []


def test_the_docstring_check_can_fail() -> None:
    class Bare:
        def call(self) -> None:
            pass

    assert _undocumented(Bare) == ["Bare.call"]

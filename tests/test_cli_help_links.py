"""The command's help reaches users of an installed package, which holds no docs/
folder: where it refers to a guide, it gives the guide's address, under the
documentation URL the package's metadata names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner
from tests.test_cli_operators import _leaves

from teamaccess._cli import cli

PROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
DOCS = PROJECT["project"]["urls"]["Documentation"]


def test_every_help_names_a_guide_by_its_address() -> None:
    runner = CliRunner()
    pages = [(), *_leaves(cli)]
    guides = []
    for path in pages:
        result = runner.invoke(cli, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        text = " ".join(result.output.split())
        for found in re.finditer(r"\S*docs/[\w-]+\.md", text):
            assert found.group().startswith(f"{DOCS}/"), (path, found.group())
            guides.append(found.group())
    assert guides  # the erase and import pages name theirs
    for guide in guides:
        assert (Path(__file__).parent.parent / "docs" / guide.removeprefix(f"{DOCS}/")).exists()

"""The package metadata: a build backend that writes license files, the Pythons that are
tested, URLs and keywords."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


class TestMetadata:
    """pyproject.toml says what is true."""

    def test_hatchling_writes_license_files(self) -> None:
        # 1.27 is the first hatchling whose default core metadata (2.4) carries
        # License-Expression and License-File; 1.26.3 writes 2.3 without them.
        [requirement] = PROJECT["build-system"]["requires"]
        match = re.fullmatch(r"hatchling>=(\d+)\.(\d+)(?:\.\d+)?", requirement)
        assert match is not None, requirement
        assert (int(match[1]), int(match[2])) >= (1, 27)
        assert PROJECT["project"]["license-files"] == ["LICENSE"]

    def test_requires_python_names_the_tested_pythons(self) -> None:
        # The floor is the oldest tested Python; the classifiers name exactly the tested
        # ones. No upper cap: pip would refuse newer Pythons outright.
        project = PROJECT["project"]
        found = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
        assert found is not None, project["requires-python"]
        prefix = "Programming Language :: Python :: 3."
        classified = {int(c.removeprefix(prefix)) for c in project["classifiers"]
                      if c.startswith(prefix)}  # fmt: skip
        assert classified, "no Python version classifier"
        assert min(classified) == int(found[1])
        assert sys.version_info[1] in classified  # this run is one of them

    def test_urls_and_keywords(self) -> None:
        project = PROJECT["project"]
        assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(
            project["urls"]
        )
        assert all(url.startswith("https://") for url in project["urls"].values())
        assert "permissions" in project["keywords"]
        assert "invitations" in project["keywords"]

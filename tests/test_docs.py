"""The docs stay complete and true: every public name is documented, the Python snippets
run, every command is described, and every relative link leads somewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

import teamaccess
import teamaccess.testing
import teamaccess.testing.contract
from teamaccess._cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: files whose every ```python block runs, in order, in one namespace per file; in other
#: docs files only blocks fenced as ```python run are run
RUNNABLE = ["README.md", "docs/index.md", "docs/concepts.md", "docs/permissions.md",
            "docs/security.md"]  # fmt: skip

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def documented_spots(text: str) -> list[str]:
    """Headings and inline code spans: where a name counts as documented."""
    prose = FENCE.sub("", text)
    headings = re.findall(r"^#{1,6} (.+)$", prose, re.M)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return headings + spans


def public_names() -> list[str]:
    names = [*teamaccess.__all__]
    names += [f"testing.{n}" for n in teamaccess.testing.__all__]
    names += [f"testing.contract.{n}" for n in teamaccess.testing.contract.__all__]
    names += [f"TeamAccess.{n}" for n in dir(teamaccess.TeamAccess) if not n.startswith("_")]
    return names


class TestEveryPublicNameIsDocumented:
    """teamaccess.__all__, teamaccess.testing.__all__ and TeamAccess's methods."""

    @pytest.mark.parametrize("qualified", public_names())
    def test_documented(self, qualified: str) -> None:
        spots = documented_spots(docs_text())
        name = qualified.rpartition(".")[2]
        pattern = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
        assert any(pattern.search(spot) for spot in spots), (
            f"{qualified} is public but docs/ has no heading or `code` mentioning {name}; "
            "document it in docs/api.md"
        )

    def test_the_check_can_fail(self) -> None:
        spots = documented_spots("# Title\n\nSee `invite(...)` and `TeamAccess`.\n")
        found = [n for n in ("invite", "TeamAccess", "revoke_invitation", "Team")
                 if any(re.search(rf"(?<![\w]){n}(?![\w])", s) for s in spots)]  # fmt: skip
        assert found == ["invite", "TeamAccess"]


def python_blocks(path: Path, *, everything: bool) -> list[str]:
    blocks = []
    for info, body in FENCE.findall(path.read_text(encoding="utf-8")):
        words = info.split()
        if words[:1] == ["python"] and (everything or "run" in words[1:]):
            blocks.append(body)
    return blocks


def runnable_files() -> list[str]:
    found = list(RUNNABLE)
    for path in sorted(DOCS.glob("*.md")):
        rel = str(path.relative_to(ROOT))
        if rel not in found and python_blocks(path, everything=False):
            found.append(rel)
    return found


class TestSnippetsRun:
    """The Python code blocks of the docs run as written."""

    @pytest.mark.parametrize("rel", runnable_files())
    def test_blocks_run(
        self,
        rel: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        path = ROOT / rel
        blocks = python_blocks(path, everything=rel in RUNNABLE)
        assert blocks, f"{rel} is marked runnable but has no ```python block"
        monkeypatch.chdir(tmp_path)  # snippets may write files
        namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
        for number, block in enumerate(blocks, 1):
            code = compile(block, f"{rel} (python block {number})", "exec")
            exec(code, namespace)  # noqa: S102 - running our own documentation
        for value in namespace.values():
            if isinstance(value, teamaccess.TeamAccess):
                value.close()


def pytest_blocks(path: Path) -> list[str]:
    """The blocks fenced ```python pytest: together, in order, one test module."""
    return [
        body
        for info, body in FENCE.findall(path.read_text(encoding="utf-8"))
        if info.split()[:2] == ["python", "pytest"]
    ]


def pytest_pages() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted(DOCS.glob("*.md")) if pytest_blocks(p)]


def run_as_test_module(blocks: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    module = folder / "test_docs_page.py"
    module.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMACCESS_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
         "--rootdir", str(folder), str(module)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


class TestPytestPages:
    """A page whose snippets are a vendor's test module (```python pytest) passes as one,
    run by pytest in its own process, as a reader who copies it would run it."""

    def test_the_testing_guide_is_one(self) -> None:
        assert "docs/testing.md" in pytest_pages()

    @pytest.mark.parametrize("rel", pytest_pages())
    def test_module_passes(self, rel: str, tmp_path: Path) -> None:
        blocks = pytest_blocks(ROOT / rel)
        tests = sum(len(re.findall(r"^def test_", block, re.M)) for block in blocks)
        proc = run_as_test_module(blocks, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(rf"^{tests} passed", proc.stdout.splitlines()[-1]), proc.stdout

    def test_the_check_can_fail(self, tmp_path: Path) -> None:
        proc = run_as_test_module(["def test_wrong() -> None:\n    assert 1 == 2\n"], tmp_path)
        assert proc.returncode == 1
        assert "1 failed" in proc.stdout


def leaf_commands(group: click.Group, prefix: str) -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += leaf_commands(command, f"{prefix} {name}")
        else:
            paths.append(f"{prefix} {name}")
    return paths


class TestCommandReference:
    """docs/cli.md describes every subcommand of `teamaccess`."""

    @pytest.mark.parametrize("command", leaf_commands(cli, "teamaccess"))
    def test_described(self, command: str) -> None:
        assert f"`{command}" in (DOCS / "cli.md").read_text(encoding="utf-8"), (
            f"docs/cli.md does not describe `{command}`"
        )


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def anchors_of(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def anchors(path: Path) -> set[str]:
    return anchors_of(path.read_text(encoding="utf-8"))


class TestLinks:
    """Relative links in the README and docs/ lead to files that exist."""

    @pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
    def test_relative_links_resolve(self, path: Path) -> None:
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        broken = []
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            if not (path.parent / file_part).exists():
                broken.append(target)
        assert broken == [], f"{path.name} links to missing files: {broken}"

    @pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
    def test_anchors_resolve(self, path: Path) -> None:
        """A link to `file.md#heading` or `#heading` names a heading that is there."""
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        broken = []
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or "#" not in target:
                continue
            file_part, anchor = target.split("#", 1)
            linked = (path.parent / file_part) if file_part else path
            if linked.suffix == ".md" and linked.exists() and anchor not in anchors(linked):
                broken.append(target)
        assert broken == [], f"{path.name} links to headings that are not there: {broken}"

    def test_anchors_as_github_writes_them(self) -> None:
        page = "# A `b()`: c, d (2026-12-03 15:27 UTC)\n## A `b()`: c, d (2026-12-03 15:27 UTC)\n"
        assert anchors_of(page) == {
            "a-b-c-d-2026-12-03-1527-utc",
            "a-b-c-d-2026-12-03-1527-utc-1",
        }

    def test_tests_named_in_the_source_exist(self) -> None:
        """A docstring or comment that sends a reader to a test file names one that exists."""
        named = {
            (source.relative_to(ROOT).as_posix(), target)
            for source in sorted((ROOT / "src").rglob("*.py"))
            for target in re.findall(r"\btests/[\w/]+\.py\b", source.read_text(encoding="utf-8"))
        }
        assert named  # the source does name some: the check below looks at something
        missing = sorted(
            (source, target) for source, target in named if not (ROOT / target).is_file()
        )
        assert missing == []


class TestQuickStartMatchesCI:
    """The README's two Quick start commands exist, and CI runs the test one word for word."""

    def commands(self) -> list[str]:
        quick = (ROOT / "README.md").read_text(encoding="utf-8").split("## Quick start", 1)[1]
        quick = quick.split("\n## ", 1)[0]
        return [body.strip() for lang, body in FENCE.findall(quick) if lang == "console"]

    def test_two_commands(self) -> None:
        demo, tests = self.commands()
        assert demo.endswith("teamaccess demo")
        assert "pytest" in tests

    def test_ci_runs_the_readme_test_command(self) -> None:
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        assert self.commands()[1] in ci


class TestPagesSayHowTheirSnippetsRun:
    """A reader can tell whether a page's snippets run in order or each alone."""

    @pytest.mark.parametrize(
        "path",
        [
            p
            for p in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
            if "```python" in p.read_text()
        ],
        ids=lambda p: p.name,
    )
    def test_said(self, path: Path) -> None:
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert "snippets on this page run in order" in text or "each snippet runs alone" in text

    def test_the_pages_that_say_in_order_are_run_in_order(self) -> None:
        for rel in runnable_files():
            text = " ".join((ROOT / rel).read_text(encoding="utf-8").split())
            assert "snippets on this page run in order" in text, rel

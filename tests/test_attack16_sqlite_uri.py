"""Attack round 16 on ``SQLiteStore``'s file modes and ``file:`` URIs.

Python's URL parser drops a tab, CR or LF anywhere in a URL; SQLite keeps them. So
``file:team\\t.db`` had the store create ``team.db`` private and SQLite create
``team<TAB>.db`` readable by every local user, and ``?mo\\tde=ro`` read as read-only to
the store but opened read-write (creating the file) to SQLite. A URI Python cannot parse
(``file://[/x.db``) raised a bare ``ValueError``. A symlink to a file not there yet (a
data volume not yet filled) had SQLite create the file it names, 0644.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from teamaccess import SQLiteStore, ValidationError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _umask_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)  # SQLite would create 0644
    try:
        yield
    finally:
        os.umask(old)


class TestControlCharactersInAUri:
    """A tab, CR or LF in a ``file:`` URI is refused: the two parsers read it apart."""

    @pytest.mark.parametrize(
        "uri",
        ["file:team\t.db", "file:team\n.db", "file:team\r.db", "file:team.db?mo\tde=ro",
         "file:team.db?mode=r\nwc", "file:\x01team.db"],
    )  # fmt: skip
    def test_refused_and_nothing_created(self, uri: str, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match=r"control character .*percent-encoded"):
            SQLiteStore(uri)
        assert os.listdir(tmp_path) == []

    def test_percent_encoded_is_fine_and_private(self, tmp_path: Path) -> None:
        SQLiteStore("file:team%09.db").close()
        assert _mode(tmp_path / "team\t.db") == 0o600

    def test_a_path_may_hold_a_tab(self, tmp_path: Path) -> None:
        # Not a URI: no parser in between, the name is the name.
        SQLiteStore("team\t.db").close()
        assert _mode(tmp_path / "team\t.db") == 0o600


class TestUnparsableUri:
    """A ``file:`` URI Python's parser refuses is a ``ValidationError``, not a bare
    ``ValueError``."""

    @pytest.mark.parametrize("uri", ["file://[/x.db", "file://a]/x.db", "file://\uff41\u2100/x.db"])
    def test_refused(self, uri: str, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match=r"not a file: URI .*file:/srv/team\.db"):
            SQLiteStore(uri)
        assert os.listdir(tmp_path) == []


class TestSymlinkToNoFileYet:
    """A symlink to a file not there yet: the file it names is created 0600."""

    @pytest.mark.parametrize("form", ["{}", "file:{}", "file:{}?mode=rwc"])
    def test_private(self, form: str, tmp_path: Path) -> None:
        (tmp_path / "volume").mkdir()
        (tmp_path / "team.db").symlink_to(tmp_path / "volume" / "team.db")
        SQLiteStore(form.format("team.db")).close()
        assert _mode(tmp_path / "volume" / "team.db") == 0o600

    def test_a_chain_of_links(self, tmp_path: Path) -> None:
        (tmp_path / "volume").mkdir()
        (tmp_path / "b.db").symlink_to("volume/team.db")
        (tmp_path / "a.db").symlink_to("b.db")
        SQLiteStore("a.db").close()
        assert _mode(tmp_path / "volume" / "team.db") == 0o600

    def test_an_existing_target_keeps_its_mode(self, tmp_path: Path) -> None:
        target = tmp_path / "shared.db"
        SQLiteStore(target).close()
        target.chmod(0o640)
        (tmp_path / "team.db").symlink_to(target)
        SQLiteStore("team.db").close()
        assert _mode(target) == 0o640

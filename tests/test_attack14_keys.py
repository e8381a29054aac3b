"""Keys and connection strings that do not encode: a byte that is not UTF-8 in
TEAMACCESS_SECRET_KEY, TEAMACCESS_PSEUDONYM_KEY or TEAMACCESS_DB (``os.environ`` turns
it into a lone surrogate), and a NUL in a connection string (libpq reads a C string,
so it would connect to what comes before the NUL). Each is a ``ValidationError`` (exit
3) naming the setting, never a ``UnicodeEncodeError`` traceback, and nothing is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    SQLiteStore,
    StorageError,
    TeamAccess,
    ValidationError,
)

pytest.importorskip("psycopg", reason="pip install -e '.[test]' installs psycopg")

from teamaccess import PostgresStore

SURROGATE_KEY = (
    "is not valid Unicode text (it holds a lone surrogate, as a byte that is not UTF-8 in "
    "an environment variable becomes); set it to ASCII text, e.g. from: python -c "
    "'import secrets; print(secrets.token_urlsafe(32))'"
)


def command(folder: Path, env: dict[bytes, bytes], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environb.items() if not k.startswith(b"TEAMACCESS_")}
    return subprocess.run(
        [sys.executable, "-m", "teamaccess", *args], cwd=folder, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


class TestEnvironmentOfTheCommand:
    """A byte that is not UTF-8 in a setting's variable: one error line, exit 3."""

    def test_secret_key(self, tmp_path: Path) -> None:
        proc = command(tmp_path, {b"TEAMACCESS_SECRET_KEY": b"k\xffey"},
                       "accounts", "create", "--name", "M", "--owner-id", "max",
                       "--owner-email", "chef@muster.de")  # fmt: skip
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: TEAMACCESS_SECRET_KEY {SURROGATE_KEY}\n"
        assert list(tmp_path.iterdir()) == []  # the new database went again

    def test_pseudonym_key(self, tmp_path: Path) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                          secret_key=SECRET)  # fmt: skip
        acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        team.add_contact(acc.id, actor_id="max", name="Anna", email="anna@muster.de",
                         categories=["billing"])  # fmt: skip
        team.close()
        proc = command(
            tmp_path,
            {b"TEAMACCESS_SECRET_KEY": SECRET.encode(), b"TEAMACCESS_PSEUDONYM_KEY": b"\xfe\xff"},
            "erase", "--email", "anna@muster.de", "--as", "system", "--yes",
        )  # fmt: skip
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == f"error: TEAMACCESS_PSEUDONYM_KEY {SURROGATE_KEY}\n"
        team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                          secret_key=SECRET)  # fmt: skip
        assert [c.email for c in team.contacts(acc.id)] == ["anna@muster.de"]
        team.close()

    def test_postgres_url(self, tmp_path: Path) -> None:
        proc = command(
            tmp_path,
            {b"TEAMACCESS_SECRET_KEY": SECRET.encode(),
             b"TEAMACCESS_DB": b"postgresql://panel@db.invalid/panel?application_name=\xff"},
            "members", "acc_1",
        )  # fmt: skip
        assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
        assert proc.stderr == (
            "error: --db (TEAMACCESS_DB) holds a NUL character or a lone surrogate (a byte "
            "that is not UTF-8, from the environment); pass one like "
            "'postgresql://user@host/dbname' in plain UTF-8 text\n"
        )
        assert list(tmp_path.iterdir()) == []


class TestArguments:
    """The same values passed to the library: a ValidationError naming the parameter."""

    @pytest.mark.parametrize("key", ["k\udcffey", ["old", "new\ud800"]])
    def test_secret_key(self, key: str | list[str]) -> None:
        with pytest.raises(ValidationError) as info:
            TeamAccess(MemoryStore(), MemoryMailer(), secret_key=key)
        assert str(info.value) == f"secret_key {SURROGATE_KEY}"

    def test_pseudonym_key(self) -> None:
        with pytest.raises(ValidationError) as info:
            TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, pseudonym_key="\udcfe")
        assert str(info.value) == f"pseudonym_key {SURROGATE_KEY}"

    @pytest.mark.parametrize(
        "conninfo",
        [
            # before the NUL, libpq would read the host "db.invalid" and connect there
            "postgresql://panel@db.invalid\x00.example/panel",
            "host=db.invalid dbname=panel application_name=\udcff",
        ],
    )
    def test_connection_string(self, conninfo: str) -> None:
        with pytest.raises(ValidationError, match="holds a NUL character or a lone surrogate"):
            PostgresStore(conninfo)


@pytest.mark.postgres
class TestConnectTimeoutOfTheCaller:
    """A connect_timeout libpq refuses fails the store at once, saying so: the first,
    direct connection used to override it, and then every pooled one failed unseen and
    each call waited out the pool's timeout ("no free connection ... a larger pool")."""

    def test_refused_when_the_store_opens(self, schema: str) -> None:
        from psycopg.conninfo import make_conninfo

        from .conftest import postgres_conninfo

        conninfo = make_conninfo(postgres_conninfo(), connect_timeout="abc")
        with pytest.raises(StorageError, match="bad value for connect_timeout"):
            PostgresStore(conninfo, schema=schema, timeout=2)

""".ci/postgres, the throwaway server of the tests and CI: its own safety settings (no
TCP address, the socket and port the URL it prints names) hold whatever settings it is
given, and whatever is changed in the data directory afterwards."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / ".ci" / "postgres")
PORT = 5583


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=180)


@pytest.fixture
def directory() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="teamaccess-pg-script-")
    try:
        yield path
    finally:
        run("stop", path)


class TestRefusedSettings:
    """A setting that would undo the script's own is refused before anything starts."""

    @pytest.mark.parametrize(
        ("setting", "says"),
        [
            ("listen_addresses=*", "listens on no TCP address"),
            ("listen_addresses=127.0.0.1", "listens on no TCP address"),
            (" LISTEN_Addresses =localhost", "listens on no TCP address"),
            ("port=5432", "the port the PORT argument"),
            ("unix_socket_directories=/tmp", "the socket is DIR"),
            ("hba_file=/etc/postgresql/pg_hba.conf", "lets in only its own user"),
            (" Ident_File =/tmp/ident.conf", "lets in only its own user"),
            ("include=/etc/postgresql/extra.conf", "an included file"),
            ("include_dir=conf.d", "an included file"),
            ("include_if_exists=extra.conf", "an included file"),
            ("fsync", "is not name=value"),
        ],
    )
    def test_refused(self, directory: str, setting: str, says: str) -> None:
        done = run("start", directory, str(PORT), "fsync=off", setting)
        assert done.returncode == 2
        assert done.stdout == ""  # no URL
        assert f"server setting '{setting}'" in done.stderr
        assert says in done.stderr
        assert list(Path(directory).iterdir()) == []  # no cluster, no server


def tcp_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.postgres
def test_no_tcp_whatever_the_data_directory_says_later(directory: str) -> None:
    """Settings given are kept (a quote in a value too); a listen_addresses written into
    postgresql.conf or set with ALTER SYSTEM afterwards opens no TCP port, at a restart
    either."""
    import psycopg

    done = run("start", directory, str(PORT), "fsync=off", "cluster_name=it's a test")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()

    def show(name: str) -> tuple[str, str]:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT setting, source FROM pg_settings WHERE name = %s", (name,)
            ).fetchone()
            assert row is not None
            return row[0], row[1]

    assert show("cluster_name") == ("it's a test", "configuration file")
    assert show("fsync")[0] == "off"
    assert show("listen_addresses") == ("", "command line")
    assert tcp_refused(PORT)

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET listen_addresses = '127.0.0.1'")
    with open(Path(directory) / "data" / "postgresql.conf", "a") as conf:
        conf.write("listen_addresses = '*'\n")
    restarted = run("restart", directory)
    assert restarted.returncode == 0, restarted.stderr
    assert show("listen_addresses") == ("", "command line")
    assert tcp_refused(PORT)

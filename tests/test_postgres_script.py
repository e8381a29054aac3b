""".ci/postgres, the throwaway server of the tests and CI: its own safety settings (no
TCP address, the socket and port the URL it prints names) hold whatever settings it is
given, and whatever is changed in the data directory afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
            # A line break would write a line of its own, a refused setting say.
            ("fsync\nport=5999", "holds a line break"),
            ("cluster_name=a'\nport=5999\n#", "holds a line break"),
            ("fsync=off\r", "holds a line break"),
        ],
    )
    def test_refused(self, directory: str, setting: str, says: str) -> None:
        done = run("start", directory, str(PORT), "fsync=off", setting)
        assert done.returncode == 2
        assert done.stdout == ""  # no URL
        # run() reads the output as text, which turns a carriage return into a newline.
        assert f"server setting '{setting}'".replace("\r", "\n") in done.stderr
        assert says in done.stderr
        assert list(Path(directory).iterdir()) == []  # no cluster, no server


REFUSED_DIR = (
    "refused: the socket's directory may hold only letters, digits, '.', '_', '-' and '/' "
    "(a quote, comma or space would break the server's settings or the URL); give another, "
    "e.g. /tmp/pg"
)


class TestRefusedDirectory:
    """A DIR that cannot go into unix_socket_directories, the server's command line and
    the URL as it is is refused with one line before anything is created."""

    @pytest.mark.parametrize("name", ["it's", "a,b", "a b", 'a"b', "a&port=1", "a%2Fb"])
    def test_refused(self, directory: str, name: str) -> None:
        path = Path(directory) / name
        try:
            done = run("start", str(path), str(PORT), "fsync=off")
            assert (done.returncode, done.stdout) == (2, "")
            assert done.stderr == f"DIR '{path}' {REFUSED_DIR}\n"
            assert list(Path(directory).iterdir()) == []  # no cluster, no server
        finally:
            run("stop", str(path))  # a server started without the check

    def test_a_relative_dir_is_checked_as_the_path_it_names(self, directory: str) -> None:
        folder = Path(directory) / "my tests"
        folder.mkdir()
        try:
            done = subprocess.run([SCRIPT, "start", "pg", str(PORT)], cwd=folder,
                                  capture_output=True, text=True, timeout=180)  # fmt: skip
            assert (done.returncode, done.stdout) == (2, ""), done.stderr
            assert done.stderr == f"DIR '{folder}/pg' {REFUSED_DIR}\n"
            assert list(folder.iterdir()) == []
        finally:
            run("stop", str(folder / "pg"))

    def test_the_default_dir_under_such_a_tmpdir(self, directory: str) -> None:
        folder = Path(directory) / "my tmp"
        folder.mkdir()
        made = subprocess.run([SCRIPT, "start"], env={**os.environ, "TMPDIR": str(folder)},
                              capture_output=True, text=True, timeout=180)  # fmt: skip
        try:
            assert (made.returncode, made.stdout) == (2, ""), made.stderr
            assert made.stderr.startswith(f"DIR '{folder}/teamaccess-pg.")
            assert made.stderr.endswith(f"{REFUSED_DIR}, or set TMPDIR to such a directory\n")
            assert list(folder.iterdir()) == []  # the new directory is removed again
        finally:
            for left in folder.iterdir():
                run("stop", str(left))


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


def stop_server(directory: str) -> None:
    """Stops the server and keeps the cluster, as a reboot or a crash would leave it."""
    pid_file = Path(directory) / "data" / "postmaster.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # a fast shutdown
    deadline = time.monotonic() + 60
    while pid_file.exists():
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.05)


def started(directory: str, *args: str) -> str:
    done = run("start", directory, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ask(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


@pytest.mark.postgres
class TestStartAgain:
    """A start on a DIR that already holds a cluster applies the port and settings given,
    keeps the data, and prints a URL the server answers on."""

    @pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
    def test_new_port_and_settings_applied(self, directory: str, running: bool) -> None:
        import psycopg

        first = started(directory, str(PORT), "fsync=off", "cluster_name=first")
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept AS SELECT 7 AS n")
        if not running:
            stop_server(directory)

        url = started(directory, str(PORT + 1), "cluster_name=second")

        assert url == first.replace(f"port={PORT}", f"port={PORT + 1}")
        assert url == run("url", directory).stdout.strip()
        assert ask(url, "SELECT current_setting('port')") == str(PORT + 1)
        assert ask(url, "SELECT current_setting('cluster_name')") == "second"
        assert ask(url, "SELECT current_setting('fsync')") == "on"  # no longer given
        assert ask(url, "SELECT n FROM kept") == 7
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(first, connect_timeout=5).close()  # nothing on the old socket

    def test_the_same_start_leaves_the_server_running(self, directory: str) -> None:
        import psycopg

        url = started(directory, str(PORT), "fsync=off")
        with psycopg.connect(url, autocommit=True) as conn:
            assert started(directory, str(PORT), "fsync=off") == url
            assert conn.execute("SELECT 1").fetchone() == (1,)  # not restarted under it

    def test_a_bad_setting_corrected_by_the_next_start(self, directory: str) -> None:
        failed = run("start", directory, str(PORT), "fsync=perhaps")
        assert failed.returncode == 1
        assert failed.stdout == ""
        assert "fsync" in failed.stderr  # the server's log says which setting

        url = started(directory, str(PORT), "fsync=off")
        assert ask(url, "SELECT current_setting('fsync')") == "off"

    def test_a_cluster_of_the_older_script(self, directory: str) -> None:
        """The unmarked lines an older version of the script appended after initdb's
        text go as its block does: settings not given again are the defaults."""
        first = started(directory, str(PORT), "fsync=off")
        stop_server(directory)
        conf = Path(directory) / "data" / "postgresql.conf"
        text = conf.read_text()
        begin = text.index("# .ci/postgres start: the settings")
        block = text[begin:].splitlines()[1:-1]  # the lines without their markers
        conf.write_text(text[:begin] + "\n".join(block) + "\n")
        assert "fsync = 'off'" in conf.read_text()

        url = started(directory, str(PORT), "cluster_name=new")

        assert url == first
        assert ask(url, "SELECT current_setting('fsync')") == "on"
        assert ask(url, "SELECT current_setting('cluster_name')") == "new"
        assert "fsync = 'off'" not in conf.read_text()


@pytest.mark.postgres
def test_the_port_stays_whatever_alter_system_says(directory: str) -> None:
    """A port or socket directory set with ALTER SYSTEM does not move the socket away
    from the URL printed, at a restart or at the next start."""
    url = started(directory, str(PORT))
    ask(url, "SELECT 1")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET port = {PORT + 7}")
        conn.execute("ALTER SYSTEM SET unix_socket_directories = '/tmp'")
    restarted = run("restart", directory)
    assert restarted.returncode == 0, restarted.stderr
    assert ask(url, "SELECT current_setting('port')") == str(PORT)
    stop_server(directory)
    assert started(directory, str(PORT)) == url
    assert ask(url, "SELECT current_setting('port')") == str(PORT)


@pytest.mark.postgres
def test_a_relative_dir(directory: str) -> None:
    """A DIR relative to the working directory names the same socket in the URL and for
    the server, which runs in its data directory."""
    path = Path(directory)
    done = subprocess.run(
        [SCRIPT, "start", path.name, str(PORT)],
        cwd=path.parent, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ask(done.stdout.strip(), "SELECT current_setting('port')") == str(PORT)

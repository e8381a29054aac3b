"""What an operator meets when a command fails: the command's own words (never a Python
call to make), one ``error:`` line and no traceback, and one exit status per kind of
failure, the same on every command. The installed command runs as a subprocess where
the failure is the process's own (signals, a user who may not read a folder)."""

from __future__ import annotations

import ast
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from tests.test_cli import OP, REAL_LINKS, Cli, account, free_port, member, run

import teamaccess
from teamaccess._cli import EXIT_CODES, cli
from teamaccess._cli.app import EXIT_SOME_NOT_SENT
from teamaccess._cli.words import _NAMES, _REWRITES

__all__ = ["account", "run"]  # fixtures, imported for pytest

#: What an error line must not ask an operator to do: call a function, pass a keyword,
#: or construct a store.
PYTHON = re.compile(
    r"\w\(\)|\w\([a-z]+_[a-z_]+\)|\b[a-z_]+=\.\.\.|\(\.\.\.,|SQLiteStore|PostgresStore"
)


def operators_words(line: str) -> str:
    assert PYTHON.search(line) is None, line
    return line


def command(
    folder: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command, run in *folder* with no TEAMACCESS_* setting inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    proc = subprocess.run(
        [sys.executable, "-m", "teamaccess", *args],
        cwd=folder, input=input, capture_output=True, env={**clean, **(env or {})}, timeout=120,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


class TestTheCommandsWords:
    """A hint at a Python call in the library's message becomes the command to type."""

    def test_where_to_look_things_up(self, run: Cli, account: str) -> None:
        line = operators_words(run.error("members", "acc_nope", code=4))
        assert "'teamaccess accounts list USER' lists a user's accounts" in line
        line = operators_words(run.error("remove", account, "nobody", *OP, code=4))
        assert "'teamaccess members ACCOUNT' lists who is" in line
        line = operators_words(run.error("revoke", "inv_nope", *OP, code=4))
        assert "'teamaccess invitations ACCOUNT' lists them" in line
        line = operators_words(run.error("contacts", "show", "con_nope", code=4))
        assert "'teamaccess contacts list ACCOUNT' lists them" in line

    def test_what_to_do_instead(self, run: Cli, account: str) -> None:
        member(run, account, "anna", "anna@example.com", "billing.view")
        line = operators_words(
            run.error("invite", account, "anna@example.com", "--all", *OP, code=6)
        )
        assert "with 'teamaccess permissions set' instead" in line
        line = operators_words(run.error("erase", "--user", "max", *OP, "--yes", code=6))
        assert "('teamaccess transfer')" in line

    def test_mail_that_could_not_go(self, run: Cli, account: str) -> None:
        down = ["--mail", f"smtp://127.0.0.1:{free_port()}?security=plain", *REAL_LINKS]
        line = operators_words(
            run.error(*down, "invite", account, "dev@example.com", "--all", *OP, code=9)
        )
        [waiting] = run.json("deliver", "--list")
        invitation = waiting["invitation_id"]
        resend = f"'teamaccess resend {invitation}'"
        assert f"retried by 'teamaccess deliver' (or send it again with {resend})" in line
        # the reason is in the outbox, and the line says where to see it
        assert line.endswith("('teamaccess deliver --list' shows the error)")
        assert waiting["last_error"]

    def test_the_database(self, run: Cli, account: str) -> None:
        con = sqlite3.connect(run.folder / "other.db")
        con.execute("CREATE TABLE invoices (id)")
        con.commit()
        con.close()
        line = operators_words(run.error("--db", "other.db", "members", account, code=10))
        assert "point --db at a new file" in line
        locker = sqlite3.connect(run.folder / "teamaccess.db", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            line = operators_words(run.error("invite", account, "x@example.com", "--all", *OP,
                                             code=10))  # fmt: skip
        finally:
            locker.close()
        assert "is locked by another connection" in line
        assert "retry once the other process is done" in line

    def test_settings_named_as_options(self, run: Cli, account: str) -> None:
        line = run.error("--accept-url", "panel/accept", "invite", account, "x@example.com",
                         "--all", *OP, code=3)  # fmt: skip
        assert operators_words(line).startswith(
            "error: --accept-url (TEAMACCESS_ACCEPT_URL) must be an absolute http(s) URL"
        )
        run.env["TEAMACCESS_SENDER"] = "nobody"
        line = run.error("invite", account, "x@example.com", "--all", *OP, code=3)
        assert "--sender (TEAMACCESS_SENDER) must hold an address" in operators_words(line)
        del run.env["TEAMACCESS_SENDER"]
        line = run.error("invite", account, "x@example.com", "--all", "--until", "2001-01-01",
                         *OP, code=3)  # fmt: skip
        assert "the end of access 2001-01-01 00:00 is not in the future" in line

    @pytest.mark.parametrize(
        ("args", "said"),
        [
            (("members", ""), "error: ACCOUNT_ID must not be empty"),
            (("remove", "acc_1", "", *OP), "error: USER_ID must not be empty"),
            (("contacts", "show", ""), "error: CONTACT_ID must not be empty"),
            (("revoke", "", *OP), "error: INVITATION_ID must not be empty"),
            (("accounts", "create", "--name", "A", "--owner-id", "", "--owner-email",
              "a@example.com"), "error: --owner-id must not be empty"),
            (("accounts", "create", "--name", "A", "--owner-id", "teamaccess:system",
              "--owner-email", "a@example.com"),
             "error: --owner-id cannot be the operator (teamaccess:system)"),
            (("erase", "--user", "pia", "--as", "bob", "--yes"),
             "error: only the vendor (--as system, acting on a request) or the person "
             "themselves (--as the user named by --user) may erase"),
            (("transfer", "ACCOUNT", "max", "--as", "bob"),
             "ask the owner, or the vendor's support (--as system)"),
        ],
    )  # fmt: skip
    def test_ids_and_who_acts(
        self, run: Cli, account: str, args: tuple[str, ...], said: str
    ) -> None:
        args = tuple(account if a == "ACCOUNT" else a for a in args)
        result = CliRunner(env=run.env).invoke(cli, list(args))
        assert result.exit_code in (3, 5, 6), result.stderr
        assert said in operators_words(result.stderr)

    def test_import_problems_name_the_files_columns(self, run: Cli) -> None:
        (run.folder / "c.csv").write_text(
            "account,account_name,role,user_id,email\n"
            "K-1,M,owner,,m@example.com\nK-2,N,owner,teamaccess:system,n@example.com\n"
        )
        result = CliRunner(env=run.env).invoke(cli, ["import", "c.csv"])
        assert result.exit_code == 3
        assert operators_words(result.stderr).splitlines()[1:] == [
            "  line 2: user_id is missing",
            "  line 3: user_id cannot be the operator (teamaccess:system); pass the id of a "
            "user of your application",
        ]

    def test_every_rewrite_names_words_the_library_says(self) -> None:
        """A hint the library words differently would leak its Python name again."""
        texts = _library_texts()
        for pattern, _ in _REWRITES + _NAMES:
            if pattern.pattern.startswith(
                (
                    "^access_until",
                    "^until",
                    "^owner_id",
                    "^owner_email",
                    "^actor_id",
                    "^account_id",
                    "^user_id",
                    "^contact_id",
                    "^invitation_id",
                )
            ):
                continue  # the name is a value in the f-string; the tests above run it
            assert any(pattern.search(text) for text in texts), pattern.pattern


def _library_texts() -> list[str]:
    """Every string the library (not the command) writes, an f-string's values as X."""
    texts = []
    for path in Path(teamaccess.__file__).parent.rglob("*.py"):
        if "_cli" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                texts.append(
                    "".join(
                        str(v.value) if isinstance(v, ast.Constant) else "X" for v in node.values
                    )
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    return texts


class TestNoTraceback:
    """Input that raised a stdlib exception is one error line saying what to do."""

    def test_text_that_is_not_utf8(self, tmp_path: Path, run: Cli, account: str) -> None:
        (tmp_path / "body.html").write_bytes("<p>Müller</p>".encode("latin-1"))
        line = run.error("notify", account, "billing", "--subject", "S", "--text", "T",
                         "--html", "body.html", code=3)  # fmt: skip
        assert "body.html is not UTF-8 text (invalid start byte at byte 4)" in line
        proc = command(tmp_path, "notify", account, "billing", "--subject", "S", "--text", "-",
                       input="Müller".encode("latin-1"))  # fmt: skip
        assert (proc.returncode, proc.stderr) == (
            3,
            "error: the text on stdin is not UTF-8 text (invalid start byte at byte 1); "
            "save it as UTF-8\n",
        )
        proc = command(tmp_path, "accept", "--user", "u", "--email", "u@example.com",
                       input=b"\xff\xfe")  # fmt: skip
        assert proc.returncode == 3
        assert proc.stderr.startswith("error: the token on stdin is not UTF-8 text")

    @pytest.mark.parametrize(
        "args",
        [
            ("purge", "--audit-events", "99999999999"),
            ("deliver", "--lease", "1e300"),
            ("deliver", "--lease", "nan"),
            ("deliver", "--watch", "--interval", "nan"),
            ("web-demo", "--port", "70000"),
        ],
    )
    def test_numbers_out_of_range(self, run: Cli, account: str, args: tuple[str, ...]) -> None:
        line = run.error(*args, code=2)
        assert f"invalid value for '{args[-2]}'" in line

    def test_schema_without_postgresql(self, run: Cli, account: str) -> None:
        line = run.error("--schema", "crm", "members", account, code=2)
        assert "--schema goes with a PostgreSQL --db" in line
        run.env["TEAMACCESS_SCHEMA"] = "crm"  # set for every command: left alone
        run("members", account)

    def test_a_mistyped_user_or_account_is_not_found(self, run: Cli, account: str) -> None:
        line = run.error("permissions", "show", account, "mxa", code=4)
        assert "user 'mxa' is not a member" in operators_words(line)
        # nor a mistyped account as "no" or "none"
        line = run.error("permissions", "check", "acc_nope", "max", "billing.view", code=4)
        assert "no account 'acc_nope'" in line
        assert "no account 'acc_nope'" in run.error(
            "resources", "acc_nope", "max", "billing.view", code=4
        )

    @pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("setpriv") is None,
        reason="needs root and setpriv to run the command as another user",
    )
    def test_a_folder_the_user_may_not_enter(self, tmp_path: Path) -> None:
        tmp_path.chmod(0o755)
        hidden = tmp_path / "hidden"
        hidden.mkdir(mode=0o700)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
             "-m", "teamaccess", "--db", str(hidden / "team.db"), "members", "acc_1"],
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")},
        )  # fmt: skip
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr == (
            f"error: cannot look at {hidden / 'team.db'}: Permission denied; run the command "
            "as a user who may read the database's folder, or pass another --db\n"
        )


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, sub in sorted(group.commands.items()):
        if isinstance(sub, click.Group):
            found += _leaves(sub, (*path, name))
        else:
            found.append((*path, name))
    return found


class TestExitStatus:
    """One status per kind of failure, on every command; docs/cli.md has the table."""

    def test_usage_errors_are_2_on_every_command(self, tmp_path: Path) -> None:
        commands = _leaves(cli)
        assert len(commands) > 30
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "teamaccess", *name, "--no-such-option"],
                cwd=tmp_path,
                env=clean,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in commands
        }
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, (name, err)
            assert err == (
                f"error: no such option '--no-such-option'; see 'teamaccess "
                f"{' '.join(name)} --help'\n"
            )
        assert list(tmp_path.iterdir()) == []  # and no command created a file

    @pytest.mark.parametrize(
        "args",
        [
            ("deliver", "--limit", "0"),
            ("deliver", "--limit", "-1"),
            ("deliver", "--give-up-after", "0"),
            ("audit", "acc_1", "--limit", "0"),
            ("purge", "--sent-mail", "0"),
            ("import", "customers.csv", "--chunk-size", "0"),
            ("web-demo", "--port", "-1"),
            ("invite", "acc_1", "a@example.com", "--all", "--until", "soon", *OP),
            ("invite", "acc_1", "a@example.com", "--all", "--metadata", "[]", *OP),
            ("access-until", "acc_1", "u", "soon", *OP),
        ],
    )
    def test_a_value_out_of_range_or_form_is_a_usage_error(
        self, run: Cli, account: str, args: tuple[str, ...]
    ) -> None:
        (run.folder / "customers.csv").write_text("account,role,email\n")
        run.error(*args, code=2)

    def test_one_status_per_family(self, tmp_path: Path) -> None:
        def status(*args: str) -> int:
            return command(tmp_path, *args).returncode

        created = command(tmp_path, "accounts", "create", "--name", "A", "--owner-id", "max",
                          "--owner-email", "max@example.com")  # fmt: skip
        account = created.stdout.split()[2]
        assert status("invite", account, "nope", "--all", *OP) == 3
        assert status("members", "acc_nope") == 4
        assert status("invite", account, "a@example.com", "--all", "--as", "eve") == 5
        assert status("remove", account, "max", *OP) == 6
        assert status("accept", "garbage", "--user", "u", "--email", "u@example.com") == 7
        down = ("--mail", f"smtp://127.0.0.1:{free_port()}?security=plain", *REAL_LINKS)
        assert status(*down, "invite", account, "a@example.com", "--all", *OP) == 9
        (tmp_path / "junk.db").write_text("not a database " * 100)
        assert status("--db", "junk.db", "members", account) == 10
        assert [code for _, code in EXIT_CODES] == [3, 4, 5, 6, 7, 8, 9, 12, 10]

    def test_the_table_in_the_docs(self) -> None:
        docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
        rows = dict(re.findall(r"^\| (\d+) \| `(\w+)`", docs, re.MULTILINE))
        assert {int(k): v for k, v in rows.items()} == {
            code: family.__name__ for family, code in EXIT_CODES
        }
        for code in (0, 1, 2, EXIT_SOME_NOT_SENT, 130):
            assert re.search(rf"^\| {code} \| ", docs, re.MULTILINE), code


def waiting_for_input(proc: subprocess.Popen[str]) -> None:
    """Return once *proc* waits in a read of its standard input: a signal sent before it
    got there (a slow start on a loaded machine) would test the interpreter's start."""
    syscall = Path(f"/proc/{proc.pid}/syscall")
    read = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())
    if read is None or not syscall.exists():
        time.sleep(2.0)  # no way to tell here: give it the time a start takes
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(OSError):
            # "running" while it runs; else the call's number and arguments
            fields = syscall.read_text().split()
            if fields[:2] == [read, "0x0"]:
                return
        time.sleep(0.02)
    raise AssertionError(f"the command never waited for input (exit status {proc.poll()})")


class TestInterrupted:
    """Ctrl-C ends any command with status 130 and a line saying what is left."""

    def interrupt(self, proc: subprocess.Popen[str], reading: bool = False) -> tuple[int, str]:
        if reading:
            waiting_for_input(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err

    def start(self, folder: Path, *args: str) -> subprocess.Popen[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        return subprocess.Popen(
            [sys.executable, "-m", "teamaccess", *args], cwd=folder, env=clean,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # Ctrl-C as a terminal sends it: a test run started in the background (a CI
            # step under `&`, nohup) passes SIGINT on ignored, and Python then rightly
            # leaves it ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip

    def test_while_reading_a_token(self, tmp_path: Path) -> None:
        command(tmp_path, "accounts", "create", "--name", "A", "--owner-id", "max",
                "--owner-email", "max@example.com")  # fmt: skip
        proc = self.start(tmp_path, "accept", "--user", "u", "--email", "u@example.com")
        code, err = self.interrupt(proc, reading=True)
        assert code == 130
        assert err.rstrip().endswith(
            "error: interrupted; any change not yet committed was rolled back"
        )

    def test_a_question_left_unanswered(self, tmp_path: Path) -> None:
        command(tmp_path, "accounts", "create", "--name", "A", "--owner-id", "max",
                "--owner-email", "max@example.com")  # fmt: skip
        proc = command(tmp_path, "erase", "--user", "pia", *OP, input=b"")
        assert proc.returncode == 1
        assert proc.stderr.endswith(
            "error: nothing was erased: erasing pia needs a 'y' at the question, or --yes\n"
        )
        code, err = self.interrupt(self.start(tmp_path, "erase", "--user", "pia", *OP), True)
        assert code == 130
        assert "error: interrupted" in err

    def test_an_import_says_how_far_it_got(self, tmp_path: Path) -> None:
        lines = ["account,account_name,role,user_id,email"]
        lines += [f"K-{i},Kunde {i},owner,u{i},o{i}@example.com" for i in range(20_000)]
        (tmp_path / "customers.csv").write_text("\n".join(lines) + "\n")
        proc = self.start(tmp_path, "import", "customers.csv", "--chunk-size", "10")
        db = tmp_path / "teamaccess.db"
        stored = 0
        deadline = time.monotonic() + 120
        while stored < 50 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db, timeout=10) as con, suppress_missing():
                    stored = con.execute("SELECT count(*) FROM accounts").fetchone()[0]
        assert proc.poll() is None, "the import ended before it could be interrupted"
        code, err = self.interrupt(proc)
        assert code == 130, err
        match = re.search(r"error: interrupted after the first (\d+) of 20000 account", err)
        assert match is not None, err
        with sqlite3.connect(db) as con:
            [(count,)] = con.execute("SELECT count(*) FROM accounts").fetchall()
        # Ctrl-C between a chunk's commit and its progress call: the line says one
        # chunk fewer, which --skip-existing makes harmless.
        assert count - 10 <= int(match[1]) <= count
        assert count >= 50
        assert "run the same command with --skip-existing to import the rest" in err
        rest = command(tmp_path, "import", "customers.csv", "--skip-existing")
        assert rest.returncode == 0, rest.stderr
        assert f"imported {20_000 - count} account(s)" in rest.stdout


class suppress_missing:
    """Reading the accounts table before the import created it counts as none yet."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

"""``--mail python:MODULE:FACTORY``: the command sends through the vendor's own mailer."""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.conftest import SECRET
from tests.test_cli_wire import ACCEPT_URL, EVERYONE, SENDER, environment, outbox, queue_mail

from teamaccess._cli import cli
from teamaccess._cli.config import ConfigError, parse_mail

COMMAND = str(Path(sys.executable).with_name("teamaccess"))

# A vendor's module, as it would sit in their panel's package.
VENDOR_MODULE = '''
import os
import pathlib


class Recorder:
    """Writes each message it is handed to a folder: stands in for an HTTP mail API."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def send(self, message):
        self.folder.mkdir(exist_ok=True)
        (self.folder / (message["To"].addresses[0].addr_spec + ".eml")).write_bytes(
            message.as_bytes()
        )


def make():
    return Recorder(os.environ["VENDOR_OUT"])


class Settings:
    @staticmethod
    def mailer():
        return make()


def broken():
    raise RuntimeError("VENDOR_API_KEY is not set")


def not_a_mailer():
    return object()


value = 42
'''


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """The folder holding the vendor's module ``vendormail``."""
    folder = tmp_path / "vendor"
    folder.mkdir()
    (folder / "vendormail.py").write_text(VENDOR_MODULE, encoding="utf-8")
    return folder


def vendor_environment(vendor: Path) -> dict[str, str]:
    env = environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(vendor), env.get("PYTHONPATH")]))
    env["VENDOR_OUT"] = str(vendor / "sent")
    return env


def run(db: Path, vendor: Path, mail: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = vendor_environment(vendor)
    return subprocess.run(
        [COMMAND, "--db", str(db), "--mail", mail, "--sender", SENDER,
         "--accept-url", ACCEPT_URL, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_worker_hands_each_queued_mail_to_the_vendors_mailer(
    tmp_path: Path, vendor: Path
) -> None:
    db = tmp_path / "teamaccess.db"
    queue_mail(db)
    proc = run(db, vendor, "python:vendormail:make", "deliver")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == (
        "4 sent to the mailer from vendormail:make; 0 still waiting"
    )
    sent = sorted(p.name.removesuffix(".eml") for p in (vendor / "sent").iterdir())
    assert sent == EVERYONE
    assert set(outbox(db).values()) == {("sent", 1, None)}
    # The mailer got the mail itself: parsed back, the invitation carries its link.
    raw = (vendor / "sent" / "i@example.org.eml").read_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert parsed["From"] == SENDER
    assert b"https://panel.example.net/accept?token=" in raw
    assert "token=" not in proc.stdout + proc.stderr


def test_a_command_sends_through_it_and_says_so(tmp_path: Path, vendor: Path) -> None:
    db = tmp_path / "teamaccess.db"
    queue_mail(db)
    with sqlite3.connect(db) as conn:
        [(account,)] = conn.execute("SELECT id FROM accounts").fetchall()
    conn.close()
    # A factory reached through a class attribute, as entry points allow.
    proc = run(db, vendor, "python:vendormail:Settings.mailer",
               "invite", account, "new@example.org", "--all", "--as", "o")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "mail to new@example.org handed to the mailer from vendormail:Settings.mailer" in (
        proc.stdout
    )
    assert (vendor / "sent" / "new@example.org.eml").exists()


def test_a_mailer_that_sends_needs_a_sender_and_a_link(tmp_path: Path, vendor: Path) -> None:
    db = tmp_path / "teamaccess.db"
    env = vendor_environment(vendor)
    proc = subprocess.run(
        [COMMAND, "--db", str(db), "--mail", "python:vendormail:make", "accounts", "create",
         "--name", "A", "--owner-id", "o", "--owner-email", "o@example.org"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "mail goes to the mailer from vendormail:make, so set --accept-url" in proc.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("python:", "needs a module and a factory"),
        ("python:vendormail", "needs a module and a factory"),
        ("python:vendormail:", "needs a module and a factory"),
        ("python:vendor mail:make", "needs a module and a factory"),
        ("python:vendormail:make()", "needs a module and a factory"),
        ("python:../vendormail:make", "needs a module and a factory"),
    ],
)
def test_a_malformed_factory_is_refused_before_anything_runs(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_mail(value)


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("nosuchmodule:make", "could not import nosuchmodule (ModuleNotFoundError"),
        ("vendormail:missing", "vendormail has no missing; name a function"),
        ("vendormail:value", "value is not callable"),
        ("vendormail:broken", "broken() raised RuntimeError: VENDOR_API_KEY is not set"),
        ("vendormail:not_a_mailer", "returned object, which has no send(message) method"),
    ],
)
def test_a_factory_that_cannot_give_a_mailer_is_refused_and_creates_nothing(
    tmp_path: Path,
    vendor: Path,
    monkeypatch: pytest.MonkeyPatch,
    factory: str,
    says: str,
) -> None:
    monkeypatch.delitem(sys.modules, "vendormail", raising=False)
    assert_refused_creating_nothing(tmp_path, vendor, monkeypatch, factory, says)


def assert_refused_creating_nothing(
    tmp_path: Path, vendor: Path, monkeypatch: pytest.MonkeyPatch, factory: str, says: str
) -> None:
    """``accounts create`` with ``--mail python:{factory}``, the vendor's modules in
    *vendor* (a folder in *tmp_path*): refused with exit 3 and *says*, no file made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(vendor))
    env = {k: None for k in os.environ if k.startswith("TEAMACCESS_")}
    env["TEAMACCESS_SECRET_KEY"] = SECRET
    result = CliRunner(env=env).invoke(
        cli,
        ["--mail", f"python:{factory}", "--sender", SENDER, "--accept-url", ACCEPT_URL,
         "accounts", "create", "--name", "A", "--owner-id", "o", "--owner-email",
         "o@example.org"],
    )  # fmt: skip
    assert result.exit_code == 3, (result.output, result.exception)
    assert f"--mail python:{factory}: " in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [vendor.name]

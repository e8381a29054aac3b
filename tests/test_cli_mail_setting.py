"""The ``teamaccess`` command's mail settings: ``--mail`` and where each command's mail went,
against a real SMTP server, and queued delivery, through the runner of ``tests/test_cli.py``."""

from __future__ import annotations

import email
import email.policy
import os

import pytest
from tests.smtp_server import Certificates, SmtpServer
from tests.test_cli import REAL_LINKS, Cli, account, eml_files, run

__all__ = ["account", "run"]  # fixtures, imported for pytest


class TestMailSetting:
    """--mail names where mail goes; every command says where it went."""

    def test_smtp_url_reaches_a_real_server(self, run: Cli, account: str) -> None:
        with SmtpServer() as server:
            mail = ["--mail", f"smtp://{server.host}:{server.port}?security=plain", *REAL_LINKS]
            out = run(*mail, "invite", account, "b@example.com", "--all", "--as", "max").stdout
            assert f"mail to b@example.com sent to SMTP server {server.host}:{server.port}" in out
            [received] = server.received
        assert received.rcpt_tos == ["b@example.com"]
        assert eml_files(run.folder) == []

    def test_smtp_url_with_a_login(self, run: Cli, account: str) -> None:
        certs = Certificates.create()
        ca_file = run.folder / "ca.pem"
        certs.ca.cert_pem.write_to_path(str(ca_file))
        run.env["SSL_CERT_FILE"] = str(ca_file)  # the default TLS context trusts the test CA
        with SmtpServer(mode="starttls", certs=certs, users={"panel@muster": "s3cret"}) as server:
            run.env["TEAMACCESS_SMTP_PASSWORD"] = "s3cret"
            # starttls is the default security
            run.env["TEAMACCESS_MAIL"] = f"smtp://panel%40muster@{server.host}:{server.port}"
            run(*REAL_LINKS, "invite", account, "b@example.com", "--all", "--as", "max")
            [received] = server.received
        assert (received.login, received.tls) == ("panel@muster", True)

    def test_login_in_clear_is_refused(self, run: Cli, account: str) -> None:
        run.env["TEAMACCESS_SMTP_PASSWORD"] = "s3cret"
        before = sorted(p.name for p in run.folder.iterdir())
        line = run.error(
            "--mail", "smtp://panel@mail.example.com:25?security=plain", *REAL_LINKS,
            "invite", account, "b@example.com", "--all", "--as", "max", code=3,
        )  # fmt: skip
        assert line == (
            "error: --mail logs in as 'panel' with security=plain, which sends the password "
            "to mail.example.com unencrypted; use ?security=starttls (the default) or "
            "?security=tls, or no user for a relay that needs no login (plain with a login "
            "only to localhost or 127.0.0.1)"
        )
        assert sorted(p.name for p in run.folder.iterdir()) == before  # no outbox, no file
        assert run.json("invitations", account) == []

    def test_login_in_clear_is_refused_in_the_old_options_words(
        self, run: Cli, account: str
    ) -> None:
        """The deprecated --smtp-* options got SmtpMailer's Python wording (security=)."""
        run.env["TEAMACCESS_SMTP_PASSWORD"] = "s3cret"
        before = sorted(p.name for p in run.folder.iterdir())
        line = run.error(
            "--smtp-host", "mail.example.com", "--smtp-user", "panel", "--smtp-security",
            "plain", *REAL_LINKS, "invite", account, "b@example.com", "--all", "--as", "max",
            code=3,
        )  # fmt: skip
        assert line.startswith(
            "error: --smtp-user 'panel' with --smtp-security plain sends the password to "
            "mail.example.com unencrypted; use --smtp-security starttls or tls, or better "
            "--mail smtp://USER@mail.example.com"
        )
        assert sorted(p.name for p in run.folder.iterdir()) == before
        assert run.json("invitations", account) == []
        with SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True) as server:
            run("--smtp-host", server.host, "--smtp-port", str(server.port), "--smtp-user",
                "panel", "--smtp-security", "plain", *REAL_LINKS, "invite", account,
                "c@example.com", "--all", "--as", "max")  # fmt: skip
            [received] = server.received
        assert (received.login, received.tls) == ("panel", False)

    def test_login_in_clear_to_a_local_relay(self, run: Cli, account: str) -> None:
        with SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True) as server:
            run.env["TEAMACCESS_SMTP_PASSWORD"] = "s3cret"
            run.env["TEAMACCESS_MAIL"] = f"smtp://panel@{server.host}:{server.port}?security=plain"
            run(*REAL_LINKS, "invite", account, "b@example.com", "--all", "--as", "max")
            [received] = server.received
        assert (received.login, received.tls) == ("panel", False)

    def test_file_url(self, run: Cli, account: str) -> None:
        out = run("--mail", "file:letters", "invite", account, "b@example.com", "--all",
                  "--as", "max").stdout  # fmt: skip
        assert f"mail to b@example.com written to letters{os.sep} (a file: not sent)" in out
        assert len(list((run.folder / "letters").glob("*.eml"))) == 1

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("imap://mail.example.com", "--mail must be smtp://"),
            ("smtp://panel:s3cret@mail.example.com", "must not hold the SMTP password"),
            ("smtp://mail.example.com?security=ssl", "security must be starttls, tls or plain"),
            ("smtp://mail.example.com?tls=1", "knows only ?security="),
            ("smtp://mail.example.com:99999", "bad port"),
            # SmtpMailer refuses port 0; refused here, before any command runs
            ("smtp://mail.example.com:0", "port from 1 to 65535"),
            ("smtp://panel@mail.example.com:00", "port from 1 to 65535"),
            # a password with '/', '?' or '#' ends the host part: the parser's error
            # quotes its start as the port
            ("smtp://panel:s3cret/x@mail.example.com", "bad port"),
            ("smtp://panel:s3cret?x@mail.example.com", "bad port"),
            ("smtp://panel:s3cret#x@mail.example.com", "bad port"),
            ("smtp:///nohost", "names no SMTP host"),
            ("file:", "needs a folder"),
        ],
    )
    def test_bad_values(self, run: Cli, value: str, message: str) -> None:
        line = run.error("--mail", value, "catalog", code=3)
        assert message in line
        assert "s3cret" not in line

    def test_old_options_and_mail_do_not_mix(self, run: Cli) -> None:
        line = run.error("--mail", "file:x", "--smtp-host", "h", "catalog", code=2)
        assert "--mail replaces --smtp-host" in line

    def test_deliver_never_calls_files_sent(self, run: Cli, account: str) -> None:
        run("--delivery", "queue", "notify", account, "billing", "--subject", "S", "--text", "T")
        out = run("deliver").stdout
        assert out.splitlines()[-1] == (
            f"1 written as files to outbox{os.sep} (not sent); 0 still waiting"
        )
        assert " sent to " not in out

    def test_deliver_json(self, run: Cli, account: str) -> None:
        run("--delivery", "queue", "notify", account, "billing", "--subject", "S", "--text", "T")
        data = run.json("deliver")
        assert (data["delivered"], data["failed"], data["waiting"]) == (1, 0, 0)
        assert data["via"] == "file:outbox"
        assert [m["status"] for m in data["messages"]] == ["sent"]


class TestQueuedDelivery:
    """--delivery queue: commands only queue their mail; deliver sends it."""

    def test_invite_queues_and_deliver_sends_a_working_link(self, run: Cli, account: str) -> None:
        out = run("--delivery", "queue", "invite", account, "dev@example.com", "--all",
                  "--as", "max").stdout  # fmt: skip
        assert "mail to dev@example.com queued in the outbox" in out
        assert "token=" not in out  # the worker mints the link; none is shown
        assert eml_files(run.folder) == []
        data = run.json("--delivery", "queue", "invite", account, "ops@example.com", "--all",
                        "--as", "max")  # fmt: skip
        assert (data["token"], data["accept_url"]) == (None, None)
        assert data["mail"] == {"status": "queued", "to": ["ops@example.com"],
                                "via": "file:outbox"}  # fmt: skip
        run("deliver")
        mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                 for p in eml_files(run.folder)]  # fmt: skip
        [dev] = [m for m in mails if m["To"] == "dev@example.com"]
        body = dev.get_body(("plain",))
        assert body is not None
        token = body.get_content().split("token=")[1].split()[0]
        from urllib.parse import unquote

        member = run.json("accept", unquote(token), "--user", "dev", "--email", "dev@example.com")
        assert member["user_id"] == "dev"

    def test_demo_refuses_queued_delivery(self, run: Cli) -> None:
        assert "without --delivery queue" in run.error("--delivery", "queue", "demo", code=2)

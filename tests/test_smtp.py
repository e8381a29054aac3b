"""SmtpMailer against a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS,
implicit TLS, login, a refused recipient, and a server that is down."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest
from tests.conftest import SECRET, START
from tests.smtp_server import HOST, Certificates, SmtpServer, free_port

import teamaccess
from teamaccess import (
    Account,
    DeliveryFailed,
    FileMailer,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SmtpMailer,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.mailers import build_message
from teamaccess.testing import FrozenClock

TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9._%-]+)")


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates.create()


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def message(to: str = "kunde@example.org", **headers: str) -> EmailMessage:
    return build_message(
        sender="Panel <noreply@panel.example.com>",
        to=to,
        subject="Hallo",
        text="secret body text",
        html="<p>secret body text</p>",
        message_id="<m1@panel.example.com>",
        language="en",
        headers=headers,
    )


def service(mailer: SmtpMailer, clock: FrozenClock) -> tuple[TeamAccess, Account]:
    team = TeamAccess(
        MemoryStore(),
        mailer,
        secret_key=SECRET,
        clock=clock,
        accept_url="https://panel.example.com/accept?token={token}",
        sender="Panel <noreply@panel.example.com>",
    )
    account = team.create_account(
        name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de"
    )
    return team, account


def link_token(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    match = TOKEN_IN_LINK.search(body.get_content())
    assert match is not None
    return unquote(match.group(1))


class TestConfiguration:
    """The constructor validates its arguments and picks the usual port."""

    @pytest.mark.parametrize(("security", "port"), [("plain", 25), ("starttls", 587), ("tls", 465)])
    def test_default_port_follows_security(self, security: str, port: int) -> None:
        assert SmtpMailer("mail.example.com", security=security).port == port  # type: ignore[arg-type]

    def test_explicit_port_wins(self) -> None:
        assert SmtpMailer("mail.example.com", 2525, security="tls").port == 2525

    def test_unknown_security(self) -> None:
        with pytest.raises(ValidationError, match="unknown SMTP security 'ssl'"):
            SmtpMailer(security="ssl")  # type: ignore[arg-type]

    def test_password_without_username(self) -> None:
        with pytest.raises(ValidationError, match="needs a username"):
            SmtpMailer(password="s3cret")

    def test_username_without_password(self) -> None:
        with pytest.raises(ValidationError, match="needs a password"):
            SmtpMailer(username="panel")

    @pytest.mark.parametrize("port", [0, 70000, "25"])
    def test_bad_port(self, port: object) -> None:
        with pytest.raises(ValidationError, match="port must be an integer"):
            SmtpMailer(port=port)  # type: ignore[arg-type]

    def test_bad_timeout(self) -> None:
        with pytest.raises(ValidationError, match="timeout must be a positive"):
            SmtpMailer(timeout=0)

    def test_header_injection_in_host(self) -> None:
        with pytest.raises(ValidationError, match="line break"):
            SmtpMailer("mail.example.com\r\nRCPT TO:<x@y>")

    def test_ssl_context_needs_tls(self) -> None:
        with pytest.raises(ValidationError, match="no effect with security='plain'"):
            SmtpMailer(ssl_context=ssl.create_default_context())

    def test_repr_never_shows_the_password(self) -> None:
        mailer = SmtpMailer("mx", security="starttls", username="panel", password="s3cret")
        assert "s3cret" not in repr(mailer)
        assert repr(mailer) == "SmtpMailer('mx', 587, security='starttls', username='panel')"

    def test_exported_lazily(self) -> None:
        assert teamaccess.SmtpMailer is SmtpMailer


class TestNoPlaceholder:
    """An SmtpMailer reaches real people: the example accept URL and sender are refused."""

    def test_example_accept_url_is_refused(self) -> None:
        with pytest.raises(ValidationError, match=r"^accept_url is still the example"):
            TeamAccess(
                MemoryStore(), SmtpMailer(), secret_key=SECRET, sender="P <noreply@muster.de>"
            )

    def test_example_sender_is_refused(self) -> None:
        with pytest.raises(ValidationError, match=r"^sender is still the example"):
            TeamAccess(
                MemoryStore(),
                SmtpMailer(),
                secret_key=SECRET,
                accept_url="https://panel.muster.de/accept?token={token}",
            )

    def test_own_settings_are_accepted(self) -> None:
        team = TeamAccess(
            MemoryStore(),
            SmtpMailer(),
            secret_key=SECRET,
            accept_url="https://panel.muster.de/accept?token={token}",
            sender="Panel <noreply@muster.de>",
        )
        assert team.accept_url == "https://panel.muster.de/accept?token={token}"

    @pytest.mark.parametrize("demo_mailer", ["memory", "file"])
    def test_demo_mailers_keep_the_defaults(self, demo_mailer: str, tmp_path: Path) -> None:
        mailer = MemoryMailer() if demo_mailer == "memory" else FileMailer(tmp_path)
        team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET)
        assert "example.com" in team.accept_url


class TestPlain:
    """Plain SMTP to a local relay: what the service sends arrives as sent."""

    def test_message_arrives(self, server: SmtpServer) -> None:
        SmtpMailer(HOST, server.port).send(message())
        [got] = server.received
        assert got.rcpt_tos == ["kunde@example.org"]
        assert got.mail_from == "noreply@panel.example.com"
        assert got.message["Message-ID"] == "<m1@panel.example.com>"
        assert got.tls is False

    def test_invitation_link_from_the_server_works(
        self, server: SmtpServer, clock: FrozenClock
    ) -> None:
        team, account = service(SmtpMailer(HOST, server.port), clock)
        inv = team.invite(
            account.id,
            actor_id="owner",
            email="dev@example.org",
            permissions=PermissionSet.of("services.view"),
        )
        [got] = server.received
        assert got.rcpt_tos == ["dev@example.org"]
        token = link_token(got.message)
        assert token == inv.token
        member = team.accept_invitation(token, user_id="dev", email="dev@example.org")
        assert member.permissions == PermissionSet.of("services.view")
        assert team.pending_messages() == []

    def test_notify_one_connection_per_recipient_nobody_sees_another(
        self, server: SmtpServer, clock: FrozenClock
    ) -> None:
        team, account = service(SmtpMailer(HOST, server.port), clock)
        for name in ("buchhaltung", "steuer"):
            team.add_contact(
                account.id,
                actor_id="owner",
                name=name,
                email=f"{name}@muster.de",
                categories=["billing"],
            )
        sent = team.notify(account.id, "billing", subject="Rechnung", text="Neue Rechnung")
        assert sent == ["chef@muster.de", "buchhaltung@muster.de", "steuer@muster.de"]
        assert [r.rcpt_tos for r in server.received] == [[a] for a in sent]
        for got, address in zip(server.received, sent, strict=True):
            assert got.message["To"] == address
            assert got.message["Cc"] is None
            assert got.message["Bcc"] is None

    def test_idn_domain_goes_out_as_punycode(self, server: SmtpServer) -> None:
        SmtpMailer(HOST, server.port).send(message(to="chef@müller.de"))
        [got] = server.received
        assert got.rcpt_tos == ["chef@xn--mller-kva.de"]

    def test_unicode_local_part_needs_smtputf8(self) -> None:
        with SmtpServer(smtputf8=False) as plain:
            with pytest.raises(DeliveryFailed, match=r"does not offer SMTPUTF8"):
                SmtpMailer(HOST, plain.port).send(message(to="jörg@muster.de"))
            assert plain.received == []
        with SmtpServer(smtputf8=True) as utf8:
            SmtpMailer(HOST, utf8.port).send(message(to="jörg@muster.de"))
            [got] = utf8.received
            assert got.rcpt_tos == ["jörg@muster.de"]
            assert got.message["To"] == "jörg@muster.de"


class TestStartTls:
    """STARTTLS upgrades the connection; the certificate must be trusted."""

    def test_delivers_encrypted(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs) as server:
            mailer = SmtpMailer(
                HOST, server.port, security="starttls", ssl_context=certs.client_context()
            )
            mailer.send(message())
            [got] = server.received
            assert got.tls is True

    def test_untrusted_certificate_fails(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs) as server:
            # The default context trusts the system CAs, not the test CA.
            mailer = SmtpMailer(HOST, server.port, security="starttls")
            with pytest.raises(DeliveryFailed, match=r"TLS with mail server 127\.0\.0\.1:\d+"):
                mailer.send(message())
            assert server.received == []

    def test_untrusted_certificate_says_how_to_trust_a_private_ca(
        self, certs: Certificates
    ) -> None:
        """A relay with a certificate from the vendor's own CA is the usual case; the
        message said only "check that the certificate is trusted", not how."""
        with SmtpServer(mode="starttls", certs=certs) as server:
            mailer = SmtpMailer(HOST, server.port, security="starttls")
            with pytest.raises(DeliveryFailed) as caught:
                mailer.send(message())
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert "ssl_context=ssl.create_default_context(cafile=...)" in str(caught.value)
        assert "SSL_CERT_FILE" in str(caught.value)

    def test_plain_client_is_turned_away(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs) as server:
            with pytest.raises(
                DeliveryFailed, match=r"refused the sender .*\(530 Must issue a STARTTLS"
            ):
                SmtpMailer(HOST, server.port).send(message())
            assert server.received == []

    def test_server_without_starttls(self, server: SmtpServer, certs: Certificates) -> None:
        mailer = SmtpMailer(
            HOST, server.port, security="starttls", ssl_context=certs.client_context()
        )
        with pytest.raises(DeliveryFailed, match="does not support what STARTTLS needs"):
            mailer.send(message())

    @pytest.mark.parametrize("batch", [False, True])
    def test_server_without_starttls_never_gets_the_password(
        self, certs: Certificates, batch: bool
    ) -> None:
        # A server that offers a login in clear but no STARTTLS: the mailer stops before
        # the login, and never falls back to sending without TLS.
        with SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True) as server:
            mailer = SmtpMailer(
                HOST,
                server.port,
                security="starttls",
                username="panel",
                password="s3cret",
                ssl_context=certs.client_context(),
            )
            with mailer.batch() as sender:
                send = sender.send if batch else mailer.send
                with pytest.raises(DeliveryFailed, match="does not support what STARTTLS"):
                    send(message())
            assert server.logins == []
            assert server.received == []


class TestImplicitTls:
    """Implicit TLS (port 465 style) from the first byte."""

    def test_delivers_encrypted(self, certs: Certificates) -> None:
        with SmtpServer(mode="tls", certs=certs) as server:
            mailer = SmtpMailer(
                HOST, server.port, security="tls", ssl_context=certs.client_context()
            )
            mailer.send(message())
            [got] = server.received
            assert got.tls is True
            assert got.message["Subject"] == "Hallo"

    def test_untrusted_certificate_fails(self, certs: Certificates) -> None:
        with SmtpServer(mode="tls", certs=certs) as server:
            with pytest.raises(DeliveryFailed, match="certificate"):
                SmtpMailer(HOST, server.port, security="tls").send(message())
            assert server.received == []


class TestLogin:
    """AUTH after STARTTLS; a wrong password or no login is refused."""

    USERS = {"panel": "s3cret"}

    @pytest.fixture
    def auth_server(self, certs: Certificates) -> Iterator[SmtpServer]:
        with SmtpServer(mode="starttls", certs=certs, users=self.USERS) as running:
            yield running

    def mailer(self, server: SmtpServer, certs: Certificates, **login: str) -> SmtpMailer:
        return SmtpMailer(
            HOST,
            server.port,
            security="starttls",
            ssl_context=certs.client_context(),
            **login,  # type: ignore[arg-type]
        )

    def test_login_and_send(self, auth_server: SmtpServer, certs: Certificates) -> None:
        self.mailer(auth_server, certs, username="panel", password="s3cret").send(message())
        [got] = auth_server.received
        assert got.login == "panel"
        assert got.tls is True

    def test_wrong_password(self, auth_server: SmtpServer, certs: Certificates) -> None:
        mailer = self.mailer(auth_server, certs, username="panel", password="wrong")
        with pytest.raises(DeliveryFailed, match="rejected the login of 'panel'") as info:
            mailer.send(message())
        assert "wrong" not in str(info.value)
        assert auth_server.received == []

    def test_no_login(self, auth_server: SmtpServer, certs: Certificates) -> None:
        with pytest.raises(DeliveryFailed, match=r"refused the sender .*\(530 .*or a login first"):
            self.mailer(auth_server, certs).send(message())
        assert auth_server.received == []


class TestCleartextLogin:
    """A login over security="plain" is refused when built, except to this machine."""

    @pytest.mark.parametrize(
        "host",
        [
            "mail.example.com",
            "10.0.0.25",
            "192.168.1.1",
            "2001:db8::1",
            "localhost.example.com",
            "localhost.",
            "127.0.0.1.example.com",
        ],
    )
    def test_refused_before_any_connection(
        self, host: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        connected: list[object] = []

        def create_connection(address: object, *args: object, **kwargs: object) -> None:
            connected.append(address)
            raise OSError("no connection in this test")

        monkeypatch.setattr("socket.create_connection", create_connection)
        with pytest.raises(
            ValidationError,
            match=rf"^SMTP login as 'panel' with security='plain' would send the password to "
            rf"{re.escape(host)} unencrypted; pass security=\"starttls\" or \"tls\"",
        ) as info:
            SmtpMailer(host, username="panel", password="s3cret")
        assert "s3cret" not in str(info.value)
        assert connected == []

    @pytest.mark.parametrize("host", [HOST, "localhost"])
    def test_loopback_relay_takes_a_plain_login(self, host: str) -> None:
        with SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True) as server:
            SmtpMailer(host, server.port, username="panel", password="s3cret").send(message())
            [got] = server.received
        assert (got.login, got.tls) == ("panel", False)

    @pytest.mark.parametrize(
        "host", ["LocalHost", "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
    )
    def test_every_loopback_form_is_allowed(self, host: str) -> None:
        mailer = SmtpMailer(host, username="panel", password="s3cret")
        assert (mailer.host, mailer.security) == (host, "plain")

    def test_without_a_login_plain_is_fine(self) -> None:
        assert SmtpMailer("mail.example.com").security == "plain"

    @pytest.mark.parametrize("security", ["starttls", "tls"])
    def test_encrypted_login_to_any_host(self, security: str) -> None:
        mailer = SmtpMailer(
            "mail.example.com",
            security=security,  # type: ignore[arg-type]
            username="panel",
            password="s3cret",
        )
        assert mailer.username == "panel"

    def test_explicit_opt_out(self) -> None:
        mailer = SmtpMailer(
            "relay.internal", username="panel", password="s3cret", allow_cleartext_login=True
        )
        assert (mailer.host, mailer.security, mailer.username) == (
            "relay.internal",
            "plain",
            "panel",
        )

    @pytest.mark.parametrize("value", [1, "yes", None])
    def test_opt_out_must_be_a_bool(self, value: object) -> None:
        with pytest.raises(ValidationError, match="allow_cleartext_login must be True or False"):
            SmtpMailer(allow_cleartext_login=value)  # type: ignore[arg-type]


class TestRefusedRecipient:
    """A recipient the server refuses is a failed delivery, recorded in the outbox."""

    def test_refused_invitation_waits_in_the_outbox(self, clock: FrozenClock) -> None:
        with SmtpServer(refuse=["nobody@muster.de"]) as server:
            team, account = service(SmtpMailer(HOST, server.port), clock)
            with pytest.raises(DeliveryFailed) as info:
                team.invite(
                    account.id,
                    actor_id="owner",
                    email="nobody@muster.de",
                    permissions=PermissionSet.none(),
                )
            [row] = team.pending_messages()
            assert info.value.message_ids == (row.id,)
            assert [i.id for i in team.pending_invitations(account.id)] == [
                info.value.invitation_id
            ]
            assert row.attempts == 1
            assert row.last_error is not None
            assert "refused every recipient (nobody@muster.de: 550 5.1.1" in row.last_error
            assert "token" not in row.last_error
            assert server.received == []

    def test_partial_refusal_names_who_did_not_get_it(self) -> None:
        with SmtpServer(refuse=["nobody@muster.de"]) as server:
            msg = message(to="kunde@example.org")
            msg["Cc"] = "nobody@muster.de"  # build_message refuses it; a caller's own mail
            with pytest.raises(DeliveryFailed, match=r"refused nobody@muster\.de: 550") as info:
                SmtpMailer(HOST, server.port).send(msg)
            assert "secret body text" not in str(info.value)
            [got] = server.received
            assert got.rcpt_tos == ["kunde@example.org"]


class TestServerDown:
    """Nothing is lost while the server is down, and nothing is sent twice after."""

    def test_invitation_waits_then_arrives_once_with_a_working_link(
        self, clock: FrozenClock
    ) -> None:
        port = free_port()
        team, account = service(SmtpMailer(HOST, port, timeout=5), clock)
        with pytest.raises(DeliveryFailed, match="will be retried by deliver_pending") as info:
            team.invite(
                account.id,
                actor_id="owner",
                email="dev@example.org",
                permissions=PermissionSet.of("billing.view"),
            )
        [inv] = team.pending_invitations(account.id)
        assert inv.id == info.value.invitation_id
        [row] = team.pending_messages()
        assert row.last_error is not None
        assert f"cannot connect with mail server {HOST}:{port}" in row.last_error

        with SmtpServer(port=port) as server:
            assert team.deliver_pending() == []  # backing off: not due yet
            clock.advance(timedelta(minutes=1))
            [done] = team.deliver_pending()
            assert done.status == "sent"
            assert done.attempts == 2
            assert team.deliver_pending() == []
            [got] = server.received
            assert got.message["Message-ID"] == row.message_id
            fresh = link_token(got.message)
            member = team.accept_invitation(fresh, user_id="dev", email="dev@example.org")
            assert member.permissions == PermissionSet.of("billing.view")
        assert team.pending_messages() == []

    def test_notification_keeps_its_message_id_across_retries(self, clock: FrozenClock) -> None:
        port = free_port()
        team, account = service(SmtpMailer(HOST, port, timeout=5), clock)
        with pytest.raises(DeliveryFailed, match="wait in the outbox") as info:
            team.notify(account.id, "general", subject="Wartung", text="Heute Nacht")
        [row] = team.pending_messages()
        assert info.value.message_ids == (row.id,)
        clock.advance(timedelta(minutes=1))
        [again] = team.deliver_pending()  # still down
        assert again.attempts == 2
        assert again.next_attempt_at == clock.now() + timedelta(minutes=2)
        clock.advance(timedelta(minutes=2))
        with SmtpServer(port=port) as server:
            [done] = team.deliver_pending()
            assert team.deliver_pending() == []
            [got] = server.received
        assert done.status == "sent"
        assert got.message["Message-ID"] == row.message_id
        assert got.message["Subject"] == "Wartung"
        # Written when queued, not when finally sent: the message is the same bytes.
        assert got.message["Date"] == "Fri, 01 May 2026 09:00:00 +0000"
        assert clock.now() == START + timedelta(minutes=3)


class TestBatch:
    """SmtpMailer.batch(): consecutive messages over one connection, STARTTLS and login
    once, a new connection when the server drops one or the cap is reached, the same one
    after a refused recipient."""

    USERS = {"panel": "s3cret"}

    @pytest.fixture
    def auth_server(self, certs: Certificates) -> Iterator[SmtpServer]:
        with SmtpServer(mode="starttls", certs=certs, users=self.USERS) as running:
            yield running

    def mailer(self, server: SmtpServer, certs: Certificates, **options: int) -> SmtpMailer:
        return SmtpMailer(
            HOST,
            server.port,
            security="starttls",
            ssl_context=certs.client_context(),
            username="panel",
            password="s3cret",
            **options,
        )

    @staticmethod
    def numbered(n: int) -> list[EmailMessage]:
        out = []
        for i in range(n):
            msg = message(f"kunde{i}@example.org")
            msg.replace_header("Message-ID", f"<m{i}@panel.example.com>")
            out.append(msg)
        return out

    @staticmethod
    def per_connection(server: SmtpServer) -> list[int]:
        """How many messages arrived over each connection, in order."""
        counts: dict[tuple[str, int], int] = {}
        for got in server.received:
            counts[got.peer] = counts.get(got.peer, 0) + 1
        return list(counts.values())

    def test_is_a_batch_mailer(self) -> None:
        assert isinstance(SmtpMailer(HOST), teamaccess.BatchMailer)
        assert isinstance(SmtpMailer(HOST), teamaccess.Mailer)

    def test_many_messages_one_connection_one_login(
        self, auth_server: SmtpServer, certs: Certificates
    ) -> None:
        with self.mailer(auth_server, certs).batch() as sender:
            for msg in self.numbered(20):
                sender.send(msg)
        assert auth_server.connections == 1
        assert self.per_connection(auth_server) == [20]
        assert [g.rcpt_tos for g in auth_server.received] == [
            [f"kunde{i}@example.org"] for i in range(20)
        ]
        assert all(g.tls and g.login == "panel" for g in auth_server.received)
        # on the wire, as sent
        assert auth_server.received[3].message["Message-ID"] == "<m3@panel.example.com>"

    def test_reconnects_when_the_server_drops_the_connection(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs, users=self.USERS, drop_after=3) as server:
            with self.mailer(server, certs).batch() as sender:
                for msg in self.numbered(8):
                    sender.send(msg)
            # every message once, none lost to the drop, none sent twice
            ids = [g.message["Message-ID"] for g in server.received]
            assert ids == [f"<m{i}@panel.example.com>" for i in range(8)]
            assert self.per_connection(server) == [3, 3, 2]

    def test_caps_messages_per_connection(
        self, auth_server: SmtpServer, certs: Certificates
    ) -> None:
        with self.mailer(auth_server, certs, max_per_connection=4).batch() as sender:
            for msg in self.numbered(10):
                sender.send(msg)
        assert self.per_connection(auth_server) == [4, 4, 2]
        assert auth_server.connections == 3

    def test_a_refused_recipient_fails_alone_and_the_connection_goes_on(
        self, certs: Certificates
    ) -> None:
        with SmtpServer(
            mode="starttls", certs=certs, users=self.USERS, refuse=["kunde1@example.org"]
        ) as server:
            failed = []
            with self.mailer(server, certs).batch() as sender:
                for msg in self.numbered(4):
                    try:
                        sender.send(msg)
                    except DeliveryFailed as exc:
                        failed.append((msg["To"], str(exc)))
            assert [to for to, _ in failed] == ["kunde1@example.org"]
            assert "refused every recipient (kunde1@example.org: 550" in failed[0][1]
            assert "secret body text" not in failed[0][1]
            assert [g.rcpt_tos for g in server.received] == [
                ["kunde0@example.org"],
                ["kunde2@example.org"],
                ["kunde3@example.org"],
            ]
            # smtplib reset the refused transaction (RSET): no new connection, no login
            assert self.per_connection(server) == [3]
            assert server.connections == 1

    def test_a_message_the_server_may_have_taken_is_not_sent_again(
        self, certs: Certificates
    ) -> None:
        # The server keeps the second message and drops the connection before its reply:
        # that message fails (it may have arrived), and is not sent again by the batch.
        with SmtpServer(mode="starttls", certs=certs, users=self.USERS, unanswered=2) as server:
            failed = []
            with self.mailer(server, certs).batch() as sender:
                for msg in self.numbered(3):
                    try:
                        sender.send(msg)
                    except DeliveryFailed:
                        failed.append(msg["Message-ID"])
            assert failed == ["<m1@panel.example.com>"]
            assert [g.message["Message-ID"] for g in server.received] == [
                f"<m{i}@panel.example.com>" for i in range(3)
            ]
            assert self.per_connection(server) == [2, 1]

    def test_server_down_fails_each_message(self) -> None:
        mailer = SmtpMailer(HOST, free_port(), timeout=5)
        with mailer.batch() as sender:
            for msg in self.numbered(2):
                with pytest.raises(DeliveryFailed, match="cannot connect with mail server"):
                    sender.send(msg)

    def test_wrong_password_fails_without_the_password(
        self, auth_server: SmtpServer, certs: Certificates
    ) -> None:
        mailer = SmtpMailer(
            HOST,
            auth_server.port,
            security="starttls",
            ssl_context=certs.client_context(),
            username="panel",
            password="wrong",
        )
        with (
            mailer.batch() as sender,
            pytest.raises(DeliveryFailed, match="rejected the login of 'panel'") as info,
        ):
            sender.send(message())
        assert "wrong" not in str(info.value)
        assert auth_server.received == []

    @pytest.mark.parametrize("cap", [0, -1, 1.5, True, "10"])
    def test_cap_must_be_a_positive_integer(self, cap: object) -> None:
        with pytest.raises(ValidationError, match="max_per_connection must be a positive"):
            SmtpMailer(HOST, max_per_connection=cap)  # type: ignore[arg-type]

"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, in a thread, recording mail.

It speaks plain SMTP, STARTTLS or implicit TLS (with a trustme test certificate), may
require a login, and may refuse chosen recipients with ``550``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterable, Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

import attrs
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.frozen
class Certificates:
    """A test CA and a certificate for 127.0.0.1 and localhost it signed."""

    ca: trustme.CA
    server: ssl.SSLContext

    @classmethod
    def create(cls) -> Certificates:
        ca = trustme.CA()
        cert = ca.issue_cert(HOST, "localhost")
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server)
        return cls(ca, server)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and checks the host name)."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@attrs.frozen
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None
    #: the client's (host, port): one per connection
    peer: tuple[str, int]
    #: the DATA bytes as they came in
    content: bytes = b""


class _Handler:
    def __init__(
        self, refuse: Iterable[str], drop_after: int | None, unanswered: int | None
    ) -> None:
        self.refuse = {r.lower() for r in refuse}
        self.drop_after = drop_after
        self.unanswered = unanswered
        self.received: list[Received] = []
        self.connections: set[tuple[str, int]] = set()
        self.delay = 0.0
        self.block_at: int | None = None
        self.messages = 0
        self.blocked = threading.Event()
        self.released = threading.Event()
        self.accept_held = False
        #: a reply to RCPT TO (say "550 5.1.1 no such user") and one to DATA (say "554
        #: 5.6.0 content rejected") for chosen recipients; what is answered is counted
        self.rcpt_replies: dict[str, str] = {}
        self.data_replies: dict[str, str] = {}
        self.answered: list[tuple[str, str]] = []
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address.lower() in self.rcpt_replies:
            self.answered.append(("RCPT", address.lower()))
            return self.rcpt_replies[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        for to in envelope.rcpt_tos:
            if to.lower() in self.data_replies:
                self.answered.append(("DATA", to.lower()))
                return self.data_replies[to.lower()]
        self.messages += 1
        if self.messages == self.block_at:
            # Hold the reply to this message: the client has it "in hand" until released.
            self.blocked.set()
            while not self.released.is_set():
                await asyncio.sleep(0.01)
            if not self.accept_held:
                return "451 4.3.0 try again later"
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data if session.authenticated else None
        # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
        tls = server.transport.get_extra_info("ssl_object") is not None
        peer = tuple(session.peer[:2])
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parsed,
                tls,
                login,
                peer,
                envelope.original_content,
            )
        )
        if len(self.received) == self.unanswered:
            # Take the message, then vanish before saying so: the client cannot know.
            server.transport.abort()
        elif self.drop_after is not None:
            on_this = sum(1 for r in self.received if r.peer == peer)
            if on_this % self.drop_after == 0:
                # Close once the reply is written, without a word, as a server whose
                # limit or idle timeout has struck does: the client finds out on its
                # next command.
                server.loop.call_soon(server.transport.close)
        return "250 Message accepted for delivery"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections.add(tuple(session.peer[:2]))
        session.host_name = hostname
        return responses


class SmtpServer:
    """``with SmtpServer(...) as server:`` runs a server; ``server.received`` is what came in.

    *mode* ``"plain"`` offers no TLS, ``"starttls"`` offers (and requires) STARTTLS,
    ``"tls"`` speaks TLS from the first byte. *users* maps login to password and makes a
    login mandatory. *drop_after* closes a connection after that many messages on it;
    *unanswered* = n keeps the n-th message but drops its connection before replying.
    *delay* slows every message down by that many seconds; with *block_at* = n the reply
    to the n-th message waits for :meth:`release` (``blocked`` says it is waiting), as a
    client killed or stopped mid-send experiences it. *rcpt_replies* and *data_replies*
    map a recipient to the reply its ``RCPT TO`` or its message's ``DATA`` gets.
    *auth_over_plain* offers the login before any TLS too, as a careless relay does (the
    login is then optional); ``logins`` lists every login tried, taken or not. *host* is
    the address it listens on (127.0.0.1 unless a test needs another).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        mode: Literal["plain", "starttls", "tls"] = "plain",
        certs: Certificates | None = None,
        users: Mapping[str, str] | None = None,
        refuse: Iterable[str] = (),
        smtputf8: bool = False,
        drop_after: int | None = None,
        unanswered: int | None = None,
        delay: float = 0.0,
        block_at: int | None = None,
        rcpt_replies: Mapping[str, str] | None = None,
        data_replies: Mapping[str, str] | None = None,
        auth_over_plain: bool = False,
        host: str = HOST,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port()
        self._handler = _Handler(refuse, drop_after, unanswered)
        self._handler.delay = delay
        self._handler.block_at = block_at
        self._handler.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self._handler.data_replies = {k.lower(): v for k, v in (data_replies or {}).items()}
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if mode != "plain":
            assert certs is not None, "TLS needs test certificates"
            if mode == "tls":
                kwargs["ssl_context"] = certs.server
            else:
                kwargs["tls_context"] = certs.server
                kwargs["require_starttls"] = True
        if users is not None:
            accounts = dict(users)
            tried = self._handler.logins

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                if isinstance(auth_data, LoginPassword):
                    tried.append(auth_data.login.decode())
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and accounts.get(auth_data.login.decode()) == auth_data.password.decode()
                )
                login = auth_data.login.decode() if ok else None
                return AuthResult(success=ok, handled=False, auth_data=login)

            kwargs["authenticator"] = authenticator
            if auth_over_plain:
                # aiosmtpd warns about a required login without TLS; an optional one it
                # offers quietly.
                kwargs["auth_require_tls"] = False
            else:
                kwargs["auth_required"] = True
        self._controller = Controller(self._handler, hostname=host, port=self.port, **kwargs)

    @property
    def received(self) -> list[Received]:
        return self._handler.received

    @property
    def logins(self) -> list[str]:
        """The login names tried, in order, whether the password was right or not."""
        return self._handler.logins

    @property
    def rcpt_replies(self) -> dict[str, str]:
        """The replies chosen for ``RCPT TO``, by lower-case recipient; change at will."""
        return self._handler.rcpt_replies

    @property
    def answered(self) -> list[tuple[str, str]]:
        """``("RCPT" or "DATA", recipient)`` for each chosen reply given, in order."""
        return self._handler.answered

    @property
    def blocked(self) -> threading.Event:
        """Set once message *block_at* has come in and its reply is held back."""
        return self._handler.blocked

    def release(self, *, accept: bool) -> None:
        """Answer the held message: take it (``250``), or not (``451``, nothing kept)."""
        self._handler.accept_held = accept
        self._handler.released.set()

    @property
    def connections(self) -> int:
        """Connections that said EHLO so far (a STARTTLS client says it twice, once)."""
        return len(self._handler.connections)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

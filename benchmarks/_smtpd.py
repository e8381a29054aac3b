"""The mail benchmark's SMTP server: aiosmtpd on 127.0.0.1, in a process of its own.

It requires STARTTLS (a certificate the benchmark made with trustme) and a login (AUTH
PLAIN or LOGIN), takes each message's DATA and counts it, and does nothing else: no
parsing, no storing, no delay. It runs in its own process so that its work never holds
the measuring process's GIL, and reports its own CPU time, so the benchmark can show how
much of each message's time is the server's.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
USER, PASSWORD = "panel", "bench-s3cret"


class _Counter:
    """The handler: every message's DATA is received in full, counted, and answered 250."""

    def __init__(self) -> None:
        self.messages = 0
        self.connections = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if not session.ssl:  # the plain EHLO; a STARTTLS client says it again after
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not envelope.content or not envelope.rcpt_tos:
            return "554 5.6.0 empty message"
        self.messages += 1
        return "250 2.0.0 Message accepted"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
                  ) -> Any:  # fmt: skip
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def _serve(cert_chain: str, key: str, conn: Any) -> None:
    """The server process: start, say the port, answer ``stats`` until ``stop``."""
    import logging

    from aiosmtpd.controller import Controller

    # aiosmtpd 1.4 logs a warning on every successful login, about a field it sets itself.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_chain, key)
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    handler = _Counter()
    controller = Controller(
        handler,
        hostname=HOST,
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
    )
    controller.start()
    conn.send(port)
    try:
        while True:
            what = conn.recv()
            if what == "stop":
                break
            conn.send((handler.messages, handler.connections, time.process_time()))
    finally:
        controller.stop()
        conn.send("stopped")


@dataclass(frozen=True)
class Stats:
    messages: int
    connections: int
    cpu_s: float  # the server process's CPU time so far


class SmtpServerProcess:
    """``with SmtpServerProcess(workdir) as server:`` a server; ``server.client_context()``
    trusts its certificate, ``server.stats()`` says what it got so far."""

    def __init__(self, workdir: Path) -> None:
        import trustme

        self._ca = trustme.CA()
        cert = self._ca.issue_cert(HOST, "localhost")
        self._chain = workdir / "smtpd-chain.pem"
        self._key = workdir / "smtpd-key.pem"
        cert.cert_chain_pems[0].write_to_path(str(self._chain))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(self._chain), append=True)
        cert.private_key_pem.write_to_path(str(self._key))
        self.host = HOST
        self.port = 0

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx

    def ca_file(self) -> Path:
        """The certificate authority as a PEM file, for a process (``SSL_CERT_FILE``)."""
        path = self._chain.with_name("smtpd-ca.pem")
        self._ca.cert_pem.write_to_path(str(path))
        return path

    def __enter__(self) -> SmtpServerProcess:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(str(self._chain), str(self._key), child), daemon=True
        )
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError("the benchmark's SMTP server did not start within 60 s")
        self.port = self._conn.recv()
        return self

    def stats(self) -> Stats:
        self._conn.send("stats")
        return Stats(*self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send("stop")
            self._conn.poll(30) and self._conn.recv()
        finally:
            self._proc.join(30)
            if self._proc.is_alive():
                self._proc.kill()

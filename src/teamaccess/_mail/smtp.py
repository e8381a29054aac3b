"""``SmtpMailer``: delivery to a mail server with the standard library's ``smtplib``.

Loaded only when ``teamaccess.SmtpMailer`` is first used. Every failure is raised as
``DeliveryFailed`` naming the server and the step that failed; the service records it in
the outbox and ``deliver_pending()`` retries. Errors and logs never contain the message
body, which may hold an invitation token.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Final, Literal, get_args

from .._emails import check_line
from .._errors import DeliveryFailed, ValidationError

__all__ = ["SmtpMailer"]

Security = Literal["plain", "starttls", "tls"]

#: the usual port for each kind of connection (RFC 5321, RFC 6409, RFC 8314)
DEFAULT_PORTS: Final[dict[str, int]] = {"plain": 25, "starttls": 587, "tls": 465}


def _reply(code: int, text: bytes | str) -> str:
    """A server reply as one short line, for an error message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"[:200]


class SmtpMailer:
    """Sends each message over its own SMTP connection.

    *security* is ``"plain"`` (no encryption; only for a relay on localhost or a trusted
    network), ``"starttls"`` (upgrade after connecting, usually port 587) or ``"tls"``
    (implicit TLS from the first byte, usually port 465). *port* defaults to 25, 587 or
    465 accordingly. *username* and *password* log in after the connection is secured.
    *ssl_context* replaces the default context (system CAs, host name checked), e.g. to
    trust a private CA.

    >>> SmtpMailer("mail.example.com", security="starttls", username="panel", password="s3cret")
    SmtpMailer('mail.example.com', 587, security='starttls', username='panel')
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int | None = None,
        *,
        security: Security = "plain",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        check_line("SMTP host", host)
        if not host.strip():
            raise ValidationError("SMTP host must not be empty; use e.g. 'localhost'")
        if security not in DEFAULT_PORTS:
            raise ValidationError(
                f"unknown SMTP security {security!r}; use one of: " + ", ".join(get_args(Security))
            )
        if port is None:
            port = DEFAULT_PORTS[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValidationError(f"SMTP port must be an integer from 1 to 65535, not {port!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError(
                f"SMTP timeout must be a positive number of seconds, not {timeout!r}"
            )
        if username is not None:
            check_line("SMTP username", username)
            if password is None:
                raise ValidationError(f"SMTP username {username!r} needs a password as well")
            check_line("SMTP password", password)
        elif password is not None:
            raise ValidationError("an SMTP password needs a username; pass username= as well")
        if ssl_context is not None and security == "plain":
            raise ValidationError(
                "ssl_context has no effect with security='plain'; use 'starttls' or 'tls'"
            )
        if local_hostname is not None:
            check_line("SMTP local_hostname", local_hostname)
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        # The password is never shown.
        user = f", username={self.username!r}" if self.username is not None else ""
        return f"SmtpMailer({self.host!r}, {self.port}, security={self.security!r}{user})"

    @property
    def _where(self) -> str:
        return f"mail server {self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            # Built on first use, not at import or construction: loading the system CAs
            # costs time an application that never sends mail should not pay.
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        """Deliver *message*, or raise ``DeliveryFailed``.

        *envelope_to* is the one envelope recipient (``RCPT TO``): the service passes the
        stored address its last check found alone in the ``To`` header, so no header
        decides where the mail goes. Without it, smtplib takes the recipients from the
        ``To``, ``Cc`` and ``Bcc`` headers.
        """
        if envelope_to is not None:
            check_line("envelope_to", envelope_to)
        step = "connect"
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    step = "STARTTLS"
                    smtp.starttls(context=self._context())
                if self.username is not None:
                    step = "login"
                    assert self._password is not None
                    smtp.login(self.username, self._password)
                step = "send"
                to_addrs = [envelope_to] if envelope_to is not None else None
                refused = smtp.send_message(message, to_addrs=to_addrs)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(
                f"{self._where} refused every recipient ({self._refusals(exc.recipients)}); "
                "check the address"
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise DeliveryFailed(
                f"{self._where} refused the sender {exc.sender!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); the server may want STARTTLS "
                "or a login first (security=, username=), or not accept this sender"
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(
                f"{self._where} rejected the login of {self.username!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); check username and password"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(
                f"{self._where} does not support what {step} needs ({exc}); "
                "check the security setting (STARTTLS, login) for this server"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"{self._where} answered {_reply(exc.smtp_code, exc.smtp_error)} during "
                f"{step}; the message will be retried"
            ) from exc
        except ssl.SSLError as exc:
            raise DeliveryFailed(
                f"TLS with {self._where} failed during {step} ({exc.reason or exc}); check "
                "the security setting and that the certificate is trusted for this host name"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(
                f"cannot {step} with {self._where}: {type(exc).__name__}: {exc}; is the "
                "server running and reachable?"
            ) from exc
        if refused:
            # Only a message with several recipients gets here (the service sends one per
            # recipient); the caller learns who did not get it.
            raise DeliveryFailed(
                f"{self._where} accepted the message for some recipients but refused "
                f"{self._refusals(refused)}"
            )

    @staticmethod
    def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
        return "; ".join(f"{addr}: {_reply(code, text)}" for addr, (code, text) in refused.items())

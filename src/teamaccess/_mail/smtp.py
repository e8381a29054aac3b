"""``SmtpMailer``: delivery to a mail server with the standard library's ``smtplib``.

Loaded only when ``teamaccess.SmtpMailer`` is first used. Every failure is raised as
``DeliveryFailed`` naming the server and the step that failed; the service records it in
the outbox and ``deliver_pending()`` retries. A refusal of the message's own recipient or
content for good is a ``DeliveryRefused``, which the service stops retrying after
``give_up_after`` in a row. Errors and logs never contain the message
body, which may hold an invitation token.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from email.message import EmailMessage
from typing import Any, Final, Literal, get_args

from .._emails import check_line
from .._errors import DeliveryFailed, DeliveryRefused, ValidationError

__all__ = ["SmtpMailer"]

Security = Literal["plain", "starttls", "tls"]

#: the usual port for each kind of connection (RFC 5321, RFC 6409, RFC 8314)
DEFAULT_PORTS: Final[dict[str, int]] = {"plain": 25, "starttls": 587, "tls": 465}

#: messages sent over one connection in a batch before it is closed and a new one opened;
#: servers limit this (often to 100), and a fresh connection bounds what one drop costs
DEFAULT_PER_CONNECTION: Final = 100


#: the batch whose ``send()`` is running a subclass's own ``send()`` (see ``_Batch.send``):
#: that override's ``super().send()`` goes over the batch's connection. A context
#: variable, so another thread (or task) sending through the same mailer is not affected.
_IN_BATCH: ContextVar[_Batch | None] = ContextVar("teamaccess_smtp_batch", default=None)


class _Tracking:
    """Notes whether the message's content was handed to the server (``DATA``).

    A connection that fails before that point has delivered nothing, so the message may
    be sent again over a new one; after it, the server may have taken the message, and
    sending it again could deliver it twice.
    """

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)  # type: ignore[misc,no-any-return]


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTP_SSL(_Tracking, smtplib.SMTP_SSL):
    pass


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine: ``localhost``, ``127.0.0.0/8`` or ``::1``.

    Only the name and the literal addresses: another name may resolve anywhere.
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 (Python < 3.13 says no itself)
    return address.is_loopback


def _reply(code: int, text: bytes | str) -> str:
    """A server reply as one short line, for an error message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"[:200]


class SmtpMailer:
    """Sends each message over its own SMTP connection, or many over one in a
    :meth:`batch`.

    *security* is ``"plain"`` (no encryption; only for a relay on localhost or a trusted
    network), ``"starttls"`` (upgrade after connecting, usually port 587) or ``"tls"``
    (implicit TLS from the first byte, usually port 465). *port* defaults to 25, 587 or
    465 accordingly. *username* and *password* log in after the connection is secured;
    with ``"plain"`` that is refused (the password would cross the network unencrypted)
    unless *host* is a loopback address (``localhost``, ``127.0.0.0/8``, ``::1``) or
    *allow_cleartext_login* is true, for a relay on a network you trust.
    *ssl_context* replaces the default context (system CAs, host name checked), e.g. to
    trust a private CA. *max_per_connection* caps the messages a :meth:`batch` sends over
    one connection before it opens a new one.

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
        max_per_connection: int = DEFAULT_PER_CONNECTION,
        allow_cleartext_login: bool = False,
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
        if not isinstance(allow_cleartext_login, bool):
            raise ValidationError(
                f"allow_cleartext_login must be True or False, not {allow_cleartext_login!r}"
            )
        if (
            username is not None
            and security == "plain"
            and not allow_cleartext_login
            and not is_loopback(host)
        ):
            # smtplib logs in over any connection whose server offers AUTH; on "plain" the
            # password would cross the network readable by anyone on the way.
            raise ValidationError(
                f"SMTP login as {username!r} with security='plain' would send the password "
                f'to {host} unencrypted; pass security="starttls" or "tls" (a relay on '
                "this machine, localhost or 127.0.0.1, may take a plain login)"
            )
        if ssl_context is not None and security == "plain":
            raise ValidationError(
                "ssl_context has no effect with security='plain'; use 'starttls' or 'tls'"
            )
        if local_hostname is not None:
            check_line("SMTP local_hostname", local_hostname)
        if (
            isinstance(max_per_connection, bool)
            or not isinstance(max_per_connection, int)
            or max_per_connection < 1
        ):
            raise ValidationError(
                "max_per_connection must be a positive integer (messages per SMTP "
                f"connection in a batch), not {max_per_connection!r}"
            )
        self.max_per_connection = max_per_connection
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._allow_cleartext_login = allow_cleartext_login

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
            return _SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        return _SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)

    def _open(self, progress: list[str]) -> smtplib.SMTP:
        """A connection, secured and logged in as configured; *progress* names the step."""
        progress[0] = "connect"
        smtp = self._connect()
        try:
            if self.security == "starttls":
                progress[0] = "STARTTLS"
                smtp.starttls(context=self._context())
            if self.username is not None:
                progress[0] = "login"
                assert self._password is not None
                if self.security == "plain" and not self._allow_cleartext_login:
                    self._refuse_cleartext(smtp)
                smtp.login(self.username, self._password)
        except BaseException:
            smtp.close()
            raise
        progress[0] = "send"
        return smtp

    def _refuse_cleartext(self, smtp: smtplib.SMTP) -> None:
        """``DeliveryFailed`` unless *smtp* reached a loopback address.

        The name was judged when the mailer was built; the address is what counts: a
        ``localhost`` that a hosts file or resolver sends elsewhere, or a ``host`` or
        ``security`` set on the mailer since, must not get the password in clear.
        """
        peer = ""
        if smtp.sock is not None:
            with suppress(OSError, IndexError, TypeError):
                peer = str(smtp.sock.getpeername()[0])
        if peer and is_loopback(peer):
            return
        where = peer or "an unknown address"
        raise DeliveryFailed(
            f"{self._where} is not this machine (it answered from {where}), and a login as "
            f"{self.username!r} with security='plain' would send the password unencrypted; "
            'nothing was sent: use security="starttls" or "tls" (or '
            "allow_cleartext_login=True for a relay on a network you trust)"
        )

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        """Deliver *message*, or raise ``DeliveryFailed``.

        *envelope_to* is the one envelope recipient (``RCPT TO``): the service passes the
        stored address its last check found alone in the ``To`` header, so no header
        decides where the mail goes. Without it, smtplib takes the recipients from the
        ``To``, ``Cc`` and ``Bcc`` headers.

        A subclass may override it (to log, count, add a header or route elsewhere):
        every message the service sends, at once or queued, then goes through the
        override, and its ``super().send()`` inside a :meth:`batch` shares the batch's
        connection.
        """
        batch = _IN_BATCH.get()
        if batch is not None and batch._mailer is self:
            batch._send_checked(message, None, envelope_to)
            return
        self._send_checked(message, None, envelope_to)

    def _sends_wire(self) -> bool:
        """Whether the service may hand over checked bytes (``_send_checked``,
        ``_send_wire``) rather than call ``send()``: only while ``send()`` is this
        class's own, so a subclass's override sees every message."""
        return type(self).send is SmtpMailer.send

    def _send_checked(
        self,
        message: EmailMessage,
        wire: bytes | None,
        envelope_to: str | None,
        sender: str | None = None,
    ) -> None:
        """``send()``; *wire* is the message as the last check before sending wrote and
        read it (``CRLF``), sent as it is from *sender*, the envelope sender that check
        approved, when both are given."""
        to_addrs = _envelope(envelope_to)
        self._deliver(lambda smtp: _transmit(smtp, message, wire, to_addrs, sender))

    def _send_wire(self, wire: bytes, sender: str, envelope_to: str) -> None:
        """Send *wire*, a stored message in the form ``gate.stored_wire()`` checked, from
        *sender* to *envelope_to* (both ASCII), with no message object."""
        to_addrs = [check_line("envelope_to", envelope_to)]
        self._deliver(lambda smtp: smtp.sendmail(sender, to_addrs, wire))

    def _deliver(self, transmit: Callable[[smtplib.SMTP], dict[str, tuple[int, bytes]]]) -> None:
        """Run *transmit* over a connection of its own, or raise ``DeliveryFailed``."""
        progress = ["connect"]
        try:
            with self._open(progress) as smtp:
                refused = transmit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failure(exc, progress[0]) from exc
        self._check_refused(refused)

    @contextmanager
    def batch(self) -> Iterator[_Batch]:
        """A mailer whose ``send()`` calls share one connection (``teamaccess.BatchMailer``).

        The connection opens with the first message, secured and logged in as ``send()``
        does, and carries up to *max_per_connection* messages. When the server has
        dropped it (or closes it with ``421``) before taking a message, the message goes
        again over a new connection, once. A message the server refuses fails alone: after
        a refusal of its recipient or content the next message goes over the same
        connection, after any other failure over a new one. The connection is closed when
        the block ends.

        >>> mailer = SmtpMailer("mail.example.com", security="starttls",
        ...                     username="panel", password="s3cret")
        >>> with mailer.batch() as sender:  # doctest: +SKIP
        ...     for message in messages:
        ...         sender.send(message)
        """
        sender = _Batch(self)
        try:
            yield sender
        finally:
            sender.close()

    def _failure(self, exc: BaseException, step: str) -> DeliveryFailed:
        """*exc*, raised during *step*, as the ``DeliveryFailed`` a caller sees."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            refusals = list(exc.recipients.values())
            if refusals and all(_for_good(code, text, rcpt=True) for code, text in refusals):
                return DeliveryRefused(
                    f"{self._where} refused every recipient "
                    f"({self._refusals(exc.recipients)}) for good; check the address",
                    code=refusals[0][0],
                )
            return DeliveryFailed(
                f"{self._where} refused every recipient ({self._refusals(exc.recipients)}); "
                "check the address"
            )
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return DeliveryFailed(
                f"{self._where} refused the sender {exc.sender!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); the server may want STARTTLS "
                "or a login first (security=, username=), or not accept this sender"
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return DeliveryFailed(
                f"{self._where} rejected the login of {self.username!r} "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); check username and password"
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError) and "SMTPUTF8" in str(exc):
            return DeliveryFailed(
                f"{self._where} does not offer SMTPUTF8, which an address whose part "
                "before the @ is not ASCII needs; send through a server that offers it, or "
                "use an ASCII address for this recipient"
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryFailed(
                f"{self._where} does not support what {step} needs ({exc}); "
                "check the security setting (STARTTLS, login) for this server"
            )
        if isinstance(exc, smtplib.SMTPDataError) and _for_good(
            exc.smtp_code, exc.smtp_error, rcpt=False
        ):
            return DeliveryRefused(
                f"{self._where} refused the message for good "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); it will not take this message "
                "as it is",
                code=exc.smtp_code,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return DeliveryFailed(
                f"{self._where} answered {_reply(exc.smtp_code, exc.smtp_error)} during "
                f"{step}; the message will be retried"
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            # The usual cause: a relay whose certificate comes from the vendor's own CA.
            return DeliveryFailed(
                f"TLS with {self._where} failed during {step} ({exc.reason or exc}); its "
                "certificate is not trusted for this host name: for a certificate from your "
                "own CA, pass ssl_context=ssl.create_default_context(cafile=...), or set "
                "SSL_CERT_FILE to that CA's file for the teamaccess command"
            )
        if isinstance(exc, ssl.SSLError):
            return DeliveryFailed(
                f"TLS with {self._where} failed during {step} ({exc.reason or exc}); check "
                "the security setting and that the certificate is trusted for this host name"
            )
        return DeliveryFailed(
            f"cannot {step} with {self._where}: {type(exc).__name__}: {exc}; is the "
            "server running and reachable?"
        )

    def _check_refused(self, refused: dict[str, tuple[int, bytes]]) -> None:
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


def _envelope(envelope_to: str | None) -> list[str] | None:
    if envelope_to is None:
        return None
    check_line("envelope_to", envelope_to)
    return [envelope_to]


def _transmit(
    smtp: smtplib.SMTP,
    message: EmailMessage,
    wire: bytes | None,
    to_addrs: list[str] | None,
    sender: str | None,
) -> dict[str, tuple[int, bytes]]:
    """``smtp.send_message(message, to_addrs=to_addrs)``, sending *wire* from *sender*
    if both are given.

    *wire* is the message's wire form as the last check before sending read it (``CRLF``
    line ends; see ``gate.check_sent``), and *sender* the envelope sender that check
    approved, so what goes out, and from where, is what was checked: the sender is not
    read from the headers a second time (on an altered outbox row a second reading could
    name another address). For an address that is not ASCII the options are those
    ``send_message()`` gives (SMTPUTF8, 8BITMIME), and a server that does not offer
    SMTPUTF8 gets nothing.
    """
    if wire is None or to_addrs is None or sender is None:
        return smtp.send_message(message, to_addrs=to_addrs)
    if not (sender + "".join(to_addrs)).isascii():
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("smtputf8"):
            # send_message() raises the stdlib's own error for this.
            return smtp.send_message(message, to_addrs=to_addrs)
        return smtp.sendmail(sender, to_addrs, wire, ["SMTPUTF8", "BODY=8BITMIME"])
    return smtp.sendmail(sender, to_addrs, wire)


_ENVELOPE_KW: dict[type, bool] = {}


def _takes_envelope(cls: type[SmtpMailer]) -> bool:
    """Whether *cls*'s ``send()`` takes ``envelope_to=`` (an override may not)."""
    known = _ENVELOPE_KW.get(cls)
    if known is None:
        import inspect

        try:
            params = inspect.signature(cls.send).parameters.values()
        except (TypeError, ValueError):
            params = ()  # type: ignore[assignment]
        known = _ENVELOPE_KW[cls] = any(
            p.name == "envelope_to" or p.kind is p.VAR_KEYWORD for p in params
        )
    return known


#: An enhanced status code (RFC 3463) where servers write it: after the reply code (RFC
#: 2034), or at the end in parentheses (qmail: "... (#5.1.1)").
_STATUS: Final = re.compile(r"^\s*5\.(\d{1,3})\.(\d{1,3})\b|\(#5\.(\d{1,3})\.(\d{1,3})\)\s*$")

#: The enhanced statuses that refuse the recipient's mailbox itself (RFC 3463, RFC 7505):
#: bad mailbox (X.1.1), bad system (X.1.2), bad address syntax (X.1.3), moved (X.1.6),
#: null MX (X.1.10), mailbox disabled (X.2.1).
_RECIPIENT_GONE: Final = frozenset({(1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)})

#: ... and those that refuse a message's content: too big for the system (X.3.4), any
#: media error (X.6.x).
_CONTENT_REFUSED: Final = frozenset({(3, 4)})


def _for_good(code: int, text: bytes | str, *, rcpt: bool) -> bool:
    """Whether a reply to ``RCPT TO`` (*rcpt*) or to ``DATA`` refuses this message's
    recipient or content for good, so that sending it again cannot help.

    Only a ``5xx`` whose enhanced status code names the recipient's mailbox (``RCPT
    TO``) or the content (``DATA``) does. A reply without one, or with any other, is
    retried like a ``4xx``: relaying denied, a refused login or sender (``5.7.x``,
    ``5.1.7``, ``5.1.8``), a full mailbox (``5.2.2``) and words alone ("550 relay not
    permitted", as Exim says it) are the panel's settings or a passing state as often
    as the recipient, and closing mail on them would close every message the panel
    sends until its relay is fixed.
    """
    if not 500 <= code < 600:
        return False
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    found = _STATUS.search(text.split("\n", 1)[0]) or _STATUS.search(text.rstrip())
    if found is None:
        return False
    subject, detail = (int(n) for n in (found[1] or found[3], found[2] or found[4]))
    if rcpt:
        return (subject, detail) in _RECIPIENT_GONE
    return subject == 6 or (subject, detail) in _CONTENT_REFUSED


def _dropped(exc: BaseException) -> bool:
    """Whether *exc* says the connection is gone (or going), not that a message is bad."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421  # "service not available, closing transmission channel"
    return isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError)


def _own_refusal(exc: BaseException) -> bool:
    """Whether *exc* refuses one message's recipient or content, after which smtplib has
    reset the transaction (``RSET``) and the connection is still good (not ``421``)."""
    return (
        isinstance(exc, smtplib.SMTPRecipientsRefused)
        and all(code != 421 for code, _ in exc.recipients.values())
    ) or (isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code != 421)


def _reset(smtp: smtplib.SMTP, exc: BaseException) -> bool:
    """Whether the mail transaction on *smtp* is reset after *exc*, one message's refusal.

    ``sendmail()`` resets it after refused recipients and after a refused content, but a
    refusal of the ``DATA`` command itself is raised by ``data()`` before that: the
    transaction stays open and a strict server (Postfix) refuses the next ``MAIL FROM``
    as nested. So it is reset here; if that fails, the connection is not kept."""
    if not isinstance(exc, smtplib.SMTPDataError):
        return True
    try:
        code, _ = smtp.rset()
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


class _Batch:
    """``SmtpMailer.batch()``'s sender: one connection for consecutive messages."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer
        self._smtp: smtplib.SMTP | None = None
        self._sent = 0  # messages over the current connection
        #: connections opened so far, for the curious (and the tests)
        self.connections = 0

    def __repr__(self) -> str:
        return f"<SmtpMailer batch of {self._mailer!r}, {self.connections} connections>"

    def send(self, message: EmailMessage, *, envelope_to: str | None = None) -> None:
        """Deliver *message* over the batch's connection, or raise ``DeliveryFailed``;
        *envelope_to* as for ``SmtpMailer.send()``.

        If the mailer is of a subclass that overrides ``send()``, the override is called
        (with *envelope_to* if it takes it), and its ``super().send()`` uses this
        connection.
        """
        mailer = self._mailer
        if mailer._sends_wire():
            self._send_checked(message, None, envelope_to)
            return
        outer = _IN_BATCH.set(self)
        try:
            if envelope_to is not None and _takes_envelope(type(mailer)):
                mailer.send(message, envelope_to=envelope_to)
            else:
                mailer.send(message)
        finally:
            _IN_BATCH.reset(outer)

    def _sends_wire(self) -> bool:
        """``SmtpMailer._sends_wire()`` of the batch's mailer."""
        return self._mailer._sends_wire()

    def _send_checked(
        self,
        message: EmailMessage,
        wire: bytes | None,
        envelope_to: str | None,
        sender: str | None = None,
    ) -> None:
        """``send()``, sending *wire* as ``SmtpMailer._send_checked()`` does."""
        to_addrs = _envelope(envelope_to)
        self._deliver(lambda smtp: _transmit(smtp, message, wire, to_addrs, sender))

    def _send_wire(self, wire: bytes, sender: str, envelope_to: str) -> None:
        """``SmtpMailer._send_wire()`` over the batch's connection."""
        to_addrs = [check_line("envelope_to", envelope_to)]
        self._deliver(lambda smtp: smtp.sendmail(sender, to_addrs, wire))

    def _deliver(self, transmit: Callable[[smtplib.SMTP], dict[str, tuple[int, bytes]]]) -> None:
        mailer = self._mailer
        if self._smtp is not None and self._sent >= mailer.max_per_connection:
            self.close()
        # A connection that served earlier messages may have been closed by the server
        # since (an idle timeout, a limit of its own): one more try on a fresh one.
        tries = 2 if self._smtp is not None else 1
        while True:
            tries -= 1
            progress = ["send"]
            try:
                if self._smtp is None:
                    self._smtp = mailer._open(progress)
                    self.connections += 1
                    self._sent = 0
                smtp = self._smtp
                assert isinstance(smtp, _Tracking)
                smtp.data_started = False
                refused = transmit(smtp)
            except (smtplib.SMTPException, OSError) as exc:
                handed_over = isinstance(self._smtp, _Tracking) and self._smtp.data_started
                if _own_refusal(exc) and _reset(smtp, exc):
                    # The transaction is reset: the connection serves the next one.
                    self._sent += 1
                    raise mailer._failure(exc, progress[0]) from exc
                self.close()  # after any other failure the next message starts afresh
                if tries > 0 and progress[0] == "send" and _dropped(exc) and not handed_over:
                    continue
                raise mailer._failure(exc, progress[0]) from exc
            self._sent += 1
            mailer._check_refused(refused)
            return

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the server went first; nothing is lost
        finally:
            smtp.close()

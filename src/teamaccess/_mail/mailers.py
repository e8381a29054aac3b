"""Mailers that need nothing beyond the standard library's ``email`` package."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._emails import check_line
from .._errors import StorageError, ValidationError

if TYPE_CHECKING:
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import EmailPolicy
    from pathlib import Path

__all__ = ["FileMailer", "MemoryMailer", "build_message"]


@functools.cache
def _policy(utf8: bool) -> EmailPolicy[EmailMessage]:
    """``policy.default`` (SMTPUTF8 if *utf8*), with header classes built once.

    The stdlib's ``HeaderRegistry`` creates a new class with ``type()`` for every header
    of every message; that was half the cost of building an invitation mail (issue 6's
    profile). The classes hold no state, so one per header name is the same thing.
    """
    from email import policy
    from email.headerregistry import HeaderRegistry

    class _Registry(HeaderRegistry):
        def __init__(self) -> None:
            super().__init__()
            self._classes: dict[str, type] = {}

        def __getitem__(self, name: str) -> type:
            key = name.lower()
            cls = self._classes.get(key)
            if cls is None:
                cls = self._classes[key] = super().__getitem__(name)
            return cls

    return policy.default.clone(header_factory=_Registry(), utf8=utf8)


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    language: str,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message; every header value checked for line breaks first.

    Address domains are written in their ASCII (IDNA) form, which every mail server
    accepts; only an address whose local part is not ASCII needs SMTPUTF8, and the
    message is then built for it.
    """
    fields = {
        "From": sender,
        "To": to,
        "Subject": subject,
        "Message-ID": message_id,
        "Content-Language": language,
        **(headers or {}),
    }
    # The stdlib email package costs ~20 ms to import; only sending mail needs it (issue 6).
    from email.message import EmailMessage
    from email.utils import format_datetime

    for name, value in fields.items():
        check_line(f"mail header {name}", value)
    from_addr, utf8_from = _header_address("From", sender)
    to_addr, utf8_to = _header_address("To", to)
    msg = EmailMessage(policy=_policy(utf8_from or utf8_to))
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Date"] = format_datetime(date) if date is not None else format_datetime(datetime.now(UTC))
    for name, value in fields.items():
        if name not in ("From", "To") and not name.lower().startswith("content-"):
            msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    # Content-* headers go on last: set_content() drops them and add_alternative() moves
    # them into the first part, which lost Content-Language before.
    for name, value in fields.items():
        if name.lower().startswith("content-"):
            msg[name] = value
    return msg


def _header_address(header: str, value: str) -> tuple[Address, bool]:
    """*value* (``addr`` or ``Name <addr>``) with an ASCII domain; True if it needs SMTPUTF8."""
    from email.headerregistry import Address
    from email.utils import parseaddr

    import idna

    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError(
            f"mail header {header} needs an address like 'Name <noreply@example.com>', "
            f"not {value!r}"
        )
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValidationError(
                f"mail header {header}: the domain of {addr!r} is not a valid IDN domain"
            ) from exc
    return Address(display_name=name, username=local, domain=domain), not local.isascii()


class MemoryMailer:
    """Keeps every message in ``outbox``, like Django's ``mail.outbox``."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)

    def __repr__(self) -> str:
        return f"<MemoryMailer outbox={len(self.outbox)}>"


class FileMailer:
    """Writes one ``.eml`` file per message into *directory*, for development and demos.

    Files are named ``<time>-<n>.eml`` so a directory listing is in sending order.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from pathlib import Path  # pathlib costs ~4 ms at import (issue 6)

        self.directory: Path = Path(directory)

    def __repr__(self) -> str:
        return f"FileMailer({str(self.directory)!r})"

    def send(self, message: EmailMessage) -> None:
        import time

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            n = 0
            while True:
                path = self.directory / f"{stamp}-{n:04d}.eml"
                try:
                    # "x" never overwrites a message another process just wrote.
                    with path.open("xb") as fh:
                        fh.write(message.as_bytes())
                    return
                except FileExistsError:
                    n += 1
        except OSError as exc:
            raise StorageError(f"cannot write mail to {self.directory}: {exc.strerror}") from exc

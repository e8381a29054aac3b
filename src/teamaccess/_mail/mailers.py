"""Mailers that need nothing beyond the standard library's ``email`` package.

Building a message, the email policies and the sender's name live in their own modules
(``builder``, ``policies``, ``addresses``, ``sender``); their names are imported here
too, where code and pickles made before the split find them.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from .._errors import StorageError

# Re-exported: this module was their home (imports, and pickled messages, which name
# _same_policy and _address_field by module).
from .addresses import _header_address as _header_address
from .addresses import expected_recipient
from .builder import _BOUNDARY as _BOUNDARY
from .builder import build_message
from .policies import _fetched as _fetched
from .policies import _same_policy as _same_policy
from .policies import parse_stored, parsing_policy, wire_policy
from .sender import _address_field as _address_field
from .sender import unencodable_word

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path

__all__ = [
    "FileMailer",
    "MemoryMailer",
    "build_message",
    "expected_recipient",
    "parse_stored",
    "parsing_policy",
    "unencodable_word",
    "wire_policy",
]


class MemoryMailer:
    """Keeps every message in ``outbox``, like Django's ``mail.outbox``."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        """Append *message* to ``outbox``."""
        self.outbox.append(message)

    def __repr__(self) -> str:
        # type(self): a subclass (FailingMailer, a vendor's own) reports its own name
        return f"<{type(self).__name__} outbox={len(self.outbox)}>"


class FileMailer:
    """Writes one ``.eml`` file per message into *directory*, for development and demos.

    Files are named ``<time>-<n>.eml`` so a directory listing is in sending order.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from pathlib import Path  # pathlib costs ~4 ms at import

        self.directory: Path = Path(directory)

    def __repr__(self) -> str:
        return f"FileMailer({str(self.directory)!r})"

    def send(self, message: EmailMessage) -> None:
        """Write *message* to a new file, atomically: a temporary file (mode 0600) that is
        synced and then linked under its final name, so a crash never leaves an empty or
        half-written ``.eml``, and no file is ever overwritten. The directory is created
        0700; an existing one keeps its mode.

        The service hands over instead the bytes its last check before sending wrote and
        read (as it does to ``SmtpMailer``), so the file holds what was checked; a
        subclass that overrides this method is called with every message."""
        self._write(message.as_bytes())

    def _sends_wire(self) -> bool:
        """Whether the service may hand over checked bytes (``_send_checked``,
        ``_send_wire``) rather than call ``send()``: only while ``send()`` is this
        class's own, so a subclass's override sees every message."""
        return type(self).send is FileMailer.send

    def _send_checked(
        self,
        message: EmailMessage,
        wire: bytes | None,
        envelope_to: str | None,
        sender: str | None = None,
    ) -> None:
        """``send()`` of *wire*, the message as the last check before sending wrote and
        read it (``CRLF``), when given (a file has no envelope: *sender* is unused)."""
        self._write(message.as_bytes() if wire is None else _mail_file(wire))

    def _send_wire(self, wire: bytes, sender: str, envelope_to: str) -> None:
        """Write *wire*, a stored message as ``gate.stored_wire()`` checked it."""
        self._write(_mail_file(wire))

    def _write(self, data: bytes) -> None:
        import secrets
        import time

        tmp = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            tmp = self.directory / f".{stamp}-{secrets.token_hex(6)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            n = 0
            while True:
                path = self.directory / f"{stamp}-{n:04d}.eml"
                try:
                    # A link, not a rename: it never replaces a message another process
                    # just wrote under the same name.
                    os.link(tmp, path)
                    return
                except FileExistsError:
                    n += 1
                except PermissionError:
                    # A file system without hard links: rename, unless the name is taken.
                    if path.exists():
                        n += 1
                        continue
                    os.rename(tmp, path)
                    tmp = None
                    return
        except OSError as exc:
            raise StorageError(f"cannot write mail to {self.directory}: {exc.strerror}") from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _mail_file(wire: bytes) -> bytes:
    """*wire* (``CRLF`` line ends, as SMTP carries it) with the ``LF`` line ends of a mail
    file, as a Unix mail server stores what it receives: byte for byte the same text, and
    back to *wire* by the reverse replacement (a wire form has no bare ``LF``)."""
    return wire.replace(b"\r\n", b"\n")

"""Mailers that need nothing beyond the standard library's ``email`` package."""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path

from .._emails import check_line
from .._errors import StorageError

__all__ = ["FileMailer", "MemoryMailer", "build_message"]


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
) -> EmailMessage:
    """A multipart/alternative message; every header value checked for line breaks first."""
    fields = {
        "From": sender,
        "To": to,
        "Subject": subject,
        "Message-ID": message_id,
        "Content-Language": language,
        **(headers or {}),
    }
    for name, value in fields.items():
        check_line(f"mail header {name}", value)
    msg = EmailMessage()
    for name, value in fields.items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


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
        self.directory = Path(directory)

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

"""The command's settings: database, mail, secret key file."""

from __future__ import annotations

import os
import secrets
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._errors import (
    ValidationError,
)

if TYPE_CHECKING:
    from .._ports import Mailer, Store
    from .._service import TeamAccess

__all__ = [
    "ConfigError",
    "Settings",
    "is_postgres",
    "load_or_create_secret",
    "safe_db_label",
    "secret_key_path",
]

#: --db values that name a PostgreSQL database instead of a SQLite file
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


def safe_db_label(db: str) -> str:
    """*db* for output: a PostgreSQL URL without its password."""
    if not is_postgres(db):
        return db
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(db)
    if parts.password is None:
        return db
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# -- configuration ----------------------------------------------------------------------


class ConfigError(ValidationError):
    """The command's settings are unusable (secret key file, database path).

    A ``ValidationError``: the public error tree stays as DESIGN.md draws it.
    """


def secret_key_path(db: str) -> Path:
    return Path(f"{db}.secret")


def load_or_create_secret(path: Path) -> str:
    """The key in *path*, creating it (mode 0o600) on first use.

    ``O_CREAT | O_EXCL`` makes creation atomic and never widens the mode of an existing
    file; two commands starting at once both end up with the one key that was written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the secret key file {path}: {exc.strerror}; make the directory "
            "writable or set TEAMACCESS_SECRET_KEY"
        ) from exc
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def _read_secret(path: Path) -> str:
    try:
        return _read_secret_file(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the secret key file {path}: {exc.strerror}; fix its permissions "
            "or set TEAMACCESS_SECRET_KEY"
        ) from exc


def _read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"the secret key file {path} is readable by others (mode {mode:o}); "
            f"run: chmod 600 {path}"
        )
    for _ in range(50):
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
        # Another process created the file a moment ago and is writing the key.
        import time

        time.sleep(0.01)
    raise ConfigError(
        f"the secret key file {path} is empty; delete it to generate a new key "
        "(open invitations then stop working) or set TEAMACCESS_SECRET_KEY"
    )


@attrs.define
class Settings:
    """Everything the group options and environment decide."""

    db: str
    outbox: str
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: Literal["plain", "starttls", "tls"]
    smtp_user: str | None
    accept_url: str | None
    language: str
    sender: str | None
    #: the PostgreSQL schema when db is a postgresql:// URL
    schema: str = "teamaccess"
    _team: TeamAccess | None = None
    #: recipients of the mail sent so far, to say where it went (never the bodies: tokens)
    sent: list[str] = attrs.field(factory=list)

    def secret_key(self) -> str:
        key = os.environ.get("TEAMACCESS_SECRET_KEY", "").strip()
        if key:
            return key
        if is_postgres(self.db):
            # No file beside a server database, and every server must sign with one key.
            raise ConfigError(
                "with a PostgreSQL --db, set TEAMACCESS_SECRET_KEY (the same on every server "
                "that shares the database), e.g. from: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        if self.db == ":memory:":
            return secrets.token_urlsafe(32)
        return load_or_create_secret(secret_key_path(self.db))

    def store(self) -> Store:
        if is_postgres(self.db):
            from .. import PostgresStore

            return PostgresStore(self.db, schema=self.schema)
        from .. import SQLiteStore

        store: Store = SQLiteStore(self.db)
        return store

    def mailer(self) -> Mailer:
        if self.smtp_host:
            from .. import SmtpMailer

            return SmtpMailer(
                host=self.smtp_host,
                port=self.smtp_port,
                security=self.smtp_security,
                username=self.smtp_user,
                password=os.environ.get("TEAMACCESS_SMTP_PASSWORD") or None,
            )
        from .._mail.mailers import FileMailer

        return FileMailer(self.outbox)

    @property
    def mail_target(self) -> str:
        if self.smtp_host:
            return f"SMTP server {self.smtp_host}"
        return f"{self.outbox}{os.sep}"

    def team(self) -> TeamAccess:
        if self._team is None:
            from .._service import TeamAccess

            sqlite_file = self.db != ":memory:" and not is_postgres(self.db)
            if sqlite_file and not Path(self.db).parent.is_dir():
                raise ConfigError(
                    f"the directory {Path(self.db).parent} of the database does not exist; "
                    "create it or pass another --db"
                )
            if self.smtp_host:
                # Said in the command's words before TeamAccess says it in the library's.
                for value, option, env in (
                    (self.accept_url, "--accept-url", "TEAMACCESS_ACCEPT_URL"),
                    (self.sender, "--sender", "TEAMACCESS_SENDER"),
                ):
                    if not value:
                        raise ConfigError(
                            f"mail goes to a real SMTP server, so set {option} (or {env}); "
                            "the example default must not reach real people"
                        )
            options: dict[str, Any] = {"language": self.language}
            if self.accept_url:
                options["accept_url"] = self.accept_url
            if self.sender:
                options["sender"] = self.sender
            # Kept apart from the database like the secret key; docs/privacy.md.
            pseudonym_key = os.environ.get("TEAMACCESS_PSEUDONYM_KEY", "").strip()
            if pseudonym_key:
                options["pseudonym_key"] = pseudonym_key
            secret = self.secret_key()
            mailer = _Recording(self.mailer(), self.sent)
            store = self.store()
            try:
                self._team = TeamAccess(store, mailer, secret_key=secret, **options)
            except BaseException:
                store.close()
                raise
        return self._team

    def close(self) -> None:
        if self._team is not None:
            self._team.close()
            self._team = None


class _Recording:
    """Passes messages on and remembers them, so the command can say where mail went."""

    def __init__(self, mailer: Mailer, sent: list[str]) -> None:
        self._mailer = mailer
        self._sent = sent

    def send(self, message: EmailMessage) -> None:
        self._mailer.send(message)
        self._sent.append(str(message["To"]))

"""The command's settings: database, mail, secret key file."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import stat
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from .._errors import (
    StorageError,
    ValidationError,
)

if TYPE_CHECKING:
    from .._domain import OutboxMessage
    from .._permissions import Catalog
    from .._ports import Mailer, Store
    from .._service import TeamAccess

__all__ = [
    "ConfigError",
    "MailSetting",
    "MissingSecretKey",
    "Settings",
    "exists",
    "is_postgres",
    "load_or_create_secret",
    "parse_mail",
    "refuse_postgres_lookalike",
    "refuse_sqlite_uri",
    "remove_if_new_and_unused",
    "safe_db_label",
    "secret_key_path",
]

#: --db values that name a PostgreSQL database instead of a SQLite file
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


#: connection parameters libpq takes in a URL's query that hold a secret
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def safe_db_label(db: str) -> str:
    """*db* for output: a PostgreSQL URL without its passwords, in the user part or in the
    query (``?password=...``, ``sslpassword=``), wherever libpq or a reader may take one
    to be: every such span is hidden, so a label may hide more than a password, never
    less."""
    if not is_postgres(db):
        return db
    from urllib.parse import unquote

    scheme, _, rest = db.partition("://")
    spans: list[tuple[int, int]] = []
    # libpq: the credentials run to the first "@" before any "/" (a "?" or "#" in the
    # user or password included, where Python's URL parser would end the host part). A
    # password holding an unencoded "@" ("u:p@ss@db") or "/" ("u:ab/c@db", base64 makes
    # them): libpq ends it at the first "@" or "/", whoever wrote it meant the last "@".
    # No "/" can tell where the path starts, so from the first ":" up to the last "@" of
    # all, which holds libpq's password too.
    last = rest.rfind("@")
    if last >= 0 and (colon := rest.find(":", 0, last)) >= 0:
        spans.append((colon + 1, last))
    # A parameter's value runs to the next "&" (libpq's split; "#" is no fragment to it),
    # its name percent-decoded ("pass%77ord=" is a password). Looked for after every "?"
    # and "&", not only where libpq's query starts: "db?password=p@ss" is to libpq the
    # user "db?password=p", and still the password its writer meant.
    for found in re.finditer(r"(?=[?&]([^=&?]*)=([^&]*))", rest):
        if unquote(found[1]).lower() in _SECRET_PARAMETERS:
            spans.append((found.start(2), found.end(2)))
    shown, at = [], 0
    for start, stop in sorted(spans):
        if stop <= at:
            continue
        if start >= at:
            shown.append(rest[at:start])
            shown.append("***")
        at = stop
    shown.append(rest[at:])
    return f"{scheme}://{''.join(shown)}"


# -- configuration ----------------------------------------------------------------------


class ConfigError(ValidationError):
    """The command's settings are unusable (secret key file, database path).

    A ``ValidationError``: the public error tree stays as DESIGN.md draws it.
    """


class MissingSecretKey(ConfigError):
    """The command needs the panel's secret key and has none (a command that can do
    without it, as ``erase`` with a pseudonym key, adds how)."""


# -- the mail setting -------------------------------------------------------------------

_MAIL_FORMS = (
    "smtp://[USER@]HOST[:PORT][?security=starttls|tls|plain], file:DIR or python:MODULE:FACTORY"
)
#: ``python:package.module:factory`` (dotted names, as an entry point spells them)
_DOTTED = r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
_FACTORY_FORM = re.compile(f"python:{_DOTTED}:{_DOTTED}")


@attrs.frozen
class MailSetting:
    """Where the command hands over mail: an SMTP server, a folder of ``.eml`` files, or
    the vendor's own mailer, made by a factory named ``module:attribute``."""

    outbox: str | None = None
    mailer_factory: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Literal["plain", "starttls", "tls"] = "starttls"
    smtp_user: str | None = None


def parse_mail(url: str) -> MailSetting:
    """``--mail``: ``smtp://user@host:587?security=starttls``, ``file:DIR`` or
    ``python:MODULE:FACTORY``."""
    from urllib.parse import parse_qs, unquote, urlsplit

    if url.startswith("python:"):
        match = _FACTORY_FORM.fullmatch(url)
        if match is None:
            raise ConfigError(
                "--mail python: needs a module and a factory in it, e.g. "
                "python:mypanel.mail:make_mailer (dotted Python names, no spaces)"
            )
        return MailSetting(mailer_factory=f"{match[1]}:{match[2]}")

    if url.startswith("file:"):
        folder = url[len("file:") :]
        if folder.startswith("//"):  # file://outbox reads as file:outbox
            folder = folder[2:]
        if not folder:
            raise ConfigError(f"--mail file: needs a folder, e.g. file:outbox; use {_MAIL_FORMS}")
        return MailSetting(outbox=folder)
    scheme = url.partition(":")[0] if ":" in url else ""
    if scheme.lower() != "smtp":
        # Never echo the value: it may hold a password someone put there by mistake.
        raise ConfigError(f"--mail must be {_MAIL_FORMS}, not a {scheme or 'plain'!r} value")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Not the parser's text: it quotes the "port", which is the start of the password
        # when one holds '/', '?' or '#' (the host part ends there).
        raise ConfigError(
            "--mail has a bad port (a number from 1 to 65535 after the host), or a user "
            "part holding '/', '?' or '#'; the password goes only in "
            f"TEAMACCESS_SMTP_PASSWORD; use {_MAIL_FORMS}"
        ) from None
    if port == 0:
        # The parser takes 0, which SmtpMailer refuses: said here, before any command runs.
        raise ConfigError(f"--mail needs a port from 1 to 65535, not 0; use {_MAIL_FORMS}")
    if parts.password is not None:
        raise ConfigError(
            "--mail must not hold the SMTP password (it would show in the process list); "
            "set TEAMACCESS_SMTP_PASSWORD instead"
        )
    if not parts.hostname:
        raise ConfigError(f"--mail names no SMTP host; use {_MAIL_FORMS}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"--mail takes no path; use {_MAIL_FORMS}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"security"})
    if unknown:
        raise ConfigError(f"--mail knows only ?security=, not {', '.join(unknown)}")
    if len(query.get("security", ())) > 1:
        # One would silently win over the other (the last, as a JSON object's keys).
        raise ConfigError(
            f"--mail names ?security= {len(query['security'])} times; give it once, e.g. "
            "?security=tls"
        )
    security = query.get("security", ["starttls"])[-1]
    if security not in ("starttls", "tls", "plain"):
        raise ConfigError(f"--mail security must be starttls, tls or plain, not {security!r}")
    user = unquote(parts.username) if parts.username else None
    if user is not None and security == "plain":
        from .._mail.smtp import is_loopback

        if not is_loopback(parts.hostname):
            # SmtpMailer refuses it too; said here in the command's words.
            raise ConfigError(
                f"--mail logs in as {user!r} with security=plain, which sends the password "
                f"to {parts.hostname} unencrypted; use ?security=starttls (the default) or "
                "?security=tls, or no user for a relay that needs no login (plain with a "
                "login only to localhost or 127.0.0.1)"
            )
    return MailSetting(
        smtp_host=parts.hostname,
        smtp_port=port,
        smtp_security=security,  # type: ignore[arg-type]
        smtp_user=user,
    )


def refuse_sqlite_uri(db: str) -> ConfigError:
    """``--db file:...``: the command works on the file's path (it opens a file this user
    may not write read-only by itself, keeps the secret key beside it, and removes a
    file a refused command created), so it asks for that path instead of a URI it would
    read half as one (the key file was named after the whole URI)."""
    import shlex
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(db)
    except ValueError:  # a host the parser cannot read ("file://[/team.db")
        path = "teamaccess.db"
    else:
        path = unquote(parts.path)
        if path == ":memory:" or dict(parse_qsl(parts.query)).get("mode") == "memory":
            path = ":memory:"
        if parts.netloc not in ("", "localhost") or not path:
            path = "teamaccess.db"
    return ConfigError(
        f"--db (TEAMACCESS_DB) takes the SQLite file's path, not a file: URI; give "
        f"--db {shlex.quote(path)}. The command opens a file this user may not write "
        "read-only by itself, and keeps the secret key beside the file"
    )


#: libpq's connection keywords: "host=db password=..." is its keyword/value form
_LIBPQ_KEYWORDS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    }
)


_POSTGRES_LOOKALIKE = re.compile(
    r"\s*(?:[a-z][a-z0-9.+-]*:)?postgres(?:ql)?(?:\+[a-z0-9_]*)?(?::|//)", re.IGNORECASE
)


def refuse_postgres_lookalike(db: str) -> ConfigError | None:
    """A ``--db`` meant for PostgreSQL that the command would take for a SQLite file's
    path: libpq's keyword/value form (``host=db dbname=panel password=...``), or a URL
    whose scheme is not written exactly ``postgresql://`` (upper case, a space before
    it, one slash). Taken as a path, such a value created a SQLite file named after it,
    password and all, and printed it (``migrate``) or quoted it in the error. The
    value is never shown: it may hold the password."""
    keyword = re.match(r"\s*([A-Za-z_]+)\s*=", db)  # libpq allows spaces around "="
    if keyword is not None and keyword[1].lower() in _LIBPQ_KEYWORDS:
        return ConfigError(
            "--db (TEAMACCESS_DB) takes a PostgreSQL database as a URL, not libpq's "
            "'host=... dbname=...' form: write postgresql://USER@HOST:PORT/DBNAME and "
            "give the password in PGPASSWORD or ~/.pgpass (the value is not shown: it may "
            "hold a password; nothing was created)"
        )
    # Also as other tools write it: SQLAlchemy names a driver ("postgresql+psycopg://"),
    # JDBC puts "jdbc:" first; and with its colon left out ("postgresql//").
    if _POSTGRES_LOOKALIKE.match(db) and not is_postgres(db):
        return ConfigError(
            "--db (TEAMACCESS_DB) looks like a PostgreSQL URL but does not start with "
            "postgresql:// or postgres:// exactly (lower case, nothing before it such as "
            "a space or jdbc:, no driver such as +psycopg, a colon and two slashes), so "
            "it would be taken for a SQLite file's path; write "
            "postgresql://USER@HOST:PORT/DBNAME (the value is not shown: it may hold a "
            "password; nothing was created)"
        )
    return None


def secret_key_path(db: str) -> Path:
    return Path(f"{db}.secret")


def _holds_data(db: Path) -> bool:
    """Whether *db* is a file with something in it (an empty one counts as new)."""
    try:
        return db.stat().st_size > 0
    except OSError:
        return False


def load_or_create_secret(path: Path, created: list[Path] | None = None) -> str:
    """The key in *path*, creating it (mode 0o600) on first use, then added to *created*.

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
    if created is not None:
        created.append(path)
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def _is_sqlite_file(db: str) -> bool:
    return db not in ("", ":memory:") and not db.startswith("file:") and not is_postgres(db)


def _create_new(path: Path) -> bool:
    """Create *path* empty and private (as SQLiteStore would); False if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False  # it exists, or cannot be created: opening the store says which
    os.close(fd)
    return True


def remove_if_new_and_unused(path: Path) -> bool:
    """Remove the database file *path* (and its -wal, -shm) if it holds no row and no
    other connection has it open; True if it was removed.

    Only for a file this process created: a refused command leaves nothing behind. Another
    process may have opened the new file meanwhile; then it stays. Leaving WAL mode
    fails while any other connection uses the file, and the exclusive lock taken with it
    is held until the file is gone, so nobody starts using it in between.
    """
    import sqlite3

    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        if not _has_no_rows(conn):
            return False
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        if conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] != "delete":
            return False
        conn.execute("BEGIN EXCLUSIVE")
        if not _has_no_rows(conn):  # written and closed by another process meanwhile
            conn.execute("ROLLBACK")
            conn.execute("PRAGMA journal_mode = WAL")
            return False
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        return True
    except (sqlite3.Error, OSError):
        return False  # busy (in use) or unreadable: keeping a file is always safe
    finally:
        conn.close()


def exists(path: Path) -> bool:
    """Whether *path* exists; a folder on the way this process may not enter is a
    ``ConfigError`` (``Path.exists()`` raises ``PermissionError`` there)."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(
            f"cannot look at {path}: {exc.strerror}; run the command as a user who may "
            "read the database's folder, or pass another --db"
        ) from None
    return True


def _has_no_rows(conn: Any) -> bool:
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return not any(
        conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()  # noqa: S608 (its own names)
        for name in tables
    )


def _read_secret(path: Path) -> str:
    try:
        return _read_secret_file(path)
    except PermissionError as exc:
        raise ConfigError(
            f"cannot read the secret key file {path}: {exc.strerror} for this user "
            f"({_file_mode(path)}); run the command as the user who owns it, with the "
            f"file's mode 600 (as that user: chmod 600 {path}), or set "
            "TEAMACCESS_SECRET_KEY to the key it holds"
        ) from exc
    except UnicodeDecodeError as exc:
        # A key this command wrote is ASCII; other bytes are a wrong or damaged file.
        raise ConfigError(
            f"the secret key file {path} holds a byte that is not ASCII at offset "
            f"{exc.start}; it is not a key this command wrote: put the right key file "
            "back, or delete it to generate a new key (open invitations then stop "
            "working), or set TEAMACCESS_SECRET_KEY"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the secret key file {path}: {exc.strerror}; fix its permissions "
            "or set TEAMACCESS_SECRET_KEY"
        ) from exc


def _file_mode(path: Path) -> str:
    """*path*'s mode and owner, as an error message shows them."""
    try:
        info = path.stat()
    except OSError:
        return "mode unknown"
    return f"mode {stat.S_IMODE(info.st_mode):03o}, owner {_owner_name(info.st_uid)}"


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _read_secret_file(path: Path) -> str:
    """The key in *path*, a regular file of the running user's that only it can read.

    Opened without following a symbolic link, and checked on the open file, so what is
    checked is what is read: a key someone else planted or can read (in a shared folder,
    or for root anywhere) would sign links that person can forge.
    """
    for _ in range(50):
        try:
            # O_NONBLOCK: a planted FIFO must not hang the command before it is refused.
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            if _NOFOLLOW and os.path.islink(path):  # ELOOP, or EMLINK on some BSDs
                raise _symlink_refused(path) from None
            raise exc
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not _NOFOLLOW and os.path.islink(path):  # no O_NOFOLLOW (Windows)
                raise _symlink_refused(path)
            _check_key_file(path, info)
            key = fh.read().decode("ascii").strip()
        if key:
            return key
        # Another process created the file a moment ago and is writing the key.
        import time

        time.sleep(0.01)
    raise ConfigError(
        f"the secret key file {path} is empty; delete it to generate a new key "
        "(open invitations then stop working) or set TEAMACCESS_SECRET_KEY"
    )


_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


def _symlink_refused(path: Path) -> ConfigError:
    return ConfigError(
        f"the secret key file {path} is a symbolic link; the command uses only a file of "
        f"its own there: replace the link with the key file itself (mode 600, owned by "
        f"the user who runs the command), or delete it to generate a new key (open "
        "invitations then stop working), or set TEAMACCESS_SECRET_KEY"
    )


def _check_key_file(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"the secret key file {path} is not a regular file; put the key file there, "
            "or set TEAMACCESS_SECRET_KEY"
        )
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and info.st_uid != geteuid():
        # Root too: a key file another user made in a shared folder is that user's key.
        owner, user = _owner_name(info.st_uid), _owner_name(geteuid())
        if geteuid() == 0:
            # Not "take it over": chown root would take the key from the user whose
            # database it is, and that user's own commands would then be refused it.
            todo = f"run the command as {owner} (sudo -u {shlex.quote(owner)} teamaccess ...)"
        else:
            todo = (
                f"run the command as {owner}, or if the key is yours to use, take the file "
                f"over (as root: chown {shlex.quote(user)} {shlex.quote(str(path))})"
            )
        raise ConfigError(
            f"the secret key file {path} belongs to {owner}, not to {user} who runs the "
            f"command; {todo}, or set TEAMACCESS_SECRET_KEY"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the secret key file {path} is readable by others (mode {mode:o}); "
            f"run: chmod 600 {path}"
        )


def secret_key_fallbacks() -> list[str]:
    """The older keys of ``TEAMACCESS_SECRET_KEY_FALLBACKS`` (comma-separated, oldest
    first): they verify links during a rotation, and never sign."""
    text = os.environ.get("TEAMACCESS_SECRET_KEY_FALLBACKS", "")
    if not text.strip():
        return []
    if not os.environ.get("TEAMACCESS_SECRET_KEY", "").strip():
        raise ConfigError(
            "TEAMACCESS_SECRET_KEY_FALLBACKS is set without TEAMACCESS_SECRET_KEY: set "
            "TEAMACCESS_SECRET_KEY to the newest key (it signs), and keep only the older "
            "keys, comma-separated, in TEAMACCESS_SECRET_KEY_FALLBACKS"
        )
    keys = [key.strip() for key in text.split(",")]
    if not all(keys):
        raise ConfigError(
            "TEAMACCESS_SECRET_KEY_FALLBACKS has an empty key: give the older keys "
            "separated by single commas, e.g. old-key-1,old-key-2"
        )
    for key in keys:
        try:
            key.encode()
        except UnicodeEncodeError:
            # Said here: the library's words name secret_key, which the command calls
            # TEAMACCESS_SECRET_KEY, and that one is fine.
            from .._tokens import unencodable_key

            raise ConfigError(unencodable_key("TEAMACCESS_SECRET_KEY_FALLBACKS")) from None
    return keys


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
    #: "now" (send in the command) or "queue" (a worker, `deliver --watch`, sends)
    delivery: Literal["now", "queue"] = "now"
    #: ``module:attribute`` of a callable that returns the vendor's own Mailer
    mailer_factory: str | None = None
    #: ``--catalog``: ``python:module:name`` of the panel's Catalog (None: the default)
    catalog_spec: str | None = None
    #: ``--templates``: ``python:module:name`` of the panel's mail templates (None: the
    #: shipped ones)
    templates_spec: str | None = None
    _team: TeamAccess | None = None
    #: recipients of the mail sent so far, to say where it went (never the bodies: tokens)
    sent: list[str] = attrs.field(factory=list)
    #: files this command created (database, key file): a refused command removes them
    created: list[Path] = attrs.field(factory=list)

    def secret_key(self, *, read_only: bool = False, signs: bool = True) -> str:
        """The key to sign with: TEAMACCESS_SECRET_KEY, else the key file beside the
        database. A command that neither signs nor checks a link nor derives pseudonyms
        (not *signs*) gets a throwaway key where the key file is missing, as a
        *read_only* one does."""
        key = os.environ.get("TEAMACCESS_SECRET_KEY", "").strip()
        if key:
            return key
        if is_postgres(self.db):
            if not signs:
                # Nothing signed or checked: a throwaway key reads and deletes the same,
                # and a cron job or a support login need not hold the panel's key.
                return secrets.token_urlsafe(32)
            # No file beside a server database, and every server must sign with one key.
            # The panel's key, not a new one: the database is usually the panel's, and a
            # key made up here signs links the panel refuses as altered.
            raise MissingSecretKey(
                "with a PostgreSQL --db, set TEAMACCESS_SECRET_KEY to the key your panel "
                "signs with (the newest of its TeamAccess(secret_key=...), the same on every "
                "server that shares the database): links signed or checked with another key "
                "do not open there. Only for a database no panel uses yet, make one: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.db == ":memory:":
            return secrets.token_urlsafe(32)
        path = secret_key_path(self.db)
        db = Path(self.db)
        # lexists: a dangling link there is refused as a link, never written through.
        if read_only and not os.path.lexists(path):
            if signs and _holds_data(db):
                # Checking a link with a made-up key would call the panel's genuine
                # links altered.
                raise self._no_key_file(path)
            # A command that only reads writes no key file; without one no token was
            # ever signed for this database, so a throwaway key reads the same.
            return secrets.token_urlsafe(32)
        if db not in self.created and not os.path.lexists(path) and _holds_data(db):
            if not signs:
                return secrets.token_urlsafe(32)
            # Made by another program (a panel) that keeps its key elsewhere: a key made
            # up here would sign links that program refuses as altered.
            raise self._no_key_file(path)
        return load_or_create_secret(path, self.created)

    def _no_key_file(self, path: Path) -> ConfigError:
        return MissingSecretKey(
            f"the database {self.db} has no key file {path} beside it: the program "
            "that made it keeps its secret key elsewhere. Set TEAMACCESS_SECRET_KEY to "
            "that key (links this command signed or checked with another would not open); "
            "if no other program uses the database, create a key file: (umask 077; python "
            f"-c 'import secrets; print(secrets.token_urlsafe(32))' > {shlex.quote(str(path))})"
        )

    def store(self, *, read_only: bool = False) -> Store:
        """The database; a SQLite file this user may not write is opened read-only for a
        *read_only* command, and refused before opening for any other."""
        if is_postgres(self.db):
            try:
                from .. import PostgresStore

                return PostgresStore(self.db, schema=self.schema)
            except ModuleNotFoundError as exc:
                if exc.name not in ("psycopg", "psycopg_pool"):
                    raise
                # The message names the extra; the command says it on one line.
                raise ConfigError(str(exc)) from None
        from .. import SQLiteStore
        from .readonly import read_only_uri, refuse_writing, unwritable

        if _is_sqlite_file(self.db) and exists(Path(self.db)) and Path(self.db).is_file():
            why = unwritable(Path(self.db))
            if why is not None:
                if not read_only:
                    raise refuse_writing(self.db, why)
                uri = read_only_uri(self.db)
                try:
                    return SQLiteStore(uri)
                except StorageError as exc:
                    # The operator gave a path; the URI is how this command opens it.
                    raise StorageError(str(exc).replace(uri, self.db)) from exc
        if _is_sqlite_file(self.db) and _create_new(Path(self.db)):
            self.created.append(Path(self.db))
            # The key file comes with the database, while the file is still empty: a
            # command that never signs (migrate) leaves one for the next, and another
            # command starting now never sees this database with data and no key file.
            self.secret_key()

        store: Store = SQLiteStore(self.db)
        return store

    @property
    def sends(self) -> bool:
        """Whether mail leaves the machine (an SMTP server or the vendor's own mailer),
        as opposed to being written as files."""
        return bool(self.smtp_host or self.mailer_factory)

    def mailer(self) -> Mailer:
        if self.mailer_factory:
            from .loaders import load_mailer

            return load_mailer(self.mailer_factory)
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
    def smtp_port_in_use(self) -> int:
        from .._mail.smtp import DEFAULT_PORTS

        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    @property
    def mail_target(self) -> str:
        """Where mail goes, for people: ``SMTP server host:port``, the vendor's mailer
        or the folder."""
        if self.mailer_factory:
            return f"the mailer from {self.mailer_factory}"
        if self.smtp_host:
            return f"SMTP server {self.smtp_host}:{self.smtp_port_in_use}"
        return f"{self.outbox}{os.sep}"

    @property
    def mail_url(self) -> str:
        """Where mail goes, as a ``--mail`` value (never a password)."""
        if self.mailer_factory:
            return f"python:{self.mailer_factory}"
        if self.smtp_host:
            from urllib.parse import quote

            user = f"{quote(self.smtp_user, safe='')}@" if self.smtp_user else ""
            return (
                f"smtp://{user}{self.smtp_host}:{self.smtp_port_in_use}"
                f"?security={self.smtp_security}"
            )
        return f"file:{self.outbox}"

    def handed_over(self, recipient: str) -> str:
        """One line saying where the mail to *recipient* went, never calling a file sent."""
        if self.delivery == "queue":
            return f"mail to {recipient} queued in the outbox; 'teamaccess deliver' sends it"
        if self.mailer_factory:
            return f"mail to {recipient} handed to {self.mail_target}"
        if self.smtp_host:
            return f"mail to {recipient} sent to {self.mail_target}"
        return f"mail to {recipient} written to {self.mail_target} (a file: not sent)"

    def team(
        self, *, read_only: bool = False, existing: bool = False, signs: bool = True
    ) -> TeamAccess:
        """The service; *read_only* commands never create the database or the key file,
        nor do *existing* ones (they write, but only to data already stored). A command
        that does not *sign* needs no key file (see ``secret_key()``)."""
        if self._team is None:
            from .._service import TeamAccess

            sqlite_file = self.db != ":memory:" and not is_postgres(self.db)
            if sqlite_file and read_only and not exists(Path(self.db)):
                raise ConfigError(
                    f"there is no database {self.db} yet, so nothing to show; create an "
                    "account first (teamaccess accounts create) or pass --db"
                )
            if sqlite_file and existing and not exists(Path(self.db)):
                # Creating one would report success on a mistyped path (a cron job).
                raise ConfigError(
                    f"there is no database {self.db}, so nothing to do; check --db (or "
                    "TEAMACCESS_DB), or create an account first (teamaccess accounts create)"
                )
            folder = Path(self.db).parent
            if sqlite_file and not (exists(folder) and folder.is_dir()):
                raise ConfigError(
                    f"the directory {folder} of the database does not exist; "
                    "create it or pass another --db"
                )
            if self.sends:
                # Said in the command's words before TeamAccess says it in the library's.
                for value, option, env in (
                    (self.accept_url, "--accept-url", "TEAMACCESS_ACCEPT_URL"),
                    (self.sender, "--sender", "TEAMACCESS_SENDER"),
                ):
                    if not value:
                        raise ConfigError(
                            f"mail goes to {self.mail_target}, so set {option} (or {env}); "
                            "the example default must not reach real people"
                        )
            options: dict[str, Any] = {"language": self.language, "delivery": self.delivery}
            if self.catalog_spec:
                options["catalog"] = self.catalog()
            if self.templates_spec:
                from .loaders import load_templates

                options["templates"] = load_templates(self.templates_spec)
            if self.accept_url:
                options["accept_url"] = self.accept_url
            if self.sender:
                options["sender"] = self.sender
            # Kept apart from the database like the secret key; docs/privacy.md.
            pseudonym_key = os.environ.get("TEAMACCESS_PSEUDONYM_KEY", "").strip()
            if pseudonym_key:
                options["pseudonym_key"] = pseudonym_key
            mailer = self.mailer()
            # The database first (a new one gets its key file with it).
            store = self.store(read_only=read_only)
            try:
                secret = self.secret_key(read_only=read_only, signs=signs)
                # Older keys still verify (newest last, as TeamAccess takes them).
                keys = [*secret_key_fallbacks(), secret]
                team = TeamAccess(store, mailer, secret_key=keys, **options)
            except BaseException:
                store.close()
                raise
            # The mailer goes to the service as it is (no wrapper), so the command sends as
            # deliver_pending() with that mailer does; the service names what it sent.
            team._on_sent = self._note_sent
            self._team = team
        return self._team

    def catalog(self) -> Catalog:
        """The permissions the command names: ``--catalog``'s, else the default."""
        from .._permissions import Catalog
        from .loaders import load_catalog

        return load_catalog(self.catalog_spec) if self.catalog_spec else Catalog.default()

    def _note_sent(self, row: OutboxMessage) -> None:
        self.sent.append(row.recipient)

    def close(self) -> None:
        if self._team is not None:
            self._team.close()
            self._team = None

    def discard(self) -> None:
        """After a refused command: close, and remove the files it created if they hold
        nothing. The key file goes only with its database; with the database kept,
        another process may have signed with it already."""
        self.close()
        db = Path(self.db)
        if db in self.created and remove_if_new_and_unused(db):
            key = secret_key_path(self.db)
            if key in self.created:
                with suppress(FileNotFoundError):
                    key.unlink()
        self.created.clear()


def refuse_old_cleartext_login(host: str | None, security: str, user: str | None) -> None:
    """The deprecated ``--smtp-*`` options' form of ``--mail``'s refusal of a plain login
    to another machine: ``SmtpMailer`` refuses it too, but in its Python words."""
    if host is None or user is None or security != "plain":
        return
    from .._mail.smtp import is_loopback

    if not is_loopback(host):
        raise ConfigError(
            f"--smtp-user {user!r} with --smtp-security plain sends the password to {host} "
            "unencrypted; use --smtp-security starttls or tls, or better --mail "
            f"smtp://USER@{host} (STARTTLS, the default), or no user for a relay that needs "
            "no login (plain with a login only to localhost or 127.0.0.1)"
        )

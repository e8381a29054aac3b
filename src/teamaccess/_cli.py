"""The ``teamaccess`` command: every use case for scripts and operators, plus ``demo``.

Imported only when the command runs (the console script, ``python -m teamaccess``), never
by ``import teamaccess``. It works on an embedded default: a SQLite file (``./teamaccess.db``),
mail written as ``.eml`` files to ``./outbox`` unless SMTP settings are given, and a secret
key generated once and kept next to the database.

Exit status: 0 on success, 2 for a usage error, and one code per error family (see
``EXIT_CODES``), so a script can tell "not found" from "not allowed".
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
import click

from ._domain import SYSTEM, Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from ._errors import (
    Conflict,
    DeliveryFailed,
    InvitationError,
    NotFound,
    PermissionDenied,
    RateLimited,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from ._permissions import PermissionSet

if TYPE_CHECKING:
    from ._ports import Mailer, Store
    from ._service import TeamAccess

__all__ = ["EXIT_CODES", "cli", "main"]

#: Exit status per error family; the first matching class wins.
EXIT_CODES: tuple[tuple[type[TeamAccessError], int], ...] = (
    (ValidationError, 3),
    (NotFound, 4),
    (PermissionDenied, 5),
    (Conflict, 6),
    (InvitationError, 7),
    (RateLimited, 8),
    (DeliveryFailed, 9),
    (StorageError, 10),
)
EXIT_USAGE = 2
EXIT_OTHER = 1

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(error: TeamAccessError) -> int:
    for family, code in EXIT_CODES:
        if isinstance(error, family):
            return code
    return EXIT_OTHER


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
    _team: TeamAccess | None = None
    #: recipients of the mail sent so far, to say where it went (never the bodies: tokens)
    sent: list[str] = attrs.field(factory=list)

    def secret_key(self) -> str:
        key = os.environ.get("TEAMACCESS_SECRET_KEY", "").strip()
        if key:
            return key
        if self.db == ":memory:":
            return secrets.token_urlsafe(32)
        return load_or_create_secret(secret_key_path(self.db))

    def store(self) -> Store:
        from . import SQLiteStore

        store: Store = SQLiteStore(self.db)
        return store

    def mailer(self) -> Mailer:
        if self.smtp_host:
            from . import SmtpMailer

            return SmtpMailer(
                host=self.smtp_host,
                port=self.smtp_port,
                security=self.smtp_security,
                username=self.smtp_user,
                password=os.environ.get("TEAMACCESS_SMTP_PASSWORD") or None,
            )
        from ._mail.mailers import FileMailer

        return FileMailer(self.outbox)

    @property
    def mail_target(self) -> str:
        if self.smtp_host:
            return f"SMTP server {self.smtp_host}"
        return f"{self.outbox}{os.sep}"

    def team(self) -> TeamAccess:
        if self._team is None:
            from ._service import TeamAccess

            if self.db != ":memory:" and not Path(self.db).parent.is_dir():
                raise ConfigError(
                    f"the directory {Path(self.db).parent} of the database does not exist; "
                    "create it or pass another --db"
                )
            options: dict[str, Any] = {"language": self.language}
            if self.accept_url:
                options["accept_url"] = self.accept_url
            if self.sender:
                options["sender"] = self.sender
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


# -- output -----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _perms(value: PermissionSet) -> str:
    if value.is_all:
        return "all"
    return ", ".join(sorted(value.names)) or "none"


def plain(value: object) -> Any:
    """*value* as JSON-ready data; never includes token hashes or stored mail bodies."""
    if isinstance(value, PermissionSet):
        return value.to_list()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if attrs.has(type(value)):
        return {
            f.name: plain(getattr(value, f.name))
            for f in attrs.fields(type(value))  # type: ignore[arg-type]
            if f.name not in ("token_hash", "message")
        }
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def emit_json(value: object) -> None:
    click.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> None:
    """Print *rows* in aligned columns, or *empty* when there are none."""
    cells = [[str(c) for c in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def show_accounts(accounts: Sequence[Account]) -> None:
    table(
        ["ID", "NAME", "OWNER", "OWNER EMAIL", "CREATED"],
        [(a.id, a.name, a.owner_id, a.owner_email, _when(a.created_at)) for a in accounts],
        "no accounts",
    )


def show_members(members: Sequence[Member]) -> None:
    table(
        ["USER", "EMAIL", "ROLE", "PERMISSIONS", "JOINED"],
        [(m.user_id, m.email, m.role, _perms(m.permissions), _when(m.joined_at)) for m in members],
        "no members",
    )


def show_invitations(invitations: Sequence[Invitation]) -> None:
    table(
        ["ID", "EMAIL", "STATUS", "PERMISSIONS", "INVITED BY", "EXPIRES"],
        [
            (i.id, i.email, i.status, _perms(i.permissions), i.invited_by, _when(i.expires_at))
            for i in invitations
        ],
        "no invitations",
    )


def show_contacts(contacts: Sequence[Contact]) -> None:
    table(
        ["ID", "NAME", "EMAIL", "CATEGORIES", "COMPANY", "PHONE", "ROLE"],
        [
            (c.id, c.name, c.email, ", ".join(sorted(c.categories)), c.company, c.phone, c.role)
            for c in contacts
        ],
        "no contacts",
    )


def show_events(events: Sequence[AuditEvent]) -> None:
    table(
        ["WHEN", "ACTOR", "ACTION", "TARGET"],
        [(_when(e.at), e.actor_id, e.action, e.target) for e in events],
        "no events",
    )


def show_outbox(rows: Sequence[OutboxMessage]) -> None:
    table(
        ["ID", "KIND", "TO", "STATUS", "ATTEMPTS", "LAST ERROR"],
        [(r.id, r.kind, r.recipient, r.status, r.attempts, r.last_error or "") for r in rows],
        "no messages",
    )


def show_record(pairs: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}}  {value}")


# -- the group and its error handling -----------------------------------------------------


# click 8.2+ raises this for a group called without a command; 8.1 prints help itself.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)


class TeamAccessGroup(click.Group):
    """A group that prints every expected failure as one ``error:`` line, no traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            sys.exit(result if isinstance(result, int) else 0)
        except TeamAccessError as exc:
            code = exit_code_for(exc)
            message = str(exc)
        except _NO_ARGS_IS_HELP as exc:
            # A bare `teamaccess` (or group) shows its help, as click itself does.
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            code = EXIT_USAGE
            message = _usage_message(exc)
        except click.ClickException as exc:
            code = exc.exit_code
            message = exc.format_message()
        except click.Abort:
            code = EXIT_OTHER
            message = "aborted"
        click.echo(f"error: {message}", err=True)
        sys.exit(code)


def _usage_message(exc: click.UsageError) -> str:
    text = exc.format_message().rstrip(".")
    text = text[:1].lower() + text[1:]
    path = exc.ctx.command_path if exc.ctx is not None else "teamaccess"
    return f"{text}; see '{path} --help'"


@click.group(
    "teamaccess", cls=TeamAccessGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--db",
    envvar="TEAMACCESS_DB",
    default="teamaccess.db",
    show_default=True,
    help="SQLite database file (env TEAMACCESS_DB).",
)
@click.option(
    "--outbox",
    envvar="TEAMACCESS_OUTBOX",
    default="outbox",
    show_default=True,
    help="Directory for .eml files when no SMTP host is set (env TEAMACCESS_OUTBOX).",
)
@click.option("--smtp-host", envvar="TEAMACCESS_SMTP_HOST", help="Send mail via this server.")
@click.option("--smtp-port", envvar="TEAMACCESS_SMTP_PORT", type=int, help="SMTP port.")
@click.option(
    "--smtp-security",
    envvar="TEAMACCESS_SMTP_SECURITY",
    type=click.Choice(["starttls", "tls", "plain"]),
    default="starttls",
    show_default=True,
    help="starttls (port 587), tls (port 465) or plain (port 25, local relays only).",
)
@click.option(
    "--smtp-user",
    envvar="TEAMACCESS_SMTP_USER",
    help="SMTP login; the password is read only from env TEAMACCESS_SMTP_PASSWORD.",
)
@click.option(
    "--accept-url",
    envvar="TEAMACCESS_ACCEPT_URL",
    help="Link in invitation mails; {token} marks where the token goes.",
)
@click.option(
    "--language",
    envvar="TEAMACCESS_LANGUAGE",
    type=click.Choice(["en", "de"]),
    default="en",
    show_default=True,
    help="Language of the mail.",
)
@click.option("--sender", envvar="TEAMACCESS_SENDER", help="From: address of the mail.")
@click.version_option(package_name="teamaccess", prog_name="teamaccess")
@click.pass_context
def cli(
    ctx: click.Context,
    db: str,
    outbox: str,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: Literal["plain", "starttls", "tls"],
    smtp_user: str | None,
    accept_url: str | None,
    language: str,
    sender: str | None,
) -> None:
    """Share a hosting account: invitations, members with permissions, contacts.

    Works on ./teamaccess.db and writes mail to ./outbox unless told otherwise.
    Start with:  teamaccess demo
    """
    settings = Settings(
        db=db,
        outbox=outbox,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        smtp_user=smtp_user,
        accept_url=accept_url,
        language=language,
        sender=sender,
    )
    ctx.obj = settings
    ctx.call_on_close(settings.close)


def main() -> None:
    """Entry point of the console script."""
    cli.main(prog_name="teamaccess")


def _team() -> TeamAccess:
    return click.get_current_context().find_object(Settings).team()  # type: ignore[union-attr]


def _settings() -> Settings:
    settings = click.get_current_context().find_object(Settings)
    assert settings is not None
    return settings


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
actor_option = click.option(
    "--as",
    "actor",
    envvar="TEAMACCESS_ACTOR",
    default=SYSTEM,
    show_default="teamaccess.SYSTEM, the operator",
    help="User id acting; permission checks apply to it (env TEAMACCESS_ACTOR).",
)


def permission_options(func: F) -> F:
    func = click.option(
        "-p",
        "--permission",
        "permission",
        multiple=True,
        metavar="NAME",
        help="Grant this permission; repeat or separate with commas (see 'catalog').",
    )(func)
    func = click.option("--all", "grant_all", is_flag=True, help="Grant all permissions.")(func)
    return click.option("--none", "grant_none", is_flag=True, help="Grant no permission.")(func)


def chosen_permissions(grant_all: bool, grant_none: bool, names: Sequence[str]) -> PermissionSet:
    listed = [n.strip() for item in names for n in item.split(",") if n.strip()]
    if sum([grant_all, grant_none, bool(listed)]) != 1:
        raise click.UsageError("choose exactly one of --all, --none or --permission NAME")
    if grant_all:
        return PermissionSet.all()
    if grant_none:
        return PermissionSet.none()
    return PermissionSet.of(*listed)


def read_token(token: str | None) -> str:
    """The token from the argument, or from stdin for '-' or none (keeps it out of `ps`)."""
    if token in (None, "-"):
        token = sys.stdin.read()
    token = (token or "").strip()
    if not token:
        raise click.UsageError("give the invitation token as an argument or on stdin")
    return token


def _mail_note() -> None:
    settings = _settings()
    for recipient in settings.sent:
        click.echo(f"mail to {recipient} -> {settings.mail_target}")
    settings.sent.clear()


# -- accounts -----------------------------------------------------------------------------


@cli.group()
def accounts() -> None:
    """Create, list and show accounts."""


@accounts.command("create")
@click.option("--name", required=True, help="Account name, e.g. 'Muster GmbH'.")
@click.option("--owner-id", required=True, help="The owner's user id in your application.")
@click.option("--owner-email", required=True, help="The owner's verified address.")
@json_option
def accounts_create(name: str, owner_id: str, owner_email: str, as_json: bool) -> None:
    """Create an account; its owner holds every permission."""
    account = _team().create_account(name=name, owner_id=owner_id, owner_email=owner_email)
    if as_json:
        emit_json(account)
    else:
        click.echo(f"created account {account.id} ({account.name}), owner {account.owner_id}")


@accounts.command("list")
@click.argument("user_id")
@json_option
def accounts_list(user_id: str, as_json: bool) -> None:
    """List the accounts USER_ID owns or is a member of."""
    found = _team().accounts_for(user_id)
    if as_json:
        emit_json(found)
    else:
        show_accounts(found)


@accounts.command("show")
@click.argument("account_id")
@json_option
def accounts_show(account_id: str, as_json: bool) -> None:
    """Show one account."""
    team = _team()
    account = team.get_account(account_id)
    members = team.members(account_id)
    if as_json:
        emit_json({**plain(account), "members": len(members)})
        return
    show_record(
        [
            ("id", account.id),
            ("name", account.name),
            ("owner", f"{account.owner_id} <{account.owner_email}>"),
            ("created", _when(account.created_at)),
            ("members", len(members)),
            ("pending invitations", len(team.pending_invitations(account_id))),
            ("contacts", len(team.contacts(account_id))),
        ]
    )


@accounts.command("rename")
@click.argument("account_id")
@click.option("--name", required=True, help="The new name.")
@actor_option
@json_option
def accounts_rename(account_id: str, name: str, actor: str, as_json: bool) -> None:
    """Rename an account (needs profile.edit)."""
    account = _team().rename_account(account_id, actor_id=actor, name=name)
    if as_json:
        emit_json(account)
    else:
        click.echo(f"renamed account {account.id} to {account.name}")


@cli.command()
@click.argument("account_id")
@click.argument("to_user_id")
@actor_option
@json_option
def transfer(account_id: str, to_user_id: str, actor: str, as_json: bool) -> None:
    """Make member TO_USER_ID the owner.

    Only the owner (--as OWNER) or the operator (the default --as) may do it.
    """
    account = _team().transfer_ownership(account_id, actor_id=actor, to_user_id=to_user_id)
    if as_json:
        emit_json(account)
    else:
        click.echo(f"{to_user_id} now owns account {account.id}; the old owner stays a member")


# -- invitations --------------------------------------------------------------------------


@cli.command()
@click.argument("account_id")
@click.argument("email")
@permission_options
@click.option("--language", type=click.Choice(["en", "de"]), help="Language of this mail.")
@actor_option
@json_option
def invite(
    account_id: str,
    email: str,
    grant_all: bool,
    grant_none: bool,
    permission: tuple[str, ...],
    language: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Invite EMAIL to ACCOUNT_ID; prints the accept link once."""
    wanted = chosen_permissions(grant_all, grant_none, permission)
    team = _team()
    inv = team.invite(
        account_id, actor_id=actor, email=email, permissions=wanted, language=language
    )
    assert inv.token is not None
    link = team.accept_link(inv.token)
    if as_json:
        emit_json({**plain(inv), "token": inv.token, "accept_url": link})
        return
    click.echo(f"invited {inv.email} to {account_id} with {_perms(inv.permissions)}")
    click.echo(f"invitation {inv.id}, valid until {_when(inv.expires_at)}")
    _mail_note()
    click.echo(f"accept link (shown once, not stored): {link}")


@cli.command()
@click.argument("account_id")
@click.option("--all", "every", is_flag=True, help="Every invitation, with its status.")
@json_option
def invitations(account_id: str, every: bool, as_json: bool) -> None:
    """List the pending invitations of ACCOUNT_ID."""
    team = _team()
    found = team.invitations(account_id) if every else team.pending_invitations(account_id)
    if as_json:
        emit_json(found)
    else:
        show_invitations(found)


@cli.command()
@click.argument("token", required=False)
@json_option
def inspect(token: str | None, as_json: bool) -> None:
    """Show what an invitation TOKEN names; changes nothing.

    TOKEN is read from stdin when left out or given as '-'.
    """
    inv = _team().inspect_invitation(read_token(token))
    if as_json:
        emit_json(inv)
        return
    show_record(
        [
            ("invitation", inv.id),
            ("account", inv.account_id),
            ("email", inv.email),
            ("permissions", _perms(inv.permissions)),
            ("status", inv.status),
            ("expires", _when(inv.expires_at)),
        ]
    )


@cli.command()
@click.argument("token", required=False)
@click.option("--user", "user_id", required=True, help="The accepting user's id.")
@click.option("--email", required=True, help="The address your application verified.")
@json_option
def accept(token: str | None, user_id: str, email: str, as_json: bool) -> None:
    """Accept an invitation (TOKEN as argument, or on stdin)."""
    member = _team().accept_invitation(read_token(token), user_id=user_id, email=email)
    if as_json:
        emit_json(member)
    else:
        click.echo(f"{member.user_id} joined {member.account_id} with {_perms(member.permissions)}")


@cli.command()
@click.argument("token", required=False)
@json_option
def decline(token: str | None, as_json: bool) -> None:
    """Decline an invitation (TOKEN as argument, or on stdin)."""
    inv = _team().decline_invitation(read_token(token))
    if as_json:
        emit_json(inv)
    else:
        click.echo(f"declined invitation {inv.id} for {inv.email}")


@cli.command()
@click.argument("invitation_id")
@actor_option
@json_option
def resend(invitation_id: str, actor: str, as_json: bool) -> None:
    """Send a new invitation mail; the old link stops working."""
    team = _team()
    inv = team.resend_invitation(invitation_id, actor_id=actor)
    assert inv.token is not None
    link = team.accept_link(inv.token)
    if as_json:
        emit_json({**plain(inv), "token": inv.token, "accept_url": link})
        return
    click.echo(f"resent invitation {inv.id} to {inv.email}, valid until {_when(inv.expires_at)}")
    _mail_note()
    click.echo(f"accept link (shown once, not stored): {link}")


@cli.command()
@click.argument("invitation_id")
@actor_option
@json_option
def revoke(invitation_id: str, actor: str, as_json: bool) -> None:
    """Withdraw a pending invitation."""
    inv = _team().revoke_invitation(invitation_id, actor_id=actor)
    if as_json:
        emit_json(inv)
    else:
        click.echo(f"revoked invitation {inv.id} for {inv.email}")


# -- members and permissions ------------------------------------------------------------------


@cli.command()
@click.argument("account_id")
@json_option
def members(account_id: str, as_json: bool) -> None:
    """List the members of ACCOUNT_ID, owner first."""
    found = _team().members(account_id)
    if as_json:
        emit_json(found)
    else:
        show_members(found)


@cli.command()
@click.argument("account_id")
@click.argument("user_id")
@actor_option
def remove(account_id: str, user_id: str, actor: str) -> None:
    """Remove a member (with --as USER_ID: the member leaves)."""
    _team().remove_member(account_id, user_id, actor_id=actor)
    click.echo(f"removed {user_id} from {account_id}")


@cli.group()
def permissions() -> None:
    """Show, check and set a member's permissions."""


@permissions.command("show")
@click.argument("account_id")
@click.argument("user_id")
@json_option
def permissions_show(account_id: str, user_id: str, as_json: bool) -> None:
    """Every permission of the catalog, yes or no for USER_ID."""
    team = _team()
    team.get_account(account_id)
    rows = [(p.name, "yes" if team.can(user_id, account_id, p.name) else "no", p.label)
            for p in team.catalog]  # fmt: skip
    if as_json:
        emit_json({name: allowed == "yes" for name, allowed, _ in rows})
    else:
        table(["PERMISSION", "ALLOWED", "LABEL"], rows, "the catalog is empty")


@permissions.command("check")
@click.argument("account_id")
@click.argument("user_id")
@click.argument("permission_names", nargs=-1, required=True)
@click.option("--require", is_flag=True, help="Fail (exit 5) unless every one is allowed.")
@json_option
def permissions_check(
    account_id: str, user_id: str, permission_names: tuple[str, ...], require: bool, as_json: bool
) -> None:
    """May USER_ID use each PERMISSION in ACCOUNT_ID?"""
    team = _team()
    results = {name: team.can(user_id, account_id, name) for name in permission_names}
    if as_json:
        emit_json(results)
    else:
        table(
            ["PERMISSION", "ALLOWED"],
            [(n, "yes" if ok else "no") for n, ok in results.items()],
            "-",
        )
    if require:
        for name in permission_names:
            team.require(user_id, account_id, name)


@permissions.command("set")
@click.argument("account_id")
@click.argument("user_id")
@permission_options
@actor_option
@json_option
def permissions_set(
    account_id: str,
    user_id: str,
    grant_all: bool,
    grant_none: bool,
    permission: tuple[str, ...],
    actor: str,
    as_json: bool,
) -> None:
    """Replace the permissions of member USER_ID."""
    wanted = chosen_permissions(grant_all, grant_none, permission)
    member = _team().set_permissions(account_id, user_id, wanted, actor_id=actor)
    if as_json:
        emit_json(member)
    else:
        click.echo(f"{member.user_id} now holds {_perms(member.permissions)}")


@cli.command()
@click.option("--language", type=click.Choice(["en", "de"]), default="en", show_default=True)
@json_option
def catalog(language: str, as_json: bool) -> None:
    """The permissions members can hold, and the mail categories."""
    team = _team()
    perms = list(team.catalog)
    cats = list(team.categories)
    if as_json:
        emit_json({"permissions": perms, "categories": cats})
        return
    table(
        ["PERMISSION", "GROUP", "LABEL", "DESCRIPTION"],
        [(p.name, p.group, p.label_for(language), p.description) for p in perms],
        "no permissions",
    )
    click.echo()
    table(["CATEGORY", "LABEL"], [(c.name, c.label_for(language)) for c in cats], "no categories")


# -- contacts and mail --------------------------------------------------------------------


@cli.group()
def contacts() -> None:
    """Manage contacts: people who get mail but never log in."""


category_option = click.option(
    "-c",
    "--category",
    "categories",
    multiple=True,
    metavar="NAME",
    help="Mail category; repeat or separate with commas (general, billing, product, support).",
)


def _categories(values: Sequence[str]) -> list[str]:
    return [n.strip() for item in values for n in item.split(",") if n.strip()]


@contacts.command("add")
@click.argument("account_id")
@click.option("--name", required=True)
@click.option("--email", required=True)
@category_option
@click.option("--company", help="Company name.")
@click.option("--phone", help="Phone number.")
@click.option("--role", help="Role, e.g. 'Steuerberater'.")
@actor_option
@json_option
def contacts_add(
    account_id: str,
    name: str,
    email: str,
    categories: tuple[str, ...],
    company: str | None,
    phone: str | None,
    role: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Add a contact who receives the chosen categories of mail."""
    cats = _categories(categories)
    if not cats:
        raise click.UsageError("give at least one --category (see 'teamaccess catalog')")
    details = {k: v for k, v in (("company", company), ("phone", phone), ("role", role)) if v}
    contact = _team().add_contact(
        account_id, actor_id=actor, name=name, email=email, categories=cats, **details
    )
    if as_json:
        emit_json(contact)
    else:
        click.echo(
            f"added contact {contact.id} ({contact.name} <{contact.email}>) for "
            + ", ".join(sorted(contact.categories))
        )


@contacts.command("list")
@click.argument("account_id")
@json_option
def contacts_list(account_id: str, as_json: bool) -> None:
    """List the contacts of ACCOUNT_ID."""
    found = _team().contacts(account_id)
    if as_json:
        emit_json(found)
    else:
        show_contacts(found)


@contacts.command("show")
@click.argument("contact_id")
@json_option
def contacts_show(contact_id: str, as_json: bool) -> None:
    """Show one contact."""
    contact = _team().get_contact(contact_id)
    if as_json:
        emit_json(contact)
    else:
        show_contacts([contact])


@contacts.command("update")
@click.argument("contact_id")
@click.option("--name")
@click.option("--email")
@category_option
@click.option("--company")
@click.option("--phone")
@click.option("--role")
@actor_option
@json_option
def contacts_update(
    contact_id: str,
    name: str | None,
    email: str | None,
    categories: tuple[str, ...],
    company: str | None,
    phone: str | None,
    role: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Change a contact; only the options given change (--category replaces the set)."""
    fields = {"name": name, "email": email, "company": company, "phone": phone, "role": role}
    changes: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if categories:
        changes["categories"] = _categories(categories)
    if not changes:
        raise click.UsageError("nothing to change; give --name, --email, --category, ...")
    contact = _team().update_contact(contact_id, actor_id=actor, **changes)
    if as_json:
        emit_json(contact)
    else:
        click.echo(f"updated contact {contact.id}: " + ", ".join(sorted(changes)))


@contacts.command("remove")
@click.argument("contact_id")
@actor_option
def contacts_remove(contact_id: str, actor: str) -> None:
    """Remove a contact."""
    _team().remove_contact(contact_id, actor_id=actor)
    click.echo(f"removed contact {contact_id}")


@cli.command()
@click.argument("account_id")
@click.argument("category")
@json_option
def recipients(account_id: str, category: str, as_json: bool) -> None:
    """Who gets CATEGORY mail: the owner, then subscribed contacts."""
    found = _team().recipients(account_id, category)
    if as_json:
        emit_json(found)
    else:
        for address in found:
            click.echo(address)


@cli.command()
@click.argument("account_id")
@click.argument("category")
@click.option("--subject", required=True)
@click.option("--text", required=True, help="Plain-text body; '-' reads it from stdin.")
@click.option("--html", "html_file", type=click.File("r"), help="File with an HTML body.")
@click.option("--language", type=click.Choice(["en", "de"]), help="Language of this mail.")
@json_option
def notify(
    account_id: str,
    category: str,
    subject: str,
    text: str,
    html_file: Any,
    language: str | None,
    as_json: bool,
) -> None:
    """Mail CATEGORY's recipients, one message each."""
    if text == "-":
        text = sys.stdin.read()
    html = html_file.read() if html_file is not None else None
    sent = _team().notify(
        account_id, category, subject=subject, text=text, html=html, language=language
    )
    if as_json:
        emit_json(sent)
    else:
        _mail_note()


@cli.command()
@click.option("--limit", default=100, show_default=True, help="At most this many messages.")
@click.option("--list", "only_list", is_flag=True, help="Only list waiting messages.")
@click.option("--account", "account_id", help="With --list: only this account's messages.")
@json_option
def deliver(limit: int, only_list: bool, account_id: str | None, as_json: bool) -> None:
    """Retry the mail that could not be sent (deliver_pending)."""
    team = _team()
    if account_id is not None and not only_list:
        raise click.UsageError("--account goes with --list; deliver retries every due message")
    rows = team.pending_messages(account_id) if only_list else team.deliver_pending(limit=limit)
    if as_json:
        emit_json(rows)
        return
    show_outbox(rows)
    if not only_list:
        waiting = len(team.pending_messages())
        click.echo(f"{sum(r.status == 'sent' for r in rows)} sent, {waiting} still waiting")


@cli.command()
@click.argument("account_id")
@click.option("--limit", default=50, show_default=True)
@json_option
def audit(account_id: str, limit: int, as_json: bool) -> None:
    """The account's audit log, newest first."""
    events = _team().audit_log(account_id, limit=limit)
    if as_json:
        emit_json(events)
    else:
        show_events(events)


# -- demo ---------------------------------------------------------------------------------

DEMO_OWNER = ("max", "max.mustermann@muster-gmbh.example.com")
DEMO_PROGRAMMER = ("anna.dev", "anna@webagentur.example.com")
DEMO_BOOKKEEPER = ("bernd.buchhaltung", "buchhaltung@muster-gmbh.example.com")
DEMO_PROGRAMMER_PERMISSIONS = PermissionSet.of(
    "services.view", "services.manage", "credentials.view", "firewall.unblock", "support.tickets"
)


def _step(number: int, title: str) -> None:
    click.echo()
    click.secho(f"== {number}. {title}", bold=True)


@cli.command()
def demo() -> None:
    """Play the customer-center story end to end.

    Creates a fresh demo account on every run, so it can run again on the same database.
    """
    settings = _settings()
    team = _team()
    owner, owner_email = DEMO_OWNER
    run = len(team.accounts_for(owner)) + 1
    click.echo(
        f"teamaccess demo, run {run}: database {settings.db}, mail to {settings.mail_target}"
    )

    _step(1, "Max Mustermann opens a customer account")
    account = team.create_account(name="Muster GmbH", owner_id=owner, owner_email=owner_email)
    click.echo(f"account {account.id} '{account.name}', owner {owner} <{owner_email}>")
    if run > 1:
        click.echo(f"({owner} now owns {run} demo accounts in this database: one per run)")

    _step(2, "He invites his programmer with selected permissions")
    prog, prog_email = DEMO_PROGRAMMER
    inv_prog = team.invite(
        account.id, actor_id=owner, email=prog_email, permissions=DEMO_PROGRAMMER_PERMISSIONS
    )
    click.echo(f"invited {prog_email}: {_perms(inv_prog.permissions)}")
    _mail_note()

    _step(3, "... and his bookkeeper with all permissions")
    book, book_email = DEMO_BOOKKEEPER
    inv_book = team.invite(
        account.id, actor_id=owner, email=book_email, permissions=PermissionSet.all()
    )
    click.echo(f"invited {book_email}: {_perms(inv_book.permissions)}")
    _mail_note()
    click.echo()
    show_invitations(team.pending_invitations(account.id))

    _step(4, "Both follow the link in their mail and accept")
    # The tokens come from invite(); in real life they travel only inside the mail.
    assert inv_prog.token is not None
    assert inv_book.token is not None
    for token, user_id, email in (
        (inv_prog.token, prog, prog_email),
        (inv_book.token, book, book_email),
    ):
        member = team.accept_invitation(token, user_id=user_id, email=email)
        click.echo(f"{member.user_id} <{member.email}> accepted and is now a member")
    click.echo()
    show_members(team.members(account.id))

    _step(5, "What may each of them do?")
    people = [owner, prog, book]
    table(
        ["PERMISSION", *people],
        [
            (p.name, *("yes" if team.can(u, account.id, p.name) else "no" for u in people))
            for p in team.catalog
        ],
        "the catalog is empty",
    )
    try:
        team.require(prog, account.id, "billing.view")
    except PermissionDenied as exc:
        click.echo(f"\nthe panel asks require({prog!r}, ..., 'billing.view') -> denied: {exc}")

    _step(6, "The tax adviser becomes a billing contact (no login, just mail)")
    contact = team.add_contact(
        account.id,
        actor_id=book,
        name="Steuerbüro Klein",
        email="rechnungen@steuerbuero-klein.example.com",
        categories=["billing"],
        role="Steuerberater",
    )
    click.echo(f"{book} added contact {contact.name} <{contact.email}> for billing mail")
    click.echo()
    show_contacts(team.contacts(account.id))

    _step(7, "The hoster sends a billing notice")
    sent_to = team.notify(
        account.id,
        "billing",
        subject="Your invoice 2026-0042 is ready",
        text="Dear customer,\n\nyour invoice 2026-0042 is ready in the customer center.\n",
    )
    click.echo(f"one message each to {len(sent_to)} recipients (nobody sees the others):")
    _mail_note()

    _step(8, "The audit log, newest first")
    show_events(team.audit_log(account.id))

    click.echo()
    click.echo(f"Done. Look around:  teamaccess members {account.id}")
    click.echo(f"                    teamaccess audit {account.id}")
    if not settings.smtp_host:
        click.echo(f"The mails are .eml files in {settings.outbox}{os.sep}")

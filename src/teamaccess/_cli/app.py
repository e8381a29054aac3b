"""The command group, its options, exit codes and the helpers every command uses."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import click

from .._domain import SYSTEM
from .._errors import (
    Conflict,
    DeliveryFailed,
    InvitationError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ScrubFailed,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .._permissions import PermissionSet

if TYPE_CHECKING:
    from .._service import TeamAccess

from .config import (
    ConfigError,
    Settings,
    is_postgres,
    parse_mail,
    refuse_old_cleartext_login,
    refuse_postgres_lookalike,
    refuse_sqlite_uri,
)
from .loaders import check_catalog_spec, check_templates_spec
from .words import for_operators

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_SENT",
    "EXIT_SCRUB_FAILED",
    "EXIT_SOME_NOT_SENT",
    "Integer",
    "cli",
    "main",
]

#: `erase`, `delete-account` or `purge` deleted (and printed what), the scrub failed.
EXIT_SCRUB_FAILED = 12
#: Exit status per error family; the first matching class wins.
EXIT_CODES: tuple[tuple[type[TeamAccessError], int], ...] = (
    (ValidationError, 3),
    (NotFound, 4),
    (PermissionDenied, 5),
    (Conflict, 6),
    (InvitationError, 7),
    (RateLimited, 8),
    (DeliveryFailed, 9),
    # Before StorageError, its family: the deletion is committed, only the scrub is left.
    (ScrubFailed, EXIT_SCRUB_FAILED),
    (StorageError, 10),
)
EXIT_USAGE = 2
EXIT_OTHER = 1
#: A one-off `deliver` that sent nothing of what it tried: DeliveryFailed's status.
EXIT_NOTHING_SENT = 9
#: A one-off `deliver` that sent some of what it tried, and not the rest.
EXIT_SOME_NOT_SENT = 11
#: Ctrl-C (SIGINT), or SIGTERM to the worker: 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])
COMMAND_LINE = click.core.ParameterSource.COMMANDLINE


class Integer(click.IntRange):
    """An integer within a range, named so in messages ("'x' is not a valid integer")."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # More digits than Python converts (sys.get_int_max_str_digits()) is an integer
        # all the same: click would call it "not a valid integer", and quote every digit.
        digits = _DIGITS.fullmatch(value) if isinstance(value, str) else None
        limit = sys.get_int_max_str_digits()
        count = 0 if digits is None else len(digits[1].replace("_", ""))
        if 0 < limit < count:
            wanted = (
                "a shorter one"
                if self.min is None and self.max is None
                else f"one in the range {self._describe_range()}"
            )
            self.fail(
                f"a number of {count} digits is more than the {limit} digits this command "
                f"reads; give {wanted}",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        # The range in --help ("[x>=1]"): click writes "x<=None" for one with no bound at
        # all, where there is no range to show.
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


_DIGITS: Final = re.compile(r"\s*[+-]?_?([\d_]+)\s*")  # \d: any digit int() reads


def exit_code_for(error: TeamAccessError) -> int:
    for family, code in EXIT_CODES:
        if isinstance(error, family):
            return code
    return EXIT_OTHER


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
            message = for_operators(str(exc))
            if isinstance(exc, DeliveryFailed) and "deliver --list" not in message:
                message += " ('teamaccess deliver --list' shows the error)"
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
        except click.Abort as exc:
            # click turns Ctrl-C into Abort; a unit of work it cut short was rolled back.
            if isinstance(exc.__context__, KeyboardInterrupt):
                code = EXIT_INTERRUPTED
                message = "interrupted; any change not yet committed was rolled back"
            else:
                code = EXIT_OTHER
                message = "aborted"
        click.echo(f"error: {message}", err=True)
        sys.exit(code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit as exc:
            if exc.exit_code != 0:
                _discard(ctx)
            raise
        except SystemExit as exc:
            if exc.code not in (0, None):
                _discard(ctx)
            raise
        except BaseException:
            # Refused, failed or interrupted: the database and key file this command
            # created go again if nothing was stored in them.
            _discard(ctx)
            raise


def _discard(ctx: click.Context) -> None:
    settings = ctx.find_object(Settings)
    if settings is not None:
        # The command's own error is what the user must see, not one from tidying up.
        with suppress(Exception):
            settings.discard()


def _usage_message(exc: click.UsageError) -> str:
    text = exc.format_message()
    if text.endswith(".") and not text.endswith("..."):
        text = text[:-1]
    if text[1:2].islower():  # "No such option" reads on as "no such ..."; "UNTIL" stays
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
    help="SQLite database file, or a postgresql://user@host/dbname URL (env TEAMACCESS_DB).",
)
@click.option(
    "--schema",
    envvar="TEAMACCESS_SCHEMA",
    default="teamaccess",
    show_default=True,
    help="With a PostgreSQL --db: the schema holding the tables (env TEAMACCESS_SCHEMA).",
)
@click.option(
    "--mail",
    envvar="TEAMACCESS_MAIL",
    metavar="URL",
    help="Where mail goes: smtp://[USER@]HOST[:PORT]?security=starttls|tls|plain, "
    "file:DIR for .eml files (default file:outbox), or python:MODULE:FACTORY for your own "
    "mailer (FACTORY() returns it). The SMTP password is read only from env "
    "TEAMACCESS_SMTP_PASSWORD (env TEAMACCESS_MAIL).",
)
@click.option(
    "--catalog",
    "catalog_spec",
    envvar="TEAMACCESS_CATALOG",
    metavar="python:MODULE:NAME",
    help="Your panel's permission catalog: a Catalog, or a function returning one, that "
    "NAME names in MODULE; the mail, -p and 'catalog' use its permissions (default: the "
    "built-in catalog; env TEAMACCESS_CATALOG).",
)
@click.option(
    "--templates",
    "templates_spec",
    envvar="TEAMACCESS_TEMPLATES",
    metavar="python:MODULE:NAME",
    help="Your panel's mail templates: a DefaultTemplates or your own Templates, or a "
    "function returning them, that NAME names in MODULE; the mail the command builds (the "
    "worker's too) is worded by them (default: the shipped ones; env TEAMACCESS_TEMPLATES).",
)
@click.option(
    "--delivery",
    envvar="TEAMACCESS_DELIVERY",
    type=click.Choice(["now", "queue"]),
    default="now",
    show_default=True,
    help="now: commands send their mail; queue: they only queue it, and "
    "'teamaccess deliver --watch' sends it (env TEAMACCESS_DELIVERY).",
)
# The options below are the older spelling of --mail; they keep working.
@click.option(
    "--outbox",
    envvar="TEAMACCESS_OUTBOX",
    default="outbox",
    show_default=True,
    help="Deprecated, use --mail file:DIR.",
)
@click.option("--smtp-host", envvar="TEAMACCESS_SMTP_HOST", help="Deprecated, use --mail.")
@click.option("--smtp-port", envvar="TEAMACCESS_SMTP_PORT", type=Integer(), help="Deprecated.")
@click.option(
    "--smtp-security",
    envvar="TEAMACCESS_SMTP_SECURITY",
    type=click.Choice(["starttls", "tls", "plain"]),
    default="starttls",
    show_default=True,
    help="Deprecated, use --mail ...?security=.",
)
@click.option("--smtp-user", envvar="TEAMACCESS_SMTP_USER", help="Deprecated, use --mail.")
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
    schema: str,
    mail: str | None,
    catalog_spec: str | None,
    templates_spec: str | None,
    delivery: Literal["now", "queue"],
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
    if not is_postgres(db) and ctx.get_parameter_source("schema") is COMMAND_LINE:
        raise click.UsageError("--schema goes with a PostgreSQL --db (postgresql://...)")
    if not db.strip():
        # Mostly --db "$VAR" with the variable unset: SQLite takes "" for a temporary
        # database, and the command failed on it with a journaling error.
        raise ConfigError(
            "--db is empty: give the SQLite file's path or a postgresql:// URL (a shell "
            'variable in --db "$VAR" may be unset); leave --db out for ./teamaccess.db'
        )
    if db.startswith("file:"):
        raise refuse_sqlite_uri(db)
    lookalike = refuse_postgres_lookalike(db)
    if lookalike is not None:
        raise lookalike
    # "" only from the command line (click reads an empty variable as none): refused
    if catalog_spec is not None:
        check_catalog_spec(catalog_spec)
    if templates_spec is not None:
        check_templates_spec(templates_spec)
    if mail is not None:
        old = [
            f"--{name.replace('_', '-')}"
            for name in ("outbox", "smtp_host", "smtp_port", "smtp_security", "smtp_user")
            if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)
        ]
        if old:
            raise click.UsageError(
                f"--mail replaces {', '.join(old)} (or their TEAMACCESS_* variables); "
                "give only --mail"
            )
        chosen = parse_mail(mail)
        outbox = chosen.outbox or outbox
        smtp_host, smtp_port = chosen.smtp_host, chosen.smtp_port
        smtp_security, smtp_user = chosen.smtp_security, chosen.smtp_user
        mailer_factory = chosen.mailer_factory
    else:
        mailer_factory = None
        refuse_old_cleartext_login(smtp_host, smtp_security, smtp_user)
    settings = Settings(
        db=db,
        schema=schema,
        outbox=outbox,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        smtp_user=smtp_user,
        accept_url=accept_url,
        language=language,
        sender=sender,
        delivery=delivery,
        mailer_factory=mailer_factory,
        catalog_spec=catalog_spec or None,
        templates_spec=templates_spec or None,
    )
    ctx.obj = settings
    ctx.call_on_close(settings.close)


def main() -> None:
    """Entry point of the console script."""
    cli.main(prog_name="teamaccess")


def _team(
    *, read_only: bool = False, existing: bool = False, signs: bool | None = None
) -> TeamAccess:
    """The service; a *read_only* command creates no database and no key file, nor does
    an *existing* one (it changes only data already stored). One that does not *sign*
    (no link, no pseudonym) runs without the secret key on a database another program
    made, or on PostgreSQL; a *read_only* one signs nothing unless it says so (inspect
    checks a link)."""
    settings = click.get_current_context().find_object(Settings)
    assert settings is not None
    if signs is None:
        signs = not read_only
    return settings.team(read_only=read_only, existing=existing, signs=signs)


def _settings() -> Settings:
    settings = click.get_current_context().find_object(Settings)
    assert settings is not None
    return settings


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _actor(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    # No default: a change made without saying who acts would run as the all-powerful
    # operator. "system" says so explicitly.
    if value is None or not value.strip():
        raise click.UsageError(
            "say who acts: --as USER (that user's permissions apply) or --as system "
            "(the operator, who passes every check)",
            ctx,
        )
    return SYSTEM if value in ("system", SYSTEM) else value


actor_option = click.option(
    "--as",
    "actor",
    envvar="TEAMACCESS_ACTOR",
    callback=_actor,
    help="Who acts: a user id, whose permissions apply, or 'system', the operator "
    "(env TEAMACCESS_ACTOR). Required.",
)


def permission_options(func: F) -> F:
    func = click.option(
        "-p",
        "--permission",
        "permission",
        multiple=True,
        metavar="NAME[@RESOURCE]",
        help="Grant this permission, or with @RESOURCE only on that resource "
        "(services.manage@srv-1); repeat or separate with commas (see 'catalog').",
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
    # "services.manage@srv-1" is a grant on one resource, as PermissionSet.to_list() writes it
    return PermissionSet.from_list(listed)


def read_stdin(what: str) -> str:
    """All of stdin as UTF-8 text; other bytes are a ``ValidationError`` naming *what*."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream someone put in its place
        return sys.stdin.read()
    return decode_utf8(stream.read(), what)


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None


def read_token(token: str | None) -> str:
    """The token from the argument, or from stdin for '-' or none (keeps it out of `ps`)."""
    if token in (None, "-"):
        token = read_stdin("the token on stdin")
    token = (token or "").strip()
    if not token:
        raise click.UsageError("give the invitation token as an argument or on stdin")
    if token.lower().startswith(("http://", "https://")):
        # An operator pastes the link a customer forwarded, not the part after token=.
        return _token_of_link(token)
    return token


def _token_of_link(link: str) -> str:
    """The token in an accept link given whole: its ``token`` query parameter, or what
    stands where ``--accept-url`` has ``{token}``."""
    from urllib.parse import parse_qs, unquote, urlsplit

    if "=3D" in link.upper():
        # A link copied from the mail's source: quoted-printable writes "=" as "=3D", which
        # no link or token of ours holds; "token=3D..." would read as an altered token.
        raise ValidationError(
            "this link was copied from the mail's source, where quoted-printable writes '=' "
            "as '=3D' (and may break the line with a '=' at its end); copy the link as the "
            "mail program shows it, or give the token alone"
        )
    try:
        query = urlsplit(link).query
    except ValueError as exc:  # a host Python's parser cannot read: "https://[panel/..."
        unreadable = str(exc)
        query = ""
    else:
        unreadable = ""
    found = parse_qs(query).get("token", [])
    if len(found) == 1 and found[0]:
        return found[0]
    template = _settings().accept_url or ""
    before, marker, after = template.partition("{token}")
    if marker and link.startswith(before) and link.endswith(after):
        inside = link[len(before) : len(link) - len(after)]
        if inside:
            return unquote(inside)
    # Never the link itself in the message: it may hold a token after all.
    if unreadable:
        raise ValidationError(
            f"this link cannot be read as a URL ({unreadable}); give the link from the "
            "invitation mail as it is, or the token alone"
        )
    raise ValidationError(
        "this link holds no invitation token (no token= in it, and it does not match "
        "--accept-url); give the link from the invitation mail, or the token alone"
    )


def _mail_note(queued: Sequence[str] = ()) -> None:
    """Say where the mail of the command went: a line per recipient."""
    for line in _mail_lines(queued):
        click.echo(line)


def _mail_lines(queued: Sequence[str] = ()) -> list[str]:
    settings = _settings()
    recipients = list(queued) if settings.delivery == "queue" else list(settings.sent)
    settings.sent.clear()
    return [settings.handed_over(r) for r in recipients]


def mail_json(queued: Sequence[str] = ()) -> dict[str, Any]:
    """The ``mail`` field of a command's JSON: what the text output's mail lines say."""
    settings = _settings()
    if settings.delivery == "queue":
        status, recipients = "queued", list(queued)
    else:
        status = "sent" if settings.sends else "written"
        recipients = list(settings.sent)
    settings.sent.clear()
    return {"status": status, "to": recipients, "via": settings.mail_url}

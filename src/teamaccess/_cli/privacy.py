"""Commands for personal data: export a person's data, erase a person, purge old data,
delete an account."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import attrs
import click

from .._domain import SYSTEM
from .._errors import ScrubFailed
from .._privacy import AccountDeletionReport, ErasureReport, PurgeReport, Retention
from .app import Integer, _team, actor_option, cli, json_option
from .config import MissingSecretKey
from .output import emit_json

__all__ = ["delete_account", "erase", "export", "purge"]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


def _committed(call: Callable[[], R], kind: type[R]) -> tuple[R, ScrubFailed | None]:
    """What *call* deleted, and its ``ScrubFailed`` if only the scrub afterwards failed:
    the command prints the report either way (the operator's record of what went), and
    then the failure, since repeating the command would find nothing to report."""
    try:
        return call(), None
    except ScrubFailed as exc:
        if not isinstance(exc.report, kind):
            raise
        return exc.report, exc


def _person_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option("--email", help="The person's address (any case).")(func)
    return click.option("--user", "user_id", help="The person's user id.")(func)


def _named(user_id: str | None, email: str | None) -> None:
    if user_id is None and email is None:
        raise click.UsageError("name the person with --user USER_ID, --email ADDRESS, or both")


@cli.command()
@_person_options
def export(user_id: str | None, email: str | None) -> None:
    """Print everything stored about a person as JSON (access request, Art. 15/20)."""
    _named(user_id, email)
    document = _team(read_only=True).export_person(user_id=user_id, email=email)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@cli.command()
@_person_options
@actor_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def erase(user_id: str | None, email: str | None, actor: str, yes: bool, as_json: bool) -> None:
    """Erase a person everywhere; the audit log keeps a pseudonym (Art. 17).

    Set TEAMACCESS_PSEUDONYM_KEY to the key of the pseudonyms (the privacy guide:
    https://github.com/teamaccess/teamaccess/tree/main/docs/privacy.md).
    """
    _named(user_id, email)
    if not yes:
        who = " and ".join(v for v in (user_id, email) if v)
        try:
            # On stderr, so --json output stays one document.
            sure = click.confirm(f"erase {who} everywhere? This cannot be undone", err=True)
        except click.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise
            sure = False  # stdin closed without an answer (a script without --yes)
        if not sure:
            raise click.ClickException(
                f"nothing was erased: erasing {who} needs a 'y' at the question, or --yes"
            )
    # Pseudonyms come from the secret key unless they have a key of their own.
    own_key = bool(os.environ.get("TEAMACCESS_PSEUDONYM_KEY", "").strip())
    try:
        team = _team(existing=True, signs=not own_key)
    except MissingSecretKey as exc:
        # Erasing signs no link: it needs a key only for the pseudonyms, which must be
        # the panel's, so the panel's pseudonym key does as well.
        raise MissingSecretKey(
            f"{exc}; erase uses the key only for the pseudonyms: if your panel sets "
            "TeamAccess(pseudonym_key=...), set TEAMACCESS_PSEUDONYM_KEY to that instead"
        ) from None
    report, failed = _committed(
        lambda: team.erase_person(user_id=user_id, email=email, actor_id=actor), ErasureReport
    )
    if as_json:
        emit_json({**attrs.asdict(report), "removed": report.removed})
    else:
        _say_erased(report)
    if failed is not None:
        raise failed


def _say_erased(report: ErasureReport) -> None:
    click.echo(
        f"erased: {report.memberships} membership(s), {report.invitations} invitation(s), "
        f"{report.contacts} contact(s), {report.messages} message(s); "
        f"{report.events} audit event(s) now name {report.pseudonym}"
    )
    if report.messages_redacted or report.texts_redacted or report.messages_cancelled:
        click.echo(
            f"in others' mail and rows: {report.messages_redacted} message(s) and "
            f"{report.texts_redacted} text(s) now say [erased]; "
            f"{report.messages_cancelled} waiting message(s) cancelled (could not be rewritten)"
        )


@cli.command("delete-account")
@click.argument("account_id")
@actor_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def delete_account(account_id: str, actor: str, yes: bool, as_json: bool) -> None:
    """Delete ACCOUNT_ID with its members, invitations, contacts, mail and audit log.

    Only the operator may (--as system), when the customer's contract ends; afterwards
    its former owner can be erased. Keep your own record of the deletion: the account's
    audit log goes with it.
    """
    team = _team(existing=True, signs=False)
    if not yes and actor == SYSTEM:
        # Asked only when the answer decides (anyone else is refused, a missing or bad id
        # too, by the call itself), naming whose account it is: a pasted wrong id shows.
        account = team.get_account(account_id)
        try:
            # On stderr, so --json output stays one document.
            sure = click.confirm(
                f"delete account {account.id} ({account.name!r}, owner {account.owner_id}) "
                "with everything of it? This cannot be undone",
                err=True,
            )
        except click.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise
            sure = False  # stdin closed without an answer (a script without --yes)
        if not sure:
            raise click.ClickException(
                f"nothing was deleted: deleting account {account_id} needs a 'y' at the "
                "question, or --yes"
            )
    report, failed = _committed(
        lambda: team.delete_account(account_id, actor_id=actor), AccountDeletionReport
    )
    if as_json:
        emit_json({**attrs.asdict(report), "removed": report.removed})
    else:
        click.echo(
            f"deleted account {report.account_id}: {report.members} member(s), "
            f"{report.invitations} invitation(s), {report.contacts} contact(s), "
            f"{report.messages} message(s), {report.events} audit event(s)"
        )
    if failed is not None:
        raise failed


def _days(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(days=value)


_DEFAULT = Retention()
_MAX_DAYS = 36525


def _period_option(name: str, what: str, default: timedelta) -> Callable[[F], F]:
    return click.option(
        f"--{name}",
        # A century at most: far more overflows the dates (a typo, not a policy).
        type=Integer(min=1, max=_MAX_DAYS),
        metavar="DAYS",
        help=f"Keep {what} this many days (default {default.days}).",
    )


@cli.command()
@_period_option("closed-invitations", "closed invitations", _DEFAULT.closed_invitations)
@_period_option("sent-mail", "sent and cancelled mail", _DEFAULT.sent_mail)
@_period_option("audit-events", "audit events", _DEFAULT.audit_events)
@click.option(
    "--no-scrub",
    is_flag=True,
    help="Skip rewriting the file afterwards (VACUUM); run it at a quieter time.",
)
@json_option
def purge(
    closed_invitations: int | None,
    sent_mail: int | None,
    audit_events: int | None,
    no_scrub: bool,
    as_json: bool,
) -> None:
    """Delete what the retention periods let go; run it daily from cron."""
    team = _team(existing=True, signs=False)
    changes = {
        name: period
        for name, period in (
            ("closed_invitations", _days(closed_invitations)),
            ("sent_mail", _days(sent_mail)),
            ("audit_events", _days(audit_events)),
        )
        if period is not None
    }
    team.retention = attrs.evolve(team.retention, **changes)
    report, failed = _committed(lambda: team.purge(scrub=not no_scrub), PurgeReport)
    if as_json:
        emit_json({**attrs.asdict(report), "total": report.total})
    else:
        click.echo(
            f"purged: {report.invitations} invitation(s), {report.messages} message(s), "
            f"{report.events} audit event(s)"
        )
    if failed is not None:
        raise failed


@cli.command()
def scrub() -> None:
    """Rewrite the database without deleted data (after a failed scrub: ScrubFailed)."""
    team = _team(existing=True, signs=False)
    # The store's own step, which erase, delete-account and purge run after they commit;
    # on its own it finishes one that failed (a reader kept the WAL, the disk was full).
    team._store.scrub()
    click.echo("scrubbed: deleted data is gone from the database's files")

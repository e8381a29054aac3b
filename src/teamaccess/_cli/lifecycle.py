"""Commands for members over time and for grants on single resources."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from .._errors import ValidationError
from .app import _team, actor_option, cli, json_option
from .metadata import read_metadata
from .output import _when, emit_json

__all__ = [
    "access_until",
    "forget_resource",
    "parse_instant",
    "parse_metadata",
    "reactivate",
    "resources",
    "suspend",
]


def parse_instant(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 instant from the command line; without a zone it is UTC, and so it is
    with " UTC" after it, as the command writes one ("2026-12-31 00:00 UTC": what
    ``access-until`` prints, and the end a refusal says to give). ``never`` or an empty
    value is ``None``. A value of another form is a usage error (exit 2), as click makes
    one of a number that is not one."""
    if value is None or value.strip().lower() in ("", "never"):
        return None
    text, named_utc = value.strip(), False
    if text[-4:].upper() == " UTC":
        text, named_utc = text[:-4].rstrip(), True
    try:
        instant = datetime.fromisoformat(text)
        if named_utc and instant.tzinfo is not None:
            raise ValueError("two zones")
    except ValueError:
        raise click.UsageError(
            f"{what} {value!r} is not an ISO 8601 date or time; write e.g. 2026-12-31, "
            "2026-12-31 18:00 UTC or 2026-12-31T18:00+01:00, or 'never'"
        ) from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def parse_metadata(value: str | None) -> dict[str, object] | None:
    """``--metadata`` as a JSON object, read as the import's column is; the service checks
    its size and content. Text that is not such an object is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return read_metadata(value)
    except ValidationError as exc:
        raise click.UsageError(f"--{exc}") from None


def _done(member: object, text: str, as_json: bool) -> None:
    if as_json:
        emit_json(member)
    else:
        click.echo(text)


@cli.command()
@click.argument("account_id")
@click.argument("user_id")
@actor_option
@json_option
def suspend(account_id: str, user_id: str, actor: str, as_json: bool) -> None:
    """Suspend member USER_ID: its permissions are kept but none can be used."""
    member = _team().suspend_member(account_id, user_id, actor_id=actor)
    _done(member, f"{member.user_id} is {member.status} in {account_id}", as_json)


@cli.command()
@click.argument("account_id")
@click.argument("user_id")
@actor_option
@json_option
def reactivate(account_id: str, user_id: str, actor: str, as_json: bool) -> None:
    """Lift the suspension of member USER_ID."""
    member = _team().reactivate_member(account_id, user_id, actor_id=actor)
    _done(member, f"{member.user_id} is {member.status} in {account_id}", as_json)


@cli.command("access-until")
@click.argument("account_id")
@click.argument("user_id")
@click.argument("until")
@actor_option
@json_option
def access_until(account_id: str, user_id: str, until: str, actor: str, as_json: bool) -> None:
    """End the access of USER_ID at UNTIL (ISO 8601, UTC without a zone), or 'never'."""
    member = _team().set_access_until(
        account_id, user_id, parse_instant(until, "UNTIL"), actor_id=actor
    )
    _done(
        member,
        f"{member.user_id}'s access in {account_id} ends: {_when(member.access_until)}"
        if member.access_until
        else f"{member.user_id}'s access in {account_id} does not end",
        as_json,
    )


@cli.command()
@click.argument("account_id")
@click.argument("user_id")
@click.argument("permission")
@json_option
def resources(account_id: str, user_id: str, permission: str, as_json: bool) -> None:
    """The resources on which USER_ID may use PERMISSION: 'all' or their ids."""
    team = _team(read_only=True)
    team.get_account(account_id)  # a mistyped account is not "none"
    found = team.resources_for(user_id, account_id, permission)
    if as_json:
        emit_json({"all": found.is_all, "ids": sorted(found.ids)})
    elif found.is_all:
        click.echo("all")
    else:
        click.echo("\n".join(sorted(found.ids)) or "none")


@cli.command("forget-resource")
@click.argument("account_id")
@click.argument("resource_id")
@actor_option
@json_option
def forget_resource(account_id: str, resource_id: str, actor: str, as_json: bool) -> None:
    """Remove every grant on RESOURCE_ID (a deleted service) in ACCOUNT_ID."""
    changed = _team().forget_resource(account_id, resource_id, actor_id=actor)
    if as_json:
        emit_json({"resource": resource_id, "members": changed})
    else:
        who = ", ".join(changed) if changed else "no member"
        click.echo(f"forgot {resource_id} in {account_id}: changed {who}")

"""Commands for members, permissions and the catalog, and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from .app import (
    Integer,
    _team,
    actor_option,
    chosen_permissions,
    cli,
    json_option,
    permission_options,
)
from .config import Settings
from .output import _perms, emit_json, show_events, show_members, table

__all__ = [
    "audit",
    "catalog",
    "members",
    "permissions",
    "permissions_check",
    "permissions_set",
    "permissions_show",
    "remove",
]

# -- members and permissions ------------------------------------------------------------------


@cli.command()
@click.argument("account_id")
@json_option
def members(account_id: str, as_json: bool) -> None:
    """List the members of ACCOUNT_ID, owner first."""
    found = _team(read_only=True).members(account_id)
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
    team = _team(read_only=True)
    # A mistyped user id must not read as "no" for every permission.
    team.get_member(account_id, user_id)
    rows = [(p.name, "yes" if team.can(user_id, account_id, p.name) else "no", p.label)
            for p in team.catalog]  # fmt: skip
    if as_json:
        emit_json(
            [{"permission": name, "allowed": allowed == "yes", "label": label}
             for name, allowed, label in rows]
        )  # fmt: skip
    else:
        table(["PERMISSION", "ALLOWED", "LABEL"], rows, "the catalog is empty")


@permissions.command("check")
@click.argument("account_id")
@click.argument("user_id")
@click.argument("permission_names", nargs=-1, required=True)
@click.option("--require", is_flag=True, help="Fail (exit 5) unless every one is allowed.")
@click.option("--resource", help="Ask about this resource (a grant on it, or account-wide).")
@json_option
def permissions_check(
    account_id: str,
    user_id: str,
    permission_names: tuple[str, ...],
    require: bool,
    resource: str | None,
    as_json: bool,
) -> None:
    """May USER_ID use each PERMISSION in ACCOUNT_ID (on --resource)?"""
    team = _team(read_only=True)
    # The forms `members --json` and the audit log write grants in: the library's error
    # would say how to write them in Python, so say it in this command's words.
    for name in permission_names:
        permission, at, where = name.partition("@")
        if at and permission in team.catalog:
            raise click.UsageError(
                f"{name!r} is a grant on one resource: write {permission} --resource {where}"
            )
        if name == "*":
            raise click.UsageError(
                "'*' stands for all permissions: name each permission to check "
                "(teamaccess permissions show ACCOUNT_ID USER_ID answers for every one)"
            )
    # A mistyped account must not read as "no" (can() answers no for one that is not).
    team.get_account(account_id)
    results = {
        name: team.can(user_id, account_id, name, resource=resource) for name in permission_names
    }
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
            team.require(user_id, account_id, name, resource=resource)


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
    # What the command runs with (--catalog's, else the default); no database is opened
    # (or created) to show them.
    from .._permissions import Categories

    settings = click.get_current_context().find_object(Settings)
    assert settings is not None
    team_catalog, team_categories = settings.catalog(), Categories.default()
    perms = list(team_catalog)
    cats = list(team_categories)
    if as_json:
        emit_json(
            {"permissions": perms, "categories": cats, "presets": list(team_catalog.presets())}
        )
        return
    table(
        ["PERMISSION", "GROUP", "LABEL", "DESCRIPTION"],
        [(p.name, p.group, p.label_for(language), p.description_for(language)) for p in perms],
        "no permissions",
    )
    click.echo()
    table(["CATEGORY", "LABEL"], [(c.name, c.label_for(language)) for c in cats], "no categories")
    click.echo()
    table(
        ["PRESET", "LABEL", "PERMISSIONS"],
        [(p.name, p.label_for(language), _perms(p.permissions)) for p in team_catalog.presets()],
        "no presets",
    )


@cli.command()
@click.argument("account_id")
@click.option("--limit", type=Integer(min=1), default=50, show_default=True,
              help="At most this many events.")  # fmt: skip
@json_option
def audit(account_id: str, limit: int, as_json: bool) -> None:
    """The account's audit log, newest first."""
    events = _team(read_only=True).audit_log(account_id, limit=limit)
    if as_json:
        emit_json(events)
    else:
        show_events(events)

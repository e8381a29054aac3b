"""Commands for accounts and ownership."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from .app import _team, actor_option, cli, json_option
from .output import _when, emit_json, plain, show_accounts, show_record

__all__ = [
    "accounts",
    "accounts_create",
    "accounts_list",
    "accounts_rename",
    "accounts_show",
    "transfer",
]

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
    found = _team(read_only=True).accounts_for(user_id)
    if as_json:
        emit_json(found)
    else:
        show_accounts(found)


@accounts.command("show")
@click.argument("account_id")
@json_option
def accounts_show(account_id: str, as_json: bool) -> None:
    """Show one account."""
    team = _team(read_only=True)
    account = team.get_account(account_id)
    members = team.members(account_id)
    pending = len(team.pending_invitations(account_id))
    contacts = len(team.contacts(account_id))
    if as_json:
        emit_json(
            {**plain(account), "members": len(members), "pending_invitations": pending,
             "contacts": contacts}
        )  # fmt: skip
        return
    show_record(
        [
            ("id", account.id),
            ("name", account.name),
            ("owner", f"{account.owner_id} <{account.owner_email}>"),
            ("created", _when(account.created_at)),
            ("members", len(members)),
            ("pending invitations", pending),
            ("contacts", contacts),
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

    Only the owner (--as OWNER) or the operator (--as system) may do it.
    """
    account = _team().transfer_ownership(account_id, actor_id=actor, to_user_id=to_user_id)
    if as_json:
        emit_json(account)
    else:
        click.echo(f"{to_user_id} now owns account {account.id}; the old owner stays a member")

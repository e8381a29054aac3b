"""Commands for invitations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .._domain import Invitation

from .app import (
    _mail_note,
    _team,
    actor_option,
    chosen_permissions,
    cli,
    json_option,
    mail_json,
    permission_options,
    read_token,
)
from .lifecycle import parse_instant, parse_metadata
from .output import _perms, _when, emit_json, plain, show_invitations, show_record

__all__ = ["accept", "decline", "inspect", "invitations", "invite", "resend", "revoke"]

# -- invitations --------------------------------------------------------------------------


@cli.command()
@click.argument("account_id")
@click.argument("email")
@permission_options
@click.option("--language", type=click.Choice(["en", "de"]), help="Language of this mail.")
@click.option("--until", "until", help="The member's access ends then (ISO 8601, UTC default).")
@click.option("--note", help="A short personal note, shown in the mail.")
@click.option("--metadata", help="Your own data as a JSON object, kept with the member.")
@actor_option
@json_option
def invite(
    account_id: str,
    email: str,
    grant_all: bool,
    grant_none: bool,
    permission: tuple[str, ...],
    language: str | None,
    until: str | None,
    note: str | None,
    metadata: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Invite EMAIL to ACCOUNT_ID; prints the accept link once."""
    wanted = chosen_permissions(grant_all, grant_none, permission)
    # The values first: one that does not parse opens (or creates) no database.
    ends, data = parse_instant(until, "--until"), parse_metadata(metadata)
    team = _team()
    inv = team.invite(
        account_id,
        actor_id=actor,
        email=email,
        permissions=wanted,
        language=language,
        access_until=ends,
        note=note,
        metadata=data,
    )
    if as_json:
        emit_json(_issued_json(inv))
        return
    click.echo(f"invited {inv.email} to {account_id} with {_perms(inv.permissions)}")
    click.echo(f"invitation {inv.id}, valid until {_when(inv.expires_at)}")
    _show_issued(inv)


def _show_issued(inv: Invitation) -> None:
    """The mail line, and the accept link once (queued, the worker mints the link)."""
    _mail_note([inv.email])
    if inv.token is not None:
        link = _team().accept_link(inv.token)
        click.echo(f"accept link (shown once, not stored): {link}")
    else:
        click.echo("the accept link goes out with the mail only (queued delivery)")


def _issued_json(inv: Invitation) -> dict[str, Any]:
    link = None if inv.token is None else _team().accept_link(inv.token)
    return {**plain(inv), "token": inv.token, "accept_url": link, "mail": mail_json([inv.email])}


@cli.command()
@click.argument("account_id")
@click.option("--all", "every", is_flag=True, help="Every invitation, with its status.")
@json_option
def invitations(account_id: str, every: bool, as_json: bool) -> None:
    """List the pending invitations of ACCOUNT_ID."""
    team = _team(read_only=True)
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
    inv = _team(read_only=True, signs=True).inspect_invitation(read_token(token))
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
            ("access until", _when(inv.access_until)),
            ("note", inv.note or "-"),
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
    if as_json:
        emit_json(_issued_json(inv))
        return
    click.echo(f"resent invitation {inv.id} to {inv.email}, valid until {_when(inv.expires_at)}")
    _show_issued(inv)


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

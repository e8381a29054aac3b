"""``teamaccess demo``: the customer-center story end to end."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from .._errors import (
    PermissionDenied,
)
from .._permissions import PermissionSet

if TYPE_CHECKING:
    from .._service import TeamAccess

from .app import _mail_note, _settings, _team, cli
from .config import ConfigError, safe_db_label
from .output import _perms, show_contacts, show_events, show_invitations, show_members, table

__all__ = [
    "DEMO_BOOKKEEPER",
    "DEMO_OWNER",
    "DEMO_PROGRAMMER",
    "DEMO_PROGRAMMER_PERMISSIONS",
    "demo",
]

# -- demo ---------------------------------------------------------------------------------

DEMO_OWNER = ("max", "max.mustermann@muster-gmbh.example.com")
DEMO_PROGRAMMER = ("anna.dev", "anna@webagentur.example.com")
DEMO_BOOKKEEPER = ("bernd.buchhaltung", "buchhaltung@muster-gmbh.example.com")
DEMO_PROGRAMMER_PERMISSIONS = PermissionSet.of(
    "services.view", "services.manage", "credentials.view", "firewall.unblock", "support.tickets"
)


DEMO_CONTACT = "rechnungen@steuerbuero-klein.example.com"


def _refuse_real_data(team: TeamAccess, db: str) -> None:
    """The demo writes only into a database that holds nothing but earlier demo runs."""
    users = {DEMO_OWNER[0], DEMO_PROGRAMMER[0], DEMO_BOOKKEEPER[0]}
    with team.store.read() as uow:
        # Every change is audited, so the audit trail names every account there is.
        accounts = {e.account_id for e in uow.events_with([""])}
        for account_id in sorted(accounts):
            account = uow.get_account(account_id)
            if account is None:
                continue
            demo = (
                (account.owner_id, account.owner_email) == DEMO_OWNER
                and account.name == "Muster GmbH"
                and all(m.user_id in users for m in uow.members(account_id))
                and all(c.email == DEMO_CONTACT for c in uow.contacts(account_id))
            )
            if not demo:
                raise ConfigError(
                    f"{safe_db_label(db)} holds data that is not the demo's (account "
                    f"{account_id} {account.name!r}); the demo writes only into a database "
                    "of its own: pass --db demo.db"
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
    if settings.delivery == "queue":
        raise click.UsageError(
            "the demo follows the links in its mail at once; run it without --delivery queue"
        )
    team = _team()
    _refuse_real_data(team, settings.db)
    owner, owner_email = DEMO_OWNER
    run = len(team.accounts_for(owner)) + 1
    click.echo(
        f"teamaccess demo, run {run}: database {safe_db_label(settings.db)}, "
        f"mail to {settings.mail_target}"
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
        email=DEMO_CONTACT,
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
    if not settings.sends:
        click.echo(f"The mails are .eml files in {settings.outbox}{os.sep}")

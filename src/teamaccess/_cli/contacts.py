"""Commands for contacts, recipients and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    pass

from .._errors import ValidationError
from .app import (
    _mail_note,
    _team,
    actor_option,
    cli,
    decode_utf8,
    json_option,
    mail_json,
    read_stdin,
)
from .output import emit_json, show_contacts

__all__ = [
    "category_option",
    "contacts",
    "contacts_add",
    "contacts_list",
    "contacts_remove",
    "contacts_show",
    "contacts_update",
    "notify",
    "recipients",
]

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
    found = _team(read_only=True).contacts(account_id)
    if as_json:
        emit_json(found)
    else:
        show_contacts(found)


@contacts.command("show")
@click.argument("contact_id")
@json_option
def contacts_show(contact_id: str, as_json: bool) -> None:
    """Show one contact."""
    contact = _team(read_only=True).get_contact(contact_id)
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
        raise click.UsageError(
            "nothing to change; give --name, --email, --category, --company, --phone or --role"
        )
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
    found = _team(read_only=True).recipients(account_id, category)
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
@click.option(
    "--html",
    "html_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with an HTML body (UTF-8).",
)
@click.option("--language", type=click.Choice(["en", "de"]), help="Language of this mail.")
@json_option
def notify(
    account_id: str,
    category: str,
    subject: str,
    text: str,
    html_file: Path | None,
    language: str | None,
    as_json: bool,
) -> None:
    """Mail CATEGORY's recipients, one message each."""
    if text == "-":
        text = read_stdin("the text on stdin")
    html = None
    if html_file is not None:
        try:
            data = html_file.read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read {html_file}: {exc.strerror}") from None
        html = decode_utf8(data, str(html_file))
    sent = _team().notify(
        account_id, category, subject=subject, text=text, html=html, language=language
    )
    if as_json:
        emit_json({"recipients": sent, "mail": mail_json(sent)})
    else:
        _mail_note(sent)

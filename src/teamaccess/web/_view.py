"""Presentation helpers: permissions grouped as in the catalog, dates, audit lines."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from .. import SYSTEM, AuditEvent, Catalog, PermissionSet
from ._i18n import translate

__all__ = ["describe_event", "format_date", "format_datetime", "permission_groups", "person"]


def permission_groups(
    catalog: Catalog,
    language: str,
    *,
    only: PermissionSet | None = None,
    checked: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The catalog's permissions in its groups and order, each with label and description.

    *only* keeps the permissions of a set (a member's, or what the actor may grant);
    *checked* marks the boxes of a form.
    """
    groups: dict[str, dict[str, Any]] = {}
    for perm in catalog:
        if only is not None and perm.name not in only:
            continue
        group = groups.setdefault(
            perm.group,
            {"name": perm.group, "label": translate(perm.group or "Other", language), "items": []},
        )
        group["items"].append(
            {
                "name": perm.name,
                "label": perm.label_for(language),
                "description": perm.description_for(language),
                "checked": perm.name in checked,
            }
        )
    return list(groups.values())


def format_datetime(value: datetime | None, language: str) -> str:
    if value is None:
        return ""
    if language == "de":
        return f"{value:%d.%m.%Y, %H:%M} UTC"
    return f"{value:%Y-%m-%d %H:%M} UTC"


def format_date(value: datetime | None, language: str) -> str:
    if value is None:
        return ""
    return f"{value:%d.%m.%Y}" if language == "de" else f"{value:%Y-%m-%d}"


#: audit actions as a sentence; an action not listed here is shown as its name
_ACTIONS = {
    "account.created": "created the customer account",
    "account.renamed": "renamed the customer account",
    "account.ownership_transferred": "transferred the ownership to {target}",
    "member.permissions_changed": "changed the permissions of {target}",
    "member.removed": "removed {target}",
    "member.left": "left the customer account",
    "member.suspended": "suspended {target}",
    "member.reactivated": "reactivated {target}",
    "member.access_until_set": "set an end date for {target}",
    "resource.forgotten": "removed the grants on {target}",
    "invitation.sent": "invited {target}",
    "invitation.resent": "sent the invitation to {target} again",
    "invitation.accepted": "accepted the invitation",
    "invitation.declined": "declined the invitation for {target}",
    "invitation.revoked": "revoked the invitation for {target}",
    "invitation.expired": "let the invitation for {target} expire",
    "invitation.mail_retried": "retried the invitation mail to {target}",
    "contact.added": "added the contact {target}",
    "contact.updated": "changed the contact {target}",
    "contact.removed": "removed the contact {target}",
    "notification.queued": "sent a notice ({target})",
    "mail.bounced": "stopped the mail to {target}: the mail server refused it for good",
    "mail.expired": "stopped the mail to {target}: it waited too long to be delivered",
    "person.erased": "erased the personal data of {target}",
}


def person(user_id: str, emails: Mapping[str, str], language: str) -> str:
    """Who (or what) an id is, for a page: the address where it is known."""
    if user_id == SYSTEM:
        return translate("Support", language)
    if user_id.startswith("invitee:"):
        return user_id.partition(":")[2]
    return emails.get(user_id, user_id)


def describe_event(event: AuditEvent, emails: Mapping[str, str], language: str) -> dict[str, str]:
    """``who`` did ``what`` (a sentence in *language*) ``when``."""
    details = event.details
    email = details.get("email")
    target = email if isinstance(email, str) else person(event.target, emails, language)
    template = _ACTIONS.get(event.action)
    what = (
        translate(template, language).format(target=target)
        if template is not None
        else f"{event.action} {target}"
    )
    return {
        "who": person(event.actor_id, emails, language),
        "what": what,
        "when": format_datetime(event.at, language),
    }

"""Personal data: the export of everything stored about a person (Art. 15 and 20).

It finds what an erasure would change with the same searches and tests (``privacy_work``),
so a person's export lists every record their erasure then deletes or rewrites. This
module loads on the first export, with ``privacy_work``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._domain import AuditEvent, OutboxMessage
from .._emails import Address
from .._permissions import PermissionSet
from .._ports import UnitOfWork
from .._privacy import PersonMatcher
from .privacy_work import (
    _check_unit,
    _event_needles,
    _free_needles,
    _granted_by,
    _key,
    _names_in_event,
    _naming,
    _Person,
    _redactor,
)

if TYPE_CHECKING:
    from .._mail.redact import Redactor
    from .privacy_work import _PrivacyWork

__all__ = ["EXPORT_FORMAT", "export_document"]

#: Names the export document's format; a new version of the document gets a new number.
EXPORT_FORMAT = "teamaccess.person-export.v1"


def export_document(
    work: _PrivacyWork, user_id: str | None, address: Address | None
) -> dict[str, Any]:
    """See ``TeamAccess.export_person()``; *user_id* and *address* are checked."""
    team = work.team
    now = team.now()
    with team._read() as uow:
        _check_unit(uow, scrub=getattr(team._store, "scrub", None))
        person = work._find(uow, user_id, address)
        matcher = person.matcher()
        names: dict[str, str] = {}

        def account_name(account_id: str) -> str | None:
            if account_id not in names:
                account = uow.get_account(account_id)
                names[account_id] = "" if account is None else account.name
            return names[account_id] or None

        owned = [uow.get_account(m.account_id) for m in person.memberships if m.is_owner]
        received, sent = [], []
        for inv in uow.invitations_involving(person.user_ids, person.keys):
            shown = {
                **_plain(inv),
                "status": team._status_now(uow, inv, now),
                "account_name": account_name(inv.account_id),
            }
            if _key(inv.email) in person.addresses or inv.accepted_by in person.user_ids:
                received.append(shown)
            if inv.invited_by in person.user_ids:
                sent.append(shown)
        free = _redactor(person)
        mentions = [
            {**entry, "account_name": account_name(entry["account_id"])}
            for entry in _mentions_of(uow, person, free)
        ]
        document: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "exported_at": now.isoformat(),
            "request": {
                "user_id": user_id,
                "email": None if address is None else address.email,
            },
            "user_ids": sorted(person.user_ids),
            "addresses": sorted(a.email for a in person.addresses.values()),
            "accounts_owned": [_plain(a) for a in owned if a is not None],
            "memberships": [
                # the status as the service reports it: "expired" past access_until
                {
                    **_plain(m),
                    "status": m.status_at(now),
                    "account_name": account_name(m.account_id),
                }
                for m in person.memberships
            ],
            "invitations_received": received,
            "invitations_sent": sent,
            "contacts": [
                {**_plain(c), "account_name": account_name(c.account_id)}
                for c in uow.contacts_with(person.keys)
            ],
            "mail": [
                _mail(row)
                for row in uow.outbox_with(matcher.needles)
                if _key(row.recipient) in person.addresses
            ],
            "audit_events": [
                _exported_event(e, matcher)
                for e in uow.events_with(_event_needles(person))
                if _names_in_event(matcher, free, e)
            ],
            "mentions": mentions,
        }
    return document


def _mentions_of(uow: UnitOfWork, person: _Person, free: Redactor) -> list[dict[str, Any]]:
    """Others' rows that name the person, as the erasure finds and rewrites them: the
    free text of their memberships, invitations and contacts, the memberships the person
    granted, the waiting mail of the invitations they sent (which the erasure cancels),
    and mail to others whose subject, text or delivery error names them. Each with the
    fields that name them, as stored (mail: as it reads)."""
    from .._mail.redact import named_parts

    needles = _free_needles(person)
    found: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(kind: str, account_id: str, row_id: str, fields: Mapping[str, Any]) -> None:
        entry = found.setdefault(
            (kind, account_id, row_id),
            {"kind": kind, "account_id": account_id, "id": row_id, "fields": {}},
        )
        entry["fields"].update(_plain(dict(fields)))

    for m in uow.members_involving(person.user_ids, ()):
        if _granted_by(person, m):
            add("member", m.account_id, m.user_id, {"granted_by": m.granted_by})
    # The erasure revokes the invitations the person sent that are pending, as
    # remove_member() does, and cancels their waiting mail to the invitee.
    for m in person.memberships:
        for inv in uow.invitations(m.account_id, status="pending", invited_by=m.user_id):
            for row in uow.outbox(status="pending", invitation_id=inv.id):
                add("mail", row.account_id, row.id, {"status": row.status, "invitation_id": inv.id})
    # The person's own rows are in their own keys (and go whole in an erasure).
    for m in uow.members_with_text(needles):
        if not person.owns(m) and (fields := _naming(free, m)):
            add("member", m.account_id, m.user_id, fields)
    for inv in uow.invitations_with_text(needles):
        if _key(inv.email) not in person.addresses and (fields := _naming(free, inv)):
            add("invitation", inv.account_id, inv.id, fields)
    for c in uow.contacts_with_text(needles):
        if _key(c.email) not in person.addresses and (fields := _naming(free, c)):
            add("contact", c.account_id, c.id, fields)
    after = 0
    while page := uow.outbox_texts(after=after, limit=500):
        after = page[-1][0]
        for _, row in page:
            if _key(row.recipient) in person.addresses:
                continue  # mail to the person is in "mail"
            shown: dict[str, Any] = {"status": row.status}
            if row.last_error is not None and free.found(row.last_error):
                shown["last_error"] = row.last_error
            if row.message is not None:
                for name, value in named_parts(row.message, free).items():
                    # A foreign message's header may be called "Status" too: it must not
                    # stand in for the row's own field.
                    key = name.lower()
                    shown[f"header {key}" if key in _ROW_FIELDS else key] = value
            if len(shown) > 1:
                add("mail", row.account_id, row.id, shown)
    return list(found.values())


#: The outbox row's own fields in a mail's mentions; a header of the same name is shown
#: as ``header <name>``.
_ROW_FIELDS: Final = frozenset({"status", "last_error"})


def _exported_event(event: AuditEvent, matcher: PersonMatcher) -> dict[str, Any]:
    """An event as the person's export shows it. An import's event lists every member
    it added; the export keeps the person's own entries and the count, not the other
    members' ids, which are theirs to ask for."""
    shown: dict[str, Any] = _plain(event)
    members = event.details.get("members")
    if event.action == "account.imported" and isinstance(members, list):
        shown["details"] = {
            **shown["details"],
            "members": [m for m in members if matcher.in_value(m)],
            "member_count": len(members),
        }
    return shown


def _mail(row: OutboxMessage) -> dict[str, Any]:
    """An outbox row without its message: the subject, where one is stored.

    Invitation rows store no message (it holds a token, rendered when sent); a
    notification's body is the account's text to all its recipients, not the person's.
    """
    shown: dict[str, Any] = _plain(row)
    subject = None
    if row.message is not None:
        from email import policy
        from email.parser import BytesHeaderParser

        headers = BytesHeaderParser(policy=policy.default).parsebytes(row.message)
        subject = headers["Subject"]
    shown["subject"] = None if subject is None else str(subject)
    return shown


_HIDDEN = frozenset({"token", "token_hash", "message"})


def _plain(value: object) -> Any:
    """*value* as JSON-ready data: attrs objects as dicts (every field, so fields added
    later are exported too), times as ISO strings; never a token, hash or stored mail."""
    if isinstance(value, PermissionSet):
        return value.to_list()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if attrs.has(type(value)):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in attrs.fields(type(value))  # type: ignore[arg-type]
            if f.name not in _HIDDEN
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)

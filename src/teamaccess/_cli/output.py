"""Text and JSON output of the commands."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import click

from .._domain import Account, AuditEvent, Contact, Invitation, Member, OutboxMessage
from .._permissions import PermissionSet

__all__ = [
    "emit_json",
    "emit_json_line",
    "plain",
    "show_accounts",
    "show_contacts",
    "show_events",
    "show_invitations",
    "show_members",
    "show_outbox",
    "show_record",
    "show_refused",
    "table",
]

if TYPE_CHECKING:
    pass


# -- output -----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _perms(value: PermissionSet) -> str:
    if value.is_all:
        return "all"
    # scoped grants as "services.manage@srv-1", after the account-wide names
    listed = value.to_list()
    return ", ".join(listed) if isinstance(listed, list) and listed else "none"


def plain(value: object) -> Any:
    """*value* as JSON-ready data; never includes token hashes or stored mail bodies."""
    if isinstance(value, PermissionSet):
        return value.to_list()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if attrs.has(type(value)):
        return {
            f.name: plain(getattr(value, f.name))
            for f in attrs.fields(type(value))  # type: ignore[arg-type]
            if f.name not in ("token_hash", "message")
        }
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def emit_json(value: object) -> None:
    click.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))


def emit_json_line(value: object) -> None:
    """*value* as one line of JSON (JSON Lines: a long-running command's records)."""
    click.echo(json.dumps(plain(value), ensure_ascii=False))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> None:
    """Print *rows* in aligned columns, or *empty* when there are none."""
    cells = [[str(c) for c in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def show_accounts(accounts: Sequence[Account]) -> None:
    table(
        ["ID", "NAME", "OWNER", "OWNER EMAIL", "CREATED"],
        [(a.id, a.name, a.owner_id, a.owner_email, _when(a.created_at)) for a in accounts],
        "no accounts",
    )


def show_members(members: Sequence[Member]) -> None:
    table(
        ["USER", "EMAIL", "ROLE", "STATUS", "PERMISSIONS", "JOINED", "ACCESS UNTIL"],
        [
            (m.user_id, m.email, m.role, m.status, _perms(m.permissions), _when(m.joined_at),
             _when(m.access_until))
            for m in members
        ],
        "no members",
    )  # fmt: skip


def show_invitations(invitations: Sequence[Invitation]) -> None:
    table(
        ["ID", "EMAIL", "STATUS", "PERMISSIONS", "INVITED BY", "EXPIRES"],
        [
            (i.id, i.email, i.status, _perms(i.permissions), i.invited_by, _when(i.expires_at))
            for i in invitations
        ],
        "no invitations",
    )


def show_contacts(contacts: Sequence[Contact]) -> None:
    table(
        ["ID", "NAME", "EMAIL", "CATEGORIES", "COMPANY", "PHONE", "ROLE"],
        [
            (c.id, c.name, c.email, ", ".join(sorted(c.categories)), c.company, c.phone, c.role)
            for c in contacts
        ],
        "no contacts",
    )


def show_events(events: Sequence[AuditEvent]) -> None:
    table(
        ["WHEN", "ACTOR", "ACTION", "TARGET"],
        [(_when(e.at), e.actor_id, e.action, e.target) for e in events],
        "no events",
    )


def show_outbox(rows: Sequence[OutboxMessage]) -> None:
    table(
        ["ID", "KIND", "TO", "STATUS", "ATTEMPTS", "LAST ERROR"],
        [(r.id, r.kind, r.recipient, r.status, r.attempts, r.last_error or "") for r in rows],
        "no messages",
    )


def show_refused(rows: Sequence[OutboxMessage]) -> None:
    """Closed messages that never went out; a closed row is never due again, so its
    ``next_attempt_at`` is when it was closed."""
    table(
        ["ID", "ACCOUNT", "TO", "CLOSED", "REASON"],
        [(r.id, r.account_id, r.recipient, _when(r.next_attempt_at), r.last_error or "")
         for r in rows],
        "no refused messages",
    )  # fmt: skip


def show_record(pairs: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}}  {value}")

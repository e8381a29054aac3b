"""The command that delivers waiting mail."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from .app import _team, cli, json_option
from .output import emit_json, show_outbox

__all__ = ["deliver"]


@cli.command()
@click.option("--limit", default=100, show_default=True, help="At most this many messages.")
@click.option("--list", "only_list", is_flag=True, help="Only list waiting messages.")
@click.option("--account", "account_id", help="With --list: only this account's messages.")
@json_option
def deliver(limit: int, only_list: bool, account_id: str | None, as_json: bool) -> None:
    """Retry the mail that could not be sent (deliver_pending)."""
    team = _team()
    if account_id is not None and not only_list:
        raise click.UsageError("--account goes with --list; deliver retries every due message")
    rows = team.pending_messages(account_id) if only_list else team.deliver_pending(limit=limit)
    if as_json:
        emit_json(rows)
        return
    show_outbox(rows)
    if not only_list:
        waiting = len(team.pending_messages())
        click.echo(f"{sum(r.status == 'sent' for r in rows)} sent, {waiting} still waiting")

"""The commands that deliver waiting mail: once, or as a long-running worker."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from .._errors import StorageError
from .app import _settings, _team, cli, json_option
from .output import emit_json, emit_json_line, show_outbox

if TYPE_CHECKING:
    from types import FrameType

    from .._domain import OutboxMessage

__all__ = ["EXIT_INTERRUPTED", "deliver"]

#: The exit status of a worker stopped by SIGTERM or Ctrl-C (128 + SIGINT, as shells do).
EXIT_INTERRUPTED = 130


@cli.command()
@click.option("--limit", default=100, show_default=True, help="At most this many per batch.")
@click.option("--list", "only_list", is_flag=True, help="Only list waiting messages.")
@click.option("--account", "account_id", help="With --list: only this account's messages.")
@click.option(
    "--undeliverable",
    is_flag=True,
    help="With --list: the messages closed because the server refused them for good.",
)
@click.option("--watch", is_flag=True, help="Keep delivering until SIGTERM or Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="With --watch: seconds between looks at an empty outbox.",
)
@click.option(
    "--max-interval",
    type=click.FloatRange(min=0.01),
    default=60.0,
    show_default=True,
    help="With --watch: the longest wait while idle or failing (the backoff's cap).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds a batch owns its messages; a killed worker's are due again after it.",
)
@json_option
def deliver(
    limit: int,
    only_list: bool,
    account_id: str | None,
    undeliverable: bool,
    watch: bool,
    interval: float,
    max_interval: float,
    lease: float,
    as_json: bool,
) -> None:
    """Send the mail waiting in the outbox (deliver_pending).

    Once by default; with --watch as a worker that runs until SIGTERM or Ctrl-C, prints a
    line per batch, and exits 130 after finishing the message in hand.
    """
    if account_id is not None and not only_list:
        raise click.UsageError("--account goes with --list; deliver sends every due message")
    if undeliverable and not only_list:
        raise click.UsageError("--undeliverable goes with --list")
    if only_list and watch:
        raise click.UsageError("--list shows what waits once; leave out --watch")
    team = _team(read_only=only_list, existing=True)
    team.delivery_lease = timedelta(seconds=lease)
    if only_list:
        if undeliverable:
            rows = team.undeliverable_messages(account_id)
        else:
            rows = team.pending_messages(account_id)
        if as_json:
            emit_json(rows)
        else:
            show_outbox(rows)
        return
    if watch:
        _watch(limit, interval, max(interval, max_interval), as_json)
        return
    rows = team.deliver_pending(limit=limit)
    waiting = len(team.pending_messages())
    if as_json:
        emit_json({"messages": rows, **_summary(rows), "waiting": waiting})
        return
    show_outbox(rows)
    click.echo(f"{_sentence(rows)}; {waiting} still waiting")


def _summary(rows: Sequence[OutboxMessage]) -> dict[str, Any]:
    settings = _settings()
    # "delivered" counts messages handed over; "via" says whether to a server (smtp://)
    # or to files (file:), which are not sent anywhere.
    return {
        "delivered": sum(r.status == "sent" for r in rows),
        "failed": sum(r.status == "pending" for r in rows),
        "cancelled": sum(r.status == "cancelled" for r in rows),
        "via": settings.mail_url,
    }


def _sentence(rows: Sequence[OutboxMessage]) -> str:
    """What happened to *rows*, in words that never call a file "sent"."""
    summary = _summary(rows)
    settings = _settings()
    done = summary["delivered"]
    if settings.sends:
        words = f"{done} sent to {settings.mail_target}"
    else:
        words = f"{done} written as files to {settings.mail_target} (not sent)"
    if summary["failed"]:
        words += f", {summary['failed']} failed (retried later)"
    if summary["cancelled"]:
        words += f", {summary['cancelled']} cancelled"
    return words


class _Stop:
    """Set by SIGTERM or SIGINT; the worker finishes the message in hand, then exits."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.requested = True

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, old in previous.items():
                signal.signal(s, old)


def _watch(limit: int, interval: float, max_interval: float, as_json: bool) -> None:
    team = _team(existing=True)
    # The batch lines come from the rows; the recipients the settings note for other
    # commands' mail lines would only pile up for as long as the worker runs.
    noted = _settings().sent
    stop = _Stop()
    wait = interval
    with stop.installed():
        while not stop():
            try:
                rows = team.deliver_pending(limit=limit, stop=stop)
                noted.clear()
            except StorageError as exc:
                # The database is locked or unreachable for a while: say so, back off.
                click.echo(f"error: {exc}", err=True)
                rows = []
            else:
                if rows:
                    _batch_line(rows, as_json)
            if rows and any(r.status != "pending" for r in rows):
                wait = interval
                if len(rows) < limit:
                    _sleep(interval, stop)
                # else more may be due: straight on
            else:
                # Idle, or every message failed (the mail server is down): wait longer
                # each time, up to max_interval.
                _sleep(wait, stop)
                wait = min(wait * 2, max_interval)
    raise SystemExit(EXIT_INTERRUPTED)


def _batch_line(rows: Sequence[OutboxMessage], as_json: bool) -> None:
    now = datetime.now(UTC)
    if as_json:
        emit_json_line({"at": now.isoformat(), **_summary(rows)})
    else:
        click.echo(f"{now:%Y-%m-%d %H:%M:%S} UTC  {_sentence(rows)}")


def _sleep(seconds: float, stop: _Stop) -> None:
    end = time.monotonic() + seconds
    while not stop() and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))

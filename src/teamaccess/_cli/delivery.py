"""The commands that deliver waiting mail: once, or as a long-running worker."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from .._domain import SYSTEM
from .._errors import StorageError
from .._service.core import EXPIRE_AFTER, GIVE_UP_AFTER
from .._service.delivery_rules import _REFUSED, _UNDELIVERABLE
from .app import (
    EXIT_INTERRUPTED,
    EXIT_NOTHING_SENT,
    EXIT_SOME_NOT_SENT,
    Integer,
    _settings,
    _team,
    cli,
    json_option,
)
from .output import emit_json, emit_json_line, plain, show_outbox, show_refused
from .words import for_operators

if TYPE_CHECKING:
    from types import FrameType

    from .._domain import OutboxMessage
    from .._service import TeamAccess

__all__ = ["EXIT_INTERRUPTED", "deliver"]

#: The pauses before each retry of a one-off run to record the sends its database error
#: left unrecorded; each retry may also wait out the database's own busy timeout.
RECORD_RETRIES = (0.0, 2.0, 4.0)


class Seconds(click.FloatRange):
    """A number of seconds within a range; ``nan`` is refused (it passes every
    comparison, and a worker would then never sleep)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


#: A day: longer waits or leases are a typo (and would overflow a timedelta near 1e300).
_DAY = 86400.0


@cli.command()
@click.option(
    "--limit",
    type=Integer(min=1),
    default=100,
    show_default=True,
    help="At most this many per batch.",
)
@click.option("--list", "only_list", is_flag=True, help="Only list waiting messages.")
@click.option(
    "--account",
    "account_id",
    help="With --list: only this account's messages; with --retry-now: only its waiting mail.",
)
@click.option(
    "--retry-now",
    is_flag=True,
    help="First make the mail waiting out its retry backoff due now (not the messages "
    "another worker is sending), then send as usual: after a mail setting was fixed.",
)
@click.option(
    "--undeliverable",
    is_flag=True,
    help="With --list: the messages closed because the server refused them for good.",
)
@click.option(
    "--refused",
    is_flag=True,
    help="With --list: every message closed as refused, by the last check before sending "
    "or by the server for good, with its reason and when.",
)
@click.option("--watch", is_flag=True, help="Keep delivering until SIGTERM or Ctrl-C.")
@click.option(
    "--interval",
    type=Seconds(min=0.01, max=_DAY),
    default=5.0,
    show_default=True,
    help="With --watch: seconds between looks at an empty outbox.",
)
@click.option(
    "--max-interval",
    type=Seconds(min=0.01, max=_DAY),
    default=60.0,
    show_default=True,
    help="With --watch: the longest wait while idle or failing (the backoff's cap).",
)
@click.option(
    "--lease",
    type=Seconds(min=1, max=_DAY),
    default=300.0,
    show_default=True,
    help="Seconds a batch owns its messages; a killed worker's are due again after it.",
)
@click.option(
    "--give-up-after",
    envvar="TEAMACCESS_GIVE_UP_AFTER",
    type=Integer(min=1),
    default=GIVE_UP_AFTER,
    show_default=True,
    metavar="N",
    help="Close a message the mail server refused for good N times in a row; "
    "1 closes it at the first refusal, as a mail server bounces (env "
    "TEAMACCESS_GIVE_UP_AFTER).",
)
@click.option(
    "--expire-after",
    envvar="TEAMACCESS_EXPIRE_AFTER",
    type=Integer(min=1, max=24 * 365 * 100),
    default=int(EXPIRE_AFTER.total_seconds()) // 3600,
    show_default=True,
    metavar="HOURS",
    help="Close a message still not delivered this many hours after it was queued, at its "
    "next failed try, as a mail server bounds its queue (env TEAMACCESS_EXPIRE_AFTER).",
)
@json_option
def deliver(
    limit: int,
    only_list: bool,
    account_id: str | None,
    retry_now: bool,
    undeliverable: bool,
    refused: bool,
    watch: bool,
    interval: float,
    max_interval: float,
    lease: float,
    give_up_after: int,
    expire_after: int,
    as_json: bool,
) -> None:
    """Send the mail waiting in the outbox: what could not be sent at once, and all of
    it with --delivery queue.

    Once by default; with --watch as a worker that runs until SIGTERM or Ctrl-C, prints a
    line per batch, and exits 130 after finishing the message in hand (so does a run
    without --watch that is interrupted).
    """
    if retry_now and only_list:
        raise click.UsageError("--list only shows what waits; --retry-now changes it, give one")
    if account_id is not None and not (only_list or retry_now):
        raise click.UsageError(
            "--account goes with --list or --retry-now; deliver sends every due message"
        )
    if undeliverable and not only_list:
        raise click.UsageError("--undeliverable goes with --list")
    if refused and not only_list:
        raise click.UsageError("--refused goes with --list")
    if refused and undeliverable:
        raise click.UsageError(
            "--refused lists the undeliverable messages too; give one of the two"
        )
    if only_list and watch:
        raise click.UsageError("--list shows what waits once; leave out --watch")
    team = _team(read_only=only_list, existing=True)
    team.delivery_lease = timedelta(seconds=lease)
    team.give_up_after = give_up_after
    team.expire_after = timedelta(hours=expire_after)
    retried = None
    if retry_now:
        # As the vendor: the operator who runs the worker is the vendor's staff.
        retried = team.retry_waiting(actor_id=SYSTEM, account_id=account_id)
        if not as_json:
            click.echo(f"{len(retried)} waiting message(s) made due now")
    if only_list:
        if refused:
            closed = team._closed_messages(account_id, (_REFUSED, _UNDELIVERABLE))
            if as_json:
                emit_json([{**plain(r), "closed_at": plain(r.next_attempt_at)} for r in closed])
            else:
                show_refused(closed)
            return
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
        if retried is not None and as_json:
            emit_json_line({"retried": [r.id for r in retried]})
        _watch(limit, interval, max(interval, max_interval), as_json)
        return
    # Ctrl-C or SIGTERM as the worker takes them: the message in hand is finished and
    # recorded, the rest handed back; a send cut off unrecorded would go twice.
    stop = _Stop()
    with stop.installed():
        rows = _deliver_once(team, limit, stop)
    waiting = len(team.pending_messages())
    if as_json:
        retry = {} if retried is None else {"retried": [r.id for r in retried]}
        emit_json({"messages": rows, **_summary(rows), "waiting": waiting, **retry})
    else:
        show_outbox(rows)
        click.echo(f"{_sentence(rows)}; {waiting} still waiting")
    if stop():
        click.echo(
            "error: interrupted; the message in hand was finished and recorded, the "
            "rest wait for the next 'teamaccess deliver'",
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED)
    _exit_unless_all_sent(rows)


def _exit_unless_all_sent(rows: Sequence[OutboxMessage]) -> None:
    """Exit 9 if nothing of what the run tried could be sent, 11 if only some of it: a
    script or cron job must be able to tell, not only a reader of the summary line."""
    sent = sum(r.status == "sent" for r in rows)
    failed = sum(r.status == "pending" for r in rows)
    # Closed for good this run: refused by the last check, or by the server once too
    # often. A message cancelled because its invitation is no longer pending is no failure.
    closed = sum(
        r.status == "cancelled" and (r.last_error or "").startswith((_REFUSED, _UNDELIVERABLE))
        for r in rows
    )
    if not failed and not closed:
        return
    parts = []
    if failed:
        parts.append(f"{failed} failed and wait to be retried ('teamaccess deliver --list')")
    if closed:
        parts.append(f"{closed} refused for good and closed, not retried")
    what = " and ".join(parts)
    if sent:
        click.echo(
            f"error: {failed + closed} of {sent + failed + closed} message(s) could not be "
            f"sent: {what}",
            err=True,
        )
        raise SystemExit(EXIT_SOME_NOT_SENT)
    click.echo(f"error: nothing could be sent: {what}", err=True)
    raise SystemExit(EXIT_NOTHING_SENT)


def _deliver_once(team: TeamAccess, limit: int, stop: _Stop) -> list[OutboxMessage]:
    """One run; on a database error after the server took a message, try a few times to
    record the send before exiting: unrecorded, it goes again once its lease ends."""
    try:
        return team.deliver_pending(limit=limit, stop=stop)
    except StorageError as exc:
        sent = list(team._unrecorded())
        if not sent:
            raise
        cause = for_operators(str(exc.__cause__ or exc))
        ids = ", ".join(sent)
        failure: StorageError | None = None
        for pause in RECORD_RETRIES:
            time.sleep(pause)
            try:
                team._record_late()
            except StorageError as again:
                failure = again
            else:
                failure = None
                break
        lease = int(team.delivery_lease.total_seconds())
        if failure is None:
            raise StorageError(
                f"the database failed during delivery ({cause}); message(s) {ids} had gone "
                "out and were recorded on a retry, so they do not go again. The messages "
                f"not tried wait until their lease ends ({lease} s); then run 'teamaccess "
                "deliver' again"
            ) from exc
        raise StorageError(
            f"message(s) {ids} went out, but the database failed while recording that, "
            f"also on {len(RECORD_RETRIES)} retries ({cause}); they may go out twice: "
            f"once their lease ends ({lease} s after this run began) they are due again, "
            "and the next run sends them a second time (with the same Message-ID). The "
            "messages not tried wait until their lease ends too"
        ) from failure


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

        if threading.current_thread() is not threading.main_thread():
            # Only the main thread may set handlers (a host running the command in a
            # thread); there, Ctrl-C stays the interpreter's.
            yield
            return
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
                click.echo(f"error: {for_operators(str(exc))}", err=True)
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

"""Mail delivery, the worker's path: reading the outbox, and ``deliver_pending()``,
which claims due rows with a lease, sends them and hands back what it did not try."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._domain import SYSTEM, OutboxMessage
from .._errors import (
    ClockError,
    PermissionDenied,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .checks import _check_id, _no_account, _together
from .delivery_rules import _UNDELIVERABLE, _FullWay, _sends_wire, _still_ours
from .delivery_send import _Sending

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["_Delivery"]


class _Delivery(_Sending):
    """Mail delivery: the outbox, rendering invitation mail, sending, retrying."""

    def pending_messages(self, account_id: str | None = None) -> list[OutboxMessage]:
        """Outbox messages not yet delivered, oldest first, with attempts and last error;
        only *account_id*'s if given (``AccountNotFound`` if there is no such account)."""
        if account_id is None:
            with self._read() as uow:
                return uow.outbox(status="pending")
        _check_id("account_id", account_id)
        with self._read() as uow:
            self._account(uow, account_id)
            # Few rows wait at any time, so they are filtered here rather than in a query
            # every backend would have to add.
            return [m for m in uow.outbox(status="pending") if m.account_id == account_id]

    def undeliverable_messages(self, account_id: str | None = None) -> list[OutboxMessage]:
        """Outbox messages closed because the mail server refused them for good
        ``give_up_after`` times in a row (status ``cancelled``, the server's reply in
        ``last_error``), oldest first; only *account_id*'s if given (``AccountNotFound``
        if there is no such account). ``purge()`` drops them with the other closed mail."""
        return self._closed_messages(account_id, (_UNDELIVERABLE,))

    def _closed_messages(
        self, account_id: str | None, reasons: tuple[str, ...]
    ) -> list[OutboxMessage]:
        """Cancelled outbox rows whose ``last_error`` begins with one of *reasons*,
        oldest first; only *account_id*'s if given."""
        if account_id is not None:
            _check_id("account_id", account_id)
        with self._read() as uow:
            if account_id is not None:
                self._account(uow, account_id)
            return [
                m
                for m in uow.outbox(status="cancelled")
                if (m.last_error or "").startswith(reasons) and account_id in (None, m.account_id)
            ]

    def retry_waiting(self, *, actor_id: str, account_id: str | None = None) -> list[OutboxMessage]:
        """Make the mail waiting out its retry backoff due now (only *account_id*'s if
        given): after a broken mail setting was fixed, the next ``deliver_pending()``
        sends it instead of waiting up to ``max_retry_backoff``. Returns the rows made
        due, oldest first.

        Only pending mail that is not leased moves: a row a delivery run (or the call
        that wrote it) holds to send right now stays its sender's, so nothing goes twice;
        closed mail (sent, cancelled, undeliverable) stays closed. Only the vendor may
        (*actor_id* ``teamaccess.SYSTEM``). Each account whose mail moved gets a
        ``mail.retried_now`` event naming its messages. Inside ``PostgresStore.join()``
        it needs *account_id* (``ValidationError`` without: every account's mail would
        be locked in the application's one transaction).
        """
        actor_id = _check_id("actor_id", actor_id)
        if account_id is not None:
            account_id = _check_id("account_id", account_id)
        if actor_id != SYSTEM:
            # Before the account is looked up: a customer learns nothing about other ids.
            raise PermissionDenied(
                "only the vendor (teamaccess.SYSTEM) may make waiting mail due now: it "
                "is for the operator who fixed the mail setup; a customer's invitation "
                "is sent again with resend_invitation()",
                user_id=actor_id,
                account_id=account_id,
            )
        if account_id is None and self._mail_waits():
            # Inside PostgresStore.join() each account's unit is a savepoint of the host's
            # one transaction: it would hold every waiting row and every account's lock
            # until the host commits, so a writer holding an account and reaching for its
            # mail deadlocks with it, and thousands of accounts run out of lock slots.
            raise ValidationError(
                "retry_waiting() for every account cannot run inside store.join(): it "
                "would lock every account's waiting mail in the application's one "
                "transaction; call it outside the join (each account is then its own "
                "transaction), or per account with account_id="
            )
        if account_id is None:
            with self._read() as uow:
                listing = getattr(uow, "waiting_accounts", None)
                accounts = listing(now=self.now()) if callable(listing) else None
            if accounts is not None:
                # One unit per account, its lock taken before its rows (PostgreSQL): one
                # unit over every account held the rows, then waited for each account's
                # lock to write its event, so a writer holding an account's lock and
                # waiting for its mail (a resend, a revocation) deadlocked with it, and
                # with thousands of accounts the server ran out of lock slots.
                made = []
                for each in accounts:
                    made += self._retry_waiting_in(each, missing_ok=True)
                return sorted(made, key=lambda row: row.created_at)
        return self._retry_waiting_in(account_id)

    def _retry_waiting_in(
        self, account_id: str | None, *, missing_ok: bool = False
    ) -> list[OutboxMessage]:
        """:meth:`retry_waiting` in one unit: *account_id*'s waiting mail, or every
        account's (``None``); nothing for an account gone since, with *missing_ok*."""
        with self._write() as work:
            retry = getattr(work.uow, "retry_outbox", None)
            if not callable(retry):
                # Not emulated with outbox() and update_outbox(): a store written before
                # the lease was recorded apart may not keep leased_until, and would give
                # a row its sender holds as waiting, which then went out twice.
                raise StorageError(
                    "this store does not implement UnitOfWork.retry_outbox(), which "
                    "retry_waiting() needs to tell waiting mail from mail a worker is "
                    "sending; implement it, storing OutboxMessage.leased_until "
                    "(teamaccess.testing.contract.StoreContract tests both), or wait for "
                    "the backoff (max_retry_backoff)"
                )
            # Its lock before its rows (the account's read takes it on PostgreSQL): the
            # order every writer of an account keeps.
            if account_id is not None and work.uow.get_account(account_id) is None:
                if missing_ok:
                    return []
                raise _no_account(account_id)
            made: list[OutboxMessage] = retry(now=work.now, account_id=account_id)
            by_account: dict[str, list[str]] = {}
            for row in made:
                by_account.setdefault(row.account_id, []).append(row.id)
            for touched, ids in by_account.items():
                self._audit(
                    work, touched, SYSTEM, "mail.retried_now", touched, messages=ids,
                    count=len(ids),
                )  # fmt: skip
        return made

    def deliver_pending(
        self, *, limit: int = 100, stop: Callable[[], bool] | None = None
    ) -> list[OutboxMessage]:
        """Send the due outbox messages, oldest first, at most *limit*; returns the rows
        as they are afterwards (sent, failed and waiting again, or cancelled).

        The run first claims its rows with a lease (``delivery_lease``), so workers
        running at once on one database never send one message twice, and a worker that
        dies mid-send leaves its messages due again when the lease ends. A mailer with a
        ``batch()`` method (see ``BatchMailer``) sends the whole run over one batch;
        each message still succeeds or fails on its own. *stop* is asked before each
        message; once it says ``True`` the run ends and the messages it has not tried are
        released, due at once for the next run.

        An invitation mail gets a fresh token (the earlier one was never delivered, and
        tokens are never stored), so only the newest mail's link works.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive integer, not {limit!r}")
        limit = min(limit, 2**62)  # a SQL LIMIT is 64 bits; more means "all"
        if stop is not None and not callable(stop):
            raise ValidationError(f"stop must be a callable returning a bool, not {stop!r}")
        if self._mail_waits():
            raise ValidationError(
                "deliver_pending() sends mail, which must not leave before the host "
                "application's transaction commits; call it after leaving store.join()"
            )
        if self._mailer is None:
            raise ValidationError(
                "deliver_pending() needs a mailer, and this TeamAccess was built with "
                "mailer=None (queue-only); call it on the worker's TeamAccess, built with "
                "the same store and a mailer such as SmtpMailer(...), or run teamaccess "
                "deliver --watch"
            )
        # What an earlier run sent but could not record goes first: claimed again once
        # its lease ends, it would go twice.
        self._record_late()
        now = self.now()
        lease_until = now + self.delivery_lease
        claimed = self._claim(now, lease_until, limit)
        if not claimed:
            return []
        # Start no send the lease may not cover: past this point another worker could
        # claim the row while its mail is still on the wire.
        last_start = lease_until - self.delivery_lease / 5
        results: list[OutboxMessage] = []
        # The next notification's row as stored, read by the unit that records the send
        # before it (one read in a unit already open); see _current().
        ahead: dict[str, OutboxMessage | None] = {}
        with self._sending() as mailer:
            smtp = sys.modules.get("teamaccess._mail.smtp")  # loaded if mailer is SmtpMailer's
            sends_wire = _sends_wire(smtp, mailer)
            for index, row in enumerate(claimed):
                if (stop is not None and stop()) or self._past(last_start, claimed[index:], now):
                    self._release(claimed[index:])
                    break
                if row.kind != "invitation":
                    current = self._current(row, ahead, claimed[index:])
                    if current is None:
                        continue
                    row = current
                ahead = {}
                following = claimed[index + 1] if index + 1 < len(claimed) else None
                peek: tuple[str, dict[str, OutboxMessage | None]] | None = None
                if following is not None and following.kind != "invitation":
                    peek = (following.id, ahead)
                if sends_wire and row.kind != "invitation" and row.message is not None:
                    outcome = self._send_stored(row, mailer._send_wire)  # type: ignore[attr-defined]
                    if not isinstance(outcome, _FullWay):
                        results.append(self._record_run(row, outcome, peek))
                        continue
                try:
                    prepared = self._prepare(row)
                except StorageError:
                    self._release(claimed[index:])
                    raise
                except ClockError:
                    # Not the row's fault (that would count as a failed try): the run
                    # ends, and the row and those behind it are due again at once.
                    self._release(claimed[index:], now)
                    raise
                except Exception as exc:
                    # A row whose mail cannot be rendered (say, a vendor template that
                    # raises) must not block the rows behind it: recorded, it backs off.
                    results.append(self._record(row, f"{type(exc).__name__}: {exc}"[:500]))
                    continue
                if prepared is None:
                    continue
                if isinstance(prepared, OutboxMessage):
                    results.append(prepared)  # cancelled: its invitation is not pending
                    continue
                # A queued notification was parsed from the row's bytes (an invitation's
                # mail is rendered now): the last check may use them.
                source = row.message if row.kind != "invitation" else None
                sent = self._send(row, prepared, mailer, source)
                results.append(self._record_run(row, sent, peek))
        return results

    def _current(
        self,
        row: OutboxMessage,
        ahead: dict[str, OutboxMessage | None],
        rest: Sequence[OutboxMessage],
    ) -> OutboxMessage | None:
        """The claimed notification *row* as stored now, to send; ``None`` if it is no
        longer this run's to send: deleted (its account was, or an erasure took it),
        cancelled, or claimed by another run. Read just before the send, so a deletion
        committed while the run sent the rows before it stops its mail; one committed
        later cannot (the message is on its way). The row read also carries a message an
        erasure rewrote since the claim. *ahead* holds it if the unit that recorded the
        previous row read it; else it is read now (a StorageError releases *rest*)."""
        if row.id in ahead:
            current = ahead[row.id]
        else:
            try:
                with self._read() as uow:
                    current = uow.get_outbox(row.id)
            except StorageError:
                self._release(rest)
                raise
        return current if _still_ours(current, row) else None

    def _past(self, last_start: datetime, rest: Sequence[OutboxMessage], now: datetime) -> bool:
        """Whether the clock reads *last_start* or later. A clock that fails now ends the
        run: what was sent is recorded, and *rest* is due again at once (from the run's
        *now*), not held for its lease."""
        try:
            return self.now() >= last_start
        except TeamAccessError:
            self._release(rest, now)
            raise

    def _claim(self, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
        with self._store.begin() as uow:
            claim = getattr(uow, "claim_outbox", None)
            if claim is not None:
                claimed: list[OutboxMessage] = claim(now=now, lease_until=lease_until, limit=limit)
            else:
                # A backend written before claim_outbox(): its begin() serialises writers
                # (the Store protocol says so), so reading and moving the rows in one
                # unit is the same atomic claim.
                claimed = [
                    attrs.evolve(row, next_attempt_at=lease_until, leased_until=lease_until)
                    for row in uow.outbox(status="pending", due_before=now, limit=limit)
                ]
                for row in claimed:
                    uow.update_outbox(row)
            uow.commit()
        return claimed

    def _release(self, rows: Sequence[OutboxMessage], now: datetime | None = None) -> None:
        """Hand back claimed rows not tried, due at once (those still ours): due from
        *now*, by default the clock's."""
        if not rows:
            return
        now = self.now() if now is None else now
        with self._record_unit() as uow:
            for row in rows:
                current = uow.get_outbox(row.id)
                if _still_ours(current, row):
                    assert current is not None
                    uow.update_outbox(attrs.evolve(current, next_attempt_at=now, leased_until=None))
            uow.commit()

    def _prepare(self, row: OutboxMessage) -> EmailMessage | OutboxMessage | None:
        """The message of a claimed row; the row cancelled if its invitation is no longer
        to be mailed; ``None`` if the row is no longer this run's."""
        if row.kind != "invitation":
            from .._mail.mailers import parse_stored

            assert row.message is not None
            return parse_stored(row.message)
        with self._write() as work:
            current = work.uow.get_outbox(row.id)
            # Re-read under the write lock: if the lease ran out and another run took the
            # row, minting a token here would kill the link that run mails.
            if not _still_ours(current, row):
                return None
            assert current is not None
            inv, inviter = self._stored_invitation(work.uow, current.invitation_id or "")
            if (
                inv is None
                or inv.status != "pending"
                or inv.is_expired(work.now)
                # Acceptance would call it revoked; do not mail a link that cannot work.
                or self._inviter_lost(inv, inviter)
            ):
                cancelled = attrs.evolve(current, status="cancelled", leased_until=None)
                work.uow.update_outbox(cancelled)
                return cancelled
            account = self._account(work.uow, inv.account_id)
            # SYSTEM (the vendor's staff) invites on the owner's behalf, so the mail names
            # the owner.
            inviter_email = inviter.email if inviter is not None else account.owner_email
            # The token is minted now, as the mail is built: tokens are never stored, and
            # one of an earlier attempt was never delivered. Only its hash replaces the old.
            token, digest = self._tokens.issue(inv.id)
            inv = attrs.evolve(inv, token_hash=digest)
            with _together(work.uow):  # the new hash and its event, neither read back
                work.uow.update_invitation(inv)
                if current.attempts:
                    # A new link replaces one already mailed (or tried): a change, audited.
                    self._audit(
                        work, inv.account_id, SYSTEM, "invitation.mail_retried", inv.id,
                        email=inv.email, attempt=current.attempts + 1,
                    )  # fmt: skip
        # Rendered after the commit, outside the write lock. If it fails, the caller
        # records the failure; the row backs off and is retried.
        return self._render_invitation(account, inv, inviter_email, token, current, work.now)

"""Mail delivery: the outbox, rendering invitation mail, sending, retrying."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeGuard

import attrs

from .._domain import (
    SYSTEM,
    Account,
    Invitation,
    Member,
    OutboxMessage,
)
from .._errors import (
    ClockError,
    DeliveryFailed,
    DeliveryRefused,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .._ports import BatchMailer, Mailer, UnitOfWork

if TYPE_CHECKING:
    from email.message import EmailMessage
    from types import ModuleType
from .checks import (
    _check_id,
    _log,
    _numbered_id,
    _together,
    _token_hex,
    _Work,
)
from .core import _Core

__all__ = ["_Delivery"]


# Classes whose every instance is a BatchMailer: they define batch() themselves.
_BATCH_CLASSES: set[type] = set()


def _is_batch_mailer(mailer: Mailer) -> TypeGuard[BatchMailer]:
    """``isinstance(mailer, BatchMailer)``, known per class once an instance passed: the
    runtime protocol check walks the protocol's members on every call, about 10 us of
    each mail sent at once. An instance of a class that has ``batch()`` is one whatever
    its own attributes say, so such a class is kept; any other mailer is asked anew
    (one with no ``batch`` at all is none unless its class is registered as one)."""
    cls = type(mailer)
    if cls in _BATCH_CLASSES:
        return True
    if getattr(mailer, "batch", None) is None and not issubclass(cls, BatchMailer):
        return False
    if not isinstance(mailer, BatchMailer):
        return False
    if issubclass(cls, BatchMailer):
        _BATCH_CLASSES.add(cls)
    return True


class _Refusal(str):
    """The error text of a message the last check refused: recorded, never retried."""


class _Bounced(str):
    """The error text of a message the mailer says was refused for good
    (``DeliveryRefused``): retried until ``give_up_after`` such refusals in a row."""


#: How a pending row's ``last_error`` counts its permanent refusals in a row. The count
#: lives in the reason the row shows (every store keeps ``last_error`` as written), so no
#: store, schema or contract changes; any other failure writes its own text over it,
#: and so starts the count afresh.
#: How ``last_error`` begins on a row closed after them.
_UNDELIVERABLE: Final = "undeliverable: "
#: How ``last_error`` begins on a row closed after waiting ``expire_after``.
_EXPIRED: Final = _UNDELIVERABLE + "expired: "


def _days(span: timedelta) -> str:
    """*span* as a person reads it: days and hours, or hours and minutes."""
    hours, rest = divmod(int(span.total_seconds()), 3600)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h {rest // 60} min"


#: How ``last_error`` begins on a row the last check refused (closed, never retried).
_REFUSED: Final = "refused before sending, and not retried: "
# Patterns as text, compiled by re on first use (re caches them): only a failed or
# refused mail needs them, and compiling both cost import teamaccess 0.25 ms.
_IN_A_ROW: Final = r"refused for good \((\d+) in a row"


class _Delivery(_Core):
    """Mail delivery: the outbox, rendering invitation mail, sending, retrying."""

    #: Called with the outbox row of each message once it is recorded as sent (the command
    #: line says where mail went). A hook, not a wrapper around the mailer: the service
    #: sends through the mailer itself, so ``SmtpMailer`` keeps sending checked bytes and
    #: an override keeps its calls.
    _on_sent: Callable[[OutboxMessage], None] | None = None

    #: See :meth:`_unrecorded`; made on first use.
    _late_records: dict[str, tuple[OutboxMessage, datetime]] | None = None

    def accept_link(self, token: str) -> str:
        """The link of the invitation mail for *token*, built from ``accept_url``.

        For a host that shows or sends the link itself; like the token, never log it.
        """
        # Not check_line: its message is fine, but a token is never echoed in any error.
        if not isinstance(token, str) or not token.isascii():
            got = "non-ASCII text" if isinstance(token, str) else type(token).__name__
            raise ValidationError(
                f"token must be the string invite() or resend_invitation() returned, not {got}"
            )
        from urllib.parse import quote

        quoted = quote(token, safe="")
        if "{token}" in self.accept_url:
            return self.accept_url.replace("{token}", quoted)
        sep = "&" if "?" in self.accept_url else "?"
        return f"{self.accept_url}{sep}token={quoted}"

    def _due_at(self, now: datetime) -> datetime:
        """When a new outbox row is first due: after a lease, during which the call that
        wrote it sends it (``"now"``); at once if nobody sends it now (``"queue"``, or
        held back for the host's commit inside ``store.join()``)."""
        if self.delivery == "queue" or self._mailer is None or self._mail_waits():
            return now
        return now + self.delivery_lease

    def _invitation_row(self, inv: Invitation, now: datetime) -> OutboxMessage:
        return OutboxMessage(
            id=_numbered_id("msg"),
            account_id=inv.account_id,
            kind="invitation",
            recipient=inv.email,
            message_id=f"<{_token_hex(12)}@{self._msgid_domain}>",
            created_at=now,
            next_attempt_at=self._due_at(now),
            invitation_id=inv.id,
        )

    def _queue_invitation(
        self,
        work: _Work,
        inv: Invitation,
        *,
        fresh: bool = False,
        row: OutboxMessage | None = None,
    ) -> OutboxMessage:
        """Write the invitation's outbox row (*row* if its mail was rendered already)."""
        if not fresh:  # a new invitation has no earlier mail to cancel: one query less
            self._cancel_mail(work, inv.id)
        if row is None:
            row = self._invitation_row(inv, work.now)
        work.uow.add_outbox(row)
        return row

    @staticmethod
    def _cancel_mail(work: _Work, invitation_id: str) -> None:
        """An invitation that is no longer pending must not be mailed (again)."""
        cancel = getattr(work.uow, "cancel_outbox", None)
        if cancel is not None:  # one statement (CombinedReads)
            cancel(invitation_id)
            return
        for row in work.uow.outbox(status="pending", invitation_id=invitation_id):
            work.uow.update_outbox(attrs.evolve(row, status="cancelled"))

    @staticmethod
    def _stored_invitation(
        uow: UnitOfWork, invitation_id: str
    ) -> tuple[Invitation | None, Member | None]:
        """``get_invitation()`` and the inviter's membership (``None`` for SYSTEM), in one
        read where the unit has ``invitation_and_inviter()`` (``CombinedReads``)."""
        both = getattr(uow, "invitation_and_inviter", None)
        if both is None:
            inv = uow.get_invitation(invitation_id)
            if inv is None or inv.invited_by == SYSTEM:
                return inv, None
            return inv, uow.get_member(inv.account_id, inv.invited_by)
        found: tuple[Invitation | None, Member | None] = both(invitation_id)
        inv, inviter = found
        return inv, None if inv is None or inv.invited_by == SYSTEM else inviter

    def _render_invitation(
        self,
        account: Account,
        inv: Invitation,
        inviter_email: str,
        token: str,
        row: OutboxMessage,
        now: datetime,
    ) -> EmailMessage:
        """The invitation mail; called outside any write unit, so rendering never holds
        the store's write lock."""
        # Absolute: a relative import inside a function resolves its package through
        # importlib's Python code on every call (about 2 us; 0.7 us this way).
        from teamaccess._mail.mailers import build_message
        from teamaccess._mail.templates import InvitationContext

        language = inv.language
        labels = [
            p.label_for(language)
            for p in self.catalog
            if not inv.permissions.is_all and p.name in inv.permissions.names
        ]
        scoped = inv.permissions.scoped()
        scoped_labels = [
            (p.label_for(language), sorted(scoped[p.name]))
            for p in self.catalog
            if p.name in scoped
        ]
        rendered = self.templates.invitation(
            InvitationContext(
                language=language,
                brand=getattr(self.templates, "brand", None) or "",
                account_name=account.name,
                inviter_email=inviter_email,
                invitee_email=inv.email,
                accept_url=self.accept_link(token),
                expires_at=inv.expires_at,
                all_permissions=inv.permissions.is_all,
                permission_labels=labels,
                scoped_permissions=scoped_labels,
                note=inv.note,
                access_until=inv.access_until,
            )
        )
        return build_message(
            sender=self.sender,
            to=inv.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=row.message_id,
            language=language,
            date=now,
        )

    def _send(
        self,
        row: OutboxMessage,
        message: EmailMessage,
        mailer: Mailer,
        source: bytes | None = None,
    ) -> str | None:
        """Hand *message* to *mailer* (the run's, see :meth:`_sending`) once it passed the last
        check; the error text if it failed (a :class:`_Refusal` if the check refused it:
        it is never sent). *source*: the bytes *message* was parsed from, if it was."""
        from teamaccess._mail.gate import (  # absolute: see _render_invitation()
            MailRefused,
            check_sent,
            check_stored,
            scrub_error,
        )

        target = mailer
        smtp = sys.modules.get("teamaccess._mail.smtp")  # loaded if target is an SmtpMailer
        # SmtpMailer (and its batches) sends the bytes the last check read, as they are:
        # the message is not written a second time, and nothing can differ between what
        # was checked and what is sent. Another mailer writes *message* itself, so its
        # check writes it out too, whatever the message was parsed from; so does a
        # subclass of SmtpMailer that overrides send(), which must see every message.
        sends_wire = _sends_wire(smtp, target)
        try:
            if source is not None:
                # Stored bytes go out as they are (SmtpMailer): they must be what was built
                # as a server reads them, not only as the stdlib parser reads them.
                check_stored(source)
            envelope, wire, sender = check_sent(
                message, row.recipient, source if sends_wire else None
            )
        except MailRefused as exc:
            return _refused(row, exc)
        try:
            if sends_wire:
                # From the sender the check approved: read in that one place.
                target._send_checked(message, wire, envelope, sender)  # type: ignore[attr-defined]
            elif self._mailer_takes_envelope(target):
                target.send(message, envelope_to=envelope)  # type: ignore[call-arg]
            else:
                target.send(message)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if row.kind == "invitation":
                # A server's rejection may quote the message, and with it the accept link.
                error = scrub_error(error, message)
            return _failed(row, error, bounced=isinstance(exc, DeliveryRefused))
        return None

    @staticmethod
    def _send_stored(
        row: OutboxMessage, send_wire: Callable[[bytes, str, str], None]
    ) -> str | _FullWay | None:
        """Send a queued notification's stored bytes through ``SmtpMailer`` (*send_wire*)
        as :meth:`_send` would, checked on the bytes without parsing the message; or
        ``FULL_WAY`` if they are not of the plain shape that check reads (see
        ``gate.stored_wire``), for :meth:`_send` to decide."""
        from .._mail.gate import MailRefused, check_stored, stored_wire

        assert row.message is not None
        try:
            check_stored(row.message)
        except MailRefused as exc:
            return _refused(row, exc)
        try:
            checked = stored_wire(row.message, row.recipient)
        except Exception:
            # Whatever this reading trips over, the full way reads it too and decides.
            checked = None
        if checked is None:
            return FULL_WAY
        envelope, wire, sender = checked
        try:
            send_wire(wire, sender, envelope)
        except Exception as exc:
            # No invitation, so no link to scrub from the error.
            return _failed(
                row, f"{type(exc).__name__}: {exc}", bounced=isinstance(exc, DeliveryRefused)
            )
        return None

    def _mailer_takes_envelope(self, mailer: Mailer) -> bool:
        """True if the mailer's ``send()`` takes ``envelope_to=``, the checked recipient
        (``SmtpMailer`` and its batches do); a ``Mailer`` that takes only the message keeps
        working. Known per class (the service's mailer, a batch's mailer)."""
        cache: dict[type, bool] | None = getattr(self, "_envelope_kw", None)
        if cache is None:
            cache = {}
            self._envelope_kw = cache
        known = cache.get(type(mailer))
        if known is None:
            import inspect

            try:
                params = inspect.signature(mailer.send).parameters
            except (TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            known = cache[type(mailer)] = "envelope_to" in params
        return known

    def _record_unit(self) -> AbstractContextManager[UnitOfWork]:
        if self._durable_hint:
            try:
                return self._store.begin(durable=False)
            except TypeError:
                # A backend written before Store.begin() took durable= (or a wrapper that
                # forwards to one) keeps working: its delivery records are durable.
                self._durable_hint = False
        return self._store.begin()

    def _record(
        self,
        row: OutboxMessage,
        error: str | None,
        *,
        returned: bool = True,
        ahead: tuple[str, dict[str, OutboxMessage | None]] | None = None,
    ) -> OutboxMessage:
        """Record how sending *row* went; the row as stored now. A caller that needs no
        row back (``returned=False``) gets *row* for a sent mail, which is then recorded
        by one ``UPDATE`` where the unit has ``update_outbox_sent()`` (``CombinedReads``).
        *ahead*: the id of a row to read in the same unit, and the dict that gets it (the
        row as stored, ``None`` if it is gone), for the run to check before it sends it.
        """
        now = self._send_time(row)
        work: _Work | None = None
        # Not durable: lost in a power cut, this record means the mail goes out again (at
        # least once, as promised; an invitation's with a new link). It saves an fsync per
        # mail.
        with self._record_unit() as uow:
            sent = (
                None if returned or error is not None else getattr(uow, "update_outbox_sent", None)
            )
            if sent is not None:
                sent(row.id, now)
                done = row
            else:
                current = uow.get_outbox(row.id)
                done = self._outcome(current or row, error, now)
                uow.update_outbox(done)
                expired = (done.last_error or "").startswith(_EXPIRED)
                # A row deleted meanwhile (an erasure, a deleted account) gets nothing
                # written back, not even an event that names its recipient.
                closed = current is not None and done.status == "cancelled"
                if expired and closed and error is not None:
                    # The owner sees in the account's log that the mail never went out.
                    work = _Work(uow, now)
                    self._audit(
                        work, done.account_id, SYSTEM, "mail.expired", done.id,
                        email=done.recipient, kind=done.kind, invitation=done.invitation_id,
                        attempts=done.attempts, error=str(error),
                    )  # fmt: skip
                elif isinstance(error, _Bounced) and closed:
                    # The owner sees in the account's log that mail to this address
                    # bounced (a contact to correct, an invitation to send elsewhere).
                    work = _Work(uow, now)
                    self._audit(
                        work, done.account_id, SYSTEM, "mail.bounced", done.id,
                        email=done.recipient, kind=done.kind, invitation=done.invitation_id,
                        attempts=done.attempts, error=str(error),
                    )  # fmt: skip
            if ahead is not None:
                # A look ahead for the run, never a reason to lose this record: a row it
                # cannot read (damaged) is read again before its send, which then fails.
                with suppress(StorageError):
                    ahead[1][ahead[0]] = uow.get_outbox(ahead[0])
            uow.commit()
        if work is not None:
            _log().error(
                "mail %s to %s closed: %s",
                done.id, masked(done.recipient), masked_text(done.last_error or ""),
            )  # fmt: skip
            self._tell_listeners(work.events)
        if error is None and self._on_sent is not None:
            self._on_sent(done)
        return done

    def _send_time(self, row: OutboxMessage) -> datetime:
        """The time to record a try to send *row* at: the clock's; if the clock fails now
        that the mail may have left, when the row's lease for this try began (a reading
        that was checked). The record must not be lost to the clock: the mail would go
        again once the lease ended."""
        try:
            return self.now()
        except TeamAccessError:
            return row.next_attempt_at - self.delivery_lease

    def _unrecorded(self) -> dict[str, tuple[OutboxMessage, datetime]]:
        """Messages this instance sent whose record failed (the store was locked, full,
        or unreachable), by id: the row as it was sent, and when."""
        late = self._late_records
        if late is None:
            late = self._late_records = {}
        return late

    def _keep_unrecorded(self, row: OutboxMessage, exc: StorageError) -> None:
        """Remember a sent message the store could not record, to record it later: left
        as it is, the row would be due again once its lease ends, and go twice."""
        self._unrecorded()[row.id] = (row, self._send_time(row))
        _log().error(
            "mail %s to %s was sent, but recording it failed (%s); recorded on the next "
            "delivery by this process, else sent again once its lease ends",
            row.id, masked(row.recipient), masked_text(str(exc)),
        )  # fmt: skip

    def _record_late(self) -> None:
        """Record the sends :meth:`_keep_unrecorded` remembered, before the lease of their
        rows ends; ``StorageError`` if the store still fails (they stay remembered)."""
        late = self._unrecorded()
        if not late:
            return
        done: list[OutboxMessage] = []
        with self._record_unit() as uow:
            for row, at in list(late.values()):
                current = uow.get_outbox(row.id)
                # Another run took the row once the lease ended: it is that run's now.
                if _still_ours(current, row):
                    assert current is not None
                    done.append(self._outcome(current, None, at))
                    uow.update_outbox(done[-1])
            uow.commit()
        for row, _at in list(late.values()):
            late.pop(row.id, None)
        if self._on_sent is not None:
            for sent in done:
                self._on_sent(sent)

    def _record_run(
        self,
        row: OutboxMessage,
        error: str | None,
        ahead: tuple[str, dict[str, OutboxMessage | None]] | None = None,
    ) -> OutboxMessage:
        """:meth:`_record` in a ``deliver_pending()`` run; a sent message the store fails
        to record is remembered and named in the ``StorageError``."""
        try:
            return self._record(row, error, ahead=ahead)
        except StorageError as exc:
            if error is not None:
                raise
            self._keep_unrecorded(row, exc)
            raise StorageError(
                f"mail {row.id} was sent, but recording it failed: {exc}. The next "
                "deliver_pending() of this TeamAccess records it first; the messages this "
                "run did not try wait for their delivery lease to end"
            ) from exc

    def _outcome(self, current: OutboxMessage, error: str | None, now: datetime) -> OutboxMessage:
        """*current*, the row as stored, after a try to send it that ended in *error*."""
        if error is None:
            return attrs.evolve(
                current, status="sent", attempts=current.attempts + 1, sent_at=now,
                last_error=None,
            )  # fmt: skip
        if isinstance(error, _Refusal):
            # Sending it again would be refused again: the row is closed with its reason.
            return _closed(current, str(error), now)
        if isinstance(error, _Bounced):
            refusals = _refusals_in_row(current.last_error) + 1
            if refusals >= self.give_up_after:
                # The server said so often enough: a real MTA would have bounced it.
                return _closed(
                    current,
                    f"{_UNDELIVERABLE}refused for good {refusals} time(s) in a row, "
                    f"not retried: {error}",
                    now,
                )
            error = (
                f"refused for good ({refusals} in a row; closed at {self.give_up_after}): {error}"
            )
        age = now - current.created_at
        if age >= self.expire_after:
            # Past the queue lifetime: a mail server would have returned it by now.
            return _closed(
                current,
                f"{_EXPIRED}waited {_days(age)} in the outbox (expire_after "
                f"{_days(self.expire_after)}), not retried; last error: {error}",
                now,
            )
        # The factor is capped where the cap takes over: timedelta overflows near 2**30
        # days, which a row failing for weeks would otherwise reach (with a backoff of
        # a day, at the 31st failure).
        factor = min(
            2 ** min(current.attempts, 30), self.max_retry_backoff // self.retry_backoff + 1
        )
        backoff = min(self.retry_backoff * factor, self.max_retry_backoff)
        return attrs.evolve(
            current, attempts=current.attempts + 1, last_error=error,
            next_attempt_at=now + backoff,
        )  # fmt: skip

    def _deliver_now(
        self,
        batch: Sequence[tuple[OutboxMessage, EmailMessage]],
        invitation: Invitation | None,
        unbuilt: Sequence[str] = (),
    ) -> None:
        """Send *batch*; *unbuilt* names rows whose message could not even be built.

        Inside the host's transaction nothing is sent: the rows wait in the outbox; so
        they do without a mailer (``delivery`` set to ``"now"`` after ``mailer=None``).
        """
        if self._mail_waits() or self._mailer is None:
            batch = ()
        failed = list(unbuilt)
        refused = len(unbuilt)
        bounced = 0  # refused by the server give_up_after times in a row: closed
        stopped: StorageError | None = None
        if batch and self._late_records:
            with suppress(StorageError):  # still failing: they wait for the next try
                self._record_late()
        with self._sending(bool(batch)) as mailer:
            for index, (row, message) in enumerate(batch):
                error = self._send(row, message, mailer)
                if error is not None:
                    failed.append(row.id)
                    refused += isinstance(error, _Refusal)
                try:
                    done = self._record(row, error, returned=False)
                    bounced += done.status == "cancelled" and isinstance(error, _Bounced)
                except StorageError as exc:
                    # The call's rows are committed; only how sending went is not. The
                    # store is failing: send no more now (each would go unrecorded, and
                    # so go again); the rest wait in the outbox for their lease to end.
                    if error is None:
                        self._keep_unrecorded(row, exc)
                    failed.extend(r.id for r, _ in batch[index + 1 :])
                    stopped = exc
                    break
        if stopped is not None and failed:
            if invitation is not None:
                what = (
                    f"the invitation {invitation.id} is saved and deliver_pending() retries "
                    "its mail once its delivery lease ends"
                )
            else:
                what = (
                    "they wait in the outbox and deliver_pending() sends them once their "
                    "delivery lease ends; do not call notify() again, or the messages that "
                    "went now go twice"
                )
            raise DeliveryFailed(
                f"{len(failed)} of {len(batch) + len(unbuilt)} message(s) could not be sent "
                f"now: the database failed while recording how sending went ({stopped}); "
                f"{what}",
                message_ids=failed,
                invitation=invitation,
            )
        if failed:
            if refused == len(failed):
                what = (
                    "the last check before sending refused them (a value would have changed "
                    "the mail's headers or recipients); pending_messages() does not list "
                    "them, their outbox rows say why"
                )
            elif refused + bounced == len(failed):
                what = (
                    "the last check before sending, or the mail server for good, refused "
                    "them; pending_messages() does not list them, their outbox rows say why"
                )
            elif invitation is not None:
                what = (
                    f"the invitation {invitation.id} is saved and its mail will be retried "
                    "by deliver_pending() (or send it again with resend_invitation())"
                )
            else:
                what = "they wait in the outbox and deliver_pending() retries them"
            raise DeliveryFailed(
                f"{len(failed)} of {len(batch) + len(unbuilt)} message(s) could not be sent "
                f"now; {what}",
                message_ids=failed,
                invitation=invitation,
            )

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
                    attrs.evolve(row, next_attempt_at=lease_until)
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
                    uow.update_outbox(attrs.evolve(current, next_attempt_at=now))
            uow.commit()

    @contextmanager
    def _sending(self, needed: bool = True) -> Iterator[Mailer]:
        """The mailer for one delivery run: one batch of a ``BatchMailer``, else itself
        (and no batch opened for a run with nothing to send)."""
        mailer = self._mailer
        if mailer is None:
            # Nothing is sent without one: deliver_pending() refuses to run, and a call
            # under delivery="now" leaves its mail waiting (see _deliver_now()).
            yield _Unavailable(ValidationError("this TeamAccess has no mailer (mailer=None)"))
            return
        if not needed or not _is_batch_mailer(mailer):
            yield mailer
            return
        try:
            batch = mailer.batch()
            inner = batch.__enter__()
        except Exception as exc:
            # No batch (say, the server is down): each message of the run fails with this
            # error and backs off, as it would have one by one.
            yield _Unavailable(exc)
            return
        failed = True
        try:
            yield inner
            failed = False
        finally:
            try:
                if failed:
                    batch.__exit__(*sys.exc_info())
                else:
                    batch.__exit__(None, None, None)
            except Exception as exc:
                # Every message already has its outcome recorded; a failing QUIT changes
                # none of them.
                _log().warning(
                    "closing the mail batch failed: %s: %s",
                    type(exc).__name__,
                    masked_text(str(exc)),
                )

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
                cancelled = attrs.evolve(current, status="cancelled")
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


class _FullWay:
    """A stored message to parse and check in full before sending."""


FULL_WAY: Final = _FullWay()


def _sends_wire(smtp: ModuleType | None, mailer: Mailer) -> bool:
    """Whether *mailer* is an ``SmtpMailer`` (or its batch) or a ``FileMailer`` that takes
    checked bytes rather than a ``send()`` call; *smtp* is the SMTP module if loaded (else
    the mailer cannot be an ``SmtpMailer``)."""
    # loaded with the last check, which uses it; absolute: see _render_invitation()
    from teamaccess._mail.mailers import FileMailer

    if smtp is not None and isinstance(mailer, smtp.SmtpMailer | smtp._Batch):
        return bool(mailer._sends_wire())
    return isinstance(mailer, FileMailer) and mailer._sends_wire()


#: An address inside a text (a server's reply, an error): a local part and a domain.
_ADDRESS_IN_TEXT: Final = r"(?<![\w.+-])([\w.+%=!#$&'*/?^`{|}~-]+)@([\w-]+(?:\.[\w-]+)+)"


def masked(address: str) -> str:
    """*address* as a log line shows it: the first character of its local part and its
    domain (``j***@example.com``). Log files outlive an erasure, and are not the store's
    to rewrite; the outbox id next to it finds the row."""
    local, at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


def masked_text(text: str) -> str:
    """*text* (a server's reply, an error) with every address in it masked: a server's
    refusal usually repeats the recipient, and may name others."""
    return re.sub(_ADDRESS_IN_TEXT, lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)


def _refused(row: OutboxMessage, exc: Exception) -> _Refusal:
    refusal = _Refusal(f"{_REFUSED}{exc}")
    _log().error("mail %s to %s %s", row.id, masked(row.recipient), masked_text(refusal))
    return refusal


def _failed(row: OutboxMessage, error: str, *, bounced: bool = False) -> str:
    error = error[:500]
    # Never log the message: an invitation carries its token in the body.
    _log().warning(
        "delivery of %s to %s failed: %s", row.id, masked(row.recipient), masked_text(error)
    )
    return _Bounced(error) if bounced else error


def _closed(current: OutboxMessage, reason: str, now: datetime) -> OutboxMessage:
    """*current* after a try that closes it for good (refused, bounced, expired).

    A closed row is never due again, so its ``next_attempt_at`` keeps when it was closed,
    which ``teamaccess deliver --list --refused`` shows."""
    return attrs.evolve(
        current, status="cancelled", attempts=current.attempts + 1, last_error=reason,
        next_attempt_at=now,
    )  # fmt: skip


def _refusals_in_row(last_error: str | None) -> int:
    """The permanent refusals in a row that *last_error*, a pending row's, counts."""
    found = re.match(_IN_A_ROW, last_error or "")
    return int(found[1]) if found else 0


def _still_ours(current: OutboxMessage | None, claimed: OutboxMessage) -> bool:
    """Whether *current* is still the pending row as this run claimed it.

    A row's lease only ever moves forward (the next claim's ends later), so an unchanged
    ``next_attempt_at`` means no other run has claimed it since.
    """
    return (
        current is not None
        and current.status == "pending"
        and current.attempts == claimed.attempts
        and current.next_attempt_at == claimed.next_attempt_at
    )


class _Unavailable:
    """The mailer of a run whose batch could not be opened: every send fails alike."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def send(self, message: EmailMessage) -> None:
        raise self._error

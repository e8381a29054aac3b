"""Mail delivery, the send and record path: outbox rows, rendering invitation mail,
sending a message once it passed the last check, and recording how each try went."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from .._domain import (
    SYSTEM,
    Account,
    Invitation,
    Member,
    OutboxMessage,
)
from .._errors import (
    DeliveryFailed,
    DeliveryRefused,
    StorageError,
    TeamAccessError,
    ValidationError,
)
from .._ports import Mailer, UnitOfWork
from .checks import _log, _numbered_id, _token_hex, _Work
from .core import _Core
from .delivery_rules import (
    _EXPIRED,
    _UNDELIVERABLE,
    FULL_WAY,
    _Bounced,
    _closed,
    _days,
    _failed,
    _FullWay,
    _is_batch_mailer,
    _leased,
    _Refusal,
    _refusals_in_row,
    _refused,
    _sends_wire,
    _still_ours,
    _Unavailable,
    masked,
    masked_text,
)

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["_Sending"]


class _Sending(_Core):
    """Mail delivery, the send and record path, which both a call that sends its mail at
    once (``delivery="now"``) and a ``deliver_pending()`` run go through."""

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
        due = self._due_at(now)
        return OutboxMessage(
            id=_numbered_id("msg"),
            account_id=inv.account_id,
            kind="invitation",
            recipient=inv.email,
            message_id=f"<{_token_hex(12)}@{self._msgid_domain}>",
            created_at=now,
            next_attempt_at=due,
            invitation_id=inv.id,
            leased_until=_leased(now, due),
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
                last_error=None, leased_until=None,
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
            next_attempt_at=now + backoff, leased_until=None,
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
        if batch:
            batch = self._still_to_send(batch, invitation)
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

    def _still_to_send(
        self,
        batch: Sequence[tuple[OutboxMessage, EmailMessage]],
        invitation: Invitation | None,
    ) -> list[tuple[OutboxMessage, EmailMessage]]:
        """The messages of *batch* to send now, as stored now: read after the call's own
        commit, as ``deliver_pending()`` reads each row before its send. A row a
        deletion took since (``delete_account()``, ``erase_person()``) or that is no
        longer this call's to send is dropped; a message an erasure rewrote goes out as
        rewritten."""
        from .._mail.mailers import parse_stored

        look = getattr(self._store, "outbox_row", None)
        try:
            if look is not None:
                # One statement a row, no unit around it (CombinedReads): each row is
                # checked on its own, so one snapshot for all of them is not needed.
                stored: list[OutboxMessage | None] = [look(row.id) for row, _ in batch]
            else:
                with self._read() as uow:
                    stored = [uow.get_outbox(row.id) for row, _message in batch]
        except StorageError as exc:
            # Nothing sent: the rows are committed and wait out their delivery lease.
            what = (
                f"the invitation {invitation.id} is saved and deliver_pending() sends its "
                "mail once its delivery lease ends"
                if invitation is not None
                else "they wait in the outbox and deliver_pending() sends them once their "
                "delivery lease ends; do not call notify() again"
            )
            raise DeliveryFailed(
                f"{len(batch)} message(s) could not be sent now: the database failed while "
                f"reading them back before sending ({exc}); {what}",
                message_ids=[row.id for row, _message in batch],
                invitation=invitation,
            ) from exc
        keep: list[tuple[OutboxMessage, EmailMessage]] = []
        for (row, message), current in zip(batch, stored, strict=True):
            if current is None or not _still_ours(current, row):
                continue
            if current.message is not None and current.message != row.message:
                # An erasure rewrote it (or cancelled it, above): the stored bytes go.
                message = parse_stored(current.message)
            if (
                invitation is not None
                and invitation.note
                and current.kind == "invitation"
                and current.invitation_id == invitation.id
            ):
                # An invitation's mail is rendered, not stored: an erasure rewrites the
                # note it was rendered from, not this row, so the note is read back too.
                again = self._rendered_again(current, invitation, message)
                if again is None:
                    continue
                message = again
            keep.append((current, message))
        return keep

    def _rendered_again(
        self, row: OutboxMessage, invitation: Invitation, message: EmailMessage
    ) -> EmailMessage | None:
        """*message* (rendered from *invitation*, which carries its token), or the mail
        rendered anew if the stored invitation's note changed since (an erasure took a
        person out of it); ``None`` if the invitation is no longer open. One read, only
        for an invitation with a note: without one, nothing an erasure rewrites is in
        the mail."""
        assert invitation.token is not None
        look = getattr(self._store, "invitation_account_member", None)
        try:
            if look is not None:
                found: tuple[Invitation | None, Account | None, Member | None]
                found = look(invitation.id, invitation.invited_by)
                stored, account, inviter = found
            else:
                with self._read() as uow:
                    stored = uow.get_invitation(invitation.id)
                    account = None if stored is None else uow.get_account(stored.account_id)
                    inviter = (
                        None
                        if stored is None or stored.invited_by == SYSTEM
                        else uow.get_member(stored.account_id, stored.invited_by)
                    )
        except StorageError as exc:
            raise DeliveryFailed(
                f"1 message could not be sent now: the database failed while reading its "
                f"invitation back before sending ({exc}); the invitation {invitation.id} "
                "is saved and deliver_pending() sends its mail once its delivery lease ends",
                message_ids=[row.id],
                invitation=invitation,
            ) from exc
        if stored is None or account is None or stored.status != "pending":
            return None  # its row is closed or gone too, or soon will be
        if stored.note == invitation.note:
            return message
        # SYSTEM invites on the owner's behalf, so the mail names the owner.
        inviter_email = (
            account.owner_email if stored.invited_by == SYSTEM or inviter is None else inviter.email
        )
        try:
            return self._render_invitation(
                account, stored, inviter_email, invitation.token, row, row.created_at
            )
        except Exception as exc:
            # Committed, and not sent with the old note: the worker renders it again.
            raise DeliveryFailed(
                f"1 message could not be sent now: rendering the invitation mail again "
                f"with its changed note failed ({type(exc).__name__}); the invitation "
                f"{invitation.id} is saved and deliver_pending() sends its mail once its "
                "delivery lease ends",
                message_ids=[row.id],
                invitation=invitation,
            ) from exc

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

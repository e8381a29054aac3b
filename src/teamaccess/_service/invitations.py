"""Invitations: invite, resend, revoke, inspect, accept, decline."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._domain import (
    SEND_ACTIONS,
    SYSTEM,
    Account,
    Invitation,
    InvitationStatus,
    Member,
    OutboxMessage,
    check_metadata,
)
from .._emails import normalize_email
from .._errors import (
    AlreadyInvited,
    AlreadyMember,
    DeliveryFailed,
    EmailMismatch,
    InvalidInvitation,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    RateLimited,
    StorageError,
)
from .._permissions import PermissionSet
from .._ports import UnitOfWork
from .._tokens import hash_matches

if TYPE_CHECKING:
    from email.message import EmailMessage
from .checks import (
    _check_id,
    _check_ids,
    _check_new_user,
    _check_note,
    _check_until,
    _no_account,
    _numbered_id,
    _together,
    _Work,
)
from .delivery import _Delivery

__all__ = ["_Invitations"]


# What a refused resend says to do: a resend gives what the invitation gives, unchanged.
_RESEND_GRANT: Final = (
    "a member who holds them (the account owner holds all) can resend it, or revoke it "
    "and invite again with permissions you hold"
)
_RESEND_END: Final = (
    "the account owner can resend it as it is, or revoke it and send a new invitation with an end"
)


class _Invitations(_Delivery):
    """Invitations: invite, resend, revoke, inspect, accept, decline."""

    def _check_rates(self, work: _Work, account_id: str, email: str, email_key: str) -> None:
        """The account's limit, then the address's (see :meth:`_judge_recipient_rate`);
        one statement that reads no more than the limit-th newest time of each where the
        unit has ``send_marks()``, the full lists only for an error's message."""
        since = work.now - self.rate_window
        mail_since = work.now - self.recipient_rate_window
        marks = getattr(work.uow, "send_marks", None)
        if marks is not None:
            found: tuple[datetime | None, datetime | None] = marks(
                account_id, since, self.rate_limit, email_key, mail_since,
                self.recipient_rate_limit,
            )  # fmt: skip
            if found == (None, None):
                return  # neither limit reached
        sends = work.uow.event_times(account_id, SEND_ACTIONS, since)
        self._judge_rate(account_id, sends, since)
        mails = self._mail_times(work, email_key, mail_since)
        self._judge_recipient_rate(email, mails, mail_since)

    def _judge_rate(self, account_id: str, sent: list[datetime], since: datetime) -> None:
        # A send leaves the window exactly rate_window later, so retry_after really works.
        times = [t for t in sent if t > since]
        if len(times) >= self.rate_limit:
            retry_after = times[len(times) - self.rate_limit] + self.rate_window
            raise RateLimited(
                f"account {account_id!r} sent {len(times)} invitations in the last "
                f"{self.rate_window}; the limit is {self.rate_limit} (rate_limit). Try again after "
                f"{retry_after:%Y-%m-%d %H:%M} UTC",
                retry_after=retry_after,
            )

    def _mail_times(self, work: _Work, email_key: str, since: datetime) -> list[datetime]:
        try:
            mail_times = work.uow.invitation_mail_times
        except AttributeError:
            raise StorageError(
                f"the store {type(self._store).__name__} has no invitation_mail_times(); "
                "update it to the current Store protocol (StoreContract checks it)"
            ) from None
        return mail_times(email_key, since)

    def _judge_recipient_rate(self, email: str, mailed: list[datetime], since: datetime) -> None:
        """At most ``recipient_rate_limit`` invitation mails to one address per
        ``recipient_rate_window``, from all accounts together."""
        times = [t for t in mailed if t > since]
        if len(times) >= self.recipient_rate_limit:
            retry_after = times[len(times) - self.recipient_rate_limit] + self.recipient_rate_window
            raise RateLimited(
                f"{email} has received {len(times)} invitations in the last "
                f"{self.recipient_rate_window} (from all accounts together); the limit is "
                f"{self.recipient_rate_limit} (recipient_rate_limit). Try again after "
                f"{retry_after:%Y-%m-%d %H:%M} UTC",
                retry_after=retry_after,
            )

    def invite(
        self,
        account_id: str,
        *,
        actor_id: str,
        email: str,
        permissions: PermissionSet,
        language: str | None = None,
        access_until: datetime | None = None,
        note: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Invitation:
        """Invite *email* with *permissions*; the returned invitation carries the token.

        Needs ``users.manage`` and every granted permission (on each resource for a scoped
        grant). *access_until* ends the member's access at that instant; an actor whose own
        access ends must give one on or before it (none, or a later one, is refused with
        ``PermissionDenied``, not cut to the actor's end). *note* is a short
        personal note shown in the mail; *metadata* is the vendor's own small dict, carried
        to the member. The mail is written to the outbox in the same unit of work and sent
        at once; if the mailer fails the invitation stays pending and ``DeliveryFailed``
        names the waiting message. With ``delivery="queue"`` the call returns once the
        mail is queued, and ``token`` is ``None``: the worker (``deliver_pending()``) mints
        the token the mail carries.
        """
        account_id = _check_id("account_id", account_id)
        actor_id = _check_id("actor_id", actor_id)
        wanted = self._permission_set(permissions)
        until = _check_until("access_until", access_until, self.now())
        note = _check_note(note)
        meta = check_metadata(metadata)
        address = normalize_email(
            email, check_deliverability=self.check_deliverability, what="email"
        )
        language = self._language(language)
        # The mail is rendered first, from what a read shows, so that rendering never
        # holds the write lock; the write unit then checks every rule afresh and stores
        # the invitation and its outbox row together, or nothing.
        account, inviter = self._glance(account_id, actor_id)
        # That read already tells whether the actor may invite at all: a refusal costs no
        # template and no token. (The write unit decides, under the lock.)
        self._may_invite(account_id, actor_id, inviter, wanted, until, "grant these permissions")
        # SYSTEM (the vendor's staff) invites on the owner's behalf, so the mail names the owner.
        inviter_email = account.owner_email if inviter is None else inviter.email
        now = self.now()
        inv_id = _numbered_id("inv")
        token, digest = self._tokens.issue(inv_id)
        inv = Invitation(
            id=inv_id,
            account_id=account_id,
            email=address.email,
            permissions=wanted,
            invited_by=actor_id,
            status="pending",
            created_at=now,
            expires_at=now + self.invitation_ttl,
            token_hash=digest,
            language=language,
            access_until=until,
            note=note,
            metadata=meta,
        )
        row = self._invitation_row(inv, now)
        message = self._render_invitation(account, inv, inviter_email, token, row, now)
        with self._write(now) as work:
            uow = work.uow
            account, actor = self._account_actor(uow, account_id, actor_id)
            self._may_invite(account_id, actor_id, actor, wanted, until, "grant these permissions")
            is_member, existing = self._address_in_use(uow, account_id, address.key)
            if is_member:
                raise AlreadyMember(
                    f"{address.email} is already a member of {account.name!r}; change their "
                    "permissions with set_permissions() instead"
                )
            if existing is not None:
                if self._status_now(uow, existing, work.now) == "revoked":
                    # Its inviter may no longer grant it: it counts as revoked, so a new
                    # invitation replaces it instead of being refused.
                    self._close_invitation(
                        work,
                        existing,
                        "revoked",
                        SYSTEM,
                        reason="inviter lost the right to grant it",
                    )
                elif not existing.is_expired(work.now):
                    raise AlreadyInvited(
                        f"{address.email} has a pending invitation ({existing.id}) until "
                        f"{existing.expires_at:%Y-%m-%d}; resend or revoke it instead",
                        invitation_id=existing.id,
                    )
                else:
                    self._close_invitation(work, existing, "expired", SYSTEM)
            self._check_rates(work, account_id, address.email, address.key)
            with _together(uow):  # nothing below reads what these write
                uow.add_invitation(inv, address.key)
                self._queue_invitation(work, inv, fresh=True, row=row)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "invitation.sent",
                    inv_id,
                    email=address.email,
                    permissions=wanted.to_list(),
                    **({} if until is None else {"access_until": until.isoformat()}),
                )
        return self._hand_over(inv, token, row, message)

    def resend_invitation(self, invitation_id: str, *, actor_id: str) -> Invitation:
        """Send a new mail with a new token; the old link stops working.

        The lifetime starts again. Counts against the rate limit like a first send. The
        actor becomes the inviter: it holds what the invitation grants, and its own access
        ends no earlier than the access the invitation gives (or this fails), and
        acceptance re-checks the rights of whoever sent the link that is used.
        """
        _check_ids(invitation_id=invitation_id, actor_id=actor_id)
        # Rendered before the write unit (see invite()), which checks everything afresh.
        seen, account, actor = self._glance_invitation(invitation_id, actor_id)
        # What that read shows refused is refused before any template or token work.
        self._may_invite(
            seen.account_id, actor_id, actor, seen.permissions, seen.access_until,
            "resend this invitation", resend=True,
        )  # fmt: skip
        if seen.status != "pending":
            self._raise_closed(seen)  # a closed invitation never opens again
        # SYSTEM resends on the owner's behalf, so the mail names the owner.
        inviter_email = account.owner_email if actor is None else actor.email
        now = self.now()
        token, digest = self._tokens.issue(seen.id)
        resent = attrs.evolve(
            seen,
            token_hash=digest,
            expires_at=now + self.invitation_ttl,
            sent_count=seen.sent_count + 1,
            invited_by=actor_id,
        )
        row = self._invitation_row(resent, now)
        message = self._render_invitation(account, resent, inviter_email, token, row, now)
        with self._write(now) as work:
            uow = work.uow
            inv, inviter = self._invitation_and_inviter(uow, invitation_id)
            # The resender becomes the inviter: it must be able to give what it resends.
            self._may_invite(
                inv.account_id, actor_id, self._actor(uow, inv, inviter, actor_id),
                inv.permissions, inv.access_until, "resend this invitation", resend=True,
            )  # fmt: skip
            if inv.status != "pending":
                self._raise_closed(inv)
            if uow.member_by_email(inv.account_id, normalize_email(inv.email).key) is not None:
                raise AlreadyMember(
                    f"{inv.email} has become a member meanwhile; revoke invitation {inv.id} "
                    "instead of resending it"
                )
            if self._inviter_lost(inv, inviter):
                raise InvitationRevoked(
                    f"invitation {inv.id} counts as revoked: the member who sent it may no "
                    "longer grant it; send a new invitation instead"
                )
            self._check_rates(work, inv.account_id, inv.email, normalize_email(inv.email).key)
            # Another resend may have come between: this one's token replaces its token,
            # as if they had run one after the other (an invitation's permissions and
            # address never change, so the rendered mail is still right).
            inv = attrs.evolve(
                inv,
                token_hash=resent.token_hash,
                expires_at=resent.expires_at,
                sent_count=inv.sent_count + 1,
                invited_by=actor_id,
            )
            with _together(uow):  # nothing below reads what these write
                uow.update_invitation(inv)
                self._queue_invitation(work, inv, row=row)
                self._audit(
                    work, inv.account_id, actor_id, "invitation.resent", inv.id, email=inv.email
                )
        if inv.note != resent.note:
            # An erasure took a person out of the note after the read the mail was
            # rendered from: the mail carries the note as stored.
            try:
                message = self._render_invitation(account, inv, inviter_email, token, row, now)
            except Exception as exc:
                # Committed: the row waits, and the worker renders the mail again.
                raise DeliveryFailed(
                    f"the invitation {inv.id} is resent, but rendering its mail again with "
                    f"its changed note failed ({type(exc).__name__}); deliver_pending() "
                    "sends it once its delivery lease ends",
                    message_ids=[row.id],
                    invitation=attrs.evolve(inv, token=None, token_hash=None),
                ) from exc
        return self._hand_over(inv, token, row, message)

    def _may_invite(
        self,
        account_id: str,
        actor_id: str,
        actor: Member | None,
        wanted: PermissionSet,
        until: datetime | None,
        what: str,
        *,
        resend: bool = False,
    ) -> None:
        """Refuse unless *actor* (its membership as read, None for SYSTEM) holds
        users.manage and every permission in *wanted*, and *until* (the access the
        invitation gives ends then; ``None``: never) ends no later than its own: one
        check for the read before rendering and the write unit, so both refuse alike.
        A *resend* cannot change what the invitation gives, so its refusal says what
        can be done instead."""
        held = self._held(account_id, actor_id, actor)
        self._require_held(held, account_id, actor_id, "users.manage")
        if resend:
            self._no_escalation(actor_id, held, wanted, what, _RESEND_GRANT)
            self._within_own_end(account_id, actor_id, actor, until, what, _RESEND_END)
        else:
            self._no_escalation(actor_id, held, wanted, what)
            self._within_own_end(account_id, actor_id, actor, until, what)

    def _glance_invitation(
        self, invitation_id: str, actor_id: str
    ) -> tuple[Invitation, Account, Member | None]:
        """The invitation, its account and the actor's membership there, for rendering a
        resend's mail before the write unit (see :meth:`_glance`): one statement where
        the store itself has ``invitation_account_member()``."""
        look = getattr(self._store, "invitation_account_member", None)
        if look is None:
            with self._read() as uow:
                seen = self._invitation(uow, invitation_id)
                return seen, *self._account_actor(uow, seen.account_id, actor_id)
        found: tuple[Invitation | None, Account | None, Member | None]
        found = look(invitation_id, actor_id)
        inv, account, actor = found
        if inv is None:
            raise _no_invitation(invitation_id)
        if account is None:
            raise _no_account(inv.account_id)
        return inv, account, None if actor_id == SYSTEM else actor

    def _hand_over(
        self, inv: Invitation, token: str, row: OutboxMessage, message: EmailMessage
    ) -> Invitation:
        """Send the mail now, or leave it to the worker; the invitation for the caller."""
        if self.delivery == "queue" or self._mailer is None:
            # The worker mints the token its mail carries (tokens are never stored), and
            # that one replaces this, so the caller gets none that would soon stop working.
            # The mail was still rendered: a value it cannot carry is refused here, now.
            # Without a mailer (delivery set to "now" after mailer=None) it is queued too.
            return attrs.evolve(inv, token=None, token_hash=None)
        issued = attrs.evolve(inv, token=token, token_hash=None)
        self._deliver_now([(row, message)], issued)
        return issued

    def revoke_invitation(self, invitation_id: str, *, actor_id: str) -> Invitation:
        """Withdraw a pending invitation; its link stops working at once."""
        _check_ids(invitation_id=invitation_id, actor_id=actor_id)
        with self._write() as work:
            uow = work.uow
            inv, inviter = self._invitation_and_inviter(uow, invitation_id)
            held = self._require_held(
                self._held(inv.account_id, actor_id, self._actor(uow, inv, inviter, actor_id)),
                inv.account_id, actor_id, "users.manage",
            )  # fmt: skip
            if actor_id != inv.invited_by:
                self._no_escalation(actor_id, held, inv.permissions, "revoke this invitation")
            if inv.status == "revoked":
                return attrs.evolve(inv, token_hash=None)
            if inv.status != "pending":
                self._raise_closed(inv)
            inv = self._close_invitation(work, inv, "revoked", actor_id)
        return attrs.evolve(inv, token_hash=None)

    def pending_invitations(self, account_id: str) -> list[Invitation]:
        """Invitations still waiting for an answer, oldest first; expired ones are left out."""
        _check_id("account_id", account_id)
        now = self.now()
        with self._read() as uow:
            self._account(uow, account_id)
            return [
                attrs.evolve(i, token_hash=None)
                for i in uow.invitations(account_id, status="pending")
                if self._status_now(uow, i, now) == "pending"
            ]

    def invitations(self, account_id: str) -> list[Invitation]:
        """Every invitation of the account, oldest first, with its status as of now."""
        _check_id("account_id", account_id)
        now = self.now()
        with self._read() as uow:
            self._account(uow, account_id)
            return [
                attrs.evolve(i, status=self._status_now(uow, i, now), token_hash=None)
                for i in uow.invitations(account_id)
            ]

    def invitations_accepted_by(self, user_id: str) -> list[Invitation]:
        """The invitations *user_id* accepted, in every account, oldest first.

        The way back to an accepted invitation (the web pages' Back after "Accept"): a
        store with ``invitations_accepted_by()`` (``CombinedReads``) reads only these,
        through an index; any other finds them among the user's own invitations.
        """
        _check_id("user_id", user_id)
        with self._read() as uow:
            accepted = getattr(uow, "invitations_accepted_by", None)
            if callable(accepted):
                found: list[Invitation] = accepted(user_id)
            else:
                found = [
                    i for i in uow.invitations_involving([user_id], ()) if i.accepted_by == user_id
                ]
        return [attrs.evolve(i, token_hash=None) for i in found]

    def get_invitation(self, invitation_id: str) -> Invitation:
        """The invitation with its status as of now (``token`` is ``None``: only its hash
        is stored); ``InvitationNotFound`` if there is none."""
        _check_id("invitation_id", invitation_id)
        now = self.now()
        with self._read() as uow:
            inv = self._invitation(uow, invitation_id)
            return attrs.evolve(inv, status=self._status_now(uow, inv, now), token_hash=None)

    def inspect_invitation(self, token: str) -> Invitation:
        """The invitation a token names, with its status as of now; changes nothing.

        For the landing page: show the account, the address and the permissions before the
        user accepts. Raises ``InvalidInvitation`` only for a forged or replaced token.
        """
        now = self.now()
        with self._read() as uow:
            inv = self._by_token(uow, token)
            status = self._status_now(uow, inv, now)
        return attrs.evolve(inv, status=status, token_hash=None)

    def accept_invitation(self, token: str, *, user_id: str, email: str) -> Member:
        """Make the user a member with the invitation's permissions.

        *email* is the address the host application verified for the user; it must be the
        invited one unless ``require_email_match=False``.
        """
        user_id = _check_new_user("user_id", user_id)
        address = normalize_email(email, check_deliverability=False, what="email")
        member: Member | None = None
        with self._write() as work:
            uow = work.uow
            inv, inviter = self._by_token_and_inviter(uow, token)
            self._check_open(inv, work.now)
            invited_key = normalize_email(inv.email).key
            if self.require_email_match and invited_key != address.key:
                raise EmailMismatch(
                    f"this invitation was sent to another address than {address.email}; "
                    "log in with the invited address, or ask the account owner to invite "
                    "this one"
                )
            if self._inviter_lost(inv, inviter):
                self._close_invitation(
                    work, inv, "revoked", SYSTEM, reason="inviter lost the right to grant it"
                )
            else:
                member = Member(
                    account_id=inv.account_id,
                    user_id=user_id,
                    email=address.email,
                    role="member",
                    permissions=inv.permissions,
                    joined_at=work.now,
                    granted_by=inv.invited_by,
                    access_until=inv.access_until,
                    metadata=inv.metadata,
                )
                try:
                    with _together(uow):
                        # Every store refuses a second membership of the user or the
                        # address (the Store contract checks it), so no read asks first.
                        # Only this add raises AlreadyMember here.
                        uow.add_member(member, address.key)
                        uow.update_invitation(
                            attrs.evolve(
                                inv, status="accepted", closed_at=work.now, accepted_by=user_id
                            )
                        )
                        self._cancel_mail(work, inv.id)
                        self._audit(
                            work,
                            inv.account_id,
                            user_id,
                            "invitation.accepted",
                            inv.id,
                            email=address.email,
                            permissions=inv.permissions.to_list(),
                        )
                except AlreadyMember:
                    # Stores refuse a second membership of the user and of the address
                    # alike; with require_email_match=False the address may be another
                    # member's, so the message names both.
                    raise AlreadyMember(
                        f"user {user_id!r} or the address {address.email} is already a member "
                        "of this account; nothing to accept"
                    ) from None
                # With require_email_match=False the member may have joined under another
                # address than the invited one; a pending invitation for that address would
                # now invite a member, so it is closed.
                # (The invited address's own pending invitation is this one, now closed.)
                other = (
                    None
                    if address.key == invited_key
                    else uow.pending_invitation_for(inv.account_id, address.key)
                )
                if other is not None and other.id != inv.id:
                    self._close_invitation(
                        work, other, "revoked", SYSTEM, reason="its address became a member"
                    )
        if member is None:
            raise InvitationRevoked(
                "this invitation was withdrawn: the person who sent it may no longer grant "
                "these permissions; ask the account owner for a new invitation"
            )
        return member

    def decline_invitation(self, token: str) -> Invitation:
        """The invitee says no; the link stops working."""
        with self._write() as work:
            inv = self._by_token(work.uow, token)
            self._check_open(inv, work.now)
            inv = self._close_invitation(work, inv, "declined", f"invitee:{inv.email}")
        return attrs.evolve(inv, token_hash=None)

    def _invitation(self, uow: UnitOfWork, invitation_id: str) -> Invitation:
        inv = uow.get_invitation(invitation_id)
        if inv is None:
            raise _no_invitation(invitation_id)
        return inv

    def _invitation_and_inviter(
        self, uow: UnitOfWork, invitation_id: str
    ) -> tuple[Invitation, Member | None]:
        """:meth:`_invitation` and the inviter's membership (``None`` for SYSTEM), in one
        read where the unit has ``invitation_and_inviter()`` (``CombinedReads``)."""
        inv, inviter = self._stored_invitation(uow, invitation_id)
        if inv is None:
            raise _no_invitation(invitation_id)
        return inv, inviter

    @staticmethod
    def _actor(
        uow: UnitOfWork, inv: Invitation, inviter: Member | None, actor_id: str
    ) -> Member | None:
        """The membership of *actor_id* in the invitation's account: the inviter's as
        read with the invitation when the actor sent it, else read now (no read for
        SYSTEM)."""
        if actor_id == SYSTEM:
            return None
        if actor_id == inv.invited_by:
            return inviter
        return uow.get_member(inv.account_id, actor_id)

    def _by_token(self, uow: UnitOfWork, token: str) -> Invitation:
        inv_id = self._tokens.open(token)
        return _token_matches(uow.get_invitation(inv_id), token)

    def _by_token_and_inviter(
        self, uow: UnitOfWork, token: str
    ) -> tuple[Invitation, Member | None]:
        """:meth:`_by_token` and the inviter's membership, in one read where the unit has
        ``invitation_and_inviter()`` (``CombinedReads``)."""
        both = getattr(uow, "invitation_and_inviter", None)
        if both is None:
            inv = self._by_token(uow, token)
            if inv.invited_by == SYSTEM:
                return inv, None
            return inv, uow.get_member(inv.account_id, inv.invited_by)
        found: tuple[Invitation | None, Member | None] = both(self._tokens.open(token))
        return _token_matches(found[0], token), found[1]

    @staticmethod
    def _address_in_use(
        uow: UnitOfWork, account_id: str, email_key: str
    ) -> tuple[bool, Invitation | None]:
        """Whether the address is a member's, and its pending invitation; one read where
        the unit has ``address_in_use()`` (``CombinedReads``)."""
        both = getattr(uow, "address_in_use", None)
        if both is None:
            if uow.member_by_email(account_id, email_key) is not None:
                return True, None
            return False, uow.pending_invitation_for(account_id, email_key)
        found: tuple[bool, Invitation | None] = both(account_id, email_key)
        return found

    @staticmethod
    def _raise_closed(inv: Invitation) -> None:
        if inv.status == "accepted":
            raise InvitationUsed(
                f"invitation {inv.id} was already accepted; the member can simply log in"
            )
        if inv.status == "expired":
            raise InvitationExpired(
                f"invitation {inv.id} expired on {inv.expires_at:%Y-%m-%d}; "
                "ask the account owner to send a new one"
            )
        raise InvitationRevoked(
            f"invitation {inv.id} was {inv.status}; ask the account owner for a new invitation"
        )

    @classmethod
    def _check_open(cls, inv: Invitation, now: datetime) -> None:
        if inv.status != "pending":
            cls._raise_closed(inv)
        if inv.access_until is not None and now >= inv.access_until:
            raise InvitationExpired(
                f"the access this invitation offered ended on "
                f"{inv.access_until:%Y-%m-%d %H:%M} UTC; ask the account owner for a new one"
            )
        if inv.is_expired(now):
            raise InvitationExpired(
                f"this invitation expired on {inv.expires_at:%Y-%m-%d %H:%M} UTC; "
                "ask the account owner to resend it"
            )

    def _status_now(self, uow: UnitOfWork, inv: Invitation, now: datetime) -> InvitationStatus:
        """The status a user sees: past its lifetime it is expired, and once its inviter
        may no longer grant it, it counts as revoked (DESIGN.md, "Invitations")."""
        status = inv.status_at(now)
        if status == "pending" and self._inviter_lost_rights(uow, inv):
            return "revoked"
        return status

    def _close_invitation(
        self,
        work: _Work,
        inv: Invitation,
        status: InvitationStatus,
        actor_id: str,
        **details: Any,
    ) -> Invitation:
        closed = attrs.evolve(inv, status=status, closed_at=work.now)
        with _together(work.uow):  # three writes, none reading what another wrote
            work.uow.update_invitation(closed)
            self._cancel_mail(work, inv.id)
            self._audit(work, inv.account_id, actor_id, f"invitation.{status}", inv.id, **details)
        return closed


def _no_invitation(invitation_id: str) -> InvitationNotFound:
    return InvitationNotFound(
        f"no invitation {invitation_id!r}; pending_invitations(account_id) lists them"
    )


def _token_matches(inv: Invitation | None, token: str) -> Invitation:
    """*inv* if it is the invitation *token* was issued for, as it stands."""
    if inv is None or not hash_matches(token, inv.token_hash):
        raise InvalidInvitation(
            "this invitation link is no longer valid: a newer invitation mail replaced "
            "it, or it was withdrawn; use the link in the newest mail or ask for a new one"
        )
    return inv

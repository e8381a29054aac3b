"""The one exception tree of teamaccess.

Every error a caller can see is a :class:`TeamAccessError`; each also subclasses the
builtin it resembles, so ``except ValueError`` or ``except LookupError`` keep working::

    TeamAccessError
    ├── ValidationError(ValueError)
    │   ├── InvalidEmail
    │   ├── UnknownPermission
    │   ├── UnknownCategory
    │   └── InvalidImport
    ├── NotFound(LookupError)
    │   ├── AccountNotFound
    │   ├── MemberNotFound
    │   ├── InvitationNotFound
    │   └── ContactNotFound
    ├── PermissionDenied
    ├── Conflict
    │   ├── AlreadyMember
    │   ├── AlreadyInvited
    │   ├── AlreadyContact
    │   └── OwnershipRequired
    ├── InvitationError
    │   ├── InvalidInvitation
    │   ├── InvitationExpired
    │   ├── InvitationRevoked
    │   ├── InvitationUsed
    │   └── EmailMismatch
    ├── RateLimited
    ├── DeliveryFailed
    │   └── DeliveryRefused
    ├── StorageError
    │   ├── ImportInterrupted
    │   └── ScrubFailed
    └── ClockError(ValueError)

Messages say what happened and what to do. No message ever contains an invitation token
or an accept URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._domain import Account, Invitation
    from ._service.import_rows import ImportProblem

__all__ = [
    "AccountNotFound",
    "AlreadyContact",
    "AlreadyInvited",
    "AlreadyMember",
    "ClockError",
    "Conflict",
    "ContactNotFound",
    "DeliveryFailed",
    "DeliveryRefused",
    "EmailMismatch",
    "ImportInterrupted",
    "InvalidEmail",
    "InvalidImport",
    "InvalidInvitation",
    "InvitationError",
    "InvitationExpired",
    "InvitationNotFound",
    "InvitationRevoked",
    "InvitationUsed",
    "MemberNotFound",
    "NotFound",
    "OwnershipRequired",
    "PermissionDenied",
    "RateLimited",
    "ScrubFailed",
    "StorageError",
    "TeamAccessError",
    "UnknownCategory",
    "UnknownPermission",
    "ValidationError",
]


class TeamAccessError(Exception):
    """Base class of every error teamaccess raises."""


class ValidationError(TeamAccessError, ValueError):
    """An argument is malformed; nothing was stored or sent."""


class InvalidEmail(ValidationError):
    """An email address is not a valid address."""


class UnknownPermission(ValidationError):
    """A permission name is not in the catalog in force."""


class UnknownCategory(ValidationError):
    """A mail category is not in the configured set."""


class NotFound(TeamAccessError, LookupError):
    """Something looked up by id does not exist."""


class AccountNotFound(NotFound):
    """No account has that id."""


class MemberNotFound(NotFound):
    """The user is not a member of that account."""


class InvitationNotFound(NotFound):
    """No invitation has that id."""


class ContactNotFound(NotFound):
    """No contact has that id."""


class PermissionDenied(TeamAccessError):
    """The actor lacks a permission the operation needs.

    ``access_until`` is set when the refusal is about time: the actor's own end of
    access, which any access it gives must not outlast (a page shows it at the date field).
    """

    def __init__(
        self,
        message: str,
        *,
        user_id: str | None = None,
        account_id: str | None = None,
        permission: str | None = None,
        access_until: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.user_id = user_id
        self.account_id = account_id
        self.permission = permission
        self.access_until = access_until


class Conflict(TeamAccessError):
    """The operation clashes with the current state."""


class AlreadyMember(Conflict):
    """The address or user already belongs to the account."""


class AlreadyInvited(Conflict):
    """A pending invitation for that address already exists.

    ``invitation_id`` names it (when known), so a page can offer to resend it.
    """

    def __init__(self, message: str, *, invitation_id: str | None = None) -> None:
        super().__init__(message)
        #: the pending invitation for the address, if known
        self.invitation_id = invitation_id


class AlreadyContact(Conflict):
    """Another contact of the account has that address.

    ``contact_id`` names it, so a page can link to it: one address is one contact, whose
    categories say which mail it receives.
    """

    def __init__(self, message: str, *, contact_id: str | None = None) -> None:
        super().__init__(message)
        #: the account's contact with the address
        self.contact_id = contact_id


class OwnershipRequired(Conflict):
    """Only the owner may do this, or the owner cannot be the target."""


class InvitationError(TeamAccessError):
    """An invitation token cannot be used."""


class InvalidInvitation(InvitationError):
    """The token is malformed, forged, or was replaced by a newer one."""


class InvitationExpired(InvitationError):
    """The invitation's lifetime is over."""


class InvitationRevoked(InvitationError):
    """The invitation was revoked, declined, or its inviter lost the right to grant it."""


class InvitationUsed(InvitationError):
    """The invitation was already accepted."""


class EmailMismatch(InvitationError):
    """The accepting user's address is not the invited one."""


class RateLimited(TeamAccessError):
    """Too many invitations were sent for the account in the rolling window."""

    def __init__(self, message: str, *, retry_after: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryFailed(TeamAccessError):
    """The change was stored but its mail could not be delivered yet.

    ``message_ids`` names the outbox messages that wait; ``deliver_pending()`` retries
    them, and for invitations ``resend_invitation()`` works as well. Raised by
    ``invite()`` or ``resend_invitation()``, it carries the saved ``invitation`` (with
    ``token`` set, as those methods return it; a retry mails a new token, and the old
    one stops working then).
    """

    def __init__(
        self,
        message: str,
        *,
        message_ids: Sequence[str] = (),
        invitation_id: str | None = None,
        invitation: Invitation | None = None,
    ) -> None:
        super().__init__(message)
        self.message_ids = tuple(message_ids)
        #: the invitation that was saved but whose mail waits, if any
        self.invitation = invitation
        #: its id (also given without the invitation, e.g. by a third-party mailer)
        self.invitation_id = invitation.id if invitation is not None else invitation_id


class DeliveryRefused(DeliveryFailed):
    """The mail server refused this message for good: its recipient (a permanent ``5xx``
    reply to ``RCPT TO``) or its content (a ``5xx`` to ``DATA``), not the panel's own
    settings.

    ``SmtpMailer`` raises it for such replies; a third-party ``Mailer`` raises it to say
    the same (any other exception counts as a failure worth retrying). A message refused
    so ``give_up_after`` times in a row is closed: its outbox row is ``cancelled`` and a
    ``mail.bounced`` audit event is written in its account. *code* is the server's
    reply code, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        message_ids: Sequence[str] = (),
        invitation_id: str | None = None,
    ) -> None:
        super().__init__(message, message_ids=message_ids, invitation_id=invitation_id)
        #: the server's reply code (e.g. 550), if the mailer knows it
        self.code = code


class StorageError(TeamAccessError):
    """The backend failed: the file is unusable, locked, read-only or full."""


class ClockError(TeamAccessError, ValueError):
    """The clock gave no usable time: its ``now()`` raised, or returned something other
    than a timezone-aware ``datetime`` within the range the ``Clock`` protocol names.

    A fault of the service's configuration, not of a caller's input (hence not a
    ``ValidationError``); nothing was stored or sent.
    """


class InvalidImport(ValidationError):
    """Rows given to ``import_accounts()`` break a rule; nothing was imported.

    ``problems`` lists what is wrong, row by row (the first 100 found; every row was
    checked before any was written).
    """

    def __init__(self, message: str, *, problems: Sequence[ImportProblem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class ImportInterrupted(StorageError):
    """``import_accounts()`` stopped partway: the store failed after some chunks were
    committed.

    ``imported`` holds the accounts that are stored (rows ``0`` to ``done - 1``); the
    rest are not. Resume with the remaining rows (``rows[done:]``), or with the same rows
    and ``existing="skip"`` if they give account ids.
    """

    def __init__(self, message: str, *, imported: Sequence[Account] = (), done: int = 0) -> None:
        super().__init__(message)
        self.imported = list(imported)
        self.done = done


class ScrubFailed(StorageError):
    """``erase_person()``, ``delete_account()`` or ``purge()`` is committed (the rows are
    deleted), but scrubbing the store afterwards failed, so the deleted data may still
    be in the database's files (SQLite: free pages, the WAL; PostgreSQL: dead tuples).

    ``report`` is what the call would have returned (``ErasureReport``,
    ``AccountDeletionReport`` or ``PurgeReport``). Do not repeat the call: it finds
    nothing left to delete, and so scrubs nothing. Finish with ``store.scrub()``
    (``teamaccess scrub``) once other connections are idle.
    """

    def __init__(self, message: str, *, report: object = None) -> None:
        super().__init__(message)
        #: what the committed call would have returned
        self.report = report


# Errors report their public home, as httpx's classes do: a traceback says
# ``teamaccess.PermissionDenied``, the name to catch, not the private module's. (The attrs
# domain classes keep theirs: ``typing.get_type_hints()`` resolves their annotations there.)
for _name in __all__:
    globals()[_name].__module__ = "teamaccess"
del _name

"""Deleting an account with everything of it: the vendor closes it when a contract ends.

This module loads on the first call, whose method is in ``privacy``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._domain import SYSTEM
from .._errors import PermissionDenied, StorageError, ValidationError
from .._privacy import AccountDeletionReport
from .checks import _check_id, _log, _scrub_after

if TYPE_CHECKING:
    from .team import TeamAccess

__all__ = ["delete_account"]

#: What decoding a damaged row raises, which the SQL stores chain to the ``StorageError``
#: they raise for it (a lost connection or a full disk chains its driver's error).
_UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, AttributeError)

#: The counts ``AccountDeletion.delete_account()`` returns, as the report names them.
_COUNTS: Final = ("members", "invitations", "contacts", "messages", "events")


def delete_account(team: TeamAccess, account_id: str, actor_id: str) -> AccountDeletionReport:
    """See ``TeamAccess.delete_account()``."""
    account_id = _check_id("account_id", account_id)
    actor_id = _check_id("actor_id", actor_id)
    if actor_id != SYSTEM:
        # Before the account is looked up: a customer learns nothing about other ids.
        raise PermissionDenied(
            "only the vendor (teamaccess.SYSTEM) may delete an account, when the "
            "customer's contract ends; an owner who leaves transfers the account to a "
            "member (transfer_ownership()); to take a member out, use remove_member()",
            user_id=actor_id,
            account_id=account_id,
        )
    if team._batch_state() is not None:
        raise ValidationError(
            "delete_account() commits and scrubs the store on its own; call it after the "
            "batch() block, not inside it"
        )
    with team._write() as work:
        delete = getattr(work.uow, "delete_account", None)
        if not callable(delete) or not callable(getattr(team._store, "scrub", None)):
            # Before anything is read or written: a store without the capability gets a
            # clear error, not an AttributeError (and nothing changes).
            raise StorageError(
                "this store does not implement UnitOfWork.delete_account() (the optional "
                "AccountDeletion capability) or Store.scrub(), which delete_account() needs; "
                "implement them (teamaccess.testing.contract.StoreContract tests them; "
                "scrub() may do nothing for a store without files)"
            )
        try:
            team._account(work.uow, account_id)  # AccountNotFound if there is none
        except StorageError as exc:
            # A row that is there but cannot be read (another program wrote it, or it is
            # damaged): deleting it is the repair the vendor asks for, and without it the
            # owner could never be erased. Any other failure stops here.
            if not isinstance(exc.__cause__, _UNREADABLE):
                raise
        counts: dict[str, int] = delete(account_id)
    report = AccountDeletionReport(account_id, **{name: counts.get(name, 0) for name in _COUNTS})
    # The account's own audit log is gone with it: this record is the library's last
    # word on it, and names no person (the host keeps its own record of who asked).
    _log().info(
        "account %s deleted: %d member(s), %d invitation(s), %d contact(s), %d message(s), "
        "%d audit event(s)",
        account_id, report.members, report.invitations, report.contacts, report.messages,
        report.events,
    )  # fmt: skip
    _scrub_after(
        team._store, f"the deletion of account {account_id} ({report.removed} row(s))", report
    )
    return report

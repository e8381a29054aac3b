"""Personal data: export a person's data, erase a person, purge what retention lets go,
delete an account.

Only the methods are here; the work is in ``privacy_work`` and ``account_deletion``,
which load on the first call, so ``import teamaccess`` does not pay for what a panel runs
rarely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .core import _Core

if TYPE_CHECKING:
    from .._privacy import AccountDeletionReport, ErasureReport, PurgeReport
    from .team import TeamAccess

__all__ = ["_Privacy"]


def _team(mixin: _Core) -> TeamAccess:
    # The work uses the other use cases' helpers (mail, invitations); this mixin only
    # ever runs as part of TeamAccess.
    return cast("TeamAccess", mixin)


class _Privacy(_Core):
    """Personal data: export a person's data, erase a person, purge what retention lets go,
    delete an account."""

    def export_person(
        self, *, user_id: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        """Everything stored about a person, as one JSON-ready document (Art. 15 and 20).

        Give *user_id*, *email* or both; the person is everything under either, plus the
        ids and addresses their memberships link to. ``json.dumps()`` takes the result as
        it is: times are ISO 8601 strings, permissions lists of names. Nothing is changed,
        and a person nothing is stored about gets a document with empty lists.
        """
        from .privacy_work import _PrivacyWork  # loads on the first call

        return _PrivacyWork(_team(self)).export_person(user_id=user_id, email=email)

    def erase_person(
        self, *, user_id: str | None = None, email: str | None = None, actor_id: str
    ) -> ErasureReport:
        """Remove a person everywhere and leave the audit trail without their name (Art. 17).

        Deletes their memberships (revoking the pending invitations they sent), every
        invitation sent to their addresses, the contacts with their addresses and every
        outbox row addressed to them; in the audit log, on the members and invitations
        of others, their ids and addresses become one pseudonym; in mail to others (a
        vendor's text, a delivery error) and in the free text of others' rows (notes,
        metadata, contact fields) that names them, ``[erased]``; waiting mail that cannot
        be rewritten safely is cancelled. Each account touched
        gets a ``person.erased`` event naming only the pseudonym. Then the store is
        scrubbed (SQLite: VACUUM and a WAL checkpoint), so nothing of theirs stays in
        its files.

        *actor_id* is ``teamaccess.SYSTEM`` (the vendor, acting on a request) or the
        person themselves (equal to *user_id*). An owner is refused with
        ``OwnershipRequired``: transfer the account first, or delete it
        (``delete_account()``).
        """
        from .privacy_work import _PrivacyWork  # loads on the first call

        return _PrivacyWork(_team(self)).erase_person(
            user_id=user_id, email=email, actor_id=actor_id
        )

    def purge(self, *, scrub: bool = True) -> PurgeReport:
        """Delete what the ``retention`` periods let go; run it daily (``teamaccess purge``).

        Closed invitations, sent and cancelled mail and old audit events go; pending
        invitations that have not expired, mail still waiting, and the sends the rate
        limit counts stay, whatever the periods say. With *scrub* (the default) the
        store is then scrubbed as after an erasure, if anything was deleted.
        """
        from .privacy_work import _PrivacyWork  # loads on the first call

        return _PrivacyWork(_team(self)).purge(scrub=scrub)

    def delete_account(self, account_id: str, *, actor_id: str) -> AccountDeletionReport:
        """Delete an account with everything of it, when the customer's contract ends.

        In one unit of work: its members (the owner among them), invitations (their
        waiting mail never goes out), contacts, outbox rows and audit events, then the
        account. Then the store is scrubbed as after an erasure, so nothing of it stays
        in its files. Afterwards its former owner and members can be erased like anyone
        (``erase_person()``).

        Only the vendor may: *actor_id* is ``teamaccess.SYSTEM``, anyone else gets
        ``PermissionDenied``. The account's audit log goes with it, so no event records
        the deletion: it is logged at INFO on the ``teamaccess`` logger with the account
        id and the counts, and the host keeps its own record of who asked for it.
        """
        from .account_deletion import delete_account  # loads on the first call

        return delete_account(_team(self), account_id, actor_id)

"""Members over time: suspend, reactivate, and the instant access ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .._domain import Member, MemberStatus
from .._errors import OwnershipRequired
from .checks import _check_ids, _check_until, _together, _Work
from .core import _Core

__all__ = ["_Lifecycle"]


class _Lifecycle(_Core):
    """Suspend and reactivate members, and set when their access ends.

    Each needs the rights ``set_permissions`` needs: ``users.manage``, and a target whose
    grants are within the actor's own, other than the actor itself. The owner is never
    suspended and its access never ends. An actor whose own access ends gives none that
    ends later: it sets no later end (nor none) and reactivates only members whose access
    ends no later than its own.
    """

    def suspend_member(self, account_id: str, user_id: str, *, actor_id: str) -> Member:
        """Pause a member: it keeps its grants, but ``can()`` is false until reactivated.

        Suspending a suspended member changes nothing (and writes no audit event).
        """
        return self._change_state(account_id, user_id, actor_id, "suspend")

    def reactivate_member(self, account_id: str, user_id: str, *, actor_id: str) -> Member:
        """Lift a suspension; the member's grants apply again (unless its access ended).

        An actor whose own access ends reactivates only a member whose access ends no
        later (``PermissionDenied``: set the member's end first).
        """
        return self._change_state(account_id, user_id, actor_id, "reactivate")

    def set_access_until(
        self, account_id: str, user_id: str, until: datetime | None, *, actor_id: str
    ) -> Member:
        """End the member's access at *until* (a timezone-aware instant in the future), or
        never with ``None``.

        From that instant ``can()`` is false for the member, with no job having to run;
        ``Member.status`` reads ``"expired"``. Setting a later instant (or ``None``) gives
        an expired member its access back. An actor whose own access ends sets no end
        later than its own, nor none (``PermissionDenied`` with ``access_until`` naming
        the actor's end).
        """
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        with self._write() as work:
            until = _check_until("until", until, work.now)
            target, actor = self._target(work, account_id, user_id, actor_id, "end the access of")
            self._within_own_end(
                account_id, actor_id, actor, until, f"end the access of user {user_id!r}"
            )
            member = attrs.evolve(target, access_until=until)
            with _together(work.uow):  # the change and its event, neither read back
                work.uow.update_member(member)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "member.access_until_set",
                    user_id,
                    before=_iso(target.access_until),
                    after=_iso(until),
                )
        return self._member_now(member, work.now)

    def _change_state(self, account_id: str, user_id: str, actor_id: str, change: str) -> Member:
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        suspend = change == "suspend"
        with self._write() as work:
            target, actor = self._target(work, account_id, user_id, actor_id, change)
            wanted: MemberStatus = "suspended" if suspend else "active"
            if target.status == wanted:
                # Nothing to change, so nothing to audit: a retried request is harmless.
                return self._member_now(target, work.now)
            if not suspend:
                # Reactivating gives access back, until the member's own end.
                self._within_own_end(
                    account_id, actor_id, actor, target.access_until,
                    f"reactivate user {user_id!r}, whose access has {{given}}",
                    "first set its end with set_access_until()",
                )  # fmt: skip
            member = attrs.evolve(target, status=wanted)
            action = "member.suspended" if suspend else "member.reactivated"
            with _together(work.uow):  # the change and its event, neither read back
                work.uow.update_member(member)
                self._audit(work, account_id, actor_id, action, user_id)
        return self._member_now(member, work.now)

    def _target(
        self, work: _Work, account_id: str, user_id: str, actor_id: str, what: str
    ) -> tuple[Member, Member | None]:
        """The member *actor_id* may change, as stored, and the actor's membership (``None``
        for SYSTEM); the same rules as set_permissions."""
        uow = work.uow
        # the account and the actor's membership in one read where the unit can
        _, actor = self._account_actor(uow, account_id, actor_id)
        held = self._held(account_id, actor_id, actor)
        self._require_held(held, account_id, actor_id, "users.manage")
        target = self._member(uow, account_id, user_id)
        if target.is_owner:
            raise OwnershipRequired(
                f"the owner's access cannot be suspended or ended (asked to {what} "
                f"{user_id!r}); transfer ownership first"
            )
        self._not_oneself(account_id, actor_id, user_id, what)
        self._no_escalation(actor_id, held, target.permissions, f"{what} user {user_id!r}")
        return target, actor


def _iso(value: datetime | None) -> Any:
    return None if value is None else value.isoformat()

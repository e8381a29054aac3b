"""Grants on single resources: forgetting a resource the vendor deleted."""

from __future__ import annotations

import attrs

from .._permissions import _check_resource
from .checks import _check_ids, _together
from .core import _Core

__all__ = ["_Scopes"]


class _Scopes(_Core):
    """Grants on single resources (``PermissionSet.on``) outlive nothing they name."""

    def forget_resource(self, account_id: str, resource_id: str, *, actor_id: str) -> list[str]:
        """Remove every grant on *resource_id* (a cancelled service) from the account's
        members and pending invitations; returns the user ids whose grants changed.

        Needs ``users.manage`` and, like ``set_permissions``, only touches members whose
        grants are within the actor's own (``teamaccess.SYSTEM`` passes: the vendor's
        automation calls this when it deletes the resource). Account-wide grants stay.
        One audit event, ``resource.forgotten``, lists what changed.
        """
        _check_ids(account_id=account_id, actor_id=actor_id)
        resource_id = _check_resource(resource_id, "resource_id")
        with self._write() as work:
            uow = work.uow
            # the account and the actor's membership in one read where the unit can
            _, actor = self._account_actor(uow, account_id, actor_id)
            held = self._held(account_id, actor_id, actor)
            self._require_held(held, account_id, actor_id, "users.manage")
            changed: list[str] = []
            # The member updates go with the read of the invitations, and the invitation
            # updates with the event; none reads what another wrote.
            with _together(uow):
                for member in uow.members(account_id):
                    kept = member.permissions.without_resource(resource_id)
                    if kept is member.permissions:
                        continue
                    self._no_escalation(
                        actor_id, held, member.permissions, f"change user {member.user_id!r}"
                    )
                    uow.update_member(attrs.evolve(member, permissions=kept))
                    changed.append(member.user_id)
                invitations: list[str] = []
                for inv in uow.invitations(account_id, status="pending"):
                    kept = inv.permissions.without_resource(resource_id)
                    if kept is inv.permissions:
                        continue
                    if actor_id != inv.invited_by:
                        self._no_escalation(
                            actor_id, held, inv.permissions, f"change invitation {inv.id}"
                        )
                    uow.update_invitation(attrs.evolve(inv, permissions=kept))
                    invitations.append(inv.id)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "resource.forgotten",
                    resource_id,
                    members=changed,
                    invitations=invitations,
                )
        return changed

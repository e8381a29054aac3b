"""Accounts and members: ownership, permissions, the authorization hot path, the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._domain import (
    SYSTEM,
    Account,
    AuditEvent,
    Member,
)
from .._emails import check_name, normalize_email
from .._errors import (
    Conflict,
    OwnershipRequired,
    PermissionDenied,
    RateLimited,
    ValidationError,
)
from .._permissions import PermissionSet, Resources

if TYPE_CHECKING:
    pass
from .checks import (
    _ALL,
    _check_id,
    _check_ids,
    _check_new_user,
    _new_id,
    _not_str,
    _together,
    _Work,
)
from .invitations import _Invitations

__all__ = ["_Accounts"]


class _Accounts(_Invitations):
    """Accounts and members: ownership, permissions, the authorization hot path, the audit log."""

    def _check_account_rate(self, work: _Work, owner_id: str) -> None:
        """At most ``account_rate_limit`` accounts created by one user (the accounts it
        owns that were created) per ``account_rate_window``: each new account brings its
        own invitation limit, so unlimited accounts would lift it."""
        since = work.now - self.account_rate_window
        times = sorted(
            a.created_at
            for a in work.uow.accounts_for(owner_id)
            if a.owner_id == owner_id and a.created_at > since
        )
        if len(times) >= self.account_rate_limit:
            retry_after = times[len(times) - self.account_rate_limit] + self.account_rate_window
            raise RateLimited(
                f"user {owner_id!r} created {len(times)} accounts in the last "
                f"{self.account_rate_window}; the limit is {self.account_rate_limit} "
                f"(account_rate_limit). Try "
                f"again after {retry_after:%Y-%m-%d %H:%M} UTC",
                retry_after=retry_after,
            )

    def create_account(self, *, name: str, owner_id: str, owner_email: str) -> Account:
        """Create an account whose owner holds every permission."""
        name = check_name("account name", name)
        owner_id = _check_new_user("owner_id", owner_id)
        address = normalize_email(
            owner_email, check_deliverability=self.check_deliverability, what="owner_email"
        )
        with self._write() as work:
            self._check_account_rate(work, owner_id)
            account = Account(
                id=_new_id("acc"),
                name=name,
                owner_id=owner_id,
                owner_email=address.email,
                created_at=work.now,
            )
            with _together(work.uow):  # three new rows, none read back
                work.uow.add_account(account)
                work.uow.add_member(
                    Member(
                        account_id=account.id,
                        user_id=owner_id,
                        email=address.email,
                        role="owner",
                        permissions=_ALL,
                        joined_at=work.now,
                    ),
                    address.key,
                )
                self._audit(work, account.id, owner_id, "account.created", account.id, name=name)
        return account

    def get_account(self, account_id: str) -> Account:
        """The account; ``AccountNotFound`` if there is none."""
        _check_id("account_id", account_id)
        with self._read() as uow:
            return self._account(uow, account_id)

    def accounts_for(self, user_id: str) -> list[Account]:
        """Every account the user owns or is a member of, oldest first."""
        _check_id("user_id", user_id)
        with self._read() as uow:
            return uow.accounts_for(user_id)

    def rename_account(self, account_id: str, *, actor_id: str, name: str) -> Account:
        """Change the account's name; needs ``profile.edit``."""
        _check_ids(account_id=account_id, actor_id=actor_id)
        name = check_name("account name", name)
        with self._write() as work:
            account, actor = self._account_actor(work.uow, account_id, actor_id)
            held = self._held(account_id, actor_id, actor)
            self._require_held(held, account_id, actor_id, "profile.edit")
            account = attrs.evolve(account, name=name)
            with _together(work.uow):  # the change and its event, neither read back
                work.uow.update_account(account)
                self._audit(work, account_id, actor_id, "account.renamed", account_id, name=name)
        return account

    def transfer_ownership(self, account_id: str, *, actor_id: str, to_user_id: str) -> Account:
        """Make a member the owner; the old owner stays a member with all permissions."""
        _check_ids(account_id=account_id, actor_id=actor_id, to_user_id=to_user_id)
        with self._write() as work:
            uow = work.uow
            # the account and the new owner's membership in one read where the unit can
            account, found = self._account_actor(uow, account_id, to_user_id)
            if actor_id not in (account.owner_id, SYSTEM):
                raise OwnershipRequired(
                    f"only the owner of account {account_id!r} can transfer ownership; "
                    "ask the owner, or the vendor's support (teamaccess.SYSTEM)"
                )
            new_owner = self._found_member(account_id, to_user_id, found)
            if new_owner.is_owner:
                raise Conflict(f"user {to_user_id!r} already owns account {account_id!r}")
            status = new_owner.status_at(work.now)
            if status != "active":
                raise Conflict(
                    f"user {to_user_id!r} is {status} in account {account_id!r}; reactivate it "
                    "or extend its access before making it the owner"
                )
            old_owner = self._member(uow, account_id, account.owner_id)
            account = attrs.evolve(account, owner_id=to_user_id, owner_email=new_owner.email)
            with _together(uow):  # four writes, none reading what another wrote
                uow.update_member(
                    attrs.evolve(old_owner, role="member", permissions=_ALL, granted_by=actor_id)
                )
                # The owner's access never ends.
                uow.update_member(
                    attrs.evolve(
                        new_owner, role="owner", permissions=_ALL, granted_by=actor_id,
                        access_until=None,
                    )
                )  # fmt: skip
                uow.update_account(account)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "account.ownership_transferred",
                    to_user_id,
                    previous_owner=old_owner.user_id,
                )
        return account

    def members(self, account_id: str) -> list[Member]:
        """The owner first, then members in the order they joined."""
        _check_id("account_id", account_id)
        now = self.now()
        with self._read() as uow:
            self._account(uow, account_id)
            return [self._member_now(m, now) for m in uow.members(account_id)]

    def get_member(self, account_id: str, user_id: str) -> Member:
        """The user's membership, the owner's included; ``MemberNotFound`` for a non-member."""
        _check_ids(account_id=account_id, user_id=user_id)
        with self._read() as uow:
            self._account(uow, account_id)
            return self._member_now(self._member(uow, account_id, user_id))

    def set_permissions(
        self, account_id: str, user_id: str, permissions: PermissionSet, *, actor_id: str
    ) -> Member:
        """Replace a member's permissions.

        Needs ``users.manage``; the actor grants only what it holds and changes only
        members whose permissions are within its own, never its own (``PermissionDenied``).
        An actor whose own access ends grants more only to a member whose access ends no
        later; taking permissions away is always allowed.
        """
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        wanted = self._permission_set(permissions)
        with self._write() as work:
            uow = work.uow
            # the account and the actor's membership in one read where the unit can
            _, actor = self._account_actor(uow, account_id, actor_id)
            held = self._held(account_id, actor_id, actor)
            self._require_held(held, account_id, actor_id, "users.manage")
            target = self._member(uow, account_id, user_id)
            if target.is_owner:
                raise OwnershipRequired(
                    "the owner always holds every permission; transfer ownership first"
                )
            self._not_oneself(account_id, actor_id, user_id, "change the permissions of")
            self._no_escalation(actor_id, held, target.permissions, f"change user {user_id!r}")
            self._no_escalation(actor_id, held, wanted, "grant these permissions")
            if not wanted.issubset(target.permissions):
                # More permissions last until the member's end: no later than the actor's.
                self._within_own_end(
                    account_id, actor_id, actor, target.access_until,
                    f"grant more permissions to user {user_id!r}, whose access has {{given}}",
                    "first set its end with set_access_until()",
                )  # fmt: skip
            member = attrs.evolve(target, permissions=wanted, granted_by=actor_id)
            with _together(uow):  # the change and its event, neither read back
                uow.update_member(member)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "member.permissions_changed",
                    user_id,
                    before=target.permissions.to_list(),
                    after=wanted.to_list(),
                )
        return self._member_now(member, work.now)

    def remove_member(self, account_id: str, user_id: str, *, actor_id: str) -> None:
        """Remove a member (or leave, when ``actor_id == user_id``).

        The invitations the member sent and that are still pending are revoked with it.
        """
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        with self._write() as work:
            uow = work.uow
            # The actor is judged before the target is read: an outsider must get the same
            # refusal whether the user is a member, the owner or no one (no membership
            # oracle). Leaving (actor == target) reads the member's own row in that read.
            _, actor = self._account_actor(uow, account_id, actor_id)
            held = None
            if actor_id != user_id:
                held = self._held(account_id, actor_id, actor)
                self._require_held(held, account_id, actor_id, "users.manage")
                target = self._member(uow, account_id, user_id)
            else:
                target = self._found_member(account_id, user_id, actor)
            if target.is_owner:
                raise OwnershipRequired(
                    "the owner cannot be removed or leave; transfer ownership first"
                )
            if held is not None:
                self._no_escalation(actor_id, held, target.permissions, f"remove user {user_id!r}")
            action = "member.left" if actor_id == user_id else "member.removed"
            # The delete and its event go with the read of the member's invitations, and
            # their closes together after it; none reads what those write.
            with _together(uow):
                uow.delete_member(account_id, user_id)
                self._audit(work, account_id, actor_id, action, user_id)
                for inv in uow.invitations(account_id, status="pending", invited_by=user_id):
                    if inv.is_expired(work.now):
                        # Over already, as a new invitation to the address would close it.
                        self._close_invitation(work, inv, "expired", SYSTEM)
                    else:
                        self._close_invitation(
                            work, inv, "revoked", actor_id, reason="inviter removed"
                        )

    def can(
        self, user_id: str, account_id: str, permission: str, *, resource: str | None = None
    ) -> bool:
        """May *user_id* use *permission* in *account_id*? ``UnknownPermission`` on a typo.

        Without *resource*, only an account-wide grant counts; with it, an account-wide
        grant or one on that resource. A suspended or expired member may do nothing.
        """
        # The hot path: two type() tests here, the full check only when one fails.
        if type(user_id) is not str or type(account_id) is not str:
            _not_str(user_id=user_id, account_id=account_id)
        # The catalog's dict itself, not Catalog.__contains__: a Python call less per
        # request. An unhashable permission is as unknown as a misspelt one.
        try:
            known = permission in self.catalog._by_name
        except TypeError:
            known = False
        if not known:
            raise self.catalog.unknown(permission)
        if user_id == SYSTEM:
            return True
        held = self._store.grant(account_id, user_id)
        if held is None:
            return False
        perms, until = held
        # The clock is read only for a member whose access ends: no extra work otherwise.
        if until is not None and self.now() >= until:
            return False
        if resource is None:
            return perms.is_all or permission in perms.names
        if type(resource) is not str:
            _not_str(resource=resource)
        return perms.is_all or permission in perms.names or (permission, resource) in perms.scopes

    def require(
        self, user_id: str, account_id: str, permission: str, *, resource: str | None = None
    ) -> None:
        """Raise ``PermissionDenied`` unless ``can()`` says yes."""
        if not self.can(user_id, account_id, permission, resource=resource):
            where = "" if resource is None else f" on {resource!r}"
            raise PermissionDenied(
                f"user {user_id!r} may not use {permission!r}{where} in account {account_id!r}",
                user_id=user_id,
                account_id=account_id,
                permission=permission,
            )

    def permissions_of(self, user_id: str, account_id: str) -> PermissionSet:
        """What the user holds in the account; ``PermissionSet.none()`` for a non-member."""
        if type(user_id) is not str or type(account_id) is not str:
            _not_str(user_id=user_id, account_id=account_id)
        if user_id == SYSTEM:
            return _ALL
        held = self._store.grant(account_id, user_id)
        if held is None or (held[1] is not None and self.now() >= held[1]):
            return PermissionSet.none()
        return held[0]

    def resources_for(self, user_id: str, account_id: str, permission: str) -> Resources:
        """Where *user_id* may use *permission* in *account_id*: ``Resources.all()`` for an
        account-wide grant, else the resource ids it holds it on (possibly none).

        For a panel's list of services: ``resources_for(...).filter(service_ids)``.
        """
        if type(user_id) is not str or type(account_id) is not str:
            _not_str(user_id=user_id, account_id=account_id)
        if permission not in self.catalog:
            raise self.catalog.unknown(permission)
        return self.permissions_of(user_id, account_id).resources(permission)

    def audit_log(self, account_id: str, *, limit: int = 50) -> list[AuditEvent]:
        """The account's newest *limit* events, newest first."""
        _check_id("account_id", account_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"limit must be a non-negative integer, not {limit!r}")
        # A SQL LIMIT is a 64-bit integer: a larger one (a page number far beyond the
        # end) means "all", not an OverflowError from the driver.
        limit = min(limit, 2**62)
        with self._read() as uow:
            self._account(uow, account_id)
            return uow.events(account_id, limit=limit)

"""A permission removed from the catalog while stored rows still hold it.

An application restarts with a catalog that lacks a permission members and invitations
were granted. Every backend behaves alike: nothing crashes, the stored grant is shown as
stored, no check ever answers yes for it, the mail leaves it out, and a member with every
permission removes it with ``set_permissions()``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    Catalog,
    MemoryMailer,
    Permission,
    PermissionDenied,
    PermissionSet,
    Store,
    TeamAccess,
    UnknownPermission,
)
from teamaccess.testing import FrozenClock

LEGACY = "legacy.backup"
WITH_LEGACY = Catalog([*Catalog.default(), Permission(LEGACY, "Order backups", scoped=True)])


def _team(store: Store, catalog: Catalog | None, mailer: MemoryMailer) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=FrozenClock(START),
        catalog=catalog,
        accept_url="https://panel.example.com/accept?token={token}",
    )


def test_stored_grants_of_a_removed_permission(
    store_factory: Callable[[], Store], backend: str
) -> None:
    shared = store_factory()
    before = _team(shared, WITH_LEGACY, MemoryMailer())
    acct = before.create_account(name="Muster GmbH", owner_id="max", owner_email="chef@muster.de")
    held = PermissionSet.of(LEGACY, "billing.view") | PermissionSet.on(LEGACY, "srv-1")
    inv = before.invite(acct.id, actor_id="max", email="anna@example.org", permissions=held)
    assert inv.token is not None
    before.accept_invitation(inv.token, user_id="anna", email="anna@example.org")
    mgr = before.invite(
        acct.id,
        actor_id="max",
        email="mgr@example.org",
        permissions=PermissionSet.of("users.manage", "billing.view"),
    )
    assert mgr.token is not None
    before.accept_invitation(mgr.token, user_id="mgr", email="mgr@example.org")
    waiting = before.invite(
        acct.id, actor_id="max", email="olga@example.org", permissions=PermissionSet.of(LEGACY)
    )
    # The restart: the same data, a catalog without the permission.
    mailer = MemoryMailer()
    after = _team(shared if backend == "memory" else store_factory(), None, mailer)

    # Shown as stored: the member and the invitation keep the name.
    assert after.get_member(acct.id, "anna").permissions == held
    assert after.permissions_of("anna", acct.id) == held
    assert [i.permissions for i in after.pending_invitations(acct.id)] == [PermissionSet.of(LEGACY)]
    # Never a yes: asking for the removed name is a typo like any other, and the
    # permissions the catalog still has answer as before.
    with pytest.raises(UnknownPermission, match=LEGACY):
        after.can("anna", acct.id, LEGACY)
    with pytest.raises(UnknownPermission, match=LEGACY):
        after.resources_for("anna", acct.id, LEGACY)
    assert after.can("anna", acct.id, "billing.view")
    assert not after.can("anna", acct.id, "billing.pay")
    # Nobody can grant it again.
    with pytest.raises(UnknownPermission, match=LEGACY):
        after.set_permissions(acct.id, "anna", PermissionSet.of(LEGACY), actor_id="max")
    # A resent invitation's mail lists only what the catalog knows.
    after.resend_invitation(waiting.id, actor_id="max")
    body = mailer.outbox[-1].get_body(("plain",))
    assert body is not None
    assert "Order backups" not in body.get_content()
    assert LEGACY not in body.get_content()
    # The stored name still counts against escalation: a manager without it cannot
    # change the member, and is told which name it lacks.
    with pytest.raises(PermissionDenied, match=LEGACY):
        after.set_permissions(acct.id, "anna", PermissionSet.none(), actor_id="mgr")
    # Removable: the owner replaces the set; the export reads the rows as stored.
    assert after.export_person(user_id="anna")["memberships"]
    changed = after.set_permissions(
        acct.id, "anna", PermissionSet.of("billing.view"), actor_id="max"
    )
    assert changed.permissions == PermissionSet.of("billing.view")
    assert after.get_member(acct.id, "anna").permissions == PermissionSet.of("billing.view")
    revoked = after.revoke_invitation(waiting.id, actor_id="max")
    assert revoked.status == "revoked"

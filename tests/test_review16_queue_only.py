"""A queue-only ``TeamAccess`` (``mailer=None``) whose ``delivery`` was set to ``"now"``
after it was built: its mail still only waits for a worker, which mints the token its
mail carries. So the call must not hand back a token as if it had been mailed: that
one stops working the moment the worker sends."""

from __future__ import annotations

import pytest
from tests.conftest import SECRET

from teamaccess import InvalidInvitation, MemoryMailer, MemoryStore, PermissionSet, TeamAccess

SENDER = "Panel <noreply@panel.example.net>"


def _switched(store: MemoryStore) -> TeamAccess:
    panel = TeamAccess(store, None, secret_key=SECRET, delivery="queue", sender=SENDER)
    panel.delivery = "now"  # a plain attribute
    return panel


def test_invite_hands_back_no_token_the_worker_replaces() -> None:
    store = MemoryStore()
    panel = _switched(store)
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    inv = panel.invite(
        acct.id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.none()
    )
    worker = TeamAccess(store, MemoryMailer(), secret_key=SECRET, sender=SENDER)
    assert [row.status for row in worker.deliver_pending()] == ["sent"]
    if inv.token is not None:
        # What the caller was given must still open the invitation.
        try:
            panel.inspect_invitation(inv.token)
        except InvalidInvitation:
            pytest.fail("invite() returned a token that the worker's mail replaced")


def test_resend_hands_back_no_token_the_worker_replaces() -> None:
    store = MemoryStore()
    panel = _switched(store)
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    inv = panel.invite(
        acct.id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.none()
    )
    again = panel.resend_invitation(inv.id, actor_id="max")
    worker = TeamAccess(store, MemoryMailer(), secret_key=SECRET, sender=SENDER)
    assert [row.status for row in worker.deliver_pending()] == ["sent"]
    assert again.token is None

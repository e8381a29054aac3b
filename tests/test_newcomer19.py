"""What a new user met embedding the library in a Flask panel from the docs alone."""

from __future__ import annotations

import inspect
import re

import pytest

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    TeamAccess,
    UnknownPermission,
    ValidationError,
)
from teamaccess._service.delivery import _Delivery


@pytest.fixture
def team() -> TeamAccess:
    return TeamAccess(MemoryStore(), MemoryMailer(), secret_key="newcomer")


class TestDeliverPendingSignature:
    """help() and editors show deliver_pending()'s own keywords, not (*args, **kwargs)."""

    def test_the_public_signature_is_the_real_one(self) -> None:
        shown = inspect.signature(TeamAccess.deliver_pending)
        assert shown == inspect.signature(_Delivery.deliver_pending)
        assert list(shown.parameters) == ["self", "limit", "stop"]

    def test_it_still_sends_and_passes_its_arguments(self) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(MemoryStore(), mailer, secret_key="newcomer", delivery="queue")
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        for n in range(2):
            team.invite(
                account.id, actor_id="max", email=f"p{n}@m.de", permissions=PermissionSet.none()
            )
        assert [row.status for row in team.deliver_pending(limit=1)] == ["sent"]
        assert team.deliver_pending(stop=lambda: True) == []  # stopped before the second
        assert len(mailer.outbox) == 1
        with pytest.raises(ValidationError, match="limit must be a positive integer"):
            team.deliver_pending(limit=0)


class TestPermissionsAsAString:
    """A string where a PermissionSet belongs gets a hint that works when followed."""

    @pytest.mark.parametrize(
        ("given", "written"),
        [
            ("billing.view", "PermissionSet.of('billing.view')"),
            ("*", "PermissionSet.all()"),
            ("all", "PermissionSet.all()"),
            ("ALL", "PermissionSet.all()"),
            (
                "billing.view, support.tickets",
                "PermissionSet.of('billing.view', 'support.tickets')",
            ),
            ("", "PermissionSet.none()"),
        ],
    )
    def test_the_hint(self, team: TeamAccess, given: str, written: str) -> None:
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        with pytest.raises(ValidationError) as caught:
            team.invite(account.id, actor_id="max", email="dev@m.de", permissions=given)
        assert str(caught.value).endswith(f"; write {written}")
        # What the hint says is accepted as it stands (it was PermissionSet.of('*'),
        # which is refused as an unknown permission).
        hinted = eval(written, {"PermissionSet": PermissionSet})  # noqa: S307  (our own text)
        assert team.invite(account.id, actor_id="max", email="dev@m.de", permissions=hinted)
        assert team.pending_invitations(account.id)[0].permissions == hinted

    def test_set_permissions_says_the_same(self, team: TeamAccess) -> None:
        account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="c@m.de")
        inv = team.invite(
            account.id, actor_id="max", email="dev@m.de", permissions=PermissionSet.none()
        )
        team.accept_invitation(inv.token or "", user_id="anna", email="dev@m.de")
        with pytest.raises(ValidationError, match=re.escape("; write PermissionSet.all()")):
            team.set_permissions(account.id, "anna", "*", actor_id="max")  # type: ignore[arg-type]
        assert team.permissions_of("anna", account.id) == PermissionSet.none()

    def test_the_star_in_of_is_still_refused(self) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="newcomer")
        account = team.create_account(name="M", owner_id="max", owner_email="c@m.de")
        with pytest.raises(UnknownPermission, match=re.escape("write PermissionSet.all()")):
            team.invite(
                account.id, actor_id="max", email="d@m.de", permissions=PermissionSet.of("*")
            )

"""How a vendor tests its own panel code with teamaccess's in-memory backend.

Copy this into your test suite: ``MemoryStore`` is a real backend (held to the same
contract as SQLite), ``MemoryMailer`` keeps the mail in ``.outbox`` like Django's
``mail.outbox``, and ``FrozenClock`` moves time without sleeping.

Run it with ``python -m pytest examples/test_vendor_example.py``. docs/testing.md goes
further: reading the token from the mail, scoped access, the audit log, a failing mail
server, tests in parallel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from teamaccess import (
    InvitationExpired,
    MemoryMailer,
    MemoryStore,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
)
from teamaccess.testing import FrozenClock


# -- the vendor's own code under test ---------------------------------------------------
def invoice_page(team: TeamAccess, user_id: str, account_id: str) -> str:
    """A panel view: only people with billing.view see invoices."""
    team.require(user_id, account_id, "billing.view")
    return "<h1>Invoices</h1>"


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 5, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def team(clock: FrozenClock, mailer: MemoryMailer) -> TeamAccess:
    return TeamAccess(MemoryStore(), mailer, secret_key="test-only", clock=clock)


@pytest.fixture
def account_id(team: TeamAccess) -> str:
    return team.create_account(name="Muster GmbH", owner_id="max", owner_email="chef@muster.de").id


def join(team: TeamAccess, account_id: str, user_id: str, *permissions: str) -> None:
    inv = team.invite(
        account_id,
        actor_id="max",
        email=f"{user_id}@example.com",
        permissions=PermissionSet.of(*permissions),
    )
    assert inv.token is not None
    team.accept_invitation(inv.token, user_id=user_id, email=f"{user_id}@example.com")


# -- the vendor's tests -----------------------------------------------------------------
class TestInvoicePage:
    """Only members with billing.view see the invoices."""

    def test_bookkeeper_sees_invoices(self, team: TeamAccess, account_id: str) -> None:
        join(team, account_id, "bernd", "billing.view")
        assert invoice_page(team, "bernd", account_id) == "<h1>Invoices</h1>"

    def test_programmer_does_not(self, team: TeamAccess, account_id: str) -> None:
        join(team, account_id, "anna", "services.view")
        with pytest.raises(PermissionDenied, match=r"may not use 'billing\.view'"):
            invoice_page(team, "anna", account_id)

    def test_revoking_the_permission_takes_effect_at_once(
        self, team: TeamAccess, account_id: str
    ) -> None:
        join(team, account_id, "bernd", "billing.view")
        team.set_permissions(account_id, "bernd", PermissionSet.none(), actor_id="max")
        with pytest.raises(PermissionDenied):
            invoice_page(team, "bernd", account_id)


class TestInvitationMail:
    """The mail the invitee gets, and what happens when they wait too long."""

    def test_mail_carries_the_link(
        self, team: TeamAccess, mailer: MemoryMailer, account_id: str
    ) -> None:
        inv = team.invite(
            account_id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.all()
        )
        [message] = mailer.outbox
        assert message["To"] == "dev@agentur.de"
        body = message.get_body(("plain",))
        assert body is not None
        assert inv.token is not None
        assert inv.token in body.get_content()

    def test_link_expires_after_seven_days(
        self, team: TeamAccess, clock: FrozenClock, account_id: str
    ) -> None:
        inv = team.invite(
            account_id, actor_id="max", email="dev@agentur.de", permissions=PermissionSet.all()
        )
        assert inv.token is not None
        clock.advance(timedelta(days=7, seconds=1))
        with pytest.raises(InvitationExpired, match="ask the account owner to resend it"):
            team.accept_invitation(inv.token, user_id="anna", email="dev@agentur.de")

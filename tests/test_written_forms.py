"""A permission written as to_list() writes it ('services.manage@srv-1', '*') where a
name is expected is still an UnknownPermission, but its message says what it is and what
to write: the audit log's details, `members --json` and import rows show this form, and
a developer copying it into invite(), set_permissions() or can() was told only to use one
of the catalog's names, which 'services.manage' already is."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.conftest import SECRET

from teamaccess import (
    Account,
    Catalog,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    TeamAccess,
    UnknownPermission,
)


@pytest.fixture
def team() -> TeamAccess:
    return TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET)


@pytest.fixture
def account(team: TeamAccess) -> Account:
    return team.create_account(name="A", owner_id="o", owner_email="o@example.com")


Call = Callable[[TeamAccess, str, list[str]], object]

CALLS: dict[str, Call] = {
    "invite": lambda t, a, p: t.invite(a, actor_id="o", email="x@example.com", permissions=p),
    "invite (a PermissionSet)": lambda t, a, p: t.invite(
        a, actor_id="o", email="x@example.com", permissions=PermissionSet.of(*p)
    ),
    "can": lambda t, a, p: t.can("o", a, p[0]),
    "resources_for": lambda t, a, p: t.resources_for("o", a, p[0]),
}


class TestScopedForm:
    """'permission@resource' names PermissionSet.on() and can(resource=)."""

    @pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
    def test_message_says_how_to_write_it(
        self, team: TeamAccess, account: Account, call: Call
    ) -> None:
        with pytest.raises(UnknownPermission) as raised:
            call(team, account.id, ["services.manage@srv-1"])
        message = str(raised.value)
        assert message.startswith("unknown permission 'services.manage@srv-1'")
        assert "PermissionSet.on('services.manage', 'srv-1')" in message
        assert "resource='srv-1'" in message
        assert team.pending_invitations(account.id) == []

    def test_an_unknown_name_before_the_at_reads_as_unknown(self) -> None:
        message = str(Catalog.default().unknown("billing.veiw@srv-1"))
        assert "PermissionSet.on" not in message
        assert "use one of the catalog's names" in message


class TestAllForm:
    """'*' names PermissionSet.all()."""

    @pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
    def test_message_says_how_to_write_it(
        self, team: TeamAccess, account: Account, call: Call
    ) -> None:
        pattern = r"^unknown permission '\*'.*PermissionSet\.all\(\)"
        with pytest.raises(UnknownPermission, match=pattern):
            call(team, account.id, ["*"])

"""Nobody changes their own membership: a member holding ``users.manage`` cannot change
its own permissions, suspend or reactivate itself, or move its own end of access, through
the library or by posting the member page's forms by hand (the page offers none of them
for oneself). Narrowing oneself would be harmless, but a member whose access the owner
limited could push its own end date away; leaving stays open."""

from datetime import timedelta

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    Account,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
)

P = PermissionSet.of
MANAGER = P("users.manage", "billing.view")


@pytest.fixture
def temp_manager(team: TeamAccess, account: Account) -> str:
    """A member managing users until tomorrow, as the owner set it."""
    add_member(team, account.id, "temp", MANAGER, email="temp@example.org")
    team.set_access_until(account.id, "temp", START + timedelta(days=1), actor_id="owner")
    return "temp"


def events(team: TeamAccess, account: Account) -> list[str]:
    return [e.action for e in team.audit_log(account.id)]


class TestTheLibrary:
    """set_permissions, suspend/reactivate and set_access_until refuse the actor itself."""

    def test_its_own_permissions(
        self, team: TeamAccess, account: Account, temp_manager: str
    ) -> None:
        before = events(team, account)
        for wanted in (P("billing.view"), MANAGER, P("users.manage")):
            with pytest.raises(PermissionDenied, match="nobody changes their own"):
                team.set_permissions(account.id, temp_manager, wanted, actor_id=temp_manager)
        assert team.get_member(account.id, temp_manager).permissions == MANAGER
        assert events(team, account) == before

    def test_its_own_end_of_access(
        self, team: TeamAccess, account: Account, temp_manager: str
    ) -> None:
        for until in (None, START + timedelta(days=3650)):
            with pytest.raises(PermissionDenied, match="cannot end the access of itself"):
                team.set_access_until(account.id, temp_manager, until, actor_id=temp_manager)
        member = team.get_member(account.id, temp_manager)
        assert member.access_until == START + timedelta(days=1)

    def test_suspending_itself(self, team: TeamAccess, account: Account, temp_manager: str) -> None:
        with pytest.raises(PermissionDenied, match="cannot suspend itself"):
            team.suspend_member(account.id, temp_manager, actor_id=temp_manager)
        assert team.get_member(account.id, temp_manager).status == "active"

    def test_others_and_leaving_stay_as_they_were(
        self, team: TeamAccess, account: Account, temp_manager: str
    ) -> None:
        add_member(team, account.id, "peer", MANAGER, email="peer@example.org")
        # another member who manages users may, as the owner may
        changed = team.set_permissions(account.id, temp_manager, P("billing.view"),
                                       actor_id="peer")  # fmt: skip
        assert changed.permissions == P("billing.view")
        team.set_access_until(account.id, "peer", None, actor_id="owner")
        with pytest.raises(OwnershipRequired):
            team.set_permissions(account.id, "owner", P("billing.view"), actor_id="owner")
        team.remove_member(account.id, "peer", actor_id="peer")  # leaving
        assert [m.user_id for m in team.members(account.id)] == ["owner", temp_manager]


class TestThePages:
    """The member page's forms, posted by hand for oneself, write nothing and say why."""

    @pytest.mark.parametrize(
        ("language", "said"),
        [
            ("en", "Nobody changes their own permissions or access."),
            ("de", "Niemand ändert seine eigenen Berechtigungen oder seinen eigenen Zugriff."),
        ],
    )
    @pytest.mark.parametrize(
        ("form", "data"),
        [
            ("", {"scope": "selected", "permission": ["billing.view"]}),
            ("", {"scope": "all"}),
            ("/access-until", {"action": "set", "until": "2099-12-31"}),
            ("/access-until", {"action": "clear"}),
            ("/suspend", {"confirm": "yes"}),
            ("/reactivate", {}),
        ],
    )
    def test_posted_for_oneself(
        self, form: str, data: dict[str, object], language: str, said: str
    ) -> None:
        pytest.importorskip("flask")
        from tests.web_panel import Panel

        panel = Panel()
        panel.join("anna", "users.manage", "billing.view")
        until = panel.clock.now() + timedelta(days=1)
        panel.team.set_access_until(panel.account, "anna", until, actor_id="max")
        before = panel.team.get_member(panel.account, "anna")
        status, body, _ = panel.post("anna", f"{panel.users()}/anna{form}", data, language)
        assert status == 403
        assert said in body
        assert panel.team.get_member(panel.account, "anna") == before

    def test_the_page_offers_no_form_for_oneself(self) -> None:
        pytest.importorskip("flask")
        from tests.web_panel import Panel

        panel = Panel()
        panel.join("anna", "users.manage", "billing.view")
        status, body = panel.get("anna", f"{panel.users()}/anna")
        assert status == 200
        assert 'name="scope"' not in body
        assert "/access-until" not in body

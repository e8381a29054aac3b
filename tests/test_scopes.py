"""Grants on single resources: the set algebra, can() with resource=, resources_for(),
no escalation with scopes, invitations with scopes, forget_resource()."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import add_member

from teamaccess import (
    SYSTEM,
    Account,
    Catalog,
    InvitationRevoked,
    MemoryMailer,
    Permission,
    PermissionDenied,
    PermissionSet,
    Resources,
    TeamAccess,
    UnknownPermission,
    ValidationError,
)

P = PermissionSet.of
on = PermissionSet.on


class TestCatalogScopes:
    """The catalog says which permissions may be granted on single resources."""

    def test_default_catalog_marks_the_service_permissions(self) -> None:
        scoped = Catalog.default().scoped_names()
        for name in ("services.view", "services.manage", "credentials.view", "firewall.unblock"):
            assert name in scoped
        assert "billing.view" not in scoped

    def test_scoping_an_unmarked_permission_is_validation_error(
        self, team: TeamAccess, account: Account
    ) -> None:
        with pytest.raises(ValidationError, match=r"'billing\.view' cannot be granted on single"):
            team.invite(account.id, actor_id="owner", email="a@example.org",
                        permissions=on("billing.view", "srv-1"))  # fmt: skip
        assert team.pending_invitations(account.id) == []

    def test_scoping_an_unknown_permission_is_unknown_permission(
        self, team: TeamAccess, account: Account
    ) -> None:
        with pytest.raises(UnknownPermission):
            team.invite(account.id, actor_id="owner", email="a@example.org",
                        permissions=on("services.mangae", "srv-1"))  # fmt: skip

    def test_at_sign_in_a_permission_name_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="must not contain '@'"):
            Permission("a@b", "A at B")

    def test_a_vendor_catalog_scopes_its_own(self) -> None:
        catalog = Catalog([Permission("vm.console", "Console", scoped=True), "billing.view"])
        assert catalog.check(on("vm.console", "vm-7")) == on("vm.console", "vm-7")


class TestPermissionSetWithScopes:
    """|, -, &, issubset and the stored list form handle scoped grants."""

    def test_union_and_repr(self) -> None:
        s = P("billing.view") | on("services.manage", "srv-1", "srv-2")
        assert repr(s) == (
            "PermissionSet.of('billing.view') | PermissionSet.on('services.manage', 'srv-1', "
            "'srv-2')"
        )
        assert "services.manage" not in s  # a scoped grant never counts as account-wide
        assert s.allows("services.manage", "srv-1")
        assert not s.allows("services.manage", "srv-3")
        assert not s.allows("services.manage")

    def test_account_wide_absorbs_scopes(self) -> None:
        s = on("services.manage", "srv-1") | P("services.manage")
        assert s == P("services.manage")
        assert PermissionSet.all() | on("services.view", "x") == PermissionSet.all()

    def test_issubset(self) -> None:
        assert on("services.manage", "srv-1") <= P("services.manage")
        assert on("services.manage", "srv-1") <= on("services.manage", "srv-1", "srv-2")
        assert not on("services.manage", "srv-3") <= on("services.manage", "srv-1")
        # account-wide is never within grants on resources, however many
        assert not P("services.manage") <= on("services.manage", "srv-1", "srv-2")
        assert not on("services.view", "srv-1") <= on("services.manage", "srv-1")

    def test_difference_names_what_is_missing(self) -> None:
        wanted = P("billing.view", "services.view") | on("services.manage", "srv-1", "srv-2")
        held = P("billing.view") | on("services.view", "srv-1") | on("services.manage", "srv-1")
        assert (wanted - held).to_list() == ["services.view", "services.manage@srv-2"]

    def test_intersection(self) -> None:
        a = P("services.manage") | on("services.view", "srv-1")
        b = on("services.manage", "srv-2") | P("services.view")
        assert a & b == on("services.manage", "srv-2") | on("services.view", "srv-1")

    def test_list_form_round_trips(self) -> None:
        s = P("billing.view") | on("services.manage", "srv-1", "a@b")
        assert s.to_list() == ["billing.view", "services.manage@a@b", "services.manage@srv-1"]
        assert PermissionSet.from_list(s.to_list()) == s

    def test_on_needs_a_resource(self) -> None:
        with pytest.raises(ValidationError, match="at least one resource id"):
            on("services.manage")

    @pytest.mark.parametrize("bad", ["", " srv", "srv\n1", "x" * 201, 5, None])
    def test_bad_resource_id(self, bad: object) -> None:
        with pytest.raises(ValidationError, match="resource id"):
            on("services.manage", bad)  # type: ignore[arg-type]

    @given(
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
        st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r1", "r2"]))),
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
        st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r1", "r2"]))),
    )
    def test_algebra_agrees_with_allows(
        self,
        names1: list[str],
        scopes1: list[tuple[str, str]],
        names2: list[str],
        scopes2: list[tuple[str, str]],
    ) -> None:
        a = PermissionSet(names1, scopes=scopes1)
        b = PermissionSet(names2, scopes=scopes2)
        grants = [(p, r) for p in "abc" for r in ("r1", "r2", "r3")]
        for p, r in grants:
            assert (a | b).allows(p, r) == (a.allows(p, r) or b.allows(p, r))
            assert (a & b).allows(p, r) == (a.allows(p, r) and b.allows(p, r))
            # what b lacks of a; an account-wide grant stays unless b holds it account-wide
            expected = (p in a.names and not b.allows(p)) or (a.allows(p, r) and not b.allows(p, r))
            assert (a - b).allows(p, r) == expected
        assert (a <= b) == (all(b.allows(p, r) for p, r in a.scopes) and a.names <= b.names)
        assert a <= a | b
        assert a & b <= a
        assert (a - b) | b >= a
        assert PermissionSet.from_list(a.to_list()) == a


class TestCanWithResource:
    """can(..., resource=): account-wide or that resource; without it, account-wide only."""

    def test_scoped_member(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "agency", on("services.manage", "srv-1") | P("billing.view"))
        assert team.can("agency", account.id, "services.manage", resource="srv-1")
        assert not team.can("agency", account.id, "services.manage", resource="srv-2")
        assert not team.can("agency", account.id, "services.manage")
        assert team.can("agency", account.id, "billing.view")
        assert team.can("agency", account.id, "billing.view", resource="srv-2")
        team.require("agency", account.id, "services.manage", resource="srv-1")
        with pytest.raises(PermissionDenied, match=r"'services\.manage' on 'srv-2'"):
            team.require("agency", account.id, "services.manage", resource="srv-2")

    def test_account_wide_member_may_use_every_resource(
        self, team: TeamAccess, account: Account
    ) -> None:
        add_member(team, account.id, "admin", P("services.manage"))
        assert team.can("admin", account.id, "services.manage", resource="anything")
        assert team.can("owner", account.id, "services.manage", resource="anything")
        assert team.can(SYSTEM, account.id, "services.manage", resource="anything")

    def test_unknown_permission_with_resource(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(UnknownPermission):
            team.can("owner", account.id, "services.mangae", resource="srv-1")

    def test_scoped_grant_never_passes_a_use_case_check(
        self, team: TeamAccess, account: Account
    ) -> None:
        # users.manage cannot be scoped, but a scoped grant of a scoped permission never
        # stands in for the account-wide one a use case needs.
        add_member(team, account.id, "agency", P("users.manage") | on("services.view", "s"))
        with pytest.raises(PermissionDenied, match=r"services\.view"):
            team.invite(account.id, actor_id="agency", email="x@example.org",
                        permissions=P("services.view"))  # fmt: skip


class TestResourcesFor:
    """resources_for() says "all" with Resources.all(), never None."""

    def test_answers(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "agency", on("services.view", "srv-1", "srv-2"))
        got = team.resources_for("agency", account.id, "services.view")
        assert got == Resources.of("srv-1", "srv-2")
        assert got.filter(["srv-3", "srv-2", "srv-1"]) == ["srv-2", "srv-1"]
        assert team.resources_for("owner", account.id, "services.view") == Resources.all()
        assert team.resources_for("owner", account.id, "services.view").is_all
        assert team.resources_for("agency", account.id, "services.manage") == Resources()
        assert not team.resources_for("stranger", account.id, "services.view")
        with pytest.raises(UnknownPermission):
            team.resources_for("agency", account.id, "services.veiw")

    def test_suspended_member_has_none(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "agency", on("services.view", "srv-1"))
        team.suspend_member(account.id, "agency", actor_id="owner")
        assert team.resources_for("agency", account.id, "services.view") == Resources()


class TestNoEscalationWithScopes:
    """An actor grants on a resource only what it holds there or account-wide."""

    @pytest.fixture
    def agency(self, team: TeamAccess, account: Account) -> str:
        add_member(team, account.id, "agency", P("users.manage") | on("services.manage", "srv-1"))
        return "agency"

    def test_may_pass_on_its_own_resource(
        self, team: TeamAccess, account: Account, agency: str
    ) -> None:
        add_member(team, account.id, "dev", on("services.manage", "srv-1"), actor_id=agency)
        assert team.can("dev", account.id, "services.manage", resource="srv-1")

    @pytest.mark.parametrize(
        "wanted",
        [on("services.manage", "srv-2"), P("services.manage"), on("services.view", "srv-1")],
    )
    def test_may_not_grant_beyond(
        self, team: TeamAccess, account: Account, agency: str, wanted: PermissionSet
    ) -> None:
        with pytest.raises(PermissionDenied, match="grant only permissions you hold"):
            team.invite(account.id, actor_id=agency, email="x@example.org", permissions=wanted)
        add_member(team, account.id, "dev", P())
        with pytest.raises(PermissionDenied):
            team.set_permissions(account.id, "dev", wanted, actor_id=agency)

    def test_may_not_change_a_member_with_more(
        self, team: TeamAccess, account: Account, agency: str
    ) -> None:
        add_member(team, account.id, "other", on("services.manage", "srv-2"))
        with pytest.raises(PermissionDenied, match="change user 'other'"):
            team.set_permissions(account.id, "other", P(), actor_id=agency)
        with pytest.raises(PermissionDenied, match="remove user 'other'"):
            team.remove_member(account.id, "other", actor_id=agency)
        with pytest.raises(PermissionDenied):
            team.suspend_member(account.id, "other", actor_id=agency)

    def test_invitation_is_rechecked_at_acceptance(
        self, team: TeamAccess, account: Account, agency: str
    ) -> None:
        inv = team.invite(account.id, actor_id=agency, email="dev@example.org",
                          permissions=on("services.manage", "srv-1"))  # fmt: skip
        team.set_permissions(account.id, agency, P("users.manage") | on("services.manage", "srv-9"),
                             actor_id="owner")  # fmt: skip
        assert team.get_invitation(inv.id).status == "revoked"
        assert inv.token is not None
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(inv.token, user_id="dev", email="dev@example.org")
        assert [m.user_id for m in team.members(account.id)] == ["owner", "agency"]


class TestScopedInvitation:
    """An invitation carries its scopes to the member and shows them in the mail."""

    def test_carried_and_shown(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        wanted = P("billing.view") | on("services.manage", "srv-1", "<b>srv-2</b>")
        inv = team.invite(account.id, actor_id="owner", email="dev@example.org",
                          permissions=wanted, language="de")  # fmt: skip
        assert team.get_invitation(inv.id).permissions == wanted
        msg = email.message_from_bytes(
            mailer.outbox[-1].as_bytes(policy=email.policy.SMTP), policy=email.policy.default
        )
        assert isinstance(msg, email.message.EmailMessage)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert text is not None
        assert html is not None
        assert "Dienste verwalten, nur für: <b>srv-2</b>, srv-1" in text.get_content()
        assert "Dienste verwalten, nur für: &lt;b&gt;srv-2&lt;/b&gt;, srv-1" in html.get_content()
        assert "<b>srv-2" not in html.get_content()
        assert inv.token is not None
        member = team.accept_invitation(inv.token, user_id="dev", email="dev@example.org")
        assert member.permissions == wanted
        assert team.audit_log(account.id, limit=1)[0].details["permissions"] == wanted.to_list()


class TestForgetResource:
    """forget_resource() removes every grant on a deleted resource, audited."""

    def test_removes_grants_and_pending_invitation_scopes(
        self, team: TeamAccess, account: Account
    ) -> None:
        add_member(team, account.id, "a", on("services.manage", "srv-1", "srv-2"))
        add_member(team, account.id, "b", P("services.manage") | on("services.view", "srv-1"))
        add_member(team, account.id, "c", on("services.view", "srv-2"))
        inv = team.invite(account.id, actor_id="owner", email="d@example.org",
                          permissions=on("credentials.view", "srv-1"))  # fmt: skip
        changed = team.forget_resource(account.id, "srv-1", actor_id=SYSTEM)
        assert changed == ["a", "b"]
        assert team.get_member(account.id, "a").permissions == on("services.manage", "srv-2")
        assert team.get_member(account.id, "b").permissions == P("services.manage")
        assert team.get_member(account.id, "c").permissions == on("services.view", "srv-2")
        assert team.get_invitation(inv.id).permissions == P()
        assert not team.can("a", account.id, "services.manage", resource="srv-1")
        event = team.audit_log(account.id, limit=1)[0]
        assert (event.action, event.target, event.actor_id) == (
            "resource.forgotten",
            "srv-1",
            SYSTEM,
        )
        assert event.details == {"members": ["a", "b"], "invitations": [inv.id]}

    def test_needs_the_rights_to_change_each_member(
        self, team: TeamAccess, account: Account
    ) -> None:
        add_member(team, account.id, "agency", P("users.manage") | on("services.manage", "srv-1"))
        add_member(team, account.id, "x", on("services.manage", "srv-1"))
        add_member(team, account.id, "y", on("services.manage", "srv-1") | P("billing.view"))
        before = team.members(account.id)
        with pytest.raises(PermissionDenied, match="change user 'y'"):
            team.forget_resource(account.id, "srv-1", actor_id="agency")
        assert team.members(account.id) == before  # nothing half-written
        with pytest.raises(PermissionDenied, match=r"users\.manage"):
            team.forget_resource(account.id, "srv-1", actor_id="x")

"""Members over time: suspension, access that ends, notes, metadata and presets."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from tests.conftest import START, add_member

from teamaccess import (
    METADATA_MAX_BYTES,
    NOTE_MAX_LENGTH,
    SYSTEM,
    Account,
    Catalog,
    Conflict,
    InvitationExpired,
    MemoryMailer,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    Preset,
    TeamAccess,
    UnknownPermission,
    ValidationError,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of
MANAGER = P("users.manage", "billing.view")


def parsed(mailer: MemoryMailer) -> tuple[str, str]:
    """The text and HTML parts of the newest mail, read back from its wire form."""
    msg = email.message_from_bytes(
        mailer.outbox[-1].as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )
    assert isinstance(msg, email.message.EmailMessage)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None
    assert html is not None
    return (
        text.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


class TestSuspend:
    """A suspended member keeps its grants, but can() is false for it."""

    def test_suspend_and_reactivate(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        member = team.suspend_member(account.id, "u2", actor_id="owner")
        assert member.status == "suspended"
        assert member.permissions == P("billing.view")
        assert not team.can("u2", account.id, "billing.view")
        assert team.permissions_of("u2", account.id) == P()
        assert team.get_member(account.id, "u2").status == "suspended"
        assert [m.status for m in team.members(account.id)] == ["active", "suspended"]
        member = team.reactivate_member(account.id, "u2", actor_id="owner")
        assert member.status == "active"
        assert team.can("u2", account.id, "billing.view")
        actions = [e.action for e in team.audit_log(account.id, limit=2)]
        assert actions == ["member.reactivated", "member.suspended"]

    def test_repeating_changes_nothing(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.suspend_member(account.id, "u2", actor_id="owner")
        before = team.audit_log(account.id)
        assert team.suspend_member(account.id, "u2", actor_id="owner").status == "suspended"
        assert team.audit_log(account.id) == before

    def test_owner_cannot_be_suspended(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(OwnershipRequired, match="transfer ownership first"):
            team.suspend_member(account.id, "owner", actor_id=SYSTEM)
        with pytest.raises(OwnershipRequired):
            team.set_access_until(account.id, "owner", START + timedelta(days=1), actor_id=SYSTEM)

    def test_needs_users_manage_and_no_escalation(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        add_member(team, account.id, "plain", P("billing.view"))
        add_member(team, account.id, "rich", P("billing.pay"))
        with pytest.raises(PermissionDenied, match=r"users\.manage"):
            team.suspend_member(account.id, "mgr", actor_id="plain")
        with pytest.raises(PermissionDenied, match=r"billing\.pay"):
            team.suspend_member(account.id, "rich", actor_id="mgr")
        with pytest.raises(PermissionDenied):
            team.set_access_until(account.id, "rich", START + timedelta(days=1), actor_id="mgr")
        assert team.suspend_member(account.id, "plain", actor_id="mgr").status == "suspended"

    def test_suspended_manager_can_do_nothing(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "mgr", MANAGER)
        add_member(team, account.id, "plain", P("billing.view"))
        inv = team.invite(account.id, actor_id="mgr", email="x@example.org",
                          permissions=P("billing.view"))  # fmt: skip
        team.suspend_member(account.id, "mgr", actor_id="owner")
        with pytest.raises(PermissionDenied, match="is suspended"):
            team.remove_member(account.id, "plain", actor_id="mgr")
        with pytest.raises(PermissionDenied, match="is suspended"):
            team.invite(account.id, actor_id="mgr", email="y@example.org", permissions=P())
        # its invitation is not accepted while it is suspended
        assert team.get_invitation(inv.id).status == "revoked"
        team.reactivate_member(account.id, "mgr", actor_id="owner")
        assert team.get_invitation(inv.id).status == "pending"

    def test_suspended_member_cannot_become_owner(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.suspend_member(account.id, "u2", actor_id="owner")
        with pytest.raises(Conflict, match="is suspended"):
            team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")

    def test_member_may_still_leave(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.suspend_member(account.id, "u2", actor_id="owner")
        team.remove_member(account.id, "u2", actor_id="u2")
        assert [m.user_id for m in team.members(account.id)] == ["owner"]


class TestAccessUntil:
    """After access_until, can() is false without any job having run."""

    def test_set_and_expire(self, team: TeamAccess, account: Account, clock: FrozenClock) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        until = START + timedelta(days=3)
        member = team.set_access_until(account.id, "u2", until, actor_id="owner")
        assert (member.access_until, member.status) == (until, "active")
        clock.advance(timedelta(days=3) - timedelta(microseconds=1))
        assert team.can("u2", account.id, "billing.view")
        clock.advance(timedelta(microseconds=1))
        assert not team.can("u2", account.id, "billing.view")
        assert team.permissions_of("u2", account.id) == P()
        assert team.get_member(account.id, "u2").status == "expired"
        assert team.get_member(account.id, "u2").permissions == P("billing.view")
        # a later end gives the access back
        member = team.set_access_until(account.id, "u2", None, actor_id="owner")
        assert (member.access_until, member.status) == (None, "active")
        assert team.can("u2", account.id, "billing.view")
        event = team.audit_log(account.id, limit=1)[0]
        assert event.action == "member.access_until_set"
        assert event.details == {"before": until.isoformat(), "after": None}

    def test_expired_beats_suspended(
        self, team: TeamAccess, account: Account, clock: FrozenClock
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.set_access_until(account.id, "u2", START + timedelta(hours=1), actor_id="owner")
        team.suspend_member(account.id, "u2", actor_id="owner")
        clock.advance(timedelta(hours=2))
        assert team.get_member(account.id, "u2").status == "expired"
        assert team.reactivate_member(account.id, "u2", actor_id="owner").status == "expired"
        assert not team.can("u2", account.id, "billing.view")

    @pytest.mark.parametrize(
        ("until", "match"),
        [
            (START, "not in the future"),
            (START - timedelta(days=1), "not in the future"),
            (datetime(2027, 1, 1), "timezone-aware"),
            ("2027-01-01", "datetime"),
            # the last minute of year 9999 west of UTC is past datetime's range in UTC
            (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))), "9999"),
        ],
    )
    def test_bad_instant(
        self, team: TeamAccess, account: Account, until: object, match: str
    ) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        with pytest.raises(ValidationError, match=match):
            team.set_access_until(account.id, "u2", until, actor_id="owner")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=match):
            team.invite(account.id, actor_id="owner", email="x@example.org", permissions=P(),
                        access_until=until)  # type: ignore[arg-type]  # fmt: skip

    def test_invitation_carries_it(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        until = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
        inv = team.invite(account.id, actor_id="owner", email="free@example.org",
                          permissions=P("billing.view"), access_until=until)  # fmt: skip
        assert team.get_invitation(inv.id).access_until == until
        text, html = parsed(mailer)
        assert "Your access will end on 2026-06-30 18:00 (UTC)." in text
        assert "Your access will end on 2026-06-30 18:00 (UTC)." in html
        assert inv.token is not None
        member = team.accept_invitation(inv.token, user_id="free", email="free@example.org")
        assert member.access_until == until
        clock.advance(until - START)
        assert not team.can("free", account.id, "billing.view")
        assert team.members(account.id)[1].status == "expired"

    def test_invitation_past_its_access_cannot_be_accepted(
        self, team: TeamAccess, account: Account, clock: FrozenClock
    ) -> None:
        inv = team.invite(account.id, actor_id="owner", email="free@example.org",
                          permissions=P(), access_until=START + timedelta(hours=1))  # fmt: skip
        clock.advance(timedelta(hours=1))
        assert team.get_invitation(inv.id).status == "expired"
        assert inv.token is not None
        with pytest.raises(InvitationExpired, match="the access this invitation offered ended"):
            team.accept_invitation(inv.token, user_id="free", email="free@example.org")

    def test_transfer_clears_the_new_owners_end(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "u2", P("billing.view"))
        team.set_access_until(account.id, "u2", START + timedelta(days=1), actor_id="owner")
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="u2")
        assert team.get_member(account.id, "u2").access_until is None


class TestNote:
    """invite(note=) is shown in the mail, escaped, and on the invitation."""

    def test_shown_escaped(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        note = "Hallo Anna,\nbitte <b>bis Freitag</b> annehmen.\nSubject: x"
        inv = team.invite(account.id, actor_id="owner", email="anna@example.org",
                          permissions=P(), note=note, language="de")  # fmt: skip
        assert inv.note == note
        assert team.get_invitation(inv.id).note == note
        text, html = parsed(mailer)
        assert "> Hallo Anna,\n> bitte <b>bis Freitag</b> annehmen.\n> Subject: x" in text
        assert "bitte &lt;b&gt;bis Freitag&lt;/b&gt; annehmen." in html
        assert "<b>" not in html
        msg = email.message_from_bytes(mailer.outbox[-1].as_bytes(policy=email.policy.SMTP))
        assert len(msg.get_all("Subject") or []) == 1

    def test_length_limit(self, team: TeamAccess, account: Account) -> None:
        team.invite(account.id, actor_id="owner", email="a@example.org", permissions=P(),
                    note="x" * NOTE_MAX_LENGTH)  # fmt: skip
        with pytest.raises(ValidationError, match=f"within {NOTE_MAX_LENGTH}"):
            team.invite(account.id, actor_id="owner", email="b@example.org", permissions=P(),
                        note="x" * (NOTE_MAX_LENGTH + 1))  # fmt: skip

    @pytest.mark.parametrize("bad", ["a\0b", "a\x1bb", "\udcff"])
    def test_control_characters(self, team: TeamAccess, account: Account, bad: str) -> None:
        with pytest.raises(ValidationError, match="note"):
            team.invite(account.id, actor_id="owner", email="b@example.org", permissions=P(),
                        note=bad)  # fmt: skip
        assert team.pending_invitations(account.id) == []


class TestMetadata:
    """A small JSON-able dict: stored, returned, carried to the member, never interpreted."""

    def test_carried(self, team: TeamAccess, account: Account) -> None:
        meta = {"customer_no": "4711", "ticket": 12, "tags": ("a", "b"), "x": None}
        inv = team.invite(account.id, actor_id="owner", email="a@example.org",
                          permissions=P(), metadata=meta)  # fmt: skip
        expected = {"customer_no": "4711", "ticket": 12, "tags": ["a", "b"], "x": None}
        assert inv.metadata == expected
        assert team.get_invitation(inv.id).metadata == expected
        assert inv.token is not None
        member = team.accept_invitation(inv.token, user_id="a", email="a@example.org")
        assert member.metadata == expected
        assert team.get_member(account.id, "a").metadata == expected
        assert team.get_member(account.id, "owner").metadata == {}

    def test_what_comes_back_equals_what_was_given_at_every_depth(
        self, team: TeamAccess, account: Account
    ) -> None:
        """Below the top too, keys come back as given; a tuple is a JSON array at every
        depth and comes back as a list, from invite() as from the store."""
        meta = {"a": {"1": "x", "b": [{"c": None}, ("d", ("e",))]}, "t": ({"f": 1.5},)}
        expected = {"a": {"1": "x", "b": [{"c": None}, ["d", ["e"]]]}, "t": [{"f": 1.5}]}
        inv = team.invite(account.id, actor_id="owner", email="a@example.org",
                          permissions=P(), metadata=meta)  # fmt: skip
        assert inv.metadata == expected
        assert team.get_invitation(inv.id).metadata == expected
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id="a", email="a@example.org")
        assert team.get_member(account.id, "a").metadata == expected

    @pytest.mark.parametrize(
        ("meta", "message"),
        [
            ({"a": {1: "x"}}, "metadata keys must be strings, not 1 (a key of metadata['a'])"),
            # {"1": "x"} once stored, and {1: "x", "1": "y"} as one key of the two
            ({"a": {1: "x", "1": "y"}}, "not 1 (a key of metadata['a'])"),
            ({"a": [{None: 1}]}, "not None (a key of metadata['a'][0])"),
            ({"a": ({"b": {False: 1}},)}, "not False (a key of metadata['a'][0]['b'])"),
        ],
    )
    def test_a_key_below_the_top_that_is_not_a_string(
        self, team: TeamAccess, mailer: MemoryMailer, account: Account, meta: object, message: str
    ) -> None:
        with pytest.raises(ValidationError, match=re.escape(message)):
            team.invite(account.id, actor_id="owner", email="a@example.org", permissions=P(),
                        metadata=meta)  # type: ignore[arg-type]  # fmt: skip
        assert (team.pending_invitations(account.id), mailer.outbox) == ([], [])

    @pytest.mark.parametrize(
        ("bad", "match"),
        [
            ({"x": "y" * METADATA_MAX_BYTES}, "within"),
            ({1: "x"}, "keys must be strings"),
            ({"x": {1, 2}}, "JSON"),
            ({"x": float("inf")}, "JSON"),
            (["x"], "must be a dict"),
        ],
    )
    def test_refused(self, team: TeamAccess, account: Account, bad: object, match: str) -> None:
        with pytest.raises(ValidationError, match=match):
            team.invite(account.id, actor_id="owner", email="a@example.org", permissions=P(),
                        metadata=bad)  # type: ignore[arg-type]  # fmt: skip
        assert team.pending_invitations(account.id) == []


class TestPresets:
    """Named sets of permissions, labelled in English and German."""

    def test_default_presets(self, team: TeamAccess, account: Account) -> None:
        catalog = Catalog.default()
        assert catalog.preset("accounting") == P("billing.view", "billing.pay", "contracts.sign")
        assert catalog.preset("technical") == P(
            "services.view", "services.manage", "credentials.view", "firewall.unblock",
            "support.tickets",
        )  # fmt: skip
        labels = {p.name: (p.label_for("en"), p.label_for("de")) for p in catalog.presets()}
        assert labels == {
            "accounting": ("Accounting", "Buchhaltung"),
            "technical": ("Technical", "Technik"),
        }
        inv = team.invite(account.id, actor_id="owner", email="buha@example.org",
                          permissions=team.catalog.preset("accounting"))  # fmt: skip
        assert inv.permissions == catalog.preset("accounting")

    def test_unknown_preset(self) -> None:
        with pytest.raises(ValidationError, match=r"unknown preset 'sales'.*accounting"):
            Catalog.default().preset("sales")

    def test_vendor_presets_are_checked(self) -> None:
        catalog = Catalog(["a", "b"], presets=[Preset("both", "Both", P("a", "b"), "Beide")])
        assert catalog.preset("both") == P("a", "b")
        with pytest.raises(UnknownPermission):
            Catalog(["a"], presets=[Preset("x", "X", P("zz"))])
        with pytest.raises(ValidationError, match="listed twice"):
            Catalog(["a"], presets=[Preset("x", "X", P()), Preset("x", "Y", P())])
        with pytest.raises(ValidationError, match="Preset objects"):
            Catalog(["a"], presets=["x"])  # type: ignore[list-item]

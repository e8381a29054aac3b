"""Adversarial review: each class pins one problem found against DESIGN.md's rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from teamaccess import (
    Account,
    EmailMismatch,
    InvalidInvitation,
    MemoryMailer,
    NotFound,
    PermissionSet,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.templates import DefaultTemplates, InvitationContext, RenderedMail
from teamaccess.testing import FrozenClock

# Every character str.splitlines() breaks on besides CR and LF: the stdlib email package
# refuses them in a header with a bare ValueError, so they must be refused up front.
SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


class TestUnicodeLineBreaks:
    """A Unicode line separator in a name or subject is refused before anything is stored."""

    @pytest.mark.parametrize("sep", SEPARATORS)
    def test_account_name_is_refused(self, team: TeamAccess, sep: str) -> None:
        with pytest.raises(ValidationError, match="line break"):
            team.create_account(
                name=f"Acme{sep}Bcc: x@evil.example", owner_id="o2", owner_email="o2@example.com"
            )
        assert team.accounts_for("o2") == []

    def test_rename_is_refused(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match="line break"):
            team.rename_account(account.id, actor_id="owner", name="Acme\u2028GmbH")
        assert team.get_account(account.id).name == "Muster GmbH"

    def test_notify_subject_sends_nothing(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        with pytest.raises(ValidationError, match="line break"):
            team.notify(account.id, "general", subject="Hi\x85Bcc: x@evil.example", text="t")
        assert mailer.outbox == []
        assert team.pending_messages() == []

    def test_tab_and_joiners_still_pass(self, team: TeamAccess) -> None:
        acc = team.create_account(
            name="Family \U0001f468\u200d\U0001f469", owner_id="o3", owner_email="o3@example.com"
        )
        assert acc.name == "Family \U0001f468\u200d\U0001f469"


class TestTokenWithUnencodableText:
    """A token no link can hold (a lone surrogate) is InvalidInvitation, not UnicodeEncodeError."""

    @pytest.mark.parametrize("token", ["\udcff", "abc.\udcff.def"])
    def test_every_token_entry_point(self, team: TeamAccess, account: Account, token: str) -> None:
        with pytest.raises(InvalidInvitation, match="copy the whole link"):
            team.inspect_invitation(token)
        with pytest.raises(InvalidInvitation, match="copy the whole link"):
            team.accept_invitation(token, user_id="u", email="u@example.com")
        with pytest.raises(InvalidInvitation, match="copy the whole link"):
            team.decline_invitation(token)


class TestAuditLogLimitType:
    """audit_log(limit=...) of a wrong type is a ValidationError, not a TypeError."""

    @pytest.mark.parametrize("limit", ["5", None, 1.5, True])
    def test_wrong_type(self, team: TeamAccess, account: Account, limit: object) -> None:
        with pytest.raises(ValidationError, match="limit must be"):
            team.audit_log(account.id, limit=limit)  # type: ignore[arg-type]


class TestCategoriesType:
    """categories=None (or a number) is a ValidationError, not a TypeError."""

    @pytest.mark.parametrize("categories", [None, 123])
    def test_add_and_update(self, team: TeamAccess, account: Account, categories: object) -> None:
        with pytest.raises(ValidationError, match="categories must be"):
            team.add_contact(
                account.id,
                actor_id="owner",
                name="Buchhaltung",
                email="buha@example.com",
                categories=categories,  # type: ignore[arg-type]
            )
        assert team.contacts(account.id) == []
        contact = team.add_contact(
            account.id, actor_id="owner", name="B", email="b@example.com", categories=["billing"]
        )
        with pytest.raises(ValidationError, match="categories must be"):
            team.update_contact(contact.id, actor_id="owner", categories=categories)
        assert team.get_contact(contact.id).categories == {"billing"}


class TestEmailBindingIsCaseOnly:
    """Addresses compare case-insensitively, not casefolded: long-s 'sam@' and 'sam@' differ."""

    @pytest.mark.parametrize(
        ("invited", "other"),
        [
            ("sam@example.com", "\u017fam@example.com"),
            ("strasse@example.com", "straße@example.com"),
        ],
    )
    def test_other_mailbox_cannot_accept(
        self, team: TeamAccess, account: Account, invited: str, other: str
    ) -> None:
        inv = team.invite(
            account.id, actor_id="owner", email=invited, permissions=PermissionSet.all()
        )
        assert inv.token is not None
        with pytest.raises(EmailMismatch, match="another address"):
            team.accept_invitation(inv.token, user_id="mallory", email=other)
        assert [m.user_id for m in team.members(account.id)] == ["owner"]

    def test_case_still_matches(self, team: TeamAccess, account: Account) -> None:
        inv = team.invite(
            account.id,
            actor_id="owner",
            email="Straße@Example.com",
            permissions=PermissionSet.none(),
        )
        assert inv.token is not None
        member = team.accept_invitation(inv.token, user_id="s", email="straße@EXAMPLE.com")
        assert member.user_id == "s"


class _Recording(DefaultTemplates):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def invitation(self, context: InvitationContext) -> RenderedMail:
        # What a vendor's template might log while debugging.
        self.seen.append(repr(context))
        return super().invitation(context)


class TestInvitationContextRepr:
    """repr() of the context handed to a template must not carry the token or the accept URL."""

    def test_token_not_in_repr(self, store, mailer, clock) -> None:  # type: ignore[no-untyped-def]
        templates = _Recording()
        team = TeamAccess(store, mailer, secret_key="k", clock=clock, templates=templates)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        inv = team.invite(
            acc.id, actor_id="o", email="x@example.com", permissions=PermissionSet.none()
        )
        assert inv.token is not None
        assert templates.seen
        assert all(inv.token not in seen for seen in templates.seen)
        assert all(team.accept_link(inv.token) not in seen for seen in templates.seen)


class TestLoneSurrogates:
    """Text with a lone surrogate is refused up front and never reaches SQLite or a mail raw."""

    def test_account_name(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="lone surrogate"):
            team.create_account(name="Acme\udcff", owner_id="o2", owner_email="o2@example.com")
        assert team.accounts_for("o2") == []

    def test_contact_detail(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match="lone surrogate"):
            team.add_contact(
                account.id,
                actor_id="owner",
                name="B",
                email="b@example.com",
                categories=["billing"],
                phone="\udcff",
            )
        assert team.contacts(account.id) == []

    def test_lookups_stay_in_the_error_tree(self, team: TeamAccess, account: Account) -> None:
        # Ids are checked up front like any text; only the hot paths (can, recipients)
        # leave it to the store, and every store answers alike: an id that cannot be
        # stored names nobody.
        with pytest.raises(ValidationError, match=r"account_id .*lone surrogate"):
            team.members("\udcff")
        assert team.can("\udcff", account.id, "billing.view") is False
        assert team.can("owner", "\udcff", "billing.view") is False
        with pytest.raises(NotFound, match="no account"):
            team.recipients("\udcff", "general")
        assert team.recipients(account.id, "general") == ["chef@muster.de"]


class TestConfigurationFailsAtConstruction:
    """A TeamAccess option that can never work is refused when built, not at the first invite."""

    @pytest.mark.parametrize("secret_key", [[1], ["ok", None], 123, None])
    def test_secret_key_of_wrong_type(self, store: Store, secret_key: object) -> None:
        with pytest.raises(ValidationError, match="secret_key must be"):
            TeamAccess(store, MemoryMailer(), secret_key=secret_key)  # type: ignore[arg-type]

    @pytest.mark.parametrize("sender", ["nobody", "Customer Center", ""])
    def test_sender_without_address(self, store: Store, sender: str) -> None:
        with pytest.raises(ValidationError, match="sender"):
            TeamAccess(store, MemoryMailer(), secret_key="k", sender=sender)

    @pytest.mark.parametrize("backoff", [-1, timedelta(0), timedelta(minutes=-1)])
    def test_retry_backoff(self, store: Store, backoff: object) -> None:
        with pytest.raises(ValidationError, match="retry_backoff"):
            TeamAccess(store, MemoryMailer(), secret_key="k", retry_backoff=backoff)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="retry_backoff"):
            TeamAccess(store, MemoryMailer(), secret_key="k", max_retry_backoff=backoff)  # type: ignore[arg-type]

    def test_sender_with_address_works(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(
            store, mailer, secret_key=["old", b"new"], clock=clock, sender="ops@example.com"
        )
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.invite(acc.id, actor_id="o", email="x@example.com", permissions=PermissionSet.none())
        assert mailer.outbox[0]["From"] == "ops@example.com"

"""Contacts: who may manage them, what they hold, and who receives which mail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.conftest import SECRET, add_member

from teamaccess import (
    SYSTEM,
    Account,
    AlreadyContact,
    Categories,
    Category,
    ContactNotFound,
    InvalidEmail,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    Store,
    TeamAccess,
    UnknownCategory,
    ValidationError,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of


@contextmanager
def writes_nothing(team: TeamAccess, account_id: str, mailer: MemoryMailer) -> Iterator[None]:
    """Assert the block stores no contact, audit event or outbox row and sends nothing."""
    before = (team.contacts(account_id), team.audit_log(account_id), team.pending_messages())
    sent = len(mailer.outbox)
    yield
    after = (team.contacts(account_id), team.audit_log(account_id), team.pending_messages())
    assert after == before
    assert len(mailer.outbox) == sent


def add(team: TeamAccess, account: Account, name: str, email: str, *cats: str, **kw: str):  # type: ignore[no-untyped-def]
    return team.add_contact(
        account.id, actor_id="owner", name=name, email=email, categories=cats or ["general"], **kw
    )


class TestAddContact:
    """A contact is a name, an address, categories and optional details."""

    def test_add_and_list(self, team: TeamAccess, account: Account) -> None:
        contact = team.add_contact(
            account.id,
            actor_id="owner",
            name=" Petra Buchhaltung ",
            email="Petra@Muster.de",
            categories=["billing", "general"],
            company="Steuerbüro Klein",
            phone="+49 30 1234567",
            role="Buchhaltung",
        )
        assert contact.name == "Petra Buchhaltung"
        assert contact.email == "Petra@muster.de"
        assert contact.categories == {"billing", "general"}
        assert (contact.company, contact.phone, contact.role) == (
            "Steuerbüro Klein",
            "+49 30 1234567",
            "Buchhaltung",
        )
        assert team.contacts(account.id) == [contact]
        assert team.get_contact(contact.id) == contact
        event = team.audit_log(account.id, limit=1)[0]
        assert (event.action, event.actor_id, event.target) == (
            "contact.added",
            "owner",
            contact.id,
        )

    def test_contacts_in_creation_order(self, team: TeamAccess, account: Account) -> None:
        a = add(team, account, "A", "a@example.org")
        b = add(team, account, "B", "b@example.org")
        assert team.contacts(account.id) == [a, b]

    def test_unknown_detail_field(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(ValidationError, match=r"unknown contact field\(s\) fax; use"),
        ):
            add(team, account, "A", "a@example.org", fax="030 1")

    def test_unknown_category(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(UnknownCategory, match="unknown mail category 'invoices'; use"),
        ):
            add(team, account, "A", "a@example.org", "billing", "invoices")

    def test_categories_as_a_string(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match=r"write \['billing'\]"):
            team.add_contact(
                account.id, actor_id="owner", name="A", email="a@example.org",
                categories="billing",
            )  # fmt: skip

    def test_invalid_email(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(InvalidEmail, match="is not a valid email address"),
        ):
            add(team, account, "A", "not-an-address")

    @pytest.mark.parametrize(
        "field",
        [
            {"name": "Petra\r\nBcc: x@example.org"},
            {"name": "Petra\0"},
            {"email": "a@example.org\nBcc: x@example.org"},
            {"company": "Klein\nGmbH"},
            {"role": "Chef\r"},
        ],
    )
    def test_line_breaks_rejected(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, field: dict[str, str]
    ) -> None:
        args = {"name": "Petra", "email": "a@example.org", **field}
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(ValidationError, match="line break or NUL"),
        ):
            team.add_contact(account.id, actor_id="owner", categories=["general"], **args)

    def test_empty_name(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match="contact name must not be empty"):
            add(team, account, "  ", "a@example.org")

    def test_unknown_account(self, team: TeamAccess) -> None:
        with pytest.raises(LookupError, match="no account 'acc_nope'"):
            team.add_contact(
                "acc_nope", actor_id=SYSTEM, name="A", email="a@example.org", categories=["general"]
            )


class TestPermission:
    """contacts.manage is needed; the owner and SYSTEM always have it."""

    def test_system_may(self, team: TeamAccess, account: Account) -> None:
        contact = team.add_contact(
            account.id, actor_id=SYSTEM, name="A", email="a@example.org", categories=["general"]
        )
        team.update_contact(contact.id, actor_id=SYSTEM, phone="1")
        team.remove_contact(contact.id, actor_id=SYSTEM)
        assert [e.actor_id for e in team.audit_log(account.id, limit=3)] == [SYSTEM] * 3

    def test_member_with_contacts_manage_may(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "assistant", P("contacts.manage"))
        contact = team.add_contact(
            account.id, actor_id="assistant", name="A", email="a@example.org",
            categories=["billing"],
        )  # fmt: skip
        team.update_contact(contact.id, actor_id="assistant", categories=["support"])
        team.remove_contact(contact.id, actor_id="assistant")
        assert team.contacts(account.id) == []

    def test_member_without_it_may_not(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add_member(team, account.id, "dev", P("services.view", "users.manage"))
        contact = add(team, account, "A", "a@example.org")
        with writes_nothing(team, account.id, mailer):
            with pytest.raises(PermissionDenied, match=r"lacks the permission 'contacts\.manage'"):
                team.add_contact(
                    account.id, actor_id="dev", name="B", email="b@example.org",
                    categories=["general"],
                )  # fmt: skip
            with pytest.raises(PermissionDenied, match=r"contacts\.manage"):
                team.update_contact(contact.id, actor_id="dev", name="Changed")
            with pytest.raises(PermissionDenied, match=r"contacts\.manage"):
                team.remove_contact(contact.id, actor_id="dev")
        assert team.get_contact(contact.id).name == "A"

    def test_stranger_may_not(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(PermissionDenied, match="is not a member of account"):
            team.add_contact(
                account.id, actor_id="stranger", name="A", email="a@example.org",
                categories=["general"],
            )  # fmt: skip


class TestUpdateAndRemove:
    """Changes are stored, audited and seen by recipients()."""

    def test_update(self, team: TeamAccess, account: Account) -> None:
        contact = add(team, account, "A", "a@example.org", "general")
        updated = team.update_contact(
            contact.id,
            actor_id="owner",
            name="Anna",
            email="anna@example.org",
            categories=["billing"],
            company="Anna AG",
        )
        assert (updated.name, updated.email, updated.categories, updated.company) == (
            "Anna",
            "anna@example.org",
            {"billing"},
            "Anna AG",
        )
        assert team.get_contact(contact.id) == updated
        assert team.recipients(account.id, "billing") == ["chef@muster.de", "anna@example.org"]
        assert team.recipients(account.id, "general") == ["chef@muster.de"]
        event = team.audit_log(account.id, limit=1)[0]
        assert event.action == "contact.updated"
        assert event.details["changed"] == ["categories", "company", "email", "name"]

    def test_update_that_changes_nothing_writes_nothing(
        self, team: TeamAccess, account: Account
    ) -> None:
        contact = add(team, account, "A", "a@example.org", "general")
        before = team.audit_log(account.id)
        assert team.update_contact(contact.id, actor_id="owner", name="A") == contact
        assert team.update_contact(contact.id, actor_id="owner") == contact
        assert team.audit_log(account.id) == before

    def test_update_rejects_bad_values(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        contact = add(team, account, "A", "a@example.org")
        with writes_nothing(team, account.id, mailer):
            with pytest.raises(ValidationError, match="line break"):
                team.update_contact(contact.id, actor_id="owner", name="A\r\nB")
            # the list of fields to use names every one update_contact() takes
            with pytest.raises(
                ValidationError,
                match=r"unknown contact field\(s\) mobile; use: name, email, categories, company, "
                "phone, role$",
            ):
                team.update_contact(contact.id, actor_id="owner", mobile="1")
            with pytest.raises(UnknownCategory):
                team.update_contact(contact.id, actor_id="owner", categories=["nope"])
            with pytest.raises(InvalidEmail):
                team.update_contact(contact.id, actor_id="owner", email="nope")

    def test_remove(self, team: TeamAccess, account: Account) -> None:
        contact = add(team, account, "A", "a@example.org")
        team.remove_contact(contact.id, actor_id="owner")
        assert team.contacts(account.id) == []
        assert team.recipients(account.id, "general") == ["chef@muster.de"]
        event = team.audit_log(account.id, limit=1)[0]
        assert (event.action, event.target, event.details["email"]) == (
            "contact.removed",
            contact.id,
            "a@example.org",
        )
        with pytest.raises(ContactNotFound, match="contacts\\(account_id\\) lists them"):
            team.remove_contact(contact.id, actor_id="owner")
        with pytest.raises(ContactNotFound):
            team.update_contact(contact.id, actor_id="owner", name="B")


class TestNeverAMember:
    """A contact never logs in: not a member, no account, no permission."""

    def test_not_a_member(self, team: TeamAccess, account: Account) -> None:
        contact = add(team, account, "A", "a@example.org", "billing")
        assert [m.user_id for m in team.members(account.id)] == ["owner"]
        assert team.accounts_for(contact.id) == []
        assert team.accounts_for("a@example.org") == []
        assert team.can(contact.id, account.id, "billing.view") is False
        assert team.permissions_of(contact.id, account.id) == PermissionSet.none()


class TestCategories:
    """The vendor sets the categories; unknown ones fail loudly everywhere."""

    @pytest.fixture
    def vendor(self, store: Store, mailer: MemoryMailer, clock: FrozenClock) -> TeamAccess:
        cats = Categories([Category("abuse", "Abuse reports", "Missbrauchsmeldungen"), "billing"])
        return TeamAccess(store, mailer, secret_key=SECRET, clock=clock, categories=cats)

    def test_default_set(self, team: TeamAccess) -> None:
        assert team.categories.names() == ("general", "billing", "product", "support")

    def test_vendor_set(self, vendor: TeamAccess, mailer: MemoryMailer) -> None:
        account = vendor.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        add(vendor, account, "Abuse desk", "abuse@muster.de", "abuse")
        assert vendor.recipients(account.id, "abuse") == ["chef@muster.de", "abuse@muster.de"]
        with pytest.raises(UnknownCategory, match="use one of: abuse, billing"):
            add(vendor, account, "A", "a@example.org", "general")
        with pytest.raises(UnknownCategory):
            vendor.recipients(account.id, "general")
        with pytest.raises(UnknownCategory):
            vendor.notify(account.id, "general", subject="S", text="T")
        assert mailer.outbox == []

    def test_iterable_of_names(self, store: Store, mailer: MemoryMailer) -> None:
        team = TeamAccess(store, mailer, secret_key=SECRET, categories=["ops", "sales"])
        assert team.categories.names() == ("ops", "sales")


class TestRecipients:
    """The owner first, then subscribed contacts, each address once."""

    def test_owner_first_then_subscribers_in_order(
        self, team: TeamAccess, account: Account
    ) -> None:
        add(team, account, "B", "b@example.org", "billing")
        add(team, account, "S", "s@example.org", "support")
        add(team, account, "C", "c@example.org", "billing", "support")
        assert team.recipients(account.id, "billing") == [
            "chef@muster.de",
            "b@example.org",
            "c@example.org",
        ]
        assert team.recipients(account.id, "product") == ["chef@muster.de"]

    def test_duplicates_removed_case_insensitively(
        self, team: TeamAccess, account: Account
    ) -> None:
        add(team, account, "Owner again", "CHEF@Muster.DE", "billing")
        add(team, account, "B", "b@example.org", "billing")
        assert team.recipients(account.id, "billing") == ["chef@muster.de", "b@example.org"]

    def test_a_second_contact_of_one_address_is_refused(
        self, team: TeamAccess, account: Account
    ) -> None:
        # Its categories would add to the first one's: unticking one would not stop it.
        first = add(team, account, "B", "b@example.org", "billing")
        with pytest.raises(AlreadyContact, match="already contact") as caught:
            add(team, account, "B again", "B@EXAMPLE.ORG", "support")
        assert caught.value.contact_id == first.id
        assert [c.id for c in team.contacts(account.id)] == [first.id]

    def test_one_address_across_idn_forms(self, team: TeamAccess, account: Account) -> None:
        add(team, account, "Unicode", "info@müller.de", "billing")
        with pytest.raises(AlreadyContact):
            add(team, account, "Punycode", "info@xn--mller-kva.de", "billing")
        assert team.recipients(account.id, "billing") == ["chef@muster.de", "info@müller.de"]

    def test_follows_the_owner(self, team: TeamAccess, account: Account) -> None:
        add_member(team, account.id, "heir", PermissionSet.all(), email="heir@example.org")
        team.transfer_ownership(account.id, actor_id="owner", to_user_id="heir")
        assert team.recipients(account.id, "general") == ["heir@example.org"]

    def test_unknown_category(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(UnknownCategory, match="unknown mail category 'news'"):
            team.recipients(account.id, "news")


class TestNotify:
    """One message per recipient; nobody sees another's address."""

    def test_one_message_each(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        add(team, account, "B", "b@example.org", "billing")
        add(team, account, "Owner again", "Chef@muster.de", "billing")
        add(team, account, "C", "c@example.org", "billing")
        add(team, account, "S", "s@example.org", "support")
        sent = team.notify(account.id, "billing", subject="Rechnung 42", text="Neue Rechnung")
        assert sent == ["chef@muster.de", "b@example.org", "c@example.org"]
        assert [m["To"] for m in mailer.outbox] == sent
        ids = {m["Message-ID"] for m in mailer.outbox}
        assert len(ids) == 3
        for msg in mailer.outbox:
            assert msg["Subject"] == "Rechnung 42"
            assert msg["Cc"] is None
            assert msg["Bcc"] is None
            others = [a for a in sent if a != msg["To"]]
            assert not any(a in msg.as_string() for a in others)
        assert team.pending_messages() == []
        event = team.audit_log(account.id, limit=1)[0]
        assert (event.action, event.target, event.details["recipients"]) == (
            "notification.queued",
            "billing",
            3,
        )

    @pytest.mark.parametrize("subject", ["Hi\r\nBcc: x@example.org", "Hi\nX", "Hi\0"])
    def test_header_injection_sends_nothing(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, subject: str
    ) -> None:
        add(team, account, "B", "b@example.org", "billing")
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(ValidationError, match="subject contains a line break"),
        ):
            team.notify(account.id, "billing", subject=subject, text="T")

    def test_bad_body_types(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match="text must be a string"):
            team.notify(account.id, "general", subject="S", text=b"bytes")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="html must be a string or None"):
            team.notify(account.id, "general", subject="S", text="T", html=1)  # type: ignore[arg-type]

    def test_language_per_notice(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        # The team speaks English by default; one account's notices go out in German.
        team.notify(account.id, "billing", subject="Invoice", text="New invoice")
        team.notify(account.id, "billing", subject="Rechnung", text="Neue Rechnung", language="de")
        english, german = mailer.outbox
        assert (english["Content-Language"], german["Content-Language"]) == ("en", "de")
        english_text = english.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        german_text = german.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "You receive this mail as a contact of" in english_text
        assert "Sie erhalten diese E-Mail als Kontakt von" in german_text  # the template too
        assert "Billing" in english_text
        assert "Rechnungen" not in english_text
        assert "Rechnungen" in german_text

    @pytest.mark.parametrize("language", ["fr", "", "DE"])
    def test_unsupported_language_sends_nothing(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, language: str
    ) -> None:
        with (
            writes_nothing(team, account.id, mailer),
            pytest.raises(ValidationError, match="unsupported language"),
        ):
            team.notify(account.id, "general", subject="S", text="T", language=language)

"""The rendered mails: English and German, escaped, injection-proof and replaceable."""

from __future__ import annotations

from datetime import timedelta, timezone
from email.message import EmailMessage

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    Account,
    Catalog,
    DefaultTemplates,
    InvitationContext,
    MemoryMailer,
    MemoryStore,
    NotificationContext,
    Permission,
    PermissionSet,
    RenderedMail,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of


def make(store: Store, mailer: MemoryMailer, clock: FrozenClock, **kw: object) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=clock,
        accept_url="https://panel.example.com/accept?token={token}&src=mail",
        **kw,  # type: ignore[arg-type]
    )


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None
    assert html is not None
    return plain.get_content(), html.get_content()


def invite(team: TeamAccess, account: Account, perms: PermissionSet, **kw: str) -> str:
    inv = team.invite(
        account.id, actor_id="owner", email="dev@example.org", permissions=perms, **kw
    )
    assert inv.token is not None
    return inv.token


class TestEnglishInvitation:
    """The default invitation mail in English."""

    def test_rendered(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        token = invite(team, account, P("billing.view", "support.tickets"))
        [msg] = mailer.outbox
        assert msg["Subject"] == "chef@muster.de invites you to Muster GmbH"
        assert msg["From"] == "Customer Center <noreply@panel.example.com>"
        assert msg["To"] == "dev@example.org"
        assert msg["Content-Language"] == "en"
        assert msg.get_content_type() == "multipart/alternative"
        text, html = parts(msg)
        link = f"https://panel.example.com/accept?token={token}"
        assert "chef@muster.de has invited you to the account Muster GmbH" in text
        assert "in the customer center" in text
        assert "You will be allowed to:\n  - View invoices\n  - Support tickets" in text
        assert f"Accept invitation:\n{link}" in text
        assert "valid until 2026-05-08 09:00 (UTC)" in text
        assert f'href="{link}"' in html
        assert "<li>View invoices</li><li>Support tickets</li>" in html
        assert '<html lang="en">' in html

    def test_all_permissions(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        invite(team, account, PermissionSet.all())
        text, html = parts(mailer.outbox[0])
        assert "You will have all permissions." in text
        assert "<p>You will have all permissions.</p>" in html

    def test_no_permissions(self, team: TeamAccess, account: Account, mailer: MemoryMailer) -> None:
        invite(team, account, PermissionSet.none())
        text, _ = parts(mailer.outbox[0])
        assert "no further permissions yet" in text

    def test_expiry_shown_in_utc(self, store: Store, mailer: MemoryMailer) -> None:
        berlin = FrozenClock(START.astimezone(timezone(timedelta(hours=2))))
        team = make(store, mailer, berlin)
        account = team.create_account(name="A", owner_id="owner", owner_email="chef@muster.de")
        token = invite(team, account, PermissionSet.none())
        text, html = parts(mailer.outbox[0])
        assert "valid until 2026-05-08 09:00 (UTC)" in text
        # The vendor's accept_url has a second parameter: "&" is escaped in the href.
        assert f'href="https://panel.example.com/accept?token={token}&amp;src=mail"' in html


class TestGermanInvitation:
    """German mail, for the whole service or per invitation."""

    def test_service_language(self, store: Store, mailer: MemoryMailer, clock: FrozenClock) -> None:
        team = make(store, mailer, clock, language="de")
        account = team.create_account(
            name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de"
        )
        token = invite(team, account, P("billing.view", "credentials.view"))
        [msg] = mailer.outbox
        assert msg["Subject"] == "chef@muster.de lädt Sie zu Muster GmbH ein"
        assert msg["Content-Language"] == "de"
        text, html = parts(msg)
        assert text.startswith("Guten Tag,\n\nchef@muster.de hat Sie zum Kundenkonto Muster GmbH")
        assert "im Kundencenter eingeladen" in text
        assert (
            "Sie erhalten folgende Berechtigungen:\n  - Rechnungen einsehen\n"
            "  - Serverinformationen und Zugangsdaten einsehen"
        ) in text
        assert "gültig bis 08.05.2026 09:00 (UTC)" in text
        assert token in text
        assert "Einladung annehmen</a>" in html
        assert "<li>Rechnungen einsehen</li>" in html
        assert '<html lang="de">' in html

    def test_per_invitation(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        inv = team.invite(
            account.id,
            actor_id="owner",
            email="dev@example.org",
            permissions=PermissionSet.all(),
            language="de",
        )
        assert parts(mailer.outbox[0])[0].count("Sie erhalten alle Berechtigungen.") == 1
        team.resend_invitation(inv.id, actor_id="owner")
        assert mailer.outbox[1]["Subject"] == "chef@muster.de lädt Sie zu Muster GmbH ein"

    @pytest.mark.parametrize("language", ["fr", ""])
    def test_unknown_language_stores_nothing(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer, language: str
    ) -> None:
        # An empty language is refused too, not quietly replaced by the default.
        with pytest.raises(
            ValidationError, match=f"unsupported language '{language}'; use one of: en, de"
        ):
            invite(team, account, PermissionSet.none(), language=language)
        assert team.pending_invitations(account.id) == []
        assert mailer.outbox == []
        with pytest.raises(ValidationError, match="unsupported language 'fr'"):
            TeamAccess(MemoryStore(), mailer, secret_key=SECRET, language="fr")


class TestEscaping:
    """Every user value is HTML-escaped; the text part shows it as typed."""

    NASTY = '<script>alert("x")</script> & Co'

    def test_account_name(self, team: TeamAccess, mailer: MemoryMailer) -> None:
        account = team.create_account(name=self.NASTY, owner_id="owner", owner_email="c@muster.de")
        invite(team, account, PermissionSet.none())
        [msg] = mailer.outbox
        text, html = parts(msg)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
        assert self.NASTY in text
        assert msg["Subject"] == f"c@muster.de invites you to {self.NASTY}"

    def test_permission_labels_and_brand(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        catalog = Catalog([Permission("users.manage", "Users"), Permission("x.y", "<b>bold</b>")])
        team = make(
            store, mailer, clock, catalog=catalog, templates=DefaultTemplates(brand="<i>Host</i>")
        )
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        invite(team, account, P("x.y"))
        text, html = parts(mailer.outbox[0])
        assert "<li>&lt;b&gt;bold&lt;/b&gt;</li>" in html
        assert "in the &lt;i&gt;Host&lt;/i&gt;." in html
        assert "<b>" not in html
        assert "<i>" not in html
        assert "  - <b>bold</b>" in text

    def test_notification_text_and_labels(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        team.notify(account.id, "billing", subject="S", text="a <script>\n\nb & c")
        text, html = parts(mailer.outbox[0])
        assert "<p>a &lt;script&gt;</p><p>b &amp; c</p>" in html
        assert "<script>" not in html
        assert text.startswith("a <script>\n\nb & c\n\n-- \n")
        assert "as a contact of Muster GmbH for the category Billing" in text

    def test_notification_html_is_the_vendors(
        self, team: TeamAccess, account: Account, mailer: MemoryMailer
    ) -> None:
        team.notify(account.id, "general", subject="S", text="T", html="<h1>Wartung</h1>")
        _, html = parts(mailer.outbox[0])
        assert "<h1>Wartung</h1>" in html


class BrokenSubject(DefaultTemplates):
    def invitation(self, context: InvitationContext) -> RenderedMail:
        mail = super().invitation(context)
        return RenderedMail(mail.subject + "\r\nBcc: all@example.org", mail.text, mail.html)

    def notification(self, context: NotificationContext) -> RenderedMail:
        mail = super().notification(context)
        return RenderedMail("Hi\nBcc: all@example.org", mail.text, mail.html)


class TestNoHeaderInjection:
    """A line break in any header value fails before anything is stored or sent."""

    @pytest.mark.parametrize("name", ["Muster\r\nBcc: x@example.org", "Muster\nX", "Mu\0ster"])
    def test_account_name(self, team: TeamAccess, name: str) -> None:
        with pytest.raises(ValidationError, match="account name contains a line break or NUL"):
            team.create_account(name=name, owner_id="o", owner_email="c@muster.de")
        assert team.accounts_for("o") == []

    def test_rename(self, team: TeamAccess, account: Account) -> None:
        with pytest.raises(ValidationError, match="line break"):
            team.rename_account(account.id, actor_id="owner", name="X\r\nBcc: y@example.org")
        assert team.get_account(account.id).name == "Muster GmbH"

    def test_template_that_breaks_a_header_stores_nothing(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        team = make(store, mailer, clock, templates=BrokenSubject())
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        audit = team.audit_log(account.id)
        with pytest.raises(ValidationError, match="mail header Subject contains a line break"):
            invite(team, account, PermissionSet.none())
        with pytest.raises(ValidationError, match="mail header Subject contains a line break"):
            team.notify(account.id, "general", subject="S", text="T")
        assert team.pending_invitations(account.id) == []
        assert team.pending_messages() == []
        assert team.audit_log(account.id) == audit
        assert mailer.outbox == []

    def test_vendor_string_with_a_line_break(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        templates = DefaultTemplates(strings={"en": {"invitation.subject": "Hi\nBcc: x@y.de"}})
        team = make(store, mailer, clock, templates=templates)
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        with pytest.raises(ValidationError, match="Subject contains a line break"):
            invite(team, account, PermissionSet.none())
        assert team.pending_invitations(account.id) == []
        assert mailer.outbox == []


class Plain:
    """A vendor's own template set, written from scratch."""

    def languages(self) -> tuple[str, ...]:
        return ("en", "fr")

    def invitation(self, context: InvitationContext) -> RenderedMail:
        return RenderedMail(
            f"[{context.language}] join {context.account_name}",
            f"Go to {context.accept_url}\n",
            f"<a href='{context.accept_url}'>go</a>",
        )

    def notification(self, context: NotificationContext) -> RenderedMail:
        return RenderedMail(f"[{context.category_label}] {context.subject}", context.text, "<p/>")


class TestOverride:
    """Vendors change the wording, the brand, the sender or the whole template set."""

    def test_strings_and_brand(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        templates = DefaultTemplates(
            brand="HostPress Panel",
            strings={
                "en": {"invitation.action": "Join the team"},
                "de": {"invitation.subject": "Einladung zu $account"},
            },
        )
        team = make(store, mailer, clock, templates=templates, sender="HostPress <hi@hostpress.de>")
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        token = invite(team, account, PermissionSet.none())
        msg = mailer.outbox[0]
        assert msg["From"] == "HostPress <hi@hostpress.de>"
        assert msg["Message-ID"].endswith("@hostpress.de>")
        text, html = parts(msg)
        assert "Join the team:\n" in text
        assert f"{token}" in text
        assert "Join the team</a>" in html
        assert "in the HostPress Panel." in text
        team.invite(
            account.id,
            actor_id="owner",
            email="de@example.org",
            permissions=PermissionSet.none(),
            language="de",
        )
        german = mailer.outbox[1]
        assert german["Subject"] == "Einladung zu A"
        assert "im HostPress Panel eingeladen" in parts(german)[0]

    def test_new_language_through_strings(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        templates = DefaultTemplates(
            strings={"fr": {"invitation.subject": "Invitation à $account"}}
        )
        team = make(store, mailer, clock, templates=templates)
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        invite(team, account, PermissionSet.none(), language="fr")
        msg = mailer.outbox[0]
        assert msg["Subject"] == "Invitation à A"
        assert msg["Content-Language"] == "fr"
        assert "Accept invitation" in parts(msg)[0]  # missing strings fall back to English

    def test_custom_template_set(
        self, store: Store, mailer: MemoryMailer, clock: FrozenClock
    ) -> None:
        team = make(store, mailer, clock, templates=Plain(), language="fr")
        account = team.create_account(name="A", owner_id="owner", owner_email="c@muster.de")
        token = invite(team, account, PermissionSet.none())
        msg = mailer.outbox[0]
        assert msg["Subject"] == "[fr] join A"
        text, html = parts(msg)
        assert text == f"Go to https://panel.example.com/accept?token={token}&src=mail\n"
        assert html.startswith("<a href=")
        team.notify(account.id, "billing", subject="Rechnung", text="T")
        assert mailer.outbox[1]["Subject"] == "[Billing] Rechnung"

    def test_custom_set_without_languages_accepts_en_and_de(
        self, store: Store, mailer: MemoryMailer
    ) -> None:
        class Minimal(Plain):
            languages = None  # type: ignore[assignment]

        TeamAccess(store, mailer, secret_key=SECRET, templates=Minimal(), language="de")
        with pytest.raises(ValidationError, match="unsupported language 'fr'"):
            TeamAccess(store, mailer, secret_key=SECRET, templates=Minimal(), language="fr")


class TestGermanNotification:
    """Notifications speak the service's language, category label included."""

    def test_footer(self, store: Store, mailer: MemoryMailer, clock: FrozenClock) -> None:
        team = make(store, mailer, clock, language="de")
        account = team.create_account(name="Muster", owner_id="owner", owner_email="c@muster.de")
        team.notify(account.id, "billing", subject="Rechnung", text="Neue Rechnung")
        msg = mailer.outbox[0]
        assert msg["Content-Language"] == "de"
        text, html = parts(msg)
        assert "als Kontakt von Muster für die Kategorie Rechnungen" in text
        assert "Kategorie Rechnungen" in html

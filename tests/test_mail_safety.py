"""Mail that cannot be turned against anyone: encoded-word header injection, the envelope,
one bad recipient, line breaks in addresses. Checked on the wire form and on what a real
SMTP server (aiosmtpd) received."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import attrs
import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import (
    Account,
    DefaultTemplates,
    DeliveryFailed,
    InvalidEmail,
    InvitationContext,
    InvitationRevoked,
    MemoryMailer,
    NotificationContext,
    PermissionSet,
    RateLimited,
    RenderedMail,
    SmtpMailer,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.gate import MailRefused, check_outgoing
from teamaccess._mail.mailers import build_message
from teamaccess.testing import FailingMailer, FrozenClock

# Decodes to "Evil", CR LF, "Bcc: attacker@evil.example", a blank line and a new body.
EVIL = "=?utf-8?q?Evil=0D=0ABcc:_attacker@evil.example=0D=0A=0D=0Anew_body?="
EVIL_ADDRESS = "=?utf-8?q?x=0D=0ABcc=3A_attacker=40evil.example?=@example.com"
NONE = PermissionSet.none()


def wire(message: EmailMessage) -> EmailMessage:
    """*message* as a mail server gets it, parsed back."""
    utf8 = message.policy.utf8  # type: ignore[attr-defined]
    raw = message.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    parsed = message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def make_team(store: Store, mailer: object, clock: FrozenClock, **kw: object) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,  # type: ignore[arg-type]
        secret_key=SECRET,
        clock=clock,
        accept_url=kw.pop("accept_url", "https://shop.example.org/accept?token={token}"),
        sender=kw.pop("sender", "Shop <noreply@shop.example.org>"),
        **kw,  # type: ignore[arg-type]
    )


def tamper_account_name(store: Store, account: Account, name: str) -> None:
    """What a row written before these checks (or by another program) may hold."""
    with store.begin() as uow:
        uow.update_account(attrs.evolve(account, name=name))
        uow.commit()


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


@pytest.fixture
def smtp_team(store: Store, server: SmtpServer, clock: FrozenClock) -> TeamAccess:
    return make_team(store, SmtpMailer(server.host, server.port), clock)


class TestEncodedWordsAreRefused:
    """An RFC 2047 encoded word in a name or an address is refused before anything is stored."""

    def test_account_name(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="encoded-word"):
            team.create_account(name=EVIL, owner_id="o", owner_email="o@example.com")
        assert team.accounts_for("o") == []

    def test_rename(self, team: TeamAccess) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(ValidationError, match="encoded-word"):
            team.rename_account(acc.id, actor_id="o", name=f"Shop {EVIL}")
        assert team.get_account(acc.id).name == "A"

    def test_contact_name_and_details(self, team: TeamAccess) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(ValidationError, match="encoded-word"):
            team.add_contact(
                acc.id, actor_id="o", name=EVIL, email="c@example.com", categories=["general"]
            )
        with pytest.raises(ValidationError, match="encoded-word"):
            team.add_contact(
                acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"],
                company=EVIL,
            )  # fmt: skip
        c = team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"]
        )
        with pytest.raises(ValidationError, match="encoded-word"):
            team.update_contact(c.id, actor_id="o", name=EVIL)
        assert team.contacts(acc.id) == [c]

    def test_addresses(self, team: TeamAccess) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(InvalidEmail, match="encoded-word"):
            team.create_account(name="B", owner_id="p", owner_email=EVIL_ADDRESS)
        with pytest.raises(InvalidEmail, match="encoded-word"):
            team.invite(acc.id, actor_id="o", email=EVIL_ADDRESS, permissions=NONE)
        with pytest.raises(InvalidEmail, match="encoded-word"):
            team.add_contact(
                acc.id, actor_id="o", name="C", email=EVIL_ADDRESS, categories=["general"]
            )
        c = team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"]
        )
        with pytest.raises(InvalidEmail, match="encoded-word"):
            team.update_contact(c.id, actor_id="o", email=EVIL_ADDRESS)
        inv = team.invite(acc.id, actor_id="o", email="d@example.com", permissions=NONE)
        assert inv.token is not None
        with pytest.raises(InvalidEmail, match="encoded-word"):
            team.accept_invitation(inv.token, user_id="d", email=EVIL_ADDRESS)
        assert team.accounts_for("p") == []
        assert [i.email for i in team.pending_invitations(acc.id)] == ["d@example.com"]
        assert [x.email for x in team.contacts(acc.id)] == ["c@example.com"]

    def test_sender_setting(self, store: Store, clock: FrozenClock) -> None:
        with pytest.raises(ValidationError, match="sender contains RFC 2047"):
            make_team(store, MemoryMailer(), clock, sender=f"{EVIL} <noreply@example.com>")

    def test_a_sender_every_mail_would_be_refused_for(
        self, store: Store, clock: FrozenClock
    ) -> None:
        # A word of a name that is not ASCII and too long for one encoded word is split
        # by the stdlib, and Python 3.11's parser reads the split back as a space: every
        # mail to an ASCII address failed the last check. It is refused when the service
        # is made, not per mail, and the error names the word.
        word = "株式会社ミュラーホスティング顧客センター東京本社"
        long_name = f"Kundenportal {word}"
        built = build_message(
            sender=f"{long_name} <noreply@example.com>", to="a@example.com", subject="s",
            text="t", html=None, message_id="<m@example.com>", language="de",
        )  # fmt: skip
        with pytest.raises(MailRefused):  # what the mail itself would meet
            check_outgoing(built, "a@example.com")
        with pytest.raises(ValidationError, match="put a space in it") as info:
            make_team(store, MemoryMailer(), clock, sender=f"{long_name} <noreply@example.com>")
        assert word in str(info.value)
        # the same letters with spaces go through, and the mail is sent
        mailer = MemoryMailer()
        spaced = "Kundenportal 株式会社 ミュラーホスティング 顧客センター 東京本社"
        team = make_team(store, mailer, clock, sender=f"{spaced} <noreply@example.com>")
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        assert len(mailer.outbox) == 1
        assert wire(mailer.outbox[0])["From"].addresses[0].addr_spec == "noreply@example.com"


class TestWireFormGate:
    """A message whose wire form differs from what was built is refused, recorded, never sent."""

    def test_stored_evil_name_is_not_sent(
        self, store: Store, smtp_team: TeamAccess, server: SmtpServer
    ) -> None:
        acc = smtp_team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        tamper_account_name(store, acc, EVIL)
        with pytest.raises(DeliveryFailed, match="refused") as info:
            smtp_team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        assert server.received == []
        # The invitation is stored; its mail is closed with the reason, never retried.
        assert [i.email for i in smtp_team.pending_invitations(acc.id)] == ["bob@example.com"]
        assert smtp_team.pending_messages() == []
        with store.read() as uow:
            row = uow.get_outbox(info.value.message_ids[0])
        assert row is not None
        assert row.status == "cancelled"
        assert row.last_error is not None
        assert "refused before sending" in row.last_error
        assert smtp_team.deliver_pending() == []
        assert server.received == []

    def test_other_accounts_still_get_mail(
        self, store: Store, smtp_team: TeamAccess, server: SmtpServer
    ) -> None:
        bad = smtp_team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        tamper_account_name(store, bad, EVIL)
        good = smtp_team.create_account(name="B", owner_id="p", owner_email="p@example.com")
        with pytest.raises(DeliveryFailed):
            smtp_team.invite(bad.id, actor_id="o", email="bob@example.com", permissions=NONE)
        smtp_team.invite(good.id, actor_id="p", email="eve@example.com", permissions=NONE)
        [got] = server.received
        assert got.rcpt_tos == ["eve@example.com"]
        assert got.message["To"] == "eve@example.com"
        assert got.message["Bcc"] is None

    def test_template_that_injects_is_refused(
        self, store: Store, clock: FrozenClock, server: SmtpServer
    ) -> None:
        class Sloppy(DefaultTemplates):
            def invitation(self, context: InvitationContext) -> RenderedMail:
                mail = super().invitation(context)
                return attrs.evolve(mail, subject=f"Welcome {EVIL}")

        team = make_team(store, SmtpMailer(server.host, server.port), clock, templates=Sloppy())
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed, match="refused"):
            team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        assert server.received == []

    def test_notification_subject_that_injects_is_refused(
        self, store: Store, smtp_team: TeamAccess, server: SmtpServer
    ) -> None:
        acc = smtp_team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        # Refused before anything is stored, as a subject with a line break is: the stdlib
        # would decode the encoded word (here into a Bcc line, or a café that was not
        # what the vendor wrote).
        for subject in (f"Hi {EVIL}", "Hi =?utf-8?q?caf=C3=A9?="):
            with pytest.raises(ValidationError, match="encoded-word"):
                smtp_team.notify(acc.id, "general", subject=subject, text="t")
        with store.read() as uow:
            assert uow.outbox() == []
        assert server.received == []
        smtp_team.notify(acc.id, "general", subject="Hi café", text="t")
        [got] = server.received
        assert got.message["Subject"] == "Hi café"

    def test_the_stdlib_would_have_injected(self) -> None:
        """What the gate stands in front of: on this Python the built message may or may
        not carry the Bcc line on the wire; either way check_outgoing refuses it."""
        msg = build_message(
            sender="S <s@example.com>", to="bob@example.com", subject=f"x {EVIL}",
            text="t", html=None, message_id="<m@example.com>", language="en",
        )  # fmt: skip
        parsed = wire(msg)
        injected = parsed["Bcc"] is not None
        assert injected or "\n" in str(parsed["Subject"])  # patched Pythons encode the CR/LF
        with pytest.raises(MailRefused):
            check_outgoing(msg, "bob@example.com")

    def test_recipient_must_be_the_stored_one(self) -> None:
        msg = build_message(
            sender="S <s@example.com>", to="bob@example.com", subject="x", text="t",
            html=None, message_id="<m@example.com>", language="en",
        )  # fmt: skip
        assert check_outgoing(msg, "bob@example.com") == "bob@example.com"
        with pytest.raises(MailRefused, match="stored recipient"):
            check_outgoing(msg, "alice@example.com")
        msg["Cc"] = "alice@example.com"
        with pytest.raises(MailRefused, match="cc"):
            check_outgoing(msg, "bob@example.com")

    def test_idn_and_utf8_recipients_pass(self, team: TeamAccess, mailer: MemoryMailer) -> None:
        acc = team.create_account(name="Müller", owner_id="o", owner_email="o@example.com")
        for address in ("chef@müller.de", "straße@example.com"):
            team.invite(acc.id, actor_id="o", email=address, permissions=NONE)
        assert [wire(m)["To"] for m in mailer.outbox] == [
            "chef@xn--mller-kva.de",
            "straße@example.com",
        ]


class TestEnvelope:
    """The envelope recipient and the To header are the stored address, first time and on retry."""

    def test_first_send(self, smtp_team: TeamAccess, server: SmtpServer) -> None:
        acc = smtp_team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        smtp_team.invite(acc.id, actor_id="o", email="Bob@Example.com", permissions=NONE)
        [got] = server.received
        assert got.rcpt_tos == ["Bob@example.com"]
        assert got.message.get_all("To") == ["Bob@example.com"]

    def test_notification_retry_of_tampered_bytes(
        self, store: Store, clock: FrozenClock, server: SmtpServer
    ) -> None:
        failing = FailingMailer()
        team = make_team(store, failing, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.com", categories=["billing"]
        )
        with pytest.raises(DeliveryFailed):
            team.notify(acc.id, "billing", subject="Invoice", text="t")
        rows = sorted(team.pending_messages(), key=lambda r: r.recipient)
        assert [r.recipient for r in rows] == ["c@example.com", "o@example.com"]
        # A stored message that now names other recipients (a damaged or altered row).
        with store.begin() as uow:
            first = rows[1]
            assert first.message is not None
            altered = first.message.replace(
                b"To: o@example.com",
                b"To: o@example.com, attacker@evil.example\nBcc: x@evil.example",
            )
            assert altered != first.message
            uow.update_outbox(attrs.evolve(first, status="cancelled"))
            uow.add_outbox(attrs.evolve(first, id="msg_altered", message=altered))
            uow.commit()
        retry = make_team(store, SmtpMailer(server.host, server.port), clock)
        clock.advance(retry.max_retry_backoff)
        done = {r.id: r for r in retry.deliver_pending()}
        assert done["msg_altered"].status == "cancelled"
        assert done["msg_altered"].last_error is not None
        assert "refused before sending" in done["msg_altered"].last_error
        assert done[rows[0].id].status == "sent"
        assert [(r.rcpt_tos, r.message["To"]) for r in server.received] == [
            (["c@example.com"], "c@example.com")
        ]

    def test_invitation_retry(self, store: Store, clock: FrozenClock, server: SmtpServer) -> None:
        team = make_team(store, FailingMailer(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed):
            team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        retry = make_team(store, SmtpMailer(server.host, server.port), clock)
        clock.advance(retry.max_retry_backoff)
        [row] = retry.deliver_pending()
        assert row.status == "sent"
        [got] = server.received
        assert got.rcpt_tos == ["bob@example.com"]
        assert got.message.get_all("To") == ["bob@example.com"]

    def test_smtp_mailer_sends_to_the_envelope_only(self, server: SmtpServer) -> None:
        msg = build_message(
            sender="S <s@example.com>", to="bob@example.com", subject="x", text="t",
            html=None, message_id="<m@example.com>", language="en",
        )  # fmt: skip
        msg["Cc"] = "carol@example.com"  # build_message refuses it; a caller's own mail
        SmtpMailer(server.host, server.port).send(msg, envelope_to="bob@example.com")
        SmtpMailer(server.host, server.port).send(msg)  # without it: every header recipient
        assert [r.rcpt_tos for r in server.received] == [
            ["bob@example.com"],
            ["bob@example.com", "carol@example.com"],
        ]

    def test_a_mailer_without_envelope_keeps_working(
        self, store: Store, clock: FrozenClock
    ) -> None:
        class Plain:
            def __init__(self) -> None:
                self.sent: list[EmailMessage] = []

            def send(self, message: EmailMessage) -> None:
                self.sent.append(message)

        plain = Plain()
        team = make_team(store, plain, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        assert [m["To"] for m in plain.sent] == ["bob@example.com"]


class TestOneBadRecipient:
    """A recipient whose mail cannot be built or is refused never blocks the others."""

    def test_notify_reaches_everyone_else(
        self, store: Store, smtp_team: TeamAccess, server: SmtpServer
    ) -> None:
        acc = smtp_team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        good = smtp_team.add_contact(
            acc.id, actor_id="o", name="G", email="g@example.com", categories=["billing"]
        )
        bad = smtp_team.add_contact(
            acc.id, actor_id="o", name="B", email="b@example.com", categories=["billing"]
        )
        # An address stored before addresses were checked for this (or by another program).
        with store.begin() as uow:
            uow.update_contact(attrs.evolve(bad, email=EVIL_ADDRESS), "evil@example.com")
            uow.commit()
        with pytest.raises(DeliveryFailed, match="1 of 3") as info:
            smtp_team.notify(acc.id, "billing", subject="Invoice", text="t")
        assert sorted(r for got in server.received for r in got.rcpt_tos) == [
            "g@example.com",
            "o@example.com",
        ]
        assert good.email == "g@example.com"
        with store.read() as uow:
            row = uow.get_outbox(info.value.message_ids[0])
        assert row is not None
        assert row.status == "cancelled"
        assert row.recipient == EVIL_ADDRESS

    def test_unrenderable_address_is_invalid_when_stored(self, team: TeamAccess) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(InvalidEmail):
            team.add_contact(
                acc.id, actor_id="o", name="C", email=EVIL_ADDRESS, categories=["general"]
            )


class TestLineBreakInAddress:
    """A line break in an address is InvalidEmail, which callers catch for bad addresses."""

    @pytest.mark.parametrize("address", ["a@example.com\r\nBcc: x@evil.example", "a\n@b.com"])
    def test_everywhere(self, team: TeamAccess, address: str) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(InvalidEmail, match="line break"):
            team.create_account(name="B", owner_id="p", owner_email=address)
        with pytest.raises(InvalidEmail, match="line break"):
            team.invite(acc.id, actor_id="o", email=address, permissions=NONE)
        with pytest.raises(InvalidEmail, match="line break"):
            team.add_contact(acc.id, actor_id="o", name="C", email=address, categories=["general"])
        c = team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"]
        )
        with pytest.raises(InvalidEmail, match="line break"):
            team.update_contact(c.id, actor_id="o", email=address)
        inv = team.invite(acc.id, actor_id="o", email="d@example.com", permissions=NONE)
        assert inv.token is not None
        with pytest.raises(InvalidEmail, match="line break"):
            team.accept_invitation(inv.token, user_id="d", email=address)


class QuotingMailer:
    """Fails as a mail server that quotes the refused message in its reply."""

    def __init__(self, form: str) -> None:
        self.form = form

    def send(self, message: EmailMessage) -> None:
        body = message.get_body(("plain",))
        assert body is not None
        if self.form == "whole":
            raise RuntimeError(f"554 rejected:\n{message.as_string()}")
        if self.form == "part-qp":  # quoted-printable, with soft line breaks
            raise RuntimeError(f"554 rejected:\n{body.as_string()}")
        if self.form == "part-bytes":
            raise RuntimeError(f"554 rejected: {body.as_bytes()!r}")
        if self.form == "decoded":
            raise RuntimeError(f"554 rejected: {body.get_content()}")
        link = next(w for w in body.get_content().split() if w.startswith("https://"))
        raise RuntimeError(f"550 policy: link {link} is not allowed")


class TestNoTokenInErrorText:
    """The outbox's last_error and the log never hold the accept link or the token."""

    @pytest.mark.parametrize("form", ["whole", "part-qp", "part-bytes", "decoded", "link"])
    def test_quoted_message_is_scrubbed(
        self,
        store: Store,
        clock: FrozenClock,
        caplog: pytest.LogCaptureFixture,
        form: str,
    ) -> None:
        team = make_team(store, QuotingMailer(form), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with caplog.at_level("DEBUG", logger="teamaccess"):
            with pytest.raises(DeliveryFailed) as info:
                team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
            inv = info.value.invitation
            assert inv is not None
            assert inv.token is not None
            clock.advance(team.max_retry_backoff)
            [retried] = team.deliver_pending()
        [row] = team.pending_messages()
        assert row.last_error is not None
        assert row.last_error.startswith("RuntimeError")
        logged = caplog.text
        for where in (row.last_error, retried.last_error or "", logged, str(info.value)):
            assert inv.token not in where
            assert "accept?token" not in where
            assert "shop.example.org/accept" not in where
            # No piece of the token either, in any encoding.
            flat = where.replace("=\n", "").replace("=3D", "=")
            assert all(inv.token[i : i + 16] not in flat for i in range(len(inv.token) - 15))

    def test_only_the_link_is_removed(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, QuotingMailer("link"), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed):
            team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        [row] = team.pending_messages()
        assert row.last_error == "RuntimeError: 550 policy: link [removed] is not allowed"

    def test_an_error_without_the_message_is_kept(self, store: Store, clock: FrozenClock) -> None:
        failing = FailingMailer(error=ConnectionRefusedError("mail server is down"))
        team = make_team(store, failing, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed):
            team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        [row] = team.pending_messages()
        assert row.last_error == "ConnectionRefusedError: mail server is down"


class TestSizeLimits:
    """Names, subjects, texts and category lists have documented limits."""

    def test_names(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="account name is 201 characters long"):
            team.create_account(name="x" * 201, owner_id="o", owner_email="o@example.com")
        acc = team.create_account(name="x" * 200, owner_id="o", owner_email="o@example.com")
        with pytest.raises(ValidationError, match="limit is 200"):
            team.rename_account(acc.id, actor_id="o", name="y" * 1_000_000)
        with pytest.raises(ValidationError, match="contact name is 201"):
            team.add_contact(
                acc.id, actor_id="o", name="c" * 201, email="c@example.com", categories=["general"]
            )
        with pytest.raises(ValidationError, match="contact company is 201"):
            team.add_contact(
                acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"],
                company="c" * 201,
            )  # fmt: skip
        assert team.get_account(acc.id).name == "x" * 200
        assert team.contacts(acc.id) == []

    def test_subject_and_texts(self, team: TeamAccess, mailer: MemoryMailer) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(ValidationError, match="subject is 501 characters long"):
            team.notify(acc.id, "general", subject="s" * 501, text="t")
        with pytest.raises(ValidationError, match="text is 100001 characters long"):
            team.notify(acc.id, "general", subject="s", text="t" * 100_001)
        with pytest.raises(ValidationError, match="html is 100001 characters long"):
            team.notify(acc.id, "general", subject="s", text="t", html="h" * 100_001)
        assert mailer.outbox == []
        assert team.pending_messages() == []
        team.notify(acc.id, "general", subject="s" * 500, text="t" * 100_000)
        assert len(mailer.outbox) == 1

    def test_category_lists(self, team: TeamAccess) -> None:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(ValidationError, match="at most 100 entries"):
            team.add_contact(
                acc.id, actor_id="o", name="C", email="c@example.com",
                categories=["general"] * 1_000_000,
            )  # fmt: skip
        c = team.add_contact(
            acc.id, actor_id="o", name="C", email="c@example.com", categories=["general"] * 100
        )
        with pytest.raises(ValidationError, match="at most 100 entries"):
            team.update_contact(c.id, actor_id="o", categories=["billing"] * 101)
        assert team.contacts(acc.id)[0].categories == frozenset({"general"})


class TestRenderingHoldsNoLock:
    """Mail is rendered outside the write unit: another writer is never held up by it,
    and a template that fails stores nothing."""

    @staticmethod
    def write_meanwhile(team: TeamAccess, name: str) -> bool:
        """Whether another thread can write while the template renders."""
        import threading

        done = threading.Event()

        def write() -> None:
            team.create_account(name=name, owner_id=f"u-{name}", owner_email="w@example.com")
            done.set()

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        thread.join(timeout=5)
        return done.is_set()

    def test_invite_resend_retry_and_notify(self, store: Store, clock: FrozenClock) -> None:
        seen: list[bool] = []
        holder: list[TeamAccess] = []

        class Writing(DefaultTemplates):
            def invitation(self, context: InvitationContext) -> RenderedMail:
                seen.append(TestRenderingHoldsNoLock.write_meanwhile(holder[0], f"i{len(seen)}"))
                return super().invitation(context)

            def notification(self, context: NotificationContext) -> RenderedMail:
                seen.append(TestRenderingHoldsNoLock.write_meanwhile(holder[0], f"n{len(seen)}"))
                return super().notification(context)

        failing = FailingMailer(failing=False)
        team = make_team(store, failing, clock, templates=Writing())
        holder.append(team)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        inv = team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        team.resend_invitation(inv.id, actor_id="o")
        failing.failing = True
        with pytest.raises(DeliveryFailed):
            team.resend_invitation(inv.id, actor_id="o")
        failing.failing = False
        clock.advance(team.max_retry_backoff)
        [row] = team.deliver_pending()
        assert row.status == "sent"
        team.notify(acc.id, "general", subject="s", text="t")
        assert seen == [True] * 5
        assert len(team.accounts_for("u-i0")) == 1

    def test_failing_template_stores_nothing(self, store: Store, clock: FrozenClock) -> None:
        class Failing(DefaultTemplates):
            def invitation(self, context: InvitationContext) -> RenderedMail:
                raise RuntimeError("template bug")

        team = make_team(store, MemoryMailer(), clock, templates=Failing())
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        audit = team.audit_log(acc.id)
        with pytest.raises(RuntimeError, match="template bug"):
            team.invite(acc.id, actor_id="o", email="bob@example.com", permissions=NONE)
        assert team.invitations(acc.id) == []
        assert team.pending_messages() == []
        assert team.audit_log(acc.id) == audit


class TestAcceptUnderAnotherAddress:
    """With require_email_match=False, joining under another address closes that
    address's pending invitation: never a pending invitation for a member."""

    def test_other_pending_invitation_is_closed(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make_team(store, mailer, clock, require_email_match=False)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        first = team.invite(acc.id, actor_id="o", email="home@example.com", permissions=NONE)
        second = team.invite(
            acc.id, actor_id="o", email="Work@Example.com", permissions=PermissionSet.all()
        )
        assert first.token is not None
        assert second.token is not None
        team.accept_invitation(first.token, user_id="sam", email="work@example.com")
        assert team.pending_invitations(acc.id) == []
        assert team.get_invitation(second.id).status == "revoked"
        assert team.get_invitation(first.id).status == "accepted"
        # Its link no longer works, so the member cannot take the wider grant as well.
        with pytest.raises(InvitationRevoked):
            team.accept_invitation(second.token, user_id="sam", email="work@example.com")
        assert team.permissions_of("sam", acc.id) == NONE
        actions = [e.action for e in team.audit_log(acc.id)]
        assert actions[:2] == ["invitation.revoked", "invitation.accepted"]
        # Its waiting mail, if any, is cancelled with it.
        assert team.pending_messages() == []


class TestLogging:
    """The teamaccess logger behaves like a library's: a NullHandler, one ERROR per
    failing listener, nothing on stderr when the application configured no logging."""

    def test_failing_listener_is_logged_once(
        self, team: TeamAccess, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: object) -> None:
            raise RuntimeError("listener bug")

        team.add_listener(broken)
        with caplog.at_level("DEBUG"):
            team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        records = [r for r in caplog.records if r.name == "teamaccess"]
        assert [(r.levelname, r.getMessage()) for r in records] == [
            ("ERROR", f"audit listener {broken!r} failed on account.created")
        ]
        assert records[0].exc_info is not None
        import logging

        handlers = logging.getLogger("teamaccess").handlers
        assert any(isinstance(h, logging.NullHandler) for h in handlers)

    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    def test_nothing_on_stderr_without_logging_config(self, tmp_path: Path, backend: str) -> None:
        import subprocess
        import sys

        store = (
            "MemoryStore()" if backend == "memory" else f"SQLiteStore({str(tmp_path / 't.db')!r})"
        )
        script = (
            "from teamaccess import *\n"
            "from teamaccess.testing import FailingMailer\n"
            f"team = TeamAccess({store}, FailingMailer(), secret_key='k' * 32)\n"
            "team.add_listener(lambda e: 1 / 0)\n"
            "acc = team.create_account(name='A', owner_id='o', owner_email='o@example.com')\n"
            "try:\n"
            "    team.invite(acc.id, actor_id='o', email='b@example.com',\n"
            "                permissions=PermissionSet.none())\n"
            "except DeliveryFailed:\n"
            "    print('stored')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "stored\n"
        assert done.stderr == ""


class TestFloodLimits:
    """One address gets at most recipient_rate_limit invitations a day from all accounts
    together; one user creates at most account_rate_limit accounts an hour."""

    def test_recipient_limit_across_accounts(
        self, store: Store, clock: FrozenClock, mailer: MemoryMailer
    ) -> None:
        team = make_team(store, mailer, clock, recipient_rate_limit=3)
        accounts = [
            team.create_account(name=f"A{i}", owner_id=f"o{i}", owner_email=f"o{i}@example.com")
            for i in range(3)
        ]
        first = team.invite(accounts[0].id, actor_id="o0", email="v@example.com", permissions=NONE)
        clock.advance(timedelta(hours=1))
        team.resend_invitation(first.id, actor_id="o0")  # a resend is a mail too
        team.invite(accounts[1].id, actor_id="o1", email="V@Example.com", permissions=NONE)
        sent = len(mailer.outbox)
        with pytest.raises(RateLimited, match="from all accounts together") as info:
            team.invite(accounts[2].id, actor_id="o2", email="v@example.com", permissions=NONE)
        with pytest.raises(RateLimited):
            team.resend_invitation(first.id, actor_id="o0")
        assert len(mailer.outbox) == sent
        assert team.pending_invitations(accounts[2].id) == []
        assert info.value.retry_after == clock.now() - timedelta(hours=1) + timedelta(days=1)
        # Another address is not limited; and after the window the address is again.
        team.invite(accounts[2].id, actor_id="o2", email="w@example.com", permissions=NONE)
        clock.advance(timedelta(days=1) - timedelta(hours=1))
        team.invite(accounts[2].id, actor_id="o2", email="v@example.com", permissions=NONE)

    def test_default_is_ten_a_day(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, MemoryMailer(), clock)
        assert team.recipient_rate_limit == 10
        for i in range(10):
            acc = team.create_account(
                name=f"A{i}", owner_id=f"o{i}", owner_email=f"o{i}@example.com"
            )
            team.invite(acc.id, actor_id=f"o{i}", email="v@example.com", permissions=NONE)
        acc = team.create_account(name="B", owner_id="p", owner_email="p@example.com")
        with pytest.raises(RateLimited):
            team.invite(acc.id, actor_id="p", email="v@example.com", permissions=NONE)

    def test_accounts_per_user(self, store: Store, clock: FrozenClock) -> None:
        team = make_team(store, MemoryMailer(), clock)
        assert team.account_rate_limit == 10
        for i in range(10):
            team.create_account(name=f"A{i}", owner_id="u", owner_email="u@example.com")
            clock.advance(timedelta(minutes=1))
        with pytest.raises(RateLimited, match="created 10 accounts") as info:
            team.create_account(name="B", owner_id="u", owner_email="u@example.com")
        assert len(team.accounts_for("u")) == 10
        team.create_account(name="C", owner_id="other", owner_email="x@example.com")
        assert info.value.retry_after is not None
        clock.advance(info.value.retry_after - clock.now())
        team.create_account(name="B", owner_id="u", owner_email="u@example.com")

    @pytest.mark.parametrize(
        ("setting", "value"),
        [("recipient_rate_limit", 0), ("account_rate_limit", True),
         ("recipient_rate_window", timedelta(0)), ("account_rate_window", 3600)],
    )  # fmt: skip
    def test_settings_are_checked(
        self, store: Store, clock: FrozenClock, setting: str, value: object
    ) -> None:
        with pytest.raises(ValidationError, match=setting):
            make_team(store, MemoryMailer(), clock, **{setting: value})


class TestBoundary:
    """Every mail shares one MIME boundary (the stdlib's regex cache hits); text that holds
    it can never end a part early."""

    def test_mails_share_the_boundary(self) -> None:
        one, two = (
            build_message(
                sender="P <p@example.com>", to=f"{n}@example.com", subject="s", text="t",
                html="<p>h</p>", message_id=f"<{n}@example.com>", language="en",
            )
            for n in ("a", "b")
        )  # fmt: skip
        assert one.get_boundary() == two.get_boundary() is not None

    @pytest.mark.parametrize("where", ["text", "html"])
    def test_text_holding_the_boundary_cannot_forge_a_part(self, where: str) -> None:
        boundary = build_message(
            sender="P <p@example.com>", to="a@example.com", subject="s", text="t",
            html="<p>h</p>", message_id="<m@example.com>", language="en",
        ).get_boundary()  # fmt: skip
        forged = (
            f"before\n--{boundary}\nContent-Type: text/html\n\n<a href=x>evil</a>\n--{boundary}--\n"
        )
        parts = {"text": "plain", "html": "<p>h</p>"}
        parts[where] = forged
        msg = build_message(
            sender="P <p@example.com>", to="a@example.com", subject="s", text=parts["text"],
            html=parts["html"], message_id="<m@example.com>", language="en",
        )  # fmt: skip
        assert msg.get_boundary() != boundary
        wire = msg.as_bytes(policy=email.policy.SMTP)
        back = message_from_bytes(wire, policy=email.policy.default)
        got = [p.get_content() for p in back.iter_parts()]  # type: ignore[attr-defined]
        assert len(got) == 2
        assert got[0 if where == "text" else 1].replace("\r\n", "\n") == forged
        check_outgoing(msg, "a@example.com")

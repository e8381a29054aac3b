"""Erasure in mail to others: a vendor's notice that names the person, waiting for or sent
to other recipients, and delivery errors that quote the person's address, on every
backend. The waiting mail still goes out, to a real SMTP server, with the person's
address replaced in every form and everything else as it was. Also the free text of
others' rows: invitation notes and metadata, member metadata, contact fields."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import pytest
from tests.smtp_server import SmtpServer

from teamaccess import (
    SYSTEM,
    DeliveryFailed,
    MemoryMailer,
    OutboxMessage,
    PermissionSet,
    SmtpMailer,
    Store,
    TeamAccess,
)
from teamaccess._mail.mailers import parse_stored
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SECRET

PIA = "user-pia-4471"
PIA_EMAIL = "Jörg.Pia@Bücher.example"  # as invited and named by the vendor
PIA_ACCEPTED = "jörg.pia@xn--bcher-kva.example"  # as she accepted: the ASCII domain
OTHER = "other@other.example"
ERASED = "[erased]"

#: How the vendor's notice names her: as typed, in upper case, with the ASCII domain, in
#: the HTML part as a mailto link (URL-quoted) and with HTML character references.
SUBJECT = "Neue Anschrift von {who}"
TEXT = (
    "Guten Tag,\n\n{who} hat die Rechnungsanschrift geändert; Rückfragen bitte an {upper}"
    " oder {ascii}. Ihre Kundennummer: {uid}. Grüße, äöü äöü äöü äöü äöü äöü äöü äöü äöü\n"
)
HTML = '<p>Schreiben Sie an <a href="mailto:{quoted}">{entities}</a>.</p>'
#: Other addresses that hold hers, and her id inside a longer one: none is hers.
NEAR = (
    "xjörg.pia@bücher.example, jörg.pia@bücher.example.org, jörg.pia@bücher.examples, "
    f"x-{PIA}, {PIA}0, jörg.pia@bücher.example-shop.de, 'a.jörg.pia@bücher.example'"
)
FORMS = {
    "who": PIA_EMAIL,
    "upper": PIA_EMAIL.upper(),
    "ascii": PIA_ACCEPTED,
    "uid": PIA,
    "quoted": quote(PIA_EMAIL, safe="@"),
    "entities": "J&ouml;rg.Pia@B&#252;cher.example",
}
#: What must not be in the bytes of any mail after the erasure (compared lower-cased).
NEEDLES = [
    "jörg.pia@bücher".encode(),
    b"j=c3=b6rg.pia",  # quoted-printable
    b"j%c3%b6rg.pia",  # URL-quoted
    b"j&ouml;rg.pia",
    b"jorg.pia",
    b"@xn--bcher-kva.example",
    PIA.encode(),
]


def erased(template: str) -> str:
    return template.format(**dict.fromkeys(FORMS, ERASED))


def named(template: str) -> str:
    return template.format(**FORMS)


def content(msg: EmailMessage) -> tuple[str, str, str | None]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    return (
        str(msg["Subject"]),
        text.get_content().replace("\r\n", "\n"),
        None if html is None else html.get_content().replace("\r\n", "\n"),
    )


def decoded_text(msg: EmailMessage) -> str:
    """Every header value and text part of *msg*, decoded, lower-cased."""
    found = [str(v) for _, v in msg.items()]
    for part in msg.walk():
        if not part.is_multipart():
            found.append(part.get_content())
    return "\n".join(found).lower()


def assert_no_form(source: bytes) -> None:
    raw = source.lower()
    for needle in NEEDLES:
        assert needle not in raw, needle
    text = decoded_text(parse_stored(source))
    for form in ("jörg.pia@bücher", "jörg.pia@xn--bcher", PIA):
        assert form not in text, form


def setup(team: TeamAccess, clock: FrozenClock) -> str:
    # The invitation through a team that sends at once: its token is in the mail.
    team = make(team._store, clock, MemoryMailer())
    acc = team.create_account(name="Shop", owner_id="olga", owner_email="olga@shop.example").id
    inv = team.invite(acc, actor_id="olga", email=PIA_EMAIL, permissions=PermissionSet.of())
    team.accept_invitation(inv.token or "", user_id=PIA, email=PIA_ACCEPTED)
    for name, address in (("Pia", PIA_EMAIL), ("Other", OTHER)):
        team.add_contact(acc, actor_id="olga", name=name, email=address, categories=["billing"])
    return acc


def make(store: Store, clock: FrozenClock, mailer: Any, **kw: Any) -> TeamAccess:
    kw.setdefault("sender", "Panel <noreply@panel.example.net>")
    return TeamAccess(
        store, mailer, secret_key=SECRET, clock=clock, pseudonym_key="k",
        accept_url="https://panel.example.net/accept?token={token}", **kw,
    )  # fmt: skip


def notify(team: TeamAccess, acc: str) -> None:
    team.notify(acc, "billing", subject=named(SUBJECT), text=named(TEXT), html=named(HTML))


def stored(team: TeamAccess) -> dict[str, bytes]:
    """The stored message of the vendor's notice naming her, by recipient."""
    with team._store.read() as uow:
        rows = [m for _, m in uow.outbox_texts(limit=1000)]
    return {
        m.recipient: m.message
        for m in rows
        if m.message is not None and b"\nSubject: Invoice\n" not in m.message
    }


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


class TestWaitingMail:
    """Mail waiting for others is rewritten, delivered, and says everything else as before."""

    def test_delivered_to_a_real_server_without_the_person(
        self, store: Store, clock: FrozenClock, server: SmtpServer
    ) -> None:
        team = make(store, clock, SmtpMailer(server.host, server.port), delivery="queue")
        acc = setup(team, clock)
        notify(team, acc)
        team.notify(acc, "billing", subject="Invoice", text="Nothing personal.")
        before = stored(team)
        originals = {to: content(parse_stored(m)) for to, m in before.items()}
        assert set(before) == {"olga@shop.example", OTHER, PIA_EMAIL.replace("Bü", "bü")}
        # Encoded in the stored bytes: the subject as an RFC 2047 word, the text not as
        # plain UTF-8; the check below can fail.
        for to in ("olga@shop.example", OTHER):
            assert "jörg.pia@bücher".encode() not in before[to].lower()
            assert PIA_EMAIL.lower() in decoded_text(parse_stored(before[to]))
        unrelated = {m.id: m.message for m in team.pending_messages() if m.kind != "invitation"}

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert (report.messages_redacted, report.messages_cancelled) == (2, 0)
        after = stored(team)
        assert set(after) == {"olga@shop.example", OTHER}
        waiting = {m.id: m.message for m in team.pending_messages()}
        plain = [i for i, m in unrelated.items() if m is not None and b"Nothing personal" in m]
        assert len(plain) == 3
        plain = [i for i in plain if i in waiting]  # hers is gone
        assert len(plain) == 2
        for message_id in plain:
            assert waiting[message_id] == unrelated[message_id]  # untouched, byte for byte
        done = team.deliver_pending()
        assert [r.status for r in done] == ["sent"] * 4
        got = [r for r in server.received if b"Nothing personal" not in r.content]
        assert sorted(r.rcpt_tos[0] for r in got) == ["olga@shop.example", OTHER]
        for received in got:
            to = received.rcpt_tos[0]
            wire = received.message.as_bytes(policy=policy.SMTP)
            assert_no_form(received.content)
            assert_no_form(wire)
            back = message_from_bytes(wire, policy=policy.default)
            assert isinstance(back, EmailMessage)
            subject, text, html = content(back)
            was_subject, was_text, was_html = originals[to]
            assert subject == erased(SUBJECT)
            assert was_subject == named(SUBJECT)
            assert named(TEXT) in was_text
            assert text == was_text.replace(named(TEXT), erased(TEXT))
            assert was_html is not None
            assert named(HTML) in was_html
            assert html == was_html.replace(named(HTML), erased(HTML))
            for name in ("To", "From", "Message-ID", "Date", "Content-Language"):
                assert back[name] == parse_stored(before[to])[name], name

    def test_to_an_address_that_needs_smtputf8(
        self, store: Store, clock: FrozenClock, server: SmtpServer
    ) -> None:
        team = make(store, clock, SmtpMailer(server.host, server.port), delivery="queue")
        acc = setup(team, clock)
        zoe = "zoë@other.example"  # a local part that is not ASCII: a UTF-8 message
        team.add_contact(acc, actor_id="olga", name="Zoë", email=zoe, categories=["billing"])
        notify(team, acc)
        was = content(parse_stored(stored(team)[zoe]))

        team.erase_person(user_id=PIA, actor_id=SYSTEM)

        done = team.deliver_pending()
        assert {r.status for r in done} == {"sent"}
        [received] = [r for r in server.received if r.rcpt_tos == [zoe]]
        assert_no_form(received.content)
        back = message_from_bytes(received.content, policy=policy.SMTPUTF8)
        assert isinstance(back, EmailMessage)
        assert content(back) == (
            erased(SUBJECT),
            was[1].replace(named(TEXT), erased(TEXT)),
            (was[2] or "").replace(named(HTML), erased(HTML)),
        )

    @pytest.mark.parametrize(
        "subject",
        [
            # Read back, these lost or gained a space the stdlib's encoded words decide on.
            f"{PIA_EMAIL.upper()} <b> {PIA} {PIA_EMAIL} 日本語 &amp;",
            f"😀 {PIA_EMAIL} Rechnung    &amp; {PIA_ACCEPTED}",
            f"{PIA_EMAIL} 😀 <b> {PIA}    € 日本語 Straße",
            f"äöü    {'x' * 90} {PIA_EMAIL}",
        ],
    )
    def test_subjects_the_stdlib_refolds(self, clock: FrozenClock, subject: str) -> None:
        from teamaccess import MemoryStore

        mailer = MemoryMailer()
        team = make(MemoryStore(), clock, mailer, delivery="queue")
        acc = setup(team, clock)
        team.add_contact(acc, actor_id="olga", name="Zoë", email="zoë@other.example",
                         categories=["billing"])  # fmt: skip
        team.notify(acc, "billing", subject=subject, text=f"Von {PIA_EMAIL}.")

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert (report.messages_redacted, report.messages_cancelled) == (3, 0)
        assert {r.status for r in team.deliver_pending()} == {"sent"}
        assert len(mailer.outbox) == 3
        for msg in mailer.outbox:
            assert "jörg" not in decoded_text(msg)
            assert "".join(str(msg["Subject"]).split()) == "".join(
                subject.replace(PIA_EMAIL.upper(), ERASED).replace(PIA_EMAIL, ERASED)
                .replace(PIA_ACCEPTED, ERASED).replace(PIA, ERASED).split()
            )  # fmt: skip
            assert content(msg)[1].startswith(f"Von {ERASED}.")

    def test_sent_mail_keeps_no_form_either(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make(store, clock, mailer)
        acc = setup(team, clock)
        notify(team, acc)
        assert len(stored(team)) == 3

        report = team.erase_person(email=PIA_ACCEPTED, actor_id=SYSTEM)

        assert (report.messages_redacted, report.messages_cancelled) == (2, 0)
        after = stored(team)
        assert set(after) == {"olga@shop.example", OTHER}
        for source in after.values():
            assert_no_form(source)
            assert content(parse_stored(source))[0] == erased(SUBJECT)

    def test_delivery_errors_quoting_the_person(self, store: Store, clock: FrozenClock) -> None:
        error = f"550 <{PIA_ACCEPTED}>: mailbox {PIA_EMAIL.upper()} full; ask {PIA}"
        mailer = FailingMailer(failing=False, error=ConnectionError(error))
        team = make(store, clock, mailer)
        acc = setup(team, clock)
        mailer.failing = True
        with contextlib.suppress(DeliveryFailed):
            team.notify(acc, "billing", subject="Invoice", text="Your invoice")
        with contextlib.suppress(DeliveryFailed):
            team.invite(
                acc, actor_id="olga", email="new@other.example", permissions=PermissionSet.of()
            )
        rows = [m for m in team.pending_messages() if m.recipient != PIA_EMAIL.replace("Bü", "bü")]
        assert len(rows) == 3
        assert all(PIA_ACCEPTED in (m.last_error or "") for m in rows)

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert report.messages_redacted == 3
        left = {m.id: m for m in team.pending_messages()}
        assert set(left) == {m.id for m in rows}
        for row in left.values():
            assert row.last_error == (
                f"ConnectionError: 550 <{ERASED}>: mailbox {ERASED} full; ask {ERASED}"
            )
        mailer.failing = False
        clock.advance(timedelta(days=1))
        assert [r.status for r in team.deliver_pending()] == ["sent"] * 3

    def test_near_namesakes_stay(self, store: Store, clock: FrozenClock) -> None:
        team = make(store, clock, MemoryMailer(), delivery="queue")
        acc = setup(team, clock)
        team.notify(acc, "billing", subject="Invoice", text=f"{NEAR}\n({PIA_EMAIL}).")

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert report.messages_redacted == 2
        team.deliver_pending()
        for msg in team.mailer.outbox:  # type: ignore[attr-defined]
            text = content(msg)[1]
            assert f"{NEAR}\n({ERASED})." in text


class TestCannotBeRewritten:
    """Mail that names the person where it cannot be rewritten is cancelled, not sent."""

    def test_the_sender_is_the_person(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        # A vendor whose sender address is the person's (say, the clerk who left).
        team = make(store, clock, mailer, delivery="queue", sender=f"Büro <{PIA_ACCEPTED}>")
        acc = setup(team, clock)
        team.notify(acc, "billing", subject="Invoice", text="Your invoice")

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert (report.messages_redacted, report.messages_cancelled) == (0, 2)
        with team._store.read() as uow:
            rows = [m for m in uow.outbox(status="cancelled") if m.kind.startswith("notif")]
        assert sorted(m.recipient for m in rows) == ["olga@shop.example", OTHER]
        for row in rows:
            assert row.message is None
            assert row.last_error is not None
            assert row.last_error.startswith("cancelled by an erasure: ")
            assert "From" in row.last_error
            assert "jörg" not in row.last_error.lower()
        assert team.deliver_pending() == []
        assert mailer.outbox == []

    def test_a_foreign_shape_is_cancelled_and_a_sent_copy_dropped(
        self, store: Store, clock: FrozenClock
    ) -> None:
        team = make(store, clock, MemoryMailer(), delivery="queue")
        acc = setup(team, clock)
        team.notify(acc, "billing", subject="Invoice", text="Your invoice")
        # Rows written by another program: one part of HTML alone, naming her.
        foreign = (
            "From: Panel <noreply@panel.example>\nTo: other@other.example\nSubject: x\n"
            "Date: Fri, 01 May 2026 09:00:00 +0000\nMessage-ID: <f@panel.example>\n"
            "Content-Language: de\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n"
            f"Content-Transfer-Encoding: 8bit\n\n<p>{PIA_EMAIL}</p>\n"
        ).encode()
        with team._store.read() as uow:
            rows = [m for m in uow.outbox(status="pending") if m.recipient == OTHER]
        import attrs

        with team._store.begin() as uow:
            uow.rewrite_outbox(attrs.evolve(rows[0], message=foreign))
            sent = attrs.evolve(rows[0], id="msg-sent-elsewhere", status="sent", message=foreign)
            uow.add_outbox(sent)
            uow.commit()

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert (report.messages_redacted, report.messages_cancelled) == (1, 1)
        with team._store.read() as uow:
            cancelled = uow.get_outbox(rows[0].id)
            kept = uow.get_outbox("msg-sent-elsewhere")
        assert cancelled is not None
        assert kept is not None
        assert (cancelled.status, cancelled.message) == ("cancelled", None)
        assert "not a message the library built" in (cancelled.last_error or "")
        assert (kept.status, kept.message) == ("sent", None)


class TestFreeTextOfOthers:
    """Notes, metadata and contact fields of other people's rows lose the person too."""

    def test_notes_metadata_and_contact_fields(self, store: Store, clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make(store, clock, mailer)
        acc = setup(team, clock)
        inv = team.invite(
            acc, actor_id="olga", email="max@other.example", permissions=PermissionSet.of(),
            note=f"Du übernimmst von {PIA_EMAIL}.", metadata={"replaces": [PIA_ACCEPTED], "n": 1},
        )  # fmt: skip
        team.accept_invitation(inv.token or "", user_id="max", email="max@other.example")
        waiting = team.invite(
            acc, actor_id="olga", email="new@other.example", permissions=PermissionSet.of(),
            note=f"Ansprechpartner war {PIA_EMAIL.upper()}", metadata={"ticket": PIA},
        )  # fmt: skip
        other = team.add_contact(
            acc, actor_id="olga", name="Vertretung", email="deputy@other.example",
            categories=["general"], role=f"Vertritt {PIA_EMAIL}", company="Bücher AG",
        )  # fmt: skip
        mailer.outbox.clear()

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert report.texts_redacted == 4  # max's membership and invitation, new's, deputy's
        member = team.get_member(acc, "max")
        assert member.metadata == {"replaces": [ERASED], "n": 1}
        [pending] = team.pending_invitations(acc)
        assert pending.id == waiting.id
        assert pending.note == f"Ansprechpartner war {ERASED}"
        assert pending.metadata == {"ticket": ERASED}
        [deputy] = [c for c in team.contacts(acc) if c.id == other.id]
        assert (deputy.role, deputy.company, deputy.name) == (
            f"Vertritt {ERASED}",
            "Bücher AG",
            "Vertretung",
        )
        # The note goes out in the invitation mail: a resend says [erased].
        team.resend_invitation(waiting.id, actor_id="olga")
        [mail] = mailer.outbox
        text = content(mail)[1]
        assert f"Ansprechpartner war {ERASED}" in text
        assert "jörg" not in decoded_text(mail)

    def test_the_vendors_subject_in_the_audit_log(self, store: Store, clock: FrozenClock) -> None:
        team = make(store, clock, MemoryMailer())
        acc = setup(team, clock)
        subject = f"Neu: {PIA_EMAIL.upper()}. Kunde {PIA}, nicht x-{PIA}"
        team.notify(acc, "general", subject=subject, text="x")

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        [queued] = [e for e in team.audit_log(acc) if e.action == "notification.queued"]
        name = report.pseudonym
        assert queued.details["subject"] == f"Neu: {name}. Kunde {name}, nicht x-{PIA}"


def _damaged(body: str, *, head: str = "", cte: str = "8bit") -> bytes:
    """A stored message another program or a damaged row holds: HTML alone, to OTHER."""
    return (
        "From: Panel <noreply@panel.example>\nTo: other@other.example\nSubject: x\n"
        "Date: Fri, 01 May 2026 09:00:00 +0000\nMessage-ID: <d@panel.example>\n"
        f"{head}MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n"
        f"Content-Transfer-Encoding: {cte}\n\n{body}\n"
    ).encode()


_HER_B64 = __import__("base64").b64encode(f"<p>{PIA_EMAIL}</p>".encode()).decode()


def with_damaged_rows(
    store: Store, clock: FrozenClock, sources: dict[str, bytes]
) -> tuple[TeamAccess, str, dict[str, OutboxMessage]]:
    """A team whose outbox holds each of *sources* as a message to OTHER, waiting and
    sent (ids ``msg-<name>-<status>``); the account, and the rows by id."""
    import attrs

    team = make(store, clock, MemoryMailer(), delivery="queue")
    acc = setup(team, clock)
    team.notify(acc, "billing", subject="Invoice", text="Your invoice")
    with team._store.read() as uow:
        template = next(m for m in uow.outbox(status="pending") if m.recipient == OTHER)
    rows = {}
    with team._store.begin() as uow:
        for n, (name, source) in enumerate(sources.items()):
            for status in ("pending", "sent"):
                row = attrs.evolve(
                    template, id=f"msg-{name}-{status}", status=status, message=source,
                    attempts=n, last_error=f"451 try again later ({name})",
                )  # fmt: skip
                uow.add_outbox(row)
                rows[row.id] = row
        uow.commit()
    return team, acc, rows


class TestUnrelatedDamagedMail:
    """A damaged or foreign message that does not name the person stays as it was."""

    #: Rows the erasure cannot read as the builder's, none naming her (someone else is).
    UNRELATED = {
        "foreign-shape": _damaged("<p>Write to anna@other.example</p>"),
        "no-language": _damaged("<p>Plain</p>").replace(b"Content-Language: de\n", b""),
        "truncated": b"From: Panel <noreply@panel.example>\nTo: other@oth",
        "not-utf8": b"From: \xff\xfe <x@panel.example>\nTo: other@other.example\n\n\xff\n",
        "base64-other": _damaged("PHA+YW5uYUBvdGhlci5leGFtcGxlPC9wPg==", cte="base64"),
    }
    #: Rows of the same kinds that do name her, in a form only a decoder finds.
    NAMING = {
        "base64-her": _damaged(
            __import__("base64").b64encode(f"<p>{PIA_EMAIL}</p>".encode()).decode(),
            cte="base64",
        ),
        "qp-soft-break": _damaged(
            "<p>J=C3=B6rg.Pia@B=C3=BC=\ncher.example</p>", cte="quoted-printable"
        ),
        "header-word": _damaged(
            "<p>x</p>", head="X-Note: =?utf-8?q?J=C3=B6rg=2EPia=40B=C3=BCcher=2Eexample?=\n"
        ),
        # Damaged so that the reader leaves her address encoded: a boundary that is not
        # the one declared, a misspelt encoding, a nested message in base64.
        "broken-boundary": _damaged(
            f"--BBB\nContent-Type: text/html; charset=utf-8\n"
            f"Content-Transfer-Encoding: base64\n\n{_HER_B64}\n--BBB--",
        ).replace(b"text/html; charset=utf-8", b'multipart/alternative; boundary="AAA"', 1),
        "encoding-typo": _damaged(_HER_B64, cte="base-64"),
        "nested-base64": _damaged(
            __import__("base64")
            .b64encode(f"Subject: x\nContent-Type: text/html\n\n<p>{PIA_EMAIL}</p>\n".encode())
            .decode(),
            cte="base64",
        ).replace(b"text/html; charset=utf-8", b"message/rfc822", 1),
    }

    def test_left_exactly_as_they_were(self, store: Store, clock: FrozenClock) -> None:
        team, _, rows = with_damaged_rows(store, clock, {**self.UNRELATED, **self.NAMING})

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        with team._store.read() as uow:
            after = {i: uow.get_outbox(i) for i in rows}
        for name in self.UNRELATED:
            for status in ("pending", "sent"):
                i = f"msg-{name}-{status}"
                assert after[i] == rows[i], name
        for name in self.NAMING:
            pending, sent = after[f"msg-{name}-pending"], after[f"msg-{name}-sent"]
            assert pending is not None
            assert sent is not None
            assert (pending.status, pending.message) == ("cancelled", None), name
            assert (sent.status, sent.message) == ("sent", None), name
        assert report.messages_cancelled == len(self.NAMING)

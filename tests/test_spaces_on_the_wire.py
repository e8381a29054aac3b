"""Several spaces in a row, or a tab, go out as typed or are refused, never squeezed.

A long subject was folded by the stdlib, which wrote a run of spaces as one (the builder
squeezed it beforehand, so a fold there could not leave a line of white space alone): the
mail said otherwise than the audit log. Such a subject is written as encoded words now,
every space and tab inside a word, and reads back as typed (its edges dropped, as ever).

A run of spaces in the sender's name cannot go out as typed (a mail program reads one
outside quotes as one space; a long name is folded at its spaces), so ``TeamAccess``
refuses it when it is made, saying what to write. Tested on the wire: serialised and
parsed back (by this Python and by RFC 2047's rules), and through a real SMTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    SmtpMailer,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.gate import check_outgoing, check_stored, check_wire
from teamaccess._mail.mailers import build_message, parse_stored

ACCEPT = "https://panel.example.net/a?t={token}"
SUBJECTS = [
    "Ihre Rechnung  Nr. 4711 für März ist da, bitte bis zum Monatsende begleichen",
    "Your invoice  no. 4711 for March is ready; please pay it by the end of the month",
    "Wartung\tam Samstag: die Server in Frankfurt sind zwischen 2 und 4 Uhr nicht da",
    "Rechnung   " + "x" * 30 + "     " + "y" * 40 + "  Ende",
    "日本語  のお知らせ  " + "株式会社" * 6 + "  Ende  der Nachricht  für Sie",
]


def raw_subject(wire: bytes) -> str:
    """The Subject header's value as the bytes hold it, unfolded."""
    lines = wire.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Subject: "))
    folded = []
    for line in lines[start + 1 :]:
        if line[:1] not in (" ", "\t"):
            break
        folded.append(line)
    return "".join([lines[start][len("Subject: ") :], *folded])


def assert_reads_as_typed(wire: bytes, subject: str) -> None:
    # This Python's parser, and RFC 2047's rules (white space between encoded words is
    # not text), as every mail program reads it.
    assert str(message_from_bytes(wire, policy=policy.default)["Subject"]) == subject
    assert str(make_header(decode_header(raw_subject(wire)))) == subject
    # No line of white space alone, which some servers read as the end of the headers.
    assert all(line.strip() for line in wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))


class TestSubject:
    """A long subject keeps its runs of spaces and its tabs on the wire."""

    @pytest.mark.parametrize("subject", SUBJECTS)
    @pytest.mark.parametrize("to", ["kunde@example.org", "kündin@example.org"])
    def test_serialised_and_parsed_back(self, subject: str, to: str) -> None:
        message = build_message(
            sender="Panel <noreply@panel.example>", to=to, subject=subject, text="x",
            html=None, message_id="<m1@panel.example>", language="de",
        )  # fmt: skip
        stored = message.as_bytes()
        check_stored(stored)  # the last check before sending agrees
        check_wire(parse_stored(stored), to)
        check_outgoing(message, to)
        for writer in (policy.SMTP, policy.SMTPUTF8):
            assert_reads_as_typed(message.as_bytes(policy=writer), subject)
        # Read back from the stored bytes and written again (a queued mail) it is the same.
        again = parse_stored(stored).as_bytes(policy=policy.SMTPUTF8)
        assert_reads_as_typed(again, subject)

    def test_a_short_subject_was_already_kept(self) -> None:
        message = build_message(
            sender="Panel <noreply@panel.example>", to="k@example.org", subject="a  b\tc",
            text="x", html=None, message_id="<m1@panel.example>", language="de",
        )  # fmt: skip
        assert b"Subject: a  b\tc\r\n" in message.as_bytes(policy=policy.SMTP)


@pytest.fixture(scope="module")
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.mark.parametrize("delivery", ["now", "queue"])
def test_through_a_real_server(server: SmtpServer, tmp_path: Path, delivery: str) -> None:
    mailer = SmtpMailer(host=server.host, port=server.port)
    team = TeamAccess(
        SQLiteStore(tmp_path / "team.db"), mailer, secret_key=SECRET, delivery=delivery,
        sender="Kundencenter <noreply@panel.example>", accept_url=ACCEPT,
    )  # fmt: skip
    try:
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        before = len(server.received)
        for subject in SUBJECTS:
            team.notify(acc.id, "billing", subject=subject, text="Guten Tag")
        if delivery == "queue":
            assert {row.status for row in team.deliver_pending()} == {"sent"}
        got = server.received[before:]
        assert [assert_reads_as_typed(r.content, s) for r, s in zip(got, SUBJECTS, strict=True)]
        # What the audit log says was sent is what was sent.
        logged = [e.details["subject"] for e in team.audit_log(acc.id) if "subject" in e.details]
        assert sorted(logged) == sorted(SUBJECTS)
    finally:
        team.close()


_PIECES = st.sampled_from(["Über", "Rechnung", "für", "日本語", "x" * 30, "a", " ", "  ", "\t"])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_PIECES, min_size=1, max_size=40).map("".join))
@example("a" + " " * 80 + "b")
@example("\t" * 100)
@example("x" * 70)  # a first word too long for the line of "Subject:"
@example("x" * 76 + " Rechnung")
def test_every_subject_reads_back_as_typed(subject: str) -> None:
    message = build_message(
        sender="Panel <noreply@panel.example>", to="k@example.org", subject=subject,
        text="x", html=None, message_id="<m1@panel.example>", language="de",
    )  # fmt: skip
    stored = message.as_bytes()
    check_stored(stored)
    check_wire(parse_stored(stored), "k@example.org")
    wire = message.as_bytes(policy=policy.SMTP)
    assert str(message_from_bytes(wire, policy=policy.default)["Subject"]) == subject.strip()


class TestSenderName:
    """A run of spaces in the sender's name is refused when ``TeamAccess`` is made."""

    @pytest.mark.parametrize(
        "sender",
        [
            "Anna  Schmidt <noreply@panel.example>",
            '"Muster GmbH,  Buchhaltung" <noreply@panel.example>',
            "Jörg   Müller <noreply@panel.example>",
            '"Kundencenter:  ' + "Abteilung " * 8 + '" <noreply@panel.example>',
        ],
    )
    def test_refused_with_what_to_write(self, sender: str) -> None:
        mailer = MemoryMailer()
        with pytest.raises(ValidationError, match=r"several spaces in a row.*write one space"):
            TeamAccess(MemoryStore(), mailer, secret_key=SECRET, sender=sender)
        assert mailer.outbox == []

    @pytest.mark.parametrize(
        "sender",
        [
            '"Kundencenter:  ' + "Abteilung " * 8 + '" <noreply@panel.example>',
            "Jörg   Müller " + "Straße " * 10 + "<noreply@panel.example>",
        ],
    )
    def test_refused_before_the_name_is_written(self, sender: str) -> None:
        # What writes a long name (sender.py) folds at single spaces only and squeezes
        # none: each of its ways in reads the sender through the check that refuses it.
        from teamaccess._mail.sender import _address_field, unfoldable_quoted

        for write in (
            lambda: build_message(
                sender=sender, to="k@example.org", subject="x", text="x", html=None,
                message_id="<x@panel.example>", language="de",
            ),
            lambda: _address_field(False, "From", sender),
            lambda: _address_field(True, "From", sender),
            lambda: unfoldable_quoted(sender),
        ):  # fmt: skip
            with pytest.raises(ValidationError, match=r"several spaces in a row"):
                write()

    @pytest.mark.parametrize(
        ("sender", "name"),
        [
            ("Anna Schmidt <noreply@panel.example>", "Anna Schmidt"),
            ('"Muster GmbH, Buchhaltung" <noreply@panel.example>', "Muster GmbH, Buchhaltung"),
            ("Jörg Müller <noreply@panel.example>", "Jörg Müller"),
            ('" Kundencenter " <noreply@panel.example>', "Kundencenter"),  # edges go
        ],
    )
    def test_one_space_goes_out_as_typed(
        self, server: SmtpServer, tmp_path: Path, sender: str, name: str
    ) -> None:
        team = TeamAccess(
            SQLiteStore(tmp_path / "team.db"), SmtpMailer(host=server.host, port=server.port),
            secret_key=SECRET, sender=sender, accept_url=ACCEPT,
        )  # fmt: skip
        try:
            acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
            before = len(server.received)
            team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag")
            [received] = server.received[before:]
            [address] = message_from_bytes(received.content, policy=policy.default)[
                "From"
            ].addresses
            assert address.display_name == name
        finally:
            team.close()

"""The message builder, MemoryMailer and FileMailer."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from teamaccess import (
    FileMailer,
    Mailer,
    MemoryMailer,
    PermissionSet,
    StorageError,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.mailers import build_message
from teamaccess.testing import FrozenClock


def message(to: str = "kunde@example.org", subject: str = "Hallo", **kw: object) -> EmailMessage:
    args: dict[str, object] = {
        "sender": "Panel <noreply@panel.example.com>",
        "to": to,
        "subject": subject,
        "text": "Text Grüße",
        "html": "<p>HTML Grüße</p>",
        "message_id": "<m1@panel.example.com>",
        "language": "de",
        "date": datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
    }
    args.update(kw)
    return build_message(**args)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class TestBuildMessage:
    """Messages are multipart/alternative with safe headers."""

    def test_headers_and_parts(self) -> None:
        msg = parse(message().as_bytes())
        assert msg["From"] == "Panel <noreply@panel.example.com>"
        assert msg["To"] == "kunde@example.org"
        assert msg["Subject"] == "Hallo"
        assert msg["Message-ID"] == "<m1@panel.example.com>"
        assert msg["Content-Language"] == "de"
        assert msg["Date"] == "Fri, 01 May 2026 09:00:00 +0000"
        assert msg.get_content_type() == "multipart/alternative"
        plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
        assert plain is not None
        assert html is not None
        assert plain.get_content() == "Text Grüße\n"
        assert html.get_content() == "<p>HTML Grüße</p>\n"

    def test_text_only(self) -> None:
        msg = message(html=None)
        assert msg.get_content_type() == "text/plain"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("subject", "Hallo\r\nBcc: victim@example.org"),
            ("to", "kunde@example.org\nBcc: victim@example.org"),
            ("sender", "Panel <noreply@panel.example.com>\r\nX-Evil: 1"),
            ("message_id", "<m1@x>\0"),
        ],
    )
    def test_no_header_injection(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError, match="line break or NUL"):
            message(**{field: value})

    @pytest.mark.parametrize("name", ["To", "Subject", "Date", "Message-ID"])
    @pytest.mark.parametrize("brk", ["\n", "\r", "\v", "\x1c", "\u2028"])
    def test_a_built_message_refuses_line_breaks_later_too(self, name: str, brk: str) -> None:
        # The headers kept as text (see _policy) must not open a way around the stdlib's
        # own check when a mailer or the host edits a built message.
        msg = message()
        with pytest.raises(ValueError, match="linefeed or carriage return"):
            msg.replace_header(name, f"b@example.com{brk}Bcc: evil@example.org")
        del msg[name]
        with pytest.raises(ValueError, match="linefeed or carriage return"):
            msg[name] = f"b@example.com{brk}Bcc: evil@example.org"
        assert b"evil" not in msg.as_bytes()

    def test_extra_headers_are_checked(self) -> None:
        with pytest.raises(ValidationError, match="mail header Reply-To"):
            message(headers={"Reply-To": "a@b.de\r\nBcc: c@d.de"})

    def test_idn_domain_written_in_ascii(self) -> None:
        msg = parse(message(to="chef@müller.de").as_bytes())
        assert msg["To"] == "chef@xn--mller-kva.de"

    def test_unicode_local_part_is_kept(self) -> None:
        msg = parse(message(to="jörg@muster.de").as_bytes())
        assert msg["To"] == "jörg@muster.de"

    def test_sender_must_hold_an_address(self) -> None:
        with pytest.raises(ValidationError, match="mail header From needs an address"):
            message(sender="Panel")


def plain_stdlib(
    sender: str, to: str, subject: str, message_id: str, date: datetime
) -> EmailMessage:
    """What the standard library alone writes for the same message (policy.default)."""
    msg = EmailMessage(policy=policy.default)
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(date)
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Text Grüße")
    msg.add_alternative("<p>HTML Grüße</p>", subtype="html")
    msg["Content-Language"] = "de"
    return msg


def without_subject(data: bytes) -> bytes:
    """*data* without its Subject header and the header's folded lines."""
    return re.sub(rb"^Subject:.*\n(?:[ \t].*\n)*", b"", data, count=1, flags=re.M)


def without_boundary(data: bytes) -> bytes:
    return re.sub(rb"={15}\d+==", b"BOUNDARY", data)


# Header text as a caller may pass it: printable ASCII, spaces and tabs, now and then a
# non-ASCII letter or an encoded-word look-alike; never a line break (refused earlier).
HEADER_TEXT = st.lists(
    st.sampled_from([*map(chr, range(32, 127)), "\t", "ä", "€", "=?utf-8?q?x?="]), max_size=90
).map("".join)
LOCAL = st.from_regex(r"[a-z0-9]([a-z0-9.+_-]{0,40}[a-z0-9])?", fullmatch=True)
# Message-IDs near the plain form the policy keeps as text, and any text at all.
MESSAGE_IDS = st.one_of(
    HEADER_TEXT, st.from_regex(r"<[A-Za-z0-9._\\-]{0,30}@[A-Za-z0-9.\-]{0,30}>?", fullmatch=True)
)
# Any aware time a Clock may give, offsets with seconds included.
DATES = st.datetimes(
    min_value=datetime(1, 1, 1),  # naive: the bound; the timezone is drawn below
    timezones=st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)


class TestSameBytesAsTheStdlib:
    """build_message's shortcuts (shared and unparsed headers) never change a byte."""

    @given(subject=HEADER_TEXT, local=LOCAL, message_id=MESSAGE_IDS, date=DATES)
    @example(subject="ä =?utf-8?q?x?= ", local="k", message_id="<a@b>",
             date=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    def test_any_subject_recipient_id_and_date(
        self, subject: str, local: str, message_id: str, date: datetime
    ) -> None:
        sender = "Panel <noreply@panel.example.com>"
        to = f"{local.replace('..', '.')}@kunde.example.org"
        try:
            # The builder drops white space at a subject's edges, which 3.11's folder
            # can write as a line of white space only.
            expected = plain_stdlib(sender, to, subject.strip(), message_id, date)
            # the builder gives every mail one boundary (checked against the parts)
            expected.set_boundary("=_teamaccess_alternative_part")
            expected_bytes = expected.as_bytes()
        except Exception:  # what the stdlib itself cannot build is not compared
            return
        built = message(to=to, subject=subject, message_id=message_id, date=date, sender=sender)
        built_bytes = built.as_bytes()
        if not subject.isascii():
            # A subject that is not ASCII the builder writes as encoded words itself
            # (3.11's folder can drop a space between two): it reads back as given, an
            # encoded-word look-alike in it too (the stdlib would decode that).
            assert str(built["Subject"]) == subject.strip()
            built_bytes, expected_bytes = (
                without_subject(built_bytes),
                without_subject(expected_bytes),
            )
        assert without_boundary(built_bytes) == without_boundary(expected_bytes)
        compared = (
            ("To", "Subject", "Message-ID", "Date")
            if subject.isascii()
            else ("To", "Message-ID", "Date")
        )
        for name in compared:  # read back, parsed alike
            assert str(built[name]) == str(expected[name])
            assert type(built[name]).__name__ == type(expected[name]).__name__


class TestMemoryMailer:
    """Records messages in order, like Django's mail.outbox."""

    def test_records(self) -> None:
        mailer = MemoryMailer()
        assert isinstance(mailer, Mailer)
        mailer.send(message(to="a@example.org"))
        mailer.send(message(to="b@example.org"))
        assert [m["To"] for m in mailer.outbox] == ["a@example.org", "b@example.org"]
        assert repr(mailer) == "<MemoryMailer outbox=2>"


class TestFileMailer:
    """One .eml file per message, readable back as the message that was sent."""

    def test_one_file_per_message_in_sending_order(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path / "mail")
        assert isinstance(mailer, Mailer)
        for n in range(3):
            mailer.send(message(subject=f"Nummer {n}"))
        files = sorted((tmp_path / "mail").iterdir())
        assert [f.suffix for f in files] == [".eml"] * 3
        subjects = [parse(f.read_bytes())["Subject"] for f in files]
        assert subjects == ["Nummer 0", "Nummer 1", "Nummer 2"]

    def test_parses_back_to_the_same_message(self, tmp_path: Path) -> None:
        sent = message(to="chef@müller.de", subject="Grüße aus Köln")
        FileMailer(tmp_path).send(sent)
        [path] = tmp_path.glob("*.eml")
        got = parse(path.read_bytes())
        for header in ("From", "To", "Subject", "Message-ID", "Date"):
            assert got[header] == sent[header]
        body = got.get_body(("html",))
        assert body is not None
        assert body.get_content() == "<p>HTML Grüße</p>\n"

    def test_invitation_through_the_service(self, tmp_path: Path, clock: FrozenClock) -> None:
        from teamaccess import MemoryStore

        team = TeamAccess(MemoryStore(), FileMailer(tmp_path), secret_key="k", clock=clock)
        account = team.create_account(name="Muster", owner_id="o", owner_email="chef@muster.de")
        inv = team.invite(
            account.id, actor_id="o", email="dev@example.org", permissions=PermissionSet.all()
        )
        [path] = tmp_path.glob("*.eml")
        got = parse(path.read_bytes())
        assert got["To"] == "dev@example.org"
        plain = got.get_body(("plain",))
        assert plain is not None
        assert inv.token is not None
        assert inv.token in plain.get_content()

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
    def test_unwritable_directory_is_a_storage_error(self, tmp_path: Path) -> None:
        tmp_path.chmod(0o500)
        try:
            with pytest.raises(StorageError, match="cannot write mail to"):
                FileMailer(tmp_path / "mail").send(message())
        finally:
            tmp_path.chmod(0o700)

    def test_directory_is_a_file(self, tmp_path: Path) -> None:
        blocker = tmp_path / "mail"
        blocker.write_text("not a directory")
        with pytest.raises(StorageError, match="cannot write mail to"):
            FileMailer(blocker).send(message())

    def test_repr(self, tmp_path: Path) -> None:
        assert repr(FileMailer("/var/mail/panel")) == "FileMailer('/var/mail/panel')"

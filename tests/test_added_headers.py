"""Headers a caller adds to a built mail (``build_message(headers=...)``).

A name or value the standard library refuses, or trips over while storing or writing
it, is a ``ValidationError`` saying what to fix, raised by ``build_message`` itself; no
stdlib exception escapes, and whatever it returns can be written out.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teamaccess import ValidationError
from teamaccess._mail.mailers import build_message, wire_policy


def built(headers: object) -> EmailMessage:
    return build_message(
        sender="Panel <noreply@panel.example.com>", to="kunde@example.org", subject="Hallo",
        text="Text", html="<p>HTML</p>", message_id="<m1@panel.example.com>",
        language="de", headers=headers,  # type: ignore[arg-type]
    )  # fmt: skip


def written(message: EmailMessage) -> None:
    """Every way a mailer writes a built message."""
    message.as_bytes()
    message.as_string()
    message.as_bytes(policy=policy.SMTP)
    message.as_bytes(policy=wire_policy(False))


class TestNames:
    """A header name is 1 to 76 printable ASCII characters other than the colon."""

    @pytest.mark.parametrize(
        "name",
        ["", " ", "X Panel", "X-Panel:", ":", "Reply-To\r\nBcc", "X\n", "X\x00", "X\t",
         "Grüße", "X-\u2028", "X-\ud800", "\udcff", "x" * 77, "x" * 2000, "X-\x7f"],
    )  # fmt: skip
    def test_refused(self, name: str) -> None:
        with pytest.raises(ValidationError, match=r"mail header name .* printable ASCII"):
            built({name: "value"})

    @pytest.mark.parametrize("name", ["X-Panel", "x", "x" * 76, "!#$%&'*+-.^_`|~9;<=>?@[]{}"])
    def test_accepted(self, name: str) -> None:
        message = built({name: "value"})
        assert message[name] == "value"
        written(message)

    @pytest.mark.parametrize("name", [1, None, b"X-Panel"])
    def test_not_a_string(self, name: object) -> None:
        with pytest.raises(ValidationError, match=r"mail header name .* must be a string"):
            built({name: "value"})

    @pytest.mark.parametrize(
        ("name", "argument"),
        [("From", "sender"), ("to", "to"), ("SUBJECT", "subject"), ("Date", "date"),
         ("message-id", "message_id"), ("Content-Language", "language"),
         ("MIME-Version", "text"), ("content-type", "text"),
         ("Content-Transfer-Encoding", "text")],
    )  # fmt: skip
    def test_one_the_builder_writes(self, name: str, argument: str) -> None:
        with pytest.raises(
            ValidationError, match=rf"^mail header {name} is written by build_message "
            rf"itself \(from {argument}=\); leave it out of headers$",
        ):  # fmt: skip
            built({name: "x"})

    def test_twice_in_another_case(self) -> None:
        with pytest.raises(ValidationError, match="mail header reply-to is given twice"):
            built({"Reply-To": "a@example.org", "reply-to": "b@example.org"})

    def test_headers_must_be_a_mapping(self) -> None:
        with pytest.raises(ValidationError, match="headers must be a dict"):
            built([("X-Panel", "1")])


class TestValues:
    """A value the stdlib cannot store or write is refused, naming the header."""

    @pytest.mark.parametrize(
        ("name", "value"),
        [("Reply-To", '"'), ("Sender", '"'), ("Cc", ",=?x?b??="),
         ("Reply-To", "?= \t=?utf-8?q?x?=\x7f=?x?b? @["),
         ("Content-Disposition", "\U0001f600:漢ü,a@b.c@;ü"),
         ("References", '漢\t"=?x?b?@a@b.c?='),
         ("Reply-To", "(" * 1200 + "a@example.org"), ("Sender", "(" * 1200)],
    )  # fmt: skip
    def test_refused(self, name: str, value: str) -> None:
        with pytest.raises(ValidationError, match=rf"^mail header {name} cannot carry "):
            built({name: value})

    @pytest.mark.parametrize("value", ["a\r\nBcc: c@d.de", "a\nb", "a\rb", "a\x00b", "\ud800"])
    def test_breaks_and_surrogates(self, value: str) -> None:
        with pytest.raises(ValidationError, match="mail header X-Panel"):
            built({"X-Panel": value})

    @pytest.mark.parametrize(
        ("name", "value"),
        [("Reply-To", "Jörg <jörg@example.org>"), ("X-Panel", "Grüße " * 100),
         ("X-Long", "x" * 2000), ("References", "<a@b> <c@d>"), ("X-Empty", ""),
         ("List-Unsubscribe", "<https://panel.example.com/u?x=1>")],
    )  # fmt: skip
    def test_accepted(self, name: str, value: str) -> None:
        written(built({name: value}))


HOSTILE = st.sampled_from(
    ["\r", "\n", "\r\n", "\x00", ":", ";", " ", "\t", "(", ")", "<", ">", "@", ",", '"',
     "\\", "=?utf-8?q?x?=", "ü", "ß", "\u2028", "\x85", "\x7f", "\x1b", "\ud800", "\udcff",
     "\U0001f600", "漢字", "x" * 80, "x" * 1000, "a@example.org", "Bcc", "X-"]
)  # fmt: skip
HOSTILE_TEXT = st.one_of(
    st.lists(HOSTILE, max_size=12).map("".join),
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), min_size=900, max_size=1100),
)
NAMES = st.one_of(
    HOSTILE_TEXT,
    st.sampled_from(["Reply-To", "Cc", "Bcc", "Sender", "Resent-Date", "Resent-From",
                     "References", "In-Reply-To", "Content-Disposition", "Content-ID",
                     "Received", "Keywords", "X-Panel", "To", "Date", "Message-ID"]),
)  # fmt: skip


def _escapes_nothing(headers: dict[str, str]) -> None:
    try:
        message = built(headers)
    except ValidationError as exc:
        error = str(exc)
    else:
        written(message)
        return
    assert error.startswith(("mail header", "headers"))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(NAMES, HOSTILE_TEXT, max_size=3))
def test_nothing_but_a_validation_error_escapes(headers: dict[str, str]) -> None:
    _escapes_nothing(headers)


@pytest.mark.slow
@settings(max_examples=8000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(NAMES, HOSTILE_TEXT, max_size=3))
def test_nothing_but_a_validation_error_escapes_many(headers: dict[str, str]) -> None:
    _escapes_nothing(headers)

"""Headers a caller adds to a built mail (``build_message(headers=...)``).

A name or value the standard library refuses, or trips over while storing or writing
it, is a ``ValidationError`` saying what to fix, raised by ``build_message`` itself; no
stdlib exception escapes, and whatever it returns can be written out.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from teamaccess import ValidationError
from teamaccess._emails import BREAKS
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
        [("Reply-To", '"'),
         ("Reply-To", "?= \t=?utf-8?q?x?=\x7f=?x?b? @["),
         ("Content-Disposition", "\U0001f600:漢ü,a@b.c@;ü"),
         ("References", '漢\t"=?x?b?@a@b.c?='),
         ("Reply-To", "(" * 1200 + "a@example.org"),
         ("Reply-To", "(" * 1200)],
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


def _wires(message: EmailMessage) -> list[bytes]:
    """The message as a server gets it: policy.SMTP, and the mailers' own wire policy."""
    utf8 = bool(getattr(message.policy, "utf8", False))
    smtp = policy.SMTPUTF8 if utf8 else policy.SMTP
    return [message.as_bytes(policy=smtp), message.as_bytes(policy=wire_policy(utf8))]


class TestLineLength:
    """A value the stdlib would write on a line over RFC 5322's 998 characters (a word it
    cannot fold: a long address, a long id) is refused when the mail is built."""

    @pytest.mark.parametrize(
        ("name", "value"),
        [("Reply-To", "a" * 1100 + "@example.org"),
         ("Reply-To", "Support <a@" + "b" * 1000 + ".example.org>"),
         ("Reply-To", "x@example.org, " + "y" * 990 + "@example.org")],
    )  # fmt: skip
    def test_refused(self, name: str, value: str) -> None:
        with pytest.raises(
            ValidationError,
            match=rf"^mail header {name} cannot be written in lines of at most 998 "
            r"characters, .* shorten it or put spaces in it$",
        ):
            built({name: value})

    @pytest.mark.parametrize(
        ("name", "value"),
        [("X-Long", "x" * 2000), ("X-Long", "ü" * 2000), ("References", "<" + "a" * 1200 + "@b>"),
         ("Reply-To", "a" * 900 + "@example.org"), ("X-Words", "a b " * 600)],
    )  # fmt: skip
    def test_what_folds_is_accepted(self, name: str, value: str) -> None:
        for wire in _wires(built({name: value})):
            assert max(map(len, wire.split(b"\r\n"))) <= 998


# Words of every length around the limit, addresses and ids built of them, and text.
_WORD = st.one_of(
    st.integers(1, 1300).map(lambda n: "w" * n),
    st.integers(1, 700).map(lambda n: "ü" * n),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
            max_size=40),
)  # fmt: skip
_LONG_VALUES = st.one_of(
    st.lists(_WORD, min_size=1, max_size=4).map(" ".join),
    st.tuples(_WORD, _WORD).map(lambda p: f"{p[0]}@{p[1]}.example"),
    st.tuples(_WORD, _WORD).map(lambda p: f"Name {p[0]} <a@{p[1]}.example>"),
    st.tuples(_WORD, _WORD).map(lambda p: f"<{p[0]}@{p[1]}>"),
    st.tuples(_WORD, _WORD).map(lambda p: f'attachment; filename="{p[0]}"; x={p[1]}'),
)
_LONG_NAMES = st.sampled_from(
    ["Reply-To", "X-Panel", "References", "In-Reply-To", "Content-ID", "Content-Disposition",
     "Keywords", "Comments", "List-Unsubscribe", "Disposition-Notification-To"]
)  # fmt: skip


def _same_value(built_value: str, read_value: str) -> bool:
    """The same header value, as the last check compares them: a fold may turn a space
    into a folding space, or drop one at the start (the header's own separator)."""
    return " ".join(built_value.split()) == " ".join(read_value.split())


def _accepted_fits_and_reads_back(headers: dict[str, str]) -> None:
    try:
        message = built(headers)
    except ValidationError:
        return
    for wire in _wires(message):
        assert max(map(len, wire.split(b"\r\n"))) <= 998
        read = message_from_bytes(wire, policy=policy.default)
        for name in headers:
            assert read.get_all(name) is not None
            assert len(read.get_all(name)) == 1
            assert _same_value(str(message[name]), str(read[name])), name


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_LONG_NAMES, _LONG_VALUES, min_size=1, max_size=2))
def test_what_is_accepted_fits_in_lines_and_reads_back(headers: dict[str, str]) -> None:
    _accepted_fits_and_reads_back(headers)


# 500 examples: under CI's derandomized profile each takes about 0.12 s (long values,
# written and read back by two policies).
@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(_LONG_NAMES, _LONG_VALUES, min_size=1, max_size=2))
def test_what_is_accepted_fits_in_lines_and_reads_back_many(headers: dict[str, str]) -> None:
    _accepted_fits_and_reads_back(headers)


#: Headers and values to hold the builder to the last check with: the ones a mailer reads
#: for the envelope, the ones it does not, and values the check reads as line breaks.
AGREEMENT = [
    ("Cc", "carol@example.org"), ("CC", "Carol <carol@example.org>"),
    ("Bcc", "eve@example.net"), ("bcc", ""), ("Resent-To", "eve@example.net"),
    ("Resent-Cc", "eve@example.net"), ("Resent-Bcc", "eve@example.net"),
    ("Resent-From", "Eve <eve@example.net>"), ("Resent-Sender", "eve@example.net"),
    ("Resent-Date", "Mon, 30 Nov 2026 10:00:00 +0000"),
    ("Resent-Message-ID", "<r1@example.net>"), ("Resent-Reply-To", "eve@example.net"),
    ("Sender", "Other <other@example.org>"), ("Sender", "noreply@panel.example.com"),
    ("Reply-To", "support@example.org"),
    ("Reply-To", "Support <support@example.org>, Billing <billing@example.org>"),
    ("Reply-To", "a@example.org, b@example.org, c@example.org"),
    ("Reply-To", "Team: a@example.org, b@example.org;"),
    ("Return-Path", "<bounce@example.org>"), ("Delivered-To", "eve@example.net"),
    ("Apparently-To", "eve@example.net"), ("X-Original-To", "eve@example.net"),
    ("Disposition-Notification-To", "eve@example.net"),
    ("Received", "from a by b; Mon, 30 Nov 2026 10:00:00 +0000"),
    ("X-Panel", "account 42"), ("List-Unsubscribe", "<https://panel.example.com/u?x=1>"),
    ("X-Panel", "=?utf-8?q?a=0D=0ABcc:_eve@example.net?="),
    ("Reply-To", "=?utf-8?q?a=0D=0ABcc:_eve@example.net?= <a@example.org>"),
    ("Keywords", "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?="),
    ("Comments", "=?utf-8?q?x=0Ay?="), ("X-Panel", "=?utf-8?q?x=E2=80=A8y?="),
]  # fmt: skip


def _builder_refuses(name: str, value: str) -> bool:
    return _builder_refusal(name, value) is not None


def _builder_refusal(name: str, value: str) -> str | None:
    """The builder's ``ValidationError`` message for the added header, or None."""
    try:
        built({name: value})
    except ValidationError as exc:
        return str(exc)
    return None


def _last_check_refuses(name: str, value: str) -> bool:
    """The last check before sending on the same mail, the header added by the stdlib
    itself (the builder would refuse it before the check ever saw it); the same verdict
    with the header where the builder puts it and appended last."""
    from teamaccess._mail.gate import MailRefused, check_outgoing

    verdicts = []
    for where in ("built", "last"):
        message = built(None)
        try:
            message[name] = value
        except Exception:
            return True  # the stdlib stores no such header: no mail to check
        if where == "built" and not name.lower().startswith("content-"):
            # Where the builder puts it: after Message-ID, before the MIME headers. A
            # value the stdlib folds into a line that is no field's (Python 3.11 writes a
            # long comment so) ends the stdlib parser's header block there: appended last,
            # it ends it after every real header, and only the check's own reading of the
            # header lines sees it.
            fields = message._headers  # type: ignore[attr-defined]  # the stdlib has no insert
            at = 1 + next(i for i, (n, _) in enumerate(fields) if n.lower() == "message-id")
            fields.insert(at, fields.pop())
        try:
            check_outgoing(message, "kunde@example.org")
        except MailRefused:
            verdicts.append(True)
        else:
            verdicts.append(False)
    assert verdicts[0] == verdicts[1], (name, value)
    return verdicts[0]


class TestTheBuilderRefusesWhatTheLastCheckRefuses:
    """``build_message(headers=...)`` refuses exactly the added headers that would have the
    last check before sending refuse the mail: one list decides both."""

    @pytest.mark.parametrize(("name", "value"), AGREEMENT)
    def test_each_header(self, name: str, value: str) -> None:
        assert _builder_refuses(name, value) == _last_check_refuses(name, value)

    @pytest.mark.parametrize(
        "name",
        ["Cc", "Bcc", "Sender", "Resent-To", "Resent-Cc", "Resent-Bcc", "Resent-From",
         "Resent-Sender", "Resent-Date", "Resent-Message-ID", "RESENT-X"],
    )  # fmt: skip
    def test_envelope_headers_are_refused_by_name(self, name: str) -> None:
        with pytest.raises(
            ValidationError,
            match=rf"^mail header {name} is refused by the last check before sending: a "
            r"mailer reads it for the envelope",
        ):
            built({name: "someone@example.org"})

    @pytest.mark.parametrize(
        ("name", "value"),
        [("Reply-To", "Support <support@example.org>, Billing <billing@example.org>"),
         ("X-Panel", "account 42"), ("Disposition-Notification-To", "eve@example.net")],
    )  # fmt: skip
    def test_accepted_by_both(self, name: str, value: str) -> None:
        assert not _builder_refuses(name, value)
        assert not _last_check_refuses(name, value)

    @pytest.mark.parametrize(
        ("name", "value"),
        [("X-Panel", "=?utf-8?q?a=0D=0ABcc:_eve@example.net?="),
         ("Comments", "=?utf-8?q?x=0Ay?=")],
    )  # fmt: skip
    def test_a_value_the_check_reads_as_a_line_break(self, name: str, value: str) -> None:
        with pytest.raises(
            ValidationError,
            match=rf"^mail header {name}: the last check before sending would refuse this "
            r"mail \(its .* header holds a line break",
        ):
            built({name: value})

    def test_of_several_the_one_refused_is_named(self) -> None:
        with pytest.raises(ValidationError, match=r"^mail header Comments: the last check"):
            built({"X-Panel": "1", "Comments": "=?utf-8?q?x=0Ay?="})

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from([name for name, _ in AGREEMENT]), HOSTILE_TEXT)
    @example("Reply-To", "a" * 1000 + "@example.org")  # too long to fold: the builder's own
    @example("Reply-To", "::\u2028")  # a line break the builder refuses first
    # Python 3.11 folds the comment onto a line of its own with no leading space
    @example("Reply-To", "x" * 80 + "(;")
    def test_hostile_values(self, name: str, value: str) -> None:
        if not BREAKS.isdisjoint(value) or "\ud800" in value or "\udcff" in value:
            # refused by the builder's line check before any header is made (U+2028 too,
            # which the stdlib would encode when it adds the header itself)
            return
        refusal = _builder_refusal(name, value)
        if refusal is not None and not _last_check_refuses(name, value):
            # The builder also refuses a value it cannot write in lines of 998 octets (a
            # word too long to fold), which a mail made some other way reaches the check
            # with; nothing else may it refuse that the check lets through.
            assert "cannot be written in lines of at most 998" in refusal, refusal
        else:
            assert (refusal is not None) == _last_check_refuses(name, value)

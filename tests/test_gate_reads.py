"""The last check reads a header only when it must: two values that are the same plain
text are the same header, and a bare address is that one mailbox. Its verdicts are those
of the check that parsed every header of the built and the read-back message."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime
from email import message_from_string
from email.errors import MessageError, NonASCIILocalPartDefect
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teamaccess._emails import BREAKS
from teamaccess._mail.gate import _PLAIN_ADDRESS, _PLAIN_DATE, _PLAIN_ID, MailRefused, check_wire
from teamaccess._mail.mailers import (
    build_message,
    expected_recipient,
    parsing_policy,
    wire_policy,
)

RECIPIENT = "bob@example.com"
_RECIPIENT_HEADERS = {"cc", "bcc", "resent-to", "resent-cc", "resent-bcc", "resent-from",
                      "resent-sender"}  # fmt: skip


def full_check(message: EmailMessage, recipient: str) -> tuple[str, bytes]:
    """The check as it was before it skipped reads: every header of every part of the
    built message and of the wire form read back is parsed and compared."""

    def headers(part: EmailMessage) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in part.items()]

    def compared(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name.lower(), " ".join(value.split())) for name, value in items]

    try:
        for part in message.walk():
            for name, value in headers(part):  # type: ignore[arg-type]
                if not BREAKS.isdisjoint(value):
                    raise MailRefused(f"its {name} header holds a line break")
        wire = message.as_bytes(policy=wire_policy(getattr(message.policy, "utf8", False)))
        parsed = message_from_string(
            wire.decode("utf-8", "surrogateescape"), policy=parsing_policy()
        )
        built = list(message.walk())
        built_headers = [headers(part) for part in built]  # type: ignore[arg-type]
    except MailRefused:
        raise
    # AttributeError: the stdlib's address parser on some groups ("To: :;"); the
    # check refuses that mail rather than raising out of the delivery run.
    except (MessageError, AttributeError, ValueError, LookupError, TypeError, UnicodeError) as exc:
        raise MailRefused(f"it cannot be written as a mail ({type(exc).__name__})") from None
    sent = list(parsed.walk())
    if len(built) != len(sent):
        raise MailRefused("its wire form has other parts")
    for mine, theirs in zip(built_headers, sent, strict=True):
        if compared(mine) != compared(headers(theirs)):  # type: ignore[arg-type]
            raise MailRefused("its headers read differently on the wire")
    if _RECIPIENT_HEADERS.intersection(name.lower() for name in parsed):
        raise MailRefused("it names other recipients")
    try:
        to_headers = parsed.get_all("To") or []
        addresses = [a for header in to_headers for a in header.addresses]
        # Text the parser skipped as junk goes out all the same (see the check).
        junk = any(
            not isinstance(d, NonASCIILocalPartDefect) for h in to_headers for d in h.defects
        )
    except (AttributeError, ValueError, LookupError):
        to_headers, addresses, junk = [], [], True
    expected = expected_recipient(recipient)
    if len(to_headers) != 1 or len(addresses) != 1 or addresses[0].addr_spec != expected or junk:
        raise MailRefused("its To header does not name exactly the stored recipient")
    return expected, wire


def verdict(check: object, message: EmailMessage, recipient: str = RECIPIENT) -> object:
    try:
        return check(message, recipient)  # type: ignore[operator]
    except MailRefused:
        return "refused"


def both(make: object, recipient: str = RECIPIENT) -> tuple[object, object]:
    """The new check's verdict and the full check's, each on a message of its own."""
    new = verdict(lambda m, r: check_wire(m, r), make(), recipient)  # type: ignore[operator]
    return new, verdict(full_check, make(), recipient)  # type: ignore[operator]


def built(**changes: object) -> EmailMessage:
    fields: dict[str, object] = {
        "sender": "Panel <noreply@panel.example.net>", "to": RECIPIENT,
        "subject": "Alice invites you to Firma 1", "text": "Hello,\n\nlink\n",
        "html": "<p>Hello</p>", "message_id": "<abc123@panel.example.net>",
        "language": "en", "date": datetime(2026, 11, 30, 16, 4, 23, tzinfo=UTC),
    }  # fmt: skip
    fields.update(changes)
    return build_message(**fields)  # type: ignore[arg-type]


def raw_header(name: str, value: str) -> object:
    """A built message with *name*'s stored value replaced by *value*, unparsed, as a
    program editing a message with ``set_raw`` (or a stored row) may hold it."""

    def make() -> EmailMessage:
        msg = built()
        del msg[name]
        msg.set_raw(name, value)
        return msg

    return make


# Values a header may hold: printable ASCII, now and then a tab, a non-ASCII letter, an
# encoded word (one that decodes to a line break among them), a comma or a quote.
PIECES = [*map(chr, range(32, 127)), "\t", "ä", "=?utf-8?q?x?=", "=?utf-8?q?=0D=0ABcc:_e@x?="]
VALUES = st.lists(st.sampled_from(PIECES), max_size=100).map("".join)
ADDRESSES = st.one_of(
    st.just(RECIPIENT),
    st.sampled_from(["Bob <bob@example.com>", '"bob"@example.com', "bob@example.com,",
                     "bob@example.com, eve@example.com", "g: bob@example.com;",
                     "bob@example.com (Bob)", " bob@example.com", "BOB@example.com",
                     "bob@EXAMPLE.com", "bob@example.com.", "bob.@example.com"]),
    VALUES,
)  # fmt: skip


class TestSameVerdictAsParsingEverything:
    """Whatever a header holds, the check decides as the full parse did."""

    @given(value=VALUES)
    def test_any_subject(self, value: str) -> None:
        new, old = both(raw_header("Subject", value))
        assert new == old

    @given(value=ADDRESSES)
    def test_any_to(self, value: str) -> None:
        new, old = both(raw_header("To", value))
        assert new == old

    @given(
        value=st.one_of(
            VALUES,
            st.just(format_datetime(datetime(2026, 1, 2, tzinfo=UTC))),
            st.from_regex(_PLAIN_DATE, fullmatch=True),
        )
    )
    def test_any_date(self, value: str) -> None:
        new, old = both(raw_header("Date", value))
        assert new == old

    @given(value=st.one_of(VALUES, st.from_regex(_PLAIN_ID, fullmatch=True)))
    def test_any_message_id(self, value: str) -> None:
        new, old = both(raw_header("Message-ID", value))
        assert new == old

    @given(subject=VALUES, recipient=st.sampled_from([RECIPIENT, "eve@example.com"]))
    def test_built_messages(self, subject: str, recipient: str) -> None:
        try:
            built(subject=subject)
        except ValueError:
            return  # refused when built (a line break): never reaches the check
        new, old = both(lambda: built(subject=subject), recipient)
        assert new == old

    def test_the_cases_cover_both_verdicts(self) -> None:
        new, old = both(built)
        assert new == old
        assert new != "refused"
        for name, value in [
            ("Subject", "x =?utf-8?q?=0D=0ABcc:_eve@example.com?="),
            ("To", "bob@example.com, eve@example.com"),
            ("To", "eve@example.com"),
        ]:
            assert both(raw_header(name, value)) == ("refused", "refused"), (name, value)


class TestBareAddresses:
    """The To header is not parsed only when it is one bare addr-spec, the recipient."""

    @given(address=st.from_regex(_PLAIN_ADDRESS, fullmatch=True))
    def test_a_bare_address_reads_as_that_one_mailbox(self, address: str) -> None:
        header = email.policy.default.header_factory("To", address)
        assert [a.addr_spec for a in header.addresses] == [address]
        assert header.defects == ()  # nothing skipped that another reader would see

    @pytest.mark.parametrize(
        "value",
        ["bob@example.com, eve@example.com", "g: bob@example.com;", "Bob <bob@example.com>",
         '"bob"@example.com', "bob@example.com (x)", "bob..x@example.com"],
    )  # fmt: skip
    def test_anything_else_is_parsed(self, value: str) -> None:
        assert _PLAIN_ADDRESS.fullmatch(value) is None

    def test_a_plain_to_that_is_not_the_recipient_is_refused(self) -> None:
        with pytest.raises(MailRefused, match="stored recipient"):
            check_wire(built(), "eve@example.com")

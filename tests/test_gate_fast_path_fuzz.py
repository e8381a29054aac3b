"""The last check's fast path for stored mail (stored_wire) against the full parse, on
hostile stored bytes: a clean mail with bytes put in anywhere (CR alone, NUL, other line
ends of the parser, 8-bit bytes, lines that look like the boundary or its end, header
lines, very long lines). Whatever the fast path lets through, the full check lets
through as the same envelope recipient and the same bytes on the wire."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.utils import getaddresses

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from teamaccess._mail.gate import MailRefused, check_stored, check_wire, stored_wire
from teamaccess._mail.mailers import build_message, parsing_policy


def _built(html: str | None) -> bytes:
    return build_message(
        sender="Panel <noreply@panel.example.net>", to="bob@example.com", subject="Rechnung",
        text="Guten Tag,\n.\nbis bald\n", html=html, message_id="<m1@panel.example.net>",
        language="de",
    ).as_bytes()  # fmt: skip


CLEAN = [_built("<p>t</p>"), _built(None)]
_BOUNDARY = re.search(rb'boundary="?([^"\n;]+)', CLEAN[0])
assert _BOUNDARY is not None
B = _BOUNDARY.group(1)

# Bytes the parser reads as a line end or no stored mail may hold: the first check or the
# full way decides on those; and text that only looks like structure.
_ODD = st.sampled_from(
    [b"\r", b"\r\n", b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85", b"\xe9",
     b"\xff"]
)  # fmt: skip
_SHAPES = st.sampled_from(
    [b"\n", b"\n\n", b"--" + B, b"--" + B + b"--", b"\n--" + B + b"\n", b"\n--" + B + b"--\n",
     b"\n--" + B + b" \n", b"\n--" + B + b"--x\n", b"--" + B[:-1], b"\n--\n",
     b"Bcc: eve@example.com\n", b"To: eve@example.com\n", b"Sender: x@example.org\n",
     b"Resent-Date: x\n", b"Content-Type: text/html\n", b"Content-Type: image/png\n",
     b"Content-Type: multipart/mixed; boundary=z\n", b"Content-Transfer-Encoding: base64\n",
     b" folded\n", b"\tfolded\n", b"=?utf-8?q?x=0A?=", b"x" * 1200, b"\n" + b"y" * 5000 + b"\n",
     b":", b" ", b"\t", b"=", b".", b"<", b">", b",", b";", b'"', b"\\", b"(c)"]
)  # fmt: skip
_BITS = st.one_of(_SHAPES, _SHAPES, _SHAPES, _ODD)
# where in the mail, as a share of its length: the body more often than the headers
_WHERE = st.floats(0, 1) | st.floats(0.55, 1) | st.floats(0.55, 1)


def full(source: bytes) -> tuple[object, ...]:
    msg = message_from_bytes(source, policy=parsing_policy())
    try:
        return ("sent", *check_wire(msg, "bob@example.com", source))  # type: ignore[arg-type]
    except MailRefused:
        return ("refused",)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(CLEAN),
    st.lists(
        st.tuples(
            st.floats(0, 1) | st.floats(0.55, 1) | st.floats(0.55, 1), _BITS, st.integers(0, 3)
        ),
        min_size=1,
        max_size=4,
    ),
)
@example(CLEAN[1], [(0.03125, b'"', 0)])  # From: Pa"nel <...>: the full check refuses it
@example(CLEAN[0], [(0.99, b"\n--" + B + b"--\n", 0)])
@example(CLEAN[0], [(0.5, b"\r", 0)])
@example(CLEAN[1], [(0.2, b"\x00", 1)])
def test_the_fast_path_lets_through_only_what_the_full_check_sends_alike(
    clean: bytes, edits: list[tuple[float, bytes, int]]
) -> None:
    source = clean
    for where, bit, cut in edits:
        at = int(where * len(source))
        source = source[:at] + bit + source[at + cut :]
    try:
        check_stored(source)  # the first check, on both ways
    except MailRefused:
        event("refused by the first check")
        return
    fast = stored_wire(source, "bob@example.com")
    event("fast path" if fast is not None else "left to the full check")
    if fast is not None:
        envelope, wire, sender = fast
        assert full(source) == ("sent", envelope, wire)
        # the envelope sender smtplib's send_message() takes from the parsed message
        msg = message_from_bytes(source, policy=parsing_policy())
        header = msg["Sender"] if "Sender" in msg else msg["From"]
        assert sender == getaddresses([str(header)])[0][1]


@pytest.mark.parametrize(
    ("name", "fast"),
    [("Panel", True), ('"Panel', False), ('Pa"nel', False), ('Panel"', False), ('Pa\\"nel', False)],
)
def test_a_stray_quote_in_the_sender_name(name: str, fast: bool) -> None:
    # The parsed From drops the quote; the full check reads the stored text, where it
    # hides the address. Only what the full check sends takes the fast path.
    source = CLEAN[1].replace(b"From: Panel", b"From: " + name.encode())
    check_stored(source)
    found = stored_wire(source, "bob@example.com")
    assert (found is not None) == fast
    verdict = full(source)
    assert verdict[0] == ("sent" if fast else "refused")
    if found is not None:
        assert verdict == ("sent", found[0], found[1])


def test_the_clean_mails_take_the_fast_path() -> None:
    for clean in CLEAN:
        assert stored_wire(clean, "bob@example.com") is not None

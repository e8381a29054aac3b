"""``gate._crlf_text`` (a count and searches on the decoded text) says of every byte
string what the earlier ``_crlf_lines`` (delete every other byte, count) said: no CR or
LF but those of CR LF, and none of the other bytes the parser ends a line at."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from teamaccess._mail.gate import _crlf_lines, _crlf_text

_ODD = b"\x00\r\x0b\x0c\x1c\x1d\x1e"
_NOT_ODD = bytes(b for b in range(256) if b not in _ODD)


def _old(wire: bytes) -> bool:
    """The check as it was written before (git history, gate._crlf_lines)."""
    odd = wire.translate(None, _NOT_ODD)
    crlf = wire.count(b"\r\n")
    return len(odd) == crlf == wire.count(b"\n") and not odd.strip(b"\r")


# Mostly the bytes that matter, so that their mixes are tried, with any other byte.
_BYTES = st.binary(max_size=40) | st.lists(
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"a", b" ", b"\x85", b"\xff", *map(bytes, ([b] for b in _ODD))]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(_BYTES)
@example(b"")
@example(b"\r\r\n")
@example(b"\n\r")
@example(b"a\r\n\r\nb")
@example(b"\r\n\x0b")
def test_the_same_verdict(wire: bytes) -> None:
    assert _crlf_lines(wire) == _old(wire)
    if wire.isascii():  # as _envelope_as_built calls it
        sent = wire.decode("ascii")
        assert _crlf_text(sent, sent.replace("\r\n", "\n")) == _old(wire)

"""The last check's bytes way finds a body's parts and its odd bytes by searching, not
line by line: held to the line-by-line code it replaced (kept here as the oracle) on
random and hostile bodies, and end to end against the full check."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from teamaccess._mail.gate import (
    _crlf_lines,
    _fields,
    _head_lines,
    _maintype,
    _read,
    _read_as_built,
    _text_parts,
    check_wire,
)
from teamaccess._mail.mailers import _BOUNDARY, build_message, wire_policy

B = _BOUNDARY


def _old_text_parts(lines: list[str], boundary: str) -> list[list[tuple[str, str]]] | None:
    """``_text_parts()`` as it read a body's lines one by one before."""
    delimiter = "--" + boundary
    parts: list[list[str]] = []
    current: list[str] | None = None
    closed = False
    for line in lines:
        if line.startswith(delimiter):
            rest = line[len(delimiter) :]
            if closed or rest not in ("", "--"):
                return None
            if current is not None:
                parts.append(current)
            current = [] if rest == "" else None
            closed = rest == "--"
        elif current is not None:
            current.append(line)
    if not closed or not parts:
        return None
    read = []
    for part in parts:
        if "" not in part:
            return None
        fields = _fields(part[: part.index("")])
        if fields is None:
            return None
        maintype = None
        for name, value in fields:
            header = _read(name, value)
            if header is None:
                return None
            if maintype is None and name.lower() == "content-type":
                maintype = _maintype(header)
        if (maintype or "text") != "text":
            return None
        read.append(fields)
    return read


_ODD_TEXT = re.compile(r"[\x00\r\x0b\x0c\x1c-\x1e]")

# Lines a body is made of: delimiters right and nearly right, headers of text parts
# and of others, folded lines, empty lines, body text.
_LINES = st.sampled_from(
    [
        f"--{B}",
        f"--{B}--",
        f"--{B}-",
        f"--{B} ",
        f"--{B}--x",
        f"--{B}x",
        f" --{B}",
        f"-{B}",
        f"--{B}--{B}",
        "",
        " ",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Type: text/html",
        "Content-Type: image/png",
        "Content-Type: multipart/mixed; boundary=x",
        "Content-Transfer-Encoding: quoted-printable",
        "MIME-Version: 1.0",
        " folded",
        "\tfolded",
        "Bcc: eve@example.net",
        "not a header",
        "Hello,",
        "a=",
        "=3D",
    ]
)
bodies = st.lists(st.one_of(_LINES, st.text(alphabet="-=_ :\tab", max_size=8)), max_size=24).map(
    "\n".join
)


def _well_formed(parts: list[list[str]], epilogue: list[str], preamble: list[str]) -> str:
    lines = list(preamble)
    for part in parts:
        lines += [f"--{B}", *part]
    lines += [f"--{B}--", *epilogue]
    return "\n".join(lines)


text_part = st.sampled_from(
    [
        ['Content-Type: text/plain; charset="utf-8"', "", "Hello", "", "bye", ""],
        ["Content-Type: text/html", "Content-Transfer-Encoding: 7bit", "", "<p>x</p>"],
        ["", "no headers"],
        [""],
        ["Content-Type: text/plain", ""],
        ["Content-Type: text/plain"],
        [],
        ["Content-Type: image/png", "", "x"],
    ]
)


class TestTextParts:
    @settings(max_examples=1500)
    @given(bodies)
    @example("")
    @example(f"--{B}")
    @example(f"--{B}--")
    @example(f"\n--{B}\n\n--{B}--")
    @example(f"--{B}\n--{B}--")
    @example(f"--{B}\n\n--{B}--\n--{B}")
    @example(f"--{B}\nContent-Type: text/plain\n\nx\n--{B}--\nepilogue")
    @example(f"preamble\n--{B}\nContent-Type: text/plain\n\n--{B}--")
    @example(f"--{B}\nContent-Type: text/plain\n\n--{B}\n\n--{B}--\n")
    @example(f"--{B}\nContent-Type: text/plain\n--{B}--")
    @example(f"--{B}\nContent-Type: text/plain\n\n")
    def test_as_line_by_line(self, body: str) -> None:
        assert _text_parts(body, B) == _old_text_parts(body.split("\n"), B)

    @settings(max_examples=500)
    @given(
        st.lists(text_part, min_size=1, max_size=3),
        st.lists(_LINES, max_size=3),
        st.lists(st.sampled_from(["", "preamble", f"x--{B}"]), max_size=2),
    )
    def test_well_formed_bodies(
        self, parts: list[list[str]], epilogue: list[str], preamble: list[str]
    ) -> None:
        body = _well_formed(parts, epilogue, preamble)
        assert _text_parts(body, B) == _old_text_parts(body.split("\n"), B)

    @given(st.lists(st.sampled_from(["", "a", "b: c", " d"]), max_size=6))
    def test_head_lines(self, lines: list[str]) -> None:
        expected = lines[: lines.index("")] if "" in lines else None
        # a part's text is its lines joined; no lines at all never reaches here
        if lines:
            assert _head_lines("\n".join(lines)) == expected


_WIRE_BITS = [b"\r\n", b"\r", b"\n", b"\r\r\n", b"\n\r", b"a", b" ", b"\x00", b"\x0b", b"\x0c"]
_WIRE_BITS += [b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\x85", b"\t"]


class TestCrlfLines:
    @settings(max_examples=1000)
    @given(st.lists(st.sampled_from(_WIRE_BITS), max_size=20).map(b"".join))
    def test_as_the_regular_expression(self, wire: bytes) -> None:
        text = wire.decode("latin-1").replace("\r\n", "\n")
        bare_lf = wire.count(b"\n") != wire.count(b"\r\n")
        assert _crlf_lines(wire) == (_ODD_TEXT.search(text) is None and not bare_lf)


def _message(text: str, html: str | None) -> object:
    return build_message(
        sender="Panel <noreply@panel.example.net>",
        to="bob@example.com",
        subject="Hello",
        text=text,
        html=html,
        message_id="<abc@panel.example.net>",
        language="en",
    )


class TestEndToEnd:
    """Bodies holding delimiter-like lines still read as built, or go the full way, and
    the full way agrees with whatever the bytes way lets through."""

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.one_of(_LINES, st.text(max_size=10)), max_size=8).map("\n".join),
        st.none() | st.lists(_LINES, max_size=4).map("\n".join),
    )
    def test_agrees_with_the_full_check(self, text: str, html: str | None) -> None:
        message = _message(text, html)
        wire = message.as_bytes(policy=wire_policy(False))  # type: ignore[attr-defined]
        fast = _read_as_built(message, "bob@example.com", wire)  # type: ignore[arg-type]
        if fast is not None:
            assert check_wire(message, "bob@example.com")[0] == fast  # type: ignore[arg-type]

    def test_an_invitation_reads_as_built(self) -> None:
        message = _message("Hello,\n\nAccept:\nhttps://x.example/a?t=1\n", "<p>Hello</p>\n")
        wire = message.as_bytes(policy=wire_policy(False))  # type: ignore[attr-defined]
        assert _read_as_built(message, "bob@example.com", wire) == "bob@example.com"  # type: ignore[arg-type]
        # a stray CR or a form feed anywhere sends it the full way
        for odd in (b"\r", b"\x0c", b"\x00", b"\x1e"):
            at = wire.index(b"Hello")
            altered = wire[:at] + odd + wire[at:]
            assert _read_as_built(message, "bob@example.com", altered) is None  # type: ignore[arg-type]

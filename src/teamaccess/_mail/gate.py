"""The last check before a mailer: a message goes out only as it was built.

Every message passes :func:`check_outgoing` right before ``Mailer.send()``. It is
serialised as a mail server would get it (``policy.SMTP``, or ``policy.SMTPUTF8`` for a
message built for SMTPUTF8), parsed back, and refused unless the parsed form has exactly
the headers that were built, in every part, every header line is a field or its
continuation (:func:`_malformed_head`), and its only recipient is the address the
outbox row stores. Python before 3.11.10 / 3.12.5 writes a header value that an RFC 2047
encoded word decoded to CR/LF as it is, so the value becomes new header lines (``Bcc:``)
or a new body (CPython gh-121650); later versions still differ in how they refold
encoded words (gh-121284). Checking the wire form holds on every version, whatever the
stdlib does with a value.

A message of the builder's plain shape is read back from its bytes alone, without the
parser (:func:`_read_as_built`, and :func:`stored_wire` for a queued one); what that
way lets through, the full way lets through too, and it leaves everything else to it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._emails import BREAKS

# At the top, not in each function: a relative import inside a function resolves its
# package through importlib's Python code on every call (about 2 us). These modules
# load without the email package, and nothing loads this one but mail.
from .addresses import expected_recipient
from .policies import _fetched, parsing_policy, wire_policy

if TYPE_CHECKING:
    from email.message import EmailMessage, Message
    from email.policy import Policy

__all__ = [
    "MailRefused",
    "check_outgoing",
    "check_sent",
    "check_stored",
    "check_wire",
    "envelope_header",
    "scrub_error",
    "stored_wire",
]

# Headers a mailer reads for the envelope: smtplib's send_message() and ``sendmail -t``
# take recipients from Cc and Bcc, the sender from Sender, and both from the Resent-*
# headers once a Resent-Date is there. None may appear, so that the envelope is the To
# and the From that were built, whoever sends the message. build_message(headers=...)
# refuses them by this same test (:func:`envelope_header`).
_ENVELOPE_HEADERS: Final = frozenset(("cc", "bcc", "sender"))


def envelope_header(name: str) -> bool:
    """Whether a header named *name* is one the last check refuses in any mail: one that
    adds recipients or names another sender for a mailer (Cc, Bcc, Sender, Resent-*)."""
    key = name.lower()
    return key in _ENVELOPE_HEADERS or key.startswith("resent-")


class MailRefused(Exception):
    """The message is not sent: its wire form is not what was built. Never retried."""


#: The headers a stored (queued) message has: those ``build_message()`` writes, each once.
_STORED_HEADERS: Final = frozenset(
    ("from", "to", "date", "subject", "message-id", "content-language", "mime-version",
     "content-type", "content-transfer-encoding")
)  # fmt: skip
# A header line as RFC 5322 writes it: printable ASCII but the colon, then the colon at
# once. The obsolete syntax ("Bcc : x", a space before the colon) is read as a header by
# mail servers and programs, but as the start of the body by the stdlib parser.
_FIELD: Final = re.compile(rb"([!-9;-~]+):")


def check_stored(source: bytes) -> None:
    """Refuse a stored message whose headers are not exactly what ``build_message()``
    writes: a damaged or altered outbox row.

    The check of the parsed message sees the headers as the stdlib parser reads them; a
    server or mail program reads some lines otherwise. A line that is not a header field
    (or its folded continuation) ends the stdlib's headers there, but not theirs: after
    it, or in the obsolete form with a space before the colon, a ``Bcc`` or a second
    ``To`` would reach the server unseen. So the stored header lines themselves must be
    well formed, name only the headers built, each once, and no line may exceed the 998
    characters of RFC 5322 (the builder folds and encodes far below that).
    """
    end = source.find(b"\n\n")
    crlf = source.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    if end == -1:
        raise MailRefused("its stored form has no empty line between headers and body")
    seen: set[bytes] = set()
    for index, line in enumerate(re.split(rb"\r\n|\r|\n", source[:end])):
        if line[:1] in (b" ", b"\t") and index:
            if not line.strip(b" \t"):
                # Some servers end the headers at a line of white space alone, and read
                # the lines after it as the body.
                raise MailRefused(
                    f"its stored header line {index + 1} holds only white space "
                    "(a damaged or altered outbox row)"
                )
            continue  # a folded continuation of the header above
        field = _FIELD.match(line)
        name = field.group(1).lower() if field is not None else None
        if name is None or name.decode() not in _STORED_HEADERS:
            raise MailRefused(
                f"its stored header line {index + 1} is not one of the headers built "
                "(a damaged or altered outbox row)"
            )
        if name in seen:
            raise MailRefused(f"its stored {name.decode()} header appears twice")
        seen.add(name)
    if max(map(len, source.splitlines())) > 998:
        raise MailRefused("its stored form has a line longer than 998 characters")


# What besides LF ends a line for the stdlib parser (str.splitlines) or is a BREAKS
# character: bytes that send a stored message (or text a fresh one) the full way. Found
# by deleting every other byte (bytes.translate, one C pass), not a regular expression.
_ODD: Final = b"\x00\r\x0b\x0c\x1c\x1d\x1e"
_NOT_ODD: Final = bytes(b for b in range(256) if b not in _ODD)
_ODD_CHARS: Final = tuple(chr(b) for b in _ODD if b != ord("\r"))
_FIELD_TEXT: Final = re.compile(r"([!-9;-~]+):")
# Shapes the stdlib reads as written: one plain address, a plain Message-ID, the
# builder's multipart Content-Type. Anything else is read by the stdlib's header parser.
_PLAIN_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z"
)
# What format_datetime() and the service's Message-IDs look like (the builder's policy
# writes these two as given, too).
_PLAIN_DATE: Final = re.compile(
    r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} [1-9]\d{3} \d\d:\d\d:\d\d [+-]\d{4}"
)
_PLAIN_ID: Final = re.compile(
    r"<[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>"
)
_ALTERNATIVE: Final = re.compile(
    r'multipart/alternative; boundary=(?:"([A-Za-z0-9=_.-]{1,70})"|([A-Za-z0-9_.-]{1,70}))\Z',
    re.IGNORECASE,
)


# What the stdlib's header parser raises on some malformed values besides MessageError:
# an address list with a group in the wrong place raises AttributeError ("'Group' object
# has no attribute 'local_part'") on Python 3.11; comments nested a thousand deep (in an
# altered outbox row) raise RecursionError, as the parser reads each by calling itself.
_UNREADABLE: Final = (
    AttributeError, ValueError, LookupError, TypeError, UnicodeError, RecursionError
)  # fmt: skip


def _fields(lines: list[str], fold: str = "") -> list[tuple[str, str]] | None:
    """Header lines as (name, value) as ``policy.default`` reads them (a folded value
    joined without its line ends, or with *fold* where they were); ``None`` if a line is
    not a field or its continuation, or is white space alone (see :func:`_bad_line`)."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields or not line.strip(" \t"):
                return None
            name, value = fields[-1]
            fields[-1] = (name, value + fold + line)
            continue
        field = _FIELD_TEXT.match(line)
        if field is None:
            return None
        fields.append((field.group(1), line[field.end() :].lstrip(" \t")))
    return fields


# The headers a run's mails share (From, Subject, Date, the parts' headers) repeat: their
# verdicts are kept, as the parses are. A pure function of the name and the text.
@functools.lru_cache(maxsize=1024)
def _read(name: str, value: str) -> str | None:
    """The header as the full check reads it (the same parse, shared with it), or
    ``None`` if reading it fails or it holds a line break."""
    from email.errors import MessageError

    try:
        header = _fetched(parsing_policy(), name, value)
        text = str(header)
    except (MessageError, *_UNREADABLE):
        return None
    return header if BREAKS.isdisjoint(text) else None


def stored_wire(source: bytes, recipient: str) -> tuple[str, bytes, str] | None:
    """The envelope recipient, wire form and envelope sender of a stored message that
    :func:`check_stored` passed, read from its bytes without parsing the message; or
    ``None`` if it is not of the plain shape read here, and the caller takes the full way
    (``parse_stored()`` and :func:`check_wire`), which decides about it.

    For ``SmtpMailer``, which sends the stored lines as they are (``CRLF``). What is let
    through is what :func:`check_wire` lets through on its direct way: ASCII without a CR
    or another character the parser ends a line at; every header of every part read by
    the same header parser, with no line break in what it reads (encoded words decoded);
    a ``To`` that is exactly the stored recipient, a plain address; and the message and
    each part plain text or ``multipart/alternative`` of text parts, split at boundary
    lines that are exactly the builder's. ``tests/test_queued_wire.py`` compares the two.
    """
    if not source.isascii() or source.translate(None, _NOT_ODD):
        return None
    text = source.decode("ascii")
    end = text.find("\n\n")
    if end == -1:
        return None
    head = _fields(text[:end].split("\n"))
    if head is None:
        return None
    to = sender = None
    raw_sender = ""
    boundary = ""
    for name, value in head:
        key = name.lower()
        if key not in _STORED_HEADERS:
            return None
        if key == "to":
            # A plain address parses to itself, and is its own expected_recipient().
            if to is not None or value != recipient or _PLAIN_ADDRESS.match(value) is None:
                return None
            to = value
        elif key == "message-id" and _PLAIN_ID.fullmatch(value) is not None:
            continue  # read as written, and unique per message: not worth a parse
        elif key == "content-type" and (alternative := _ALTERNATIVE.match(value)):
            boundary = alternative.group(1) or alternative.group(2)
        else:
            header = _read(name, value)
            if header is None:
                return None
            if key == "from":
                sender, raw_sender = header, value
            elif key == "content-type" and _maintype(header) != "text":
                return None  # another shape of multipart, or a message inside
    if to is None or sender is None:
        return None
    envelope_from = _envelope_sender(str(sender))
    if envelope_from is None or not envelope_from.isascii():
        return None  # no address, or not ASCII: the full way decides
    if _envelope_sender(raw_sender) != envelope_from:
        # The full check reads the address from the stored text; the parsed header may
        # have dropped a stray quote ('Pa"nel <a@b>' reads as '"Panel <a@b>"'), and
        # then the full check refuses what this would send.
        return None
    if boundary and _text_parts(text[end + 2 :], boundary) is None:
        return None
    return to, source.replace(b"\n", b"\r\n"), envelope_from


# An RFC 5321 path, as a server reads MAIL FROM: a local part that is a dot-atom (UTF-8
# allowed, for SMTPUTF8) or one quoted string, at a domain of labels.
_ATOM: Final = r"[^\s\x00-\x1f\x7f\"(),.:;<>@\[\\\]]+"
_PATH: Final = re.compile(
    rf'(?:{_ATOM}(?:\.{_ATOM})*|"(?:[^"\\\r\n]|\\[^\r\n])*")@{_ATOM}(?:\.{_ATOM})*'
)


@functools.lru_cache(maxsize=64)
def _envelope_sender(sender: str) -> str | None:
    """The envelope sender ``smtplib``'s ``send_message()`` takes from this ``From``
    (the same in every mail of a run); ``None`` if that is no address, ``local@domain``
    (``smtplib`` would fail on every retry, or send ``<>``, the null sender of bounces),
    or not one a server reads as itself in ``MAIL FROM`` ('"x" c@d' goes out as it is,
    and a server reads '"x c"@d', a sender the check never saw)."""
    from email.utils import getaddresses

    try:
        senders = getaddresses([sender])
    except RecursionError:  # comments nested deeper than it recurses (see _UNREADABLE)
        return None
    address = senders[0][1] if senders else ""
    return address if address.isprintable() and _PATH.fullmatch(address) is not None else None


def _maintype(content_type: str) -> str:
    """``Message.get_content_maintype()`` for this ``Content-Type`` value."""
    ctype = content_type.partition(";")[0].strip().lower()
    return ctype.split("/")[0] if ctype.count("/") == 1 else "text"


def _text_parts(body: str, boundary: str) -> list[list[tuple[str, str]]] | None:
    """The header fields of each part of a ``multipart/alternative`` *body* (its lines
    split at ``"\n"``; as :func:`_fields` gives them) if it is text parts whose headers
    read cleanly, split at lines that are exactly ``--boundary`` and one
    ``--boundary--``; else ``None``.

    The body is searched for the lines that start with the delimiter, not read line by
    line in Python (a mail's body is most of its lines): each part is the text between
    two such lines, and only its header lines are split."""
    delimiter = "--" + boundary
    size = len(delimiter)
    find = body.find
    after_newline = "\n" + delimiter
    # the start of each line that starts with the delimiter, in order
    if body.startswith(delimiter):
        start = 0
    else:
        start = find(after_newline)
        if start != -1:
            start += 1
    parts: list[str] = []  # the text of each part's lines, joined by "\n"
    opened = -1  # where the lines of the part being read start, if one is
    closed = False
    while start != -1:
        end = find("\n", start + size)
        rest = body[start + size :] if end == -1 else body[start + size : end]
        # The stdlib also takes "--boundary  " or a line after the end as one.
        if closed or rest not in ("", "--"):
            return None
        if opened != -1:
            if start == opened:
                return None  # a part without a single line: no empty line ends its headers
            parts.append(body[opened : start - 1])
        if end == -1:
            opened = -1
            closed = rest == "--"
            break
        opened = end + 1 if rest == "" else -1
        closed = rest == "--"
        start = find(after_newline, end)
        if start != -1:
            start += 1
    if not closed or not parts:
        return None
    read = []
    for part in parts:
        head = _head_lines(part)
        if head is None:
            return None
        fields = _fields(head)
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


def _head_lines(part: str) -> list[str] | None:
    """The lines of *part* (split at ``"\n"``) before its first empty line; ``None`` if
    none of its lines is empty."""
    if part == "" or part[0] == "\n":
        return []
    end = part.find("\n\n")
    if end == -1:
        if part[-1] != "\n":
            return None
        end = len(part) - 1  # the last line is the empty one
    return part[:end].split("\n")


# The headers whose raw text, in these shapes, the parser reads without error and
# without decoding anything (no encoded word, no RFC 2231 parameter): no line break.
_PLAIN_SHAPES: Final[dict[str, Callable[[str], object]]] = {
    "to": _PLAIN_ADDRESS.match,  # one mailbox, with this addr-spec
    "date": _PLAIN_DATE.fullmatch,
    "message-id": _PLAIN_ID.fullmatch,
    "subject": lambda value: value,  # any printable ASCII without an encoded word
}


def _plain(name: str, value: object) -> bool:
    """True if *value* is raw header text the parser reads without error into a value
    with no line break: a bare To address, a Date and a Message-ID as the builder writes
    them, a Subject; each in printable ASCII with no encoded word.

    ``build_message()`` stores these four as such text (a mail that is only sent is never
    parsed), and the parser reads them so from the wire. Parsing is a function of the
    name and the text alone, so two such values that are the same text read the same:
    the check compares them without parsing either (about 0.2 ms a mail).
    """
    if type(value) is not str or not value.isascii() or not value.isprintable():
        return False
    shape = _PLAIN_SHAPES.get(name.lower())
    return shape is not None and "=?" not in value and bool(shape(value))


def _read_header(part: Message, name: str, raw: object) -> str:
    """The header as ``part[name]`` reads it, as text (a header object is its own)."""
    return str(part.policy.header_fetch_parse(name, raw))  # type: ignore[arg-type]


def _same_on_the_wire(part: Message, theirs: Message, name: str, raw: object, wire: object) -> bool:
    """Whether a built header (*raw* as *part* stores it) and the one read back from the
    wire (*wire*, as *theirs* stores it) say the same.

    Whitespace is compared as one space: folding a long line and parsing it back may turn
    a space into a folding space, which is the same header.
    """
    if raw == wire and _plain(name, raw):
        return True  # the same plain text: the same parse on both sides, so neither
    mine = " ".join(_read_header(part, name, raw).split())
    return mine == " ".join(_read_header(theirs, name, wire).split())


def _same_fields(part: Message, fields: list[tuple[str, str]]) -> bool:
    """Whether *fields* (read from the wire by :func:`_fields`, ``"\n"`` where a value
    was folded) are the headers *part* holds, as the full check compares them: the same
    names in the same order, each the same plain text or reading the same, and none of
    them reading with a line break, as built or as sent."""
    built = list(part.raw_items())
    if len(built) != len(fields):
        return False
    policy = part.policy
    for (name, raw), (wire_name, value) in zip(built, fields, strict=True):
        if name.lower() != wire_name.lower():
            return False
        if hasattr(raw, "name"):  # a header object: its verdict may be known (_VERDICTS)
            key = (id(raw), policy, name, wire_name, value)
            kept = _VERDICTS.get(key)
            if kept is None or kept[0] is not raw:
                kept = (raw, _reads_same(policy, name, raw, wire_name, value))
                if len(_VERDICTS) >= 1024:
                    _VERDICTS.clear()
                _VERDICTS[key] = kept
            if not kept[1]:
                return False
        elif not (raw == value and _plain(name, raw)) and not _reads_same(
            policy, name, raw, wire_name, value
        ):
            return False
    return True


def _reads_same(policy: Policy, name: str, raw: object, wire_name: str, value: str) -> bool:
    """Whether the built header *raw* (read by *policy*) and the wire field *value* read
    the same, neither with a line break (see :func:`_same_fields`)."""
    theirs = _read(wire_name, value.replace("\n", ""))
    mine = str(policy.header_fetch_parse(name, raw))  # type: ignore[arg-type]
    if theirs is None or not BREAKS.isdisjoint(mine):
        return False
    return " ".join(mine.split()) == " ".join(theirs.split())


# Most header objects a mail holds are the builder's shared ones (the sender, the parts'
# structure, the language: policies._shared_header), written the same in every mail: the
# verdict of :func:`_reads_same` on one and its wire text is kept, as the parses are.
# Keyed by the object's id and kept with the object, which the entry keeps alive, so the
# id names no other object while the entry is there (two objects with one text may hold
# different parses); the object and the policy are immutable, so the verdict is a pure
# function of the key. A plain dict, not lru_cache: hashing a key object in Python cost
# what the kept verdict saves.
_VERDICTS: dict[tuple[int, object, str, str, str], tuple[object, bool]] = {}


def _crlf_lines(wire: bytes) -> bool:
    """Whether *wire* holds no CR or LF but those of CR LF (none is left once they are
    made LF) and none of the other bytes the parser ends a line at. A bare LF counts: the
    parser ends a line there, a server that reads CR LF alone does not."""
    text = wire.decode("latin-1")
    return _crlf_text(text, text.replace("\r\n", "\n"))


def _crlf_text(wire: str, text: str) -> bool:
    """:func:`_crlf_lines` of the bytes *wire* was decoded from, given *text*, which is
    *wire* with each CR LF made LF (as the caller reads it next): a count and a few
    searches, where deleting every other byte (``bytes.translate``) and two counts cost
    three times as much."""
    return (
        "\r" not in text  # a CR that no LF follows
        # every LF was one of a CR LF: as many as were made LF
        and text.count("\n") == len(wire) - len(text)
        and not any(char in text for char in _ODD_CHARS)
    )


def _read_as_built(message: EmailMessage, recipient: str, wire: bytes) -> str | None:
    """The envelope recipient of :func:`_envelope_as_built`, or ``None``."""
    envelope = _envelope_as_built(message, recipient, wire)
    return None if envelope is None else envelope[0]


def _envelope_as_built(
    message: EmailMessage, recipient: str, wire: bytes
) -> tuple[str, str] | None:
    """The envelope recipient and sender if *wire*, which *message* was just written to,
    reads back as *message*, seen from its bytes alone; ``None`` if that is not shown
    here, and the full check, which parses *wire* back, decides.

    For the plain shape ``build_message()`` writes (ASCII, no encoded To): what is let
    through is what the full check lets through, with the same envelope recipient. The
    wire holds nothing but CR LF line ends and no other character the parser ends a
    line at; every header of every part is one the message holds, the same name in the
    same order, the same plain text or reading the same (each read by the same cached
    parse as the full check's, with no line break in it); the parts are split at
    boundary lines that are exactly the builder's, into as many text parts as were built;
    no header adds a recipient; one unfolded ``From`` with a sender address; one ``To``
    that is exactly the recipient, a plain address. ``tests/test_gate_reads.py`` holds it
    to the full check on hostile and random messages.
    """
    if not wire.isascii():
        return None
    sent = wire.decode("ascii")
    text = sent.replace("\r\n", "\n")
    if not _crlf_text(sent, text):
        return None
    end = text.find("\n\n")
    lines = text[:end].split("\n") if end != -1 else []
    # A header line over 998 characters: the full check refuses it.
    head = _fields(lines, "\n") if lines and max(map(len, lines)) <= _LINE_LIMIT else None
    if head is None or not _same_fields(message, head):
        return None
    to: list[str] = []
    senders: list[str] = []
    content_type = None
    for name, value in head:
        key = name.lower()
        if envelope_header(key):
            return None
        if key == "to":
            to.append(value)
        elif key == "from":
            senders.append(value)
        elif key == "content-type" and content_type is None:
            content_type = value.replace("\n", "")  # the one the parser goes by
    expected = expected_recipient(recipient)
    if to != [expected] or not _plain("To", expected):
        return None
    if len(senders) != 1 or "\n" in senders[0]:
        return None
    sender = _envelope_sender(senders[0])
    if sender is None:
        return None
    parts = list(message.iter_parts())
    if not parts:
        if message.is_multipart():
            return None  # a multipart without parts: the full way reads what it is
        header = _read("Content-Type", content_type) if content_type is not None else "text"
        return (expected, sender) if header is not None and _maintype(header) == "text" else None
    alternative = _ALTERNATIVE.match(content_type or "")
    if alternative is None:
        return None
    boundary = alternative.group(1) or alternative.group(2)
    read = _text_parts(text[end + 2 :], boundary)
    if read is None or len(read) != len(parts):
        return None
    for part, fields in zip(parts, read, strict=True):
        if part.is_multipart() or not _same_fields(part, fields):
            return None
    return expected, sender


#: RFC 5322's limit of a line, CRLF not counted.
_LINE_LIMIT: Final = 998


def _bad_line(lines: list[str]) -> int | None:
    """The index of the first of *lines* (a header block) that is neither a field
    (``Name:``, no space before the colon) nor the folded continuation of one (white
    space first, after a field, and more than white space); ``None`` if there is none."""
    for index, line in enumerate(lines):
        if line[:1] in (" ", "\t"):
            if index and line.strip(" \t"):
                continue
        elif _FIELD_TEXT.match(line) is not None:
            continue
        return index
    return None


def _malformed_head(wire: bytes, parsed: Message) -> str | None:
    """Why a header block of *wire* (the message's, and each part's after a boundary
    line of a multipart *parsed* holds) is not well formed, or ``None`` if all are.

    The stdlib parser ends the headers at a line that is no field and reads the rest as
    the body, and it skips a continuation with no field before it; a mail server or mail
    program reads on, and takes a ``Bcc`` after such a line, or a ``Bcc : x`` (a space
    before the colon), as a header. Some end the headers at a line of white space alone.
    A header value can be folded into such lines (Python 3.11 writes a long comment on a
    line of its own, with no white space first), and a message made elsewhere can hold
    them: comparing what the parser read cannot see it, so the lines are read here.
    """
    text = wire.decode("utf-8", "surrogateescape")
    starts = [0]
    for part in parsed.walk():
        boundary = part.get_boundary() if part.is_multipart() else None
        if boundary:
            # The lines the parser splits a multipart at (with white space after them,
            # too); the part's own header block follows each but the closing one.
            delimiter = re.compile(rf"(?:\A|(?<=\r\n))--{re.escape(boundary)}(--)?[ \t]*\r\n")
            starts += [found.end() for found in delimiter.finditer(text) if not found.group(1)]
    for number, start in enumerate(sorted(set(starts))):
        if text.startswith("\r\n", start):
            continue  # no headers: the empty line first
        end = text.find("\r\n\r\n", start)
        head = text[start:] if end == -1 else text[start:end]
        if "\r" in head.replace("\r\n", "") or "\n" in head.replace("\r\n", ""):
            return "its wire form has a line end other than CR LF in a header block"
        lines = head.split("\r\n")
        index = _bad_line(lines)
        if index is not None:
            where = "its headers" if not number else f"the headers of part {number}"
            return (
                f"its wire form has a line in {where} that is no header field (line "
                f"{index + 1}); a mail server reads the lines after it otherwise"
            )
    return None


def check_outgoing(message: EmailMessage, recipient: str) -> str:
    """The envelope recipient of *message*, which must go to *recipient* alone.

    Raises :class:`MailRefused` naming what is wrong; the text never quotes the body or a
    header value (an invitation's body holds its accept link).
    """
    return check_wire(message, recipient)[0]


def check_wire(
    message: EmailMessage, recipient: str, source: bytes | None = None
) -> tuple[str, bytes]:
    """The envelope recipient and wire form of :func:`check_sent`."""
    envelope, wire, _ = check_sent(message, recipient, source)
    return envelope, wire


def check_sent(
    message: EmailMessage, recipient: str, source: bytes | None = None
) -> tuple[str, bytes, str]:
    """:func:`check_outgoing`, also returning the wire form it checked (``CRLF`` line
    ends), which the caller then sends as it is instead of writing the message again,
    and the envelope sender it approved (the address of the one ``From``), which the
    caller sends from: the sender is read in this one place, from what was checked.

    *source* is the bytes *message* was parsed from (a queued message), for a caller that
    sends the returned wire form. If they are ASCII with no CR, the wire form is *source*
    with ``CRLF`` line ends: reading it back gives *message* again (the parser does not
    see line ends), so *message* itself is checked and nothing is written or parsed a
    second time. So it is for a message to an SMTPUTF8 recipient that ``parse_stored()``
    read with its UTF-8 headers as text. Any other *source* is written out and read back
    like a built message.
    """
    from email.errors import MessageError

    # UTF-8 parsed as bytes reads differently as text (below) than it did as *message*,
    # and a CR alone ends a line for the parser: such bytes take the full way.
    direct = (
        source is not None
        and b"\r" not in source
        and (source.isascii() or _read_as_sent(message, recipient))
    )
    utf8 = getattr(message.policy, "utf8", False)
    wire = None
    if not direct:
        # A message of the builder's plain shape is checked on its bytes; the full way
        # below, which parses them back, decides about anything else.
        try:
            wire = message.as_bytes(policy=wire_policy(utf8))
            envelope = _envelope_as_built(message, recipient, wire)
        except Exception:
            # Whatever writing or the bytes-only reading trips over, the full way meets
            # it again and says what it is.
            envelope = None
        if envelope is not None:
            assert wire is not None
            return envelope[0], wire, envelope[1]
    try:
        for part in message.walk():
            if _carries_message(part):
                raise MailRefused(_ATTACHED)
            for name, raw in part.raw_items():
                # Plain text has no line break, and its parse has none either (_plain).
                value = raw if _plain(name, raw) else _read_header(part, name, raw)
                if not BREAKS.isdisjoint(value):
                    raise MailRefused(
                        f"its {name} header holds a line break (an encoded word in a "
                        "name, address or template text?)"
                    )
        if direct:
            assert source is not None
            wire = source.replace(b"\n", b"\r\n")
            parsed = message
        else:
            if wire is None:
                wire = message.as_bytes(policy=wire_policy(utf8))
            # Parsed as text: the bytes parser reads a header's UTF-8 (SMTPUTF8) as
            # escaped bytes, which would read as another address than the one built.
            from email import message_from_string  # only here: a package's import costs a call

            parsed = message_from_string(
                wire.decode("utf-8", "surrogateescape"), policy=parsing_policy()
            )
        if parsed is not message and any(map(_carries_message, parsed.walk())):
            raise MailRefused(_ATTACHED)
        bad = _malformed_head(wire, parsed)
        if bad is not None:
            raise MailRefused(bad)
        if max(map(len, wire.split(b"\r\n"))) > _LINE_LIMIT:
            # A server refuses such a line, or breaks it where it likes (the builder
            # refuses an added header written so; check_stored() a stored one).
            raise MailRefused("its wire form has a line longer than 998 characters")
        # Read after writing: writing a multipart message gives it its boundary.
        built = list(message.walk())
        sent = list(parsed.walk())
        if len(built) != len(sent):
            raise MailRefused(
                f"its wire form has {len(sent)} parts where {len(built)} were built "
                "(a header value replaced the body)"
            )
        if not direct:  # on the direct way what was read back is *message* itself
            for index, (part, theirs) in enumerate(zip(built, sent, strict=True)):
                # Each header read at most once: every read parses it again.
                mine = list(part.raw_items())
                wire_headers = list(theirs.raw_items())
                names_built = [name.lower() for name, _ in mine]
                names_sent = [name.lower() for name, _ in wire_headers]
                if names_built != names_sent:
                    extra = sorted(set(names_sent) - set(names_built)) or names_sent
                    raise MailRefused(
                        f"its wire form has other headers than were built (part {index}: "
                        f"{', '.join(extra)}); a value added header lines"
                    )
                for (name, raw), (_, wire_raw) in zip(mine, wire_headers, strict=True):
                    if not _same_on_the_wire(part, theirs, name, raw, wire_raw):
                        raise MailRefused(
                            f"its {name.lower()} header reads differently on the wire"
                        )
        found = {name.lower() for name in parsed if envelope_header(name)}
        if found:
            raise MailRefused(
                f"it names other recipients or another sender ({', '.join(sorted(found))} headers)"
            )
        to_raw = [raw for name, raw in parsed.raw_items() if name.lower() == "to"]
        senders = [raw for name, raw in parsed.raw_items() if name.lower() == "from"]
        # Unfolded, as smtplib reads the header (a fold inside a quoted name is not
        # white space to the address parser).
        unfolded = str(senders[0]).replace("\r", "").replace("\n", "") if senders else ""
        sender = _envelope_sender(unfolded) if len(senders) == 1 else None
        if sender is None:
            raise MailRefused("its From header names no sender address (an altered outbox row?)")
    except MailRefused:
        raise
    except (MessageError, *_UNREADABLE) as exc:
        # The stdlib refuses some values only when it writes or reads them (ValueError,
        # IndexError): one message fails, never the caller or the other recipients.
        raise MailRefused(f"it cannot be written as a mail ({type(exc).__name__})") from None
    try:
        expected = expected_recipient(recipient)
    except ValueError:  # ValidationError: an outbox row altered or damaged in the store
        raise MailRefused("its stored recipient is not a mail address") from None
    if len(to_raw) == 1 and to_raw[0] == expected and _plain("To", to_raw[0]):
        # A bare addr-spec is read as exactly that one mailbox: no need to parse it.
        return expected, wire, sender
    try:
        to_headers = parsed.get_all("To") or []
        addresses = [a for header in to_headers for a in header.addresses]
        junk = any(map(_misread, (d for header in to_headers for d in header.defects)))
    except (AttributeError, ValueError, LookupError):
        to_headers, addresses, junk = [], [], True
    if len(to_headers) != 1 or len(addresses) != 1 or addresses[0].addr_spec != expected or junk:
        raise MailRefused(f"its To header does not name exactly the stored recipient {recipient}")
    return expected, wire, sender


_ATTACHED: Final = (
    "it carries an attached message (a message/* part), whose own From and recipients a "
    "mail program shows as the panel's; the builder makes none (an altered outbox row?)"
)


def _carries_message(part: Message) -> bool:
    """Whether *part* is a ``message/*`` part (``rfc822``, ``global``, ``partial``,
    ``external-body``...), as the parser or a lenient reader takes its type.

    Its header block is no header block of the mail: the checks of the mail's headers
    never read it, and a mail program shows its ``From``, ``To`` and ``Bcc`` as those of
    a message the panel sent (``message/partial`` is even reassembled with them, and
    ``message/external-body`` may have the reader fetch the body by mail). The builder
    never makes one, so it is refused, not scanned: no header in it would be the right
    one. A ``multipart/digest``'s parts are ``message/rfc822`` when they name no type.
    """
    if part.get_content_maintype() == "message":
        return True
    for name, raw in part.raw_items():
        if name.lower() == "content-type":
            kind = _type_read_leniently(str(raw))
            if kind.startswith("message") or kind.endswith("/digest"):
                return True
    return False


def _type_read_leniently(value: str) -> str:
    """The ``type/subtype`` of a ``Content-Type`` value with comments, white space and
    quotes dropped, in lower case: the stdlib reads ``message /rfc822`` or
    ``"message/rfc822"`` as no message, a mail program may not."""
    previous = None
    while previous != value:
        previous, value = value, re.sub(r"\([^()]*\)", "", value)
    return re.sub(r'[\s"]', "", value.partition(";")[0]).lower()


def _misread(defect: Exception) -> bool:
    """Whether a defect the parser found in the ``To`` header means it skipped text there.

    The parser reads one mailbox out of ``bob@example.com :eve@example.net).x;`` and
    drops the rest as junk (a defect), but the text goes out as it is, and other readers
    (``email.utils.getaddresses``, mail programs, ``sendmail -t``) find ``eve`` in it too.
    A local part that is not ASCII (SMTPUTF8) is the one defect a built ``To`` has."""
    from email.errors import NonASCIILocalPartDefect

    return not isinstance(defect, NonASCIILocalPartDefect)


def _read_as_sent(message: EmailMessage, recipient: str) -> bool:
    """Whether *message*, parsed from bytes that are not ASCII, was read as the check
    reads its wire form: headers as UTF-8 text (``parse_stored()`` sets ``utf8`` for
    that), for a recipient whose mail goes out with SMTPUTF8, so as UTF-8."""
    if not getattr(message.policy, "utf8", False):
        return False
    try:
        return not expected_recipient(recipient).isascii()
    except ValueError:
        return False  # the full way refuses it with its reason


def scrub_error(error: str, message: EmailMessage) -> str:
    """*error* without the links of *message* (an invitation's holds its token).

    A mail server may quote the message it refuses, so a mailer's exception text can hold
    the accept link, whole, URL-quoted, HTML-escaped or split by quoted-printable soft
    line breaks. Every link of the text part and every long token-like run in it is
    replaced; if a piece of one, or a line of an encoded body part, is still there in any
    form, the text is withheld altogether.
    """
    import re
    from html import escape
    from urllib.parse import unquote

    try:
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
    except (LookupError, ValueError, TypeError, AttributeError):
        text = ""
    secrets: set[str] = set()
    tokens: set[str] = set()  # the long runs a token is made of
    for link in re.findall(r"https?://\S+", text):
        secrets.update((link, escape(link), unquote(link)))
        tokens.update(re.findall(r"[A-Za-z0-9._~%-]{24,}", link))
        tokens.update(re.findall(r"[A-Za-z0-9._~-]{24,}", unquote(link)))
    for secret in sorted(secrets | tokens, key=len, reverse=True):
        error = error.replace(secret, "[removed]")
    flat = re.sub(r"=\r?\n|\s", "", error).replace("=3D", "=")
    pieces = {t[i : i + 16] for t in tokens for i in range(len(t) - 15)}
    encoded: set[str] = set()
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, str):
                encoded.update(line for line in payload.splitlines() if len(line) >= 20)
    if any(piece in flat for piece in pieces) or any(line in error for line in encoded):
        return error.split(":", 1)[0] + ": (its text quoted the message and is withheld)"
    return error

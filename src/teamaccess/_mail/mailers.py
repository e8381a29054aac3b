"""Mailers that need nothing beyond the standard library's ``email`` package."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Self, cast

from .._emails import check_line
from .._errors import StorageError, ValidationError

if TYPE_CHECKING:
    from email.headerregistry import Address, AddressHeader, HeaderRegistry
    from email.message import EmailMessage
    from email.policy import EmailPolicy
    from pathlib import Path

__all__ = [
    "FileMailer",
    "MemoryMailer",
    "build_message",
    "expected_recipient",
    "parse_stored",
    "parsing_policy",
    "wire_policy",
]


# Headers whose values repeat from one message to the next: the parts' structure, the
# sender, the language. Parsed once and shared, since a parsed header is an immutable str.
_SHARED_HEADERS = frozenset(
    ("from", "mime-version", "content-type", "content-transfer-encoding", "content-language")
)


# Headers new in every message (the recipient, subject, date, id). In their plain form
# the stdlib writes them exactly as given, so they are kept as text (EmailPolicy accepts
# both) and parsed only if something reads them: a mail that is only sent never pays.
_TEXT_HEADERS = frozenset(("to", "subject", "date", "message-id"))


@functools.lru_cache(maxsize=256)
def _shared_header(policy: EmailPolicy[EmailMessage], name: str, value: str) -> tuple[str, str]:
    from email.policy import EmailPolicy

    return EmailPolicy.header_store_parse(policy, name, value)


@functools.cache
def _policy(utf8: bool) -> EmailPolicy[EmailMessage]:
    """``policy.default`` (SMTPUTF8 if *utf8*), with each header class built once and the
    headers every message repeats parsed once.

    The stdlib's ``HeaderRegistry`` creates a new class with ``type()`` for every header
    of every message; that was half the cost of building an invitation mail (a profile
    of invite). The classes hold no state, so one per header name is the same thing. Then
    parsing the headers was two thirds of what remained, and ten of the fifteen an
    invitation sets are the same text in every mail (``Content-Type: text/plain;
    charset="utf-8"``, ``MIME-Version: 1.0``, the sender...): a parsed header is an
    immutable ``str`` subclass, so those are parsed once and shared.
    """
    from email.headerregistry import HeaderRegistry
    from email.policy import EmailPolicy

    class _Registry(HeaderRegistry):
        def __init__(self) -> None:
            super().__init__()
            self._classes: dict[str, type] = {}

        def __getitem__(self, name: str) -> type:
            key = name.lower()
            cls = self._classes.get(key)
            if cls is None:
                cls = self._classes[key] = super().__getitem__(name)
            return cls

    # What format_datetime() and the service's Message-IDs look like; anything else (a
    # year before 1000, an offset with seconds, an odd id) goes through the parser.
    from .gate import _PLAIN_DATE, _PLAIN_ID

    plain_date = _PLAIN_DATE.fullmatch
    plain_id = _PLAIN_ID.fullmatch

    def written_as_given(key: str, value: str) -> bool:
        """True where EmailPolicy.fold() writes *value* unparsed and unchanged."""
        if len(value) >= 77 - len(key):  # a line that needs folding is refolded
            return False
        if key == "date":
            return plain_date(value) is not None
        if key == "message-id":
            return plain_id(value) is not None
        # To and Subject: printable ASCII (so no line break, tab or control character,
        # which the stdlib refuses or rewrites, now or in a later msg[...] = edit), not
        # empty, no encoded word (a parse decodes it).
        return value.isascii() and value.isprintable() and value != "" and "=?" not in value

    class _Policy(EmailPolicy):
        def __reduce__(self) -> tuple[object, tuple[str, bool, dict[str, object]]]:
            return _same_policy, ("build", self.utf8, _changes(self, _policy(self.utf8)))

        def header_store_parse(self, name: str, value: object) -> tuple[str, str]:
            if type(value) is str:
                key = name.lower()
                if key in _SHARED_HEADERS:
                    return _shared_header(self, name, value)
                if key in _TEXT_HEADERS and written_as_given(key, value):
                    return (name, value)
            return super().header_store_parse(name, value)

    # policy.default is EmailPolicy() with no arguments; the same, plus the two changes.
    return cast("EmailPolicy[EmailMessage]", _Policy(header_factory=_Registry(), utf8=utf8))


@functools.cache
def parsing_policy(utf8: bool = False) -> EmailPolicy[EmailMessage]:
    """``policy.default`` for reading mail back (a queued message, the last check's wire
    form), with the header classes built once as :func:`_policy` does, and each header
    value parsed once.

    A parsed message keeps its headers as text and parses one again on every read; the
    stdlib reads ``Content-Type`` about fifteen times per part while parsing, writing
    and walking a message, and those parses were most of the cost of sending a queued
    mail. A parsed header is an immutable ``str`` subclass, so the same text read again
    gets the same object (as :func:`_shared_header` shares the built ones).
    """
    from email.policy import EmailPolicy

    class _Parsing(EmailPolicy):
        def __reduce__(self) -> tuple[object, tuple[str, bool, dict[str, object]]]:
            base = parsing_policy(self.utf8)
            return _same_policy, ("parse", self.utf8, _changes(self, base))

        def header_fetch_parse(self, name: str, value: str) -> str:
            if hasattr(value, "name"):
                return value  # already a header object
            return _fetched(self, name, value)

        def clone(self, **kw: Any) -> Self:
            # The generator clones the policy for every part it writes, with the same
            # line ends: a new policy object each time, which missed every cache keyed
            # by it. A policy is immutable, so one that would not change is itself.
            if all(getattr(self, key, _ABSENT) == value for key, value in kw.items()):
                return self
            return super().clone(**kw)

        def fold_binary(self, name: str, value: str) -> bytes:
            if hasattr(value, "name"):
                # A header object folds the same way every time (it and the policy are
                # immutable), and the builder shares most of a mail's: folded once.
                return _folded(_Same(value), self)
            return super().fold_binary(name, value)

    # policy.default is EmailPolicy() with no arguments; the same, plus the two changes.
    parsing = _Parsing(header_factory=_policy(False).header_factory, utf8=utf8)
    return cast("EmailPolicy[EmailMessage]", parsing)


def _changes(policy: object, base: object) -> dict[str, object]:
    """The settings *policy* has that *base* (one of the same class) has not: what a
    ``clone()`` of *base* needs to give *policy* again."""
    own = vars(base)
    return {k: v for k, v in vars(policy).items() if own.get(k, _ABSENT) is not v}


def _same_policy(kind: str, utf8: bool, changes: dict[str, Any]) -> EmailPolicy[EmailMessage]:
    """The builder's (*kind* ``"build"``) or the parsing policy, with *changes*: what an
    unpickled message gets back. The policy classes are made on first use (the email
    package loads only when mail is sent), so a pickle names this function instead:
    a task queue (Celery, RQ) pickles the messages it carries."""
    if kind == "build":
        return _policy(utf8).clone(**changes) if changes else _policy(utf8)
    if changes == {"linesep": "\r\n"}:
        return wire_policy(utf8)  # the one object the wire caches are keyed by
    # parsing_policy() and parsing_policy(False) are two cache entries; the code asks
    # for the first.
    parsing = parsing_policy(True) if utf8 else parsing_policy()
    return parsing.clone(**changes) if changes else parsing


def parse_stored(source: bytes) -> EmailMessage:
    """A stored (queued) message read back with the policy it was written with.

    A message built for SMTPUTF8 holds its header text as UTF-8. The bytes parser reads
    that as escaped bytes, and the stdlib writes such a header out again, once it
    refolds it (a line of 78 characters but more bytes), as ``unknown-8bit`` encoded
    words (garbled in every mail program), or not at all. So a header block that is not
    ASCII is decoded as UTF-8 and parsed as text with ``utf8`` set, as it was written;
    the body is read as the bytes parser reads it (8-bit text kept as escaped bytes),
    so it is written out byte for byte. Header bytes that are not UTF-8 are read as
    bytes, as before: the last check decides about them.
    """
    from email import message_from_bytes, message_from_string
    from email.message import EmailMessage

    end = source.find(b"\n\n")
    crlf = source.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    head = source if end == -1 else source[:end]
    parsed = None
    if not head.isascii():
        try:
            text = head.decode("utf-8") + source[len(head) :].decode("ascii", "surrogateescape")
        except UnicodeDecodeError:
            pass
        else:
            parsed = message_from_string(text, policy=parsing_policy(True))
    if parsed is None:
        parsed = message_from_bytes(source, policy=parsing_policy())
    assert isinstance(parsed, EmailMessage)
    return parsed


@functools.cache
def wire_policy(utf8: bool) -> EmailPolicy[EmailMessage]:
    """``policy.SMTP`` (``policy.SMTPUTF8`` if *utf8*) with :func:`parsing_policy`'s
    parsed-once headers: the stdlib reads headers through the writing policy while it
    writes a message."""
    return parsing_policy().clone(linesep="\r\n", utf8=utf8)


_ABSENT: Final = object()


class _Same:
    """A key equal only to the very object it holds: a header object compares as its
    text, but two with the same text may hold different parses (one decoded from an
    encoded word), which fold differently."""

    __slots__ = ("held",)

    def __init__(self, held: object) -> None:
        self.held = held

    def __hash__(self) -> int:
        return id(self.held)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.held is self.held


# Writing a mail refolds every header object from its parse tree: for the nine an
# invitation shares with every other (the parts' structure, the sender), that was a
# third of the time to write it. The cache holds the header objects it keys, so an id
# is never reused while it is in there.
@functools.lru_cache(maxsize=256)
def _folded(header: _Same, policy: EmailPolicy[EmailMessage]) -> bytes:
    from email.policy import EmailPolicy

    value = cast("str", header.held)
    return EmailPolicy.fold_binary(policy, getattr(value, "name", ""), value)


@functools.lru_cache(maxsize=1024)
def _fetched(policy: EmailPolicy[EmailMessage], name: str, value: str) -> str:
    from email.policy import EmailPolicy

    return EmailPolicy.header_fetch_parse(policy, name, value)  # type: ignore[no-any-return]


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    language: str,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message; every header value checked for line breaks first.

    White space around *subject* is dropped.

    Address domains are written in their ASCII (IDNA) form, which every mail server
    accepts; only an address whose local part is not ASCII needs SMTPUTF8, and the
    message is then built for it.
    """
    added = {} if headers is None else _check_added(headers)
    fields = {
        "From": sender,
        "To": to,
        "Subject": subject,
        "Message-ID": message_id,
        "Content-Language": language,
    }
    # The stdlib email package costs ~20 ms to import; only sending mail needs it.
    from email.message import EmailMessage
    from email.utils import format_datetime

    for name, value in fields.items():
        check_line(f"mail header {name}", value)
    # Python 3.11's folder gives a long subject that ends in white space a last line of
    # white space only, which the last check refuses as a damaged header (the mail was
    # cancelled unsent); the edges carry no meaning, so they go (after the check above:
    # a line break is refused, never dropped).
    subject = subject.strip()
    utf8 = _header_address("From", sender)[1] or _header_address("To", to)[1]
    if len(subject) > _SUBJECT_ROOM and (utf8 or subject.isascii()):
        # Folded by the stdlib: it writes a run of white space between two long words as
        # a line of white space alone, which some servers read as the end of the headers
        # (the last check refuses such a mail), so a run is written as one space.
        subject = " ".join(filter(None, subject.replace("\t", " ").split(" ")))
    msg = EmailMessage(policy=_policy(utf8))
    msg["From"] = _address_field(utf8, "From", sender)
    msg["To"] = str(_header_address("To", to)[0])
    msg["Date"] = format_datetime(date) if date is not None else format_datetime(datetime.now(UTC))
    if (utf8 or subject.isascii()) and max(map(len, subject.split(" "))) <= _SUBJECT_WORD:
        msg["Subject"] = subject
    else:
        # Written as encoded words by hand: Python 3.11's folder can drop the space
        # between two encoded words at a fold, so the check before sending refused the
        # mail sent now, and mail sent from the outbox arrived with words run together.
        # It writes an ASCII word too long for a line as such words too, and drops the
        # spaces around it.
        msg.set_raw("Subject", _encoded_words(subject))
    msg["Message-ID"] = message_id
    for name, value in added.items():
        if not name.lower().startswith("content-"):
            _add_header(msg, name, value)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        _set_boundary(msg)
    # Content-* headers go on last: set_content() drops them and add_alternative() moves
    # them into the first part, which lost Content-Language before.
    msg["Content-Language"] = language
    for name, value in added.items():
        if name.lower().startswith("content-"):
            _add_header(msg, name, value)
    if added:
        _check_written(msg, added, utf8)
        _check_sendable(msg, to, added, fields, text, html, date)
    return msg


#: The longest ASCII subject written on the line of its ``Subject: ``; a longer one is
#: folded by the stdlib.
_SUBJECT_ROOM: Final = 78 - len("Subject: ")
#: The longest word of an ASCII subject the stdlib folds onto a line of its own.
_SUBJECT_WORD: Final = 76


# Characters an encoded word of the "Q" form may hold as they are, in any header (RFC 2047
# section 5, rule 3); a space is "_", anything else "=XX" for each of its UTF-8 bytes.
_Q_LITERAL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def _encoded_words(text: str) -> str:
    """*text* as RFC 2047 "Q" encoded words, folded one to a line: every character, white
    space included, is inside a word (white space between two words is not text), no
    character is split across two words, and each line fits in 78 characters after a
    ``Subject: `` (an encoded word is at most 75)."""
    words: list[str] = []
    current: list[str] = []
    size = 0
    room = 78 - len("Subject: ") - len("=?utf-8?q??=")
    for char in text:
        if char in _Q_LITERAL:
            piece = char
        elif char == " ":
            piece = "_"
        else:
            piece = "".join(f"={byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        if current and size + len(piece) > room:
            words.append("".join(current))
            current, size = [], 0
            room = 75 - len("=?utf-8?q??=")
        current.append(piece)
        size += len(piece)
    words.append("".join(current))
    return "\n ".join(f"=?utf-8?q?{word}?=" for word in words)


#: A header name: RFC 5322's printable ASCII but the colon, short enough to fit a line
#: with its colon (the stdlib's folder fails on longer ones).
_FIELD_NAME: Final = re.compile(r"[!-9;-~]{1,76}")

#: The headers build_message() writes itself, and the argument each comes from.
_BUILT: Final = {
    "from": "sender", "to": "to", "subject": "subject", "date": "date",
    "message-id": "message_id", "content-language": "language", "mime-version": "text",
    "content-type": "text", "content-transfer-encoding": "text",
}  # fmt: skip


def _check_added(headers: object) -> dict[str, str]:
    """*headers* (``build_message(headers=...)``), checked as far as they can be alone."""
    # Here, not at the top: the last check's module imports this one.
    from .gate import envelope_header

    if not isinstance(headers, dict):
        raise ValidationError(
            f"headers must be a dict of header names to values, like {{'Reply-To': "
            f"'support@example.com'}}, not {type(headers).__name__}"
        )
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str):
            raise ValidationError(
                f"mail header name {name!r} must be a string, like 'X-Panel-Account'"
            )
        if _FIELD_NAME.fullmatch(name) is None:
            raise ValidationError(
                f"mail header name {name[:80]!r} is not a header name: use 1 to 76 printable "
                "ASCII characters with no space or colon, like 'X-Panel-Account'"
            )
        key = name.lower()
        if key in _BUILT:
            raise ValidationError(
                f"mail header {name} is written by build_message itself (from "
                f"{_BUILT[key]}=); leave it out of headers"
            )
        if key in seen:
            raise ValidationError(
                f"mail header {name} is given twice (header names ignore case); give it once"
            )
        if envelope_header(name):
            raise ValidationError(
                f"mail header {name} is refused by the last check before sending: a mailer "
                "reads it for the envelope (more recipients, or another sender than From); "
                "send one message per recipient, and put a reply address in Reply-To"
            )
        seen.add(key)
        check_line(f"mail header {name}", value)
    return headers


def _refused(name: str, value: str, exc: BaseException) -> ValidationError:
    shown = repr(value[:40]) + ("..." if len(value) > 40 else "")
    return ValidationError(
        f"mail header {name} cannot carry {shown}: "
        f"the standard library refuses it ({type(exc).__name__}); for an address header "
        "give addresses like 'Name <name@example.com>', for a date a date like "
        "email.utils.format_datetime() writes"
    )


def _add_header(msg: EmailMessage, name: str, value: str) -> None:
    try:
        msg[name] = value
    except Exception as exc:
        # The header's parser refused it (a date it cannot read; comments nested deeper
        # than it recurses): a ValueError, TypeError or RecursionError of the stdlib.
        raise _refused(name, value, exc) from None


def _check_written(msg: EmailMessage, added: dict[str, str], utf8: bool) -> None:
    """Write each added header as a mailer will, so that a value the stdlib stored but
    cannot write is refused now, by name, and never while the mail is sent."""
    keys = {name.lower(): name for name in added}
    writers = (wire_policy(utf8), msg.policy)
    for name, value in msg.raw_items():
        given = keys.get(name.lower())
        if given is None:
            continue
        try:
            lines = []
            for writer in writers:
                lines += writer.fold_binary(name, value).splitlines()
                lines += writer.fold(name, value).encode("utf-8", "surrogateescape").splitlines()
        except Exception as exc:
            raise _refused(given, added[given], exc) from None
        # The stdlib writes a word it cannot fold (an address, an id) on one line however
        # long; a server refuses a line over RFC 5322's 998 characters, or breaks it.
        longest = max(map(len, lines), default=0)
        if longest > _LINE_LIMIT:
            raise ValidationError(
                f"mail header {given} cannot be written in lines of at most {_LINE_LIMIT} "
                f"characters, as mail requires (one would be {longest}): it holds a word too "
                "long to fold; shorten it or put spaces in it"
            )


#: The longest line RFC 5322 allows, without its CR LF.
_LINE_LIMIT: Final = 998


def _check_sendable(
    msg: EmailMessage,
    to: str,
    added: dict[str, str],
    fields: dict[str, str],
    text: str,
    html: str | None,
    date: datetime | None,
) -> None:
    """Refuse added headers that would have the last check before sending refuse *msg*.

    The check itself decides (``gate.check_outgoing``, which writes the mail as a server
    gets it and reads it back), so the builder refuses exactly what it would. A mail it
    refuses without the added headers too (a sender this Python cannot write) is not
    theirs to answer for: the service refuses such a sender when it is made.
    """
    from .gate import MailRefused, check_outgoing

    try:
        check_outgoing(msg, to)
    except MailRefused as exc:
        reason = str(exc)
    else:
        return

    def without(headers: dict[str, str] | None) -> EmailMessage:
        return build_message(
            sender=fields["From"], to=to, subject=fields["Subject"], text=text, html=html,
            message_id=fields["Message-ID"], language=fields["Content-Language"],
            headers=headers, date=date,
        )  # fmt: skip

    try:
        check_outgoing(without(None), to)
    except MailRefused:
        return
    names = list(added)
    if len(names) > 1:
        for name in names:
            without({name: added[name]})  # raises for the header that is refused alone
    raise ValidationError(
        f"mail header{'s' if len(names) > 1 else ''} {', '.join(names)}: the last check "
        f"before sending would refuse this mail ({reason}); leave the header out or give "
        "a plain value (an address like 'Name <name@example.com>', text without encoded "
        "words)"
    )


# The same boundary in every mail: the stdlib compiles a regular expression for each
# boundary it writes or reads, and a random one per mail misses the regex cache every
# time (about 0.4 ms a mail, written and read back by the last check). "=_" never occurs
# in quoted-printable or base64 text; a part that holds it anyway gets a random one.
_BOUNDARY: Final = "=_teamaccess_alternative_part"


def _set_boundary(msg: EmailMessage) -> None:
    for part in msg.iter_parts():
        payload = part.get_payload()
        if not isinstance(payload, str) or _BOUNDARY in payload:
            return  # the generator picks a random boundary and checks it, as before
    msg.set_boundary(_BOUNDARY)


@functools.lru_cache(maxsize=256)
def _address_field(utf8: bool, header: str, value: str) -> str:
    """The parsed ``From`` header for *value*: the sender is the same in every mail, and
    the parse is the costliest of a message's headers, so it is shared too.

    A name that is not ASCII is written as encoded words made here
    (:func:`_phrase_lines`), not by the stdlib's folder: Python 3.11's folder splits a
    long name inside a word, and its parser reads a space there, so every such mail was
    refused by the last check before sending (with SMTPUTF8 too, where it writes the name
    as UTF-8 but misreads one that holds a colon or a semicolon).
    """
    factory = cast("HeaderRegistry", _policy(utf8).header_factory)
    address = _header_address(header, value)[0]
    if not address.display_name.isascii():
        from email.headerregistry import Address

        # Runs of spaces are written as one: reading a name split into several encoded
        # words gives back, on Python 3.11, a space more at the split, and a name read
        # back and built again (a rewritten queued mail) must be written the same.
        name = " ".join(filter(None, address.display_name.strip(" ").split(" ")))
        address = Address(display_name=name, username=address.username, domain=address.domain)
        lines = _phrase_lines(name, address.addr_spec, len(header) + 2)
        if lines is not None:
            field = _hand_folded(factory[header])(header, address)
            field.lines = lines
            field.made_from = (utf8, header, value)
            return cast("str", field)
    elif _needs_quoting(address.display_name):
        from email.headerregistry import Address

        # Runs of spaces are written as one, as in a name that is not ASCII: a fold at
        # one would leave a line of white space alone.
        name = " ".join(filter(None, address.display_name.strip(" ").split(" ")))
        lines = _quoted_lines(name, address.addr_spec, len(header) + 2)
        if lines is not None:
            address = Address(display_name=name, username=address.username, domain=address.domain)
            field = _hand_folded(factory[header])(header, address)
            field.lines = lines
            field.made_from = (utf8, header, value)
            return cast("str", field)
    return cast("str", factory(header, address))


def _needs_quoting(name: str) -> bool:
    """Whether ASCII *name* is written as a quoted string: it holds a character that is
    neither ``atext`` nor a space (a colon, a comma, a parenthesis...)."""
    return bool(name) and not _ATEXT.issuperset(name.replace(" ", ""))


def _quoted_lines(name: str, addr_spec: str, indent: int) -> tuple[str, ...] | None:
    """ASCII *name* as one quoted string before ``<addr_spec>``, folded only at its
    single spaces, each line at most 78 characters (the first after *indent*); ``None``
    if it fits on one line (the stdlib writes that as it is) or cannot be written so (a
    word too long for a line, a tab or a run of spaces, which a fold could turn into a
    line of white space alone), and the stdlib writes it, as before.

    Python 3.11's folder breaks a quoted string that does not fit on a line into words
    outside the quotes: a name with a colon or a semicolon was then read as a group, one
    with a comma as two addresses, one with parentheses as a comment, and the last check
    refused every mail from that sender. A fold inside a quoted string is white space
    kept in it (RFC 5322 section 3.2.4): every reader unfolds it back to the name.
    """
    if not name.isascii() or not name.isprintable() or "  " in name:
        return None
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    tokens = [*quoted.split(" "), f"<{addr_spec}>"]
    if indent + len(quoted) + 1 + len(tokens[-1]) <= 78 or "" in tokens:
        return None
    return _packed(tokens, indent)


def _packed(tokens: list[str], indent: int) -> tuple[str, ...] | None:
    """*tokens* joined by spaces into lines of at most 78 characters, the first after
    *indent* characters (the header's name), the others after the one space a fold
    adds; ``None`` if a token does not fit on a line."""
    lines: list[str] = []
    line = ""
    for token in tokens:
        if not line:
            line = token
        elif len(line) + 1 + len(token) + (indent if not lines else 1) <= 78:
            line = f"{line} {token}"
        else:
            lines.append(line)
            line = token
    lines.append(line)
    if len(lines[0]) + indent > 78 or max(map(len, lines[1:]), default=0) + 1 > 78:
        return None
    return tuple(lines)


@functools.cache
def _hand_folded(base: type) -> type:
    """A header class of *base*'s kind that writes itself as ``lines`` (made by
    :func:`_phrase_lines`) with the writing policy's line ends, whatever the policy;
    read, it is the parsed address as ever."""

    class HandFolded(base):  # type: ignore[misc]
        lines: tuple[str, ...]
        made_from: tuple[bool, str, str]

        def __reduce__(self) -> tuple[object, tuple[bool, str, str]]:
            # A stdlib header deep-copies (and pickles) as its base class, which folds
            # the name itself again: a copy.deepcopy() of a message is this header.
            return _address_field, self.made_from

        def fold(self, *, policy: EmailPolicy[EmailMessage]) -> str:
            linesep: str = policy.linesep
            return f"{self.name}: {(linesep + ' ').join(self.lines)}{linesep}"

    return HandFolded


#: An RFC 5322 ``atext`` character: a word of them is written in a name as it is.
_ATEXT: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~"
)
#: The longest encoded word written in a name: it fits a line after ``From: `` (RFC 2047
#: allows 75 characters; a line holds 78).
_WORD_ROOM: Final = 72


def _phrase_word(text: str) -> str:
    """*text* as one RFC 2047 encoded word, "Q" (as a name may hold it: RFC 2047 section
    5, rule 3) or "B", whichever is shorter."""
    import base64

    data = text.encode("utf-8")
    q = "".join(
        char if char in _Q_LITERAL else "_" if char == " " else
        "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        for char in text
    )  # fmt: skip
    b = base64.b64encode(data).decode("ascii")
    return f"=?utf-8?q?{q}?=" if len(q) <= len(b) else f"=?utf-8?b?{b}?="


def _encoded_run(text: str) -> list[str] | None:
    """*text* (words that must be encoded, one space apart) as encoded words, split only
    at a space, which goes inside the word before it, else the word after it, else an
    encoded word of its own; ``None`` if a word alone does not fit in one.

    Split inside a word, Python 3.11's parser reads the name with a space there (it keeps
    the white space between two encoded words in a name, where RFC 2047 drops it). Split
    at a space kept in an encoded word, every reader reads that space: one, as RFC 2047
    says, or more, as Python 3.11 does (the last check compares white space as one). A
    space left between two encoded words alone, RFC 2047 readers drop.
    """
    pieces = text.split(" ")
    chunks: list[str] = []
    current = pieces[0]
    for piece in pieces[1:]:
        if len(_phrase_word(f"{current} {piece} ")) <= _WORD_ROOM:
            current = f"{current} {piece}"
            continue
        word = _phrase_word(current + " ")
        if len(word) <= _WORD_ROOM:
            chunks.append(word)
            current = piece
            continue
        word = _phrase_word(current)
        if len(word) > _WORD_ROOM:
            return None
        chunks.append(word)
        current = " " + piece
        if len(_phrase_word(current)) > _WORD_ROOM:
            chunks.append(_phrase_word(" "))
            current = piece
    word = _phrase_word(current)
    if len(word) > _WORD_ROOM:
        return None
    chunks.append(word)
    return chunks


def unencodable_word(value: str) -> str | None:
    """A word of the name in sender *value* too long for one encoded word (written by
    the stdlib instead, which Python 3.11 reads back otherwise), if it has one."""
    name = _header_address("From", value)[0].display_name
    for word in name.split(" "):
        if not word.isascii() and len(_phrase_word(word)) > _WORD_ROOM:
            return word
    return None


def _phrase_lines(name: str, addr_spec: str, indent: int) -> tuple[str, ...] | None:
    """``name <addr_spec>`` as the lines of an address header (the first after *indent*
    characters of ``From: ``), each at most 78 characters: words of ``atext`` as they
    are, each run of other words as encoded words. ``None`` if that does not fit (a word
    too long for one encoded word, an address too long for a line), and the stdlib
    writes it, as before.

    Lines of 78 characters at most, so that a stored mail read back and written again
    (a queued one) keeps them as they are: the stdlib refolds a longer line itself.
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in name.split(" "):
        if len(word) <= _WORD_ROOM and _ATEXT.issuperset(word) and "=?" not in word:
            if run:
                encoded = _encoded_run(" ".join(run))
                if encoded is None:
                    return None
                tokens += encoded
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        encoded = _encoded_run(" ".join(run))
        if encoded is None:
            return None
        tokens += encoded
    tokens.append(f"<{addr_spec}>")
    return _packed(tokens, indent)


# A local part that is one quoted string (RFC 5322 quoted-string, no folding).
_QUOTED_LOCAL: Final = re.compile(r'"(?:[^"\\\r\n]|\\.)*"\Z')


# Cached: called twice per message (once to choose the policy); Address is immutable.
@functools.lru_cache(maxsize=256)
def _header_address(header: str, value: str) -> tuple[Address, bool]:
    """*value* (``addr`` or ``Name <addr>``) with an ASCII domain; True if it needs SMTPUTF8."""
    from email.headerregistry import Address
    from email.utils import parseaddr, unquote

    import idna

    try:
        if header == "From":
            _one_sender(value)
        name, addr = parseaddr(value)
    except RecursionError:  # it reads a comment in a comment by calling itself
        raise ValidationError(
            f"mail header {header}: {value[:40]!r}... nests comments (parentheses) deeper "
            "than a mail header parser reads"
        ) from None
    local, at, domain = addr.rpartition("@")
    if '"' in local:
        # parseaddr() keeps a quoted local part's quotes; Address() quotes it itself, and
        # with them kept it wrote another address ("\"no reply\""@example.net).
        if _QUOTED_LOCAL.match(local) is None:
            raise ValidationError(
                f"mail header {header}: quote the whole local part of {addr!r} or none of "
                "it, like '\"no reply\"@example.com'"
            )
        local = unquote(local)
    if header == "From":
        _as_written(value, addr)
    if not at or not local or not domain:
        raise ValidationError(
            f"mail header {header} needs an address like 'Name <noreply@example.com>', "
            f"not {value!r}"
        )
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValidationError(
                f"mail header {header}: the domain of {addr!r} is not a valid IDN domain"
            ) from exc
    return Address(display_name=name, username=local, domain=domain), not local.isascii()


def _one_sender(value: str) -> None:
    """Refuse a sender the address parser would cut down: a group (``Shop: <a@b>;``),
    whose name it drops, or several addresses, or text after the address, of which it
    keeps the first."""
    from email.errors import MessageError
    from email.headerregistry import HeaderRegistry
    from email.utils import getaddresses, parseaddr

    try:
        header = cast("AddressHeader", HeaderRegistry()("From", value))
        groups = [group for group in header.groups if group.display_name is not None]
        addresses = [address for group in header.groups for address in group.addresses]
    except (MessageError, AttributeError, ValueError, LookupError, TypeError):
        return  # the parser trips over it: the check of the sender's mail decides
    if groups:
        group = groups[0]
        inside = parseaddr(value)[1]
        if "@" not in inside:
            inside = "noreply@example.com"
        raise ValidationError(
            f"sender {value!r} is written as a group (a name, a colon, addresses and a "
            "semicolon), which a From header cannot carry: its name would be lost; write "
            f"the name before one address in angle brackets, like "
            f"{f'{group.display_name} <{inside}>'!r}, and quote a name that holds a colon, "
            f"like {_quoted(value, inside)!r}"
        )
    if len(addresses) > 1:
        raise ValidationError(
            f"sender {value!r} names {len(addresses)} addresses; a mail goes out from one: "
            "give one address, like 'Customer Center <noreply@example.com>'"
        )
    if _unclosed_comment(value):
        # The parser reads the rest of the value as a comment, which becomes the name:
        # an address there ("info@shop.example (Shop <noreply@shop.example>") was
        # dropped, and the mail went out from the first one.
        raise ValidationError(
            f"sender {value!r} opens a parenthesis it does not close, so a mail header "
            "reads all after it as the name; close it, or give one address with the name "
            "before it, like 'Customer Center <noreply@example.com>'"
        )
    if len([pair for pair in getaddresses([value]) if pair != ("", "")]) > 1 or (
        value.rstrip().endswith(";")
    ):
        raise ValidationError(
            f"sender {value!r} has text after its address that a mail header drops; give "
            "one address with the name before it, and quote a name that holds an address "
            "or punctuation, like '\"support@example.com\" <noreply@example.com>'"
        )


def _as_written(value: str, addr: str) -> None:
    """Refuse a sender whose address, as the parser reads it, is not the one written: the
    parser joins the words of an address without angle brackets ("Shop noreply@x.example"
    is the address "Shop noreply"@x.example, "noreply@x.example Shop" is
    noreply@x.exampleShop), and takes text before the angle brackets for the address if it
    reads as one. The mail went out from that address."""
    bracketed = value[value.rfind("<") + 1 :].split(">", 1)[0].strip() if "<" in value else None
    local = addr.rpartition("@")[0]
    joined = not local.startswith('"') and any(char.isspace() for char in local)
    if addr not in value or joined or bracketed not in (None, addr):
        words = [word for word in value.split() if "@" in word]
        written = bracketed or (words[-1].strip("<>(),;:") if words else "noreply@example.com")
        raise ValidationError(
            f"sender {value!r} reads as the address {addr!r}; write the address in angle "
            "brackets after the name, like 'Customer Center <noreply@example.com>', and "
            f"quote a name that holds an address or punctuation, like "
            f"{_quoted(value, bracketed or written)!r}"
        )


def _unclosed_comment(value: str) -> bool:
    """Whether *value* opens a comment, ``(``, outside a quoted string, and does not close
    it (comments nest; a backslash escapes the next character in both)."""
    depth = 0
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == '"' and not depth:
            quoted = True
    return depth > 0


def _quoted(value: str, address: str) -> str:
    """*value*'s text before its address, quoted as one name, before *address*."""
    name = value.split("<", 1)[0].strip().rstrip(";").strip()
    if address in name and "<" not in value:
        name = name.replace(address, "").strip()
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{address}>'


def expected_recipient(address: str) -> str:
    """The address as the ``To`` header of a message built for it writes it (ASCII domain)."""
    return str(_header_address("To", address)[0].addr_spec)


class MemoryMailer:
    """Keeps every message in ``outbox``, like Django's ``mail.outbox``."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)

    def __repr__(self) -> str:
        return f"<MemoryMailer outbox={len(self.outbox)}>"


class FileMailer:
    """Writes one ``.eml`` file per message into *directory*, for development and demos.

    Files are named ``<time>-<n>.eml`` so a directory listing is in sending order.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from pathlib import Path  # pathlib costs ~4 ms at import

        self.directory: Path = Path(directory)

    def __repr__(self) -> str:
        return f"FileMailer({str(self.directory)!r})"

    def send(self, message: EmailMessage) -> None:
        """Write *message* to a new file, atomically: a temporary file (mode 0600) that is
        synced and then linked under its final name, so a crash never leaves an empty or
        half-written ``.eml``, and no file is ever overwritten. The directory is created
        0700; an existing one keeps its mode.

        The service hands over instead the bytes its last check before sending wrote and
        read (as it does to ``SmtpMailer``), so the file holds what was checked; a
        subclass that overrides this method is called with every message."""
        self._write(message.as_bytes())

    def _sends_wire(self) -> bool:
        """Whether the service may hand over checked bytes (``_send_checked``,
        ``_send_wire``) rather than call ``send()``: only while ``send()`` is this
        class's own, so a subclass's override sees every message."""
        return type(self).send is FileMailer.send

    def _send_checked(
        self,
        message: EmailMessage,
        wire: bytes | None,
        envelope_to: str | None,
        sender: str | None = None,
    ) -> None:
        """``send()`` of *wire*, the message as the last check before sending wrote and
        read it (``CRLF``), when given (a file has no envelope: *sender* is unused)."""
        self._write(message.as_bytes() if wire is None else _mail_file(wire))

    def _send_wire(self, wire: bytes, sender: str, envelope_to: str) -> None:
        """Write *wire*, a stored message as ``gate.stored_wire()`` checked it."""
        self._write(_mail_file(wire))

    def _write(self, data: bytes) -> None:
        import secrets
        import time

        tmp = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            tmp = self.directory / f".{stamp}-{secrets.token_hex(6)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            n = 0
            while True:
                path = self.directory / f"{stamp}-{n:04d}.eml"
                try:
                    # A link, not a rename: it never replaces a message another process
                    # just wrote under the same name.
                    os.link(tmp, path)
                    return
                except FileExistsError:
                    n += 1
                except PermissionError:
                    # A file system without hard links: rename, unless the name is taken.
                    if path.exists():
                        n += 1
                        continue
                    os.rename(tmp, path)
                    tmp = None
                    return
        except OSError as exc:
            raise StorageError(f"cannot write mail to {self.directory}: {exc.strerror}") from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _mail_file(wire: bytes) -> bytes:
    """*wire* (``CRLF`` line ends, as SMTP carries it) with the ``LF`` line ends of a mail
    file, as a Unix mail server stores what it receives: byte for byte the same text, and
    back to *wire* by the reverse replacement (a wire form has no bare ``LF``)."""
    return wire.replace(b"\r\n", b"\n")

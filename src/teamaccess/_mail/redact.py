"""An erased person taken out of mail to others: a queued message's text and headers, and a
delivery error's text.

A vendor's notice (``notify(..., text=...)``) may name the person in mail that waits for
other recipients, and a server's refusal may quote their address in another row's error.
The stored message holds the address encoded (quoted-printable, base64, RFC 2047), so it
is decoded with the library's own parser, the forms are replaced in the decoded text, and
the message is built again with ``build_message()``, as ``notify()`` built it. The new
bytes must pass the last check before sending and read back as the redacted text, or the
message is not rewritten at all (:class:`Unrewritable`).

This module loads with an erasure, never with ``import teamaccess``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from html.entities import codepoint2name
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = [
    "IN_THE_BYTES",
    "PLACEHOLDER",
    "UNREADABLE",
    "Redactor",
    "Unrewritable",
    "Verdicts",
    "free_text_needles",
    "named_parts",
    "redact_message",
]

#: What stands in a text to others where the person was named. Not the pseudonym: that
#: would tell the other recipient which audit entries are the person's.
PLACEHOLDER: Final = "[erased]"

#: A user id shorter than this is not looked for in free text: "42" or "1234" are far more
#: likely an amount or an invoice number there than the person.
MIN_FREE_TEXT_ID: Final = 6


def _names_person(user_id: str) -> bool:
    """Whether *user_id*, standing in free text, names the person: it has at least
    :data:`MIN_FREE_TEXT_ID` characters and a letter. An id of digits alone ("4711000", a
    database's serial number) is a number there, as likely an invoice number, an amount, a
    postcode or part of a phone number equal to it by chance; the fields that hold user
    ids (an event's actor and target, ``granted_by``, ``invited_by``) still find it."""
    return len(user_id) >= MIN_FREE_TEXT_ID and any(c.isalpha() for c in user_id)


# What may stand before an address's local part and after its domain, and still be part
# of a longer address ("x.pia@example.org", "pia@example.org.uk"). A sentence's full stop
# after the domain is not: "write to pia@example.org." names the address.
# An apostrophe inside a word is part of one too ("o'connor@example.org" is not
# "connor@example.org"); one after a space or at the start is a quote.
_BEFORE: Final = r"(?<![\w.+-])(?<!\w['\u2019])"
_AFTER: Final = r"(?![\w-]|\.[\w-])"
# The same, for the characters next to a match as the text reads there: a neighbour may be
# written as an escape ("pia&#46;connor@...", HTML's "o&#x27;connor@...").
_LONGER_BEFORE: Final = re.compile(r"(?:[\w.+-]|\w['\u2019])\Z")
_LONGER_AFTER: Final = re.compile(r"[\w-]|\.[\w-]")


def _char(c: str) -> str:
    """A pattern for one character of an address as a text may write it: itself, or (for
    the characters a mail text escapes) an HTML character reference, URL quoting or
    quoted-printable, in either case of the hex digits."""
    if c.isascii() and c != "@":
        return re.escape(c)
    code = ord(c)
    forms = [re.escape(c), f"&#0*{code};", f"&#x0*{code:x};"]
    # A text may hold a letter decomposed (NFD: "o" and a combining diaeresis, as macOS
    # writes file names and some keyboards type); the address is stored composed.
    for written in dict.fromkeys((c, unicodedata.normalize("NFD", c))):
        utf8 = written.encode()
        forms += [
            re.escape(written),
            "".join(f"%{b:02x}" for b in utf8),
            "".join(f"={b:02x}" for b in utf8),
        ]
    if code in codepoint2name:
        forms.append(f"&{codepoint2name[code]};")
    if c == "@":
        forms.append("&commat;")
    return "(?:" + "|".join(forms) + ")"


#: Characters that do not show, dropped from a text before an address is looked for in
#: it: "pia@exa\u200bmple.org" reads as the address.
_INVISIBLE: Final = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
#: One character written escaped: a JSON escape (a surrogate pair as one), an HTML
#: character reference, or one character's UTF-8 bytes percent-encoded.
_ESCAPE: Final = re.compile(
    r"\\u(?:d[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|[0-9a-f]{4})"
    r"|&(?:#[0-9]{1,7};?|#x[0-9a-f]{1,6};?|[a-z][a-z0-9]{1,31};)"
    r"|%[0-7][0-9a-f]|%[cd][0-9a-f]%[89ab][0-9a-f]|%e[0-9a-f](?:%[89ab][0-9a-f]){2}"
    r"|%f[0-7](?:%[89ab][0-9a-f]){3}",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def _unescaped(escape: str) -> str:
    """The character *escape* (a match of :data:`_ESCAPE`) stands for."""
    import html

    if escape[0] == "\\":
        units = [int(escape[i + 2 : i + 6], 16) for i in range(0, len(escape), 6)]
        if len(units) == 2:
            return chr(0x10000 + ((units[0] - 0xD800) << 10) + units[1] - 0xDC00)
        return chr(units[0])
    if escape[0] == "&":
        return html.unescape(escape)
    return bytes.fromhex(escape.replace("%", "")).decode("utf-8", "replace")


def _disguisable(text: str) -> bool:
    """Whether *text* may hold an address written otherwise than in plain ASCII (as every
    store's coarse search of free text finds it)."""
    from .._backends.search import disguised

    return disguised(text)


def _folded(text: str) -> str:
    """*text* as it reads: escapes decoded, compatibility forms (full-width letters, the
    full-width "@") replaced by their plain form (NFKC), invisible characters dropped."""
    import unicodedata

    if "\\" in text or "&" in text or "%" in text:
        text = _ESCAPE.sub(lambda m: _unescaped(m.group()), text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _INVISIBLE.sub("", text) if _INVISIBLE.search(text) else text


def _continued(match: re.Match[str]) -> bool:
    """Whether the characters next to *match* (in the text as written) read as more of
    a longer address: an escaped neighbour is read as the character it stands for."""
    text, start, end = match.string, match.start(), match.end()
    # 16 characters hold the longest escape before (a JSON surrogate pair is 12).
    before = _folded(text[max(0, start - 16) : start])
    return bool(_LONGER_BEFORE.search(before) or _LONGER_AFTER.match(_folded(text[end : end + 32])))


def _units(text: str) -> tuple[str, list[int], list[int]]:
    """:func:`_folded`, a character or escape at a time, with where each folded character
    comes from: the start and end in *text* of the character or escape it was read from."""
    import unicodedata

    folded: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    for m in _ESCAPE.finditer(text):
        pieces = [(i, i + 1, text[i]) for i in range(at, m.start())]
        pieces.append((m.start(), m.end(), _unescaped(m.group())))
        for start, end, piece in pieces:
            read = _INVISIBLE.sub("", unicodedata.normalize("NFKC", piece))
            folded.append(read)
            starts += [start] * len(read)
            ends += [end] * len(read)
        at = m.end()
    for i in range(at, len(text)):
        read = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text[i]))
        folded.append(read)
        starts += [i] * len(read)
        ends += [i + 1] * len(read)
    return "".join(folded), starts, ends


class Redactor:
    """Finds one person in free text and replaces them with *replacement*
    (:data:`PLACEHOLDER` unless given).

    *addresses*: every form of their addresses (as typed, normalised, the ASCII domain);
    the match ignores case and also finds the escaped forms :func:`_char` lists, and the
    address in a text as it reads (:func:`_folded`): written with JSON escapes, HTML
    character references or percent-encoding of any character, full-width letters or "@",
    invisible characters inside. A user id is found as written, as a whole word, if it is
    at least :data:`MIN_FREE_TEXT_ID` long and holds a letter (see :func:`_names_person`).
    """

    def __init__(
        self, addresses: Iterable[str], user_ids: Iterable[str], replacement: str = PLACEHOLDER
    ) -> None:
        self.replacement = replacement
        forms = sorted({a for a in addresses if a}, key=len, reverse=True)
        ids = sorted({u for u in user_ids if _names_person(u)}, key=len, reverse=True)
        alternatives = [_BEFORE + "(?:" + "".join(map(_char, f)) + ")" + _AFTER for f in forms]
        self._addresses = re.compile("|".join(alternatives), re.IGNORECASE) if forms else None
        self._folded_forms = tuple({unicodedata.normalize("NFKC", f).lower() for f in forms})
        # An id is not part of a longer word or of an address ("user-7@other.example",
        # "x@user-7.example" are someone else's).
        alternatives += [rf"(?<![\w.@+-]){re.escape(u)}(?![\w-]|[.@][\w-])" for u in ids]
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def found(self, text: str | None) -> bool:
        if text is None or self._pattern is None:
            return False
        return self._search(self._pattern, text) or self._found_disguised(text)

    @staticmethod
    def _search(pattern: re.Pattern[str], text: str) -> bool:
        return any(not _continued(m) for m in pattern.finditer(text))

    def found_address(self, text: str) -> bool:
        """Whether *text* holds one of the person's addresses (their ids not counted)."""
        if self._addresses is None:
            return False
        return self._search(self._addresses, text) or self._found_disguised(text)

    def _found_disguised(self, text: str) -> bool:
        if self._addresses is None or not _disguisable(text):
            return False
        folded = _folded(text)
        # A substring search first: the address reads as itself in the folded text, and
        # most texts (a notification's parts, parsed for every erasure) do not hold it.
        lowered = folded.lower()
        if not any(form in lowered for form in self._folded_forms):
            return False
        return bool(self._addresses.search(folded))

    def sub(self, text: str) -> str:
        if self._pattern is None:
            return text
        text = self._pattern.sub(lambda m: m.group() if _continued(m) else self.replacement, text)
        if self._addresses is None or not self._found_disguised(text):
            return text
        # An address written otherwise: found in the text as it reads, and the characters
        # and escapes it was read from replaced, the rest of the text left as it is.
        folded, starts, ends = _units(text)
        spans: list[list[int]] = []
        for m in self._addresses.finditer(folded):
            start, end = starts[m.start()], ends[m.end() - 1]
            if spans and start < spans[-1][1]:  # read from one escape or character
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        for start, end in reversed(spans):
            text = text[:start] + self.replacement + text[end:]
        if self._found_disguised(text):
            # Folded as a whole it still reads as the address (a form that reads so only
            # across characters, say a letter and a combining mark apart): the whole text.
            return self.replacement
        return text

    def found_value(self, value: object) -> bool:
        """Whether *value* (a string, or a list or mapping of them, nested) names the person."""
        if isinstance(value, str):
            return self.found(value)
        if isinstance(value, Mapping):
            return any(self.found_value(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.found_value(v) for v in value)
        return False

    def sub_value(self, value: Any) -> Any:
        """*value* with :meth:`sub` applied to every string in it (keys stay)."""
        if isinstance(value, str):
            return self.sub(value)
        if isinstance(value, Mapping):
            return {k: self.sub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.sub_value(v) for v in value]
        return value


def free_text_needles(addresses: Iterable[str], user_ids: Iterable[str]) -> set[str]:
    """Texts for a store's coarse search (which folds A-Z only) that every way of writing
    one of *addresses* in free text contains: an ASCII address itself; for one that is
    not ASCII, each run of four or more ASCII characters of its domain (the domain's
    other letters may be in any case there). And each user id :class:`Redactor` looks for.
    (A store's search also finds text that may hold an address written otherwise:
    ``teamaccess._backends.search.disguised``.)"""
    found = {u for u in user_ids if _names_person(u)}
    for address in addresses:
        if address.isascii():
            found.add(address)
        else:
            found.update(re.findall(r"[!-~]{4,}", address.rpartition("@")[2]))
            found.add(address.upper())
    return found


class Unrewritable(Exception):
    """The message cannot be rewritten safely; the text says why (never quoting it)."""


#: Headers the service writes from its own settings and the row: the person in one of
#: them is not a vendor's text, and changing it would change where the mail goes.
_FIXED: Final = ("From", "To", "Date", "Message-ID", "Content-Language")


def _parts(msg: EmailMessage) -> tuple[EmailMessage, EmailMessage | None]:
    """The text part and the HTML part (if any) of a message of the builder's shape."""
    from email.message import EmailMessage

    if not msg.is_multipart():
        if msg.get_content_type() != "text/plain":
            raise Unrewritable(f"it is {msg.get_content_type()}, not a message the library built")
        return msg, None
    payload = msg.get_payload()
    parts = [p for p in payload if isinstance(p, EmailMessage)] if isinstance(payload, list) else []
    if (
        msg.get_content_type() != "multipart/alternative"
        or not isinstance(payload, list)
        or len(parts) != len(payload)
        or [p.get_content_type() for p in parts] != ["text/plain", "text/html"]
    ):
        raise Unrewritable("its parts are not the text and HTML parts the library builds")
    return parts[0], parts[1]


def _read(msg: EmailMessage) -> tuple[dict[str, str], str, str | None]:
    headers = {}
    for name in (*_FIXED, "Subject"):
        value = msg[name]
        if value is None and name != "Subject":
            raise Unrewritable(f"it has no {name} header")
        headers[name] = "" if value is None else str(value)
    text_part, html_part = _parts(msg)
    text = text_part.get_content()
    html = None if html_part is None else html_part.get_content()
    if not isinstance(text, str) or not (html is None or isinstance(html, str)):
        raise Unrewritable("a part of it is not text")
    return headers, text, html


def _named(
    headers: dict[str, str], text: str, html: str | None, redactor: Redactor
) -> dict[str, str]:
    """The headers and parts of a message that name the person, as they read."""
    # The headers the service writes hold its own settings, the recipient and generated
    # values: an id there is a word of the vendor's sender ("Support <support@...>") or of
    # a Message-ID, never the person; only their address there is them.
    found = {name: headers[name] for name in _FIXED if redactor.found_address(headers[name])}
    for name, value in (("Subject", headers["Subject"]), ("text", text), ("html", html)):
        if value is not None and redactor.found(value):
            found[name] = value
    return found


def named_parts(source: bytes, redactor: Redactor) -> dict[str, str]:
    """Where *source* (a stored message) names the person, as :func:`redact_message`
    finds them: the subject, the text and HTML parts, and a header the service writes
    that holds their address, each as it reads; empty if it names them nowhere. A
    message that is not of the builder's shape or cannot be read is searched as the
    erasure searches it (:func:`_named_leniently`), so every message the erasure
    rewrites, cancels or drops is listed."""
    from email.errors import MessageError

    from .policies import parse_stored

    try:
        headers, text, html = _read(parse_stored(source))
    except (Unrewritable, MessageError, LookupError, ValueError, TypeError, AttributeError):
        return _named_leniently(source, redactor)
    return _named(headers, text, html, redactor)


#: The transfer encodings a part's body may have that the lenient reader decodes, and
#: those a multipart or message part may have (RFC 2045, 6.4).
_DECODED: Final = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})
_BARE: Final = frozenset({"7bit", "8bit", "binary"})

#: What :func:`_named_leniently` says of a message it cannot search whole: it may name
#: the person, and it never quotes it.
UNREADABLE: Final = (
    "a damaged message (its parts or encodings cannot be read whole); it may name the person"
)
#: What it says of a message whose bytes name the person where no decoded part does.
IN_THE_BYTES: Final = "a damaged message whose stored bytes name the person"


def _named_leniently(source: bytes, redactor: Redactor) -> dict[str, str]:
    """Where *source*, a stored message that is not of the builder's shape or cannot be
    read as one (a damaged or foreign row), names the person: each header (by its name,
    lower case) and each part (``text``, ``html``, or its content type) that names them
    as a lenient reader decodes them (RFC 2047 words, quoted-printable, base64), or
    ``message`` where only its bytes as they stand do (quoted-printable soft line breaks
    joined). A message that names someone else is none of the erasure's business and
    stays as it is (empty). One that even the lenient reader fails on may name them:
    ``message`` is then :data:`UNREADABLE`."""
    from email import message_from_bytes
    from email import policy as email_policy
    from email.header import decode_header, make_header

    found: dict[str, str] = {}

    def note(where: str, text: str) -> None:
        if redactor.found(text):
            found[where] = f"{found[where]}\n{text}" if where in found else text

    try:
        msg = message_from_bytes(source, policy=email_policy.compat32)
        for part in msg.walk():
            # What the reader could not take apart as written (a boundary that is not
            # there, an encoding it does not know, a nested message in base64) it
            # leaves encoded, and the person may be in it: such a message counts as
            # naming them.
            encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
            nested = part.get_content_maintype() in ("multipart", "message")
            if part.defects or encoding not in (_BARE if nested else _DECODED):
                return {"message": UNREADABLE}
            for name, value in part.items():
                note(name.lower(), str(make_header(decode_header(str(value)))))
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    decoded = payload.decode(charset, "replace")
                except LookupError:  # a charset Python does not know
                    decoded = payload.decode("utf-8", "replace")
                kind = part.get_content_type()
                note(_PART_NAMES.get(kind, kind), decoded)
    except Exception:  # whatever fails, the message may name them
        return {"message": UNREADABLE}
    if not found and any(
        redactor.found(text.decode("utf-8", "replace"))
        for text in (source, re.sub(rb"=\r?\n", b"", source))
    ):
        found["message"] = IN_THE_BYTES
    return found


#: How :func:`_named_leniently` names a part of the types the builder writes, as
#: :func:`named_parts` names them in a message of the builder's shape.
_PART_NAMES: Final = {"text/plain": "text", "text/html": "html"}


def _named_anywhere(source: bytes, redactor: Redactor) -> bool:
    """Whether *source*, a damaged or foreign message, names the person anywhere (see
    :func:`_named_leniently`)."""
    return bool(_named_leniently(source, redactor))


def _raw(msg: EmailMessage, name: str) -> str:
    """The first *name* header of *msg* as it is written (folded lines and all)."""
    return next(str(value) for key, value in msg.raw_items() if key.lower() == name.lower())


def _with_raw(msg: EmailMessage, name: str, raw: str) -> EmailMessage:
    """*msg* with its *name* header written as *raw*, in the same place among the others."""
    items = list(msg.raw_items())
    for key in dict.fromkeys(key.lower() for key, _ in items):
        del msg[key]
    for key, value in items:
        msg.set_raw(key, raw if key.lower() == name.lower() else value)
    return msg


def _squeezed(value: str) -> str:
    return "".join(value.split())


def redact_message(source: bytes, recipient: str, redactor: Redactor) -> bytes | None:
    """*source* (a stored message to *recipient*) with the person replaced in its subject
    and text parts, built anew; ``None`` if the person is not in it (a message that is not
    of the builder's shape, or cannot be read, included: see :func:`_named_anywhere`).

    Raises :class:`Unrewritable` if it cannot be done safely: the message names the
    person but is not of the builder's shape, the person is in a header the service
    writes itself, or the new bytes would not pass the last check before sending or
    read back differently.
    """
    from email.errors import MessageError
    from email.utils import parsedate_to_datetime

    from .._errors import TeamAccessError
    from .builder import build_message
    from .gate import MailRefused, check_stored, check_wire
    from .policies import parse_stored

    try:
        original = parse_stored(source)
        headers, text, html = _read(original)
    except Unrewritable:
        # Not of the builder's shape: it is only the erasure's business if it names them.
        if not _named_anywhere(source, redactor):
            return None
        raise
    except (MessageError, LookupError, ValueError, TypeError, AttributeError) as exc:
        if not _named_anywhere(source, redactor):
            return None
        raise Unrewritable(f"it cannot be read ({type(exc).__name__})") from None
    named = _named(headers, text, html, redactor)
    if not named:
        return None
    fixed = [name for name in _FIXED if name in named]
    if fixed:
        raise Unrewritable(f"the person is in its {', '.join(fixed)} header")
    # Stripped: a UTF-8 header is read back with a space before its value, and white
    # space at the end can be folded onto a line of its own, which the last check refuses.
    subject, text = redactor.sub(headers["Subject"]).strip(), redactor.sub(text)
    html = None if html is None else redactor.sub(html)
    try:
        # The From header is kept as it is stored, not built again from the name as it
        # reads: Python 3.11 reads a long name that is not ASCII (encoded words split over
        # lines) back with a space more at the split, which the builder refuses, so every
        # such message was cancelled. The builder is given the address alone, for the
        # policy (an address that is not ASCII makes it a UTF-8 mail).
        built = build_message(
            sender=original["From"].addresses[0].addr_spec,
            to=recipient,
            subject=subject,
            text=text,
            html=html,
            message_id=headers["Message-ID"],
            language=headers["Content-Language"],
            date=parsedate_to_datetime(headers["Date"]),
        )
        rebuilt = _with_raw(built, "From", _raw(original, "From")).as_bytes()
        # The last check before sending, as deliver_pending() runs it on the stored bytes.
        check_stored(rebuilt)
        check_wire(parse_stored(rebuilt), recipient)
        again = _read(parse_stored(rebuilt))
    except (
        MailRefused, TeamAccessError, MessageError, ValueError, TypeError, AttributeError,
        IndexError,
    ) as exc:  # fmt: skip
        raise Unrewritable(f"its rewritten form is refused ({type(exc).__name__})") from None
    headers_again, text_again, html_again = again
    if redactor.found_value([headers_again["Subject"], text_again, html_again]) or any(
        redactor.found_address(headers_again[name]) for name in _FIXED
    ):
        raise Unrewritable("its rewritten form still names the person")
    # The stdlib reads a subject's white space back differently from what it was given
    # (a space before a UTF-8 header's value, or between two encoded words, comes or
    # goes), as it did for the message as first built: only the rest must be equal.
    if (
        _squeezed(headers_again.pop("Subject")) != _squeezed(subject)
        or headers_again != {k: v for k, v in headers.items() if k != "Subject"}
        or (text_again, html_again) != (text, html)
    ):
        raise Unrewritable("its rewritten form reads back differently")
    return rebuilt


#: How many bytes of rewritten messages :class:`Verdicts` keeps at most; a message past
#: that is rewritten again in the write unit (a vendor's notice naming the person, sent to
#: a very large list).
KEPT_BYTES: Final = 64 * 1024 * 1024


class Verdicts:
    """What :func:`redact_message` said of stored messages, worked out before the
    erasure's write unit opens and looked up in it, so the unit does not parse them while
    other writers wait.

    Kept by a digest of the recipient and the message's bytes: a message added or changed
    between the two is a miss and is parsed in the unit, as every message was before.
    Only a digest and the verdict are kept (the rewritten bytes for the few messages that
    name the person, up to :data:`KEPT_BYTES`), never every message.
    """

    def __init__(self, redactor: Redactor, who: object = None) -> None:
        self.redactor = redactor
        self.who = who  # whom the redactor looks for, as the caller tells them apart
        self._known: dict[bytes, bytes | str | None] = {}
        self._kept = 0

    @staticmethod
    def _digest(source: bytes, recipient: str) -> bytes:
        import hashlib

        digest = hashlib.blake2b(recipient.encode("utf-8", "surrogatepass"), digest_size=16)
        digest.update(b"\0")  # a recipient holds no NUL: where it ends is unambiguous
        digest.update(source)
        return digest.digest()

    def learn(self, source: bytes, recipient: str) -> None:
        """Work out and keep the verdict on *source*, a stored message to *recipient*."""
        verdict: bytes | str | None
        try:
            verdict = redact_message(source, recipient, self.redactor)
        except Unrewritable as exc:
            verdict = str(exc)
        if isinstance(verdict, bytes):
            if self._kept + len(verdict) > KEPT_BYTES:
                return
            self._kept += len(verdict)
        self._known[self._digest(source, recipient)] = verdict

    def redact(self, source: bytes, recipient: str) -> bytes | None:
        """As :func:`redact_message`, from the kept verdict where there is one."""
        key = self._digest(source, recipient)
        if key not in self._known:
            return redact_message(source, recipient, self.redactor)
        verdict = self._known[key]
        if isinstance(verdict, str):
            raise Unrewritable(verdict)
        return verdict

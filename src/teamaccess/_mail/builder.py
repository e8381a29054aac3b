"""Building a message: :func:`build_message` makes the multipart/alternative mail the
service sends, every header value checked for line breaks first, and headers a caller
adds checked so the last check before sending never refuses what it built."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from .._emails import check_line
from .._errors import ValidationError
from .addresses import _header_address
from .policies import _policy, wire_policy
from .sender import _Q_LITERAL, _address_field

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["build_message"]


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
    # Folded by the stdlib, a long subject with a run of spaces or a tab loses it: a run
    # between two long words is written as a line of white space alone (which some
    # servers read as the end of the headers; the last check refuses such a mail), and a
    # fold at a run is read back as one space. As encoded words, each space and tab is
    # text inside a word and reads back as typed.
    spaced = len(subject) > _SUBJECT_ROOM and ("  " in subject or "\t" in subject)
    msg = EmailMessage(policy=_policy(utf8))
    msg["From"] = _address_field(utf8, "From", sender)
    msg["To"] = str(_header_address("To", to)[0])
    msg["Date"] = format_datetime(date) if date is not None else format_datetime(datetime.now(UTC))
    folded = _utf8_folded(subject) if utf8 and not subject.isascii() else None
    if folded is not None:
        msg.set_raw("Subject", folded)
    elif (
        not spaced
        and (subject.isascii() or (utf8 and _fits(subject)))
        and max(map(len, subject.split(" "))) <= _SUBJECT_WORD
        and len(subject.split(" ", 1)[0]) <= _SUBJECT_ROOM
    ):
        msg["Subject"] = subject
    else:
        # Written as encoded words by hand: Python 3.11's folder can drop the space
        # between two encoded words at a fold, so the check before sending refused the
        # mail sent now, and mail sent from the outbox arrived with words run together.
        # It writes an ASCII word too long for a line as such words too, and drops the
        # spaces around it. A first word too long for the line of ``Subject:`` it folds
        # onto the next line, and Python 3.11's parser reads that fold back as a leading
        # space of the subject: such a subject goes here too.
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


def _fits(subject: str) -> bool:
    """Whether ``Subject: `` and *subject* fit on one line of 78 bytes as UTF-8."""
    return len(b"Subject: ") + len(subject.encode("utf-8", "surrogatepass")) <= 78


def _utf8_folded(subject: str) -> str | None:
    """Non-ASCII *subject* (SMTPUTF8 mail) written as UTF-8, folded at its spaces into
    lines of at most 78 bytes; ``None`` if it fits on one line (the stdlib writes it as
    it is) or cannot be folded so, and is written as the stdlib or :func:`_encoded_words`
    writes it, as before.

    Python 3.11's folder measures a line in characters: a UTF-8 subject went out in a
    line of up to 78 characters, each of up to 4 bytes, where RFC 5322 asks for 78 bytes
    at most. A fold goes only at a single space (a fold is the space read back); a word
    too long for a line (CJK or emoji without spaces), a run of spaces, a character that
    is not printable or text that looks like an encoded word (which a reader would
    decode) goes to encoded words, every line of which fits.
    """
    if _fits(subject):
        return None
    if not subject.isprintable() or "  " in subject or "=?" in subject:
        return None
    lines: list[str] = []
    line = ""
    room = 78 - len("Subject: ")
    for word in subject.split(" "):
        size = len(word.encode("utf-8", "surrogatepass"))
        if not line:
            line = word
        elif len(line.encode("utf-8", "surrogatepass")) + 1 + size <= room:
            line = f"{line} {word}"
        else:
            lines.append(line)
            line, room = word, 78 - 1  # a continuation line starts with the space
        if len(line.encode("utf-8", "surrogatepass")) > room:
            return None
    lines.append(line)
    return "\n ".join(lines)


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
    # Here, not at the top: loading the mailers (MemoryMailer alone) loads no last check.
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

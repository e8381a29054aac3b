"""The email policies mail is written and read with, and the caches that make them
cheap: headers parsed once and shared, header values read back once, header objects
folded once. The builder writes with :func:`_policy`; the last check and the queue read
with :func:`parsing_policy` and write the wire form with :func:`wire_policy`."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final, Self, cast

if TYPE_CHECKING:
    from email.message import EmailMessage
    from email.policy import EmailPolicy

__all__ = ["parse_stored", "parsing_policy", "wire_policy"]


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

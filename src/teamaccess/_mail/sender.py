"""Writing the sender's name into the ``From`` header so that every reader reads it
back as given: a name that is not ASCII as encoded words made here, an ASCII name that
needs quoting as one quoted string folded inside its quotes. Python 3.11's own folder
gets both wrong for long names (see :func:`_address_field`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, cast

from .addresses import _header_address
from .policies import _policy

if TYPE_CHECKING:
    from email.headerregistry import HeaderRegistry
    from email.message import EmailMessage
    from email.policy import EmailPolicy

__all__ = ["unencodable_word", "unfoldable_quoted"]


# Characters an encoded word of the "Q" form may hold as they are, in any header (RFC 2047
# section 5, rule 3); a space is "_", anything else "=XX" for each of its UTF-8 bytes.
_Q_LITERAL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


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

        # No run of spaces to fold at: a sender with one in its name is refused before
        # (addresses._one_space), as reading a name split into encoded words gives back,
        # on Python 3.11, a space more at the split.
        name = address.display_name.strip(" ")
        address = Address(display_name=name, username=address.username, domain=address.domain)
        lines = _phrase_lines(name, address.addr_spec, len(header) + 2)
        if lines is not None:
            field = _hand_folded(factory[header])(header, address)
            field.lines = lines
            field.made_from = (utf8, header, value)
            return cast("str", field)
    elif _needs_quoting(address.display_name):
        from email.headerregistry import Address

        # No run of spaces, as in a name that is not ASCII (refused before): a fold at
        # one would leave a line of white space alone.
        name = address.display_name.strip(" ")
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
    word too long for a line, a tab, which a fold could turn into a line of white space
    alone), and the stdlib writes it, as before. *name* holds no run of spaces: a sender
    with one is refused before (``addresses._one_space``).

    Python 3.11's folder breaks a quoted string that does not fit on a line into words
    outside the quotes: a name with a colon or a semicolon was then read as a group, one
    with a comma as two addresses, one with parentheses as a comment, and the last check
    refused every mail from that sender. A fold inside a quoted string is white space
    kept in it (RFC 5322 section 3.2.4): every reader unfolds it back to the name.
    """
    if not name.isascii() or not name.isprintable():
        return None
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    tokens = [*quoted.split(" "), f"<{addr_spec}>"]
    if indent + len(quoted) + 1 + len(tokens[-1]) <= 78:
        return None
    return _packed(tokens, indent)


def unfoldable_quoted(value: str) -> str | None:
    """Why the ASCII name of sender *value*, written as one quoted string too long for a
    line, cannot be folded as :func:`_quoted_lines` folds it (so the stdlib writes it,
    and Python 3.11 breaks it into words outside the quotes), as a sentence saying what
    to change; ``None`` if it can, or is not such a name.

    A fold goes only at a space: a word that does not fit on a line cannot be folded,
    and a tab (or another control character) is kept out of the folded form, since a
    fold next to it leaves a line of white space alone, which some servers read as the
    end of the headers.
    """
    address = _header_address("From", value)[0]
    if not address.display_name.isascii() or not _needs_quoting(address.display_name):
        return None
    name = address.display_name.strip(" ")
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _INDENT + len(quoted) + len(f" <{address.addr_spec}>") <= 78:
        return None  # on one line, as the stdlib writes it
    odd = next((char for char in name if not char.isprintable()), None)
    if odd is not None:
        what = "a tab" if odd == "\t" else f"the control character {odd!r}"
        return (
            f"its name holds {what}, and a name in quotes this long is folded onto several "
            "lines of a mail header, which cannot be done safely around it; replace it "
            "with a space"
        )
    for index, (word, token) in enumerate(zip(name.split(" "), quoted.split(" "), strict=True)):
        room = 78 - _INDENT if index == 0 else 77  # a continuation line starts with a space
        if len(token) > room:
            shown = repr(word) if len(word) <= 40 else repr(word[:20] + "..." + word[-8:])
            return (
                f"the word {shown} of its name is {len(word)} characters long, too long "
                "for a line of a mail header inside the quotes around the name; put a "
                f"space in it or shorten it to at most {_WORD_IN_QUOTES} characters"
            )
    return None


#: Where a ``From`` header's value starts: after ``From: ``.
_INDENT: Final = len("From: ")
#: The longest word of a quoted name that fits on a line wherever it stands: the first
#: one shares its line with ``From: "``.
_WORD_IN_QUOTES: Final = 78 - _INDENT - 2


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

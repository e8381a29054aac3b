"""Reading a sender or recipient argument as a mail header's parser will: the address
it names (its domain in ASCII), and a clear refusal where the parser would read another
address, several, a group, or lose the name."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Final, cast

from .._errors import ValidationError

if TYPE_CHECKING:
    from email.headerregistry import Address, AddressHeader

__all__ = ["expected_recipient"]


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
        _one_space(value, name)
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


def _one_space(value: str, name: str) -> None:
    """Refuse a sender whose name holds several spaces in a row: a mail program reads a
    run of spaces in a name outside quotes as one, and the builder writes a long name
    (quoted, or encoded words) folded at its spaces, where a run would leave a line of
    white space alone; the name would go out otherwise than typed."""
    written = value[: value.rfind("<")] if "<" in value else name
    if "  " not in written.strip() and "  " not in name.strip(" "):
        return
    single = " ".join(filter(None, value.split(" ")))
    raise ValidationError(
        f"sender {value!r}: its name holds several spaces in a row, which a mail header "
        f"writes as one; write one space between words, like {single!r}"
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

"""Address normalisation and single-line checks."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Final

import attrs

from ._errors import InvalidEmail, ValidationError
from ._repr import attrs_repr, eq_hash

__all__ = [
    "BREAKS",
    "NAME_LIMIT",
    "SUBJECT_LIMIT",
    "TEXT_LIMIT",
    "Address",
    "check_length",
    "check_line",
    "check_name",
    "check_no_encoded_word",
    "email_key",
    "normalize_email",
]


# NUL and every character str.splitlines() breaks at: besides CR and LF, the stdlib email
# package refuses U+2028, U+0085, VT, FF and the rest in a header with a bare ValueError.
_BREAKS = BREAKS = frozenset("\r\n\0\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def check_line(what: str, value: object) -> str:
    """Reject anything that could break a mail header or a log line."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    # isprintable() is one C loop that is true for ordinary text (this runs on every
    # address and name); only text with a control or separator character looks closer.
    if not value.isprintable():
        if not _BREAKS.isdisjoint(value):
            raise ValidationError(
                f"{what} contains a line break or NUL character; pass a single line of text"
            )
        try:
            value.encode()
        except UnicodeEncodeError:
            # A lone surrogate (a byte a lenient decode could not read) cannot be stored
            # in SQLite or put in a mail: refused here rather than at the first invite().
            raise ValidationError(
                f"{what} is not valid Unicode text (it holds a lone surrogate); decode the "
                "input as UTF-8 before passing it"
            ) from None
    return value


#: The longest name (account, contact, contact details) in characters.
NAME_LIMIT = 200
#: The longest notification subject in characters.
SUBJECT_LIMIT = 500
#: The longest notification text or HTML in characters.
TEXT_LIMIT = 100_000


def _encoded_word(value: str) -> bool:
    # An RFC 2047 encoded word is "=?charset?encoding?text?=". Any "=?" followed later by
    # "?=" is refused: the stdlib decodes loosely formed ones too.
    start = value.find("=?")
    return start != -1 and value.find("?=", start + 2) != -1


def check_no_encoded_word(
    what: str, value: str, error: type[ValidationError] = ValidationError
) -> str:
    """Refuse RFC 2047 encoded-word syntax (``=?utf-8?q?...?=``) in *value*.

    In a name or an address it can only be an attack: the stdlib decodes it when the value
    is put in a mail header, and on Python before 3.11.10 / 3.12.5 a decoded CR/LF becomes
    new header lines (CPython gh-121650).
    """
    if _encoded_word(value):
        raise error(
            f"{what} contains RFC 2047 encoded-word syntax ('=?...?='), which a mail program "
            "would decode; pass the plain text (teamaccess encodes what a mail needs)"
        )
    return value


def check_length(what: str, value: str, limit: int) -> str:
    """*value* if it has at most *limit* characters, else a ``ValidationError``."""
    if len(value) > limit:
        raise ValidationError(
            f"{what} is {len(value)} characters long; the limit is {limit}, shorten it"
        )
    return value


def check_name(what: str, value: object, limit: int = NAME_LIMIT) -> str:
    """A name shown in mail (account, contact): one line, not empty, at most *limit*
    characters, no encoded word. Returns it stripped."""
    check_line(what, value)
    assert isinstance(value, str)
    value = value.strip()
    if not value:
        raise ValidationError(f"{what} must not be empty")
    check_length(what, value, limit)
    return check_no_encoded_word(what, value)


@eq_hash
@attrs.frozen(eq=False)
class Address:
    """A validated address: ``email`` to show and send to, ``key`` to compare."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    email: str
    key: str


#: Top-level domains email-validator refuses without ``test_environment`` (its
#: ``SPECIAL_USE_DOMAIN_NAMES``; a test keeps the two equal).
_SPECIAL_USE: Final = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_PLAIN: list[re.Pattern[str]] = []

#: The special-use names in force, as the fast path matches them: one-label names, and
#: names of several labels; ``None`` if email-validator's list is no list of names.
_Names = tuple[frozenset[str], tuple[str, ...]] | None
_DEFAULT: Final[_Names] = (_SPECIAL_USE, ())
#: email-validator's list as last read (a copy, to see a change), and what it gave.
_IN_FORCE: list[tuple[list[object], _Names]] = []


def _special_use() -> _Names:
    """The special-use domain names the full check refuses, as the fast path reads them.

    email-validator documents ``SPECIAL_USE_DOMAIN_NAMES`` as a list a vendor may change
    (add its internal domains, drop one). Until the module is loaded nobody has changed
    it, and its import costs ~20 ms that the fast path saves; once loaded, its list is
    compared with the copy last read (a few string identities) and read again if it
    differs. The result is part of the address cache's key, so a changed list is never
    answered from before the change.
    """
    module = sys.modules.get("email_validator")
    if module is None:
        return _DEFAULT
    names = getattr(module, "SPECIAL_USE_DOMAIN_NAMES", None)
    if _IN_FORCE and names == _IN_FORCE[0][0]:
        return _IN_FORCE[0][1]
    read: _Names = None  # not a list of names: the full check meets it, for every address
    if isinstance(names, list | tuple) and all(isinstance(name, str) for name in names):
        labels = frozenset(name for name in names if "." not in name)
        read = (labels, tuple(name for name in names if "." in name))
    _IN_FORCE[:] = [(list(names) if isinstance(names, list | tuple) else [names], read)]
    return read


def _plain(value: str) -> Address | None:
    """:func:`_plain_under` the special-use names in force."""
    return _plain_under(value, _special_use())


def _plain_under(value: str, special_use: _Names) -> Address | None:
    """The address email-validator and the header check would make of *value*, if it is
    plain ASCII (a dot-atom of letters, digits and ``_+-`` at a domain of lower-hyphen-
    digit labels whose last ends in a letter, within every length limit); else ``None``,
    and the full check decides.

    Bulk imports validate a million addresses; the full check costs ~200 us each (most of
    it building a mail to prove the address fits a header), this ~2 us. A test compares
    the two on generated addresses: for every address this accepts, the full check gives
    the same result.
    """
    if not _PLAIN:
        _PLAIN.append(
            re.compile(
                r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@"
                r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                r"[A-Za-z0-9-]{0,62}[A-Za-z]",
                re.ASCII,
            )
        )
    if len(value) > 254 or not _PLAIN[0].fullmatch(value):
        return None
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    # IDNA refuses "--" in the third and fourth place of a label, and "xn--" labels are
    # Punycode to decode: both are left to the full check, as is anything long.
    if len(local) > 64 or len(domain) > 253 or "--" in domain or domain.startswith("-"):
        return None
    # A special-use name is a whole last label ("x.test", "localhost") or, added by a
    # vendor, several ("corp.example"), matched as email-validator matches them; the
    # regular expression has made sure there is a dot.
    if special_use is None:
        return None
    labels, longer = special_use
    tld = domain.rpartition(".")[2]
    if tld.startswith("-") or tld in labels:
        return None
    for name in longer:
        if domain == name or domain.endswith("." + name):
            return None
    return Address(f"{local}@{domain}", f"{local.lower()}@{domain}")


def _validate(value: str, check_deliverability: bool) -> Address:
    return _validate_cached(value, check_deliverability, _special_use())


@lru_cache(maxsize=4096)
def _validate_cached(value: str, check_deliverability: bool, special_use: _Names) -> Address:
    if not check_deliverability:
        plain = _plain_under(value, special_use)
        if plain is not None:
            return plain
    return _validate_fully(value, check_deliverability)


def _validate_fully(value: str, check_deliverability: bool) -> Address:
    # Imported on first use: compiling its regular expressions costs ~20 ms, a third of
    # the import-time budget.
    import email_validator

    try:
        result = email_validator.validate_email(
            value, check_deliverability=check_deliverability, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidEmail(f"{value!r} is not a valid email address: {exc}") from exc
    check_no_encoded_word(f"email address {value!r}", result.normalized, InvalidEmail)
    _check_renders(result.normalized)
    # The local part is case-insensitive in practice (every mailbox provider treats it so)
    # and the domain compares in its ASCII (punycode) form, so "Chef@Müller.de" and
    # "chef@xn--mller-kva.de" are one address. lower(), not casefold(): casefold also
    # folds "straße" into "strasse" and a long s (U+017F) into "s", which are other
    # mailboxes, and the key decides who may accept an invitation.
    key = f"{result.local_part.lower()}@{(result.ascii_domain or result.domain).lower()}"
    return Address(result.normalized, key)


def normalize_email(
    value: object, *, check_deliverability: bool = False, what: str = "email address"
) -> Address:
    """Validate *value* with email-validator; no DNS look-up unless asked.

    *what* names the parameter in the error for a value that is not a single line of text.
    """
    try:
        check_line(what, value)
    except ValidationError as exc:
        # A line break or NUL in an address is a bad address: callers catch InvalidEmail.
        if isinstance(value, str):
            raise InvalidEmail(str(exc)) from None
        raise
    assert isinstance(value, str)
    return _validate(value.strip(), check_deliverability)


def _check_renders(address: str) -> None:
    """An address the stdlib cannot write into a ``To`` header is refused when it is
    stored, not found out when the first mail to it is built (and fails every recipient)."""
    from email.errors import MessageError

    from ._mail.builder import build_message

    try:
        message = build_message(
            sender="x <x@example.com>", to=address, subject="x", text="x", html=None,
            message_id="<x@example.com>", language="en",
        )  # fmt: skip
        message.policy.fold("To", message["To"])
    except (MessageError, ValueError, LookupError, UnicodeError) as exc:
        raise InvalidEmail(
            f"{address!r} cannot be written into a mail header ({exc}); use another address"
        ) from None


def email_key(value: str) -> str:
    """The comparison key of an address that was already normalised."""
    return normalize_email(value).key

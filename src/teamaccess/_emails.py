"""Address normalisation and single-line checks."""

from __future__ import annotations

from functools import lru_cache

import attrs

from ._errors import InvalidEmail, ValidationError

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


@attrs.frozen
class Address:
    """A validated address: ``email`` to show and send to, ``key`` to compare."""

    email: str
    key: str


@lru_cache(maxsize=4096)
def _validate(value: str, check_deliverability: bool) -> Address:
    # Imported on first use: compiling its regular expressions costs ~20 ms, a third of
    # the import budget (issue 6).
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

    from ._mail.mailers import build_message

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

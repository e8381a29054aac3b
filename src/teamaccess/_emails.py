"""Address normalisation and single-line checks."""

from __future__ import annotations

from functools import lru_cache

import attrs

from ._errors import InvalidEmail, ValidationError

__all__ = ["Address", "check_line", "email_key", "normalize_email"]


# NUL and every character str.splitlines() breaks at: besides CR and LF, the stdlib email
# package refuses U+2028, U+0085, VT, FF and the rest in a header with a bare ValueError.
_BREAKS = frozenset("\r\n\0\v\f\x1c\x1d\x1e\x85\u2028\u2029")


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
    check_line(what, value)
    assert isinstance(value, str)
    return _validate(value.strip(), check_deliverability)


def email_key(value: str) -> str:
    """The comparison key of an address that was already normalised."""
    return normalize_email(value).key

"""Personal data: retention periods, the reports of an erasure, a purge and an account's
deletion, and how a person's id and address are recognised and replaced by a pseudonym
in stored text.

This module loads on first use (``teamaccess.Retention``, ``team.retention``, an export,
an erasure, a purge or an account's deletion), not with ``import teamaccess``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta

import attrs

from ._domain import check_period
from ._errors import ValidationError

__all__ = ["AccountDeletionReport", "ErasureReport", "PersonMatcher", "PurgeReport", "Retention"]


def _period(_instance: object, attribute: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationError(
            f"Retention.{attribute.name} must be a positive timedelta, e.g. "
            f"timedelta(days=90), not {value!r}"
        )
    # purge() subtracts it from the clock, which a longer one takes before year 1
    check_period(f"Retention.{attribute.name}", value)


@attrs.frozen
class Retention:
    """How long data that no rule needs any more is kept before ``purge()`` deletes it.

    - ``closed_invitations``: invitations accepted, declined, revoked or expired, counted
      from when they were closed (an unanswered invitation from when it expired);
    - ``sent_mail``: outbox rows that were sent (from ``sent_at``) or cancelled (from
      when they were written); mail still waiting is never purged;
    - ``audit_events``: audit events, from when they happened. Sends inside the rate
      limit's window are kept however short this is.
    """

    closed_invitations: timedelta = attrs.field(default=timedelta(days=90), validator=_period)
    sent_mail: timedelta = attrs.field(default=timedelta(days=30), validator=_period)
    audit_events: timedelta = attrs.field(default=timedelta(days=730), validator=_period)


@attrs.frozen
class ErasureReport:
    """What ``erase_person()`` removed, and the pseudonym that now stands for the person.

    ``user_ids`` and ``addresses`` say whom it found (the ids and addresses linked to the
    ones given through their memberships), so the caller can check; they are stored
    nowhere and left out of the repr.
    """

    pseudonym: str
    # Left out of the repr, so a report that is logged does not name the person again.
    user_ids: tuple[str, ...] = attrs.field(repr=False)
    addresses: tuple[str, ...] = attrs.field(repr=False)
    memberships: int = 0
    invitations: int = 0
    contacts: int = 0
    messages: int = 0
    #: audit events whose actor, target or details now carry the pseudonym
    events: int = 0
    #: pending invitations the person had sent, revoked with their membership
    revoked_invitations: int = 0
    #: mail to others (waiting or sent) whose text or delivery error named the person,
    #: now with ``[erased]`` in its place
    messages_redacted: int = 0
    #: mail waiting for others that named the person and could not be rewritten safely,
    #: cancelled instead (its ``last_error`` says so)
    messages_cancelled: int = 0
    #: rows of others whose free text named the person (an invitation's note or
    #: metadata, a member's metadata, a contact's name, company, phone or role), now with
    #: ``[erased]`` in its place
    texts_redacted: int = 0

    @property
    def removed(self) -> int:
        """Rows deleted: memberships, invitations, contacts and messages."""
        return self.memberships + self.invitations + self.contacts + self.messages


@attrs.frozen
class PurgeReport:
    """What ``purge()`` deleted."""

    invitations: int = 0
    messages: int = 0
    events: int = 0

    @property
    def total(self) -> int:
        return self.invitations + self.messages + self.events


@attrs.frozen
class AccountDeletionReport:
    """What ``delete_account()`` deleted: the account and how many rows of it."""

    account_id: str
    members: int = 0
    invitations: int = 0
    contacts: int = 0
    messages: int = 0
    events: int = 0

    @property
    def removed(self) -> int:
        """Rows deleted besides the account's own: members (the owner among them),
        invitations, contacts, messages and audit events."""
        return self.members + self.invitations + self.contacts + self.messages + self.events


# Characters that end an address inside a longer text ("invitee:a@b.org", "A <a@b.org>").
# Anything else next to a match would make it part of another address ("xa@b.org").
_EDGE = r"""\s:;,<>()\[\]"'"""


def _longer(match: re.Match[str]) -> bool:
    """Whether *match* is part of another person's longer address as the text reads, as
    free text is read for an erasure: an apostrophe inside a word ("o'connor@...") or an
    escaped neighbour ("o&#x27;connor@...", "x&#46;connor@...") is part of a local part."""
    from ._mail.redact import _continued

    return _continued(match)


class PersonMatcher:
    """Recognises one person in stored values: an id by equality, an address anywhere in
    a string (case-insensitively, as a whole address), and replaces both with a pseudonym.

    *addresses* are normalised addresses and their comparison keys (the ASCII form).
    """

    def __init__(self, user_ids: Iterable[str], addresses: Iterable[str]) -> None:
        self.user_ids = frozenset(user_ids)
        self.addresses = frozenset(addresses)
        self._pattern: re.Pattern[str] | None = None
        if self.addresses:
            # Longest first, so an address is never matched by a shorter one inside it.
            alternatives = "|".join(
                re.escape(a) for a in sorted(self.addresses, key=len, reverse=True)
            )
            self._pattern = re.compile(
                rf"(?<![^{_EDGE}])(?:{alternatives})(?![^{_EDGE}])", re.IGNORECASE
            )

    @property
    def needles(self) -> frozenset[str]:
        """Texts a stored value must contain to mention the person, for a store's coarse
        search (which folds A-Z only): each id, and each address; for an address whose
        local part is not ASCII (whose other cases a store cannot fold), its ``@domain``,
        which is stored normalised."""
        found = set(self.user_ids)
        for address in self.addresses:
            local, _, domain = address.rpartition("@")
            found.add(address if local.isascii() else "@" + domain.lower())
        return frozenset(found)

    def in_text(self, value: str) -> bool:
        if value in self.user_ids:
            return True
        return self._pattern is not None and any(
            not _longer(m) for m in self._pattern.finditer(value)
        )

    def in_value(self, value: object) -> bool:
        """Whether *value* (a string, or a list or mapping of them, nested) mentions the person."""
        if isinstance(value, str):
            return self.in_text(value)
        if isinstance(value, Mapping):
            return any(self.in_value(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.in_value(v) for v in value)
        return False

    def replace_text(self, value: str, pseudonym: str) -> str:
        if value in self.user_ids:
            return pseudonym
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: m.group() if _longer(m) else pseudonym, value)

    def replace_value(self, value: object, pseudonym: str) -> object:
        if isinstance(value, str):
            return self.replace_text(value, pseudonym)
        if isinstance(value, Mapping):
            return {k: self.replace_value(v, pseudonym) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.replace_value(v, pseudonym) for v in value]
        return value

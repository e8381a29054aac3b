"""Contacts and notifications: who receives which category of mail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._domain import (
    SYSTEM,
    Contact,
    Member,
    OutboxMessage,
)
from .._emails import (
    SUBJECT_LIMIT,
    check_length,
    check_line,
    check_name,
    check_no_encoded_word,
    normalize_email,
)
from .._errors import (
    AlreadyContact,
    ContactNotFound,
    TeamAccessError,
    ValidationError,
)
from .._ports import UnitOfWork

if TYPE_CHECKING:
    from email.message import EmailMessage
from .checks import (
    _CONTACT_FIELDS,
    _check_id,
    _check_ids,
    _check_text,
    _new_id,
    _no_account,
    _not_str,
    _numbered_id,
    _together,
    _token_hex,
)
from .delivery import _Delivery
from .delivery_rules import _leased

__all__ = ["_Contacts"]


class _Contacts(_Delivery):
    """Contacts and notifications: who receives which category of mail."""

    def _contact(self, uow: UnitOfWork, contact_id: str) -> Contact:
        contact = uow.get_contact(contact_id)
        if contact is None:
            raise _no_contact(contact_id)
        return contact

    def _contact_manager(self, uow: UnitOfWork, contact_id: str, actor_id: str) -> Contact:
        """The contact, once *actor_id* is found to hold ``contacts.manage`` in its
        account: the contact and the actor's membership in one read where the unit has
        ``contact_and_member()`` (``CombinedReads``)."""
        both = getattr(uow, "contact_and_member", None)
        if both is None:
            contact = self._contact(uow, contact_id)
            actor = None if actor_id == SYSTEM else uow.get_member(contact.account_id, actor_id)
        else:
            found: tuple[Contact | None, Member | None] = both(contact_id, actor_id)
            if found[0] is None:
                raise _no_contact(contact_id)
            contact, actor = found[0], None if actor_id == SYSTEM else found[1]
        held = self._held(contact.account_id, actor_id, actor)
        self._require_held(held, contact.account_id, actor_id, "contacts.manage")
        return contact

    @staticmethod
    def _contact_details(details: dict[str, Any], allowed: Sequence[str]) -> dict[str, str]:
        unknown = set(details) - set(allowed)
        if unknown:
            raise ValidationError(
                f"unknown contact field(s) {', '.join(sorted(unknown))}; use: " + ", ".join(allowed)
            )
        out = {}
        for key, value in details.items():
            if key == "email":
                out[key] = value  # normalize_email() checks it, as InvalidEmail
                continue
            check_line(f"contact {key}", value)
            value = value.strip()
            # A detail may be empty (to clear it), but is held to a name's other rules.
            out[key] = check_name(f"contact {key}", value) if value else value
        return out

    def add_contact(
        self,
        account_id: str,
        *,
        actor_id: str,
        name: str,
        email: str,
        categories: Iterable[str],
        **details: str,
    ) -> Contact:
        """Add someone who receives *categories* of mail; needs ``contacts.manage``.

        *details* may be ``company``, ``phone`` and ``role``.
        """
        _check_ids(account_id=account_id, actor_id=actor_id)
        name = check_name("contact name", name)
        address = normalize_email(
            email, check_deliverability=self.check_deliverability, what="email"
        )
        cats = _some_categories(self.categories.check(categories))
        extra = self._contact_details(details, _CONTACT_FIELDS)
        with self._write() as work:
            _, actor = self._account_actor(work.uow, account_id, actor_id)
            held = self._held(account_id, actor_id, actor)
            self._require_held(held, account_id, actor_id, "contacts.manage")
            _no_other_contact(work.uow, account_id, address.key, address.email)
            contact = Contact(
                id=_new_id("con"),
                account_id=account_id,
                name=name,
                email=address.email,
                categories=cats,
                created_at=work.now,
                **extra,
            )
            with _together(work.uow):  # the contact and its event, neither read back
                work.uow.add_contact(contact, address.key)
                self._audit(
                    work,
                    account_id,
                    actor_id,
                    "contact.added",
                    contact.id,
                    email=address.email,
                    categories=sorted(cats),
                )
        return contact

    def update_contact(self, contact_id: str, *, actor_id: str, **changes: Any) -> Contact:
        """Change ``name``, ``email``, ``categories``, ``company``, ``phone`` or ``role``."""
        _check_ids(contact_id=contact_id, actor_id=actor_id)
        # categories is allowed (and checked below), so the error names it among the fields
        fields = self._contact_details(
            {k: v for k, v in changes.items() if k != "categories"},
            ("name", "email", "categories", *_CONTACT_FIELDS),
        )
        if "categories" in changes:
            fields_cats: frozenset[str] | None = _some_categories(
                self.categories.check(changes["categories"])
            )
        else:
            fields_cats = None
        if "name" in fields:
            check_name("contact name", fields["name"])
        address = (
            normalize_email(fields["email"], check_deliverability=self.check_deliverability)
            if "email" in fields
            else None
        )
        with self._write() as work:
            contact = self._contact_manager(work.uow, contact_id, actor_id)
            update: dict[str, Any] = dict(fields)
            if address is not None:
                update["email"] = address.email
            if fields_cats is not None:
                update["categories"] = fields_cats
            updated = attrs.evolve(contact, **update)
            if updated == contact:
                return contact  # nothing changed, so nothing to write or audit
            key = (address or normalize_email(contact.email)).key
            if address is not None:
                _no_other_contact(work.uow, contact.account_id, key, address.email, contact.id)
            with _together(work.uow):  # the change and its event, neither read back
                work.uow.update_contact(updated, key)
                self._audit(
                    work,
                    contact.account_id,
                    actor_id,
                    "contact.updated",
                    contact_id,
                    changed=sorted(update),
                )
        return updated

    def remove_contact(self, contact_id: str, *, actor_id: str) -> None:
        """Delete the contact; needs ``contacts.manage``. Audited as ``contact.removed``."""
        _check_ids(contact_id=contact_id, actor_id=actor_id)
        with self._write() as work:
            contact = self._contact_manager(work.uow, contact_id, actor_id)
            with _together(work.uow):  # the delete and its event, neither read back
                work.uow.delete_contact(contact_id)
                self._audit(
                    work, contact.account_id, actor_id, "contact.removed", contact_id,
                    email=contact.email,
                )  # fmt: skip

    def get_contact(self, contact_id: str) -> Contact:
        """The contact; ``ContactNotFound`` if there is none."""
        _check_id("contact_id", contact_id)
        with self._read() as uow:
            return self._contact(uow, contact_id)

    def contacts(self, account_id: str) -> list[Contact]:
        """The account's contacts, oldest first."""
        _check_id("account_id", account_id)
        with self._read() as uow:
            self._account(uow, account_id)
            return uow.contacts(account_id)

    def recipients(self, account_id: str, category: str) -> list[str]:
        """The owner's address, then every contact subscribed to *category*, without duplicates."""
        if type(account_id) is not str:  # the hot path: the full check only on a miss
            _not_str(account_id=account_id)
        if category not in self.categories:
            _not_str(category=category)
            self.categories.check([category])
        found = self._store.recipients(account_id, category)
        if found is None:
            raise _no_account(account_id)
        (owner_email, owner_key), *rows = found
        result = [owner_email]
        seen = {owner_key}
        for address, key in rows:
            if key not in seen:
                seen.add(key)
                result.append(address)
        return result

    def notify(
        self,
        account_id: str,
        category: str,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        language: str | None = None,
    ) -> list[str]:
        """Send one message per recipient of *category*; returns the addresses.

        Each recipient gets its own message, so no one sees another's address. The
        messages go through the outbox; if some cannot be delivered now, they wait for
        ``deliver_pending()`` and ``DeliveryFailed`` names them. *language* is the
        template's language for this notice (default: the ``language`` setting), e.g.
        the account's own.
        """
        _check_id("account_id", account_id)
        language = self._language(language)
        check_line("category", category)
        check_line("subject", subject)
        check_length("subject", subject, SUBJECT_LIMIT)
        # The stdlib decodes an encoded word in an ASCII subject: the mail would say
        # other words, or, with a decoded line break, be stored and then refused unsent.
        check_no_encoded_word("subject", subject)
        _check_text("text", text)
        if html is not None:
            _check_text("html", html, "a string or None")
        from .._mail.mailers import build_message
        from .._mail.templates import NotificationContext

        cat = self.categories[category]
        addresses = self.recipients(account_id, category)
        with self._read() as uow:
            account = self._account(uow, account_id)
        now = self.now()
        # Rendered before the write unit: building a message never holds the store's
        # write lock, and a message that cannot be built stores nothing for it.
        prepared: list[tuple[str, str, EmailMessage | None, str | None]] = []
        first_error: Exception | None = None
        for to in addresses:
            message_id = f"<{_token_hex(12)}@{self._msgid_domain}>"
            try:
                rendered = self.templates.notification(
                    NotificationContext(
                        language=language,
                        brand=getattr(self.templates, "brand", None) or "",
                        account_name=account.name,
                        category=category,
                        category_label=cat.label_for(language),
                        recipient=to,
                        subject=subject,
                        text=text,
                        html=html,
                    )
                )
                message: EmailMessage | None = build_message(
                    sender=self.sender,
                    to=to,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    message_id=message_id,
                    language=language,
                    date=now,
                )
                error = None
            except Exception as exc:
                # One recipient whose mail cannot be built (an address stored before it was
                # checked) never keeps the others from theirs.
                message, error = None, f"{type(exc).__name__}: {exc}"[:500]
                first_error = first_error or exc
            prepared.append((to, message_id, message, error))
        if first_error is not None and all(p[2] is None for p in prepared):
            # No mail could be built at all: the template or the call is at fault, not a
            # recipient, so nothing is stored and the caller hears why.
            if isinstance(first_error, TeamAccessError):
                raise first_error
            raise ValidationError(
                f"the notification cannot be built as a mail: {error}"
            ) from first_error
        with self._write(now) as work:
            self._account(work.uow, account_id)
            batch = []
            unbuilt = []
            due = self._due_at(work.now)
            with _together(work.uow):  # the rows and the event, none read back
                for to, message_id, message, error in prepared:
                    row = OutboxMessage(
                        id=_numbered_id("msg"),
                        account_id=account_id,
                        kind=f"notification.{category}",
                        recipient=to,
                        message_id=message_id,
                        created_at=work.now,
                        next_attempt_at=due,
                        message=message.as_bytes() if message is not None else None,
                        leased_until=_leased(work.now, due),
                    )
                    if message is None:
                        row = attrs.evolve(
                            row, status="cancelled", leased_until=None,
                            last_error=f"refused before sending: it cannot be built: {error}",
                        )  # fmt: skip
                        unbuilt.append(row.id)
                    work.uow.add_outbox(row)
                    if message is not None:
                        batch.append((row, message))
                self._audit(
                    work,
                    account_id,
                    SYSTEM,
                    "notification.queued",
                    category,
                    subject=subject,
                    recipients=len(addresses),
                )
        # Queued, the worker sends them; a message that could not be built is reported
        # either way.
        self._deliver_now(batch if self.delivery == "now" else (), None, unbuilt)
        return addresses


def _no_contact(contact_id: str) -> ContactNotFound:
    return ContactNotFound(f"no contact {contact_id!r}; contacts(account_id) lists them")


def _some_categories(categories: frozenset[str]) -> frozenset[str]:
    """*categories*, unless empty: a contact receives only the mail of its categories and
    never logs in, so one without any would be an address nothing is sent to."""
    if not categories:
        raise ValidationError(
            "a contact needs at least one mail category, e.g. categories=['general']: it "
            "receives only the mail of its categories; to send it nothing, remove it "
            "(remove_contact)"
        )
    return categories


def _no_other_contact(
    uow: UnitOfWork, account_id: str, key: str, email: str, contact_id: str | None = None
) -> None:
    """Refuse a second contact of the account with the address of *key*: its categories
    would add to the first one's, so unticking a category on one of them would not stop
    that mail. (Inside the write unit: writers of one account are serialised.)"""
    for other in uow.contacts_with([key], accounts=[account_id]):
        if other.id != contact_id:
            raise AlreadyContact(
                f"{email} is already contact {other.id} of account {account_id}; change "
                f"that contact's categories instead (update_contact({other.id!r}, "
                "categories=...))",
                contact_id=other.id,
            )

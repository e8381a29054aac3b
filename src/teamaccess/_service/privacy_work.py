"""Personal data: export a person's data, erase a person, purge what retention lets go.

This module loads on the first of these calls, whose methods are in ``privacy``."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._domain import (
    SEND_ACTIONS,
    SYSTEM,
    AuditEvent,
    Contact,
    Invitation,
    Member,
    OutboxMessage,
    OutboxStatus,
)
from .._emails import Address, normalize_email
from .._errors import OwnershipRequired, PermissionDenied, StorageError, ValidationError
from .._ports import UnitOfWork
from .._privacy import ErasureReport, PersonMatcher, PurgeReport
from .checks import _check_id, _check_user, _scrub_after, _Work

if TYPE_CHECKING:
    from .._mail.redact import Redactor, Verdicts
    from .team import TeamAccess

__all__ = ["_PrivacyWork"]


class _Person:
    """Whom a request names: user ids and addresses, linked through their memberships."""

    def __init__(self, user_ids: set[str], addresses: dict[str, Address]) -> None:
        self.user_ids = user_ids
        self.addresses = addresses  # key -> the address as first seen
        self.memberships: list[Member] = []
        # the accounts of every membership the last search returned (granted ones too)
        self.near: set[str] = set()

    @property
    def keys(self) -> set[str]:
        return set(self.addresses)

    def matcher(self) -> PersonMatcher:
        forms = {a.email for a in self.addresses.values()} | self.keys
        return PersonMatcher(self.user_ids, forms)

    def owns(self, member: Member) -> bool:
        """Whether *member* is one of the person's memberships (not one they granted)."""
        return member.user_id in self.user_ids or _key(member.email) in self.addresses


def _key(address: str) -> str:
    return normalize_email(address).key


class _Found:
    """What the searches before the write unit found: for whom, where the audit log
    ended when they began, the accounts of the rows that name the person in free text,
    and those of the person's own rows (memberships, invitations, contacts, and the
    memberships they granted), and the mail addressed to them."""

    def __init__(
        self,
        mark: object,
        who: tuple[frozenset[str], frozenset[str]],
        accounts: set[str],
        involving: set[str],
        mail: list[str],
    ) -> None:
        self.mark = mark
        self.who = who
        self.accounts = accounts
        self.involving = involving
        self.mail = mail  # the outbox rows addressed to them (a coarse search's ids)


def _narrows(uow: UnitOfWork) -> bool:
    """Whether the store tells which accounts changed (optional in the Store protocol)."""
    return callable(getattr(uow, "event_mark", None)) and callable(
        getattr(uow, "changed_accounts", None)
    )


#: What a store needs for this module (the personal-data part of the Store protocol).
_UNIT_METHODS: Final = (
    "members_involving", "invitations_involving", "contacts_with", "events_with",
    "outbox_with", "delete_invitation", "delete_outbox", "update_event",
    "purge_invitations", "purge_outbox", "purge_events",
)  # fmt: skip
#: What an erasure needs besides: mail to others that names the person is rewritten.
_ERASE_METHODS: Final = (
    "outbox_texts", "rewrite_outbox", "members_with_text", "invitations_with_text",
    "contacts_with_text",
)  # fmt: skip


def _check_unit(uow: UnitOfWork, *, scrub: object, erase: bool = False) -> None:
    """A store written before the personal-data protocol gets a clear error, not an
    AttributeError halfway through an erasure (and nothing is written)."""
    needed = _UNIT_METHODS + _ERASE_METHODS if erase else _UNIT_METHODS
    missing = [m for m in needed if not callable(getattr(uow, m, None))]
    if not callable(scrub):
        missing.append("Store.scrub")
    if missing:
        raise StorageError(
            f"this store does not implement {', '.join(missing)}, which export, erasure "
            "and purge need; implement them (teamaccess.testing.contract.StoreContract "
            "tests them; scrub() may do nothing for a store without files)"
        )


class _PrivacyWork:
    """One export, erasure or purge, on the ``TeamAccess`` it runs for."""

    def __init__(self, team: TeamAccess) -> None:
        self.team = team

    # -- finding a person ---------------------------------------------------------------

    @staticmethod
    def _request(user_id: object, email: object) -> tuple[str | None, Address | None]:
        if user_id is None and email is None:
            raise ValidationError(
                "name the person: pass user_id=, email=, or both (both: everything under either)"
            )
        uid = None if user_id is None else _check_user("user_id", user_id)
        address = None if email is None else normalize_email(email, what="email")
        return uid, address

    @staticmethod
    def _find(
        uow: UnitOfWork,
        user_id: str | None,
        address: Address | None,
        scope: Mapping[str, Any] | None = None,
    ) -> _Person:
        """The person: the ids and addresses given, and those their memberships link to
        (a user's addresses in every account, every user of an address), until no new
        one turns up. *scope* (``accounts=``) keeps the search to some accounts."""
        person = _Person(
            {user_id} if user_id is not None else set(),
            {address.key: address} if address is not None else {},
        )
        while True:
            rows = uow.members_involving(person.user_ids, person.keys, **(scope or {}))
            person.near = {m.account_id for m in rows}
            found = [m for m in rows if person.owns(m)]
            before = (len(person.user_ids), len(person.addresses))
            for m in found:
                person.user_ids.add(m.user_id)
                a = normalize_email(m.email)
                person.addresses.setdefault(a.key, a)
            person.memberships = found
            if (len(person.user_ids), len(person.addresses)) == before:
                return person

    # -- export -------------------------------------------------------------------------

    def export_person(
        self, *, user_id: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        """See ``TeamAccess.export_person()``."""
        from .privacy_export import export_document

        uid, address = self._request(user_id, email)
        return export_document(self, uid, address)

    # -- erasure ------------------------------------------------------------------------

    def _pseudonym(self, person: _Person) -> str:
        import hashlib
        import hmac

        # One basis per person, so every row of theirs gets the same pseudonym and a
        # second request for the same person finds the same one.
        ids, keys = person.user_ids, person.keys
        basis = f"user:{min(ids)}" if ids else f"email:{min(keys)}"
        digest = hmac.new(self.team._pseudonym_key, basis.encode(), hashlib.sha256).hexdigest()
        return f"erased:{digest[:20]}"

    @staticmethod
    def _may_erase(
        uow: UnitOfWork,
        actor_id: str,
        user_id: str | None,
        address: Address | None,
        near: list[str] | None = None,
    ) -> None:
        """Refuses anyone but the vendor and the person; *near*, if given, the accounts
        that may hold the person's memberships (see ``erase_person()``)."""
        if actor_id == SYSTEM:
            return
        if user_id is None or actor_id != user_id:
            raise PermissionDenied(
                "only the vendor (actor_id=teamaccess.SYSTEM, acting on a request) or the "
                "person themselves (actor_id equal to user_id) may erase a person's data; "
                "to take someone out of an account, use remove_member()",
                user_id=actor_id,
            )
        if address is not None:
            own = _PrivacyWork._find(
                uow, user_id, None, None if near is None else {"accounts": near}
            )
            if address.key not in own.addresses:
                raise PermissionDenied(
                    f"{address.email} is not an address of user {user_id!r}; a person may "
                    "erase only their own data (the vendor erases others' with "
                    "actor_id=teamaccess.SYSTEM)",
                    user_id=actor_id,
                )

    def erase_person(
        self, *, user_id: str | None = None, email: str | None = None, actor_id: str
    ) -> ErasureReport:
        """See ``TeamAccess.erase_person()``."""
        actor_id = _check_id("actor_id", actor_id)
        uid, address = self._request(user_id, email)
        verdicts, found = self._before_unit(actor_id, uid, address)
        with self.team._write() as work:
            uow = work.uow
            _check_unit(uow, scrub=getattr(self.team._store, "scrub", None), erase=True)
            changed = None if found is None else uow.changed_accounts(found.mark)
            near = None if found is None or changed is None else sorted(found.involving | changed)
            self._may_erase(uow, actor_id, uid, address, near)
            if found is None or changed is None:
                found = None
                person = self._find(uow, uid, address)
            else:
                person = self._find(uow, uid, address, {"accounts": near})
                if _who(person) != found.who:
                    # Whom it looks for changed since the searches: every account again.
                    found = None
                    person = self._find(uow, uid, address)
            owned = [m for m in person.memberships if m.is_owner]
            if owned:
                which = ", ".join(sorted({repr(m.account_id) for m in owned}))
                raise OwnershipRequired(
                    f"this person owns the account(s) {which}; transfer ownership to "
                    "another member (transfer_ownership()) or, when the contract ends, "
                    "delete the account (delete_account()) first, then erase"
                )
            pseudonym = self._pseudonym(person)
            counts = self._erase(work, person, pseudonym, verdicts, found, changed)
            for account_id in sorted(counts):
                # An account deleted (delete_account()) after the person was found here,
                # while this unit waited for its lock: the writes to it found nothing, and
                # an event there would be a row of no account. Read under its lock (the
                # writes took it), so it cannot go later in this unit.
                if uow.get_account(account_id) is None:
                    del counts[account_id]
            total = Counter[str]()
            for account_id, done in sorted(counts.items()):
                total.update(done)
                self.team._audit(
                    work,
                    account_id,
                    SYSTEM if actor_id == SYSTEM else pseudonym,
                    "person.erased",
                    pseudonym,
                    **dict(sorted(done.items())),
                )
        report = ErasureReport(
            pseudonym=pseudonym,
            user_ids=tuple(sorted(person.user_ids)),
            addresses=tuple(sorted(a.email for a in person.addresses.values())),
            memberships=total["memberships"],
            invitations=total["invitations"],
            contacts=total["contacts"],
            messages=total["messages"],
            events=total["events"],
            revoked_invitations=total["revoked_invitations"],
            messages_redacted=total["messages_redacted"],
            messages_cancelled=total["messages_cancelled"],
            texts_redacted=total["texts_redacted"],
        )
        if counts:
            summary = f"{report.removed} row(s) deleted, {report.events} event(s) rewritten"
            _scrub_after(self.team._store, f"the erasure ({summary})", report)
        return report

    def _before_unit(
        self, actor_id: str, user_id: str | None, address: Address | None
    ) -> tuple[Verdicts | None, _Found | None]:
        """What an erasure works out before its write unit, where other writers do not
        wait for it: the verdict on every stored message, and the accounts whose free
        text names the person. ``None`` where the write unit is going to refuse the
        erasure anyway (or the store cannot tell what changed since)."""
        with self.team._read() as uow:
            _check_unit(uow, scrub=getattr(self.team._store, "scrub", None), erase=True)
            self._may_erase(uow, actor_id, user_id, address)
            # First: whatever is written after it, the unit looks at again.
            mark = uow.event_mark() if _narrows(uow) else None
            person = self._find(uow, user_id, address)
        if any(m.is_owner for m in person.memberships):
            return None, None
        found = None if mark is None else self._search_texts(person, mark)
        return self._judge_mail(person), found

    def _search_texts(self, person: _Person, mark: object) -> _Found:
        """The accounts with free text the unit's searches would find now: on a store of
        100,000 accounts they take seconds, which other writers would wait for. Each in a
        read unit of its own; the unit searches these accounts again, and those whose
        audit log grew since *mark* (every change writes an event in its account)."""
        needles = _free_needles(person)
        searches: list[Callable[[UnitOfWork], list[Any]]] = [
            lambda uow: uow.members_with_text(needles),
            lambda uow: uow.invitations_with_text(needles),
            lambda uow: uow.contacts_with_text(needles),
            lambda uow: uow.events_with(_event_needles(person)),
        ]
        accounts: set[str] = set()
        for search in searches:
            with self.team._read() as uow:
                accounts.update(row.account_id for row in search(uow))
        # The person's own rows, which the unit deletes or pseudonymises, found the same
        # way (a membership's account came with finding the person).
        involving = set(person.near)
        with self.team._read() as uow:
            found = uow.invitations_involving(person.user_ids, person.keys)
            involving.update(inv.account_id for inv in found)
        with self.team._read() as uow:
            involving.update(c.account_id for c in uow.contacts_with(person.keys))
            # (the outbox has no index on the account: rows added later are found by place)
            mail = []
            if callable(getattr(uow, "outbox_since", None)):
                mail = [row.id for row in uow.outbox_with(person.matcher().needles)]
        return _Found(mark, _who(person), accounts, involving, mail)

    def _judge_mail(self, person: _Person) -> Verdicts:
        """The verdict on every stored message, worked out before the write unit: parsing
        them takes seconds with a month of sent mail kept, and other writers would wait
        for all of it. Read in short units, a page at a time, and parsed outside them."""
        from .._mail.redact import Verdicts

        verdicts = Verdicts(_redactor(person), _who(person))
        after = 0
        while True:
            with self.team._read() as uow:
                page = uow.outbox_texts(after=after, limit=500)
            if not page:
                return verdicts
            after = page[-1][0]
            for _, row in page:
                if row.message is not None:
                    verdicts.learn(row.message, row.recipient)

    def _erase(
        self,
        work: _Work,
        person: _Person,
        pseudonym: str,
        verdicts: Verdicts | None,
        found: _Found | None,
        changed: set[str] | None,
    ) -> dict[str, Counter[str]]:
        """Every change of an erasure, counted per account. With *found* (the searches
        before the unit, for this person) and *changed* (the accounts whose audit log grew
        since), each search here keeps to the accounts that may hold what it looks for:
        every change writes an event in its account, so a row in another account is as
        those searches saw it."""
        uow = work.uow
        ids = person.user_ids
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for m in person.memberships:
            uow.delete_member(m.account_id, m.user_id)
            counts[m.account_id]["memberships"] += 1
            # As remove_member() does: what they sent cannot be accepted any more.
            for inv in uow.invitations(m.account_id, status="pending", invited_by=m.user_id):
                uow.update_invitation(attrs.evolve(inv, status="revoked", closed_at=work.now))
                self.team._cancel_mail(work, inv.id)
                counts[m.account_id]["revoked_invitations"] += 1
        # The writes above may have waited for another writer's lock on the person's
        # accounts (on PostgreSQL a unit does not hold its accounts from its start): what
        # that writer committed meanwhile is in the searches below as it would be in a
        # search of every account, so what changed is read again now.
        near, where = _kept(uow, found, changed)
        for m in uow.members_involving(ids, (), **near):
            if _granted_by(person, m):
                uow.update_member(attrs.evolve(m, granted_by=pseudonym))
                counts[m.account_id]["members_pseudonymised"] += 1
        for inv in uow.invitations_involving(ids, person.keys, **near):
            if _key(inv.email) in person.addresses:
                uow.delete_invitation(inv.id)
                counts[inv.account_id]["invitations"] += 1
            else:
                uow.update_invitation(
                    attrs.evolve(
                        inv,
                        invited_by=pseudonym if inv.invited_by in ids else inv.invited_by,
                        accepted_by=pseudonym if inv.accepted_by in ids else inv.accepted_by,
                    )
                )
                counts[inv.account_id]["invitations_pseudonymised"] += 1
        for contact in uow.contacts_with(person.keys, **near):
            uow.delete_contact(contact.id)
            counts[contact.account_id]["contacts"] += 1
        matcher = person.matcher()
        for row in _mail_to(uow, matcher, found):
            if _key(row.recipient) in person.addresses:
                uow.delete_outbox(row.id)
                counts[row.account_id]["messages"] += 1
        self._redact_mail(work, person, counts, verdicts)
        # Read again for the same reason: the rewrites above may have waited too.
        self._redact_texts(work, person, counts, _kept(uow, found, changed)[1])
        # A vendor's text in the details (a notification's subject) is free text: the
        # person is looked for there as in mail to others, but replaced by the pseudonym.
        free = _redactor(person, pseudonym)
        where = _kept(uow, found, changed)[1]
        for event in uow.events_with(_event_needles(person), **where):
            if _names_in_event(matcher, free, event):
                uow.update_event(
                    attrs.evolve(
                        event,
                        actor_id=matcher.replace_text(event.actor_id, pseudonym),
                        target=(
                            event.target
                            if _names_account(event)
                            else matcher.replace_text(event.target, pseudonym)
                        ),
                        details={
                            k: free.sub_value(matcher.replace_value(v, pseudonym))
                            for k, v in event.details.items()
                        },
                    )
                )
                counts[event.account_id]["events"] += 1
        return counts

    @staticmethod
    def _redact_mail(
        work: _Work, person: _Person, counts: dict[str, Counter[str]], verdicts: Verdicts | None
    ) -> None:
        """The person taken out of mail to others: their address in a vendor's text of a
        stored message (waiting or sent), and in any row's delivery error. A waiting
        message that names them and cannot be rewritten safely is cancelled; of a sent or
        cancelled one the stored copy is dropped. A damaged or foreign message that does
        not name them is left as it is, bytes and status. A message *verdicts* judged
        before the unit is not parsed again; the error text, short, is always read here."""
        from .._mail.redact import Unrewritable, Verdicts

        uow = work.uow
        redactor = _redactor(person)
        if verdicts is None or verdicts.who != _who(person):
            # Someone joined or left under the person's ids since: judge it all afresh.
            verdicts = Verdicts(redactor, _who(person))

        def redacted(row: OutboxMessage) -> tuple[bytes | None, str | None, OutboxStatus]:
            message, error = row.message, row.last_error
            status: OutboxStatus = row.status
            if error is not None and redactor.found(error):
                error = redactor.sub(error)
            if message is not None:
                try:
                    message = verdicts.redact(message, row.recipient) or message
                except Unrewritable as exc:
                    message = None
                    if row.status == "pending":
                        status = "cancelled"
                        error = (
                            "cancelled by an erasure: it named the erased person and "
                            f"could not be rewritten safely ({exc})"
                        )
            return message, error, status

        after = 0
        while page := uow.outbox_texts(after=after, limit=500):
            after = page[-1][0]
            for _, row in page:
                message, error, status = redacted(row)
                if (message, error, status) == (row.message, row.last_error, row.status):
                    continue
                # The page was read without a lock (PostgreSQL locks a row's account only
                # to write it): a delivery run may have recorded a send or a failure
                # since, or a deletion taken the row. Read it again, now under the lock,
                # and write what this row needs, not what the page showed.
                current = uow.get_outbox(row.id)
                if current is None:
                    continue
                seen = (row.message, row.last_error, row.status)
                row = current
                if (row.message, row.last_error, row.status) != seen:
                    message, error, status = redacted(row)
                    if (message, error, status) == (row.message, row.last_error, row.status):
                        continue
                changed = attrs.evolve(row, message=message, last_error=error, status=status)
                if status != row.status:
                    cancel = getattr(uow, "cancel_outbox_message", None)
                    if cancel is not None:
                        cancel(row.id)  # the status alone: a worker's lease since stays
                    else:
                        uow.update_outbox(changed)
                    counts[row.account_id]["messages_cancelled"] += 1
                else:
                    counts[row.account_id]["messages_redacted"] += 1
                uow.rewrite_outbox(changed)

    @staticmethod
    def _redact_texts(
        work: _Work, person: _Person, counts: dict[str, Counter[str]], where: dict[str, Any]
    ) -> None:
        """The person taken out of what others' rows say of them in free text: the note
        and metadata of invitations to others (a note goes out in the invitation mail),
        the metadata of other members, the name, company, phone and role of other
        contacts. Their own rows are gone by now. *where* keeps the searches to the
        accounts that may hold such text (see ``_erase()``)."""
        uow = work.uow
        redactor = _redactor(person)
        needles = _free_needles(person)
        for m in uow.members_with_text(needles, **where):
            if _naming(redactor, m):
                uow.update_member(attrs.evolve(m, metadata=redactor.sub_value(m.metadata)))
                counts[m.account_id]["texts_redacted"] += 1
        for inv in uow.invitations_with_text(needles, **where):
            if _naming(redactor, inv):
                uow.update_invitation(
                    attrs.evolve(
                        inv, note=redactor.sub(inv.note), metadata=redactor.sub_value(inv.metadata)
                    )
                )
                counts[inv.account_id]["texts_redacted"] += 1
        for c in uow.contacts_with_text(needles, **where):
            if _naming(redactor, c):
                sub = redactor.sub
                changed = attrs.evolve(
                    c, name=sub(c.name), company=sub(c.company), phone=sub(c.phone),
                    role=sub(c.role),
                )  # fmt: skip
                uow.update_contact(changed, _key(c.email))
                counts[c.account_id]["texts_redacted"] += 1

    # -- retention ----------------------------------------------------------------------

    def _rule_window(self) -> timedelta:
        """How far back the rules look: what is younger is never purged. The rate limit
        counts the account's sends; a limit per recipient (``recipient_rate_window``,
        where the service has it) counts the invitation mails in the outbox."""
        windows = [self.team.rate_window]
        per_recipient = getattr(self.team, "recipient_rate_window", None)
        if isinstance(per_recipient, timedelta):
            windows.append(per_recipient)
        return max(windows)

    def purge(self, *, scrub: bool = True) -> PurgeReport:
        """See ``TeamAccess.purge()``."""
        if not isinstance(scrub, bool):
            raise ValidationError(f"scrub must be True or False, not {scrub!r}")
        retention = self.team.retention
        with self.team._write() as work:
            uow = work.uow
            _check_unit(uow, scrub=getattr(self.team._store, "scrub", None))
            rules_since: datetime = work.now - self._rule_window()
            report = PurgeReport(
                invitations=uow.purge_invitations(
                    min(work.now - retention.closed_invitations, rules_since)
                ),
                messages=uow.purge_outbox(min(work.now - retention.sent_mail, rules_since)),
                events=uow.purge_events(
                    work.now - retention.audit_events,
                    keep_actions=SEND_ACTIONS,
                    keep_since=rules_since,
                ),
            )
        if scrub and report.total:
            _scrub_after(self.team._store, f"the purge ({report.total} row(s))", report)
        return report


def _mail_to(uow: UnitOfWork, matcher: PersonMatcher, found: _Found | None) -> list[OutboxMessage]:
    """The outbox rows whose recipient may be the person (``outbox_with()``): with
    *found*, those it found before the unit, read again by id, and those added since."""
    if found is not None and callable(getattr(uow, "outbox_since", None)):
        later = uow.outbox_since(matcher.needles, found.mark)
        if later is not None:
            known = [row for row in map(uow.get_outbox, found.mail) if row is not None]
            ids = {row.id for row in known}
            return known + [row for row in later if row.id not in ids]
    return uow.outbox_with(matcher.needles)


def _kept(
    uow: UnitOfWork, found: _Found | None, changed: set[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``accounts=`` that keep the unit's searches of the person's own rows (*near*)
    and of others' free text (*where*) to the accounts the searches before it found and
    those whose audit log grew since, read afresh; no keyword (every account) where the
    searches before did not look for this person or the store cannot tell any more."""
    if found is None or changed is None:
        return {}, {}
    now = uow.changed_accounts(found.mark)
    if now is None:
        return {}, {}
    now |= changed
    return (
        {"accounts": sorted(found.involving | now)},
        {"accounts": sorted(found.accounts | now)},
    )


def _who(person: _Person) -> tuple[frozenset[str], frozenset[str]]:
    """What a redactor looks for: a verdict stands only for the same forms and ids."""
    forms = {a.email for a in person.addresses.values()} | person.keys
    return frozenset(forms), frozenset(person.user_ids)


def _redactor(person: _Person, replacement: str | None = None) -> Redactor:
    from .._mail.redact import PLACEHOLDER, Redactor

    forms = {a.email for a in person.addresses.values()} | person.keys
    return Redactor(forms, person.user_ids, replacement or PLACEHOLDER)


def _free_needles(person: _Person) -> set[str]:
    """The coarse search's needles for the person in free text."""
    from .._mail.redact import free_text_needles

    forms = {a.email for a in person.addresses.values()} | person.keys
    return free_text_needles(forms, person.user_ids)


#: The free text of others' rows an erasure looks for the person in (and rewrites), and
#: the export lists where it names them.
_FREE_FIELDS: Final[Mapping[type, tuple[str, ...]]] = {
    Member: ("metadata",),
    Invitation: ("note", "metadata"),
    Contact: ("name", "company", "phone", "role"),
}


def _naming(redactor: Redactor, row: Member | Invitation | Contact) -> dict[str, Any]:
    """The free-text fields of *row* (another's membership, invitation or contact) that
    name the person, as stored; empty if none does."""
    values = {name: getattr(row, name) for name in _FREE_FIELDS[type(row)]}
    return {name: value for name, value in values.items() if redactor.found_value(value)}


def _granted_by(person: _Person, member: Member) -> bool:
    """Whether *member* is another's membership the person granted (its ``granted_by``
    becomes the pseudonym)."""
    return member.granted_by in person.user_ids and not person.owns(member)


def _event_needles(person: _Person) -> set[str]:
    """The coarse search's needles for the events that may name the person."""
    return set(person.matcher().needles) | _free_needles(person)


def _names_in_event(matcher: PersonMatcher, free: Redactor, event: AuditEvent) -> bool:
    """Whether *event* names the person: as actor or target, in the details as a whole
    id or address, or in a vendor's text there however the address is written."""
    return _mentions(matcher, event) or free.found_value(event.details)


def _names_account(event: AuditEvent) -> bool:
    """Whether the event's target is its account, not a person: an account's id may equal
    a user's (a customer number used for both, as imports give them), and erasing that
    user must not rewrite the account's own history."""
    return event.action.startswith("account.") and event.target == event.account_id


def _mentions(matcher: PersonMatcher, event: AuditEvent) -> bool:
    return (
        matcher.in_text(event.actor_id)
        or (not _names_account(event) and matcher.in_text(event.target))
        or matcher.in_value(event.details)
    )

"""Settings and plumbing every use case shares: the unit of work, audit, rule checks."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from .._domain import (
    SYSTEM,
    Account,
    AuditEvent,
    Invitation,
    Member,
)
from .._emails import check_line, check_no_encoded_word
from .._errors import (
    MemberNotFound,
    PermissionDenied,
    ValidationError,
)
from .._permissions import Catalog, Categories, Category, PermissionSet
from .._ports import Clock, Mailer, Store, SystemClock, UnitOfWork, read_clock
from .._tokens import SecretKey, TokenSigner, unencodable_key

if TYPE_CHECKING:
    # The mail modules load with the first TeamAccess or mail, not with the package.
    from email.message import EmailMessage

    from .._mail.templates import Templates

    # ...and the privacy classes with their first use.
    from .._privacy import Retention
from .checks import (
    _ALL,
    _DELIVERY_LEASE,
    _NOT_NAMES,
    Listener,
    _check_flag,
    _check_listener,
    _check_methods,
    _check_timedelta,
    _log,
    _new_id,
    _no_account,
    _Work,
)

__all__ = ["_Core"]

#: The demo settings: fine for MemoryMailer and FileMailer, refused with an SmtpMailer.
_EXAMPLE_ACCEPT_URL: Final = "https://panel.example.com/invitations/accept?token={token}"
_EXAMPLE_SENDER: Final = "Customer Center <noreply@panel.example.com>"

#: Permanent refusals in a row after which a message is closed. Not 1: some servers
#: answer ``5xx`` for what is temporary (a mailbox created later that day, a full one, a
#: misconfiguration soon fixed). With the default backoff the twelfth refusal comes about
#: 20 hours after the first, so a working day's fix still gets the mail; the server sees
#: the address twelve times in all, not four times a day for ever.
GIVE_UP_AFTER: Final = 12
#: How long a message may wait in the outbox before it is closed as expired, as a mail
#: server bounds its queue (Postfix: 5 days): a message whose tries alternate between
#: refusals and network failures never reaches ``give_up_after`` refusals in a row.
EXPIRE_AFTER: Final = timedelta(days=5)


def _written_as_set(text: str) -> str:
    """How to write the permissions *text* names as a ``PermissionSet``, for an error.

    ``"*"`` and ``"all"`` mean every permission (``to_list()`` writes all() as ``"*"``),
    and a comma-separated list is several names, as the command's ``-p`` takes them:
    ``PermissionSet.of()`` of the string as given would only fail again.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        return "PermissionSet.none()"
    if len(names) == 1 and names[0].lower() in ("*", "all"):
        return "PermissionSet.all()"
    return f"PermissionSet.of({', '.join(repr(name) for name in names)})"


class _Core:
    """Settings and plumbing every use case shares: the unit of work, audit, rule checks."""

    def __init__(
        self,
        store: Store,
        mailer: Mailer | None,
        *,
        secret_key: SecretKey | Sequence[SecretKey],
        catalog: Catalog | None = None,
        categories: Categories | Iterable[Category | str] | None = None,
        clock: Clock | None = None,
        invitation_ttl: timedelta = timedelta(days=7),
        accept_url: str = _EXAMPLE_ACCEPT_URL,
        require_email_match: bool = True,
        rate_limit: int = 50,
        rate_window: timedelta = timedelta(hours=1),
        recipient_rate_limit: int = 10,
        recipient_rate_window: timedelta = timedelta(days=1),
        account_rate_limit: int = 10,
        account_rate_window: timedelta = timedelta(hours=1),
        language: str = "en",
        sender: str = _EXAMPLE_SENDER,
        templates: Templates | None = None,
        listeners: Iterable[Listener] = (),
        check_deliverability: bool = False,
        retry_backoff: timedelta = timedelta(minutes=1),
        max_retry_backoff: timedelta = timedelta(hours=6),
        give_up_after: int = GIVE_UP_AFTER,
        expire_after: timedelta = EXPIRE_AFTER,
        delivery: Literal["now", "queue"] = "now",
        delivery_lease: timedelta = _DELIVERY_LEASE,
        retention: Retention | None = None,
        pseudonym_key: SecretKey | None = None,
    ) -> None:
        # Cheap checks of every setting: a wrong type would otherwise surface as a bare
        # TypeError or AttributeError at the first use, maybe in the middle of a send.
        _check_methods("store", store, "a Store such as MemoryStore()", "begin", "read", "grant")
        if mailer is not None:
            _check_methods("mailer", mailer, "a Mailer such as MemoryMailer()", "send")
        elif delivery != "queue":
            # Only a queue-only panel can do without one: its web servers then never hold
            # the mail server's password, which only the worker needs.
            raise ValidationError(
                f"mailer=None needs delivery='queue', not {delivery!r}: without a mailer "
                "mail can only be queued for a worker, whose TeamAccess has one and calls "
                "deliver_pending() (or runs teamaccess deliver --watch)"
            )
        self._store = store
        self._durable_hint = True  # until the store shows it predates begin(durable=)
        self._mailer = mailer
        self._tokens = TokenSigner(secret_key, "invitation")
        if catalog is not None and not isinstance(catalog, Catalog):
            raise ValidationError(
                f"catalog must be a Catalog, e.g. Catalog([...]) or Catalog.default(), "
                f"not {type(catalog).__name__}"
            )
        self.catalog = catalog if catalog is not None else Catalog.default()
        if categories is None:
            self.categories = Categories.default()
        elif isinstance(categories, Categories):
            self.categories = categories
        elif isinstance(categories, (str, *_NOT_NAMES)) or not isinstance(categories, Iterable):
            raise ValidationError(
                "categories must be a Categories or a list of Category objects or names, "
                f"e.g. ['general', 'billing'], not {categories!r}"
            )
        else:
            self.categories = Categories(categories)
        if clock is not None:
            _check_methods("clock", clock, "a Clock such as FrozenClock(start)", "now")
        self.clock: Clock = clock if clock is not None else SystemClock()
        _check_timedelta("invitation_ttl", invitation_ttl, "timedelta(days=7)")
        if invitation_ttl <= timedelta(0):
            raise ValidationError("invitation_ttl must be positive, e.g. timedelta(days=7)")
        self.invitation_ttl = invitation_ttl
        check_line("accept_url", accept_url)
        if not accept_url.startswith(("https://", "http://")):
            raise ValidationError(
                f"accept_url must be an absolute http(s) URL, not {accept_url!r}; "
                "put {token} where the token goes"
            )
        self.accept_url = accept_url
        self.require_email_match = _check_flag("require_email_match", require_email_match)
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, int):
            raise ValidationError(
                f"rate_limit must be an integer (invitations per rate_window), not {rate_limit!r}"
            )
        _check_timedelta("rate_window", rate_window, "timedelta(hours=1)")
        if rate_limit < 1 or rate_window <= timedelta(0):
            raise ValidationError("rate_limit must be at least 1 and rate_window positive")
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        # Floods across accounts: one address invited by many accounts, one user creating
        # accounts to invite from.
        for name, limit, window, example in (
            ("recipient_rate", recipient_rate_limit, recipient_rate_window, "timedelta(days=1)"),
            ("account_rate", account_rate_limit, account_rate_window, "timedelta(hours=1)"),
        ):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValidationError(
                    f"{name}_limit must be an integer of at least 1, not {limit!r}"
                )
            _check_timedelta(f"{name}_window", window, example)
            if window <= timedelta(0):
                raise ValidationError(f"{name}_window must be positive, e.g. {example}")
        self.recipient_rate_limit = recipient_rate_limit
        self.recipient_rate_window = recipient_rate_window
        self.account_rate_limit = account_rate_limit
        self.account_rate_window = account_rate_window
        if templates is not None:
            _check_methods(
                "templates", templates, "a Templates such as DefaultTemplates()",
                "invitation", "notification",
            )  # fmt: skip
        if templates is None:
            from .._mail.templates import DefaultTemplates

            templates = DefaultTemplates()
        self.templates: Templates = templates
        check_line("language", language)
        self._check_language(language)
        self.language = language
        check_line("sender", sender)
        check_no_encoded_word("sender", sender)
        from email.utils import parseaddr  # the email package loads on use

        # Checked here, not when the first invitation mail is built and refused.
        try:
            if "@" not in parseaddr(sender)[1]:
                raise ValidationError(
                    f"sender must hold an address like 'Customer Center "
                    f"<noreply@example.com>', not {sender!r}"
                )
            _check_sender_survives(sender)
            self._msgid_domain = _msgid_domain(sender)
        except RecursionError:
            # The stdlib's address parsers read a comment in a comment by calling
            # themselves: a thousand nested "(" exhaust the stack.
            raise ValidationError(
                "sender nests comments (parentheses) deeper than a mail header parser "
                "reads; write the name without them"
            ) from None
        self.sender = sender
        if isinstance(listeners, str | bytes) or not isinstance(listeners, Iterable):
            raise ValidationError(
                f"listeners must be a list of callables, not {type(listeners).__name__}"
            )
        # Replaced, never changed in place: a commit in another thread goes on with the
        # list it began with while a listener is added or removed.
        self._listeners: list[Listener] = [
            _check_listener(listener, "each of listeners") for listener in listeners
        ]
        self._listeners_lock = threading.Lock()
        self.check_deliverability = _check_flag("check_deliverability", check_deliverability)
        for name, value in (
            ("retry_backoff", retry_backoff),
            ("max_retry_backoff", max_retry_backoff),
        ):
            # Used only after a failed send, where a bad value would lose the failure.
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValidationError(f"{name} must be a positive timedelta, not {value!r}")
            _check_timedelta(name, value, "timedelta(hours=6)")
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        if isinstance(give_up_after, bool) or not isinstance(give_up_after, int):
            raise ValidationError(
                "give_up_after must be an integer (permanent refusals in a row before a "
                f"message is closed), not {give_up_after!r}"
            )
        if give_up_after < 1:
            raise ValidationError(f"give_up_after must be at least 1, not {give_up_after}")
        self.give_up_after = give_up_after
        if not isinstance(expire_after, timedelta) or expire_after <= timedelta(0):
            raise ValidationError(
                "expire_after must be a positive timedelta (how long a message may wait in "
                f"the outbox), like timedelta(days=5), not {expire_after!r}"
            )
        _check_timedelta("expire_after", expire_after, "timedelta(days=5)")
        self.expire_after = expire_after
        if delivery not in ("now", "queue"):
            raise ValidationError(
                f"delivery must be 'now' (send in the call) or 'queue' (a worker sends with "
                f"deliver_pending()), not {delivery!r}"
            )
        self.delivery: Literal["now", "queue"] = delivery
        _check_timedelta("delivery_lease", delivery_lease, "timedelta(minutes=5)")
        if delivery_lease <= timedelta(0):
            raise ValidationError("delivery_lease must be positive, e.g. timedelta(minutes=5)")
        self.delivery_lease = delivery_lease
        _no_placeholder(mailer, accept_url=accept_url, sender=sender)
        if retention is not None:
            from .._privacy import Retention

            if not isinstance(retention, Retention):
                raise ValidationError(
                    f"retention must be a Retention, e.g. Retention(audit_events=timedelta("
                    f"days=365)), not {type(retention).__name__}"
                )
        self._retention = retention
        self._pseudonym_key = _pseudonym_key(pseudonym_key, secret_key)

    def __repr__(self) -> str:
        return f"<TeamAccess store={self._store!r} mailer={self._mailer!r}>"

    @property
    def retention(self) -> Retention:
        """How long ``purge()`` keeps what no rule needs; ``Retention()`` unless given."""
        if self._retention is None:
            # Made on first use: the privacy module loads only for a purge or an erasure.
            from .._privacy import Retention

            self._retention = Retention()
        return self._retention

    @retention.setter
    def retention(self, value: Retention) -> None:
        self._retention = value

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> datetime:
        """The clock's reading, checked: a timezone-aware ``datetime`` from the year 1000
        to 8999, else ``ClockError`` (also for a ``now()`` that raises). Every use case
        reads the time through it, so a broken clock changes nothing."""
        return read_clock(self.clock)

    @property
    def mailer(self) -> Mailer | None:
        """The mailer, or ``None`` for a queue-only ``TeamAccess`` (``mailer=None``)."""
        return self._mailer

    def add_listener(self, listener: Listener) -> None:
        """Call *listener* with every ``AuditEvent``, after its change is committed."""
        listener = _check_listener(listener)
        with self._listeners_lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling *listener*: one registration of it, by ``add_listener()`` or
        ``listeners=``; ``ValidationError`` if it has none."""
        with self._listeners_lock:
            kept = list(self._listeners)
            try:
                kept.remove(listener)
            except ValueError:
                raise ValidationError(
                    f"this listener was not added, so it cannot be removed: {listener!r}; "
                    "pass the same object given to add_listener()"
                ) from None
            self._listeners = kept

    def close(self) -> None:
        """Close the store; the ``TeamAccess`` cannot be used afterwards."""
        self._store.close()

    @contextmanager
    def _write(self, now: datetime | None = None) -> Iterator[_Work]:
        """A write unit; *now* is the time of a change whose mail was rendered before it."""
        with self._store.begin() as uow:
            work = _Work(uow, self.now() if now is None else now)
            yield work
            uow.commit()
        self._tell_listeners(work.events)

    def _tell_listeners(self, events: Sequence[AuditEvent]) -> None:
        """Call the listeners with *events*, once their change is committed."""
        for event in events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    # The change is committed; a failing listener must not make the caller
                    # believe otherwise.
                    _log().exception("audit listener %r failed on %s", listener, event.action)

    def _mail_waits(self) -> bool:
        """True while the store's units run inside a transaction of the host application
        (``PostgresStore.join()``): a unit's commit is not final, so no mail may leave
        before the host commits. Mail then waits in the outbox, due at once, for
        ``deliver_pending()`` or a worker."""
        return bool(getattr(self._store, "in_host_transaction", False))

    def _read(self) -> AbstractContextManager[UnitOfWork]:
        # The store's own context manager, not one wrapped around it: a generator layer
        # per read is a tenth of recipients()' time, profiled.
        return self._store.read()

    def _audit(
        self, work: _Work, account_id: str, actor_id: str, action: str, target: str, **details: Any
    ) -> None:
        event = AuditEvent(
            id=_new_id("evt"),
            account_id=account_id,
            at=work.now,
            actor_id=actor_id,
            action=action,
            target=target,
            details=details,
        )
        work.uow.add_event(event)
        work.events.append(event)

    @staticmethod
    def _account(uow: UnitOfWork, account_id: str) -> Account:
        account = uow.get_account(account_id)
        if account is None:
            raise _no_account(account_id)
        return account

    @staticmethod
    def _account_actor(
        uow: UnitOfWork, account_id: str, actor_id: str
    ) -> tuple[Account, Member | None]:
        """The account (``AccountNotFound`` if none) and the actor's membership; one
        read where the unit has ``account_member()`` (``CombinedReads``)."""
        both = getattr(uow, "account_member", None)
        if both is None:
            account = _Core._account(uow, account_id)
            return account, None if actor_id == SYSTEM else uow.get_member(account_id, actor_id)
        found: tuple[Account | None, Member | None] = both(account_id, actor_id)
        if found[0] is None:
            raise _no_account(account_id)
        return found[0], found[1]

    def _glance(self, account_id: str, user_id: str) -> tuple[Account, Member | None]:
        """:meth:`_account_actor` in a read of its own, for rendering a mail before the
        write unit (which checks everything afresh, so this need not be its snapshot):
        one statement where the store itself has ``account_member()``."""
        look = getattr(self._store, "account_member", None)
        if look is None:
            with self._read() as uow:
                return self._account_actor(uow, account_id, user_id)
        found: tuple[Account | None, Member | None] = look(account_id, user_id)
        if found[0] is None:
            raise _no_account(account_id)
        return found[0], found[1]

    @staticmethod
    def _member(uow: UnitOfWork, account_id: str, user_id: str) -> Member:
        return _Core._found_member(account_id, user_id, uow.get_member(account_id, user_id))

    @staticmethod
    def _found_member(account_id: str, user_id: str, member: Member | None) -> Member:
        """*member* (the membership of *user_id* as read); ``MemberNotFound`` if none."""
        if member is None:
            raise MemberNotFound(
                f"user {user_id!r} is not a member of account {account_id!r}; "
                "members(account_id) lists who is"
            )
        return member

    def _permission_set(self, permissions: object) -> PermissionSet:
        if isinstance(permissions, PermissionSet):
            ps = permissions
        elif isinstance(permissions, str):
            raise ValidationError(
                f"permissions must be a PermissionSet, not the string {permissions!r}; "
                f"write {_written_as_set(permissions)}"
            )
        # A mapping would grant its keys whatever their values say ({"x": False}), and
        # bytes iterate as numbers: neither is a collection of names.
        elif isinstance(permissions, Iterable) and not isinstance(permissions, _NOT_NAMES):
            names = tuple(permissions)
            for name in names:
                if not isinstance(name, str):
                    raise ValidationError(
                        f"permissions must hold permission names like 'billing.view', "
                        f"not {name!r}; or pass a PermissionSet"
                    )
            ps = PermissionSet.of(*names)
        else:
            raise ValidationError(
                "permissions must be a PermissionSet: PermissionSet.all(), "
                "PermissionSet.of(...) or PermissionSet.none()"
            )
        return self.catalog.check(ps)

    def _actor_permissions(self, uow: UnitOfWork, account_id: str, actor_id: str) -> PermissionSet:
        if actor_id == SYSTEM:
            return _ALL
        return self._held(account_id, actor_id, uow.get_member(account_id, actor_id))

    def _held(self, account_id: str, actor_id: str, member: Member | None) -> PermissionSet:
        """What *actor_id* may use in the account, *member* being its membership as read."""
        if actor_id == SYSTEM:
            return _ALL
        if member is None:
            raise PermissionDenied(
                f"user {actor_id!r} is not a member of account {account_id!r}",
                user_id=actor_id,
                account_id=account_id,
            )
        status = member.status_at(self.now())
        if status != "active":
            # A suspended or expired member can do nothing, managing others included.
            raise PermissionDenied(
                f"user {actor_id!r} is {status} in account {account_id!r} and may do nothing "
                "there; a member with users.manage can reactivate it or extend its access",
                user_id=actor_id,
                account_id=account_id,
            )
        return member.permissions

    def _member_now(self, member: Member, now: datetime | None = None) -> Member:
        """*member* as a caller sees it: ``status`` as of *now* (default: the clock)."""
        status = member.status_at(self.now() if now is None else now)
        return member if status == member.status else attrs.evolve(member, status=status)

    def _require(
        self, uow: UnitOfWork, account_id: str, actor_id: str, permission: str
    ) -> PermissionSet:
        held = self._actor_permissions(uow, account_id, actor_id)
        return self._require_held(held, account_id, actor_id, permission)

    @staticmethod
    def _require_held(
        held: PermissionSet, account_id: str, actor_id: str, permission: str
    ) -> PermissionSet:
        if permission not in held:
            raise PermissionDenied(
                f"user {actor_id!r} lacks the permission {permission!r} in account "
                f"{account_id!r}; the account owner can grant it",
                user_id=actor_id,
                account_id=account_id,
                permission=permission,
            )
        return held

    @staticmethod
    def _no_escalation(
        actor_id: str,
        held: PermissionSet,
        wanted: PermissionSet,
        what: str,
        todo: str = "grant only permissions you hold",
    ) -> None:
        if not wanted.issubset(held):
            if wanted.is_all:
                missing = "all permissions"
            else:
                missing = ", ".join((wanted - held).to_list()) if not held.is_all else ""
            raise PermissionDenied(
                f"user {actor_id!r} cannot {what}: it does not hold {missing} itself; {todo}",
                user_id=actor_id,
            )

    @staticmethod
    def _within_own_end(
        account_id: str,
        actor_id: str,
        actor: Member | None,
        until: datetime | None,
        what: str,
        todo: str = "give an end",
    ) -> None:
        """Refuse access that outlasts the actor's own: a member whose access the owner
        limited gives none that ends later, or never (escalation in time, as
        ``_no_escalation`` refuses it in permissions). *actor* is its membership as read;
        ``None`` (SYSTEM) and the owner have no end and pass."""
        own = None if actor is None or actor_id == SYSTEM else actor.access_until
        if own is None or (until is not None and until <= own):
            return
        own_text = _exact(own)
        given = "no end" if until is None else f"an end of {_exact(until)}"
        # "{given}" in *what* places it (no format(): an id may hold braces)
        what = what.replace("{given}", given) if "{given}" in what else f"{what} with {given}"
        raise PermissionDenied(
            f"user {actor_id!r} cannot {what}: its own access ends on "
            f"{own_text}, and access it gives ends no later; {todo} on or before {own_text}",
            user_id=actor_id,
            account_id=account_id,
            access_until=own,
        )

    @staticmethod
    def _not_oneself(account_id: str, actor_id: str, user_id: str, what: str) -> None:
        """Refuse a member changing its own membership: its own permissions, suspension or
        end of access. Narrowing would be harmless, but a member whose access ends could
        move its own end date out of the way of the owner's, and the pages never offer
        it; leaving (``remove_member`` of oneself) stays open."""
        if actor_id == user_id:
            raise PermissionDenied(
                f"user {actor_id!r} cannot {what} itself: nobody changes their own "
                "permissions or access; ask the account owner or another member with "
                "users.manage (to leave the account, remove_member() yourself)",
                user_id=actor_id,
                account_id=account_id,
            )

    def _language(self, language: str | None) -> str:
        """The language a call asked for (``None``: the configured one), checked."""
        if language is None:
            return self.language
        check_line("language", language)
        self._check_language(language)
        return language

    def _check_language(self, language: str) -> None:
        from .._mail.templates import LANGUAGES

        languages = getattr(self.templates, "languages", None)
        known = tuple(languages()) if callable(languages) else LANGUAGES
        if language not in known:
            raise ValidationError(
                f"unsupported language {language!r}; use one of: " + ", ".join(known)
            )

    def _inviter_lost_rights(self, uow: UnitOfWork, inv: Invitation) -> bool:
        if inv.invited_by == SYSTEM:
            return False
        return self._inviter_lost(inv, uow.get_member(inv.account_id, inv.invited_by))

    def _inviter_lost(self, inv: Invitation, inviter: Member | None) -> bool:
        """Whether *inviter* (the membership of ``inv.invited_by``, as read) may no longer
        grant *inv*."""
        if inv.invited_by == SYSTEM:
            return False
        return (
            inviter is None
            or not inviter.is_active(self.now())
            or "users.manage" not in inviter.permissions
            or not inv.permissions.issubset(inviter.permissions)
            # The inviter's own end moved before the access the invitation gives.
            or (
                inviter.access_until is not None
                and (inv.access_until is None or inv.access_until > inviter.access_until)
            )
        )


def _exact(instant: datetime) -> str:
    """*instant* (in UTC, as stored) to the minute, or to the second or below where the
    minute would lose some: an end seconds after the actor's read as the same minute,
    and a refusal told the actor to give the very end it had given."""
    if instant.microsecond:
        return f"{instant:%Y-%m-%d %H:%M:%S.%f} UTC"
    if instant.second:
        return f"{instant:%Y-%m-%d %H:%M:%S} UTC"
    return f"{instant:%Y-%m-%d %H:%M} UTC"


@functools.lru_cache(maxsize=32)
def _check_sender_survives(sender: str) -> None:
    """Refuse, at construction, a sender that every mail would be refused for.

    The last check before sending reads each mail back as a server would. The builder
    writes a name that is not ASCII as encoded words split at its spaces; a word too long
    for one encoded word is split by the stdlib, and this Python's parser reads such a
    split back with a space inside the word; every mail to an ASCII address would then be
    refused. Found here, it is one clear error instead of no mail at all.
    """
    from .._mail.gate import MailRefused, check_outgoing
    from .._mail.mailers import build_message

    probe = "probe@example.com"
    message = build_message(
        sender=sender, to=probe, subject="probe", text="probe", html=None,
        message_id=f"<probe@{_msgid_domain(sender)}>", language="en",
    )  # fmt: skip
    try:
        check_outgoing(message, probe)
    except MailRefused as exc:
        from .._mail.gate import _envelope_sender

        if _envelope_sender(str(message["From"])) is None:
            raise ValidationError(
                f"sender {sender!r}: its address is not one a mail server reads as the "
                "envelope sender (MAIL FROM); use a local part of letters, digits and dots "
                "(or one quoted string) at a domain name, not an address literal"
            ) from None
        from .._mail.mailers import unencodable_word

        word = unencodable_word(sender)
        if word is not None:
            raise ValidationError(
                f"sender {sender!r}: the word {word!r} of its name is too long to be written "
                "in a mail header on this Python (a word that is not ASCII fits in about 45 "
                "bytes of UTF-8, some 15 characters of Chinese or Japanese); put a space in "
                "it or shorten it"
            ) from None
        from .._mail.sender import unfoldable_quoted

        why = unfoldable_quoted(sender)
        if why is not None:
            raise ValidationError(f"sender {sender!r}: {why}") from None
        raise ValidationError(
            f"sender {sender!r} does not survive the trip through a mail header on this "
            f"Python ({exc}); shorten the name before the address, or keep it ASCII"
        ) from None
    _check_name_reads_back(sender, message)


def _check_name_reads_back(sender: str, message: EmailMessage) -> None:
    """Refuse a sender whose name, not ASCII, a mail program reads otherwise.

    The last check reads a mail with this Python's parser, which keeps the white space
    between two encoded words in a name; RFC 2047 readers drop it, so a space written
    there alone is lost to them. Here the ``From`` of the probe is decoded as RFC 2047
    says and must read as the name (runs of spaces as one, as the builder writes it).
    """
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header

    address = message["From"].addresses[0]
    if address.display_name.isascii():
        return
    name = " ".join(filter(None, address.display_name.split(" ")))
    # Written as it is sent: an address that is not ASCII makes it an SMTPUTF8 mail.
    wire = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    head = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(b"From: "))
    lines = [head[start]]
    lines += itertools.takewhile(lambda line: line[:1] in (b" ", b"\t"), head[start + 1 :])
    raw = b"".join(lines)[len(b"From: ") :].decode("utf-8", "replace")
    # Only the name is decoded: an address that is not ASCII is UTF-8 as it is.
    expected, suffix = name, f" <{address.addr_spec}>"
    if raw.endswith(suffix):
        raw = raw[: -len(suffix)]
    else:
        expected += suffix
    try:
        read = str(make_header(decode_header(raw)))
    except (HeaderParseError, ValueError, LookupError):
        read = raw
    if read != expected:
        raise ValidationError(
            f"sender {sender!r}: a mail program reads its name in a mail header as "
            f"{read!r}, not as given; shorten the name before the address, or keep it "
            "ASCII"
        )


def _msgid_domain(sender: str) -> str:
    """The domain of the service's Message-IDs: the sender's, as ``From`` writes it (an
    IDN in its ASCII form). A Message-ID is ASCII in every mail; with the IDN as it was
    given, the last check refused every mail to an ASCII address."""
    from .._mail.mailers import _header_address

    return _header_address("From", sender)[0].domain or "teamaccess.invalid"


def _no_placeholder(mailer: Mailer | None, *, accept_url: str, sender: str) -> None:
    """An SmtpMailer mails real people: the demo link and sender must not reach them. So
    does the worker of a queue-only ``TeamAccess`` (``mailer=None``), and a queued notice
    goes out from the sender the panel wrote into it (an invitation's mail, link and
    sender are the worker's: it is built when sent)."""
    import sys

    # Only if the SMTP module is loaded can the mailer be an SmtpMailer; this keeps smtplib
    # out of processes that never send over SMTP.
    smtp = sys.modules.get("teamaccess._mail.smtp")
    if mailer is None:
        why = "a queue-only TeamAccess (mailer=None) queues mail a worker sends to real people"
    elif smtp is not None and isinstance(mailer, smtp.SmtpMailer):
        why = "with an SmtpMailer the mail reaches real people"
    else:
        return
    if accept_url == _EXAMPLE_ACCEPT_URL and mailer is not None:
        raise ValidationError(
            f"accept_url is still the example {accept_url!r}; {why}, so pass "
            "accept_url= with your panel's accept page, "
            "e.g. 'https://panel.your-company.com/invitations/accept?token={token}'"
        )
    if sender == _EXAMPLE_SENDER:
        raise ValidationError(
            f"sender is still the example {sender!r}; {why}, so pass sender= with "
            "your own address, e.g. 'Customer Center <noreply@your-company.com>'"
        )


def _pseudonym_key(
    pseudonym_key: SecretKey | None, secret_key: SecretKey | Sequence[SecretKey]
) -> bytes:
    """The key of erased persons' pseudonyms: ``pseudonym_key``, or one derived from the
    newest secret key (docs/privacy.md says why, and when to set it)."""
    import hashlib
    import hmac

    if pseudonym_key is None:
        # secret_key was checked by TokenSigner already: one key, or a list, newest last.
        newest = secret_key if isinstance(secret_key, str | bytes) else list(secret_key)[-1]
        raw = newest.encode() if isinstance(newest, str) else bytes(newest)
        return hmac.new(raw, b"teamaccess.pseudonym.v1", hashlib.sha256).digest()
    if not isinstance(pseudonym_key, str | bytes) or not pseudonym_key:
        raise ValidationError(
            "pseudonym_key must be a non-empty string or bytes, kept apart from the "
            "database and never changed; generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if isinstance(pseudonym_key, bytes):
        return bytes(pseudonym_key)
    try:
        return pseudonym_key.encode()
    except UnicodeEncodeError:
        raise ValidationError(unencodable_key("pseudonym_key")) from None

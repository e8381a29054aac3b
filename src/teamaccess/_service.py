"""The use cases. One ``TeamAccess`` per application; each method is one unit of work."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._domain import (
    SYSTEM,
    Account,
    AuditEvent,
    Contact,
    Invitation,
    InvitationStatus,
    Member,
    OutboxMessage,
)
from ._emails import check_line, normalize_email
from ._errors import (
    AccountNotFound,
    AlreadyInvited,
    AlreadyMember,
    Conflict,
    ContactNotFound,
    DeliveryFailed,
    EmailMismatch,
    InvalidInvitation,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    MemberNotFound,
    OwnershipRequired,
    PermissionDenied,
    RateLimited,
    StorageError,
    ValidationError,
)
from ._mail.mailers import build_message
from ._mail.templates import (
    LANGUAGES,
    DefaultTemplates,
    InvitationContext,
    NotificationContext,
    Templates,
)
from ._permissions import Catalog, Categories, Category, PermissionSet
from ._ports import Clock, Mailer, Store, SystemClock, UnitOfWork
from ._tokens import SecretKey, TokenSigner, hash_matches

if TYPE_CHECKING:
    import logging
    from email.message import EmailMessage

__all__ = ["TeamAccess"]


def _log() -> logging.Logger:
    # logging loads on the first failure it reports, not at import (issue 6's budget).
    import logging

    return logging.getLogger("teamaccess")


Listener = Callable[[AuditEvent], object]

_SEND_ACTIONS: Final = frozenset({"invitation.sent", "invitation.resent"})
_CONTACT_FIELDS: Final = ("company", "phone", "role")
#: How long a delivery attempt owns its outbox row. A row is written due this far ahead,
#: and ``deliver_pending()`` pushes it this far ahead before sending, so a concurrent
#: ``deliver_pending()`` does not send it a second time (and, for an invitation, mint a
#: token that kills the link just mailed). A process that dies mid-send leaves the row
#: due again after the lease.
_DELIVERY_LEASE: Final = timedelta(minutes=5)
_ALL = PermissionSet.all()
_NOT_NAMES: Final = (Mapping, bytes, bytearray)


def _token_hex(nbytes: int) -> str:
    # secrets (with hashlib and random) and urllib load on first use: issue 6's import budget.
    import secrets

    return secrets.token_hex(nbytes)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_token_hex(10)}"


def _check_id(what: str, value: object) -> str:
    check_line(what, value)
    assert isinstance(value, str)
    if not value.strip():
        raise ValidationError(f"{what} must not be empty")
    return value


def _check_ids(**ids: object) -> None:
    """Each keyword is an id parameter and its value; ``ValidationError`` names a bad one."""
    for what, value in ids.items():
        _check_id(what, value)


def _not_str(**values: object) -> None:
    """The slow path behind a hot method's ``type(x) is str`` test.

    A ``str`` subclass passes; anything else would reach the store as an unhashable key
    or a bad SQL parameter, so it is refused here, by name.
    """
    for what, value in values.items():
        if not isinstance(value, str):
            raise ValidationError(f"{what} must be a string, not {type(value).__name__}")


def _check_text(what: str, value: object, expected: str = "a string") -> str:
    """A mail body: any text, line breaks allowed, but it must encode (no lone surrogate)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be {expected}, not {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                f"{what} is not valid Unicode text (it holds a lone surrogate); decode the "
                "input as UTF-8 before passing it"
            ) from None
    return value


def _check_flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{what} must be True or False, not {value!r}")
    return value


def _check_timedelta(what: str, value: object, example: str) -> timedelta:
    # Checked here: the value is only compared with and added to datetimes later, where
    # anything else fails with a bare TypeError.
    if not isinstance(value, timedelta):
        raise ValidationError(f"{what} must be a timedelta, e.g. {example}, not {value!r}")
    return value


def _check_methods(what: str, value: object, example: str, *methods: str) -> None:
    """A cheap duck-type check of a port: only that the methods used later exist."""
    for method in methods:
        if not callable(getattr(value, method, None)):
            raise ValidationError(
                f"{what} must be {example}, with a {method}() method; not {type(value).__name__}"
            )


def _check_listener(listener: object, what: str = "listener") -> Listener:
    # A listener is called only after a commit, where its failure is logged, not raised:
    # a non-callable would otherwise be silently useless.
    if not callable(listener):
        raise ValidationError(
            f"{what} must be a callable taking an AuditEvent, not {type(listener).__name__}"
        )
    return listener


def _no_account(account_id: str) -> AccountNotFound:
    return AccountNotFound(
        f"no account {account_id!r}; check the id (accounts_for(user_id) lists a user's accounts)"
    )


def _check_user(what: str, value: object) -> str:
    """A real person's id: ``SYSTEM`` acts, but never owns or joins an account."""
    user_id = _check_id(what, value)
    if user_id == SYSTEM:
        raise ValidationError(
            f"{what} cannot be teamaccess.SYSTEM; pass the id of a user of your application"
        )
    return user_id


class _Work:
    """A unit of work plus the audit events it wrote, for the listeners after commit."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self.events: list[AuditEvent] = []


class TeamAccess:
    """Accounts, members, permissions, invitations and contacts, on a ``Store``.

    >>> from teamaccess import TeamAccess, MemoryStore, MemoryMailer
    >>> team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="change me")
    """

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        *,
        secret_key: SecretKey | Sequence[SecretKey],
        catalog: Catalog | None = None,
        categories: Categories | Iterable[Category | str] | None = None,
        clock: Clock | None = None,
        invitation_ttl: timedelta = timedelta(days=7),
        accept_url: str = "https://panel.example.com/invitations/accept?token={token}",
        require_email_match: bool = True,
        rate_limit: int = 50,
        rate_window: timedelta = timedelta(hours=1),
        language: str = "en",
        sender: str = "Customer Center <noreply@panel.example.com>",
        templates: Templates | None = None,
        listeners: Iterable[Listener] = (),
        check_deliverability: bool = False,
        retry_backoff: timedelta = timedelta(minutes=1),
        max_retry_backoff: timedelta = timedelta(hours=6),
    ) -> None:
        # Cheap checks of every setting: a wrong type would otherwise surface as a bare
        # TypeError or AttributeError at the first use, maybe in the middle of a send.
        _check_methods("store", store, "a Store such as MemoryStore()", "begin", "read", "grant")
        _check_methods("mailer", mailer, "a Mailer such as MemoryMailer()", "send")
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
        if templates is not None:
            _check_methods(
                "templates", templates, "a Templates such as DefaultTemplates()",
                "invitation", "notification",
            )  # fmt: skip
        self.templates: Templates = templates if templates is not None else DefaultTemplates()
        check_line("language", language)
        self._check_language(language)
        self.language = language
        check_line("sender", sender)
        from email.utils import parseaddr  # the email package loads on use (issue 6)

        # Checked here, not when the first invitation mail is built and refused.
        if "@" not in parseaddr(sender)[1]:
            raise ValidationError(
                f"sender must hold an address like 'Customer Center <noreply@example.com>', "
                f"not {sender!r}"
            )
        self.sender = sender
        if isinstance(listeners, str | bytes) or not isinstance(listeners, Iterable):
            raise ValidationError(
                f"listeners must be a list of callables, not {type(listeners).__name__}"
            )
        self._listeners: list[Listener] = []
        for listener in listeners:
            self._listeners.append(_check_listener(listener, "each of listeners"))
        self.check_deliverability = _check_flag("check_deliverability", check_deliverability)
        for name, value in (
            ("retry_backoff", retry_backoff),
            ("max_retry_backoff", max_retry_backoff),
        ):
            # Used only after a failed send, where a bad value would lose the failure.
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValidationError(f"{name} must be a positive timedelta, not {value!r}")
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        domain = parseaddr(sender)[1].rpartition("@")[2] or "teamaccess.invalid"
        self._msgid_domain = domain

    def __repr__(self) -> str:
        return f"<TeamAccess store={self._store!r} mailer={self._mailer!r}>"

    @property
    def store(self) -> Store:
        return self._store

    @property
    def mailer(self) -> Mailer:
        return self._mailer

    def add_listener(self, listener: Listener) -> None:
        """Call *listener* with every ``AuditEvent``, after its change is committed."""
        self._listeners.append(_check_listener(listener))

    def close(self) -> None:
        self._store.close()

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[_Work]:
        with self._store.begin() as uow:
            work = _Work(uow, self.clock.now())
            yield work
            uow.commit()
        for event in work.events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    # The change is committed; a failing listener must not make the caller
                    # believe otherwise.
                    _log().exception("audit listener %r failed on %s", listener, event.action)

    def _read(self) -> AbstractContextManager[UnitOfWork]:
        # The store's own context manager, not one wrapped around it: a generator layer
        # per read is a tenth of recipients() (issue 6's profile).
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
    def _member(uow: UnitOfWork, account_id: str, user_id: str) -> Member:
        member = uow.get_member(account_id, user_id)
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
                f"write PermissionSet.of({permissions!r})"
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
        member = uow.get_member(account_id, actor_id)
        if member is None:
            raise PermissionDenied(
                f"user {actor_id!r} is not a member of account {account_id!r}",
                user_id=actor_id,
                account_id=account_id,
            )
        return member.permissions

    def _require(
        self, uow: UnitOfWork, account_id: str, actor_id: str, permission: str
    ) -> PermissionSet:
        held = self._actor_permissions(uow, account_id, actor_id)
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
        actor_id: str, held: PermissionSet, wanted: PermissionSet, what: str
    ) -> None:
        if not wanted.issubset(held):
            if wanted.is_all:
                missing = "all permissions"
            else:
                missing = ", ".join(sorted((wanted - held).names)) if not held.is_all else ""
            raise PermissionDenied(
                f"user {actor_id!r} cannot {what}: it does not hold {missing} itself; "
                "grant only permissions you hold",
                user_id=actor_id,
            )

    def _language(self, language: str | None) -> str:
        """The language a call asked for (``None``: the configured one), checked."""
        if language is None:
            return self.language
        check_line("language", language)
        self._check_language(language)
        return language

    def _check_language(self, language: str) -> None:
        languages = getattr(self.templates, "languages", None)
        known = tuple(languages()) if callable(languages) else LANGUAGES
        if language not in known:
            raise ValidationError(
                f"unsupported language {language!r}; use one of: " + ", ".join(known)
            )

    # -- accounts ---------------------------------------------------------------------

    def create_account(self, *, name: str, owner_id: str, owner_email: str) -> Account:
        """Create an account whose owner holds every permission."""
        name = _check_id("account name", name).strip()
        owner_id = _check_user("owner_id", owner_id)
        address = normalize_email(
            owner_email, check_deliverability=self.check_deliverability, what="owner_email"
        )
        with self._write() as work:
            account = Account(
                id=_new_id("acc"),
                name=name,
                owner_id=owner_id,
                owner_email=address.email,
                created_at=work.now,
            )
            work.uow.add_account(account)
            work.uow.add_member(
                Member(
                    account_id=account.id,
                    user_id=owner_id,
                    email=address.email,
                    role="owner",
                    permissions=_ALL,
                    joined_at=work.now,
                ),
                address.key,
            )
            self._audit(work, account.id, owner_id, "account.created", account.id, name=name)
        return account

    def get_account(self, account_id: str) -> Account:
        _check_id("account_id", account_id)
        with self._read() as uow:
            return self._account(uow, account_id)

    def accounts_for(self, user_id: str) -> list[Account]:
        """Every account the user owns or is a member of, oldest first."""
        _check_id("user_id", user_id)
        with self._read() as uow:
            return uow.accounts_for(user_id)

    def rename_account(self, account_id: str, *, actor_id: str, name: str) -> Account:
        """Change the account's name; needs ``profile.edit``."""
        _check_ids(account_id=account_id, actor_id=actor_id)
        name = _check_id("account name", name).strip()
        with self._write() as work:
            account = self._account(work.uow, account_id)
            self._require(work.uow, account_id, actor_id, "profile.edit")
            account = attrs.evolve(account, name=name)
            work.uow.update_account(account)
            self._audit(work, account_id, actor_id, "account.renamed", account_id, name=name)
        return account

    def transfer_ownership(self, account_id: str, *, actor_id: str, to_user_id: str) -> Account:
        """Make a member the owner; the old owner stays a member with all permissions."""
        _check_ids(account_id=account_id, actor_id=actor_id, to_user_id=to_user_id)
        with self._write() as work:
            uow = work.uow
            account = self._account(uow, account_id)
            if actor_id not in (account.owner_id, SYSTEM):
                raise OwnershipRequired(
                    f"only the owner of account {account_id!r} can transfer ownership; "
                    "ask the owner, or the vendor's support (teamaccess.SYSTEM)"
                )
            new_owner = self._member(uow, account_id, to_user_id)
            if new_owner.is_owner:
                raise Conflict(f"user {to_user_id!r} already owns account {account_id!r}")
            old_owner = self._member(uow, account_id, account.owner_id)
            uow.update_member(
                attrs.evolve(old_owner, role="member", permissions=_ALL, granted_by=actor_id)
            )
            uow.update_member(
                attrs.evolve(new_owner, role="owner", permissions=_ALL, granted_by=actor_id)
            )
            account = attrs.evolve(account, owner_id=to_user_id, owner_email=new_owner.email)
            uow.update_account(account)
            self._audit(
                work,
                account_id,
                actor_id,
                "account.ownership_transferred",
                to_user_id,
                previous_owner=old_owner.user_id,
            )
        return account

    # -- members ----------------------------------------------------------------------

    def members(self, account_id: str) -> list[Member]:
        """The owner first, then members in the order they joined."""
        _check_id("account_id", account_id)
        with self._read() as uow:
            self._account(uow, account_id)
            return uow.members(account_id)

    def get_member(self, account_id: str, user_id: str) -> Member:
        _check_ids(account_id=account_id, user_id=user_id)
        with self._read() as uow:
            self._account(uow, account_id)
            return self._member(uow, account_id, user_id)

    def set_permissions(
        self, account_id: str, user_id: str, permissions: PermissionSet, *, actor_id: str
    ) -> Member:
        """Replace a member's permissions.

        Needs ``users.manage``; the actor grants only what it holds and changes only
        members whose permissions are within its own.
        """
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        wanted = self._permission_set(permissions)
        with self._write() as work:
            uow = work.uow
            self._account(uow, account_id)
            held = self._require(uow, account_id, actor_id, "users.manage")
            target = self._member(uow, account_id, user_id)
            if target.is_owner:
                raise OwnershipRequired(
                    "the owner always holds every permission; transfer ownership first"
                )
            self._no_escalation(actor_id, held, target.permissions, f"change user {user_id!r}")
            self._no_escalation(actor_id, held, wanted, "grant these permissions")
            member = attrs.evolve(target, permissions=wanted, granted_by=actor_id)
            uow.update_member(member)
            self._audit(
                work,
                account_id,
                actor_id,
                "member.permissions_changed",
                user_id,
                before=target.permissions.to_list(),
                after=wanted.to_list(),
            )
        return member

    def remove_member(self, account_id: str, user_id: str, *, actor_id: str) -> None:
        """Remove a member (or leave, when ``actor_id == user_id``).

        The invitations the member sent and that are still pending are revoked with it.
        """
        _check_ids(account_id=account_id, user_id=user_id, actor_id=actor_id)
        with self._write() as work:
            uow = work.uow
            self._account(uow, account_id)
            target = self._member(uow, account_id, user_id)
            if target.is_owner:
                raise OwnershipRequired(
                    "the owner cannot be removed or leave; transfer ownership first"
                )
            if actor_id != user_id:
                held = self._require(uow, account_id, actor_id, "users.manage")
                self._no_escalation(actor_id, held, target.permissions, f"remove user {user_id!r}")
            uow.delete_member(account_id, user_id)
            action = "member.left" if actor_id == user_id else "member.removed"
            self._audit(work, account_id, actor_id, action, user_id)
            for inv in uow.invitations(account_id, status="pending", invited_by=user_id):
                self._close_invitation(work, inv, "revoked", actor_id, reason="inviter removed")

    # -- authorization (the hot path) -------------------------------------------------

    def can(self, user_id: str, account_id: str, permission: str) -> bool:
        """May *user_id* use *permission* in *account_id*? ``UnknownPermission`` on a typo."""
        # The hot path: two type() tests here, the full check only when one fails.
        if type(user_id) is not str or type(account_id) is not str:
            _not_str(user_id=user_id, account_id=account_id)
        # The catalog's dict itself, not Catalog.__contains__: a Python call less per
        # request. An unhashable permission is as unknown as a misspelt one.
        try:
            known = permission in self.catalog._by_name
        except TypeError:
            known = False
        if not known:
            raise self.catalog.unknown(permission)
        if user_id == SYSTEM:
            return True
        held = self._store.grant(account_id, user_id)
        return held is not None and (held.is_all or permission in held.names)

    def require(self, user_id: str, account_id: str, permission: str) -> None:
        """Raise ``PermissionDenied`` unless ``can()`` says yes."""
        if not self.can(user_id, account_id, permission):
            raise PermissionDenied(
                f"user {user_id!r} may not use {permission!r} in account {account_id!r}",
                user_id=user_id,
                account_id=account_id,
                permission=permission,
            )

    def permissions_of(self, user_id: str, account_id: str) -> PermissionSet:
        """What the user holds in the account; ``PermissionSet.none()`` for a non-member."""
        if type(user_id) is not str or type(account_id) is not str:
            _not_str(user_id=user_id, account_id=account_id)
        if user_id == SYSTEM:
            return _ALL
        held = self._store.grant(account_id, user_id)
        return PermissionSet.none() if held is None else held

    # -- invitations ------------------------------------------------------------------

    def accept_link(self, token: str) -> str:
        """The link of the invitation mail for *token*, built from ``accept_url``.

        For a host that shows or sends the link itself; like the token, never log it.
        """
        # Not check_line: its message is fine, but a token is never echoed in any error.
        if not isinstance(token, str) or not token.isascii():
            got = "non-ASCII text" if isinstance(token, str) else type(token).__name__
            raise ValidationError(
                f"token must be the string invite() or resend_invitation() returned, not {got}"
            )
        from urllib.parse import quote

        quoted = quote(token, safe="")
        if "{token}" in self.accept_url:
            return self.accept_url.replace("{token}", quoted)
        sep = "&" if "?" in self.accept_url else "?"
        return f"{self.accept_url}{sep}token={quoted}"

    def _check_rate(self, work: _Work, account_id: str) -> None:
        since = work.now - self.rate_window
        # A send leaves the window exactly rate_window later, so retry_after really works.
        times = [t for t in work.uow.event_times(account_id, _SEND_ACTIONS, since) if t > since]
        if len(times) >= self.rate_limit:
            retry_after = times[len(times) - self.rate_limit] + self.rate_window
            raise RateLimited(
                f"account {account_id!r} sent {len(times)} invitations in the last "
                f"{self.rate_window}; the limit is {self.rate_limit}. Try again after "
                f"{retry_after:%Y-%m-%d %H:%M} UTC",
                retry_after=retry_after,
            )

    def _queue_invitation(
        self, work: _Work, inv: Invitation, *, fresh: bool = False
    ) -> OutboxMessage:
        if not fresh:  # a new invitation has no earlier mail to cancel: one query less
            self._cancel_mail(work, inv.id)
        row = OutboxMessage(
            id=_new_id("msg"),
            account_id=inv.account_id,
            kind="invitation",
            recipient=inv.email,
            message_id=f"<{_token_hex(12)}@{self._msgid_domain}>",
            created_at=work.now,
            next_attempt_at=work.now + _DELIVERY_LEASE,
            invitation_id=inv.id,
        )
        work.uow.add_outbox(row)
        return row

    def invite(
        self,
        account_id: str,
        *,
        actor_id: str,
        email: str,
        permissions: PermissionSet,
        language: str | None = None,
    ) -> Invitation:
        """Invite *email* with *permissions*; the returned invitation carries the token.

        Needs ``users.manage`` and every granted permission. The mail is written to the
        outbox in the same unit of work and sent at once; if the mailer fails the
        invitation stays pending and ``DeliveryFailed`` names the waiting message.
        """
        account_id = _check_id("account_id", account_id)
        actor_id = _check_id("actor_id", actor_id)
        wanted = self._permission_set(permissions)
        address = normalize_email(
            email, check_deliverability=self.check_deliverability, what="email"
        )
        language = self._language(language)
        with self._write() as work:
            uow = work.uow
            account = self._account(uow, account_id)
            held = self._require(uow, account_id, actor_id, "users.manage")
            self._no_escalation(actor_id, held, wanted, "grant these permissions")
            if uow.member_by_email(account_id, address.key) is not None:
                raise AlreadyMember(
                    f"{address.email} is already a member of {account.name!r}; change their "
                    "permissions with set_permissions() instead"
                )
            existing = uow.pending_invitation_for(account_id, address.key)
            if existing is not None:
                if self._status_now(uow, existing, work.now) == "revoked":
                    # Its inviter may no longer grant it: it counts as revoked, so a new
                    # invitation replaces it instead of being refused.
                    self._close_invitation(
                        work,
                        existing,
                        "revoked",
                        SYSTEM,
                        reason="inviter lost the right to grant it",
                    )
                elif not existing.is_expired(work.now):
                    raise AlreadyInvited(
                        f"{address.email} has a pending invitation ({existing.id}) until "
                        f"{existing.expires_at:%Y-%m-%d}; resend or revoke it instead"
                    )
                else:
                    self._close_invitation(work, existing, "expired", SYSTEM)
            self._check_rate(work, account_id)
            inv_id = _new_id("inv")
            token, digest = self._tokens.issue(inv_id)
            inv = Invitation(
                id=inv_id,
                account_id=account_id,
                email=address.email,
                permissions=wanted,
                invited_by=actor_id,
                status="pending",
                created_at=work.now,
                expires_at=work.now + self.invitation_ttl,
                token_hash=digest,
                language=language,
            )
            uow.add_invitation(inv, address.key)
            row = self._queue_invitation(work, inv, fresh=True)
            # Rendered before commit: a header the template breaks stores nothing.
            message = self._render_invitation(uow, account, inv, token, row, work.now)
            self._audit(
                work,
                account_id,
                actor_id,
                "invitation.sent",
                inv_id,
                email=address.email,
                permissions=wanted.to_list(),
            )
        self._deliver_now([(row, message)], inv.id)
        return attrs.evolve(inv, token=token, token_hash=None)

    def resend_invitation(self, invitation_id: str, *, actor_id: str) -> Invitation:
        """Send a new mail with a new token; the old link stops working.

        The lifetime starts again. Counts against the rate limit like a first send. The
        actor becomes the inviter: it holds what the invitation grants (or this fails),
        and acceptance re-checks the rights of whoever sent the link that is used.
        """
        _check_ids(invitation_id=invitation_id, actor_id=actor_id)
        with self._write() as work:
            uow = work.uow
            inv = self._invitation(uow, invitation_id)
            account = self._account(uow, inv.account_id)
            held = self._require(uow, inv.account_id, actor_id, "users.manage")
            self._no_escalation(actor_id, held, inv.permissions, "resend this invitation")
            if inv.status != "pending":
                self._raise_closed(inv)
            if uow.member_by_email(inv.account_id, normalize_email(inv.email).key) is not None:
                raise AlreadyMember(
                    f"{inv.email} has become a member meanwhile; revoke invitation {inv.id} "
                    "instead of resending it"
                )
            if self._inviter_lost_rights(uow, inv):
                raise InvitationRevoked(
                    f"invitation {inv.id} counts as revoked: the member who sent it may no "
                    "longer grant it; send a new invitation instead"
                )
            self._check_rate(work, inv.account_id)
            token, digest = self._tokens.issue(inv.id)
            inv = attrs.evolve(
                inv,
                token_hash=digest,
                expires_at=work.now + self.invitation_ttl,
                sent_count=inv.sent_count + 1,
                invited_by=actor_id,
            )
            uow.update_invitation(inv)
            row = self._queue_invitation(work, inv)
            message = self._render_invitation(uow, account, inv, token, row, work.now)
            self._audit(
                work, inv.account_id, actor_id, "invitation.resent", inv.id, email=inv.email
            )
        self._deliver_now([(row, message)], inv.id)
        return attrs.evolve(inv, token=token, token_hash=None)

    def revoke_invitation(self, invitation_id: str, *, actor_id: str) -> Invitation:
        """Withdraw a pending invitation; its link stops working at once."""
        _check_ids(invitation_id=invitation_id, actor_id=actor_id)
        with self._write() as work:
            uow = work.uow
            inv = self._invitation(uow, invitation_id)
            held = self._require(uow, inv.account_id, actor_id, "users.manage")
            if actor_id != inv.invited_by:
                self._no_escalation(actor_id, held, inv.permissions, "revoke this invitation")
            if inv.status == "revoked":
                return attrs.evolve(inv, token_hash=None)
            if inv.status != "pending":
                self._raise_closed(inv)
            inv = self._close_invitation(work, inv, "revoked", actor_id)
        return attrs.evolve(inv, token_hash=None)

    def pending_invitations(self, account_id: str) -> list[Invitation]:
        """Invitations still waiting for an answer, oldest first; expired ones are left out."""
        _check_id("account_id", account_id)
        now = self.clock.now()
        with self._read() as uow:
            self._account(uow, account_id)
            return [
                attrs.evolve(i, token_hash=None)
                for i in uow.invitations(account_id, status="pending")
                if self._status_now(uow, i, now) == "pending"
            ]

    def invitations(self, account_id: str) -> list[Invitation]:
        """Every invitation of the account, oldest first, with its status as of now."""
        _check_id("account_id", account_id)
        now = self.clock.now()
        with self._read() as uow:
            self._account(uow, account_id)
            return [
                attrs.evolve(i, status=self._status_now(uow, i, now), token_hash=None)
                for i in uow.invitations(account_id)
            ]

    def get_invitation(self, invitation_id: str) -> Invitation:
        _check_id("invitation_id", invitation_id)
        now = self.clock.now()
        with self._read() as uow:
            inv = self._invitation(uow, invitation_id)
            return attrs.evolve(inv, status=self._status_now(uow, inv, now), token_hash=None)

    def inspect_invitation(self, token: str) -> Invitation:
        """The invitation a token names, with its status as of now; changes nothing.

        For the landing page: show the account, the address and the permissions before the
        user accepts. Raises ``InvalidInvitation`` only for a forged or replaced token.
        """
        now = self.clock.now()
        with self._read() as uow:
            inv = self._by_token(uow, token)
            status = self._status_now(uow, inv, now)
        return attrs.evolve(inv, status=status, token_hash=None)

    def accept_invitation(self, token: str, *, user_id: str, email: str) -> Member:
        """Make the user a member with the invitation's permissions.

        *email* is the address the host application verified for the user; it must be the
        invited one unless ``require_email_match=False``.
        """
        user_id = _check_user("user_id", user_id)
        address = normalize_email(email, check_deliverability=False, what="email")
        member: Member | None = None
        with self._write() as work:
            uow = work.uow
            inv = self._by_token(uow, token)
            self._check_open(inv, work.now)
            if self.require_email_match:
                invited = normalize_email(inv.email).key
                if invited != address.key:
                    raise EmailMismatch(
                        f"this invitation was sent to another address than {address.email}; "
                        "log in with the invited address, or ask the account owner to invite "
                        "this one"
                    )
            if self._inviter_lost_rights(uow, inv):
                self._close_invitation(
                    work, inv, "revoked", SYSTEM, reason="inviter lost the right to grant it"
                )
            else:
                if uow.get_member(inv.account_id, user_id) is not None or (
                    uow.member_by_email(inv.account_id, address.key) is not None
                ):
                    raise AlreadyMember(
                        f"user {user_id!r} ({address.email}) is already a member of this "
                        "account; nothing to accept"
                    )
                member = Member(
                    account_id=inv.account_id,
                    user_id=user_id,
                    email=address.email,
                    role="member",
                    permissions=inv.permissions,
                    joined_at=work.now,
                    granted_by=inv.invited_by,
                )
                uow.add_member(member, address.key)
                uow.update_invitation(
                    attrs.evolve(inv, status="accepted", closed_at=work.now, accepted_by=user_id)
                )
                self._cancel_mail(work, inv.id)
                self._audit(
                    work,
                    inv.account_id,
                    user_id,
                    "invitation.accepted",
                    inv.id,
                    email=address.email,
                    permissions=inv.permissions.to_list(),
                )
        if member is None:
            raise InvitationRevoked(
                "this invitation was withdrawn: the person who sent it may no longer grant "
                "these permissions; ask the account owner for a new invitation"
            )
        return member

    def decline_invitation(self, token: str) -> Invitation:
        """The invitee says no; the link stops working."""
        with self._write() as work:
            inv = self._by_token(work.uow, token)
            self._check_open(inv, work.now)
            inv = self._close_invitation(work, inv, "declined", f"invitee:{inv.email}")
        return attrs.evolve(inv, token_hash=None)

    def _invitation(self, uow: UnitOfWork, invitation_id: str) -> Invitation:
        inv = uow.get_invitation(invitation_id)
        if inv is None:
            raise InvitationNotFound(
                f"no invitation {invitation_id!r}; pending_invitations(account_id) lists them"
            )
        return inv

    def _by_token(self, uow: UnitOfWork, token: str) -> Invitation:
        inv_id = self._tokens.open(token)
        inv = uow.get_invitation(inv_id)
        if inv is None or not hash_matches(token, inv.token_hash):
            raise InvalidInvitation(
                "this invitation link is no longer valid: a newer invitation mail replaced "
                "it, or it was withdrawn; use the link in the newest mail or ask for a new one"
            )
        return inv

    @staticmethod
    def _raise_closed(inv: Invitation) -> None:
        if inv.status == "accepted":
            raise InvitationUsed(
                f"invitation {inv.id} was already accepted; the member can simply log in"
            )
        if inv.status == "expired":
            raise InvitationExpired(
                f"invitation {inv.id} expired on {inv.expires_at:%Y-%m-%d}; "
                "ask the account owner to send a new one"
            )
        raise InvitationRevoked(
            f"invitation {inv.id} was {inv.status}; ask the account owner for a new invitation"
        )

    @classmethod
    def _check_open(cls, inv: Invitation, now: datetime) -> None:
        if inv.status != "pending":
            cls._raise_closed(inv)
        if inv.is_expired(now):
            raise InvitationExpired(
                f"this invitation expired on {inv.expires_at:%Y-%m-%d %H:%M} UTC; "
                "ask the account owner to resend it"
            )

    def _status_now(self, uow: UnitOfWork, inv: Invitation, now: datetime) -> InvitationStatus:
        """The status a user sees: past its lifetime it is expired, and once its inviter
        may no longer grant it, it counts as revoked (DESIGN.md, "Invitations")."""
        status = inv.status_at(now)
        if status == "pending" and self._inviter_lost_rights(uow, inv):
            return "revoked"
        return status

    @staticmethod
    def _inviter_lost_rights(uow: UnitOfWork, inv: Invitation) -> bool:
        if inv.invited_by == SYSTEM:
            return False
        inviter = uow.get_member(inv.account_id, inv.invited_by)
        return (
            inviter is None
            or "users.manage" not in inviter.permissions
            or not inv.permissions.issubset(inviter.permissions)
        )

    @staticmethod
    def _cancel_mail(work: _Work, invitation_id: str) -> None:
        """An invitation that is no longer pending must not be mailed (again)."""
        for row in work.uow.outbox(status="pending", invitation_id=invitation_id):
            work.uow.update_outbox(attrs.evolve(row, status="cancelled"))

    def _close_invitation(
        self,
        work: _Work,
        inv: Invitation,
        status: InvitationStatus,
        actor_id: str,
        **details: Any,
    ) -> Invitation:
        closed = attrs.evolve(inv, status=status, closed_at=work.now)
        work.uow.update_invitation(closed)
        self._cancel_mail(work, inv.id)
        self._audit(work, inv.account_id, actor_id, f"invitation.{status}", inv.id, **details)
        return closed

    # -- contacts ---------------------------------------------------------------------

    def _contact(self, uow: UnitOfWork, contact_id: str) -> Contact:
        contact = uow.get_contact(contact_id)
        if contact is None:
            raise ContactNotFound(f"no contact {contact_id!r}; contacts(account_id) lists them")
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
            check_line(f"contact {key}", value)
            out[key] = value.strip()
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
        name = _check_id("contact name", name).strip()
        address = normalize_email(
            email, check_deliverability=self.check_deliverability, what="email"
        )
        cats = self.categories.check(categories)
        extra = self._contact_details(details, _CONTACT_FIELDS)
        with self._write() as work:
            self._account(work.uow, account_id)
            self._require(work.uow, account_id, actor_id, "contacts.manage")
            contact = Contact(
                id=_new_id("con"),
                account_id=account_id,
                name=name,
                email=address.email,
                categories=cats,
                created_at=work.now,
                **extra,
            )
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
        fields = self._contact_details(
            {k: v for k, v in changes.items() if k != "categories"},
            ("name", "email", *_CONTACT_FIELDS),
        )
        if "categories" in changes:
            fields_cats: frozenset[str] | None = self.categories.check(changes["categories"])
        else:
            fields_cats = None
        if "name" in fields:
            _check_id("contact name", fields["name"])
        address = (
            normalize_email(fields["email"], check_deliverability=self.check_deliverability)
            if "email" in fields
            else None
        )
        with self._write() as work:
            contact = self._contact(work.uow, contact_id)
            self._require(work.uow, contact.account_id, actor_id, "contacts.manage")
            update: dict[str, Any] = dict(fields)
            if address is not None:
                update["email"] = address.email
            if fields_cats is not None:
                update["categories"] = fields_cats
            updated = attrs.evolve(contact, **update)
            if updated == contact:
                return contact  # nothing changed, so nothing to write or audit
            key = (address or normalize_email(contact.email)).key
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
        _check_ids(contact_id=contact_id, actor_id=actor_id)
        with self._write() as work:
            contact = self._contact(work.uow, contact_id)
            self._require(work.uow, contact.account_id, actor_id, "contacts.manage")
            work.uow.delete_contact(contact_id)
            self._audit(
                work, contact.account_id, actor_id, "contact.removed", contact_id,
                email=contact.email,
            )  # fmt: skip

    def get_contact(self, contact_id: str) -> Contact:
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
        _check_text("text", text)
        if html is not None:
            _check_text("html", html, "a string or None")
        cat = self.categories[category]
        addresses = self.recipients(account_id, category)
        with self._write() as work:
            account = self._account(work.uow, account_id)
            batch = []
            for to in addresses:
                row_id = _new_id("msg")
                message_id = f"<{_token_hex(12)}@{self._msgid_domain}>"
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
                message = build_message(
                    sender=self.sender,
                    to=to,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    message_id=message_id,
                    language=language,
                    date=work.now,
                )
                row = OutboxMessage(
                    id=row_id,
                    account_id=account_id,
                    kind=f"notification.{category}",
                    recipient=to,
                    message_id=message_id,
                    created_at=work.now,
                    next_attempt_at=work.now + _DELIVERY_LEASE,
                    message=message.as_bytes(),
                )
                work.uow.add_outbox(row)
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
        self._deliver_now(batch, None)
        return addresses

    # -- mail delivery ----------------------------------------------------------------

    def _render_invitation(
        self,
        uow: UnitOfWork,
        account: Account,
        inv: Invitation,
        token: str,
        row: OutboxMessage,
        now: datetime,
    ) -> EmailMessage:
        language = inv.language
        inviter = uow.get_member(inv.account_id, inv.invited_by)
        # SYSTEM (the vendor's staff) invites on the owner's behalf, so the mail names the owner.
        inviter_email = inviter.email if inviter is not None else account.owner_email
        labels = [
            p.label_for(language)
            for p in self.catalog
            if not inv.permissions.is_all and p.name in inv.permissions.names
        ]
        rendered = self.templates.invitation(
            InvitationContext(
                language=language,
                brand=getattr(self.templates, "brand", None) or "",
                account_name=account.name,
                inviter_email=inviter_email,
                invitee_email=inv.email,
                accept_url=self.accept_link(token),
                expires_at=inv.expires_at,
                all_permissions=inv.permissions.is_all,
                permission_labels=labels,
            )
        )
        return build_message(
            sender=self.sender,
            to=inv.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=row.message_id,
            language=language,
            date=now,
        )

    def _send(self, row: OutboxMessage, message: EmailMessage) -> str | None:
        """Hand *message* to the mailer; the error text if it failed."""
        try:
            self._mailer.send(message)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            # Never log the message: an invitation carries its token in the body.
            _log().warning("delivery of %s to %s failed: %s", row.id, row.recipient, error)
            return error
        return None

    def _record_unit(self) -> AbstractContextManager[UnitOfWork]:
        if self._durable_hint:
            try:
                return self._store.begin(durable=False)
            except TypeError:
                # A backend written before Store.begin() took durable= (or a wrapper that
                # forwards to one) keeps working: its delivery records are durable.
                self._durable_hint = False
        return self._store.begin()

    def _record(self, row: OutboxMessage, error: str | None) -> OutboxMessage:
        now = self.clock.now()
        # Not durable: lost in a power cut, this record means the mail goes out again (at
        # least once, as promised; an invitation's with a new link). It saves an fsync per
        # mail (issue 6).
        with self._record_unit() as uow:
            current = uow.get_outbox(row.id) or row
            if error is None:
                done = attrs.evolve(
                    current, status="sent", attempts=current.attempts + 1, sent_at=now,
                    last_error=None,
                )  # fmt: skip
            else:
                # The exponent is capped: timedelta overflows near 2**40 minutes, which
                # a row failing every few hours for weeks would otherwise reach.
                factor = 2 ** min(current.attempts, 30)
                backoff = min(self.retry_backoff * factor, self.max_retry_backoff)
                done = attrs.evolve(
                    current,
                    attempts=current.attempts + 1,
                    last_error=error,
                    next_attempt_at=now + backoff,
                )
            uow.update_outbox(done)
            uow.commit()
        return done

    def _deliver_now(
        self, batch: Sequence[tuple[OutboxMessage, EmailMessage]], invitation_id: str | None
    ) -> None:
        failed = []
        for row, message in batch:
            error = self._send(row, message)
            self._record(row, error)
            if error is not None:
                failed.append(row.id)
        if failed:
            if invitation_id:
                what = (
                    "the invitation is stored and its mail will be retried by "
                    "deliver_pending() (or send it again with resend_invitation())"
                )
            else:
                what = "they wait in the outbox and deliver_pending() retries them"
            raise DeliveryFailed(
                f"{len(failed)} of {len(batch)} message(s) could not be sent now; {what}",
                message_ids=failed,
                invitation_id=invitation_id,
            )

    def pending_messages(self, account_id: str | None = None) -> list[OutboxMessage]:
        """Outbox messages not yet delivered, oldest first, with attempts and last error;
        only *account_id*'s if given (``AccountNotFound`` if there is no such account)."""
        if account_id is None:
            with self._read() as uow:
                return uow.outbox(status="pending")
        _check_id("account_id", account_id)
        with self._read() as uow:
            self._account(uow, account_id)
            # Few rows wait at any time, so they are filtered here rather than in a query
            # every backend would have to add.
            return [m for m in uow.outbox(status="pending") if m.account_id == account_id]

    def deliver_pending(self, *, limit: int = 100) -> list[OutboxMessage]:
        """Try each due outbox message once; returns the rows as they are afterwards.

        An invitation mail gets a fresh token (the earlier one was never delivered, and
        tokens are never stored), so only the newest mail's link works.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(f"limit must be a positive integer, not {limit!r}")
        now = self.clock.now()
        with self._read() as uow:
            due = uow.outbox(status="pending", due_before=now, limit=limit)
        results = []
        for row in due:
            try:
                prepared = self._prepare(row, now)
            except StorageError:
                raise
            except Exception as exc:
                # A row whose mail cannot be rendered (say, a vendor template that raises)
                # must not block the rows behind it: it is recorded and backs off.
                results.append(self._record(row, f"{type(exc).__name__}: {exc}"[:500]))
                continue
            if prepared is None:
                continue
            claimed, message = prepared
            results.append(self._record(claimed, self._send(claimed, message)))
        return results

    def _prepare(
        self, row: OutboxMessage, now: datetime
    ) -> tuple[OutboxMessage, EmailMessage] | None:
        """Claim a due row and build its message; ``None`` if it is no longer due."""
        with self._write() as work:
            current = work.uow.get_outbox(row.id)
            # Re-read under the write lock: another deliver_pending() may have sent or
            # claimed it since the list was read.
            if current is None or current.status != "pending" or current.next_attempt_at > now:
                return None
            claimed = attrs.evolve(current, next_attempt_at=work.now + _DELIVERY_LEASE)
            if current.kind != "invitation":
                from email import message_from_bytes, policy
                from email.message import EmailMessage

                assert current.message is not None
                parsed = message_from_bytes(current.message, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                work.uow.update_outbox(claimed)
                return claimed, parsed
            inv = work.uow.get_invitation(current.invitation_id or "")
            if (
                inv is None
                or inv.status != "pending"
                or inv.is_expired(work.now)
                # Acceptance would call it revoked; do not mail a link that cannot work.
                or self._inviter_lost_rights(work.uow, inv)
            ):
                work.uow.update_outbox(attrs.evolve(current, status="cancelled"))
                return None
            account = self._account(work.uow, inv.account_id)
            # The token of the failed attempt was never delivered and is not stored, so
            # the retry carries a fresh one; only its hash replaces the old.
            token, digest = self._tokens.issue(inv.id)
            inv = attrs.evolve(inv, token_hash=digest)
            work.uow.update_invitation(inv)
            message = self._render_invitation(work.uow, account, inv, token, claimed, work.now)
            work.uow.update_outbox(claimed)
            # A new link replaces the old one: a change, so it is audited like any other.
            self._audit(
                work, inv.account_id, SYSTEM, "invitation.mail_retried", inv.id,
                email=inv.email, attempt=current.attempts + 1,
            )  # fmt: skip
        return claimed, message

    # -- audit ------------------------------------------------------------------------

    def audit_log(self, account_id: str, *, limit: int = 50) -> list[AuditEvent]:
        """The account's newest *limit* events, newest first."""
        _check_id("account_id", account_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(f"limit must be a non-negative integer, not {limit!r}")
        with self._read() as uow:
            self._account(uow, account_id)
            return uow.events(account_id, limit=limit)

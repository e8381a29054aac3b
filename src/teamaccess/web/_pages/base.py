"""The steps every page shares: the login, the membership, the permission a page
needs, the confirmation page and the permission chooser of the forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from ... import (
    RESOURCE_ID_MAX_LENGTH,
    Account,
    AccountNotFound,
    Conflict,
    DeliveryFailed,
    InvitationError,
    Member,
    MemberNotFound,
    NotFound,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    RateLimited,
    StorageError,
    TeamAccess,
    TeamAccessError,
    ValidationError,
)
from ..._service.checks import _log
from .._core import Render, Request, User
from .._i18n import translate
from .._view import format_datetime, permission_groups

__all__ = ["ResourcesHook", "UrlHook"]

UrlHook = str | Callable[[str], str]

#: the vendor's hook: an account id to its resources as ``(id, display name)`` pairs, or
#: as a mapping of id to display name
ResourcesHook = Callable[[str], Iterable[tuple[str, str]] | Mapping[str, str]]


class _HookFailed(ValidationError):
    """The vendor's ``resources`` hook raised, or returned what no form can offer: told
    to the developer on the ``teamaccess`` logger and to the customer as a list that is
    unavailable (not as their input to check)."""


_STATUS: tuple[tuple[type[TeamAccessError], int], ...] = (
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvitationError, 410),
    (Conflict, 409),
    # before ValidationError: the vendor's hook failed, nothing the customer sent is wrong
    (_HookFailed, 503),
    (ValidationError, 400),
    (RateLimited, 429),
    (StorageError, 503),
    (DeliveryFailed, 202),
)


#: how many of an account's newest events a second confirmation looks back through
_LATELY = 200


def _status(exc: TeamAccessError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


def _with_query(path: str, **values: str) -> str:
    """*path* with query parameters *values* set (others kept)."""
    base, _, query = path.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in values]
    return f"{base}?{urlencode([*pairs, *values.items()])}"


class _LoginRequired(Exception):
    """Raised by a handler that needs a logged-in user; becomes the redirect to the login."""


class _Forbidden(Exception):
    """The user may see the account but not this page (a 403 page, not an error class)."""


def _holdable(resource_id: str) -> bool:
    """Whether a grant can be on *resource_id* (the library's rule for resource ids)."""
    try:
        PermissionSet.on("resource", resource_id)
    except ValidationError:
        return False
    return True


def _inactive_message(status: str, until: datetime | None, account_name: str, language: str) -> str:
    """Why a suspended or expired member can use nothing (the pages and the guard)."""
    if status == "suspended":
        text = "Your access to {account} is suspended. The account owner can reactivate it."
    else:
        text = "Your access to {account} ended on {when}. The account owner can extend it."
    when = format_datetime(until, language)
    return translate(text, language).format(account=account_name, when=when)


class _BadChoice(Exception):
    """The permission chooser's resources cannot be what the page offered (a tampered
    form, or a service gone since): the message is in the user's language."""


def _read_resources(listed: Any) -> dict[str, str]:
    """The vendor's hook's answer *listed* as resource id to display name; ``_HookFailed``
    for anything else."""
    names: dict[str, str] = {}
    try:
        # A mapping is read as id to name; iterated, it would give its keys, and a
        # key of two characters would unpack into an id and a name of one each.
        pairs = listed.items() if isinstance(listed, Mapping) else listed
        for pair in pairs:
            if isinstance(pair, (str, bytes)):
                raise TypeError
            resource_id, name = pair
            if not isinstance(resource_id, str) or not isinstance(name, str):
                raise TypeError
            if not _holdable(resource_id):
                # Offered, it could never be granted: the save would fail instead.
                raise _HookFailed(
                    f"resources(account_id) listed a resource id no grant can be on, "
                    f"{resource_id[:40]!r}: ids are non-empty single lines of at most "
                    f"{RESOURCE_ID_MAX_LENGTH} characters, without surrounding spaces"
                )
            names[resource_id] = name
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        # The vendor's bug, said as such rather than as a bare unpacking error.
        raise _HookFailed(
            "resources(account_id) must return (resource id, display name) pairs of "
            "strings, such as [('srv-1', 'Webhosting example.com')], or a mapping of "
            "resource id to display name"
        ) from None
    return names


class _PageBase:
    """What the page mixins share; :class:`Pages` sets the attributes."""

    team: TeamAccess
    login_url: UrlHook
    register_url: UrlHook | None
    logout_url: UrlHook | None
    home_url: Callable[[str], str] | None
    resources: ResourcesHook | None
    page_size: int

    @staticmethod
    def _hook(hook: UrlHook, next_path: str) -> str:
        if callable(hook):
            return hook(next_path)
        return hook.replace("{next}", quote(next_path, safe=""))

    @staticmethod
    def _message(request: Request, status: int, title: str, text: str) -> Render:
        """A page with *title* (translated here) and *text* (in the user's language)."""
        return Render(
            "teamaccess/error.html",
            {"title": translate(title, request.language), "message": text},
            status,
        )

    # -- shared steps -----------------------------------------------------------------

    @staticmethod
    def _user(request: Request) -> User:
        if request.user is None:
            raise _LoginRequired
        return request.user

    def _membership(
        self, request: Request, account_id: str, *, leaving: bool = False
    ) -> tuple[User, Account, Member]:
        """The user, the account and the user's membership; a stranger sees "not found".

        A suspended or expired member can do nothing, reading the account's people
        included (addresses, phone numbers): a page that says why, unless *leaving*.
        """
        user = self._user(request)
        try:
            account = self.team.get_account(account_id)
            me = self.team.get_member(account_id, user.id)
        except (AccountNotFound, MemberNotFound):
            # One answer for both: a stranger cannot probe which account ids exist.
            raise AccountNotFound(f"no account {account_id!r} for this user") from None
        if me.status != "active" and not leaving:
            raise _Forbidden(
                _inactive_message(me.status, me.access_until, account.name, request.language)
            )
        return user, account, me

    def _base(self, account: Account, me: Member, section: str) -> dict[str, Any]:
        team = self.team
        return {
            "account": account,
            "me": me,
            "section": section,
            "can_manage_users": team.can(me.user_id, account.id, "users.manage"),
            "can_manage_contacts": team.can(me.user_id, account.id, "contacts.manage"),
            "held": me.permissions,
        }

    def _require_page(self, me: Member, account: Account, permission: str, lang: str) -> None:
        if not self.team.can(me.user_id, account.id, permission):
            label = self.team.catalog[permission].label_for(lang)
            raise _Forbidden(
                translate(
                    "This page needs the permission “{label}”. Ask the account owner to grant it.",
                    lang,
                ).format(label=label)
            )

    # -- confirmation -----------------------------------------------------------------

    @staticmethod
    def _confirmed(request: Request) -> bool:
        """Whether this is the confirmation page's POST. A GET, or a POST without it (an
        old form, a misclick that skipped the page), shows that page and changes nothing."""
        return request.method == "POST" and request.value("confirm") == "yes"

    def _changeable(self, me: Member, account: Account, user_id: str, lang: str) -> Member:
        """The member *me* is about to remove or suspend, for the page that asks first.

        The library decides on the confirmed POST; these are its rules as far as the
        page can tell, so nobody is asked to confirm what would then be refused.
        """
        self._require_page(me, account, "users.manage", lang)
        target = self.team.get_member(account.id, user_id)
        if target.is_owner:
            raise OwnershipRequired("the owner cannot be removed or suspended")
        if not target.permissions.issubset(me.permissions):
            raise PermissionDenied("the member holds permissions the actor does not")
        return target

    def _confirm(
        self,
        request: Request,
        account: Account,
        me: Member,
        section: str,
        *,
        title: str,
        question: str,
        effects: list[str],
        button: str,
        action: tuple[str, Mapping[str, str]],
        cancel: tuple[str, Mapping[str, str]],
    ) -> Render:
        """The page that names who is affected and what happens, with a confirm button
        (a POST with ``confirm=yes``) and a link back to *cancel*."""
        context = self._base(account, me, section)
        context.update(
            confirm={
                "title": title,
                "question": question,
                "effects": effects,
                "button": button,
                "endpoint": action[0],
                "params": dict(action[1]),
                "fields": {},
                "cancel": cancel[0],
                "cancel_params": dict(cancel[1]),
            }
        )
        return Render("teamaccess/confirm.html", context)

    def _scopes(
        self, permissions: PermissionSet, lang: str, names: Mapping[str, str] | None = None
    ) -> list[dict[str, str]]:
        """Grants on single resources: each permission's label and its resources (by
        their display name where the vendor's hook gives one, else by id)."""
        by_permission: dict[str, list[str]] = {}
        for name, resource in sorted(permissions.scopes):
            by_permission.setdefault(name, []).append((names or {}).get(resource, resource))
        return [
            {"label": self.team.catalog[name].label_for(lang), "resources": ", ".join(ids)}
            for name, ids in by_permission.items()
            if name in self.team.catalog
        ]

    def _removed_lately(self, account_id: str, actions: tuple[str, ...], target: str) -> bool:
        """Whether the account's newest events remove *target*: a removal confirmed twice
        (two tabs, a double click) finds the first one's. An id that was never in the
        account finds nothing, and stays "not found"."""
        events = self.team.audit_log(account_id, limit=_LATELY)
        return any(e.action in actions and e.target == target for e in events)

    def _emails(self, account_id: str) -> dict[str, str]:
        return {m.user_id: m.email for m in self.team.members(account_id)}

    def _resource_names(self, account_id: str) -> dict[str, str] | None:
        """The account's resources from the vendor's hook, id to display name; ``None``
        without the hook (the forms then offer account-wide grants only)."""
        if self.resources is None:
            return None
        try:
            return _read_resources(self.resources(account_id))
        except _HookFailed as exc:
            # The customer's page says only that the list is unavailable; the developer
            # reads here what is wrong with it.
            _log().error(
                "teamaccess.web: the resources hook's answer for account %s is unusable: %s",
                account_id, exc,
            )  # fmt: skip
            raise
        except Exception as exc:
            # Raised by the vendor's hook (its service API down, a bug): logged with its
            # traceback, and a page in the customer's language instead of a server error.
            _log().error(
                "teamaccess.web: the resources hook raised for account %s", account_id,
                exc_info=True,
            )  # fmt: skip
            raise _HookFailed(
                f"resources(account_id) raised {type(exc).__name__}; the traceback is "
                "logged on the 'teamaccess' logger"
            ) from exc

    def _chosen(
        self, request: Request, resources: Mapping[str, str] | None = None
    ) -> PermissionSet:
        """The permissions a form chose: all, a preset, or the ticked boxes.

        With *resources* (the account's, from the vendor's hook), a ticked permission the
        catalog marks ``scoped`` is granted "only on" the ticked resources when the form
        says so; a resource not in *resources* is a :class:`_BadChoice`, so nothing is
        written. Whether the actor may grant it is the library's decision.
        """
        scope = request.value("scope")
        if scope == "all":
            return PermissionSet.all()
        if scope.startswith("preset:"):
            try:
                return self.team.catalog.preset(scope.partition(":")[2])
            except ValidationError:
                # The vendor dropped it since the form was shown (or the form was altered).
                raise _BadChoice(translate(
                    "The chosen set of permissions is no longer offered. Reload the page "
                    "and choose again.", request.language)) from None  # fmt: skip
        catalog = self.team.catalog
        chosen = PermissionSet.none()
        for name in request.values("permission"):
            scoped = resources is not None and name in catalog and catalog[name].scoped
            if not scoped or request.value(f"where:{name}") != "some":
                chosen |= PermissionSet.of(name)
                continue
            assert resources is not None
            lang = request.language
            label = catalog[name].label_for(lang)
            ids = list(dict.fromkeys(request.values(f"on:{name}")))
            if not ids:
                raise _BadChoice(translate(
                    "Choose at least one service for “{label}”, or give it on the whole "
                    "account.", lang).format(label=label))  # fmt: skip
            if any(r not in resources for r in ids):
                raise _BadChoice(translate(
                    "“{label}” names a service this account does not have. Reload the page "
                    "and choose again.", lang).format(label=label))  # fmt: skip
            chosen |= PermissionSet.on(name, *ids)
        return chosen

    def _picked(self, request: Request) -> dict[str, tuple[str, frozenset[str]]]:
        """What a posted form chose per scoped permission: ``"account"`` or ``"some"``
        and the ticked resources (to show the form again as it was sent)."""
        return {
            name: (
                "some" if request.value(f"where:{name}") == "some" else "account",
                frozenset(request.values(f"on:{name}")),
            )
            for name in self.team.catalog.scoped_names()
        }

    @staticmethod
    def _picked_from(permissions: PermissionSet) -> dict[str, tuple[str, frozenset[str]]]:
        """What a member's grants look like in the chooser: "only on" their resources."""
        return {name: ("some", ids) for name, ids in permissions.scoped().items()}

    @staticmethod
    def _scope(request: Request) -> str:
        scope = request.value("scope")
        return scope if scope == "all" or scope.startswith("preset:") else "selected"

    @staticmethod
    def _nothing_chosen(request: Request) -> bool:
        return _PageBase._scope(request) == "selected" and not request.values("permission")

    @staticmethod
    def _day(value: str) -> datetime | None:
        """A form's date (``2026-12-31``) as the start of that day in UTC; ``None`` if empty.

        ``ValueError`` for anything else; the caller words it.
        """
        if not value.strip():
            return None
        day = date.fromisoformat(value.strip())
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    def _chooser(
        self,
        me: Member,
        lang: str,
        *,
        scope: str,
        selected: Iterable[str],
        resources: Mapping[str, str] | None = None,
        picked: Mapping[str, tuple[str, frozenset[str]]] | None = None,
    ) -> dict[str, Any]:
        """The "all / select" block of a form: only what the actor may grant is offered.

        With *resources*, each scoped permission offers "on the whole account" (if the
        actor holds it so) or "only on" the resources the actor holds it on; *picked*
        is what the form shows chosen (see :meth:`_picked`).
        """
        catalog = self.team.catalog
        presets = [
            {
                "value": f"preset:{p.name}",
                "label": p.label_for(lang),
                "permissions": ", ".join(
                    catalog[n].label_for(lang) for n in catalog.names() if n in p.permissions
                ),
            }
            for p in catalog.presets()
            # Offer only what this member may grant; the library would refuse the rest.
            if p.permissions.issubset(me.permissions)
        ]
        held = me.permissions
        offered = held
        if resources is not None:
            # An actor holding a scoped permission on some of the listed resources only
            # may grant it there: it is offered, "only on" those.
            offered = held | PermissionSet.of(
                *(
                    name
                    for name in catalog.scoped_names()
                    if any(held.allows(name, r) for r in resources)
                )
            )
        groups = permission_groups(catalog, lang, only=offered, checked=frozenset(selected))
        if resources is not None:
            picked = picked or {}
            # Element ids by position: permission names may hold any character, and
            # "a.b" and "a-b" would make the same id (a hint read for the wrong choice).
            position = 0
            for group in groups:
                for item in group["items"]:
                    name = item["name"]
                    if not catalog[name].scoped:
                        continue
                    whole = name in held
                    mode, ids = picked.get(name, ("account", frozenset()))
                    position += 1
                    item["where"] = {
                        "key": f"ta-where-{position}",
                        "whole": whole,
                        "mode": mode if whole else "some",
                        "resources": [
                            {"id": r, "name": label, "checked": r in ids}
                            for r, label in resources.items()
                            if held.allows(name, r)
                        ],
                    }
        return {
            "scope": scope,
            "groups": groups,
            "can_grant_all": me.permissions.is_all,
            "presets": presets,
        }

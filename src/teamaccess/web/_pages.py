"""The page handlers: thin views over the public ``TeamAccess`` API.

Each handler takes a :class:`Request` and the route's parameters and returns a
:class:`Render` or a :class:`Redirect`. No SQL, no rule and no mail live here: the library
decides, and its errors become the page's words (``error_message``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import attrs

from .. import (
    NOTE_MAX_LENGTH,
    Account,
    AccountNotFound,
    AlreadyInvited,
    Conflict,
    ContactNotFound,
    DeliveryFailed,
    InvalidEmail,
    Invitation,
    InvitationError,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
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
    UnknownCategory,
    UnknownPermission,
    ValidationError,
    error_message,
    normalize_email,
)
from .. import Contact as _Contact
from ._core import LANGUAGES, ROUTES, Redirect, Render, Request, Result, User
from ._i18n import translate
from ._view import describe_event, format_date, format_datetime, permission_groups, person

__all__ = ["Pages"]

UrlHook = str | Callable[[str], str]

_STATUS: tuple[tuple[type[TeamAccessError], int], ...] = (
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvitationError, 410),
    (Conflict, 409),
    (ValidationError, 400),
    (RateLimited, 429),
    (StorageError, 503),
    (DeliveryFailed, 202),
)


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


class Pages:
    """The customer-center pages for *team*.

    *login_url* and *register_url* are the host's pages, as a string with ``{next}``
    (the quoted path to come back to) or a callable taking that path. *logout_url* is
    offered to a user logged in under another address than the invited one. *home_url*
    maps an account id to where a new member lands (default: the account's users page).
    *translations* adds or replaces words of the templates per language, for templates
    you override: ``{"de": {"Invoices": "Rechnungen"}}``.
    """

    def __init__(
        self,
        team: TeamAccess,
        *,
        login_url: UrlHook = "/login?next={next}",
        register_url: UrlHook | None = None,
        logout_url: str | None = None,
        home_url: Callable[[str], str] | None = None,
        page_size: int = 25,
        translations: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if not isinstance(team, TeamAccess):
            raise ValidationError(f"team must be a TeamAccess, not {type(team).__name__}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValidationError(f"page_size must be a positive integer, not {page_size!r}")
        self.team = team
        self.login_url = login_url
        self.register_url = register_url
        self.logout_url = logout_url
        self.home_url = home_url
        self.page_size = page_size
        #: your own words for overridden templates: {"de": {"Invoices": "Rechnungen"}}
        self.translations = {lang: dict(words) for lang, words in (translations or {}).items()}
        self._handlers: dict[str, Callable[..., Result]] = {
            route.endpoint: getattr(self, f"_{route.endpoint}") for route in ROUTES
        }

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, endpoint: str, request: Request, **params: str) -> Result:
        """Run the page *endpoint* (see ``ROUTES``) for *request*."""
        lang = request.language if request.language in LANGUAGES else "en"
        request = attrs.evolve(request, language=lang)
        if request.method == "POST":
            sent = request.value("csrf_token")
            if not request.csrf_token or not hmac.compare_digest(
                sent.encode(), request.csrf_token.encode()
            ):
                return self._message(
                    request, 400, "This form has expired",
                    translate("The form was open too long or came from another site. "
                              "Reload the page and try again.", lang),
                )  # fmt: skip
        try:
            result = self._handlers[endpoint](request, **params)
        except _LoginRequired:
            return Redirect(location=self._hook(self.login_url, request.path))
        except _Forbidden as exc:
            return self._message(request, 403, "Not allowed", str(exc))
        except TeamAccessError as exc:
            return self._error(request, exc)
        if isinstance(result, Render):
            self._common(result.context, request)
        return result

    def _common(self, context: dict[str, Any], request: Request) -> None:
        lang = request.language
        context.setdefault("user", request.user)
        context.setdefault("account", None)
        context.setdefault("section", "")
        context.update(
            lang=lang,
            other_lang="en" if lang == "de" else "de",
            _=lambda text, **kw: self._translate(text, lang).format(**kw),
            dt=lambda value: format_datetime(value, lang),
            day=lambda value: format_date(value, lang),
            csrf_token=request.csrf_token,
            notices=list(request.notices),
            path=request.path,
            # The same page in the other language; a page rendered by a POST has no URL to
            # show again, so it offers none.
            lang_url=_with_query(request.path, lang="en" if lang == "de" else "de")
            if request.method == "GET"
            else "",
        )

    def _translate(self, text: str, language: str) -> str:
        own = self.translations.get(language)
        if own is not None and text in own:
            return own[text]
        return translate(text, language)

    def _message(self, request: Request, status: int, title: str, text: str) -> Render:
        page = Render(
            "teamaccess/error.html",
            {"title": translate(title, request.language), "message": text},
            status,
        )
        self._common(page.context, request)
        return page

    def _error(self, request: Request, exc: TeamAccessError) -> Render:
        status = _status(exc)
        title = {403: "Not allowed", 404: "Not found", 410: "Invitation not valid"}.get(
            status, "That did not work"
        )
        return self._message(
            request, status, title, error_message(exc, request.language, catalog=self.team.catalog)
        )

    @staticmethod
    def _hook(hook: UrlHook, next_path: str) -> str:
        if callable(hook):
            return hook(next_path)
        return hook.replace("{next}", quote(next_path, safe=""))

    # -- shared steps -----------------------------------------------------------------

    @staticmethod
    def _user(request: Request) -> User:
        if request.user is None:
            raise _LoginRequired
        return request.user

    def _membership(self, request: Request, account_id: str) -> tuple[User, Account, Member]:
        """The user, the account and the user's membership; a stranger sees "not found"."""
        user = self._user(request)
        try:
            account = self.team.get_account(account_id)
            me = self.team.get_member(account_id, user.id)
        except (AccountNotFound, MemberNotFound):
            # One answer for both: a stranger cannot probe which account ids exist.
            raise AccountNotFound(f"no account {account_id!r} for this user") from None
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
                "cancel": cancel[0],
                "cancel_params": dict(cancel[1]),
            }
        )
        return Render("teamaccess/confirm.html", context)

    def _scopes(self, permissions: PermissionSet, lang: str) -> list[dict[str, str]]:
        """Grants on single resources: each permission's label and its resource ids."""
        by_permission: dict[str, list[str]] = {}
        for name, resource in sorted(permissions.scopes):
            by_permission.setdefault(name, []).append(resource)
        return [
            {"label": self.team.catalog[name].label_for(lang), "resources": ", ".join(ids)}
            for name, ids in by_permission.items()
            if name in self.team.catalog
        ]

    def _emails(self, account_id: str) -> dict[str, str]:
        return {m.user_id: m.email for m in self.team.members(account_id)}

    def _chosen(self, request: Request) -> PermissionSet:
        """The permissions a form chose: all, a preset, or the ticked boxes."""
        scope = request.value("scope")
        if scope == "all":
            return PermissionSet.all()
        if scope.startswith("preset:"):
            return self.team.catalog.preset(scope.partition(":")[2])
        return PermissionSet.of(*request.values("permission"))

    @staticmethod
    def _scope(request: Request) -> str:
        scope = request.value("scope")
        return scope if scope == "all" or scope.startswith("preset:") else "selected"

    @staticmethod
    def _nothing_chosen(request: Request) -> bool:
        return Pages._scope(request) == "selected" and not request.values("permission")

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
        self, me: Member, lang: str, *, scope: str, selected: Iterable[str]
    ) -> dict[str, Any]:
        """The "all / select" block of a form: only what the actor may grant is offered."""
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
        return {
            "scope": scope,
            "groups": permission_groups(
                catalog, lang, only=me.permissions, checked=frozenset(selected)
            ),
            "can_grant_all": me.permissions.is_all,
            "presets": presets,
        }

    # -- accounts ---------------------------------------------------------------------

    def _index(self, request: Request) -> Result:
        user = self._user(request)
        accounts = self.team.accounts_for(user.id)
        if len(accounts) == 1 and not request.notices:
            return Redirect("users", {"account_id": accounts[0].id})
        return Render("teamaccess/index.html", {"accounts": accounts})

    # -- users --------------------------------------------------------------------------

    def _users(
        self,
        request: Request,
        account_id: str,
        *,
        form: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Result:
        _, account, me = self._membership(request, account_id)
        lang = request.language
        context = self._base(account, me, "users")
        manage = context["can_manage_users"]
        emails = self._emails(account_id)
        members = []
        for member in self.team.members(account_id):
            is_me = member.user_id == me.user_id
            members.append(
                {
                    "member": member,
                    "is_me": is_me,
                    "all": member.permissions.is_all,
                    "groups": permission_groups(self.team.catalog, lang, only=member.permissions),
                    "scopes": self._scopes(member.permissions, lang),
                    # A hint for the buttons only: the library decides on the POST.
                    "manageable": manage
                    and not is_me
                    and not member.is_owner
                    and member.permissions.issubset(me.permissions),
                    "can_leave": is_me and not member.is_owner,
                }
            )
        invitations = [
            {
                "invitation": inv,
                "all": inv.permissions.is_all,
                "groups": permission_groups(self.team.catalog, lang, only=inv.permissions),
                "scopes": self._scopes(inv.permissions, lang),
                "inviter": person(inv.invited_by, emails, lang),
            }
            for inv in (self.team.pending_invitations(account_id) if manage else [])
        ]
        form = form or {"email": "", "scope": "all", "selected": (), "note": "", "until": ""}
        context.update(
            members=members,
            invitations=invitations,
            form=form,
            errors=errors or {},
            chooser=self._chooser(me, lang, scope=form["scope"], selected=form["selected"]),
            note_max=NOTE_MAX_LENGTH,
        )
        return Render("teamaccess/users.html", context, status)

    def _invite(self, request: Request, account_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        form: dict[str, Any] = {
            "email": request.value("email").strip(),
            "scope": self._scope(request),
            "selected": request.values("permission"),
            "note": request.value("note"),
            "until": request.value("until").strip(),
        }
        errors: dict[str, str] = {}
        try:
            until = self._day(form["until"])
        except ValueError:
            errors["until"] = translate("Please enter a date such as 2026-12-31.", lang)
        if not form["email"]:
            errors["email"] = translate("Please enter the email address to invite.", lang)
        elif self._nothing_chosen(request):
            errors["permissions"] = translate(
                "Choose at least one permission, or give all permissions.", lang
            )
        elif not errors:
            extra: dict[str, Any] = {}
            if form["note"].strip():
                extra["note"] = form["note"]
            if until is not None:
                extra["access_until"] = until
            try:
                inv = self.team.invite(
                    account_id,
                    actor_id=user.id,
                    email=form["email"],
                    permissions=self._chosen(request),
                    language=lang,
                    **extra,
                )
            except DeliveryFailed:
                # Stored; the mail waits in the outbox and is retried.
                return Redirect(
                    "users",
                    {"account_id": account_id},
                    notice=error_message(DeliveryFailed(""), lang),
                )
            except (InvalidEmail, ValidationError, Conflict, RateLimited, PermissionDenied) as exc:
                field = self._invite_field(exc, form)
                errors[field] = error_message(exc, lang, catalog=self.team.catalog)
                if field == "until":
                    errors[field] = translate("Choose a day in the future.", lang)
                if isinstance(exc, AlreadyInvited) and exc.invitation_id:
                    form["pending_id"] = exc.invitation_id  # the page links to its row
            else:
                notice = translate("The invitation to {email} is on its way.", lang)
                return Redirect(
                    "users", {"account_id": account_id}, notice=notice.format(email=inv.email)
                )
        return self._users(request, account_id, form=form, errors=errors, status=400)

    @staticmethod
    def _invite_field(exc: TeamAccessError, form: dict[str, Any]) -> str:
        """Which field of the invite form an error belongs next to."""
        if isinstance(exc, UnknownPermission):
            return "permissions"
        if isinstance(exc, ValidationError) and not isinstance(exc, InvalidEmail):
            text = str(exc)
            if text.startswith("note"):
                return "note"
            if text.startswith("access_until"):
                return "until"
        return "email"

    def _member(self, request: Request, account_id: str, user_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        target = self.team.get_member(account_id, user_id)
        error = ""
        status = 200
        if request.method == "POST":
            if self._nothing_chosen(request):
                error = translate("Choose at least one permission, or give all permissions.", lang)
            else:
                try:
                    # Grants on single resources are not in this form: they are kept.
                    chosen = self._chosen(request) | PermissionSet(scopes=target.permissions.scopes)
                    self.team.set_permissions(account_id, user_id, chosen, actor_id=user.id)
                except (ValidationError, Conflict, PermissionDenied) as exc:
                    error = error_message(exc, lang, catalog=self.team.catalog)
                else:
                    notice = translate("The permissions of {email} are saved.", lang)
                    return Redirect(
                        "users",
                        {"account_id": account_id},
                        notice=notice.format(email=target.email),
                    )
            status = 400
            scope = self._scope(request)
            selected: Iterable[str] = request.values("permission")
        else:
            scope = "all" if target.permissions.is_all else "selected"
            selected = target.permissions.resolve(self.team.catalog)
        context = self._base(account, me, "users")
        context.update(
            target=target,
            error=error,
            editable=not target.is_owner and target.user_id != me.user_id,
            chooser=self._chooser(me, lang, scope=scope, selected=selected),
            scopes=self._scopes(target.permissions, lang),
            until=request.value("until") if request.method == "POST" else "",
            until_error="",
        )
        return Render("teamaccess/member.html", context, status)

    def _suspend(self, request: Request, account_id: str, user_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        if not self._confirmed(request):
            lang = request.language
            target = self._changeable(me, account, user_id, lang)
            back = {"account_id": account_id, "user_id": user_id}
            if target.status == "suspended":
                return Redirect("member", back)  # nothing to confirm
            return self._confirm(
                request, account, me, "users",
                title=translate("Suspend user", lang),
                question=translate("Suspend {email} in {account}?", lang).format(
                    email=target.email, account=account.name),
                effects=[
                    translate("From now on they can use none of their permissions; the "
                              "permissions are kept.", lang),
                    translate("While they are suspended, open invitations they sent cannot "
                              "be accepted: an attempt revokes the invitation.", lang),
                    translate("You can reactivate them on their page at any time.", lang),
                ],
                button=translate("Suspend user", lang),
                action=("suspend", back),
                cancel=("member", back),
            )  # fmt: skip
        member = self.team.suspend_member(account_id, user_id, actor_id=user.id)
        notice = translate("{email} is suspended: their permissions are kept but unusable "
                           "until you reactivate them.", request.language)  # fmt: skip
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email))  # fmt: skip

    def _reactivate(self, request: Request, account_id: str, user_id: str) -> Result:
        user, _, _ = self._membership(request, account_id)
        member = self.team.reactivate_member(account_id, user_id, actor_id=user.id)
        notice = translate("{email} is active again.", request.language)
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email))  # fmt: skip

    def _access_until(self, request: Request, account_id: str, user_id: str) -> Result:
        user, _, _ = self._membership(request, account_id)
        lang = request.language
        raw = "" if request.value("action") == "clear" else request.value("until")
        try:
            until = self._day(raw)
            member = self.team.set_access_until(account_id, user_id, until, actor_id=user.id)
        except ValueError as exc:
            # A date the form could not read, or one the library refuses (not in the future).
            page = self._member(attrs.evolve(request, method="GET"), account_id, user_id)
            if isinstance(page, Render):
                page.context.update(
                    until=raw,
                    until_error=translate("Choose a day in the future.", lang)
                    if isinstance(exc, ValidationError)
                    else translate("Please enter a date such as 2026-12-31.", lang),
                )
                return attrs.evolve(page, status=400)
            return page
        if member.access_until is None:
            notice = translate("The access of {email} no longer ends.", lang)
        else:
            notice = translate("The access of {email} ends on {day}.", lang)
        day = format_datetime(member.access_until, lang)
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email, day=day))  # fmt: skip

    def _remove_member(self, request: Request, account_id: str, user_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        if not self._confirmed(request):
            return self._confirm_removal(request, account, me, user_id)
        target = self.team.get_member(account_id, user_id)
        self.team.remove_member(account_id, user_id, actor_id=user.id)
        if user_id == user.id:
            notice = translate("You have left {account}.", lang)
            account = self.team.get_account(account_id)
            return Redirect("index", notice=notice.format(account=account.name))
        notice = translate("{email} was removed.", lang).format(email=target.email)
        return Redirect("users", {"account_id": account_id}, notice=notice)

    def _confirm_removal(
        self, request: Request, account: Account, me: Member, user_id: str
    ) -> Render:
        """The page that asks before removing *user_id* (or before *me* leaves)."""
        lang = request.language
        back = {"account_id": account.id}
        action = ("remove_member", {"account_id": account.id, "user_id": user_id})
        if user_id == me.user_id:
            if me.is_owner:
                raise OwnershipRequired("the owner cannot leave; transfer ownership first")
            return self._confirm(
                request, account, me, "users",
                title=translate("Leave account", lang),
                question=translate("Leave {account}?", lang).format(account=account.name),
                effects=[
                    translate("You lose access to this customer account, and every "
                              "permission in it, at once.", lang),
                    translate("Open invitations you sent are revoked: their links stop "
                              "working.", lang),
                    translate("To come back, you need a new invitation.", lang),
                ],
                button=translate("Leave account", lang),
                action=action,
                cancel=("users", back),
            )  # fmt: skip
        target = self._changeable(me, account, user_id, lang)
        return self._confirm(
            request, account, me, "users",
            title=translate("Remove user", lang),
            question=translate("Remove {email} from {account}?", lang).format(
                email=target.email, account=account.name),
            effects=[
                translate("They lose access to this customer account, and every permission "
                          "in it, at once.", lang),
                translate("Open invitations they sent are revoked: their links stop "
                          "working.", lang),
                translate("To give them access again, send a new invitation.", lang),
            ],
            button=translate("Remove user", lang),
            action=action,
            cancel=("users", back),
        )  # fmt: skip

    def _resend(self, request: Request, account_id: str, invitation_id: str) -> Result:
        user, _, _ = self._membership(request, account_id)
        inv = self._own_invitation(account_id, invitation_id)
        lang = request.language
        try:
            self.team.resend_invitation(inv.id, actor_id=user.id)
        except DeliveryFailed:
            return Redirect("users", {"account_id": account_id},
                            notice=error_message(DeliveryFailed(""), lang))  # fmt: skip
        notice = translate("The invitation to {email} was sent again.", lang)
        return Redirect("users", {"account_id": account_id}, notice=notice.format(email=inv.email))

    def _revoke(self, request: Request, account_id: str, invitation_id: str) -> Result:
        user, _, _ = self._membership(request, account_id)
        inv = self._own_invitation(account_id, invitation_id)
        self.team.revoke_invitation(inv.id, actor_id=user.id)
        notice = translate("The invitation to {email} was revoked.", request.language)
        return Redirect("users", {"account_id": account_id}, notice=notice.format(email=inv.email))

    def _own_invitation(self, account_id: str, invitation_id: str) -> Invitation:
        inv = self.team.get_invitation(invitation_id)
        if inv.account_id != account_id:
            # An id from another account in this account's URL: as if it did not exist.
            raise InvitationNotFound(f"no invitation {invitation_id!r} in this account")
        return inv

    # -- the invitation link ------------------------------------------------------------

    def _accept(self, request: Request) -> Result:
        lang = request.language
        token = request.value("token") if request.method == "POST" else request.arg("token")
        if not token:
            raise _Forbidden(translate("This page needs the link from the invitation mail.", lang))
        inv = self.team.inspect_invitation(token)
        if inv.status != "pending":
            self._raise_status(inv.status)
        account = self.team.get_account(inv.account_id)
        emails = self._emails(inv.account_id)
        user = request.user
        state = "login"
        if user is not None:
            if self.team.require_email_match and (
                normalize_email(user.email).key != normalize_email(inv.email).key
            ):
                state = "mismatch"
            elif user.id in emails:
                state = "member"
            else:
                state = "ready"
        error = ""
        status = 200
        if request.method == "POST":
            action = request.value("action")
            if action == "decline":
                self.team.decline_invitation(token)
                return Render("teamaccess/declined.html", {"account_name": account.name})
            if user is None:
                # Back to this invitation after the login: the POST's path has no token.
                back = _with_query(request.path, token=token)
                return Redirect(location=self._hook(self.login_url, back))
            try:
                member = self.team.accept_invitation(token, user_id=user.id, email=user.email)
            except (InvitationError, Conflict, ValidationError) as exc:
                error = error_message(exc, lang)
                status = _status(exc)
            else:
                notice = translate("Welcome to {account}.", lang).format(account=account.name)
                if self.home_url is not None:
                    return Redirect(location=self.home_url(member.account_id), notice=notice)
                return Redirect("users", {"account_id": member.account_id}, notice=notice)
        # Sent back here after the login; the URL already holds the token.
        back = request.path
        context = {
            "invitation": inv,
            "token": token,
            "account_name": account.name,
            "inviter": person(inv.invited_by, emails, lang)
            if inv.invited_by in emails
            else account.owner_email,
            "all": inv.permissions.is_all,
            "groups": permission_groups(self.team.catalog, lang, only=inv.permissions),
            "state": state,
            "error": error,
            "login_url": self._hook(self.login_url, back),
            "register_url": self._hook(self.register_url, back) if self.register_url else "",
            "logout_url": self.logout_url or "",
        }
        return Render("teamaccess/accept.html", context, status)

    @staticmethod
    def _raise_status(status: str) -> None:
        if status == "accepted":
            raise InvitationUsed("already accepted")
        if status == "expired":
            raise InvitationExpired("expired")
        raise InvitationRevoked(status)

    # -- contacts -----------------------------------------------------------------------

    def _contact_form(self, request: Request) -> dict[str, Any]:
        # Any: the values are strings, "categories" a list; the library checks them.
        return {
            "name": request.value("name").strip(),
            "email": request.value("email").strip(),
            "company": request.value("company").strip(),
            "phone": request.value("phone").strip(),
            "role": request.value("role").strip(),
            "categories": request.values("category"),
        }

    def _contact_errors(self, form: dict[str, Any], lang: str) -> dict[str, str]:
        errors = {}
        if not form["name"]:
            errors["name"] = translate("Please enter a name.", lang)
        if not form["email"]:
            errors["email"] = translate("Please enter an email address.", lang)
        return errors

    @staticmethod
    def _contact_field(exc: TeamAccessError) -> str:
        if isinstance(exc, InvalidEmail):
            return "email"
        if isinstance(exc, UnknownCategory):
            return "categories"
        return "form"

    def _categories(self, lang: str, checked: Iterable[str]) -> list[dict[str, Any]]:
        chosen = set(checked)
        return [
            {"name": c.name, "label": c.label_for(lang), "checked": c.name in chosen}
            for c in self.team.categories
        ]

    def _contacts(self, request: Request, account_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        context = self._base(account, me, "contacts")
        form: dict[str, Any] = {"name": "", "email": "", "company": "", "phone": "",
                                "role": "", "categories": ["general"]}  # fmt: skip
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            self._require_page(me, account, "contacts.manage", lang)
            form = self._contact_form(request)
            errors = self._contact_errors(form, lang)
            if not errors:
                try:
                    contact = self.team.add_contact(
                        account_id, actor_id=user.id, name=form["name"], email=form["email"],
                        categories=form["categories"], company=form["company"],
                        phone=form["phone"], role=form["role"],
                    )  # fmt: skip
                except (ValidationError, Conflict, PermissionDenied) as exc:
                    errors[self._contact_field(exc)] = error_message(exc, lang)
                else:
                    notice = translate("The contact {name} is saved.", lang)
                    return Redirect("contacts", {"account_id": account_id},
                                    notice=notice.format(name=contact.name))  # fmt: skip
            status = 400
        labels = {c.name: c.label_for(lang) for c in self.team.categories}
        context.update(
            contacts=[
                {"contact": c, "categories": [labels.get(n, n) for n in sorted(c.categories)]}
                for c in self.team.contacts(account_id)
            ],
            form=form,
            errors=errors,
            categories=self._categories(lang, form["categories"]),
        )
        return Render("teamaccess/contacts.html", context, status)

    def _contact(self, request: Request, account_id: str, contact_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "contacts.manage", lang)
        contact = self._own_contact(account_id, contact_id)
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            form = self._contact_form(request)
            errors = self._contact_errors(form, lang)
            if not errors:
                try:
                    self.team.update_contact(
                        contact_id, actor_id=user.id, name=form["name"], email=form["email"],
                        categories=form["categories"], company=form["company"],
                        phone=form["phone"], role=form["role"],
                    )  # fmt: skip
                except (ValidationError, Conflict, PermissionDenied) as exc:
                    errors[self._contact_field(exc)] = error_message(exc, lang)
                else:
                    notice = translate("The contact {name} is saved.", lang)
                    return Redirect("contacts", {"account_id": account_id},
                                    notice=notice.format(name=form["name"]))  # fmt: skip
            status = 400
        else:
            form = {
                "name": contact.name, "email": contact.email, "company": contact.company,
                "phone": contact.phone, "role": contact.role,
                "categories": sorted(contact.categories),
            }  # fmt: skip
        context = self._base(account, me, "contacts")
        context.update(
            contact=contact,
            form=form,
            errors=errors,
            categories=self._categories(lang, form["categories"]),
        )
        return Render("teamaccess/contact.html", context, status)

    def _remove_contact(self, request: Request, account_id: str, contact_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        contact = self._own_contact(account_id, contact_id)
        if not self._confirmed(request):
            lang = request.language
            self._require_page(me, account, "contacts.manage", lang)
            labels = [c.label_for(lang) for c in self.team.categories
                      if c.name in contact.categories]  # fmt: skip
            effects = [
                translate("{name} no longer receives the emails of this customer account "
                          "({categories}).", lang).format(
                    name=contact.name, categories=", ".join(labels))
                if labels else "",
                translate("Emails already waiting to be sent to {email} still go out.",
                          lang).format(email=contact.email),
                translate("A contact has no login, so nothing else changes.", lang),
            ]  # fmt: skip
            back = {"account_id": account_id}
            return self._confirm(
                request, account, me, "contacts",
                title=translate("Remove contact", lang),
                question=translate("Remove the contact {name} ({email}) from {account}?",
                                   lang).format(
                    name=contact.name, email=contact.email, account=account.name),
                effects=[e for e in effects if e],
                button=translate("Remove contact", lang),
                action=("remove_contact", {**back, "contact_id": contact_id}),
                cancel=("contacts", back),
            )  # fmt: skip
        self.team.remove_contact(contact_id, actor_id=user.id)
        notice = translate("The contact {name} was removed.", request.language)
        return Redirect("contacts", {"account_id": account_id},
                        notice=notice.format(name=contact.name))  # fmt: skip

    def _own_contact(self, account_id: str, contact_id: str) -> _Contact:
        contact = self.team.get_contact(contact_id)
        if contact.account_id != account_id:
            raise ContactNotFound(f"no contact {contact_id!r} in this account")
        return contact

    # -- activity -----------------------------------------------------------------------

    def _activity(self, request: Request, account_id: str) -> Result:
        _, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        try:
            page = max(1, int(request.arg("page") or "1"))
        except ValueError:
            page = 1
        start = (page - 1) * self.page_size
        # One more than the page holds tells whether a next page exists.
        events = self.team.audit_log(account_id, limit=start + self.page_size + 1)
        # Events name members, contacts and invitations by id; show their addresses.
        emails = self._emails(account_id)
        emails.update((c.id, c.email) for c in self.team.contacts(account_id))
        emails.update((i.id, i.email) for i in self.team.invitations(account_id))
        shown = events[start : start + self.page_size]
        context = self._base(account, me, "activity")
        context.update(
            events=[describe_event(e, emails, lang) for e in shown],
            page=page,
            has_next=len(events) > start + self.page_size,
        )
        return Render("teamaccess/activity.html", context)

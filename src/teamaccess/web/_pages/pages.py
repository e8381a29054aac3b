"""The page handlers: thin views over the public ``TeamAccess`` API.

Each handler takes a :class:`Request` and the route's parameters and returns a
:class:`Render` or a :class:`Redirect`. No SQL, no rule and no mail live here: the library
decides, and its errors become the page's words (``error_message``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ... import (
    TeamAccess,
    TeamAccessError,
    ValidationError,
    error_message,
)
from .._core import _TOKEN_PAGE_HEADERS, LANGUAGES, ROUTES, Redirect, Render, Request, Result
from .._i18n import translate
from .._view import format_date, format_datetime
from .accept import AcceptPage
from .activity import ActivityPage
from .base import (
    ResourcesHook,
    UrlHook,
    _Forbidden,
    _HookFailed,
    _LoginRequired,
    _PageBase,
    _status,
    _with_query,
)
from .contacts import ContactPages
from .members import MemberPages
from .users import UsersPages

__all__ = ["Pages"]

#: the endpoints that are only a form's action, and the page each belongs to
_ACTIONS = {
    "invite": "users",
    "resend": "users",
    "revoke": "users",
    "reactivate": "member",
    "access_until": "member",
}


class Pages(UsersPages, MemberPages, AcceptPage, ContactPages, ActivityPage, _PageBase):
    """The customer-center pages for *team*.

    *login_url* and *register_url* are the host's pages, as a string with ``{next}``
    (the quoted path to come back to) or a callable taking that path. *logout_url*, the
    same, is offered to a user logged in under another address than the invited one;
    its ``{next}`` is the invitation page, so they can log in again under the invited
    address and accept. *home_url*
    maps an account id to where a new member lands (default: the account's users page).
    *translations* adds or replaces words of the templates per language, for templates
    you override: ``{"de": {"Invoices": "Rechnungen"}}``. *resources* maps an account id
    to its resources (services, contracts) as ``(id, display name)`` pairs, or a mapping
    of id to display name: the invite
    form and a member's page then grant the catalog's scoped permissions on the whole
    account or only on some of them; without it they offer account-wide grants only.
    """

    def __init__(
        self,
        team: TeamAccess,
        *,
        login_url: UrlHook = "/login?next={next}",
        register_url: UrlHook | None = None,
        logout_url: UrlHook | None = None,
        home_url: Callable[[str], str] | None = None,
        page_size: int = 25,
        translations: Mapping[str, Mapping[str, str]] | None = None,
        resources: ResourcesHook | None = None,
    ) -> None:
        if not isinstance(team, TeamAccess):
            raise ValidationError(f"team must be a TeamAccess, not {type(team).__name__}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValidationError(f"page_size must be a positive integer, not {page_size!r}")
        # Checked here: a wrong type would surface as a bare error on the first request
        # that draws the link, as a 500 page.
        for what, hook, may_be_none in (
            ("login_url", login_url, False),
            ("register_url", register_url, True),
            ("logout_url", logout_url, True),
        ):
            if not (isinstance(hook, str) or callable(hook) or (hook is None and may_be_none)):
                raise ValidationError(
                    f"{what} must be a URL, such as '/{what[:-4]}?next={{next}}' ({{next}} is "
                    "the path to come back to), or a callable taking that path"
                    f"{', or None' if may_be_none else ''}; not {type(hook).__name__}"
                )
        if home_url is not None and not callable(home_url):
            raise ValidationError(
                "home_url must be a callable taking an account id and returning where a new "
                f"member lands, or None; not {type(home_url).__name__}"
            )
        if resources is not None and not callable(resources):
            raise ValidationError(
                "resources must be a callable taking an account id and returning its "
                "(resource id, display name) pairs, such as [('srv-1', 'Webhosting "
                f"example.com')], or None; not {type(resources).__name__}"
            )
        self.team = team
        self.resources = resources
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
        result = self._run(endpoint, request, params)
        if isinstance(result, Render):
            self._common(result.context, request)
            if endpoint == "accept":
                # Every answer to the invitation link, error pages included: its URL
                # holds the token.
                result = attrs.evolve(result, headers={**result.headers, **_TOKEN_PAGE_HEADERS})
        return result

    def _run(self, endpoint: str, request: Request, params: Mapping[str, str]) -> Result:
        lang = request.language
        if request.method != "POST" and endpoint in _ACTIONS:
            # A form's action, opened as a page: the address bar shows it after the form
            # came back with an error. Its page, and no change (a GET never changes anything).
            target = _ACTIONS[endpoint]
            keep = ("account_id", "user_id") if target == "member" else ("account_id",)
            return Redirect(target, {key: params[key] for key in keep})
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
            return self._handlers[endpoint](request, **params)
        except _LoginRequired:
            return Redirect(location=self._hook(self.login_url, request.path))
        except _Forbidden as exc:
            return self._message(request, 403, "Not allowed", str(exc))
        except TeamAccessError as exc:
            return self._error(request, exc)

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

    def _error(self, request: Request, exc: TeamAccessError) -> Render:
        status = _status(exc)
        title = {403: "Not allowed", 404: "Not found", 410: "Invitation not valid"}.get(
            status, "That did not work"
        )
        text = error_message(exc, request.language, catalog=self.team.catalog)
        if isinstance(exc, _HookFailed):
            # Not "check your input": nothing the customer typed is wrong. The hook is
            # asked before anything is saved, so a form sent is never half-saved.
            if request.method == "POST":
                said = (
                    "The services of this customer account could not be listed, so nothing "
                    "was changed. Please try again later; if it keeps happening, contact "
                    "support."
                )
            else:
                said = (
                    "The services of this customer account cannot be listed right now, so "
                    "this page cannot be shown. Please try again later; if it keeps "
                    "happening, contact support."
                )
            text = self._translate(said, request.language)
        return self._message(request, status, title, text)

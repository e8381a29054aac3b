"""What every adapter shares: the request and result types, the routes, the language.

An adapter (Flask today) turns its framework's request into a :class:`Request`, calls
``Pages.handle(endpoint, request, **params)`` and turns the :class:`Render` or
:class:`Redirect` it gets back into its framework's response. Nothing here imports a
web framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "HEADERS",
    "LANGUAGES",
    "ROUTES",
    "Redirect",
    "Render",
    "Request",
    "Result",
    "Route",
    "User",
    "pick_language",
]


#: the languages of the pages (and of the library's mail and error messages)
LANGUAGES = ("en", "de")


@attrs.frozen
class User:
    """The logged-in person as the host application knows them.

    ``email`` is the address the host has verified for them: accepting an invitation
    compares it with the invited one.
    """

    id: str
    email: str
    name: str = ""


def _lists(value: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {
        key: [values] if isinstance(values, str) else list(values) for key, values in value.items()
    }


@attrs.frozen
class Request:
    """One request, framework-free.

    ``form`` and ``query`` map a field name to its values (a checkbox group sends many).
    ``path`` is this page's path and query, where the login page sends the user back to.
    ``csrf_token`` is the session's token: a POST whose form does not carry the same
    ``csrf_token`` is refused. ``notices`` are the one-time messages of the last redirect.
    """

    method: str
    user: User | None
    language: str = "en"
    form: Mapping[str, list[str]] = attrs.field(factory=dict, converter=_lists)
    query: Mapping[str, list[str]] = attrs.field(factory=dict, converter=_lists)
    path: str = "/"
    csrf_token: str = ""
    notices: Sequence[str] = ()

    def value(self, name: str) -> str:
        """The first value of form field *name*, or ``""``."""
        values = self.form.get(name)
        return values[0] if values else ""

    def values(self, name: str) -> list[str]:
        return list(self.form.get(name, ()))

    def arg(self, name: str) -> str:
        """The first value of query parameter *name*, or ``""``."""
        values = self.query.get(name)
        return values[0] if values else ""


@attrs.frozen
class Render:
    """Render *template* (a name such as ``"teamaccess/users.html"``) with *context*.

    *headers* are this page's own, sent over ``HEADERS`` (the accept page's stricter
    ``Referrer-Policy``).
    """

    template: str
    context: dict[str, Any]
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Redirect:
    """Go to page *endpoint* with *params* (the adapter builds its URL), or to *location*.

    *notice* is shown once on the next page. 303 after a POST: a reload never posts again.
    """

    endpoint: str = ""
    params: Mapping[str, str] = attrs.field(factory=dict)
    location: str = ""
    notice: str = ""
    status: int = 303


Result = Render | Redirect


@attrs.frozen
class Route:
    """A page: its rule (``<name>`` marks a path parameter), endpoint and methods."""

    rule: str
    endpoint: str
    methods: tuple[str, ...] = ("GET",)


#: every page of ``teamaccess.web``; an adapter registers each rule under its endpoint
ROUTES: tuple[Route, ...] = (
    Route("/", "index"),
    Route("/accounts/<account_id>/users", "users"),
    Route("/accounts/<account_id>/users/invite", "invite", ("POST",)),
    Route("/accounts/<account_id>/users/<user_id>", "member", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/remove", "remove_member", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/suspend", "suspend", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/reactivate", "reactivate", ("POST",)),
    Route("/accounts/<account_id>/users/<user_id>/access-until", "access_until", ("POST",)),
    Route("/accounts/<account_id>/invitations/<invitation_id>/resend", "resend", ("POST",)),
    Route("/accounts/<account_id>/invitations/<invitation_id>/revoke", "revoke", ("POST",)),
    Route("/accounts/<account_id>/contacts", "contacts", ("GET", "POST")),
    Route("/accounts/<account_id>/contacts/<contact_id>", "contact", ("GET", "POST")),
    Route("/accounts/<account_id>/contacts/<contact_id>/remove", "remove_contact", ("GET", "POST")),
    Route("/accounts/<account_id>/activity", "activity"),
    Route("/invitations/accept", "accept", ("GET", "POST")),
)

#: the Content-Security-Policy of every page. The pages run no script and load only the
#: stylesheet: nothing from another origin, no inline script or style (an injected tag does
#: nothing), no plugin, no <base> that would re-point the links, and no framing. No
#: form-action: the accept form may redirect to a login page on another origin.
_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

#: headers for every page: never cached (the accept page's URL holds a token, the others
#: personal data), never framed (a framed accept button could be clicked for the user), no
#: path in a Referer to another site
HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

#: the accept page's URL holds the invitation token: its Referer names the site only, even
#: to the panel's own stylesheet and login page (whose access log may keep a Referer)
_TOKEN_PAGE_HEADERS: Mapping[str, str] = {"Referrer-Policy": "strict-origin"}


def pick_language(accept_language: str | None, chosen: str | None = None) -> str:
    """``"de"`` or ``"en"``: *chosen* if it is one, else the first the browser accepts.

    >>> pick_language("de-AT,de;q=0.9,en;q=0.8")
    'de'
    >>> pick_language("fr-FR,en;q=0.5", chosen="de")
    'de'
    """
    if chosen in LANGUAGES:
        return str(chosen)
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"

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
    "INVITATION_COOKIE_MAX_AGE",
    "LANGUAGES",
    "ROUTES",
    "Redirect",
    "Render",
    "Request",
    "Result",
    "Route",
    "User",
    "open_invitations",
    "pick_language",
    "seal_invitations",
]


#: the languages of the pages (and of the library's mail and error messages)
LANGUAGES = ("en", "de")


def _no_name_is_empty(value: str | None) -> str:
    return "" if value is None else value


@attrs.frozen
class User:
    """The logged-in person as the host application knows them.

    ``email`` is the address the host has verified for them: accepting an invitation
    compares it with the invited one.
    """

    id: str = attrs.field(validator=lambda _, attribute, value: _text(attribute.name, value))
    email: str = attrs.field(validator=lambda _, attribute, value: _text(attribute.name, value))
    #: ``None`` reads as no name (the pages show the address): a panel's display name is
    #: often optional, and a refusal would surface only for the users without one.
    name: str = attrs.field(
        default="",
        converter=_no_name_is_empty,
        validator=lambda _, attribute, value: _text(attribute.name, value),
    )


def _text(field: str, value: object) -> None:
    # An ORM's user id is often a number: as one it reached the library's checks, whose
    # refusal the pages showed the customer as "check your input", and told the
    # developer nothing. Only the type is named: the value is personal data.
    if not isinstance(value, str):
        from .._errors import ValidationError

        raise ValidationError(
            f"User.{field} must be a str, not {type(value).__name__}; "
            f"pass your panel's value as text, e.g. User(str(user.id), user.email)"
        )


def _user(_: object, __: attrs.Attribute[Any], value: object) -> None:
    # What the adapter's current_user hook returned: anything else failed later, deep in
    # a page, as an AttributeError. Only its type is named: a panel's user object may
    # hold personal data, and the error goes to the server's log.
    if value is not None and not isinstance(value, User):
        from .._errors import ValidationError

        raise ValidationError(
            "the logged-in user (what the current_user hook returns) must be a "
            f"teamaccess.web.User(id, email) or None, not {type(value).__name__}"
        )


def _lists(value: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {
        key: [values] if isinstance(values, str) else list(values) for key, values in value.items()
    }


def _pairs(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen
class Request:
    """One request, framework-free.

    ``form`` and ``query`` map a field name to its values (a checkbox group sends many).
    ``path`` is this page's path and query, where the login page sends the user back to.
    ``csrf_token`` is the session's token: a POST whose form does not carry the same
    ``csrf_token`` is refused. ``notices`` are the one-time messages of the last redirect.
    ``invitations`` are the invitation links the browser keeps (see
    :func:`open_invitations`): the accept page takes the token out of its URL at once.
    """

    method: str
    user: User | None = attrs.field(validator=_user)
    language: str = "en"
    form: Mapping[str, list[str]] = attrs.field(factory=dict, converter=_lists)
    query: Mapping[str, list[str]] = attrs.field(factory=dict, converter=_lists)
    path: str = "/"
    csrf_token: str = ""
    notices: Sequence[str] = ()
    invitations: Mapping[str, str] = attrs.field(factory=dict, converter=_pairs)

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
    ``Referrer-Policy``). *invitations*, unless ``None``, is what the browser keeps from
    now on (empty: nothing; see :func:`seal_invitations`), for *invitations_max_age*
    seconds (``None``: ``INVITATION_COOKIE_MAX_AGE``).
    """

    template: str
    context: dict[str, Any]
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    invitations: Mapping[str, str] | None = None
    invitations_max_age: int | None = None


@attrs.frozen
class Redirect:
    """Go to page *endpoint* with *params* (the adapter builds its URL), or to *location*.

    *notice* is shown once on the next page. 303 after a POST: a reload never posts again.
    *invitations* and *invitations_max_age* as for :class:`Render`.
    """

    endpoint: str = ""
    params: Mapping[str, str] = attrs.field(factory=dict)
    location: str = ""
    notice: str = ""
    status: int = 303
    invitations: Mapping[str, str] | None = None
    invitations_max_age: int | None = None


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
    Route("/accounts/<account_id>/users/invite", "invite", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>", "member", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/remove", "remove_member", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/suspend", "suspend", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/reactivate", "reactivate", ("GET", "POST")),
    Route("/accounts/<account_id>/users/<user_id>/access-until", "access_until", ("GET", "POST")),
    Route("/accounts/<account_id>/invitations/<invitation_id>/resend", "resend", ("GET", "POST")),
    Route("/accounts/<account_id>/invitations/<invitation_id>/revoke", "revoke", ("GET", "POST")),
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

#: headers for every page: never cached (the accept page holds a token, the others
#: personal data), never framed (a framed accept button could be clicked for the user), no
#: path in a Referer to another site
HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

#: the invitation link's first URL holds the token, and the page holds it in its forms: its
#: Referer names the site only, even to the panel's own stylesheet and login page (whose
#: access log may keep a Referer)
_TOKEN_PAGE_HEADERS: Mapping[str, str] = {"Referrer-Policy": "strict-origin"}


#: how long a browser keeps an opened invitation link (long enough to register or log in)
INVITATION_COOKIE_MAX_AGE = 3600

#: a browser keeps at most this many opened invitation links, the newest
_KEPT_INVITATIONS = 5

_INVITATIONS_SALT = "teamaccess.web.invitations.v1"


def _keys(secret_key: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    """*secret_key* as a list of keys, newest last, without empty ones: a cookie signed
    with an empty key could be made by anyone."""
    keys = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    # bytes all: itsdangerous wants one type, and Flask's keys may mix them
    return [
        key.encode() if isinstance(key, str) else key
        for key in keys
        if isinstance(key, str | bytes) and key
    ]


def seal_invitations(
    secret_key: str | bytes | Sequence[str | bytes], invitations: Mapping[str, str]
) -> str:
    """*invitations* (a ``Render``'s or ``Redirect``'s) as the value of the cookie that keeps
    them, signed with *secret_key* and dated.

    *secret_key* is one key, or a list for rotation, newest last (the order
    ``TeamAccess(secret_key=...)`` takes): the newest signs.

    The adapter sends it ``HttpOnly``, ``SameSite=Lax``, with ``Max-Age``
    ``INVITATION_COOKIE_MAX_AGE`` and its path set to the accept page's, so it goes to
    nothing else: the invitation token stays out of every URL, log and ``Referer``.
    """
    keys = _keys(secret_key)
    if not keys:
        from .._errors import ValidationError

        raise ValidationError(
            "seal_invitations needs a secret key (a non-empty string): the one your "
            "framework signs its session with"
        )
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(keys, salt=_INVITATIONS_SALT).dumps(dict(invitations))


def open_invitations(
    secret_key: str | bytes | Sequence[str | bytes], value: str | None
) -> dict[str, str]:
    """What a cookie made by :func:`seal_invitations` holds, for ``Request.invitations``.

    *secret_key* is one key, or a list for rotation, newest last: a cookie signed with
    any of them opens, so rotating the key keeps the links a browser holds (Flask's
    ``SECRET_KEY_FALLBACKS`` followed by its ``secret_key``). Empty for no cookie, an
    altered one, another key's or one older than ``INVITATION_COOKIE_MAX_AGE``: the page
    then asks for the link from the mail again.
    """
    keys = _keys(secret_key)
    if not value or not keys:
        return {}
    from itsdangerous import BadData, URLSafeTimedSerializer

    try:
        kept = URLSafeTimedSerializer(keys, salt=_INVITATIONS_SALT).loads(
            value, max_age=INVITATION_COOKIE_MAX_AGE
        )
    except BadData:
        return {}
    if not isinstance(kept, dict):
        return {}
    pairs = [(k, v) for k, v in kept.items() if isinstance(k, str) and isinstance(v, str)]
    return dict(pairs[-_KEPT_INVITATIONS:])


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

"""The Flask adapter: the pages as a blueprint for a vendor's own panel.

::

    from teamaccess.web import User
    from teamaccess.web.flask import blueprint

    app.register_blueprint(
        blueprint(team, current_user=lambda: User(str(g.user.id), g.user.email),
                  login_url="/login?next={next}", register_url="/register?next={next}"),
        url_prefix="/team",
    )

The blueprint keeps three things in Flask's signed session (so the app needs a
``secret_key``): the CSRF token, the chosen language and the one-time notices. The
invitation links a browser opened go into a cookie of their own, signed with the same key,
opened with it or any of ``SECRET_KEY_FALLBACKS`` (Flask's key rotation), and sent only
to the accept page (``seal_invitations``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

try:
    import flask
except ModuleNotFoundError as exc:
    if exc.name != "flask":
        raise
    # Flask is the web extra, not a dependency: say which one, not just the module's name.
    raise ModuleNotFoundError(
        "teamaccess.web.flask needs the web extra (Flask and Jinja2): "
        "pip install 'teamaccess[web]'",
        name=exc.name,
    ) from exc
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from .. import TeamAccess, ValidationError
from ._core import (
    HEADERS,
    INVITATION_COOKIE_MAX_AGE,
    LANGUAGES,
    ROUTES,
    Redirect,
    Request,
    User,
    open_invitations,
    pick_language,
    seal_invitations,
)
from ._pages import Pages, ResourcesHook, UrlHook

__all__ = ["blueprint", "csrf_token"]

_CSRF = "teamaccess.csrf"
_LANG = "teamaccess.lang"
_NOTICES = "teamaccess.notices"


def blueprint(
    team: TeamAccess | Pages,
    *,
    current_user: Callable[[], User | None],
    login_url: UrlHook = "/login?next={next}",
    register_url: UrlHook | None = None,
    logout_url: UrlHook | None = None,
    home_url: Callable[[str], str] | None = None,
    translations: Mapping[str, Mapping[str, str]] | None = None,
    resources: ResourcesHook | None = None,
    name: str = "teamaccess",
    headers: Mapping[str, str | None] | None = None,
) -> flask.Blueprint:
    """The pages of ``ROUTES`` as a blueprint named *name*; register it under a prefix.

    *current_user* returns the logged-in :class:`User` (id and verified address), or
    ``None``. *login_url*, *register_url* and *logout_url* are your panel's pages: a
    string with ``{next}`` or a callable taking the path to come back to. Pass a ready
    :class:`Pages` instead of *team* to configure it yourself. *headers* replace entries
    of ``HEADERS`` (``None`` drops one): a panel layout that loads scripts needs its own
    ``Content-Security-Policy``.
    """
    if not callable(current_user):
        raise ValidationError("current_user must be a callable returning a User or None")
    sent = {**HEADERS, **(headers or {})}
    for key, value in sent.items():
        if value is not None and (not isinstance(value, str) or set(value) & set("\r\n\0")):
            raise ValidationError(f"headers[{key!r}] must be one line of text or None")
    page_headers = {key: value for key, value in sent.items() if value is not None}
    pages = (
        team
        if isinstance(team, Pages)
        else Pages(team, login_url=login_url, register_url=register_url,
                   logout_url=logout_url, home_url=home_url, translations=translations,
                   resources=resources)
    )  # fmt: skip
    bp = flask.Blueprint(
        name,
        __name__,
        template_folder="templates",
        static_folder="static",
        # not "/static": a blueprint mounted without a prefix would shadow the app's own
        static_url_path="/teamaccess-static",
    )

    # One cookie per blueprint, so two mounted blueprints keep their links apart.
    cookie = f"{name}_invitations"

    def url(endpoint: str, **params: Any) -> str:
        return flask.url_for(f"{name}.{endpoint}", **params)

    def view(**params: str) -> Response:
        if not flask.current_app.secret_key:
            raise ValidationError(
                "the Flask app needs a secret_key: the teamaccess pages keep their CSRF token "
                "in its session"
            )
        secret = flask.current_app.secret_key
        # The cookie of opened links is signed with the current key and opens with it or
        # any of Flask's SECRET_KEY_FALLBACKS, as the session does, so rotating the key
        # keeps the links a browser holds.
        fallbacks = _fallbacks(flask.current_app.config.get("SECRET_KEY_FALLBACKS"))
        keys = [*fallbacks, secret]
        req = flask.request
        session = flask.session
        csrf = csrf_token()
        chosen = req.args.get("lang")
        if chosen in LANGUAGES:
            session[_LANG] = chosen
        language = pick_language(req.headers.get("Accept-Language"), session.get(_LANG))
        notices = session.pop(_NOTICES, [])
        query = req.query_string.decode("latin-1")
        path = req.script_root + req.path + (f"?{query}" if query else "")
        request = Request(
            method=req.method,
            user=current_user(),
            language=language,
            form={key: req.form.getlist(key) for key in req.form},
            query={key: req.args.getlist(key) for key in req.args},
            path=path,
            csrf_token=csrf,
            notices=notices if isinstance(notices, list) else [],
            invitations=open_invitations(keys, req.cookies.get(cookie)),
        )
        endpoint = (req.endpoint or "").rpartition(".")[2]
        result = pages.handle(endpoint, request, **params)
        if isinstance(result, Redirect):
            if result.notice:
                session[_NOTICES] = [*session.get(_NOTICES, []), result.notice]
            location = result.location or url(result.endpoint, **result.params)
            response = flask.redirect(location, result.status)
        else:
            html = flask.render_template(
                result.template,
                **result.context,
                url=url,
                static_url=url("static", filename="teamaccess.css"),
            )
            response = flask.make_response(html, result.status)
            response.headers.update(result.headers)
        if result.invitations is not None:
            # Scoped to the accept page: no other page, the login neither, ever gets it.
            path, secure = url("accept"), req.is_secure
            max_age = result.invitations_max_age
            if result.invitations:
                response.set_cookie(
                    cookie, seal_invitations(secret, result.invitations),
                    max_age=INVITATION_COOKIE_MAX_AGE if max_age is None else max_age,
                    path=path, secure=secure, httponly=True, samesite="Lax",
                )  # fmt: skip
            else:
                response.delete_cookie(
                    cookie, path=path, secure=secure, httponly=True, samesite="Lax"
                )
        return response

    for route in ROUTES:
        bp.add_url_rule(route.rule, route.endpoint, view, methods=list(route.methods))

    def secured(response: Response) -> Response:
        # setdefault: a page's own (the accept page's Referrer-Policy) stays
        for key, value in page_headers.items():
            response.headers.setdefault(key, value)
        return response

    # Every response of the blueprint's own endpoints: the pages, the stylesheet, and the
    # error pages Flask makes for an error raised in a view (a form too large, 413).
    bp.after_request(secured)

    # Flask's 404 and 405 for a URL of the blueprint belong to no endpoint, so no handler
    # of the blueprint's runs for them: they are recognised by the registration's prefix
    # (404) or by the endpoint the URL has for another method (405).
    prefixes: set[str] = set()
    names: set[str] = set()

    def remember(state: BlueprintSetupState) -> None:
        names.add(f"{state.name_prefix}.{state.name}".lstrip("."))
        if state.url_prefix and state.url_prefix.strip("/"):
            prefixes.add(state.url_prefix.rstrip("/"))

    bp.record(remember)

    def routing_error(response: Response) -> Response:
        req = flask.request
        if req.url_rule is None and _routed_to(req, prefixes, names):
            secured(response)
        return response

    bp.after_app_request(routing_error)
    return bp


def _routed_to(req: flask.Request, prefixes: set[str], names: set[str]) -> bool:
    """Whether *req*, which matched no rule, asked for a URL of one of the blueprint's
    registrations (*names*, mounted under *prefixes*)."""
    if any(req.path == p or req.path.startswith(f"{p}/") for p in prefixes):
        return True
    failed = req.routing_exception
    if not isinstance(failed, MethodNotAllowed) or not failed.valid_methods:
        return False
    adapter = flask.current_app.create_url_adapter(req)
    if adapter is None:
        return False
    try:
        rule, _ = adapter.match(req.path, method=next(iter(failed.valid_methods)), return_rule=True)
    except HTTPException:  # e.g. a redirect to the URL with a slash: not one of the pages
        return False
    return rule.endpoint.rpartition(".")[0] in names


def csrf_token() -> str:
    """The session's CSRF token, the one every form of the pages posts as ``csrf_token``.

    For your panel's own forms that sit in the pages' layout, such as the "Log out" button
    of ``teamaccess/base.html``, and for your logout view to check what the accept page's
    "Log out" posts (compare with :func:`hmac.compare_digest`). Made on first use; needs a
    request and the app's ``secret_key``.
    """
    token = flask.session.get(_CSRF)
    if not isinstance(token, str):
        token = flask.session[_CSRF] = secrets.token_urlsafe(32)
    return token


def _fallbacks(value: object) -> list[str | bytes]:
    """Flask's ``SECRET_KEY_FALLBACKS``, which must be a list of non-empty keys: Flask's
    session opens a cookie signed with any of them, and takes a string as a list of
    one-character keys (``"old-key"`` is "o", "l", "d", ...) and an empty key as one, so a
    session cookie anyone can sign (log in as anyone) would reach the pages."""
    if value is None:
        return []
    keys = None if isinstance(value, str | bytes) else value
    if isinstance(keys, list | tuple | set | frozenset) and all(
        isinstance(k, str | bytes) and k for k in keys
    ):
        return list(keys)
    raise ValidationError(
        "SECRET_KEY_FALLBACKS must be a list of the older secret keys, each a non-empty "
        "string, e.g. ['old-key'] (or [] when no rotation is under way), not "
        f"{_shown_keys(value)}: Flask's session takes a string as a list of one-character "
        "keys, and an empty key as a key, so anyone could sign a session cookie and log "
        "in as anyone"
    )


def _shown_keys(value: object) -> str:
    """What *value* is, without the keys in it."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, bytes):
        return f"a bytes value of {len(value)} bytes"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list holding an empty key or one that is no string"
    return f"a {type(value).__name__}"

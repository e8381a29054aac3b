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

The panel's own views are guarded by :class:`Guard`, made with the same ``current_user``::

    guard = Guard(team, current_user=current_user, login_url="/login?next={next}")

    @app.route("/accounts/<account_id>/invoices")
    @guard.require("billing.view")
    def invoices(account_id: str) -> str: ...
"""

from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

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
from werkzeug.exceptions import Forbidden, HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from .. import NotFound, TeamAccess, ValidationError
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
from ._i18n import translate
from ._pages import Pages, ResourcesHook, UrlHook
from ._pages.base import _holdable, _inactive_message

__all__ = ["Denied", "Guard", "ViewValue", "blueprint", "csrf_token"]

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
    page_headers = _page_headers(headers)
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


def _page_headers(headers: Mapping[str, str | None] | None) -> dict[str, str]:
    """``HEADERS`` with *headers* over them, ``None`` dropping one."""
    sent = {**HEADERS, **(headers or {})}
    for key, value in sent.items():
        if value is not None and (not isinstance(value, str) or set(value) & set("\r\n\0")):
            raise ValidationError(f"headers[{key!r}] must be one line of text or None")
    return {key: value for key, value in sent.items() if value is not None}


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


P = ParamSpec("P")
R = TypeVar("R")

#: where a guarded view's account id (or resource id) comes from: the name of one of the
#: view's arguments, or a callable taking the view's arguments and returning the id
#: (``None``: no account or resource of this user's, refused as one)
ViewValue = str | Callable[[Mapping[str, Any]], str | None]


class Denied(Forbidden):
    """The 403 of a view :meth:`Guard.require` refused: a werkzeug ``Forbidden``.

    ``description`` is the customer's message in their language, ``language`` that
    language, and ``permission``, ``account_id``, ``resource`` what was asked. Without a
    403 handler of the app's, Flask sends the pages' "Not allowed" page
    (``teamaccess/error.html``) with ``HEADERS``; with one (``@app.errorhandler(403)``),
    that handler answers instead.
    """

    def __init__(
        self,
        message: str,
        *,
        permission: str,
        account_id: str | None,
        resource: str | None,
        language: str,
        page: Callable[[Denied], Response],
    ) -> None:
        super().__init__(description=message)
        self.permission = permission
        self.account_id = account_id
        self.resource = resource
        self.language = language
        self._page = page

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        return self._page(self)


class Guard:
    """Guards a panel's own views: ``team.can()`` answers before the view runs.

    ::

        guard = Guard(team, current_user=current_user, login_url="/login?next={next}")

        @app.route("/accounts/<account_id>/invoices")
        @guard.require("billing.view")
        def invoices(account_id: str) -> str: ...

    Made once, with the ``current_user`` and ``login_url`` the blueprint takes (or the
    same ready :class:`Pages`); the blueprint named *name* must be registered, since the
    403 page is the pages' own, with their layout and links, unless the app answers 403
    itself (``@app.errorhandler(403)``). *headers* as for
    :func:`blueprint`: the login redirect and the 403 page are sent with them.
    """

    def __init__(
        self,
        team: TeamAccess | Pages,
        *,
        current_user: Callable[[], User | None],
        login_url: UrlHook = "/login?next={next}",
        translations: Mapping[str, Mapping[str, str]] | None = None,
        name: str = "teamaccess",
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        if not callable(current_user):
            raise ValidationError("current_user must be a callable returning a User or None")
        self.pages = (
            team if isinstance(team, Pages)
            else Pages(team, login_url=login_url, translations=translations)
        )  # fmt: skip
        self.team = self.pages.team
        self.current_user = current_user
        self.name = name
        self.headers = _page_headers(headers)

    def require(
        self,
        permission: str,
        *,
        account: ViewValue = "account_id",
        resource: ViewValue | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """A decorator: the view runs only if ``team.can(user, account, permission,
        resource=...)`` says yes. Put it below ``@app.route`` (the route must register
        the guarded view).

        *account* and *resource* name the view's argument holding the id, or are a
        callable taking the view's arguments. Nobody logged in: a redirect to
        ``login_url`` with ``next``. Refused (no such permission, a suspended or expired
        member, an account that is not the user's or does not exist, an id no account or
        resource can have): :class:`Denied`. An unknown permission, a *resource* for a
        permission the catalog does not mark ``scoped``, or a view without the named
        argument is a ``ValidationError`` here, when the view is decorated.
        """
        catalog = self.team.catalog
        if not isinstance(permission, str) or permission not in catalog:
            raise catalog.unknown(permission)
        if resource is not None and not catalog[permission].scoped:
            raise ValidationError(
                f"{permission!r} is granted account-wide only (the catalog does not mark it "
                "scoped): guard the view without resource=, or mark the permission scoped"
            )
        for what, source in (("account", account), ("resource", resource)):
            # account=None too: every guarded view is about one account
            if (source is not None or what == "account") and not (
                isinstance(source, str) or callable(source)
            ):
                raise ValidationError(
                    f"{what} must name an argument of the view or be a callable taking the "
                    f"view's arguments, not {type(source).__name__}"
                )

        def decorate(view: Callable[P, R]) -> Callable[P, R]:
            signature = inspect.signature(view)
            for what, source in (("account", account), ("resource", resource)):
                if isinstance(source, str):
                    _check_argument(view, signature, what, source)

            def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                # Flask passes the URL's variables by keyword; a positional call is bound.
                values = kwargs if not args else signature.bind_partial(*args, **kwargs).arguments
                self._check(permission, account, resource, values)

            if inspect.iscoroutinefunction(view):
                run = cast(Callable[P, Awaitable[Any]], view)

                @functools.wraps(view)
                async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                    check(args, kwargs)
                    return await run(*args, **kwargs)

                return cast(Callable[P, R], guarded_async)

            @functools.wraps(view)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                check(args, kwargs)
                return view(*args, **kwargs)

            return guarded

        return decorate

    def _check(
        self,
        permission: str,
        account: ViewValue,
        resource: ViewValue | None,
        values: Mapping[str, Any],
    ) -> None:
        # Every request, not only a refused one: a guard without its 403 page would
        # otherwise be found out only when someone is refused. A panel that answers 403
        # itself (a JSON API, team pages in another app) needs no page of the blueprint's.
        if self.name not in flask.current_app.blueprints and not _answers_403():
            raise self._unmounted()
        user = self.current_user()
        if user is None:
            req = flask.request
            query = req.query_string.decode("latin-1")
            path = req.script_root + req.path + (f"?{query}" if query else "")
            response = flask.redirect(self.pages._hook(self.pages.login_url, path), 303)
            response.headers.update(self.headers)
            raise HTTPException(response=response)
        if not isinstance(user, User):
            raise ValidationError(
                f"current_user must return a User or None, not {type(user).__name__}"
            )
        account_id = _view_value("account", account, values)
        resource_id = None if resource is None else _view_value("resource", resource, values)
        allowed = False
        if (
            account_id is not None
            and _well_formed(account_id)
            and (resource is None or (resource_id is not None and _holdable(resource_id)))
        ):
            # The one can() of the request. An id no account or grant can have (a line
            # break, NUL, an empty one) is refused above without it, as a stranger's.
            allowed = self.team.can(user.id, account_id, permission, resource=resource_id)
        if not allowed:
            raise self._denied(user, permission, account_id, resource_id)

    def _denied(
        self, user: User, permission: str, account_id: str | None, resource_id: str | None
    ) -> Denied:
        req = flask.request
        chosen = req.args.get("lang")
        language = pick_language(
            req.headers.get("Accept-Language"),
            chosen if chosen in LANGUAGES else flask.session.get(_LANG),
        )
        label = self.team.catalog[permission].label_for(language)
        message = translate(
            "This page needs the permission “{label}”. Ask the account owner to grant it.",
            language,
        ).format(label=label)
        if account_id is not None and _well_formed(account_id):
            # Refused only: a member whose access is suspended or over holds the
            # permission and cannot use it, so "ask to grant it" would mislead. A stranger
            # (no member, no account) gets the same words as a member without it.
            try:
                member = self.team.get_member(account_id, user.id)
            except (NotFound, ValidationError):
                member = None
            if member is not None and member.status != "active":
                account_name = self.team.get_account(account_id).name
                message = _inactive_message(member.status, member.access_until, account_name,
                                            language)  # fmt: skip
        return Denied(
            message,
            permission=permission,
            account_id=account_id,
            resource=resource_id,
            language=language,
            # the user asked about, so the page does not ask the panel's hook again
            page=lambda denied: self._page(denied, user),
        )

    def _unmounted(self) -> ValidationError:
        return ValidationError(
            f"Guard needs the blueprint named {self.name!r} registered on the app "
            "(app.register_blueprint(blueprint(team, ...))): its 403 page is the pages' "
            "own; or pass the blueprint's name as Guard(..., name=...), or answer 403 "
            "yourself with @app.errorhandler(403)"
        )

    def _page(self, denied: Denied, user: User) -> Response:
        """The pages' "Not allowed" page for *denied*, in its language."""
        if self.name not in flask.current_app.blueprints:
            # the panel's own 403 handler asked for it (denied.get_response())
            raise self._unmounted()
        if not flask.current_app.secret_key:
            raise ValidationError(
                "the Flask app needs a secret_key: the 403 page's layout carries the CSRF "
                "token of the pages' forms, kept in its session"
            )
        req = flask.request
        query = req.query_string.decode("latin-1")
        request = Request(
            method=req.method,
            user=user,
            language=denied.language,
            path=req.script_root + req.path + (f"?{query}" if query else ""),
            csrf_token=csrf_token(),
        )
        result = self.pages._message(request, 403, "Not allowed", str(denied.description))
        self.pages._common(result.context, request)

        def url(endpoint: str, **params: Any) -> str:
            return flask.url_for(f"{self.name}.{endpoint}", **params)

        html = flask.render_template(
            result.template,
            **result.context,
            url=url,
            static_url=url("static", filename="teamaccess.css"),
        )
        response = flask.make_response(html, 403)
        response.headers.update(self.headers)
        return response


def _answers_403() -> bool:
    """Whether an error handler of the app's, or of a blueprint of this request's, would
    answer a :class:`Denied`: looked up as Flask looks one up (by code 403, then by class,
    along the exception's classes)."""
    spec = flask.current_app.error_handler_spec
    for name in (*flask.request.blueprints, None):
        for code in (403, None):
            handlers = spec.get(name, {}).get(code, {})
            if any(cls in handlers for cls in Denied.__mro__):
                return True
    return False


def _check_argument(
    view: Callable[..., Any], signature: inspect.Signature, what: str, name: str
) -> None:
    """*view* takes an argument *name* (or any keyword), else a ``ValidationError``."""
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    found = params.get(name)
    if found is None or found.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise ValidationError(
            f"the view {getattr(view, '__name__', view)!r} takes no argument {name!r} for the "
            f"{what} id: pass {what}= the name of the URL variable that holds it, or a "
            "callable taking the view's arguments"
        )


def _view_value(what: str, source: ViewValue, values: Mapping[str, Any]) -> str | None:
    if isinstance(source, str):
        if source not in values:
            raise ValidationError(
                f"the view was called without its argument {source!r} (the {what} id): "
                "name a variable of its URL rule"
            )
        value = values[source]
    else:
        value = source(values)
        if value is None:
            return None
    if not isinstance(value, str):
        raise ValidationError(
            f"the {what} id must be a string, not {type(value).__name__}: with a converter "
            f"such as <int:...>, pass {what}=lambda args: str(args[...])"
        )
    return value


def _well_formed(account_id: str) -> bool:
    """Whether *account_id* could name an account (one printable line, not blank)."""
    return bool(account_id.strip()) and account_id.isprintable()

"""A customer panel's "Users" page on teamaccess, framework-free (a plain WSGI app).

What a vendor's panel does with the library:

* every request handler asks ``team.require(user, account, permission)`` before it shows
  or changes anything; ``PermissionDenied`` becomes a 403 page;
* the users page lists members and pending invitations and has an invite form;
* the accept page (the link in the invitation mail) shows the invitation and accepts it
  for the logged-in user, with the address the panel verified for them.

Who is logged in is the panel's business: here it arrives as ``REMOTE_USER`` (set by the
panel's login middleware), and ``users`` maps user ids to their verified addresses.

Run ``python examples/panel_integration.py`` to replay a session through the WSGI
interface, or ``python examples/panel_integration.py --serve`` to click through it at
http://127.0.0.1:8000 (log in by sending a ``X-Demo-User`` header, e.g. with curl).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Iterable, Mapping
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.util import setup_testing_defaults

from teamaccess import (
    Conflict,
    InvitationError,
    MemoryMailer,
    MemoryStore,
    NotFound,
    PermissionDenied,
    PermissionSet,
    TeamAccess,
    TeamAccessError,
    ValidationError,
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = dict[str, Any]

STATUS_FOR_ERROR: list[tuple[type[TeamAccessError], str]] = [
    (PermissionDenied, "403 Forbidden"),
    (NotFound, "404 Not Found"),
    (InvitationError, "410 Gone"),
    (Conflict, "409 Conflict"),
    (ValidationError, "400 Bad Request"),
    (TeamAccessError, "500 Internal Server Error"),
]


def page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


class Panel:
    """The WSGI application: ``Panel(team, users)(environ, start_response)``."""

    def __init__(self, team: TeamAccess, users: Mapping[str, str]) -> None:
        self.team = team
        self.users = users  # user id -> the address the panel verified

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        user = environ.get("REMOTE_USER")
        if not user:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"log in first"]
        try:
            status, headers, body = self.route(environ, user)
        except TeamAccessError as exc:
            # The library's messages say what to do and never contain a token: fit to show.
            status = next(s for cls, s in STATUS_FOR_ERROR if isinstance(exc, cls))
            headers, body = [], page("Sorry", f"<p>{html.escape(str(exc))}</p>")
        start_response(status, [("Content-Type", "text/html; charset=utf-8"), *headers])
        return [body]

    def route(self, environ: Environ, user: str) -> tuple[str, list[tuple[str, str]], bytes]:
        method = environ["REQUEST_METHOD"]
        parts = environ.get("PATH_INFO", "/").strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if parts[:1] == ["accounts"] and len(parts) == 3 and parts[2] == "users":
            if method == "POST":
                return self.invite(parts[1], user, read_form(environ))
            return "200 OK", [], self.users_page(parts[1], user)
        if parts == ["invitations", "accept"]:
            token = query.get("token") or read_form(environ).get("token", "")
            if method == "POST":
                return self.accept(token, user)
            return "200 OK", [], self.accept_page(token)
        return "404 Not Found", [], page("Not found", "")

    # -- the users page ---------------------------------------------------------------

    def users_page(self, account_id: str, user: str) -> bytes:
        self.team.require(user, account_id, "users.manage")
        account = self.team.get_account(account_id)
        labels = {p.name: p.label for p in self.team.catalog}

        def perms(ps: PermissionSet) -> str:
            if ps.is_all:
                return "All permissions"
            return ", ".join(labels[n] for n in sorted(ps.names)) or "No permissions"

        rows = "".join(
            f"<tr><td>{html.escape(m.email)}</td><td>{m.role}</td>"
            f"<td>{html.escape(perms(m.permissions))}</td></tr>"
            for m in self.team.members(account_id)
        )
        pending = "".join(
            f"<li>{html.escape(i.email)} (until {i.expires_at:%Y-%m-%d})</li>"
            for i in self.team.pending_invitations(account_id)
        )
        # Offer only what this user may grant: the library would refuse the rest anyway.
        held = self.team.permissions_of(user, account_id)
        boxes = "".join(
            f"<label><input type='checkbox' name='permission' value='{p.name}'>"
            f"{html.escape(p.label)}</label>"
            for p in self.team.catalog
            if p.name in held
        )
        return page(
            f"Users of {account.name}",
            f"<table><tr><th>Email</th><th>Role</th><th>Permissions</th></tr>{rows}</table>"
            f"<h2>Pending invitations</h2><ul>{pending or '<li>none</li>'}</ul>"
            f"<form method='post'><input name='email' type='email'>"
            f"<label><input type='radio' name='scope' value='all'>All permissions</label>"
            f"<label><input type='radio' name='scope' value='selected' checked>"
            f"Selected permissions</label>{boxes}<button>Send invitation</button></form>",
        )

    def invite(
        self, account_id: str, user: str, form: Mapping[str, list[str]]
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if form.get("scope", ["selected"])[0] == "all":
            permissions = PermissionSet.all()
        else:
            permissions = PermissionSet.of(*form.get("permission", []))
        self.team.invite(
            account_id, actor_id=user, email=form.get("email", [""])[0], permissions=permissions
        )
        # Post/redirect/get: reloading the page must not send a second invitation.
        return "303 See Other", [("Location", f"/accounts/{account_id}/users")], b""

    # -- the accept page ----------------------------------------------------------------

    def accept_page(self, token: str) -> bytes:
        inv = self.team.inspect_invitation(token)
        account = self.team.get_account(inv.account_id)
        if inv.status != "pending":
            return page("Invitation", f"<p>This invitation is {inv.status}.</p>")
        return page(
            f"Join {account.name}",
            f"<p>Invitation for {html.escape(inv.email)}.</p>"
            f"<form method='post'><input type='hidden' name='token' "
            f"value='{html.escape(token, quote=True)}'><button>Accept</button></form>",
        )

    def accept(self, token: str, user: str) -> tuple[str, list[tuple[str, str]], bytes]:
        member = self.team.accept_invitation(token, user_id=user, email=self.users[user])
        return "303 See Other", [("Location", f"/accounts/{member.account_id}")], b""


def read_form(environ: Environ) -> dict[str, list[str]]:
    if environ["REQUEST_METHOD"] != "POST":
        return {}
    size = int(environ.get("CONTENT_LENGTH") or 0)
    return parse_qs(environ["wsgi.input"].read(size).decode())


def call(
    app: Callable[[Environ, StartResponse], Iterable[bytes]],
    method: str,
    path: str,
    *,
    user: str | None,
    form: Mapping[str, str | list[str]] | None = None,
) -> tuple[str, dict[str, str], str]:
    """One real WSGI call, the way a server would make it; returns status, headers, body."""
    path, _, query = path.partition("?")
    data = urlencode(form or {}, doseq=True).encode()
    environ: Environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": BytesIO(data),
    }
    if user is not None:
        environ["REMOTE_USER"] = user
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    result = app(environ, start_response)
    try:
        body = b"".join(result).decode()
    finally:
        # a WSGI server always closes the response iterable (PEP 3333)
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], body


def build() -> tuple[Panel, MemoryMailer, str]:
    """A panel with one account: Max owns it, Anna is his programmer."""
    mailer = MemoryMailer()
    team = TeamAccess(
        MemoryStore(),
        mailer,
        secret_key="example only",
        accept_url="http://127.0.0.1:8000/invitations/accept?token={token}",
    )
    users = {"max": "chef@muster.de", "anna": "dev@agentur.de", "bea": "buchhaltung@muster.de"}
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=users["max"])
    return Panel(team, users), mailer, account.id


def replay() -> None:
    app, mailer, account = build()
    users_page = f"/accounts/{account}/users"
    steps = [
        ("max opens the users page", "GET", users_page, "max", None),
        ("max invites his programmer", "POST", users_page, "max",
         {"email": "dev@agentur.de", "scope": "selected",
          "permission": ["services.view", "support.tickets"]}),
        ("max invites the same address again", "POST", users_page, "max",
         {"email": "dev@agentur.de", "scope": "all"}),
    ]  # fmt: skip
    for title, method, path, user, form in steps:
        status, _, _ = call(app, method, path, user=user, form=form)
        print(f"{title:40} {method:4} {path:28} -> {status}")
    link = str(mailer.outbox[-1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    accept = "/invitations/accept?" + link.split("/invitations/accept?", 1)[1].split()[0]
    for title, method, user in [
        ("anna opens the link from her mail", "GET", "anna"),
        ("anna accepts", "POST", "anna"),
    ]:
        status, _, _ = call(app, method, accept, user=user)
        print(f"{title:40} {method:4} {'/invitations/accept?token=…':28} -> {status}")
    status, _, _ = call(app, "GET", users_page, user="anna")
    print(f"{'anna tries the users page':40} GET  {users_page:28} -> {status}")
    status, _, body = call(app, "GET", users_page, user="max")
    print(f"{'max sees anna as a member':40} GET  {users_page:28} -> {status}")
    assert "dev@agentur.de</td><td>member" in body


def serve() -> None:
    from wsgiref.simple_server import make_server

    app, _, account = build()

    def with_demo_login(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # Stand-in for the panel's login: never trust such a header in production.
        environ["REMOTE_USER"] = environ.get("HTTP_X_DEMO_USER", "")
        return app(environ, start_response)

    print(f"http://127.0.0.1:8000/accounts/{account}/users  (header X-Demo-User: max)")
    make_server("127.0.0.1", 8000, with_demo_login).serve_forever()


if __name__ == "__main__":
    serve() if "--serve" in sys.argv[1:] else replay()

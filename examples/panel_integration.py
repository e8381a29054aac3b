"""A vendor's Flask panel with the teamaccess pages mounted (needs ``teamaccess[web]``).

What a vendor's panel does with the library:

* it keeps its own login: here ``/login`` puts a user id in Flask's session and sends
  the user back to ``next`` only if that is a path of this site (``local_path``), and
  ``USERS`` holds each user's verified address;
* it mounts ``teamaccess.web.flask.blueprint`` under ``/team``, telling it who is logged
  in and where the login page is; the users page, the invitation link, contacts and
  activity come from there;
* its own pages are guarded by ``Guard.require(permission)`` (``teamaccess.web.flask``),
  made once with the same ``current_user`` and login page: one ``team.can()`` before the
  view runs, the login page for nobody logged in, and a 403 page in the customer's words
  for a missing permission or an account that is not theirs.

Run ``python examples/panel_integration.py`` to replay a session through Flask's test
client (real requests through the WSGI stack), or ``python examples/panel_integration.py
--serve`` to click through it at http://127.0.0.1:8000 (``python -m teamaccess.web.demo``
is the bigger demo).
"""

from __future__ import annotations

import re
import sys

import flask

from teamaccess import MemoryMailer, MemoryStore, TeamAccess
from teamaccess.web import User
from teamaccess.web.flask import Guard, blueprint

#: the panel's users: id -> the address the panel verified
USERS = {"max": "chef@muster.de", "anna": "dev@agentur.de"}


def local_path(next_path: str | None) -> str:
    """*next_path* if it is a path of this site, else ``/``.

    Anyone can write a login link with a ``next`` of their own: sending the user there
    after the login would make the panel's login page a phishing aid. A browser reads
    ``//evil.example`` and a backslash as in ``/\\evil.example`` as another site, and
    drops a tab or a line break inside, so only printable ASCII after one ``/`` passes.
    """
    if next_path and re.fullmatch(r"/(?!/)[\x21-\x7e]*", next_path) and "\\" not in next_path:
        return next_path
    return "/"


def build(base_url: str = "http://127.0.0.1:8000") -> tuple[flask.Flask, TeamAccess, str]:
    """The panel with one account: Max owns it."""
    team = TeamAccess(
        MemoryStore(),
        MemoryMailer(),
        secret_key="example only",
        accept_url=f"{base_url}/team/invitations/accept?token={{token}}",
    )
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=USERS["max"])
    app = flask.Flask(__name__)
    app.secret_key = "example only"  # the pages keep their CSRF token in the session

    def current_user() -> User | None:
        user_id = flask.session.get("user")
        return User(user_id, USERS[user_id]) if user_id in USERS else None

    app.register_blueprint(
        blueprint(team, current_user=current_user, login_url="/login?next={next}"),
        url_prefix="/team",
    )

    @app.route("/login", methods=["GET", "POST"])
    def login() -> flask.typing.ResponseReturnValue:
        # Stand-in for the panel's real login: pick a user, no password.
        if flask.request.method == "POST" and flask.request.form.get("user") in USERS:
            flask.session["user"] = flask.request.form["user"]
            return flask.redirect(local_path(flask.request.args.get("next")), 303)
        return "<form method=post><input name=user><button>Log in</button></form>"

    guard = Guard(team, current_user=current_user, login_url="/login?next={next}")

    @app.route("/accounts/<account_id>/services")
    @guard.require("services.view")
    def services(account_id: str) -> str:
        # The panel's own page: it runs only for a member holding services.view here.
        return "<h1>Your services</h1>"

    @app.route("/accounts/<account_id>/billing")
    @guard.require("billing.view")
    def billing(account_id: str) -> str:
        return "<h1>Your invoices</h1>"

    app.extensions["teamaccess"] = team
    return app, team, account.id


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def replay() -> None:
    app, team, account = build()
    users = f"/team/accounts/{account}/users"
    max_, anna = app.test_client(), app.test_client()
    max_.post("/login", data={"user": "max"})

    def show(title: str, method: str, path: str, status: int) -> None:
        print(f"{title:36} {method:4} {path.replace(account, 'ACC'):36} -> {status}")

    opened = max_.get(users)
    show("max opens the users page", "GET", users, opened.status_code)
    token = csrf(opened.get_data(as_text=True))
    invite = {"csrf_token": token, "email": "dev@agentur.de", "scope": "selected",
              "permission": ["services.view", "support.tickets"]}  # fmt: skip
    response = max_.post(f"{users}/invite", data=invite)
    show("max invites his programmer", "POST", f"{users}/invite", response.status_code)
    response = max_.post(f"{users}/invite", data={**invite, "scope": "all"})
    show("max invites the same address again", "POST", f"{users}/invite", response.status_code)

    assert isinstance(team.mailer, MemoryMailer)
    body = team.mailer.outbox[-1].get_body(("plain",))
    assert body is not None
    link = re.search(r"http://127\.0\.0\.1:8000(\S+)", body.get_content())
    assert link is not None
    accept = link.group(1)
    # The link's answer keeps the token in a cookie for the accept page and sends her on
    # to that page without the token in its URL (nor in the login link's `next`).
    invitation = anna.get(accept).headers["Location"]
    response = anna.get(invitation)
    show("anna opens the link from her mail", "GET", "/team/invitations/accept?token=…",
         response.status_code)  # fmt: skip
    anna.post("/login?next=/", data={"user": "anna"})
    page = anna.get(invitation).get_data(as_text=True)
    form = {"csrf_token": csrf(page), "action": "accept",
            "token": accept.split("token=", 1)[1]}  # fmt: skip
    response = anna.post("/team/invitations/accept", data=form)
    show("anna accepts", "POST", "/team/invitations/accept", response.status_code)
    response = anna.get(f"/accounts/{account}/services")
    show("anna opens the services page", "GET", f"/accounts/{account}/services",
         response.status_code)  # fmt: skip
    assert response.status_code == 200
    response = anna.get(f"/accounts/{account}/billing")
    show("anna opens the invoices", "GET", f"/accounts/{account}/billing", response.status_code)
    assert response.status_code == 403
    # Her users page is read-only, without a form; the page that asks before she leaves
    # the account has one, and with it the session's CSRF token.
    page = anna.get(f"{users}/anna/remove").get_data(as_text=True)
    response = anna.post(
        f"{users}/invite", data={"csrf_token": csrf(page), "email": "x@y.de", "scope": "all"}
    )
    show("anna tries to invite someone", "POST", f"{users}/invite", response.status_code)
    response = max_.get(users)
    show("max sees anna as a member", "GET", users, response.status_code)
    assert "dev@agentur.de" in response.get_data(as_text=True)
    assert team.can("anna", account, "support.tickets")


def serve() -> None:
    app, _, account = build()
    print(f"http://127.0.0.1:8000/login?next=/team/accounts/{account}/users  (user: max)")
    app.run("127.0.0.1", 8000)


if __name__ == "__main__":
    serve() if "--serve" in sys.argv[1:] else replay()

"""A demo panel around the blueprint: ``python -m teamaccess.web.demo``.

It runs on 127.0.0.1 with a demo login and registration (an address and a name, no
password, but a real session cookie), a SQLite file and the file mailer, all in one
folder (``./teamaccess-web-demo`` by default). The "Mails" page lists the mails sent, with
their links, so the whole story — invite, open the link in a private window, register,
accept — can be clicked through alone. The panel's own pages (invoices, access data,
support) are guarded by :class:`~teamaccess.web.flask.Guard`, one ``team.can()`` each,
like a real panel's would be. Not for production: anyone can log in as anyone.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import hmac
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from .. import (
    FileMailer,
    InvalidEmail,
    SQLiteStore,
    TeamAccess,
    ValidationError,
    error_message,
    normalize_email,
)
from ._core import HEADERS, LANGUAGES, User, pick_language
from ._i18n import translate
from ._pages import ResourcesHook
from .flask import Guard, blueprint, csrf_token

__all__ = ["DEMO_SERVICES", "DemoUsers", "create_app", "main", "serve"]

#: the demo's own words, beside the pages' (``_i18n.GERMAN``)
_GERMAN = {
    "Log in": "Anmelden",
    "Register": "Registrieren",
    "Log out": "Abmelden",
    "Mails": "E-Mails",
    "Dashboard": "Übersicht",
    "Invoices": "Rechnungen",
    "Access data": "Zugangsdaten",
    "Support tickets": "Support-Tickets",
    "Your name": "Ihr Name",
    "Email address": "E-Mail-Adresse",
    "Demo login: no password. Anyone can log in as anyone here.": "Demo-Anmeldung ohne "
    "Passwort. Hier kann sich jeder als jeder anmelden.",
    "No login has this address yet. Register first.": "Zu dieser Adresse gibt es noch keine "
    "Zugangsdaten. Registrieren Sie sich zuerst.",
    "This address is registered already. Log in instead.": "Diese Adresse ist schon "
    "registriert. Melden Sie sich stattdessen an.",
    "Please enter your name.": "Bitte geben Sie Ihren Namen ein.",
    "No login yet?": "Noch keine Zugangsdaten?",
    "Registered already?": "Schon registriert?",
    "Mails sent by the demo": "Vom Demo versendete E-Mails",
    "No mail yet. Invite someone on the users page.": "Noch keine E-Mail. Laden Sie auf der "
    "Benutzerseite jemanden ein.",
    "To": "An",
    "Links in this mail": "Links in dieser E-Mail",
    "Open the link in a private window to act as the invitee.": "Öffnen Sie den Link in "
    "einem privaten Fenster, um als eingeladene Person zu handeln.",
    "What you can do here": "Was Sie hier tun können",
    "Users and permissions": "Benutzer und Berechtigungen",
    "This is a page of the demo panel. It checks the permission “{label}”.": "Das ist eine "
    "Seite des Demo-Panels. Sie prüft die Berechtigung „{label}“.",
    "Invoice": "Rechnung",
    "Server": "Server",
    "Password": "Passwort",
    "Ticket": "Ticket",
    "You are not logged in.": "Sie sind nicht angemeldet.",
    "Log out?": "Abmelden?",
    "You are logged in as {email}.": "Sie sind als {email} angemeldet.",
}

_PANEL_PAGES = {
    # path: (title, permission)
    "invoices": ("Invoices", "billing.view"),
    "access-data": ("Access data", "credentials.view"),
    "support": ("Support tickets", "support.tickets"),
}


def _t(text: str, language: str) -> str:
    if language == "de" and text in _GERMAN:
        return _GERMAN[text]
    return translate(text, language)


class DemoUsers:
    """The demo's user accounts: id, address and name in a JSON file. No passwords."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def get(self, user_id: str) -> User | None:
        row = self._load().get(user_id)
        return User(user_id, row["email"], row["name"]) if row else None

    def by_email(self, address: str) -> User | None:
        key = normalize_email(address).key
        for user_id, row in self._load().items():
            if normalize_email(row["email"]).key == key:
                return User(user_id, row["email"], row["name"])
        return None

    def add(self, address: str, name: str) -> User:
        email_ = normalize_email(address).email
        with self._lock:
            users = self._load()
            user_id = f"u-{secrets.token_hex(4)}"
            users[user_id] = {"email": email_, "name": name}
            self.path.write_text(json.dumps(users, indent=1), encoding="utf-8")
        return User(user_id, email_, name)


def _safe_next(value: str | None) -> str:
    # Only a path on this site: an open redirect would make the login page a phishing aid.
    # Printable ASCII only: a browser drops a tab or line break, so "/\t/evil" is "//evil".
    if value and re.fullmatch(r"/(?!/)[\x21-\x7e]*", value) and "\\" not in value:
        return value
    return "/"


def _links(message: EmailMessage) -> list[str]:
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return re.findall(r"https?://\S+", str(text))


#: the services ``main()`` gives every demo account, as a vendor's hook would list them
DEMO_SERVICES = (
    ("srv-1", "Webhosting muster.de"),
    ("srv-2", "Managed Server vps-2.muster.de"),
    ("srv-3", "E-Mail-Paket muster-shop.de"),
)


def create_app(
    directory: str | Path,
    *,
    base_url: str = "http://127.0.0.1:8000",
    secret_key: str | None = None,
    resources: ResourcesHook | None = None,
) -> flask.Flask:
    """The demo panel on *directory*; *base_url* is where it is reached (for the mail links).
    *resources* is the blueprint's hook listing an account's services (``None``: none,
    and the forms grant account-wide only).

    ``app.extensions["teamaccess"]`` is the ``TeamAccess``, ``["teamaccess.users"]`` the
    :class:`DemoUsers`.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    key = secret_key or key_file.read_text(encoding="utf-8").strip()
    team = TeamAccess(
        SQLiteStore(folder / "teamaccess.db"),
        FileMailer(folder / "outbox"),
        secret_key=key,
        accept_url=f"{base_url.rstrip('/')}/team/invitations/accept?token={{token}}",
        sender="Demo Customer Center <noreply@demo.invalid>",
    )
    users = DemoUsers(folder / "users.json")
    if users.by_email("chef@muster.de") is None:
        owner = users.add("chef@muster.de", "Max Muster")
        team.create_account(name="Muster GmbH", owner_id=owner.id, owner_email=owner.email)

    app = flask.Flask(__name__, template_folder="demo_templates")
    app.secret_key = key
    # A form posted from another site carries no session (so no CSRF token to match), and
    # a link from another site still arrives logged in.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.extensions["teamaccess"] = team
    app.extensions["teamaccess.users"] = users

    def current_user() -> User | None:
        user_id = flask.session.get("demo.user")
        return users.get(user_id) if isinstance(user_id, str) else None

    app.register_blueprint(
        blueprint(
            team,
            current_user=current_user,
            login_url=lambda next_path: flask.url_for("login", next=next_path),
            register_url=lambda next_path: flask.url_for("register", next=next_path),
            logout_url=lambda next_path: flask.url_for("logout", next=next_path),
            home_url=lambda account_id: f"/panel/{account_id}",
            translations={"de": _GERMAN},
            resources=resources,
        ),
        url_prefix="/team",
    )

    def language() -> str:
        chosen = flask.request.args.get("lang")
        if chosen in LANGUAGES:
            flask.session["teamaccess.lang"] = chosen
        return pick_language(
            flask.request.headers.get("Accept-Language"), flask.session.get("teamaccess.lang")
        )

    def page(template: str, status: int = 200, **context: Any) -> Response:
        lang = language()
        other = "en" if lang == "de" else "de"
        user = current_user()
        account = context.get("account")
        held = team.permissions_of(user.id, account.id) if user and account else None
        response = flask.make_response(
            flask.render_template(
                template,
                lang=lang,
                other_lang=other,
                lang_url=flask.request.path
                + "?"
                + urlencode({**flask.request.args.to_dict(), "lang": other}),
                _=lambda text, **kw: _t(text, lang).format(**kw),
                url=lambda endpoint, **params: flask.url_for(f"teamaccess.{endpoint}", **params),
                static_url=flask.url_for("teamaccess.static", filename="teamaccess.css"),
                user=user,
                held=held,
                # the pages' token, for the layout's "Log out" form and the demo's own
                csrf_token=csrf_token(),
                can_manage_users=held is not None and "users.manage" in held,
                # the blueprint's one-time notices, e.g. "Welcome" after accepting
                notices=flask.session.pop("teamaccess.notices", []),
                section="",
                **context,
            ),
            status,
        )
        response.headers.update(HEADERS)
        return response

    @app.after_request
    def secured(response: Response) -> Response:
        # The demo's redirects and Flask's own error pages (404, 405) too, not only the
        # pages above: the demo shows a panel that sends them on every response.
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.route("/")
    def home() -> Response:
        user = current_user()
        if user is None:
            return flask.redirect(flask.url_for("login"))
        accounts = team.accounts_for(user.id)
        if accounts:
            return flask.redirect(f"/panel/{accounts[0].id}")
        return flask.redirect("/team/")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        lang = language()
        next_path = _safe_next(flask.request.values.get("next"))
        error = ""
        address = flask.request.form.get("email", "").strip()
        if flask.request.method == "POST":
            try:
                user = users.by_email(address)
            except ValidationError as exc:
                error = error_message(exc, lang)
            else:
                if user is None:
                    error = _t("No login has this address yet. Register first.", lang)
                else:
                    flask.session["demo.user"] = user.id
                    return flask.redirect(next_path, 303)
        return page("demo/login.html", 400 if error else 200, error=error, email=address,
                    next=next_path)  # fmt: skip

    @app.route("/register", methods=["GET", "POST"])
    def register() -> Response:
        lang = language()
        next_path = _safe_next(flask.request.values.get("next"))
        errors: dict[str, str] = {}
        address = flask.request.form.get("email", "").strip()
        name = flask.request.form.get("name", "").strip()
        if flask.request.method == "POST":
            if not name:
                errors["name"] = _t("Please enter your name.", lang)
            try:
                if users.by_email(address) is not None:
                    errors["email"] = _t("This address is registered already. Log in instead.",
                                         lang)  # fmt: skip
            except (InvalidEmail, ValidationError) as exc:
                errors["email"] = error_message(exc, lang)
            if not errors:
                user = users.add(address, name)
                flask.session["demo.user"] = user.id
                return flask.redirect(next_path, 303)
        return page("demo/register.html", 400 if errors else 200, errors=errors, email=address,
                    name=name, next=next_path)  # fmt: skip

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> Response:
        lang = language()
        # Back to where the page asked from (the invitation page), once logged in again.
        values = flask.request.values
        next_path = _safe_next(values.get("next")) if "next" in values else ""
        if current_user() is None:
            return flask.redirect(flask.url_for("login", next=next_path or None), 303)
        if flask.request.method == "POST":
            # The pages' CSRF token: a form another site posts carries none (and, with
            # SameSite=Lax, no session either).
            sent = flask.request.form.get("csrf_token", "")
            if hmac.compare_digest(sent.encode(), csrf_token().encode()):
                flask.session.pop("demo.user", None)
                return flask.redirect(flask.url_for("login", next=next_path or None), 303)
            error = _t("The form was open too long or came from another site. Reload the "
                       "page and try again.", lang)  # fmt: skip
            return page("demo/logout.html", 400, title=_t("This form has expired", lang),
                        error=error, next=next_path)  # fmt: skip
        # A GET never logs out: a link or an <img> on any other site could send one. It
        # asks, with the button that posts.
        return page("demo/logout.html", title=_t("Log out?", lang), error="", next=next_path)

    @app.route("/mails")
    def mails() -> Response:
        outbox = folder / "outbox"
        found = []
        for path in sorted(outbox.glob("*.eml"), reverse=True) if outbox.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(
                {
                    "to": message["To"],
                    "subject": message["Subject"],
                    "date": message["Date"],
                    "links": _links(message),
                }
            )
        return page("demo/mails.html", mails=found)

    def panel_account(account_id: str) -> tuple[User, Any] | Response:
        user = current_user()
        if user is None:
            return flask.redirect(flask.url_for("login", next=flask.request.path))
        if account_id not in {a.id for a in team.accounts_for(user.id)}:
            return flask.redirect("/team/")
        return user, team.get_account(account_id)

    @app.route("/panel/<account_id>")
    def dashboard(account_id: str) -> Response:
        found = panel_account(account_id)
        if isinstance(found, Response):
            return found
        _, account = found
        return page("demo/dashboard.html", account=account, pages=_PANEL_PAGES)

    guard = Guard(team, current_user=current_user,
                  login_url=lambda next_path: flask.url_for("login", next=next_path),
                  translations={"de": _GERMAN})  # fmt: skip

    def panel_page(account_id: str, name: str) -> Response:
        # The guard let the user in: a member of this account holding the page's permission.
        title, permission = _PANEL_PAGES[name]
        label = team.catalog[permission].label_for(language())
        return page("demo/panel_page.html", account=team.get_account(account_id), title=title,
                    name=name, label=label)  # fmt: skip

    @app.route("/panel/<account_id>/invoices")
    @guard.require("billing.view")
    def invoices(account_id: str) -> Response:
        return panel_page(account_id, "invoices")

    @app.route("/panel/<account_id>/access-data")
    @guard.require("credentials.view")
    def access_data(account_id: str) -> Response:
        return panel_page(account_id, "access-data")

    @app.route("/panel/<account_id>/support")
    @guard.require("support.tickets")
    def support(account_id: str) -> Response:
        return panel_page(account_id, "support")

    return app


class _QuietHandler(WSGIRequestHandler):
    """Logs each request without its query: the accept page's holds the invitation token."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


class _Later:
    """A WSGI app set after the server is bound, so the app can know the server's port."""

    app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


def serve(
    directory: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    resources: ResourcesHook | None = None,
) -> tuple[BaseWSGIServer, flask.Flask, str]:
    """A server for the demo on *host*:*port* (0 picks a free port), not yet started;
    *resources* as for :func:`create_app`.

    Returns the server (``serve_forever()``, ``shutdown()``), the app and its base URL.
    """
    later = _Later()
    server = make_server(host, port, later, threaded=True, request_handler=_QuietHandler)
    base_url = f"http://{host}:{server.server_port}"
    app = create_app(directory, base_url=base_url, resources=resources)
    later.app = app
    return server, app, base_url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m teamaccess.web.demo",
        description="The teamaccess customer-center pages in a demo panel, on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any)")
    parser.add_argument(
        "--dir", default="teamaccess-web-demo",
        help="folder for the SQLite file, the mails and the demo users",
    )  # fmt: skip
    args = parser.parse_args(argv)
    server, _, base_url = serve(args.dir, port=args.port, resources=lambda _: DEMO_SERVICES)
    print(f"teamaccess web demo on {base_url}/  (log in as chef@muster.de; Ctrl+C stops)")
    print(f"data in {Path(args.dir).resolve()}; mails listed at {base_url}/mails")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

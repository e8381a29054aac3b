"""``Guard`` on a panel that answers 403 itself: the pages' blueprint is needed only for
the pages' own 403 page, so a panel with its own ``@app.errorhandler(403)`` (a JSON API,
or a panel whose team pages live in another app) guards its views without mounting it.
Flask's test client, a MemoryStore."""

from __future__ import annotations

from typing import Any

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from werkzeug.exceptions import HTTPException  # noqa: E402

from teamaccess import MemoryMailer, MemoryStore, TeamAccess, ValidationError  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import Denied, Guard  # noqa: E402


def api(register: Any) -> tuple[Any, str]:
    """An app without the pages' blueprint; *register* adds its error handler."""
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
    account = team.create_account(name="A", owner_id="max", owner_email="max@example.org").id
    app = flask.Flask(__name__)
    app.secret_key = "test only"

    def current_user() -> User | None:
        uid = flask.request.headers.get("X-User")
        return User(uid, f"{uid}@example.org") if uid else None

    register(app)
    guard = Guard(team, current_user=current_user)

    @app.route("/api/<account_id>/invoices")
    @guard.require("billing.view")
    def invoices(account_id: str) -> dict[str, bool]:
        return {"ok": True}

    return app, account


def by_code(app: Any) -> None:
    @app.errorhandler(403)
    def forbidden(exc: Denied) -> tuple[dict[str, str], int]:
        return {"error": exc.description or "", "permission": exc.permission}, 403


def by_class(app: Any) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[dict[str, str], int]:
        return {"error": exc.description or ""}, exc.code or 500


@pytest.mark.parametrize("register", [by_code, by_class])
def test_the_apps_own_403_handler_without_the_blueprint(register: Any) -> None:
    app, account = api(register)
    client = app.test_client()
    assert client.get(f"/api/{account}/invoices", headers={"X-User": "max"}).json == {"ok": True}
    refused = client.get(f"/api/{account}/invoices", headers={"X-User": "eve"})
    assert refused.status_code == 403
    assert refused.json["error"] == (
        "This page needs the permission “View invoices”. Ask the account owner to grant it."
    )
    # nobody logged in: the login page, which needs no blueprint either
    assert client.get(f"/api/{account}/invoices").headers["Location"] == (
        f"/login?next=%2Fapi%2F{account}%2Finvoices"
    )


def test_without_the_blueprint_nor_a_handler_it_says_so() -> None:
    app, account = api(lambda app: None)
    app.testing = True
    with pytest.raises(ValidationError, match=r"blueprint named 'teamaccess'.*errorhandler\(403\)"):
        app.test_client().get(f"/api/{account}/invoices", headers={"X-User": "max"})


def test_a_handler_that_asks_for_the_pages_page_without_the_blueprint() -> None:
    def fallback(app: Any) -> None:
        @app.errorhandler(403)
        def forbidden(exc: Denied) -> Any:
            return exc.get_response()

    app, account = api(fallback)
    app.testing = True
    with pytest.raises(ValidationError, match="blueprint named 'teamaccess'"):
        app.test_client().get(f"/api/{account}/invoices", headers={"X-User": "eve"})


def test_account_none_is_refused_when_the_view_is_decorated() -> None:
    """``account=None`` (a permission thought of as the panel's, with no account) is
    said when the view is decorated, not a ``TypeError`` on every request."""
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
    guard = Guard(team, current_user=lambda: None)
    with pytest.raises(ValidationError, match="account must name an argument"):
        guard.require("billing.view", account=None)  # type: ignore[arg-type]

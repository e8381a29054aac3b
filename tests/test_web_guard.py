"""``teamaccess.web.flask.Guard``: a panel's own views ask ``team.can()`` before they run.

Flask's test client against a panel with the blueprint mounted, on a MemoryStore, a SQLite
file and PostgreSQL (when configured, see conftest): who is let in, who is sent to the
login, and what a refused user reads.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from werkzeug.wrappers import Response  # noqa: E402

from teamaccess import (  # noqa: E402
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    Store,
    TeamAccess,
    UnknownPermission,
    ValidationError,
)
from teamaccess.testing import FrozenClock  # noqa: E402
from teamaccess.web import HEADERS, User  # noqa: E402
from teamaccess.web.flask import Denied, Guard, blueprint  # noqa: E402

USERS = {"max": "chef@muster.de", "bea": "buchhaltung@muster.de", "eve": "eve@example.org"}
NEEDS = {
    "en": "This page needs the permission “View invoices”. Ask the account owner to grant it.",
    "de": "Diese Seite braucht die Berechtigung „Rechnungen einsehen“. Bitten Sie den "
    "Kontoinhaber, sie Ihnen zu geben.",
}


class CountingTeam(TeamAccess):
    """The library, counting the calls a guarded request makes."""

    calls: list[str]

    def can(self, *args: Any, **kwargs: Any) -> bool:
        self.calls.append("can")
        return super().can(*args, **kwargs)

    def get_member(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("get_member")
        return super().get_member(*args, **kwargs)


class Panel:
    """A panel: a header names the user, the blueprint at /team, guarded views of its own."""

    def __init__(self, store: Store) -> None:
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.team = CountingTeam(store, MemoryMailer(), secret_key="guard-test", clock=self.clock)
        self.team.calls = []
        self.account = self.team.create_account(
            name="Muster GmbH", owner_id="max", owner_email=USERS["max"]
        ).id
        self.other = self.team.create_account(
            name="Andere AG", owner_id="eve", owner_email=USERS["eve"]
        ).id
        self.ran: list[str] = []
        app = self.app = flask.Flask(__name__)
        app.secret_key = "test only"

        def current_user() -> User | None:
            uid = flask.request.headers.get("X-User")
            return User(uid, USERS[uid]) if uid else None

        app.register_blueprint(blueprint(self.team, current_user=current_user), url_prefix="/team")
        guard = self.guard = Guard(self.team, current_user=current_user)

        @app.route("/accounts/<account_id>/invoices", methods=["GET", "POST"])
        @guard.require("billing.view")
        def invoices(account_id: str) -> str:
            self.ran.append(account_id)
            return "the invoices"

        @app.route("/accounts/<account_id>/async-invoices")
        @guard.require("billing.view")
        async def async_invoices(account_id: str) -> str:
            self.ran.append(account_id)
            return "the invoices, async"

        @app.route("/accounts/<account_id>/services/<service_id>")
        @guard.require("services.view", resource="service_id")
        def service(account_id: str, service_id: str) -> str:
            self.ran.append(service_id)
            return f"service {service_id}"

        # A panel whose URLs name the service alone: the account comes from a lookup.
        owners = {"srv-1": self.account, "srv-2": self.account}

        @app.route("/services/<service_id>")
        @guard.require(
            "services.view", account=lambda args: owners.get(args["service_id"]),
            resource="service_id",
        )  # fmt: skip
        def bare_service(service_id: str) -> str:
            self.ran.append(service_id)
            return f"service {service_id}"

    def join(self, user: str, permissions: PermissionSet) -> None:
        inv = self.team.invite(self.account, actor_id="max", email=USERS[user],
                               permissions=permissions)  # fmt: skip
        assert inv.token is not None
        self.team.accept_invitation(inv.token, user_id=user, email=USERS[user])

    def get(
        self, user: str | None, path: str, language: str = "en", method: str = "GET"
    ) -> Response:
        client = self.app.test_client()
        headers = {"Accept-Language": language, **({"X-User": user} if user else {})}
        self.team.calls.clear()
        self.ran.clear()
        response: Response = client.open(path, method=method, headers=headers)
        return response


def said(response: Response) -> list[str]:
    """The error box's text on a page."""
    return re.findall(r'class="ta-error-box"[^>]*>([^<]*)<', response.get_data(as_text=True))


@pytest.fixture
def panel(store_factory: Callable[[], Store]) -> Panel:
    """On each backend (conftest's): memory, a SQLite file, and PostgreSQL when configured."""
    p = Panel(store_factory())
    p.join("bea", PermissionSet.of("billing.view") | PermissionSet.on("services.view", "srv-1"))
    return p


class TestLetIn:
    """A member holding the permission gets the view, for one can()."""

    def test_the_view_runs(self, panel: Panel) -> None:
        response = panel.get("bea", f"/accounts/{panel.account}/invoices")
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "the invoices"
        assert panel.ran == [panel.account]

    @pytest.mark.parametrize("user", ["max", "bea"])
    def test_one_can_and_nothing_else(self, panel: Panel, user: str) -> None:
        assert panel.get(user, f"/accounts/{panel.account}/invoices").status_code == 200
        assert panel.team.calls == ["can"]

    def test_an_async_view_guarded_before_it_is_awaited(self, panel: Panel) -> None:
        """Without Flask's async extra too: the guarded coroutine function, called."""
        view: Any = panel.app.view_functions["async_invoices"]
        assert inspect.iscoroutinefunction(view)
        with panel.app.test_request_context(headers={"X-User": "bea"}):
            assert asyncio.run(view(account_id=panel.account)) == "the invoices, async"
        with panel.app.test_request_context(headers={"X-User": "eve"}), pytest.raises(Denied):
            asyncio.run(view(account_id=panel.account))
        assert panel.ran == [panel.account]

    def test_an_async_view(self, panel: Panel) -> None:
        pytest.importorskip("asgiref", reason="Flask runs async views with flask[async]")
        response = panel.get("bea", f"/accounts/{panel.account}/async-invoices")
        assert response.status_code == 200
        assert panel.team.calls == ["can"]
        refused = panel.get("eve", f"/accounts/{panel.account}/async-invoices")
        assert refused.status_code == 403
        assert panel.ran == []

    def test_a_view_keeps_its_name_and_signature(self, panel: Panel) -> None:
        view = panel.app.view_functions["service"]
        assert view.__name__ == "service"
        assert list(inspect.signature(view).parameters) == ["account_id", "service_id"]


class TestLogin:
    """Nobody logged in: off to the login page, and back here afterwards."""

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_redirect_with_next(self, panel: Panel, method: str) -> None:
        response = panel.get(None, f"/accounts/{panel.account}/invoices?year=2026", method=method)
        assert response.status_code == 303
        assert response.headers["Location"] == (
            f"/login?next=%2Faccounts%2F{panel.account}%2Finvoices%3Fyear%3D2026"
        )
        assert {k: response.headers.get(k) for k in HEADERS} == dict(HEADERS)
        assert panel.ran == []
        assert panel.team.calls == []


class TestRefused:
    """A refusal is the pages' 403 page in the customer's language, and tells nothing more."""

    @pytest.mark.parametrize("language", ["en", "de"])
    def test_a_missing_permission(self, panel: Panel, language: str) -> None:
        panel.join("eve", PermissionSet.of("support.tickets"))
        response = panel.get("eve", f"/accounts/{panel.account}/invoices", language)
        assert response.status_code == 403
        assert said(response) == [NEEDS[language]]
        assert f'<html lang="{language}">' in response.get_data(as_text=True)
        assert {k: response.headers.get(k) for k in HEADERS} == dict(HEADERS)
        assert panel.ran == []

    @pytest.mark.parametrize("language", ["en", "de"])
    def test_another_account_reads_as_a_missing_permission(
        self, panel: Panel, language: str
    ) -> None:
        """Someone else's account, one that does not exist and one without the permission
        give the same page: no account id can be probed."""
        panel.join("eve", PermissionSet.of("support.tickets"))
        pages = [
            panel.get(user, f"/accounts/{account}/invoices", language)
            for user, account in [
                ("eve", panel.account),
                ("bea", panel.other),
                ("bea", "acc_doesnotexist0000"),
            ]
        ]
        assert [p.status_code for p in pages] == [403, 403, 403]
        assert [said(p) for p in pages] == [[NEEDS[language]]] * 3
        assert "Andere AG" not in pages[1].get_data(as_text=True)
        assert "Muster GmbH" not in pages[0].get_data(as_text=True)
        assert panel.ran == []

    @pytest.mark.parametrize(
        ("language", "text"),
        [("en", "Your access to Muster GmbH is suspended. The account owner can reactivate it."),
         ("de", "Ihr Zugriff auf Muster GmbH ist gesperrt. Der Kontoinhaber kann ihn wieder "
                "freischalten.")],
    )  # fmt: skip
    def test_a_suspended_member_is_told_why(self, panel: Panel, language: str, text: str) -> None:
        panel.team.suspend_member(panel.account, "bea", actor_id="max")
        response = panel.get("bea", f"/accounts/{panel.account}/invoices", language)
        assert response.status_code == 403
        assert said(response) == [text]
        assert panel.ran == []

    def test_an_expired_member_is_told_when(self, panel: Panel) -> None:
        ends = panel.clock.now() + timedelta(days=1)
        panel.team.set_access_until(panel.account, "bea", ends, actor_id="max")
        assert panel.get("bea", f"/accounts/{panel.account}/invoices").status_code == 200
        panel.clock.advance(timedelta(days=2))
        response = panel.get("bea", f"/accounts/{panel.account}/invoices")
        assert response.status_code == 403
        assert said(response) == [
            "Your access to Muster GmbH ended on 2026-03-03 09:00 UTC. The account owner can "
            "extend it."
        ]
        assert panel.ran == []

    @pytest.mark.parametrize("account", ["%00", "a%0Ab", "%20", "%09"])
    def test_a_malformed_account_id(self, panel: Panel, account: str) -> None:
        """An id no account can have: the same refusal, and the store is not asked."""
        response = panel.get("bea", f"/accounts/{account}/invoices")
        assert response.status_code == 403
        assert said(response) == [NEEDS["en"]]
        assert "can" not in panel.team.calls
        assert panel.ran == []

    def test_a_post_is_refused_too(self, panel: Panel) -> None:
        response = panel.get("eve", f"/accounts/{panel.account}/invoices", method="POST")
        assert response.status_code == 403
        assert panel.ran == []

    def test_the_panels_own_403_handler_answers(self, panel: Panel) -> None:
        seen: list[Denied] = []

        @panel.app.errorhandler(403)
        def forbidden(exc: Denied) -> tuple[str, int]:
            seen.append(exc)
            return f"panel says: {exc.description}", 403

        response = panel.get("eve", f"/accounts/{panel.account}/invoices", "de")
        assert response.status_code == 403
        assert response.get_data(as_text=True) == f"panel says: {NEEDS['de']}"
        assert [(d.permission, d.account_id, d.language) for d in seen] == [
            ("billing.view", panel.account, "de")
        ]


class TestResources:
    """A permission on single services: the grant on that service counts, no other."""

    def test_only_the_granted_service(self, panel: Panel) -> None:
        ok = panel.get("bea", f"/accounts/{panel.account}/services/srv-1")
        assert (ok.status_code, ok.get_data(as_text=True)) == (200, "service srv-1")
        assert panel.team.calls == ["can"]
        refused = panel.get("bea", f"/accounts/{panel.account}/services/srv-2")
        assert refused.status_code == 403
        assert "Ask the account owner" in said(refused)[0]
        assert panel.ran == []

    def test_the_account_from_a_callable(self, panel: Panel) -> None:
        assert panel.get("bea", "/services/srv-1").status_code == 200
        assert panel.team.calls == ["can"]
        assert panel.get("bea", "/services/srv-2").status_code == 403
        # The lookup finds no account: refused as any id that is not the user's.
        assert panel.get("bea", "/services/srv-9").status_code == 403
        assert "can" not in panel.team.calls
        assert panel.ran == []

    def test_a_resource_id_no_grant_can_have(self, panel: Panel) -> None:
        response = panel.get("bea", f"/accounts/{panel.account}/services/{'x' * 300}")
        assert response.status_code == 403
        assert "can" not in panel.team.calls


class TestAtDecoration:
    """A guard that could never work fails when the view is decorated, not on a request."""

    def guard(self) -> Guard:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        return Guard(team, current_user=lambda: None)

    def test_an_unknown_permission(self) -> None:
        with pytest.raises(UnknownPermission, match=r"billing\.veiw"):
            self.guard().require("billing.veiw")

    def test_a_resource_of_a_permission_granted_account_wide_only(self) -> None:
        with pytest.raises(ValidationError, match="account-wide only"):
            self.guard().require("billing.view", resource="invoice_id")

    def test_a_view_without_the_argument(self) -> None:
        def view(account: str) -> str:
            return account

        with pytest.raises(ValidationError, match="takes no argument 'account_id'"):
            self.guard().require("billing.view")(view)

    def test_a_view_taking_any_keyword(self) -> None:
        def view(**args: str) -> str:
            return ""

        assert self.guard().require("billing.view")(view).__wrapped__ is view  # type: ignore[attr-defined]

    def test_no_current_user_hook(self) -> None:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        with pytest.raises(ValidationError, match="current_user"):
            Guard(team, current_user=None)  # type: ignore[arg-type]


class TestMisconfigured:
    """A panel set up wrong is told how to fix it on its first guarded request."""

    def app(self, *, mount: bool, rule: str = "/a/<account_id>") -> Any:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
        app = flask.Flask(__name__)
        app.testing = True  # the error reaches the test, not a 500 page
        app.secret_key = "test only"

        def current_user() -> User:
            return User("max", USERS["max"])

        if mount:
            app.register_blueprint(blueprint(team, current_user=current_user))
        guard = Guard(team, current_user=current_user)

        @app.route(rule)
        @guard.require("billing.view")
        def view(account_id: Any) -> str:
            return ""

        return app

    def test_without_the_blueprint(self) -> None:
        with pytest.raises(ValidationError, match="blueprint named 'teamaccess'"):
            self.app(mount=False).test_client().get("/a/x")

    def test_an_int_converter(self) -> None:
        with pytest.raises(ValidationError, match="must be a string, not int"):
            self.app(mount=True, rule="/a/<int:account_id>").test_client().get("/a/1")


def test_views_called_with_positional_arguments() -> None:
    """Outside a route (a test calling the view), the arguments are bound by name."""
    p = Panel(MemoryStore())
    p.join("bea", PermissionSet.of("billing.view"))
    view: Any = p.app.view_functions["invoices"]
    with p.app.test_request_context(headers={"X-User": "bea"}):
        assert view(p.account) == "the invoices"
    with p.app.test_request_context(headers={"X-User": "eve"}), pytest.raises(Denied):
        view(p.account)


def test_a_ready_pages_and_headers_of_the_panels() -> None:
    """Given a ``Pages``, its login page is the guard's; *headers* replace ``HEADERS``'."""
    from teamaccess.web import Pages

    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=USERS["max"])
    app = flask.Flask(__name__)
    app.secret_key = "test only"

    def current_user() -> User | None:
        uid = flask.request.headers.get("X-User")
        return User(uid, USERS[uid]) if uid else None

    pages = Pages(team, login_url="/signin?to={next}")
    app.register_blueprint(blueprint(pages, current_user=current_user))
    csp = "default-src 'self' https://cdn.example"
    guard = Guard(pages, current_user=current_user, headers={"Content-Security-Policy": csp})

    @app.route("/a/<account_id>")
    @guard.require("billing.view")
    def view(account_id: str) -> str:
        return "ok"

    client = app.test_client()
    assert client.get(f"/a/{account.id}").headers["Location"] == (f"/signin?to=%2Fa%2F{account.id}")
    refused = client.get(f"/a/{account.id}", headers={"X-User": "eve"})
    assert refused.status_code == 403
    assert refused.headers["Content-Security-Policy"] == csp
    assert refused.headers["X-Frame-Options"] == "DENY"
    team.close()

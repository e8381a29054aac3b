"""Attacks on teamaccess.web through the Flask blueprint: CSRF on every POST route, GET
that never changes anything, members without the permission, ids of another account in
the URL or the form, stored XSS, error pages without Python names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import USERS, Panel

from teamaccess import PermissionSet, SQLiteStore, TeamAccess
from teamaccess.web import ROUTES

XSS = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


class World:
    """Two accounts: max's (with bea, anna, a contact, a pending invitation) and eve's
    (with its own contact and invitation); every id a form or URL can name."""

    def __init__(self, panel: Panel) -> None:
        self.p = panel
        team = panel.team
        panel.join("bea", "billing.view")
        panel.join("anna", "users.manage", "contacts.manage", "billing.view")
        self.a = panel.account
        self.a_inv = team.invite(
            self.a, actor_id="max", email="pending@example.com", permissions=PermissionSet.all()
        ).id
        self.a_contact = team.add_contact(
            self.a, actor_id="max", name="Alice", email="alice@example.com", categories=["billing"]
        ).id
        self.b = team.create_account(name="Eve Ltd", owner_id="eve", owner_email=USERS["eve"]).id
        self.b_inv = team.invite(
            self.b, actor_id="eve", email="victim@example.com", permissions=PermissionSet.all()
        ).id
        self.b_contact = team.add_contact(
            self.b, actor_id="eve", name="Bob", email="bob@example.com", categories=["billing"]
        ).id

    def state(self) -> tuple[Any, ...]:
        team = self.p.team
        out: list[Any] = []
        for acc in (self.a, self.b):
            out += [
                team.get_account(acc),
                team.members(acc),
                team.invitations(acc),
                team.contacts(acc),
                [e.id for e in team.audit_log(acc, limit=10_000)],
            ]
        out.append(len(self.p.mailer.outbox))
        return tuple(out)

    def url(self, rule: str, account: str | None = None, **ids: str) -> str:
        params = {
            "account_id": account or self.a,
            "user_id": "bea",
            "invitation_id": self.a_inv,
            "contact_id": self.a_contact,
            **ids,
        }
        path = rule
        for name, value in params.items():
            path = path.replace(f"<{name}>", value)
        return "/team" + path


FORM: dict[str, object] = {
    "email": "new@example.com",
    "scope": "all",
    "permission": ["billing.view"],
    "name": "N",
    "categories": ["billing"],
    "until": "2030-01-01",
    "action": "accept",
    "note": "n",
    # the answer of the page that asks before a removal or suspension
    "confirm": "yes",
}

POST_ROUTES = [r for r in ROUTES if "POST" in r.methods]


@pytest.fixture
def world() -> World:
    return World(Panel())


def _csrf(world: World, user: str) -> str:
    client = world.p.client(user)
    client.get("/team/invitations/accept?token=x")
    with client.session_transaction() as session:
        return str(session["teamaccess.csrf"])


@pytest.mark.parametrize("token", [None, "", "forged", "x" * 43])
@pytest.mark.parametrize("route", POST_ROUTES, ids=[r.endpoint for r in POST_ROUTES])
def test_post_without_a_valid_csrf_token_changes_nothing(
    world: World, route: Any, token: str | None
) -> None:
    _csrf(world, "max")  # the session has a token; the form does not carry it
    before = world.state()
    data = dict(FORM)
    if token is not None:
        data["csrf_token"] = token
    response = world.p.client("max").post(world.url(route.rule), data=data)
    assert response.status_code == 400
    assert world.state() == before


def test_csrf_token_of_another_session_is_refused(world: World) -> None:
    """A token is bound to its session: eve's own token does not work in max's session."""
    eves = _csrf(world, "eve")
    _csrf(world, "max")
    before = world.state()
    response = world.p.client("max").post(
        world.url("/accounts/<account_id>/users/invite"), data={**FORM, "csrf_token": eves}
    )
    assert response.status_code == 400
    assert world.state() == before


@pytest.mark.parametrize("route", ROUTES, ids=[r.endpoint for r in ROUTES])
@pytest.mark.parametrize("user", ["max", "bea", "eve", None])
def test_get_changes_nothing(world: World, route: Any, user: str | None) -> None:
    """Mail scanners and prefetchers follow links: a GET, with any query, changes nothing."""
    token = world.p.invite("scanned@example.com")
    before = world.state()
    query = f"?token={token}&action=accept&csrf_token={_csrf(world, user or 'eve')}"
    query += "&email=x@example.com&scope=all&name=N&categories=billing&until=2030-01-01"
    query += "&confirm=yes"
    response = world.p.client(user).get(world.url(route.rule) + query)
    assert response.status_code < 500
    assert world.state() == before
    # HEAD as well
    world.p.client(user).head(world.url(route.rule) + query)
    assert world.state() == before
    assert world.p.team.inspect_invitation(token).status == "pending"


MANAGE_USERS = [
    "invite",
    "member",
    "remove_member",
    "suspend",
    "reactivate",
    "access_until",
    "resend",
    "revoke",
]


@pytest.mark.parametrize("endpoint", [*MANAGE_USERS, "contacts", "contact", "remove_contact"])
def test_member_without_the_permission_cannot_post(world: World, endpoint: str) -> None:
    route = next(r for r in ROUTES if r.endpoint == endpoint)
    data = {**FORM, "csrf_token": _csrf(world, "bea")}
    before = world.state()
    # bea holds billing.view only; she targets anna (not herself: leaving is allowed)
    response = world.p.client("bea").post(world.url(route.rule, user_id="anna"), data=data)
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert world.state() == before


IDOR = [
    ("resend", {"invitation_id": "b_inv"}),
    ("revoke", {"invitation_id": "b_inv"}),
    ("contact", {"contact_id": "b_contact"}),
    ("remove_contact", {"contact_id": "b_contact"}),
    ("member", {"user_id": "eve"}),
    ("remove_member", {"user_id": "eve"}),
    ("suspend", {"user_id": "eve"}),
    ("reactivate", {"user_id": "eve"}),
    ("access_until", {"user_id": "eve"}),
]


@pytest.mark.parametrize(("endpoint", "ids"), IDOR, ids=[e for e, _ in IDOR])
@pytest.mark.parametrize("user", ["max", "anna"])
def test_ids_of_another_account_in_the_url(
    world: World, endpoint: str, ids: dict[str, str], user: str
) -> None:
    route = next(r for r in ROUTES if r.endpoint == endpoint)
    resolved = {k: getattr(world, v) if hasattr(world, v) else v for k, v in ids.items()}
    data = {**FORM, "csrf_token": _csrf(world, user)}
    before = world.state()
    # in the own account's URL, with the other account's id
    response = world.p.client(user).post(world.url(route.rule, **resolved), data=data)
    assert response.status_code in (403, 404)
    assert world.state() == before
    # in the other account's URL: not a member there
    response = world.p.client(user).post(
        world.url(route.rule, account=world.b, **resolved), data=data
    )
    assert response.status_code == 404
    assert world.state() == before
    # A form's action opened as a page goes to its page (which is not found) and changes
    # nothing.
    got = world.p.client(user).get(
        world.url(route.rule, account=world.b, **resolved), follow_redirects=True
    )
    assert got.status_code in (404, 405)
    assert world.state() == before


def test_invite_into_another_account_by_form_fields(world: World) -> None:
    """Extra form fields naming another account are ignored: the URL's account is used."""
    data = {**FORM, "scope": "selected", "csrf_token": _csrf(world, "anna"),
            "account_id": world.b, "account": world.b}  # fmt: skip
    response = world.p.client("anna").post(world.url("/accounts/<account_id>/users/invite"),
                                           data=data)  # fmt: skip
    assert response.status_code == 303
    assert [i.email for i in world.p.team.pending_invitations(world.b)] == ["victim@example.com"]
    assert "new@example.com" in [i.email for i in world.p.team.pending_invitations(world.a)]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_stored_values_are_escaped_everywhere(lang: str) -> None:
    panel = Panel()
    team = panel.team
    acc = team.create_account(name=XSS, owner_id="max", owner_email=USERS["max"]).id
    inv = team.invite(acc, actor_id="max", email="i@example.com", permissions=PermissionSet.all(),
                      note=XSS, metadata={"k": XSS, XSS[:40]: 1})  # fmt: skip
    token = inv.token
    contact = team.add_contact(acc, actor_id="max", name=XSS, email="c@example.com",
                               categories=["billing"], company=XSS, role=XSS,
                               phone=XSS[:30])  # fmt: skip
    pages = [
        f"/team/accounts/{acc}/users",
        f"/team/accounts/{acc}/contacts",
        f"/team/accounts/{acc}/contacts/{contact.id}",
        f"/team/accounts/{acc}/activity",
        f"/team/accounts/{acc}/users/max",
        f"/team/accounts/{acc}/contacts/{contact.id}/remove",
        f"/team/invitations/accept?token={token}",
        "/team/",
    ]
    for page in pages:
        for user in ("max", None):
            # the invitation link leads on to its page without the token: follow it there
            response = panel.client(user, lang).get(page, follow_redirects="token=" in page)
            body = response.get_data(as_text=True)
            assert "<script>alert" not in body, page
            assert "<img src=x" not in body, page
            assert "onerror=alert" not in body or "onerror=alert(2)&gt;" in body, page
    # notices built from user values after a POST, then shown on the next page
    csrf = _csrf_panel(panel, "max")
    client = panel.client("max", lang)
    client.post(
        f"/team/accounts/{acc}/contacts/{contact.id}/remove",
        data={"csrf_token": csrf, "confirm": "yes"},
    )
    body = client.get(f"/team/accounts/{acc}/contacts").get_data(as_text=True)
    assert "<script>alert" not in body


def _csrf_panel(panel: Panel, user: str) -> str:
    client = panel.client(user)
    client.get("/team/invitations/accept?token=x")
    with client.session_transaction() as session:
        return str(session["teamaccess.csrf"])


PYTHON_NAMES = re.compile(
    r"Traceback|File \"|\bError\(|NotFound|Exception|teamaccess\.|_service|"
    r"\b[A-Z][a-z]+[A-Z][A-Za-z]*Error\b|<class |repr\(|None\b"
)


@pytest.mark.parametrize(
    "path",
    [
        "/team/accounts/acc_nope/users",
        "/team/accounts/'%22<x>/users",
        "/team/accounts/{a}/users/nobody",
        "/team/accounts/{a}/contacts/con_nope",
        "/team/accounts/{a}/contacts/{b_contact}",
        "/team/accounts/{a}/users/nobody/remove",
        "/team/accounts/{a}/users/max/remove",
        "/team/accounts/{a}/users/max/suspend",
        "/team/accounts/{a}/contacts/con_nope/remove",
        "/team/accounts/{a}/contacts/{b_contact}/remove",
        "/team/invitations/accept?token=",
        "/team/invitations/accept?token=garbage",
        "/team/invitations/accept?token=" + "A" * 5000,
        "/team/invitations/accept?token=%00%0d%0a",
        "/team/accounts/{a}/activity?page=abc",
        "/team/accounts/{a}/activity?page=99999999999999999999999999",
    ],
)
@pytest.mark.parametrize("lang", ["en", "de"])
def test_error_pages_name_no_python(world: World, path: str, lang: str) -> None:
    url = path.format(a=world.a, b_contact=world.b_contact)
    response = world.p.client("max", lang).get(url)
    body = response.get_data(as_text=True)
    assert response.status_code < 500, body[:500]
    text = re.sub(r"<[^>]+>", " ", body)
    assert not PYTHON_NAMES.search(text), PYTHON_NAMES.search(text)


def test_activity_page_far_beyond_the_end_on_sqlite(tmp_path: Path) -> None:
    """A huge page number is an empty page, not a 500 (the store's LIMIT overflowed)."""
    panel = Panel()
    panel.team = TeamAccess(
        SQLiteStore(tmp_path / "t.db"), panel.mailer, secret_key="web-test", clock=panel.clock,
        accept_url="http://panel.test/team/invitations/accept?token={token}",
    )  # fmt: skip
    team = panel.team
    acc = team.create_account(name="A", owner_id="max", owner_email=USERS["max"]).id
    # The blueprint holds the first team; mount a new app on this one.
    import flask

    from teamaccess.web import User
    from teamaccess.web.flask import blueprint

    app = flask.Flask(__name__)
    app.secret_key = "t"
    app.register_blueprint(
        blueprint(team, current_user=lambda: User("max", USERS["max"])), url_prefix="/team"
    )
    client = app.test_client()
    for page in ("99999999999999999999999999", str(2**62)):
        response = client.get(f"/team/accounts/{acc}/activity?page={page}")
        assert response.status_code == 200
    assert len(team.audit_log(acc, limit=10**30)) == 1

"""The vendor's ``resources`` hook raises, or returns what no form can offer: the owner's
pages answer 503 with a page in the customer's language that says the service list is
unavailable right now (with the pages' security headers), nothing is saved, and the
``teamaccess`` logger gets the fault, a raised one with its traceback. The invitation
page names the services by id instead, and the invitee can still accept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from tests.web_panel import USERS, Panel

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from teamaccess import MemoryStore, PermissionSet, TeamAccess  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402

SCOPED = PermissionSet.on("services.manage", "srv-1")
SHOWN = {
    "en": "The services of this customer account cannot be listed right now, so this page "
    "cannot be shown. Please try again later; if it keeps happening, contact support.",
    "de": "Die Dienste dieses Kundenkontos können gerade nicht aufgelistet werden, daher "
    "kann diese Seite nicht angezeigt werden. Bitte versuchen Sie es später erneut; wenn es "
    "wieder passiert, wenden Sie sich an den Support.",
}
SAVED = {
    "en": "The services of this customer account could not be listed, so nothing was "
    "changed. Please try again later; if it keeps happening, contact support.",
    "de": "Die Dienste dieses Kundenkontos konnten nicht aufgelistet werden, daher wurde "
    "nichts geändert. Bitte versuchen Sie es später erneut; wenn es wieder passiert, wenden "
    "Sie sich an den Support.",
}


class ServiceApiDown(RuntimeError):
    pass


def down(account_id: str) -> list[tuple[str, str]]:
    raise ServiceApiDown("billing-db.internal:5432 refused the connection")


def panel_with(hook: Callable[[str], Any]) -> Panel:
    panel = Panel()
    panel.team = TeamAccess(
        MemoryStore(), panel.mailer, secret_key="web-test", clock=panel.clock,
        accept_url="http://panel.test/team/invitations/accept?token={token}",
    )  # fmt: skip
    panel.account = panel.team.create_account(
        name="Muster GmbH", owner_id="max", owner_email=USERS["max"]
    ).id

    def current_user() -> User | None:
        uid = flask.request.headers.get("X-User")
        return User(uid, USERS[uid]) if uid else None

    panel.app = flask.Flask(__name__)
    panel.app.secret_key = "test only"
    panel.app.register_blueprint(
        blueprint(panel.team, current_user=current_user, resources=hook), url_prefix="/team"
    )
    panel.clients = {}
    return panel


def hook_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "teamaccess" and "resources hook" in r.message]


def no_vendor_detail(body: str) -> None:
    for secret in ("billing-db", "ServiceApiDown", "Traceback", "resources("):
        assert secret not in body


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_users_page(language: str, caplog: pytest.LogCaptureFixture) -> None:
    panel = panel_with(down)
    caplog.set_level(logging.ERROR, logger="teamaccess")
    response = panel.client("max", language).get(panel.users())
    body = response.get_data(as_text=True)
    # Before: Flask's own "500 Internal Server Error", in English, without these headers.
    assert response.status_code == 503
    assert SHOWN[language] in body
    assert f'lang="{language}"' in body
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    no_vendor_detail(body)
    (record,) = hook_records(caplog)
    assert record.levelno == logging.ERROR
    assert panel.account in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ServiceApiDown


def test_an_invitation_sent_while_the_hook_fails_is_not_saved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    panel = panel_with(down)
    caplog.set_level(logging.ERROR, logger="teamaccess")
    client = panel.client("max", "de")
    with client.session_transaction() as session:
        session["teamaccess.csrf"] = "t"
    response = client.post(
        f"/team/accounts/{panel.account}/users/invite",
        data={"csrf_token": "t", "email": USERS["anna"], "scope": "selected",
              "permission": "billing.view"},
    )  # fmt: skip
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert SAVED["de"] in body
    no_vendor_detail(body)
    assert panel.team.pending_invitations(panel.account) == []
    assert panel.mailer.outbox == []
    assert len(hook_records(caplog)) == 1


def test_a_members_permissions_saved_while_the_hook_fails_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    panel = panel_with(down)
    panel.join("anna", "billing.view")
    client = panel.client("max", "en")
    with client.session_transaction() as session:
        session["teamaccess.csrf"] = "t"
    response = client.post(
        f"/team/accounts/{panel.account}/users/anna",
        data={"csrf_token": "t", "scope": "selected", "permission": "support.tickets"},
    )
    assert response.status_code == 503
    assert SAVED["en"] in response.get_data(as_text=True)
    assert panel.team.get_member(panel.account, "anna").permissions == PermissionSet.of(
        "billing.view"
    )


def test_a_bad_list_is_logged_with_its_fault(caplog: pytest.LogCaptureFixture) -> None:
    panel = panel_with(lambda account_id: [("srv-1",)])
    caplog.set_level(logging.ERROR, logger="teamaccess")
    response = panel.client("max", "en").get(panel.users())
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert SHOWN["en"] in body
    assert "resources(" not in body
    (record,) = hook_records(caplog)
    # Before: nothing was logged; the developer had only the customer's page.
    assert "must return (resource id, display name) pairs" in record.getMessage()
    assert record.exc_info is None


def test_the_invitee_can_still_accept(caplog: pytest.LogCaptureFixture) -> None:
    panel = panel_with(down)
    caplog.set_level(logging.ERROR, logger="teamaccess")
    inv = panel.team.invite(panel.account, actor_id="max", email=USERS["bea"],
                            permissions=SCOPED)  # fmt: skip
    assert inv.token is not None
    client = panel.client("bea", "en")
    page = client.get("/team/invitations/accept?token=" + quote(inv.token), follow_redirects=True)
    body = page.get_data(as_text=True)
    # Before: Flask's 500 page; the invitee could not accept at all.
    assert page.status_code == 200
    assert "only on srv-1" in body  # named by its id
    no_vendor_detail(body)
    assert len(hook_records(caplog)) == 1
    status, _, _ = panel.post("bea", "/team/invitations/accept",
                              {"token": inv.token, "action": "accept"})  # fmt: skip
    assert status == 303
    assert panel.team.get_member(panel.account, "bea").permissions == SCOPED

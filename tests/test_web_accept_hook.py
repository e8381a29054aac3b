"""The invitation page and the vendor's resources hook: the invitee can accept whatever
the hook does, as long as the invitation needs no service names; a hook that lists what
no grant can be on leaves the services named by id, not the page failed."""

from __future__ import annotations

from urllib.parse import quote

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, TeamAccess  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402

OWNER = "chef@muster.de"
INVITEE = "buchhaltung@muster.de"


def _page(permissions: PermissionSet, hook: object) -> tuple[int, str]:
    """The invitation page an invitee who is logged in opens, for an invitation of
    *permissions*, with *hook* as the vendor's resources hook."""
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="k")
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email=OWNER)
    inv = team.invite(account.id, actor_id="max", email=INVITEE, permissions=permissions)
    app = flask.Flask(__name__)
    app.secret_key = "test"
    user = User("bea", INVITEE)
    app.register_blueprint(blueprint(team, current_user=lambda: user, resources=hook))
    assert inv.token is not None
    # the link moves the token into a cookie, then shows the page by a clean URL
    page = app.test_client().get(
        "/invitations/accept?token=" + quote(inv.token), follow_redirects=True
    )
    return page.status_code, page.get_data(as_text=True)


def _broken(account_id: str) -> list[tuple[str, str]]:
    raise AssertionError("the page asked the hook for an invitation without service grants")


def test_without_service_grants_the_hook_is_not_asked() -> None:
    status, body = _page(PermissionSet.of("billing.view"), _broken)
    assert status == 200
    assert 'value="accept"' in body


@pytest.mark.parametrize("listed", [[(" srv-1", "Odd")], [("srv-1",)], "srv-1"])
def test_a_hook_listing_what_no_grant_can_be_on_leaves_the_ids(listed: object) -> None:
    status, body = _page(PermissionSet.on("services.manage", "srv-1"), lambda _: listed)
    assert status == 200
    assert 'value="accept"' in body
    assert "only on srv-1" in body


def test_the_hooks_names_are_shown() -> None:
    names = [("srv-1", "Webhosting muster.de")]
    status, body = _page(PermissionSet.on("services.manage", "srv-1"), lambda _: names)
    assert status == 200
    assert "only on Webhosting muster.de" in body

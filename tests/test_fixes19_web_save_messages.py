"""A save that fails because of the vendor's catalog or ``resources`` hook says what is
wrong in the customer's words, in English and German, not "Please check your input: each
field takes a single line of text", and names nothing of the vendor's code."""

import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from tests.web_panel import USERS, Panel

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from teamaccess import Catalog, MemoryStore, PermissionSet, TeamAccess  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402

SERVICES = [("srv-1", "Webhosting muster.de"), ("srv-2", "Server vps-2.muster.de")]
GENERIC = ("Please check your input", "Bitte prüfen Sie Ihre Eingabe")


def panel_with(
    resources: Callable[[str], Any] | None, catalog: Catalog | None = None,
    store: MemoryStore | None = None,
) -> Panel:  # fmt: skip
    """The tests' panel, with the vendor's *catalog* and *resources* hook on *store*."""
    panel = Panel()
    panel.team = TeamAccess(
        store or MemoryStore(), panel.mailer, secret_key="web-test", clock=panel.clock,
        catalog=catalog, accept_url="http://panel.test/team/invitations/accept?token={token}",
    )  # fmt: skip
    found = panel.team.accounts_for("max")
    panel.account = (
        found[0].id if found
        else panel.team.create_account(name="Muster GmbH", owner_id="max",
                                       owner_email=USERS["max"]).id
    )  # fmt: skip

    def current_user() -> User | None:
        uid = flask.request.headers.get("X-User")
        return User(uid, USERS[uid]) if uid else None

    panel.app = flask.Flask(__name__)
    panel.app.secret_key = "test only"
    panel.app.register_blueprint(
        blueprint(panel.team, current_user=current_user, resources=resources),
        url_prefix="/team",
    )
    return panel


def shown_errors(body: str) -> list[str]:
    return re.findall(r'class="ta-error"[^>]*>([^<]*)<', body) or re.findall(
        r"<p[^>]*>([^<]*)</p>", body
    )


def said(body: str, text: str) -> None:
    assert any(text in e for e in shown_errors(body)), shown_errors(body)
    assert not any(g in body for g in GENERIC)


class TestAPresetGone:
    """A preset the vendor dropped since the form was shown."""

    @pytest.mark.parametrize(
        ("language", "text"),
        [
            ("en", "The chosen set of permissions is no longer offered. Reload the page"),
            ("de", "Die gewählte Zusammenstellung von Berechtigungen wird nicht mehr angeboten"),
        ],
    )
    def test_inviting(self, language: str, text: str) -> None:
        panel = panel_with(None)
        status, body, _ = panel.post(
            "max", panel.users() + "/invite",
            {"email": USERS["anna"], "scope": "preset:gone"}, language,
        )  # fmt: skip
        assert status == 400
        said(body, text)
        assert "gone" not in " ".join(shown_errors(body))
        assert panel.team.pending_invitations(panel.account) == []

    def test_on_a_members_page(self) -> None:
        panel = panel_with(None)
        panel.join("anna", "billing.view")
        status, body, _ = panel.post("max", panel.users() + "/anna", {"scope": "preset:gone"})
        assert status == 400
        said(body, "The chosen set of permissions is no longer offered.")
        member = panel.team.get_member(panel.account, "anna")
        assert member.permissions == PermissionSet.of("billing.view")


class TestAGrantTheCatalogNoLongerLimits:
    """A member holds a permission on single services, and the vendor's catalog no longer
    lets it be limited to services: the page cannot save it and says why."""

    @pytest.mark.parametrize(
        ("language", "text"),
        [
            ("en", "“Manage services” is held on single services, which it can no longer be "
                   "limited to, so these permissions cannot be saved. Please contact support."),
            ("de", "„Dienste verwalten“ ist auf einzelne Dienste beschränkt vergeben"),
        ],
    )  # fmt: skip
    def test_saving_the_members_page(self, language: str, text: str) -> None:
        store = MemoryStore()  # one store, seen through the catalog before and after
        before = panel_with(lambda account_id: SERVICES, store=store)
        before.join("anna", "billing.view")
        before.team.set_permissions(
            before.account, "anna", PermissionSet.on("services.manage", "srv-1"), actor_id="max"
        )
        default = Catalog.default()
        unscoped = Catalog(
            [attrs.evolve(p, scoped=False) for p in default], presets=default.presets()
        )
        panel = panel_with(lambda account_id: SERVICES, unscoped, store)
        status, body, _ = panel.post(
            "max", panel.users() + "/anna",
            {"scope": "selected", "permission": ["billing.view"]}, language,
        )  # fmt: skip
        assert status == 400
        said(body, text)
        member = panel.team.get_member(panel.account, "anna")
        assert member.permissions == PermissionSet.on("services.manage", "srv-1")


class TestAHookThatFails:
    """The vendor's hook returns what no form can offer: the customer reads that the
    account's services could not be listed, and nothing of the vendor's code."""

    @pytest.mark.parametrize(
        "listed", [["ab", "cd"], [(" srv-1", "Webhosting")], [("srv-1", 7)], "srv-1"]
    )
    @pytest.mark.parametrize(
        ("language", "text"),
        [
            ("en", "The services of this customer account could not be listed, so nothing "
                   "was changed. Please try again later; if it keeps happening, contact support."),
            ("de", "Die Dienste dieses Kundenkontos konnten nicht aufgelistet werden"),
        ],
    )  # fmt: skip
    def test_saving_an_invitation(self, listed: object, language: str, text: str) -> None:
        panel = panel_with(lambda account_id: listed)
        status, body, _ = panel.post(
            "max", panel.users() + "/invite",
            {"email": USERS["anna"], "scope": "selected", "permission": "billing.view"},
            language,
        )  # fmt: skip
        assert status == 503  # the vendor's hook failed, not the request
        said(body, text)
        assert "resources(" not in body
        assert "srv-1" not in body
        assert panel.team.pending_invitations(panel.account) == []

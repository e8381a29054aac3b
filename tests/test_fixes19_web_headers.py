"""Every response of the blueprint and of the demo carries the pages' security headers:
Flask's own error pages (404 and 405 for a URL of the blueprint, 413 for a form too large,
a missing stylesheet) and the demo's redirects and error pages included. Without them a
404 page could be framed, cached or sniffed as another type."""

from pathlib import Path

import pytest
from tests.web_panel import USERS, Panel

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from teamaccess.web import HEADERS, User  # noqa: E402
from teamaccess.web.demo import create_app  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402


def missing(response: object) -> list[str]:
    headers = response.headers  # type: ignore[attr-defined]
    return [key for key in HEADERS if headers.get(key) != HEADERS[key]]


class TestBlueprintErrors:
    """Flask's error pages for the blueprint's URLs carry HEADERS."""

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("get", "/team/no-such-page", 404),
            ("get", "/team/accounts/{account}/users/anna/nothing-here", 404),
            ("post", "/team/accounts/{account}/users", 405),
            ("put", "/team/accounts/{account}/contacts", 405),
            ("delete", "/team/invitations/accept", 405),
            ("get", "/team/teamaccess-static/no-such.css", 404),
        ],
    )
    def test_an_error_page_flask_makes(self, method: str, path: str, status: int) -> None:
        panel = Panel()
        client = panel.client("max")
        response = getattr(client, method)(path.format(account=panel.account))
        assert response.status_code == status
        assert missing(response) == []

    def test_a_form_too_large(self) -> None:
        panel = Panel()
        panel.app.config["MAX_CONTENT_LENGTH"] = 100
        response = panel.client("max").post(
            f"/team/accounts/{panel.account}/contacts", data={"name": "x" * 1000}
        )
        assert response.status_code == 413
        assert missing(response) == []

    def test_the_stylesheet(self) -> None:
        with Panel().client(None).get("/team/teamaccess-static/teamaccess.css") as response:
            assert response.status_code == 200
            assert response.headers["X-Content-Type-Options"] == "nosniff"

    def test_the_app_own_pages_outside_the_prefix_are_left_alone(self) -> None:
        panel = Panel()
        response = panel.client("max").get("/elsewhere")
        assert response.status_code == 404
        assert missing(response) == list(HEADERS)

    def test_a_405_of_a_blueprint_mounted_without_a_prefix(self) -> None:
        app = flask.Flask(__name__)
        app.secret_key = "test only"
        app.register_blueprint(
            blueprint(Panel().team, current_user=lambda: User("max", USERS["max"]))
        )
        client = app.test_client()
        assert missing(client.post("/accounts/x/users")) == []
        # The app's own 404s are not the blueprint's to answer for.
        assert missing(client.get("/elsewhere/deep")) == list(HEADERS)


class TestDemo:
    """The demo app's redirects and error pages carry HEADERS."""

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("get", "/", 302),
            ("get", "/no-such-page", 404),
            ("post", "/mails", 405),
            ("get", "/panel/{account}/no-such-page", 404),
            ("get", "/panel/no-such-account", 302),
        ],
    )
    def test_every_response(self, tmp_path: Path, method: str, path: str, status: int) -> None:
        app = create_app(tmp_path)
        team = app.extensions["teamaccess"]
        client = app.test_client()
        client.post("/login", data={"email": "chef@muster.de"})
        owner = app.extensions["teamaccess.users"].by_email("chef@muster.de")
        account = team.accounts_for(owner.id)[0].id
        response = getattr(client, method)(path.format(account=account))
        assert response.status_code == status
        assert missing(response) == []
        team.close()

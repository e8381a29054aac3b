"""The vendor panel the blueprint tests share: Flask's test client through the blueprint,
a header naming the logged-in user, a MemoryStore and a MemoryMailer, and what reads
their pages. Imported by the ``test_web*`` files (it holds no tests)."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from flask.testing import FlaskClient  # noqa: E402

from teamaccess import (  # noqa: E402
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    TeamAccess,
)
from teamaccess.testing import FrozenClock  # noqa: E402
from teamaccess.web import (  # noqa: E402
    User,
)
from teamaccess.web.flask import blueprint  # noqa: E402

USERS = {
    "max": "chef@muster.de",
    "anna": "dev@agentur.de",
    "bea": "buchhaltung@muster.de",
    "eve": "eve@example.org",
}


class Panel:
    """A vendor panel: Flask, a header names the logged-in user, the blueprint at /team."""

    def __init__(self, templates: Path | None = None, logout_url: str = "/logout") -> None:
        self.mailer = MemoryMailer()
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.team = TeamAccess(
            MemoryStore(), self.mailer, secret_key="web-test", clock=self.clock,
            accept_url="http://panel.test/team/invitations/accept?token={token}",
        )  # fmt: skip
        self.account = self.team.create_account(
            name="Muster GmbH", owner_id="max", owner_email=USERS["max"]
        ).id
        self.app = flask.Flask(__name__, template_folder=str(templates) if templates else None)
        self.app.secret_key = "test only"

        def current_user() -> User | None:
            uid = flask.request.headers.get("X-User")
            return User(uid, USERS[uid]) if uid else None

        self.app.register_blueprint(
            blueprint(
                self.team, current_user=current_user, login_url="/login?next={next}",
                register_url="/register?next={next}", logout_url=logout_url,
            ),
            url_prefix="/team",
        )  # fmt: skip
        self.clients: dict[str, FlaskClient] = {}

    def client(self, user: str | None, language: str = "en") -> FlaskClient:
        key = f"{user}:{language}"
        if key not in self.clients:
            c = self.app.test_client()
            if user:
                c.environ_base["HTTP_X_USER"] = user
            c.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
            self.clients[key] = c
        return self.clients[key]

    def get(self, user: str | None, path: str, language: str = "en") -> tuple[int, str]:
        """The page at *path*; the invitation link's first answer, a redirect to the page
        without the token in its URL, is followed as the browser does."""
        client = self.client(user, language)
        response = client.get(path)
        location = response.headers.get("Location", "")
        if "token=" in path and location.startswith("/team/invitations/accept?invitation="):
            response = client.get(location)
        return response.status_code, response.get_data(as_text=True)

    def post(
        self, user: str | None, path: str, data: dict[str, object], language: str = "en",
        *, csrf: bool = True,
    ) -> tuple[int, str, str]:  # fmt: skip
        client = self.client(user, language)
        if csrf:
            page = client.get(f"/team/accounts/{self.account}/users").get_data(as_text=True)
            found = re.search(r'name="csrf_token" value="([^"]+)"', page)
            if found is None:  # a stranger's client: any page with a form gives the token
                client.get("/team/invitations/accept?token=x")
                with client.session_transaction() as session:
                    data = {**data, "csrf_token": session["teamaccess.csrf"]}
            else:
                data = {**data, "csrf_token": found.group(1)}
        response = client.post(path, data=data)
        return (
            response.status_code,
            response.get_data(as_text=True),
            response.headers.get("Location", ""),
        )

    def users(self) -> str:
        return f"/team/accounts/{self.account}/users"

    def invite(self, email: str, *names: str) -> str:
        perms = PermissionSet.of(*names) if names else PermissionSet.all()
        inv = self.team.invite(self.account, actor_id="max", email=email, permissions=perms)
        assert inv.token is not None
        return inv.token

    def join(self, user: str, *names: str) -> None:
        token = self.invite(USERS[user], *names)
        self.team.accept_invitation(token, user_id=user, email=USERS[user])

    def link(self, index: int = -1) -> str:
        body = str(self.mailer.outbox[index].get_body(("plain",)).get_content())  # type: ignore[union-attr]
        found = re.search(r"http://panel\.test(/team/invitations/accept\?token=\S+)", body)
        assert found is not None
        return found.group(1)


def errors(body: str) -> list[str]:
    return re.findall(r'class="ta-error"[^>]*>([^<]*)<', body)


def row_of(body: str, text: str) -> str:
    """The first table row that holds *text*."""
    return next(row for row in re.findall(r"<tr[ >].*?</tr>", body, re.S) if text in row)


def notices(body: str) -> list[str]:
    return re.findall(r'class="ta-notice"[^>]*>([^<]*)<', body)


@pytest.fixture
def panel() -> Panel:
    return Panel()

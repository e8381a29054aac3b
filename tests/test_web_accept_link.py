"""The invitation link keeps its token out of every URL after the first request: the accept
page moves it into a cookie for that page alone (Flask's test client; the browser's view
is in ``test_web_walk.py``)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest

pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from itsdangerous import URLSafeTimedSerializer
from tests.web_panel import USERS, Panel, notices
from werkzeug.test import TestResponse

from teamaccess import PermissionSet, ValidationError
from teamaccess.web import (
    INVITATION_COOKIE_MAX_AGE,
    Pages,
    Redirect,
    Render,
    Request,
    User,
    open_invitations,
    seal_invitations,
)

ACCEPT = "/team/invitations/accept"
COOKIE = "teamaccess_invitations"


@pytest.fixture
def panel() -> Panel:
    return Panel()


def set_cookie(response: TestResponse) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE)]
    return header


def open_link(panel: Panel, user: str | None, link: str) -> tuple[str, str]:
    """Open the mailed *link*: the clean URL it leads to, and that page."""
    client = panel.client(user)
    first = client.get(link)
    assert first.status_code == 303
    location = first.headers["Location"]
    page = client.get(location)
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    return location, page.get_data(as_text=True)


def kept_by(panel: Panel, user: str | None) -> dict[str, str]:
    """What the cookie in *user*'s browser holds."""
    cookie = panel.client(user).get_cookie(COOKIE, path=ACCEPT)
    assert cookie is not None
    return open_invitations(panel.app.secret_key or "", cookie.value)


def csrf_of(body: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert found is not None
    return found.group(1)


class TestTheLinkIsCleaned:
    """The first request holds the token; the answer drops it from the URL."""

    def test_redirect_to_the_clean_url_with_the_cookie(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        link = panel.link()
        token = link.split("token=", 1)[1]
        first = panel.client(None).get(link)
        assert first.status_code == 303
        location = first.headers["Location"]
        assert re.fullmatch(rf"{ACCEPT}\?invitation=[0-9a-f]{{16}}", location)
        assert token not in location
        cookie = set_cookie(first)
        assert f"Max-Age={INVITATION_COOKIE_MAX_AGE}" in cookie
        assert f"Path={ACCEPT};" in cookie or cookie.endswith(f"Path={ACCEPT}")
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain http here; https gets Secure (below)
        assert first.headers["Referrer-Policy"] == "same-origin"

    @pytest.mark.parametrize(
        ("left", "max_age"),
        [(timedelta(minutes=20), 1200), (timedelta(hours=5), INVITATION_COOKIE_MAX_AGE)],
    )
    def test_kept_no_longer_than_the_invitation_lives(
        self, panel: Panel, left: timedelta, max_age: int
    ) -> None:
        panel.invite(USERS["bea"], "billing.view")
        panel.clock.advance(panel.team.invitation_ttl - left)
        first = panel.client(None).get(panel.link())
        assert f"Max-Age={max_age};" in set_cookie(first)

    def test_kept_no_longer_than_the_access_it_offers(self, panel: Panel) -> None:
        panel.team.invite(panel.account, actor_id="max", email=USERS["bea"],
                          permissions=PermissionSet.of("billing.view"),
                          access_until=panel.clock.now() + timedelta(minutes=5))  # fmt: skip
        first = panel.client(None).get(panel.link())
        assert "Max-Age=300;" in set_cookie(first)

    def test_secure_over_https(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        client = panel.app.test_client()
        first = client.get(panel.link(), base_url="https://panel.test")
        assert "Secure" in set_cookie(first)

    def test_the_page_links_carry_no_token(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        token = panel.link().split("token=", 1)[1]
        location, body = open_link(panel, None, panel.link())
        assert "buchhaltung@muster.de" in body
        login = re.search(r'href="(/login\?next=[^"]+)"', body)
        register = re.search(r'href="(/register\?next=[^"]+)"', body)
        assert login is not None
        assert register is not None
        assert unquote(login.group(1).partition("next=")[2]) == location
        assert unquote(register.group(1).partition("next=")[2]) == location
        hrefs = " ".join(re.findall(r'(?:href|action)="([^"]+)"', body))
        assert token not in hrefs
        assert "token" not in hrefs

    def test_a_bad_link_gets_its_error_and_no_cookie(self, panel: Panel) -> None:
        response = panel.client(None).get(f"{ACCEPT}?token=garbage")
        assert response.status_code == 410
        assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE)]
        assert response.headers["Referrer-Policy"] == "strict-origin"

    def test_without_the_cookie_the_clean_url_asks_for_the_link(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        location, _ = open_link(panel, None, panel.link())
        status, body = panel.get("anna", location)  # another browser: no cookie
        assert status == 403
        assert "This page needs the link from the invitation mail." in body

    def test_an_altered_or_foreign_cookie_is_ignored(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        token = panel.link().split("token=", 1)[1]
        location, _ = open_link(panel, None, panel.link())
        slot = location.partition("invitation=")[2]
        client = panel.client("anna")
        for value in [seal_invitations("another key", {slot: token}), "garbage", "e30.x.y"]:
            client.set_cookie(COOKIE, value, path=ACCEPT)
            assert client.get(location).status_code == 403


class TestTwoInvitations:
    """Two links opened in one browser stay apart, and each is forgotten when answered."""

    def test_each_clean_url_shows_its_own(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        first_link = panel.link()
        panel.invite("zweite@muster.de", "billing.view")
        second_link = panel.link()
        first, _ = open_link(panel, None, first_link)
        second, _ = open_link(panel, None, second_link)
        assert first != second
        # the first tab, reloaded (or back from the login) after the second link was opened
        _, body = panel.get(None, first)
        assert "buchhaltung@muster.de" in body
        assert "zweite@muster.de" not in body
        _, body = panel.get(None, second)
        assert "zweite@muster.de" in body

    def test_a_second_link_does_not_cut_the_first_ones_life(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        long_link = panel.link()
        panel.invite("zweite@muster.de", "billing.view")
        declined = panel.link()
        panel.team.decline_invitation(declined.split("token=", 1)[1])
        first, _ = open_link(panel, None, long_link)
        # The declined one's link is kept a minute, for the page that says so; the
        # cookie that holds both lives as long as the first still does.
        response = panel.client(None).get(declined)
        assert f"Max-Age={INVITATION_COOKIE_MAX_AGE};" in set_cookie(response)
        panel.clock.advance(timedelta(minutes=2))
        status, body = panel.get(None, first)
        assert status == 200
        assert "buchhaltung@muster.de" in body

    def test_a_longer_link_opened_later_outlives_a_short_one(self, panel: Panel) -> None:
        # Five minutes of access left on the first; the second, opened later, has an
        # hour: the cookie lives the hour, and a link over by then leaves it.
        panel.team.invite(panel.account, actor_id="max", email=USERS["bea"],
                          permissions=PermissionSet.of("billing.view"),
                          access_until=panel.clock.now() + timedelta(minutes=5))  # fmt: skip
        short_link = panel.link()
        panel.invite("zweite@muster.de", "billing.view")
        long_link = panel.link()
        open_link(panel, None, short_link)
        response = panel.client(None).get(long_link)
        assert f"Max-Age={INVITATION_COOKIE_MAX_AGE};" in set_cookie(response)
        assert len(kept_by(panel, None)) == 2
        panel.clock.advance(panel.team.invitation_ttl + timedelta(minutes=1))
        panel.invite("dritte@muster.de", "billing.view")
        third = panel.client(None).get(panel.link())
        # Both earlier invitations have expired by now: only the third is kept.
        assert list(kept_by(panel, None).values()) == [panel.link().split("token=", 1)[1]]
        assert third.status_code == 303

    def test_accepting_forgets_only_that_one(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        bea_link = panel.link()
        panel.invite("zweite@muster.de", "billing.view")
        other_link = panel.link()
        first, body = open_link(panel, "bea", bea_link)
        other, _ = open_link(panel, "bea", other_link)
        token = bea_link.split("token=", 1)[1]
        response = panel.client("bea").post(
            ACCEPT, data={"csrf_token": csrf_of(body), "token": token, "action": "accept"}
        )
        assert response.status_code == 303
        kept = set_cookie(response)
        assert "Max-Age" in kept
        assert panel.team.can("bea", panel.account, "billing.view")
        # The accepted one is forgotten, account and all (Back still leads into the
        # account); the other is still there.
        assert kept_by(panel, "bea") == {
            other.partition("=")[2]: panel.link().split("token=", 1)[1],
        }
        response = panel.client("bea").get(first)
        assert response.headers["Location"] == panel.users()
        status, body = panel.get("bea", other)
        assert status == 200
        assert "zweite@muster.de" in body

    def test_accepting_drops_the_token_and_back_leads_in(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        link = panel.link()
        token = link.split("token=", 1)[1]
        location, body = open_link(panel, "bea", link)
        client = panel.client("bea")
        response = client.post(
            ACCEPT, data={"csrf_token": csrf_of(body), "token": token, "action": "accept"}
        )
        # Nothing is left: the cookie goes, with the token and without an account id.
        assert set_cookie(response).startswith("teamaccess_invitations=;")
        assert f"Path={ACCEPT}" in set_cookie(response)
        assert panel.client("bea").get_cookie(COOKIE, path=ACCEPT) is None
        # Back to the link: she is in, so into the account.
        response = client.get(location)
        assert response.headers["Location"] == panel.users()
        assert notices(client.get(panel.users()).get_data(as_text=True)) == [
            "You are a user of Muster GmbH."
        ]
        # Someone else in this browser is not let in by it.
        client.environ_base["HTTP_X_USER"] = "anna"
        assert client.get(location).status_code == 403

    def test_declining_clears_it_and_cancel_goes_back(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        link = panel.link()
        token = link.split("token=", 1)[1]
        location, body = open_link(panel, None, link)
        client = panel.client(None)
        data = {"csrf_token": csrf_of(body), "token": token, "action": "decline"}
        asked = client.post(ACCEPT, data=data).get_data(as_text=True)
        cancel = re.search(r'href="([^"]+)">Cancel<', asked)
        assert cancel is not None
        assert cancel.group(1).replace("&amp;", "&") == location
        assert client.get(location).status_code == 200
        response = client.post(ACCEPT, data={**data, "confirm": "yes"})
        assert "You declined the invitation" in response.get_data(as_text=True)
        assert re.search(r"Expires=Thu, 01 Jan 1970|Max-Age=0", set_cookie(response))
        assert client.get(location).status_code == 403

    def test_login_then_back_then_accept(self, panel: Panel) -> None:
        """Logged out, "Accept" leads to the login with a clean `next`; after it, the
        same browser (now logged in) is back on the invitation and accepts."""
        panel.invite(USERS["bea"], "billing.view")
        link = panel.link()
        token = link.split("token=", 1)[1]
        client = panel.client(None)
        # The token posted from a page whose cookie expired meanwhile is kept again.
        client.get(f"{ACCEPT}?token=garbage")  # the session's CSRF token, and no cookie
        with client.session_transaction() as session:
            csrf = session["teamaccess.csrf"]
        response = client.post(
            ACCEPT, data={"csrf_token": csrf, "token": token, "action": "accept"}
        )
        location = response.headers["Location"]
        assert token not in location
        back = unquote(location.partition("next=")[2])
        assert back.startswith(f"{ACCEPT}?invitation=")
        assert "Max-Age" in set_cookie(response)
        client.environ_base["HTTP_X_USER"] = "bea"  # the login
        body = client.get(back).get_data(as_text=True)
        assert 'value="accept"' in body
        response = client.post(
            ACCEPT, data={"csrf_token": csrf_of(body), "token": token, "action": "accept"}
        )
        assert response.headers["Location"] == panel.users()
        assert notices(client.get(panel.users()).get_data(as_text=True)) == [
            "Welcome to Muster GmbH."
        ]


class TestKeyRotation:
    """Rotating Flask's key with SECRET_KEY_FALLBACKS keeps the links a browser opened."""

    def rotate(self, panel: Panel, *fallbacks: str) -> None:
        panel.app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)
        panel.app.secret_key = "the new key"

    def test_a_link_opened_before_is_accepted_after(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        link = panel.link()
        token = link.split("token=", 1)[1]
        location, _ = open_link(panel, "bea", link)
        self.rotate(panel, "an older key", "test only")
        client = panel.client("bea")
        page = client.get(location)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert 'value="accept"' in body
        # Flask's session, signed with the old key too, keeps its CSRF token.
        response = client.post(
            ACCEPT, data={"csrf_token": csrf_of(body), "token": token, "action": "accept"}
        )
        assert response.headers["Location"] == panel.users()
        assert panel.team.can("bea", panel.account, "billing.view")

    def test_without_the_old_key_the_link_is_asked_for_again(self, panel: Panel) -> None:
        panel.invite(USERS["bea"], "billing.view")
        location, _ = open_link(panel, "bea", panel.link())
        self.rotate(panel, "an older key")
        status, body = panel.get("bea", location)
        assert status == 403
        assert "This page needs the link from the invitation mail." in body

    def test_the_new_key_signs(self, panel: Panel) -> None:
        self.rotate(panel, "test only")
        panel.invite(USERS["bea"], "billing.view")
        first = panel.client("bea").get(panel.link())
        value = set_cookie(first).partition("=")[2].partition(";")[0]
        token = panel.link().split("token=", 1)[1]
        assert list(open_invitations("the new key", value).values()) == [token]
        assert open_invitations("test only", value) == {}

    def test_one_fallback_as_a_string_is_refused(self, panel: Panel) -> None:
        # Not a list: Flask's session takes each character as a key (anyone can sign
        # with "t"), so the pages refuse it (tests/test_attack17_web_key_fallbacks.py).
        panel.invite(USERS["bea"], "billing.view")
        location, _ = open_link(panel, "bea", panel.link())
        panel.app.config["SECRET_KEY_FALLBACKS"] = "test only"
        panel.app.secret_key = "the new key"
        assert panel.get("bea", location)[0] == 500


class TestCore:
    """Framework-free: ``Request.invitations`` in, a result's ``invitations`` out."""

    def test_without_an_adapter(self, panel: Panel) -> None:
        pages = Pages(panel.team)
        token = panel.invite(USERS["bea"], "billing.view")
        first = pages.handle("accept", Request("GET", None, query={"token": token}))
        assert isinstance(first, Redirect)
        assert first.endpoint == "accept"
        assert first.invitations == {first.params["invitation"]: token}
        page = pages.handle(
            "accept",
            Request("GET", User("bea", USERS["bea"]), query=dict(first.params),
                    invitations=first.invitations, path="/x/accept"),
        )  # fmt: skip
        assert isinstance(page, Render)
        assert page.invitations is None  # kept already: no cookie to send again
        assert page.context["state"] == "ready"
        assert page.headers["Referrer-Policy"] == "strict-origin"

    def test_seal_and_open(self) -> None:
        sealed = seal_invitations("key", {"a": "t1", "b": "t2"})
        assert open_invitations("key", sealed) == {"a": "t1", "b": "t2"}
        assert open_invitations(b"key", sealed) == {"a": "t1", "b": "t2"}
        assert open_invitations("other", sealed) == {}
        assert open_invitations("key", sealed[:-2]) == {}
        assert open_invitations("key", None) == {}
        assert open_invitations("key", seal_invitations("key", {"a": 1})) == {}  # type: ignore[dict-item]

    def test_a_list_of_keys_newest_last(self) -> None:
        old, new = (
            seal_invitations("old", {"a": "t1"}),
            seal_invitations(["old", "new"], {"a": "t2"}),
        )
        assert open_invitations(["old", "new"], old) == {"a": "t1"}
        assert open_invitations(("old", b"new"), new) == {"a": "t2"}
        assert open_invitations("new", new) == {"a": "t2"}  # the newest signs
        assert open_invitations("old", new) == {}
        assert open_invitations(["", "other"], old) == {}
        # An empty key is never used: a cookie signed with it could be made by anyone.
        forged = URLSafeTimedSerializer(b"", salt="teamaccess.web.invitations.v1").dumps({"a": "x"})
        assert open_invitations(["", "new"], forged) == {}
        assert open_invitations([], new) == {}

    @pytest.mark.parametrize("key", ["", [], [""]])
    def test_sealing_needs_a_key(self, key: str | list[str]) -> None:
        with pytest.raises(ValidationError, match="seal_invitations needs a secret key"):
            seal_invitations(key, {"a": "t1"})

    def test_at_most_five_links_are_kept(self, panel: Panel) -> None:
        links = []
        for n in range(7):
            panel.invite(f"n{n}@muster.de", "billing.view")
            links.append(open_link(panel, None, panel.link())[0])
        status = [panel.get(None, location)[0] for location in links]
        assert status == [403, 403, 200, 200, 200, 200, 200]

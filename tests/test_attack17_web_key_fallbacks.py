"""Attack round 17 on Flask's ``SECRET_KEY_FALLBACKS`` under the blueprint.

Flask's session opens a cookie signed with its ``secret_key`` or any key in
``SECRET_KEY_FALLBACKS``, and extends its key list with that setting as it is: a string
``"flask-key-2026"`` becomes the one-character keys "f", "l", "a", ..., and ``[""]`` (what
``"".split(",")`` gives once the old key is taken out of a variable, as docs/going-live.md
wrote it) an empty key. Anyone can sign a session cookie with those, and a panel whose
login lives in the session (``flask.session["user"]``) took them as a login: the pages
showed the account to a forged "max". The blueprint took the string as one key for its own
cookie, so nothing looked wrong. It now refuses such a setting on every request.
"""

from __future__ import annotations

from typing import Any

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from flask.sessions import SecureCookieSessionInterface  # noqa: E402
from itsdangerous import URLSafeTimedSerializer  # noqa: E402

from teamaccess import MemoryMailer, MemoryStore, TeamAccess, ValidationError  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402


def _panel(fallbacks: Any) -> tuple[flask.Flask, str]:
    """A panel whose login is the session's "user", as docs/going-live.md's."""
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="team-key")
    account = team.create_account(name="Muster GmbH", owner_id="max", owner_email="chef@muster.de")
    app = flask.Flask(__name__)
    app.testing = True
    app.secret_key = "flask-key-2027"
    app.config["SECRET_KEY_FALLBACKS"] = fallbacks

    def current_user() -> User | None:
        return User("max", "chef@muster.de") if flask.session.get("user") == "max" else None

    app.register_blueprint(blueprint(team, current_user=current_user), url_prefix="/team")
    return app, f"/team/accounts/{account.id}/users"


def _forged(key: bytes) -> str:
    """A session cookie saying "user": "max", signed with *key* as Flask signs one."""
    iface = SecureCookieSessionInterface()
    return URLSafeTimedSerializer(
        key, salt=iface.salt, serializer=iface.serializer,
        signer_kwargs={"key_derivation": iface.key_derivation,
                       "digest_method": iface.digest_method},
    ).dumps({"user": "max"})  # fmt: skip


@pytest.mark.parametrize(
    ("fallbacks", "key"),
    [
        ("flask-key-2026", b"f"),  # a string: its first character is a key to Flask
        ([""], b""),  # "".split(","): the variable emptied after the rotation
        (["flask-key-2026", ""], b""),
    ],
)
def test_a_setting_that_lets_anyone_sign_a_session_is_refused(fallbacks: Any, key: bytes) -> None:
    app, users = _panel(fallbacks)
    client = app.test_client()
    client.set_cookie("session", _forged(key))
    with pytest.raises(ValidationError, match=r"SECRET_KEY_FALLBACKS must be a list of the ol"):
        client.get(users)
    # The setting and not the cookie is refused: no login, the same answer.
    with pytest.raises(ValidationError, match=r"anyone could sign a session cookie"):
        app.test_client().get(users)


def test_the_message_shows_no_key() -> None:
    app, users = _panel("flask-key-2026")
    with pytest.raises(ValidationError) as raised:
        app.test_client().get(users)
    assert "flask-key" not in str(raised.value)
    assert "a string of 14 characters" in str(raised.value)


@pytest.mark.parametrize("fallbacks", [None, [], ["flask-key-2026"], ("a", b"b"), {"old"}])
def test_a_list_of_keys_works_and_a_forged_cookie_is_no_login(fallbacks: Any) -> None:
    app, users = _panel(fallbacks)
    client = app.test_client()
    client.set_cookie("session", _forged(b"f"))
    response = client.get(users)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    # the real key logs in
    real = app.test_client()
    real.set_cookie("session", _forged(b"flask-key-2027"))
    assert real.get(users).status_code == 200

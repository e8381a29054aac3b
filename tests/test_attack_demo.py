"""The demo's login and registration go back only to a path on the same site: no control
character or space that a browser drops can turn the path into another host."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from teamaccess.web.demo import create_app

NEXT = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/ /evil.example",
    "/\x00/evil.example",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
]


@pytest.mark.parametrize("next_path", NEXT, ids=repr)
@pytest.mark.parametrize("page", ["login", "register"])
def test_no_open_redirect(tmp_path: Path, next_path: str, page: str) -> None:
    app = create_app(tmp_path)
    client = app.test_client()
    data = {"email": "a@example.com", "name": "A", "next": next_path}
    if page == "login":
        client.post("/register", data={**data, "next": "/"})
    response = client.post(f"/{page}", data=data)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "evil.example" not in location


def test_a_local_path_is_kept(tmp_path: Path) -> None:
    client = create_app(tmp_path).test_client()
    back = "/team/invitations/accept?token=abc"
    response = client.post("/register", data={"email": "a@example.com", "name": "A", "next": back})
    assert response.headers["Location"] == "/team/invitations/accept?token=abc"

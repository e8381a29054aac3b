"""``TEAMACCESS_SECRET_KEY_FALLBACKS``: during a rotation the command signs with the newest
key and still verifies links the older ones signed, as ``TeamAccess(secret_key=[old,
new])`` does, so ``inspect`` and a worker need not be switched at one moment."""

from __future__ import annotations

from contextlib import closing

import pytest
from tests.test_cli import Cli, account, run

from teamaccess import InvalidInvitation, MemoryMailer, PermissionSet, SQLiteStore, TeamAccess

__all__ = ["account", "run"]  # fixtures, imported for pytest


def _panel_link(run: Cli, account: str, key: str) -> str:
    """A link the panel signed with *key*, for an invitation in the command's database."""
    with closing(SQLiteStore(run.folder / "teamaccess.db")) as store:
        panel = TeamAccess(store, MemoryMailer(), secret_key=key)
        inv = panel.invite(
            account, actor_id="max", email="dev@example.com", permissions=PermissionSet.all()
        )
    assert inv.token is not None
    return inv.token


def test_an_older_key_still_verifies(run: Cli, account: str) -> None:
    token = _panel_link(run, account, "key-2026")
    run.env["TEAMACCESS_SECRET_KEY"] = "key-2027"
    assert "invalid or was altered" in run.error("inspect", token, code=7)
    run.env["TEAMACCESS_SECRET_KEY_FALLBACKS"] = "key-2025, key-2026"
    assert run.json("inspect", token)["email"] == "dev@example.com"


def test_the_newest_key_signs(run: Cli, account: str) -> None:
    run.env["TEAMACCESS_SECRET_KEY"] = "key-2027"
    run.env["TEAMACCESS_SECRET_KEY_FALLBACKS"] = "key-2026"
    token = run.json("invite", account, "ops@example.com", "--all", "--as", "max")["token"]
    with closing(SQLiteStore(run.folder / "teamaccess.db")) as store:
        newest = TeamAccess(store, MemoryMailer(), secret_key="key-2027")
        assert newest.inspect_invitation(token).email == "ops@example.com"
        older = TeamAccess(store, MemoryMailer(), secret_key="key-2026")
        with pytest.raises(InvalidInvitation, match="invalid or was altered"):
            older.inspect_invitation(token)


@pytest.mark.parametrize(
    ("key", "fallbacks", "says"),
    [
        (None, "key-2026", "set without TEAMACCESS_SECRET_KEY"),
        ("key-2027", "key-2025,,key-2026", "has an empty key"),
        ("key-2027", "key-2026,", "has an empty key"),
    ],
)
def test_refused(run: Cli, account: str, key: str | None, fallbacks: str, says: str) -> None:
    run.env["TEAMACCESS_SECRET_KEY"] = key
    run.env["TEAMACCESS_SECRET_KEY_FALLBACKS"] = fallbacks
    before = list(run.folder.iterdir())
    line = run.error("invite", account, "ops@example.com", "--all", "--as", "max", code=3)
    assert says in line
    assert list(run.folder.iterdir()) == before
    with closing(SQLiteStore(run.folder / "teamaccess.db")) as store:
        assert TeamAccess(store, MemoryMailer(), secret_key="x").invitations(account) == []

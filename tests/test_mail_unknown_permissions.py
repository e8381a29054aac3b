"""An invitation mail names every permission the invitation grants, also one the
delivering ``TeamAccess``'s catalog does not hold.

A queued invitation is built by whoever delivers it, with *its* catalog: a worker started
with the default catalog beside a panel with its own left such permissions out, and the
invitee read "you get no permissions" for an invitation that granted some. Read on the
mail as it went out (serialised and parsed back)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from teamaccess import Catalog, Permission, PermissionSet, SQLiteStore, TeamAccess
from teamaccess.testing import MemoryMailer

KEY = "k" * 32
URL = "https://panel.example.com/accept?token={token}"
PANEL = Catalog(
    [
        *Catalog.default(),
        Permission("dns.edit", "Edit DNS zones", label_de="DNS-Zonen bearbeiten"),
        Permission("vm.restart", "Restart servers", label_de="Server neu starten", scoped=True),
    ]
)


def delivered(tmp_path: Path, permissions: PermissionSet, language: str) -> EmailMessage:
    """Queued by a panel with its own catalog, delivered by a worker with the default."""
    db = tmp_path / "team.db"
    panel = TeamAccess(SQLiteStore(db), MemoryMailer(), secret_key=KEY, accept_url=URL,
                       catalog=PANEL, delivery="queue")  # fmt: skip
    try:
        account = panel.create_account(name="Muster", owner_id="o", owner_email="o@muster.de")
        panel.invite(account.id, actor_id="o", email="dev@example.org",
                     permissions=permissions, language=language)  # fmt: skip
    finally:
        panel.close()
    mailer = MemoryMailer()
    worker = TeamAccess(SQLiteStore(db), mailer, secret_key=KEY, accept_url=URL)
    try:
        worker.deliver_pending()
    finally:
        worker.close()
    invitations = [m for m in mailer.outbox if m["To"] == "dev@example.org"]
    assert len(invitations) == 1
    wire = invitations[0].as_bytes(policy=policy.SMTP)
    read = message_from_bytes(wire, policy=policy.default)
    assert isinstance(read, EmailMessage)
    return read


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.mark.parametrize(
    ("language", "none"),
    [("en", "no permissions"), ("de", "keine Berechtigungen")],
)
def test_a_permission_the_worker_does_not_know_is_named(
    tmp_path: Path, language: str, none: str
) -> None:
    text, html = parts(delivered(tmp_path, PermissionSet.of("dns.edit"), language))
    for body in (text, html):
        assert "dns.edit" in body
        assert none not in body


def test_known_and_unknown_both_named(tmp_path: Path) -> None:
    text, html = parts(delivered(tmp_path, PermissionSet.of("billing.view", "dns.edit"), "en"))
    billing = Catalog.default()["billing.view"].label
    for body in (text, html):
        assert billing in body
        assert "dns.edit" in body


def test_a_scoped_grant_the_worker_does_not_know_is_named(tmp_path: Path) -> None:
    granted = PermissionSet.on("vm.restart", "srv-7")
    text, html = parts(delivered(tmp_path, granted, "en"))
    for body in (text, html):
        assert "vm.restart" in body
        assert "srv-7" in body
        assert "no permissions" not in body

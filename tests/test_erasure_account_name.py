"""An account's name that holds the erased person's address: the account keeps its name
(it is the account's), and where that name was copied into text that an erasure searches
(an audit event's details, mail to others) their address is replaced like any other."""

from __future__ import annotations

from tests.conftest import SECRET

from teamaccess import SYSTEM, MemoryMailer, MemoryStore, PermissionSet, TeamAccess
from teamaccess._mail.mailers import parse_stored

ADDRESS = "anna@agentur.de"


def test_the_account_keeps_its_name_and_mail_to_others_loses_the_address() -> None:
    store = MemoryStore()
    now = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
    queued = TeamAccess(store, MemoryMailer(), secret_key=SECRET, delivery="queue")
    acc = now.create_account(name=f"Support {ADDRESS}", owner_id="o", owner_email="o@example.org")
    inv = now.invite(acc.id, actor_id="o", email=ADDRESS, permissions=PermissionSet.all())
    assert inv.token is not None
    now.accept_invitation(inv.token, user_id="anna-7", email=ADDRESS)
    now.add_contact(acc.id, actor_id="o", name="C", email="c@example.org", categories=["billing"])
    queued.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag")

    report = now.erase_person(user_id="anna-7", email=ADDRESS, actor_id=SYSTEM)

    # the account's own name is not searched: it stays as the owner gave it
    assert now.get_account(acc.id).name == f"Support {ADDRESS}"
    # mail to others: the account's name in the text is searched with the rest
    waiting = {row.recipient: row for row in queued.pending_messages()}
    assert set(waiting) == {"o@example.org", "c@example.org"}
    for row in waiting.values():
        assert row.message is not None
        text = parse_stored(row.message).get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert ADDRESS not in text.lower()
        assert "Support [erased]" in text
    # the audit log: the name recorded in account.created holds the pseudonym
    [created] = [e for e in now.audit_log(acc.id) if e.action == "account.created"]
    assert created.details["name"] == f"Support {report.pseudonym}"

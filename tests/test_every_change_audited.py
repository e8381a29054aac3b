"""Every change of a member, an invitation or a contact writes an audit event in that row's
account, in the same call. An erasure relies on it: inside its transaction it searches
others' free text only in the accounts it found before and those whose audit log grew
since (``changed_accounts()``), so a use case that changed such a row without an event
would let the person's name survive there. A guard for the use cases to come: run each
public write and compare the accounts whose rows it wrote with those it logged in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from teamaccess import SYSTEM, MemoryMailer, MemoryStore, PermissionSet, TeamAccess
from teamaccess._backends.memory import _MemoryUnitOfWork
from teamaccess.testing import FrozenClock

#: The unit's writes of rows that hold free text, and how each names its account.
WRITES = (
    "add_member", "update_member", "add_invitation", "update_invitation", "add_contact",
    "update_contact",
)  # fmt: skip


class Ledger:
    def __init__(self) -> None:
        self.written: dict[str, set[str]] = {}
        self.logged: set[str] = set()

    def clear(self) -> None:
        self.written.clear()
        self.logged.clear()

    def unlogged(self) -> dict[str, set[str]]:
        return {a: how for a, how in self.written.items() if a not in self.logged}


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    book = Ledger()
    for name in WRITES:
        real = getattr(_MemoryUnitOfWork, name)

        def write(uow: Any, row: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            book.written.setdefault(row.account_id, set()).add(_name)
            return _real(uow, row, *args)

        monkeypatch.setattr(_MemoryUnitOfWork, name, write)
    real_event = _MemoryUnitOfWork.add_event

    def add_event(uow: Any, event: Any) -> None:
        book.logged.add(event.account_id)
        real_event(uow, event)

    monkeypatch.setattr(_MemoryUnitOfWork, "add_event", add_event)
    return book


def test_every_public_write_logs_in_each_account_it_changes(ledger: Ledger) -> None:
    clock = FrozenClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    team = TeamAccess(
        MemoryStore(), MemoryMailer(), secret_key="s" * 32, clock=clock, pseudonym_key="k"
    )
    checked: list[str] = []

    def call(what: str, fn: Callable[[], Any]) -> Any:
        ledger.clear()
        result = fn()
        assert ledger.unlogged() == {}, f"{what} changed rows without an event in their account"
        if ledger.written:
            checked.append(what)
        return result

    a = call("create_account", lambda: team.create_account(
        name="A", owner_id="olga", owner_email="olga@a.example"))  # fmt: skip
    b = call("create_account", lambda: team.create_account(
        name="B", owner_id="bert", owner_email="bert@b.example"))  # fmt: skip
    perms = PermissionSet.of("billing.view")
    inv = call("invite", lambda: team.invite(
        a.id, actor_id="olga", email="pia@x.example", permissions=perms, note="hi",
        metadata={"ticket": "T-1"}))  # fmt: skip
    call("resend_invitation", lambda: team.resend_invitation(inv.id, actor_id="olga"))
    inv2 = call("invite", lambda: team.invite(
        a.id, actor_id="olga", email="max@x.example", permissions=PermissionSet.all()))  # fmt: skip
    call("accept_invitation", lambda: team.accept_invitation(
        inv2.token or "", user_id="max", email="max@x.example"))  # fmt: skip
    inv3 = call("invite", lambda: team.invite(
        a.id, actor_id="max", email="ute@x.example", permissions=perms))  # fmt: skip
    call("decline_invitation", lambda: team.decline_invitation(inv3.token or ""))
    inv4 = call("invite", lambda: team.invite(
        a.id, actor_id="max", email="eva@x.example", permissions=perms))  # fmt: skip
    call("revoke_invitation", lambda: team.revoke_invitation(inv4.id, actor_id="olga"))
    call("set_permissions", lambda: team.set_permissions(
        a.id, "max", actor_id="olga", permissions=PermissionSet.of("billing.view")))  # fmt: skip
    call("suspend_member", lambda: team.suspend_member(a.id, "max", actor_id="olga"))
    call("reactivate_member", lambda: team.reactivate_member(a.id, "max", actor_id="olga"))
    call("set_access_until", lambda: team.set_access_until(
        a.id, "max", actor_id="olga", until=clock.now() + timedelta(days=3)))  # fmt: skip
    call("forget_resource", lambda: team.forget_resource(a.id, "vm-1", actor_id="olga"))
    contact = call("add_contact", lambda: team.add_contact(
        b.id, actor_id="bert", name="Deputy", email="d@b.example", categories=["billing"],
        role="stands in"))  # fmt: skip
    call("update_contact", lambda: team.update_contact(
        contact.id, actor_id="bert", company="Firm"))  # fmt: skip
    call("notify", lambda: team.notify(b.id, "billing", subject="Invoice", text="Hello"))
    call("deliver_pending", team.deliver_pending)
    call("rename_account", lambda: team.rename_account(b.id, actor_id="bert", name="B2"))
    call("import_accounts", lambda: team.import_accounts([
        {"name": "C", "owner_id": "carl", "owner_email": "carl@c.example",
         "members": [{"user_id": "cleo", "email": "cleo@c.example",
                      "permissions": ["billing.view"]}]},
    ]))  # fmt: skip
    with team.batch():
        call("batch: invite", lambda: team.invite(
            b.id, actor_id="bert", email="zed@x.example", permissions=perms, note="b"))  # fmt: skip
    call(
        "transfer_ownership",
        lambda: team.transfer_ownership(a.id, to_user_id="max", actor_id="olga"),
    )
    call("remove_contact", lambda: team.remove_contact(contact.id, actor_id="bert"))
    call("remove_member", lambda: team.remove_member(a.id, "olga", actor_id="max"))
    clock.advance(timedelta(days=30))
    call("purge", team.purge)
    call("erase_person", lambda: team.erase_person(email="pia@x.example", actor_id=SYSTEM))
    # The guard saw writes: a workload whose calls wrote nothing would prove nothing.
    assert {"invite", "accept_invitation", "add_contact", "update_contact",
            "set_permissions", "import_accounts"} <= set(checked)  # fmt: skip

"""team.batch(): many use cases in one unit of work, every rule checked, mail after commit."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import unquote

import pytest
from tests.conftest import SECRET

from teamaccess import (
    AlreadyMember,
    AuditEvent,
    InvalidEmail,
    MemoryMailer,
    MemoryStore,
    PermissionDenied,
    PermissionSet,
    StorageError,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of


def token_in(mail: Any) -> str:
    body = mail.get_body(("plain",)).get_content()
    match = re.search(r"token=([A-Za-z0-9._%-]+)", body)
    assert match is not None
    return unquote(match.group(1))


class TestBatch:
    """One commit for many calls; nothing stored or sent before it; all or nothing."""

    def test_many_use_cases_one_commit(self, team: TeamAccess, mailer: MemoryMailer) -> None:
        with team.batch():
            accounts = []
            for n in range(3):
                acc = team.create_account(
                    name=f"Kunde {n}", owner_id=f"owner{n}", owner_email=f"chef{n}@kunde.example"
                )
                accounts.append(acc)
                inv = team.invite(
                    acc.id, actor_id=f"owner{n}", email=f"dev{n}@kunde.example", permissions=P()
                )
                assert inv.token is not None
                team.accept_invitation(inv.token, user_id=f"dev{n}", email=f"dev{n}@kunde.example")
                team.add_contact(
                    acc.id,
                    actor_id=f"owner{n}",
                    name="Buchhaltung",
                    email=f"rechnung{n}@kunde.example",
                    categories=["billing"],
                )
            # the batch's own reads see what it wrote
            assert [m.user_id for m in team.members(accounts[0].id)] == ["owner0", "dev0"]
        for n, acc in enumerate(accounts):
            assert [m.user_id for m in team.members(acc.id)] == [f"owner{n}", f"dev{n}"]
            assert team.can(f"dev{n}", acc.id, "billing.view") is False
            assert team.recipients(acc.id, "billing") == [
                f"chef{n}@kunde.example",
                f"rechnung{n}@kunde.example",
            ]
            assert [e.action for e in team.audit_log(acc.id)][:3] == [
                "contact.added",
                "invitation.accepted",
                "invitation.sent",
            ]
        # an invitation accepted in the batch never mails its link
        assert mailer.outbox == []

    def test_mail_leaves_after_the_commit_with_a_working_link(
        self, team: TeamAccess, mailer: MemoryMailer
    ) -> None:
        acc = team.create_account(name="Neu", owner_id="owner", owner_email="chef@neu.example")
        team.add_contact(
            acc.id, actor_id="owner", name="K", email="k@neu.example", categories=["billing"]
        )
        with team.batch():
            inv = team.invite(
                acc.id, actor_id="owner", email="anna@neu.example", permissions=P("billing.view")
            )
            # notify() sends to the recipients committed before the batch
            team.notify(acc.id, "billing", subject="Rechnung", text="Ihre Rechnung")
            assert mailer.outbox == []
            assert [i.id for i in team.pending_invitations(acc.id)] == [inv.id]
        assert [m["To"] for m in mailer.outbox] == [
            "anna@neu.example",
            "chef@neu.example",
            "k@neu.example",
        ]
        assert token_in(mailer.outbox[0]) == inv.token
        member = team.accept_invitation(inv.token or "", user_id="anna", email="anna@neu.example")
        assert member.permissions == P("billing.view")
        assert team.pending_messages() == []

    def test_an_error_leaving_the_block_rolls_everything_back(
        self, team: TeamAccess, mailer: MemoryMailer
    ) -> None:
        def import_then_fail() -> None:
            with team.batch():
                acc = team.create_account(
                    name="Weg", owner_id="owner", owner_email="chef@weg.example"
                )
                team.invite(acc.id, actor_id="owner", email="x@weg.example", permissions=P())
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            import_then_fail()
        assert team.accounts_for("owner") == []
        assert team.pending_messages() == []
        assert mailer.outbox == []

    def test_every_rule_is_checked_and_a_refusal_can_be_caught(
        self, team: TeamAccess, mailer: MemoryMailer
    ) -> None:
        with team.batch():
            acc = team.create_account(name="R", owner_id="owner", owner_email="chef@r.example")
            team.invite(acc.id, actor_id="owner", email="a@r.example", permissions=P())
            # a rule refuses before the use case writes: the batch goes on
            with pytest.raises(AlreadyMember):
                team.invite(acc.id, actor_id="owner", email="chef@r.example", permissions=P())
            with pytest.raises(PermissionDenied):
                team.invite(acc.id, actor_id="stranger", email="b@r.example", permissions=P())
            with pytest.raises(InvalidEmail):
                team.invite(acc.id, actor_id="owner", email="not an address", permissions=P())
        assert [i.email for i in team.pending_invitations(acc.id)] == ["a@r.example"]
        assert [m["To"] for m in mailer.outbox] == ["a@r.example"]

    def test_the_rate_limit_counts_the_batch(self, store: Any, clock: FrozenClock) -> None:
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock, rate_limit=2)
        from teamaccess import RateLimited

        with team.batch():
            acc = team.create_account(name="L", owner_id="owner", owner_email="chef@l.example")
            for n in range(2):
                team.invite(acc.id, actor_id="owner", email=f"{n}@l.example", permissions=P())
            with pytest.raises(RateLimited):
                team.invite(acc.id, actor_id="owner", email="2@l.example", permissions=P())
        assert len(team.pending_invitations(acc.id)) == 2

    def test_listeners_hear_of_the_changes_after_the_commit(self, team: TeamAccess) -> None:
        heard: list[AuditEvent] = []
        team.add_listener(heard.append)
        with team.batch():
            team.create_account(name="H", owner_id="owner", owner_email="chef@h.example")
            assert heard == []
        assert [e.action for e in heard] == ["account.created"]

    def test_batches_do_not_nest_and_do_not_deliver(self, team: TeamAccess) -> None:
        with team.batch():
            with pytest.raises(ValidationError, match="batches do not nest"), team.batch():
                pass
            with pytest.raises(ValidationError, match=r"after the with team\.batch"):
                team.deliver_pending()
        # the refusals spoiled nothing
        with team.batch():
            team.create_account(name="N", owner_id="owner", owner_email="chef@n.example")
        assert len(team.accounts_for("owner")) == 1


class _FailingStore:
    """A MemoryStore whose audit writes fail once armed: a use case that breaks after
    its first write, as a full disk would."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.armed = False

    def begin(self, *, durable: bool = True) -> AbstractContextManager[Any]:
        return self._wrap(self.inner.begin(durable=durable))

    def read(self) -> AbstractContextManager[Any]:
        return self.inner.read()

    def grant(self, account_id: str, user_id: str) -> Any:
        return self.inner.grant(account_id, user_id)

    def recipients(self, account_id: str, category: str) -> Any:
        return self.inner.recipients(account_id, category)

    def close(self) -> None:
        self.inner.close()

    @contextmanager
    def _wrap(self, cm: AbstractContextManager[Any]) -> Iterator[Any]:
        with cm as uow:
            store = self

            class Uow:
                def __getattr__(self, name: str) -> Any:
                    return getattr(uow, name)

                def add_event(self, event: AuditEvent) -> None:
                    if store.armed:
                        raise StorageError("disk full")
                    uow.add_event(event)

            yield Uow()


class TestHalfDoneCall:
    """A call that fails after it began writing spoils the batch, even if caught."""

    def test_the_whole_batch_is_rolled_back(self) -> None:
        store = _FailingStore()
        mailer = MemoryMailer()
        team = TeamAccess(store, mailer, secret_key=SECRET)  # type: ignore[arg-type]

        def import_with_a_caught_failure() -> None:
            with team.batch():
                team.create_account(name="A", owner_id="a", owner_email="a@x.example")
                store.armed = True
                with pytest.raises(StorageError):
                    team.create_account(name="B", owner_id="b", owner_email="b@x.example")

        with pytest.raises(ValidationError, match=r"rolled back.*StorageError: disk full"):
            import_with_a_caught_failure()
        store.armed = False
        assert team.accounts_for("a") == []
        assert team.accounts_for("b") == []


class TestThreads:
    """A batch is its thread's: another thread never sees half of it."""

    def test_another_thread_sees_all_or_nothing(self, team: TeamAccess) -> None:
        seen: list[int] = []
        started = threading.Event()

        def other() -> None:
            started.set()
            seen.append(len(team.accounts_for("owner")))

        with team.batch():
            team.create_account(name="T", owner_id="owner", owner_email="chef@t.example")
            thread = threading.Thread(target=other)
            thread.start()
            started.wait()
            thread.join(0.2)
            team.create_account(name="U", owner_id="owner", owner_email="chef@u.example")
        thread.join(5)
        # it waited for the commit (one writer at a time), or read what was there before
        assert seen in ([0], [2])

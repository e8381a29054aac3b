"""Mail sent at once (``delivery="now"``) is read back after the call's commit, as a
delivery run reads each row before its send: a deletion or erasure that another
connection commits in between stops it, and an erasure's rewrite is what goes out.
The interleaving is made deterministic by an audit listener (called after the commit,
before the send) that runs the deletion through a second store on the same database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from teamaccess import SYSTEM, AuditEvent, MemoryMailer, PermissionSet, Store, TeamAccess
from teamaccess.testing import FrozenClock

from .conftest import SHARED
from .test_privacy import make

P = PermissionSet.of


def between_commit_and_send(team: TeamAccess, action: str, call: Callable[[], Any]) -> list[Any]:
    """Run *call* once, when *team* has committed an event *action* and not yet sent
    the mail that goes with it; what it returned, in the list given back."""
    done: list[Any] = []

    def listener(event: AuditEvent) -> None:
        if event.action == action and not done:
            done.append(call())

    team.add_listener(listener)
    return done


@pytest.mark.parametrize("backend", SHARED, indirect=True)
class TestMailSentAtOnce:
    """invite() and notify() under delivery="now" against a deletion in between."""

    def test_invitation_to_an_address_erased_meanwhile_is_not_sent(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        erased = between_commit_and_send(
            team,
            "invitation.sent",
            lambda: other.erase_person(email="pia@example.org", actor_id=SYSTEM),
        )
        team.invite(acc.id, actor_id="o", email="pia@example.org", permissions=P())
        assert [r.invitations for r in erased] == [1]
        assert mailer.outbox == []
        assert team.pending_messages() == []
        assert team.deliver_pending() == []
        assert mailer.outbox == []

    def test_invitation_of_an_account_deleted_meanwhile_is_not_sent(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        deleted = between_commit_and_send(
            team, "invitation.sent", lambda: other.delete_account(acc.id, actor_id=SYSTEM)
        )
        team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P())
        assert [r.invitations for r in deleted] == [1]
        assert mailer.outbox == []
        assert team.deliver_pending() == []
        assert mailer.outbox == []

    def test_notification_goes_out_as_the_erasure_left_it(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        """The erased person's own copy is not sent; the others' name them no more."""
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        for name in ("c1", "pia"):
            team.add_contact(acc.id, actor_id="o", name=name, email=f"{name}@example.org",
                             categories=["billing"])  # fmt: skip
        erased = between_commit_and_send(
            team,
            "notification.queued",
            lambda: other.erase_person(email="pia@example.org", actor_id=SYSTEM),
        )
        team.notify(acc.id, "billing", subject="Invoice", text="Ask pia@example.org about it.")
        assert [r.messages for r in erased] == [1]
        assert sorted(m["To"] for m in mailer.outbox) == ["c1@example.org", "o@example.org"]
        for mail in mailer.outbox:
            body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "pia@example.org" not in body
            assert "[erased]" in body
        assert team.deliver_pending() == []
        assert len(mailer.outbox) == 2

    def test_without_a_deletion_the_mail_goes_once(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        inv = team.invite(acc.id, actor_id="o", email="pia@example.org", permissions=P())
        assert [m["To"] for m in mailer.outbox] == ["pia@example.org"]
        assert inv.token is not None
        assert team.deliver_pending() == []

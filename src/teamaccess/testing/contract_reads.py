"""The store contract's part for the optional combined reads (``CombinedReads``).

``StoreContract`` inherits these tests; a backend without one of the methods skips its
tests (the service then makes the single reads it combines). Each combined answer must
be the single reads' answer, in every state the use cases meet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from .._permissions import PermissionSet
from .._ports import Store

# contract.py imports this module to define StoreContract; its helpers are looked up on
# it when a test runs, by which time it is fully imported.
from . import contract as c

__all__ = ["CombinedReadsContract"]

_SENDS = frozenset({"invitation.sent", "invitation.resent"})


def _method(obj: object, name: str) -> Callable[..., Any]:
    found = getattr(obj, name, None)
    if not callable(found):
        pytest.skip(f"this store has no {name}() (an optional capability)")
    return found  # type: ignore[no-any-return]


class CombinedReadsContract:
    """Each combined read answers what the single reads it stands for answer."""

    def test_account_member(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            both = _method(uow, "account_member")
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.commit()
        with seeded.read() as uow:
            both = _method(uow, "account_member")
            acc1 = uow.get_account("acc1")
            for account_id, user_id in (("acc1", "owner"), ("acc1", "u1"), ("acc2", "u1")):
                expected = (uow.get_account(account_id), uow.get_member(account_id, user_id))
                assert both(account_id, user_id) == expected
            assert both("acc1", "u1") == (acc1, uow.get_member("acc1", "u1"))
            assert both("acc2", "u1")[1] is None  # a member of another account only
            assert both("nope", "owner") == (None, None)

    def test_store_account_member_reads_committed_state(self, seeded: Store) -> None:
        look = _method(seeded, "account_member")
        with seeded.read() as uow:
            expected = (uow.get_account("acc1"), uow.get_member("acc1", "owner"))
        assert look("acc1", "owner") == expected
        assert look("acc1", "nobody") == (expected[0], None)
        assert look("nope", "owner") == (None, None)
        with seeded.begin() as uow:
            uow.add_member(c.member("u1"), c.key("u1"))
            # not committed: rolled back when the unit ends
        assert look("acc1", "u1") == (expected[0], None)
        with seeded.begin() as uow:
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.commit()
        assert look("acc1", "u1") == (expected[0], c.member("u1"))

    def test_store_outbox_row_reads_committed_state(self, seeded: Store) -> None:
        look = _method(seeded, "outbox_row")
        stored = c.outbox("msg_1", message=b"To: u1@example.org\r\n\r\nHi\r\n")
        with seeded.begin() as uow:
            uow.add_outbox(stored)
            uow.add_outbox(c.outbox("m-unnumbered"))
            uow.commit()
        with seeded.read() as uow:
            assert look("msg_1") == uow.get_outbox("msg_1") == stored
            assert look("m-unnumbered") == uow.get_outbox("m-unnumbered")
        assert look("msg_2") is None
        assert look("nope") is None
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("msg_3"))
            uow.delete_outbox("msg_1")
            # not committed: rolled back when the unit ends
        assert look("msg_3") is None
        assert look("msg_1") == stored
        with seeded.begin() as uow:
            uow.delete_outbox("msg_1")
            uow.commit()
        assert look("msg_1") is None

    def test_store_invitation_account_member_reads_committed_state(self, seeded: Store) -> None:
        look = _method(seeded, "invitation_account_member")
        with seeded.begin() as uow:
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.add_member(c.member("u2", account_id="acc2"), c.key("u2"))
            uow.add_invitation(c.invitation("inv1", invited_by="u1"), "new@example.org")
            uow.add_invitation(c.invitation("inv2", account_id="acc2"), "new@example.org")
            closed = c.invitation("inv3", "old@example.org", status="revoked")
            uow.add_invitation(closed, "old@example.org")
            uow.commit()
        with seeded.read() as uow:
            for inv_id, user_id in (
                ("inv1", "owner"), ("inv1", "u1"), ("inv1", "nobody"), ("inv1", "u2"),
                ("inv2", "u2"), ("inv2", "u1"), ("inv3", "owner"),
            ):  # fmt: skip
                inv = uow.get_invitation(inv_id)
                assert inv is not None
                account = uow.get_account(inv.account_id)
                expected = (inv, account, uow.get_member(inv.account_id, user_id))
                assert look(inv_id, user_id) == expected, (inv_id, user_id)
        assert look("inv1", "u2")[2] is None  # a member of another account only
        assert look("inv2", "u2")[2] == c.member("u2", account_id="acc2")
        assert look("nope", "owner") == (None, None, None)
        with seeded.begin() as uow:
            uow.add_member(c.member("u3"), c.key("u3"))
            uow.add_invitation(c.invitation("inv4", "d@example.org"), "d@example.org")
            # not committed: rolled back when the unit ends
        assert look("inv1", "u3")[2] is None
        assert look("inv4", "owner") == (None, None, None)

    def test_address_in_use(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "address_in_use")
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_invitation(c.invitation("inv1", "new@example.org"), "new@example.org")
            closed = c.invitation("inv2", "old@example.org", status="declined")
            uow.add_invitation(closed, "old@example.org")
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.commit()
        with seeded.read() as uow:
            both = _method(uow, "address_in_use")
            assert both("acc1", c.key("u1")) == (True, None)
            assert both("acc1", "new@example.org") == (
                False,
                uow.pending_invitation_for("acc1", "new@example.org"),
            )
            assert both("acc1", "new@example.org")[1] == c.invitation("inv1")
            assert both("acc1", "old@example.org") == (False, None)  # closed: not pending
            assert both("acc2", "new@example.org") == (False, None)  # another account's
            assert both("acc2", c.key("u1")) == (False, None)
            assert both("acc1", "nobody@example.org") == (False, None)

    def test_send_marks(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "send_marks")
            uow.add_account(c.account("acc2"))
            for event_id, action, minute in (
                ("e0", "invitation.sent", 0), ("e1", "invitation.resent", 12),
                ("e2", "member.removed", 11), ("e3", "invitation.sent", 10),
                ("e5", "invitation.sent", 12),
            ):  # fmt: skip
                uow.add_event(c.event(event_id, action, minute=minute))
            uow.add_event(attrs.evolve(c.event("e4", minute=13), account_id="acc2",
                                       action="invitation.sent"))  # fmt: skip
            uow.add_invitation(c.invitation("inv1"), "new@example.org")
            uow.add_invitation(c.invitation("inv2", account_id="acc2"), "new@example.org")
            for message_id, inv_id, minute in (("m1", "inv1", 5), ("m2", "inv2", 3)):
                uow.add_outbox(
                    c.outbox(message_id, minute=minute, kind="invitation", message=None,
                             invitation_id=inv_id, recipient="new@example.org")
                )  # fmt: skip
            uow.add_outbox(c.outbox("m3", minute=6))  # a notification counts for nothing
            uow.commit()
        with seeded.read() as uow:
            marks = _method(uow, "send_marks")
            for account_id, since, email_key, mail_since in (
                ("acc1", c.at(0), "new@example.org", c.at(0)),
                ("acc1", c.at(-1), "new@example.org", c.at(-1)),
                ("acc1", c.at(10), "new@example.org", c.at(4)),
                ("acc1", c.at(3), "new@example.org", c.at(3)),
                ("acc2", c.at(0), "other@example.org", c.at(0)),
                ("acc1", c.at(20), "new@example.org", c.at(20)),
            ):
                sends = [t for t in uow.event_times(account_id, _SENDS, since) if t > since]
                mails = [
                    t for t in uow.invitation_mail_times(email_key, mail_since)
                    if t > mail_since
                ]  # fmt: skip
                for nth in (1, 2, 3, 4, 5):
                    expected = (
                        sends[-nth] if len(sends) >= nth else None,
                        mails[-nth] if len(mails) >= nth else None,
                    )
                    assert marks(account_id, since, nth, email_key, mail_since, nth) == expected
            # strictly later than since: the send at minute 0 is not counted from minute 0
            assert marks("acc1", c.at(0), 4, "new@example.org", c.at(0), 1) == (None, c.at(5))
            assert marks("acc1", c.at(-1), 4, "new@example.org", c.at(5), 1) == (c.at(0), None)

    def test_invitation_and_inviter(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "invitation_and_inviter")
            uow.add_member(c.member("u1", permissions=PermissionSet.all()), c.key("u1"))
            uow.add_invitation(c.invitation("inv1", invited_by="u1"), "new@example.org")
            uow.add_invitation(c.invitation("inv2", "b@example.org", invited_by="gone"),
                               "b@example.org")  # fmt: skip
            uow.commit()
        with seeded.read() as uow:
            both = _method(uow, "invitation_and_inviter")
            inv1 = uow.get_invitation("inv1")
            assert inv1 is not None
            assert both("inv1") == (inv1, uow.get_member("acc1", "u1"))
            assert both("inv2") == (uow.get_invitation("inv2"), None)
            assert both("nope") == (None, None)

    def test_invitations_accepted_by(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "invitations_accepted_by")
            uow.add_account(c.account("acc2", owner="boss2"))
            accepted = [
                attrs.evolve(c.invitation(i, f"{i}@example.org", account_id=a, minute=m),
                             status="accepted", accepted_by=by, closed_at=c.at(9))
                for i, a, m, by in (("inv3", "acc2", 1, "u1"), ("inv1", "acc1", 2, "u1"),
                                    ("inv2", "acc1", 3, "u2"))
            ]  # fmt: skip
            for inv in accepted:
                uow.add_invitation(attrs.evolve(inv, status="pending", accepted_by=None,
                                                closed_at=None), inv.email)  # fmt: skip
                uow.update_invitation(inv)
            # sent by u1, not accepted by anyone: not among u1's acceptances
            uow.add_invitation(c.invitation("inv4", "d@example.org", invited_by="u1"),
                               "d@example.org")  # fmt: skip
            uow.commit()
        with seeded.read() as uow:
            mine = _method(uow, "invitations_accepted_by")
            expected = [i for i in uow.invitations_involving(["u1"], ()) if i.accepted_by == "u1"]
            assert [i.id for i in expected] == ["inv3", "inv1"]  # oldest first, any account
            assert mine("u1") == expected
            assert [i.id for i in mine("u2")] == ["inv2"]
            assert mine("nobody") == []
            assert mine("u1\x00") == []  # what no store holds matches nothing

    def test_contact_and_member(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "contact_and_member")
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_contact(c.contact("ct1"), "ct1@example.org")
            uow.add_contact(c.contact("ct2", account_id="acc2"), "ct2@example.org")
            uow.commit()
        with seeded.read() as uow:
            both = _method(uow, "contact_and_member")
            for contact_id, account_id, user_id in (
                ("ct1", "acc1", "u1"), ("ct1", "acc1", "owner"), ("ct1", "acc1", "nobody"),
                ("ct2", "acc2", "u1"),
            ):  # fmt: skip
                expected = (uow.get_contact(contact_id), uow.get_member(account_id, user_id))
                assert expected[0] is not None
                assert both(contact_id, user_id) == expected
            assert both("ct2", "u1")[1] is None  # a member of another account only
            assert both("nope", "u1") == (None, None)

    def test_cancel_outbox(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "cancel_outbox")
            uow.add_invitation(c.invitation("inv1"), "new@example.org")
            uow.add_invitation(c.invitation("inv2", "b@example.org"), "b@example.org")
            for message_id, inv_id, status in (
                ("m1", "inv1", "pending"), ("m2", "inv1", "sent"), ("m3", "inv1", "pending"),
                ("m4", "inv2", "pending"),
            ):  # fmt: skip
                uow.add_outbox(
                    c.outbox(message_id, kind="invitation", message=None, status=status,
                             invitation_id=inv_id, attempts=2, last_error="busy")
                )  # fmt: skip
            uow.commit()
        with seeded.begin() as uow:
            before = {m.id: m for m in uow.outbox()}
            _method(uow, "cancel_outbox")("inv1")
            _method(uow, "cancel_outbox")("nope")
            uow.commit()
        with seeded.read() as uow:
            after = {m.id: m for m in uow.outbox()}
        cancelled = {k: attrs.evolve(before[k], status="cancelled") for k in ("m1", "m3")}
        assert after == {**before, **cancelled}

    def test_update_outbox_sent(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "update_outbox_sent")
            for message_id in ("m1", "m2"):
                uow.add_outbox(c.outbox(message_id, attempts=2, last_error="busy"))
            uow.commit()
        with seeded.begin() as uow:
            before = {m.id: m for m in uow.outbox()}
            _method(uow, "update_outbox_sent")("m1", c.at(30))
            _method(uow, "update_outbox_sent")("nope", c.at(30))
            uow.commit()
        with seeded.read() as uow:
            after = {m.id: m for m in uow.outbox()}
        sent = attrs.evolve(
            before["m1"], status="sent", attempts=3, last_error=None, sent_at=c.at(30)
        )
        assert after == {**before, "m1": sent}

    # deferred writes: the optional capability ``DeferredWrites``

    def test_deferred_writes_are_written(self, seeded: Store) -> None:
        inv = c.invitation("inv1")
        with seeded.begin() as uow:
            later = _method(uow, "deferred")
            with later():
                uow.add_invitation(inv, "new@example.org")
                uow.add_outbox(c.outbox("m1", kind="invitation", invitation_id="inv1"))
                uow.add_event(c.event("e1"))
                # a read inside the block sees the writes before it
                assert uow.get_invitation("inv1") == inv
                uow.add_member(c.member("u1"), c.key("u1"))
                uow.update_invitation(attrs.evolve(inv, status="accepted", accepted_by="u1"))
                uow.cancel_outbox("inv1")  # type: ignore[attr-defined]
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_invitation("inv1") == attrs.evolve(
                inv, status="accepted", accepted_by="u1"
            )
            assert [m.status for m in uow.outbox(invitation_id="inv1")] == ["cancelled"]
            assert [e.id for e in uow.events("acc1", limit=5)] == ["e1"]
            assert uow.get_member("acc1", "u1") == c.member("u1")

    def test_deferred_writes_raise_what_each_raises_alone(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            _method(uow, "deferred")
            uow.add_invitation(c.invitation("inv1"), "new@example.org")
            uow.add_event(c.event("e1"))
            uow.commit()
        from .._errors import AlreadyInvited, AlreadyMember, Conflict

        cases: list[tuple[type[Exception], Callable[[Any], object]]] = [
            (AlreadyMember, lambda u: u.add_member(c.member("owner"), c.key("owner"))),
            (AlreadyMember, lambda u: u.add_member(c.member("u9"), c.key("owner"))),
            (AlreadyInvited, lambda u: u.add_invitation(c.invitation("inv2"), "new@example.org")),
            (Conflict, lambda u: u.add_event(c.event("e1"))),
            (Conflict, lambda u: u.add_account(c.account())),
        ]
        for error, write in cases:
            caught: list[BaseException] = []
            with seeded.begin() as uow:
                try:
                    with uow.deferred():  # type: ignore[attr-defined]
                        uow.add_event(c.event("e2"))  # before the failing write
                        write(uow)
                        uow.add_outbox(c.outbox("m2"))  # after it
                except Conflict as exc:
                    caught.append(exc)
            assert [type(e) for e in caught] == [error]
            with seeded.read() as uow:  # the discarded unit left nothing
                assert [e.id for e in uow.events("acc1", limit=5)] == ["e1"]
                assert uow.outbox() == []

    def test_deferred_updates_and_deletes_are_written(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            later = _method(uow, "deferred")
            uow.add_member(c.member("u1"), c.key("u1"))
            uow.add_member(c.member("u2"), c.key("u2"))
            uow.add_contact(c.contact("ct1"), "ct1@example.org")
            uow.add_contact(c.contact("ct2"), "ct2@example.org")
            uow.commit()
        renamed = attrs.evolve(c.account(), name="Renamed")
        changed = attrs.evolve(c.member("u1"), permissions=PermissionSet.of("billing.pay"))
        contact = attrs.evolve(c.contact("ct1"), name="Renamed")
        with seeded.begin() as uow:
            with later():
                uow.update_account(renamed)
                uow.update_member(changed)
                uow.delete_member("acc1", "u2")
                uow.update_contact(contact, "ct1@example.org")
                uow.delete_contact("ct2")
                uow.add_event(c.event("e1"))
                # a read inside the block sees the writes before it
                assert [m.user_id for m in uow.members("acc1")] == ["owner", "u1"]
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_account("acc1") == renamed
            assert uow.get_member("acc1", "u1") == changed
            assert uow.get_member("acc1", "u2") is None
            assert uow.contacts("acc1") == [contact]
            assert [e.id for e in uow.events("acc1", limit=5)] == ["e1"]

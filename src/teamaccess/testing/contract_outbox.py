"""The store contract's part for the outbox: rows, claims, leases and retries.

``StoreContract`` inherits these tests.
"""

# Token and hash values below are test data, not secrets.

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
import pytest

from .._errors import Conflict
from .._ports import Store

# contract.py imports this module to define StoreContract; its helpers are looked up on
# it when a test runs, by which time it is fully imported.
from . import contract as c

__all__ = ["OutboxContract"]


class OutboxContract:
    """What every store's outbox does; part of ``StoreContract``."""

    # -- outbox -------------------------------------------------------------------------

    def test_outbox_round_trip(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        row = c.outbox("m1")
        invitation_row = c.outbox("m2", kind="invitation", message=None, invitation_id="inv1")
        with seeded.begin() as uow:
            uow.add_outbox(row)
            uow.add_outbox(invitation_row)
            uow.commit()
        sent = attrs.evolve(
            row,
            status="sent",
            attempts=2,
            last_error="SMTPError: 451",
            sent_at=c.at(5),
            next_attempt_at=c.at(4),
        )
        with seeded.begin() as uow:
            uow.update_outbox(sent)
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_outbox("m1") == sent
            assert uow.get_outbox("m2") == invitation_row
            assert uow.get_outbox("nope") is None

    def test_outbox_update_writes_the_delivery_state_only(self, seeded: Store) -> None:
        row = c.outbox("m1", kind="invitation", message=None, invitation_id="inv1")
        with seeded.begin() as uow:
            uow.add_outbox(row)
            uow.commit()
        changed = attrs.evolve(
            row,
            recipient="else@example.org",
            message_id="<else@panel.example.com>",
            invitation_id="inv2",
            status="sent",
            attempts=1,
            sent_at=c.at(3),
        )
        with seeded.begin() as uow:
            uow.update_outbox(changed)
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_outbox("m1") == attrs.evolve(
                row, status="sent", attempts=1, sent_at=c.at(3)
            )
            assert [m.id for m in uow.outbox(invitation_id="inv1")] == ["m1"]

    def test_updates_of_missing_rows_write_nothing(self, seeded: Store) -> None:
        # Like UPDATE ... WHERE id = ? on no row: an update never creates one.
        with seeded.begin() as uow:
            uow.update_invitation(c.invitation("ghost"))
            uow.update_outbox(c.outbox("ghost"))
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_invitation("ghost") is None
            assert uow.get_outbox("ghost") is None
            assert uow.outbox() == []

    def test_outbox_filters_and_order(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("late", minute=30))
            uow.add_outbox(c.outbox("early", minute=10))
            uow.add_outbox(c.outbox("sent", minute=5, status="sent"))
            uow.add_outbox(
                c.outbox("inv", minute=20, kind="invitation", message=None, invitation_id="inv1")
            )
            uow.commit()
        with seeded.read() as uow:
            assert [m.id for m in uow.outbox()] == ["sent", "early", "inv", "late"]
            assert [m.id for m in uow.outbox(status="pending")] == ["early", "inv", "late"]
            assert [m.id for m in uow.outbox(status="pending", due_before=c.at(20))] == [
                "early",
                "inv",
            ]
            assert [m.id for m in uow.outbox(invitation_id="inv1")] == ["inv"]
            assert [m.id for m in uow.outbox(status="pending", limit=2)] == ["early", "inv"]
            assert uow.outbox(status="cancelled") == []

    def test_duplicate_outbox_is_conflict(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1"))
            uow.commit()
        with pytest.raises(Conflict), seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1"))

    def test_claim_outbox_takes_due_rows_oldest_first(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("late", minute=30))
            uow.add_outbox(c.outbox("early", minute=10))
            uow.add_outbox(c.outbox("sent", minute=5, status="sent"))
            uow.add_outbox(c.outbox("middle", minute=20))
            uow.add_outbox(c.outbox("cancelled", minute=1, status="cancelled"))
            uow.commit()
        lease = c.at(45)
        with seeded.begin() as uow:
            claimed = uow.claim_outbox(now=c.at(25), lease_until=lease, limit=5)
            uow.commit()
        assert [m.id for m in claimed] == ["early", "middle"]
        assert [m.next_attempt_at for m in claimed] == [lease, lease]
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_outbox("early") == attrs.evolve(
                c.outbox("early", minute=10), next_attempt_at=lease, leased_until=lease
            )
            assert uow.get_outbox("late") == c.outbox("late", minute=30)
            assert uow.get_outbox("sent") == c.outbox("sent", minute=5, status="sent")
        with store.begin() as uow:
            # Leased rows are not due again until the lease ends.
            assert [
                m.id for m in uow.claim_outbox(now=c.at(35), lease_until=c.at(55), limit=5)
            ] == ["late"]
            assert [
                m.id for m in uow.claim_outbox(now=c.at(44), lease_until=c.at(60), limit=5)
            ] == []
            # A worker that died holds nothing once its lease is over.
            again = uow.claim_outbox(now=c.at(45), lease_until=c.at(65), limit=1)
            assert [(m.id, m.next_attempt_at) for m in again] == [("early", c.at(65))]
            uow.commit()

    def test_claim_outbox_counts_only_when_committed(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1", minute=1))
            uow.commit()
        with seeded.begin() as uow:
            assert len(uow.claim_outbox(now=c.at(2), lease_until=c.at(9), limit=1)) == 1
        with seeded.read() as uow:
            assert uow.get_outbox("m1") == c.outbox("m1", minute=1)

    def test_outbox_keeps_the_lease_as_written(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        held = c.outbox("held", minute=1, next_attempt_at=c.at(6), leased_until=c.at(6))
        with seeded.begin() as uow:
            uow.add_outbox(held)
            uow.add_outbox(c.outbox("free", minute=2, leased_until=c.at(9)))
            uow.commit()
        with seeded.begin() as uow:
            uow.update_outbox(attrs.evolve(held, attempts=1, leased_until=None))
            uow.update_outbox(c.outbox("free", minute=2, leased_until=c.at(30)))
            uow.commit()
        with reopen(seeded).read() as uow:
            assert uow.get_outbox("held") == attrs.evolve(held, attempts=1, leased_until=None)
            assert uow.get_outbox("free") == c.outbox("free", minute=2, leased_until=c.at(30))

    def _waiting_mail(self, store: Store) -> None:
        """Rows of every kind for retry_outbox() at minute 10; acc2's "other" waits."""
        with store.begin() as uow:
            uow.add_account(c.account("acc2", minute=1, owner="owner2"))
            uow.add_outbox(c.outbox("waiting", minute=1, next_attempt_at=c.at(40), attempts=1,
                                  last_error="421 try later"))  # fmt: skip
            uow.add_outbox(c.outbox("other", minute=2, account_id="acc2",
                                  next_attempt_at=c.at(50), attempts=2))  # fmt: skip
            uow.add_outbox(c.outbox("claimed", minute=3))
            # Written by a call that sends it itself (delivery="now"): held until 20.
            uow.add_outbox(c.outbox("sending", minute=4, next_attempt_at=c.at(20),
                                  leased_until=c.at(20)))  # fmt: skip
            uow.add_outbox(c.outbox("due", minute=5))
            # A sender that died: its lease is over, so the row is due already.
            uow.add_outbox(c.outbox("abandoned", minute=6, next_attempt_at=c.at(8),
                                  leased_until=c.at(8)))  # fmt: skip
            uow.add_outbox(c.outbox("sent", minute=7, status="sent", next_attempt_at=c.at(60)))
            uow.add_outbox(c.outbox("closed", minute=8, status="cancelled",
                                  next_attempt_at=c.at(60)))  # fmt: skip
            uow.commit()
        with store.begin() as uow:
            claimed = uow.claim_outbox(now=c.at(3), lease_until=c.at(30), limit=1)
            assert [m.id for m in claimed] == ["claimed"]
            uow.commit()

    def test_retry_outbox_makes_waiting_rows_due_and_never_a_leased_one(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        self._waiting_mail(seeded)
        with seeded.read() as uow:
            before = {m.id: m for m in uow.outbox()}
        with seeded.begin() as uow:
            made = uow.retry_outbox(now=c.at(10))
            uow.commit()
        assert [(m.id, m.next_attempt_at, m.leased_until) for m in made] == [
            ("waiting", c.at(10), None),
            ("other", c.at(10), None),
        ]
        store = reopen(seeded)
        with store.read() as uow:
            after = {m.id: m for m in uow.outbox()}
        assert after["waiting"] == attrs.evolve(before["waiting"], next_attempt_at=c.at(10))
        assert after["other"] == attrs.evolve(before["other"], next_attempt_at=c.at(10))
        for unmoved in ("claimed", "sending", "due", "abandoned", "sent", "closed"):
            assert after[unmoved] == before[unmoved], unmoved
        assert after["claimed"].leased_until == c.at(30)
        with store.begin() as uow:
            # Due now: the next claim takes them, with the rows due before.
            taken = uow.claim_outbox(now=c.at(10), lease_until=c.at(25), limit=10)
            assert [m.id for m in taken] == ["waiting", "other", "due", "abandoned"]
            assert uow.retry_outbox(now=c.at(11)) == []
            uow.commit()

    def test_retry_outbox_of_one_account(self, seeded: Store) -> None:
        self._waiting_mail(seeded)
        with seeded.begin() as uow:
            assert [m.id for m in uow.retry_outbox(now=c.at(10), account_id="acc2")] == ["other"]
            uow.commit()
        with seeded.read() as uow:
            assert uow.get_outbox("waiting").next_attempt_at == c.at(40)  # type: ignore[union-attr]
            assert uow.get_outbox("other").next_attempt_at == c.at(10)  # type: ignore[union-attr]

    def test_waiting_accounts_names_the_accounts_retry_outbox_moves(self, seeded: Store) -> None:
        # Optional (retry_waiting() without an account uses it to retry each account in
        # a unit of its own); a backend that has it must agree with retry_outbox().
        self._waiting_mail(seeded)
        with seeded.begin() as uow:
            for account_id in ("acc3", "acc4", "acc5"):
                uow.add_account(c.account(account_id, minute=1, owner=f"owner-{account_id}"))
            # Only what retry_outbox() leaves: a lease in force, closed mail, due mail.
            uow.add_outbox(c.outbox("held3", minute=4, account_id="acc3",
                                  next_attempt_at=c.at(20), leased_until=c.at(20)))  # fmt: skip
            uow.add_outbox(c.outbox("sent4", minute=7, account_id="acc4", status="sent",
                                  next_attempt_at=c.at(60)))  # fmt: skip
            uow.add_outbox(c.outbox("due5", minute=5, account_id="acc5"))
            uow.commit()
        with seeded.read() as uow:
            listing = getattr(uow, "waiting_accounts", None)
            if not callable(listing):
                pytest.skip("this store's units have no waiting_accounts() (optional)")
            listed = listing(now=c.at(10))
            assert listing(now=c.at(45)) == ["acc2"]  # acc1's waits until 40
            assert listing(now=c.at(60)) == []
        assert listed == ["acc1", "acc2"]
        with seeded.begin() as uow:
            moved = uow.retry_outbox(now=c.at(10))
        assert listed == sorted({m.account_id for m in moved})

    def test_retry_outbox_counts_only_when_committed(self, seeded: Store) -> None:
        self._waiting_mail(seeded)
        with seeded.begin() as uow:
            assert len(uow.retry_outbox(now=c.at(10))) == 2
        with seeded.read() as uow:
            assert uow.get_outbox("waiting").next_attempt_at == c.at(40)  # type: ignore[union-attr]

    def test_retry_outbox_never_overtakes_a_claim_in_flight(self, seeded: Store) -> None:
        # A row whose backoff ends as the retry runs: a claim (its clock a little ahead)
        # takes it, and a retry that read the row as waiting must not take it back.
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1", minute=1, next_attempt_at=c.at(20), attempts=1))
            uow.commit()
        retried: list[str] = []
        errors: list[BaseException] = []

        def operator() -> None:
            try:
                with seeded.begin() as uow:
                    retried.extend(m.id for m in uow.retry_outbox(now=c.at(15)))
                    uow.commit()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=operator)
        with seeded.begin() as uow:
            assert [
                m.id for m in uow.claim_outbox(now=c.at(21), lease_until=c.at(40), limit=5)
            ] == ["m1"]
            # The retry runs while the claim is still open: it waits for it (a single
            # writer, or the row's lock) and then finds the row leased.
            thread.start()
            thread.join(timeout=0.3)
            uow.commit()
        thread.join()
        assert errors == []
        assert retried == []
        with seeded.read() as uow:
            row = uow.get_outbox("m1")
        assert row is not None
        assert (row.next_attempt_at, row.leased_until) == (c.at(40), c.at(40))

    def test_concurrent_claims_never_share_a_row(self, seeded: Store) -> None:
        ids = [f"m{i:02}" for i in range(12)]
        with seeded.begin() as uow:
            for i, message_id in enumerate(ids):
                uow.add_outbox(c.outbox(message_id, minute=i))
            uow.commit()
        second: list[str] = []
        errors: list[BaseException] = []

        def other_worker() -> None:
            try:
                with seeded.begin() as uow:
                    rows = uow.claim_outbox(now=c.at(30), lease_until=c.at(41), limit=100)
                    second.extend(m.id for m in rows)
                    uow.commit()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        worker = threading.Thread(target=other_worker)
        with seeded.begin() as uow:
            first = [m.id for m in uow.claim_outbox(now=c.at(30), lease_until=c.at(40), limit=5)]
            # The other claim runs while this one is still open: it waits for it (a single
            # writer) or skips its rows (FOR UPDATE SKIP LOCKED), never takes them.
            worker.start()
            worker.join(timeout=0.3)
            uow.commit()
        worker.join()
        assert errors == []
        assert first == ids[:5]
        assert sorted(second) == ids[5:]

"""The store contract's part for personal data: a person across accounts, deletes, purges.

``StoreContract`` inherits these tests; a backend runs them by subclassing it as usual.
"""

# Token and hash values below are test data, not secrets.
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from .._domain import AuditEvent, Invitation, InvitationStatus, Member
from .._ports import Store

# contract.py imports this module to define StoreContract; its helpers are looked up on
# it when a test runs, by which time it is fully imported.
from . import contract as c

__all__ = ["PrivacyContract"]


def _second_account(store: Store) -> None:
    with store.begin() as uow:
        uow.add_account(c.account("acc2", minute=1, owner="boss"))
        uow.add_member(c.member("boss", account_id="acc2", role="owner", minute=1), c.key("boss"))
        uow.commit()


def _changed_accounts(store: Store) -> Callable[[Any, object], set[str] | None]:
    """``changed_accounts`` of the store's units, or a skip: it is optional."""
    with store.read() as uow:
        if not (
            callable(getattr(uow, "event_mark", None))
            and callable(getattr(uow, "changed_accounts", None))
        ):
            pytest.skip("this store has no changed_accounts() (an optional capability)")

    def changed(uow: Any, mark: object) -> set[str] | None:
        found: set[str] | None = uow.changed_accounts(mark)
        return found

    return changed


def _event(event_id: str, account_id: str = "acc1", **changes: Any) -> AuditEvent:
    return attrs.evolve(c.event(event_id), account_id=account_id, **changes)


class PrivacyContract:
    """Queries across every account, deletes and purges (export, erasure, retention)."""

    def test_members_involving(self, seeded: Store) -> None:
        _second_account(seeded)
        with seeded.begin() as uow:
            uow.add_member(c.member("u1", minute=5), c.key("u1"))
            uow.add_member(c.member("u1", account_id="acc2", minute=2), c.key("u1"))
            uow.add_member(attrs.evolve(c.member("u2", minute=6), granted_by="u1"), c.key("u2"))
            uow.add_member(c.member("u3", minute=7), c.key("u3"))
            uow.commit()
        with seeded.read() as uow:
            found = uow.members_involving({"u1"}, ())
            assert [(m.account_id, m.user_id) for m in found] == [
                ("acc2", "u1"),
                ("acc1", "u1"),
                ("acc1", "u2"),
            ]
            assert found[1] == c.member("u1", minute=5)
            by_key = uow.members_involving((), {c.key("u3"), "nobody@example.org"})
            assert [m.user_id for m in by_key] == ["u3"]
            assert uow.members_involving((), ()) == []

    def test_invitations_involving(self, seeded: Store) -> None:
        _second_account(seeded)
        accepted = attrs.evolve(
            c.invitation("i3", "other@example.org", minute=4),
            status="accepted",
            accepted_by="u1",
            closed_at=c.at(5),
        )
        with seeded.begin() as uow:
            uow.add_invitation(c.invitation("i2", "a@example.org", invited_by="u1", minute=3),
                               "a@example.org")  # fmt: skip
            uow.add_invitation(c.invitation("i1", "Pia@Example.org", account_id="acc2"),
                               "pia@example.org")  # fmt: skip
            uow.add_invitation(accepted, "other@example.org")
            uow.add_invitation(c.invitation("i4", "b@example.org", minute=6), "b@example.org")
            uow.commit()
        with seeded.read() as uow:
            found = uow.invitations_involving({"u1"}, {"pia@example.org"})
            assert [i.id for i in found] == ["i1", "i2", "i3"]
            assert found[0] == c.invitation("i1", "Pia@Example.org", account_id="acc2")
            assert found[2] == accepted
            assert uow.invitations_involving((), ()) == []

    def test_contacts_with(self, seeded: Store) -> None:
        _second_account(seeded)
        same = attrs.evolve(c.contact("c3", account_id="acc2"), email="C1@example.org")
        with seeded.begin() as uow:
            uow.add_contact(c.contact("c1"), "c1@example.org")
            uow.add_contact(c.contact("c2"), "c2@example.org")
            uow.add_contact(same, "c1@example.org")
            uow.commit()
        with seeded.read() as uow:
            found = uow.contacts_with({"c1@example.org"})
            assert found == [c.contact("c1"), same]
            assert uow.contacts_with(()) == []

    def test_events_with(self, seeded: Store) -> None:
        _second_account(seeded)
        events = [
            _event("e1", actor_id="Pia-1"),
            _event("e2", "acc2", target="invitee:pia@Example.ORG"),
            _event("e3", details={"who": {"list": ["x", "PIA@example.org"]}, "n": 3}),
            _event("e4", details={"email": "someone@example.org", "count": 7}),
            _event("e5", "acc2", details={"pia@example.org": "a key is not a value"}),
        ]
        with seeded.begin() as uow:
            for e in events:
                uow.add_event(e)
            uow.commit()
        with seeded.read() as uow:
            assert [e.id for e in uow.events_with({"pia-1"})] == ["e1"]
            found = uow.events_with({"@example.org", "nothing"})
            assert [e.id for e in found] == ["e1", "e2", "e3", "e4"]  # as added
            assert [e.id for e in uow.events_with({"pia@example.org"})] == ["e2", "e3"]
            assert uow.events_with({"7"}) == []  # numbers are not text
            assert uow.events_with({"pia-1", "someone@"}) == [events[0], events[3]]
            assert uow.events_with(()) == []

    def test_outbox_with(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m2", minute=2, recipient="Pia@Example.org"))
            uow.add_outbox(c.outbox("m1", minute=1, recipient="pia@example.org", status="sent"))
            uow.add_outbox(c.outbox("m3", minute=3, recipient="xy@example.com"))
            uow.commit()
        with seeded.read() as uow:
            assert [m.id for m in uow.outbox_with({"PIA@EXAMPLE.ORG"})] == ["m1", "m2"]
            assert [m.id for m in uow.outbox_with({"@example."})] == ["m1", "m2", "m3"]
            assert uow.outbox_with({"nobody"}) == []

    def test_members_with_text(self, seeded: Store) -> None:
        _second_account(seeded)
        noted = attrs.evolve(
            c.member("u1", minute=5), metadata={"deputy": ["x", "Pia@Example.ORG"]}
        )
        with seeded.begin() as uow:
            uow.add_member(noted, c.key("u1"))
            uow.add_member(c.member("u2", minute=2), c.key("u2"))  # named in its address only
            uow.add_member(
                attrs.evolve(c.member("u3", account_id="acc2", minute=3),
                             metadata={"pia@example.org": 1, "n": "Jörg"}),
                c.key("u3"),
            )  # fmt: skip
            uow.commit()
        with seeded.read() as uow:
            assert uow.members_with_text({"pia@example.org"}) == [noted]
            assert [m.user_id for m in uow.members_with_text({"jÖrg", "deputy"})] == []
            assert [m.user_id for m in uow.members_with_text({"Jö", "pia@"})] == ["u3", "u1"]
            assert uow.members_with_text({"u2@example"}) == []
            assert uow.members_with_text(()) == []

    def test_invitations_with_text(self, seeded: Store) -> None:
        _second_account(seeded)
        i1 = attrs.evolve(c.invitation("i1", minute=3), note="Vertretung für PIA@example.org")
        i2 = attrs.evolve(
            c.invitation("i2", "b@example.org", account_id="acc2"),
            metadata={"ticket": {"by": "pia@example.org"}, "n": 7},
        )
        with seeded.begin() as uow:
            uow.add_invitation(i1, "new@example.org")
            uow.add_invitation(i2, "b@example.org")
            uow.add_invitation(c.invitation("i3", "pia@example.org", minute=4), "pia@example.org")
            uow.commit()
        with seeded.read() as uow:
            assert uow.invitations_with_text({"pia@example.org"}) == [i2, i1]
            assert uow.invitations_with_text({"vertretung"}) == [i1]
            assert uow.invitations_with_text({"7", "ticket"}) == []  # values only, as text
            assert uow.invitations_with_text(()) == []

    def test_contacts_with_text(self, seeded: Store) -> None:
        named = [
            attrs.evolve(c.contact("c1"), name="Stellvertretung PIA@example.org"),
            attrs.evolve(c.contact("c2"), company="pia@example.org GmbH"),
            attrs.evolve(c.contact("c3"), phone="+49 pia@example.org"),
            attrs.evolve(c.contact("c4"), role="für pia@Example.org"),
        ]
        five = attrs.evolve(c.contact("c5"), email="pia@example.org")
        with seeded.begin() as uow:
            for one in named:
                uow.add_contact(one, f"{one.id}@example.org")
            uow.add_contact(five, "pia@example.org")
            uow.commit()
        with seeded.read() as uow:
            assert uow.contacts_with_text({"pia@example.org"}) == named  # not five's address
            assert uow.contacts_with_text({"BUCHHALTUNG"}) == [*named[:3], five]
            assert uow.contacts_with_text({"nobody"}) == []

    def test_free_text_searches_find_disguised_addresses(self, seeded: Store) -> None:
        # Where a needle is an address, a text that may write one otherwise (an "@" in some
        # form, and a character not ASCII or starting an escape) is found too; the
        # erasure reads it as it shows and decides (teamaccess._backends.search.disguised).
        hidden = [
            "pia\uff20example.org", "p\u200bia@example.org", "pia&#64;example.org",
            "pia%40example.org", "pia\\u0040example.org", "pia\ufe6bexample.org",
            "Jörg: other@example.net",
        ]  # fmt: skip
        plain = ["other@example.net", "pia at example.org", "50% für Jörg"]
        with seeded.begin() as uow:
            for i, text in enumerate(hidden + plain):
                uow.add_invitation(
                    attrs.evolve(c.invitation(f"i{i}", minute=i), note=text), f"n{i}@example.org"
                )
                contact = attrs.evolve(c.contact(f"c{i}"), role=text)
                uow.add_contact(contact, f"c{i}@example.org")
                member = attrs.evolve(c.member(f"u{i}", minute=i), metadata={"x": [text]})
                uow.add_member(member, c.key(f"u{i}"))
                uow.add_event(_event(f"e{i}", details={"subject": text}))
            uow.commit()
        found = [f"{i}" for i in range(len(hidden))]
        with seeded.read() as uow:
            for search, prefix in (
                (uow.invitations_with_text, "i"),
                (uow.contacts_with_text, "c"),
                (uow.members_with_text, "u"),
                (uow.events_with, "e"),
            ):
                rows = search({"pia@example.org"})
                ids = sorted(r.user_id if isinstance(r, Member) else r.id for r in rows)
                assert ids == sorted(prefix + i for i in found), search
                assert search({"vertretung"}) == []  # no address: no more than the needles

    def test_searches_kept_to_accounts(self, seeded: Store) -> None:
        """With ``accounts=``, each search of free text finds what it finds over every
        account, in the same order, in those accounts only."""
        _changed_accounts(seeded)  # the keyword comes with the capability
        _second_account(seeded)
        with seeded.begin() as uow:
            uow.add_account(c.account("acc3", minute=2, owner="third"))
            uow.add_member(c.member("third", account_id="acc3", role="owner", minute=2), "t")
            for n, account_id in enumerate(("acc1", "acc2", "acc3", "acc1")):
                named = f"für pia@example.org {n}"
                uow.add_member(
                    attrs.evolve(
                        c.member(f"u{n}", account_id=account_id, minute=5 + n),
                        metadata={"deputy": [named]},
                    ),
                    c.key(f"u{n}"),
                )
                uow.add_invitation(
                    attrs.evolve(
                        c.invitation(f"i{n}", f"i{n}@example.org", account_id=account_id),
                        note=named,
                    ),
                    f"i{n}@example.org",
                )
                uow.add_contact(
                    attrs.evolve(c.contact(f"c{n}"), account_id=account_id, role=named),
                    f"c{n}@example.org",
                )
                uow.add_event(_event(f"e{n}", account_id, details={"who": named}))
            uow.commit()
        with seeded.read() as uow:
            for search in (
                uow.members_with_text,
                uow.invitations_with_text,
                uow.contacts_with_text,
                uow.events_with,
            ):
                every = search({"PIA@example.org"})
                assert len(every) == 4
                for accounts in (["acc1"], ["acc2", "acc3"], ["acc3", "nowhere"]):
                    kept = search({"PIA@example.org"}, accounts=accounts)
                    assert kept == [r for r in every if r.account_id in accounts]
                assert search({"pia@example.org"}, accounts=[]) == []

    def test_person_searches_kept_to_accounts(self, seeded: Store) -> None:
        """With ``accounts=``, the searches for a person's own rows find what they find
        over every account, in the same order, in those accounts only."""
        _changed_accounts(seeded)  # the keyword comes with the capability
        _second_account(seeded)
        with seeded.begin() as uow:
            for account_id, minute in (("acc1", 5), ("acc2", 6)):
                uow.add_member(c.member("u1", account_id=account_id, minute=minute), c.key("u1"))
                uow.add_member(
                    attrs.evolve(
                        c.member(f"g-{account_id}", account_id=account_id, minute=minute),
                        granted_by="u1",
                    ),
                    c.key(f"g-{account_id}"),
                )
                uow.add_invitation(
                    c.invitation(f"i-{account_id}", "pia@example.org", account_id=account_id),
                    "pia@example.org",
                )
                uow.add_contact(
                    attrs.evolve(c.contact(f"c-{account_id}"), account_id=account_id),
                    "pia@example.org",
                )
            uow.commit()
        with seeded.read() as uow:
            searches: list[Callable[..., list[Any]]] = [
                lambda **kw: uow.members_involving({"u1"}, {"pia@example.org"}, **kw),
                lambda **kw: uow.invitations_involving({"u1"}, {"pia@example.org"}, **kw),
                lambda **kw: uow.contacts_with({"pia@example.org"}, **kw),
            ]
            for search in searches:
                every = search()
                assert {r.account_id for r in every} == {"acc1", "acc2"}
                for accounts in (["acc1"], ["acc2", "nowhere"], ["acc1", "acc2"]):
                    kept = search(accounts=accounts)
                    assert kept == [r for r in every if r.account_id in accounts]
                assert search(accounts=[]) == []

    def test_changed_accounts(self, seeded: Store) -> None:
        """The accounts whose log grew after a mark are named (more may be)."""
        changed = _changed_accounts(seeded)
        _second_account(seeded)
        with seeded.begin() as uow:
            uow.add_event(_event("e1"))
            uow.commit()
        with seeded.read() as uow:
            mark = uow.event_mark()
            # (more may be named: PostgreSQL names those of every transaction that was
            # still running when the mark was taken, whatever it wrote before)
            assert (changed(uow, mark) or set()) <= {"acc1", "acc2"}
        with seeded.begin() as uow:
            uow.add_event(_event("e2", "acc2"))
            uow.add_event(_event("e3", "acc2"))
            uow.commit()
        with seeded.begin() as uow:
            uow.add_event(_event("e4", "acc1"))
            # not committed: it never happened
        with seeded.read() as uow:
            grown = changed(uow, mark)
            assert grown is not None
            assert "acc2" in grown
            assert grown <= {"acc1", "acc2"}
            assert changed(uow, "not a mark") is None

    def test_outbox_since(self, seeded: Store) -> None:
        """The rows added after a mark whose recipient holds a needle, as
        ``outbox_with()`` finds them (more may be returned)."""
        _changed_accounts(seeded)
        with seeded.read() as uow:
            since = getattr(uow, "outbox_since", None)
            if not callable(since):
                pytest.skip("this store has no outbox_since() (an optional capability)")
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1", minute=1, recipient="pia@example.org"))
            uow.commit()
        with seeded.read() as uow:
            mark = uow.event_mark()
            assert [m.id for m in uow.outbox_since({"pia@"}, mark) or []] in ([], ["m1"])
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m2", minute=2, recipient="Pia@Example.org"))
            uow.add_outbox(c.outbox("m3", minute=3, recipient="xy@example.com"))
            uow.commit()
        with seeded.read() as uow:
            found = uow.outbox_since({"PIA@EXAMPLE.ORG"}, mark)
            assert found is not None
            assert "m2" in [m.id for m in found]
            assert all("pia@example.org" in m.recipient.lower() for m in found)
            assert uow.outbox_since({"pia@"}, "not a mark") is None
        with seeded.begin() as uow:
            uow.delete_outbox("m1")
            uow.delete_outbox("m2")
            uow.delete_outbox("m3")
            uow.add_outbox(c.outbox("m4", minute=4, recipient="pia@example.org"))
            uow.commit()
        with seeded.read() as uow:
            # every row after the mark gone, one added: named, or None (cannot tell)
            later = uow.outbox_since({"pia@example.org"}, mark)
            assert later is None or [m.id for m in later] == ["m4"]

    def test_changed_accounts_after_the_log_is_cut(self, seeded: Store) -> None:
        """The marked event purged and new ones added: the answer names the accounts of
        the new ones, or is None (the store cannot tell)."""
        changed = _changed_accounts(seeded)
        _second_account(seeded)
        with seeded.begin() as uow:
            uow.add_event(_event("e1"))
            uow.add_event(_event("e2", "acc2"))
            uow.commit()
        with seeded.read() as uow:
            mark = uow.event_mark()
        with seeded.begin() as uow:
            assert uow.purge_events(c.at(60)) == 2
            uow.add_event(_event("e3", "acc2", at=c.at(61)))
            uow.commit()
        with seeded.read() as uow:
            grown = changed(uow, mark)
            assert grown is None or "acc2" in grown

    def test_outbox_texts(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m3", minute=3))
            uow.add_outbox(c.outbox("m1", minute=1, kind="invitation", message=None))
            uow.add_outbox(c.outbox("m2", minute=2, message=None, last_error="550 refused"))
            uow.add_outbox(c.outbox("m4", minute=0, status="sent"))
            uow.commit()
        with seeded.read() as uow:
            every = uow.outbox_texts()
            # in the order added, whatever their times; m1 holds no text
            assert [m.id for _, m in every] == ["m3", "m2", "m4"]
            places = [p for p, _ in every]
            assert places == sorted(set(places))
            assert places[0] > 0
            assert every[2][1] == c.outbox("m4", minute=0, status="sent")
            assert every[1][1].last_error == "550 refused"
            first = uow.outbox_texts(limit=2)
            assert first == every[:2]
            assert uow.outbox_texts(after=first[-1][0], limit=2) == every[2:]
            assert uow.outbox_texts(after=places[-1]) == []

    def test_rewrite_outbox_writes_message_and_error_only(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        row = c.outbox("m1", attempts=2, last_error="550 <pia@example.org> full")
        with seeded.begin() as uow:
            uow.add_outbox(row)
            uow.add_outbox(c.outbox("m2"))
            uow.commit()
        with seeded.begin() as uow:
            uow.rewrite_outbox(
                attrs.evolve(row, message=b"Subject: x\r\n\r\n[erased]\r\n",
                             last_error="550 <[erased]> full", status="sent",
                             recipient="changed@example.org", attempts=9)
            )  # fmt: skip
            uow.rewrite_outbox(c.outbox("ghost"))
            uow.commit()
        with seeded.begin() as uow:
            uow.rewrite_outbox(attrs.evolve(row, message=None, last_error="not committed"))
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_outbox("m1") == attrs.evolve(
                row, message=b"Subject: x\r\n\r\n[erased]\r\n", last_error="550 <[erased]> full"
            )
            assert uow.get_outbox("m2") == c.outbox("m2")
            assert uow.get_outbox("ghost") is None
        with store.begin() as uow:
            uow.rewrite_outbox(attrs.evolve(row, message=None, last_error=None))
            uow.commit()
        with store.read() as uow:
            assert uow.get_outbox("m1") == attrs.evolve(row, message=None, last_error=None)
            assert [m.id for _, m in uow.outbox_texts()] == ["m2"]

    def test_delete_invitation_frees_its_address(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(c.invitation("i1"), "new@example.org")
            uow.add_invitation(c.invitation("i2", "b@example.org"), "b@example.org")
            uow.commit()
        with seeded.begin() as uow:
            uow.delete_invitation("i1")
            uow.delete_invitation("ghost")
            uow.commit()
        store = reopen(seeded)
        with store.begin() as uow:
            assert uow.get_invitation("i1") is None
            assert uow.pending_invitation_for("acc1", "new@example.org") is None
            assert [i.id for i in uow.invitations("acc1")] == ["i2"]
            uow.add_invitation(c.invitation("i3"), "new@example.org")  # no AlreadyInvited
            uow.commit()

    def test_delete_outbox(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("m1", kind="invitation", message=None, invitation_id="i1"))
            uow.add_outbox(c.outbox("m2"))
            uow.commit()
        with seeded.begin() as uow:
            uow.delete_outbox("m1")
            uow.delete_outbox("ghost")
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.get_outbox("m1") is None
            assert uow.outbox(invitation_id="i1") == []
            assert [m.id for m in uow.outbox(status="pending")] == ["m2"]

    def test_update_event_rewrites_who_and_what_only(
        self, seeded: Store, reopen: Callable[[Store], Store]
    ) -> None:
        with seeded.begin() as uow:
            for n in range(3):
                uow.add_event(c.event(f"e{n}", minute=n))
            uow.commit()
        changed = attrs.evolve(
            c.event("e1", "other.action", minute=9),
            actor_id="erased:1",
            target="erased:2",
            details={"email": "erased:1", "nested": ["erased:1"]},
        )
        with seeded.begin() as uow:
            uow.update_event(changed)
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            events = uow.events("acc1", limit=9)
        assert [e.id for e in events] == ["e2", "e1", "e0"]
        assert events[1] == attrs.evolve(
            c.event("e1", minute=1),
            actor_id="erased:1",
            target="erased:2",
            details={"email": "erased:1", "nested": ["erased:1"]},
        )

    def test_purge_invitations(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        def closed(inv_id: str, status: InvitationStatus, minute: int) -> Invitation:
            inv = c.invitation(inv_id, f"{inv_id}@example.org", minute=0)
            return attrs.evolve(inv, status=status, closed_at=c.at(minute))

        with seeded.begin() as uow:
            # expires 7 days after minute 0 and after minute 20000 (about 14 days)
            uow.add_invitation(c.invitation("old", "old@example.org", minute=0),
                               "old@example.org")  # fmt: skip
            uow.add_invitation(c.invitation("new", "new@example.org", minute=20000),
                               "new@example.org")  # fmt: skip
            uow.add_invitation(closed("acc", "accepted", 10), "acc@example.org")
            uow.add_invitation(closed("rev", "revoked", 30), "rev@example.org")
            uow.add_invitation(closed("dec", "declined", 10), "dec@example.org")
            uow.commit()
        with seeded.begin() as uow:
            removed = uow.purge_invitations(c.at(20))
            uow.commit()
        assert removed == 2
        with seeded.begin() as uow:
            assert uow.purge_invitations(c.at(60 * 24 * 8)) == 2  # rev, and old has expired
            uow.commit()
        store = reopen(seeded)
        with store.read() as uow:
            assert [i.id for i in uow.invitations("acc1")] == ["new"]
            assert uow.pending_invitation_for("acc1", "old@example.org") is None

    def test_purge_outbox_never_takes_waiting_mail(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_outbox(c.outbox("waiting", minute=0))
            uow.add_outbox(c.outbox("sent-old", minute=0, status="sent", sent_at=c.at(5)))
            uow.add_outbox(c.outbox("sent-new", minute=1, status="sent", sent_at=c.at(50)))
            uow.add_outbox(c.outbox("cancelled", minute=1, status="cancelled"))
            uow.commit()
        with seeded.begin() as uow:
            assert uow.purge_outbox(c.at(10)) == 2
            uow.commit()
        with seeded.read() as uow:
            assert [m.id for m in uow.outbox()] == ["waiting", "sent-new"]
            assert uow.get_outbox("waiting") is not None

    def test_purge_events_keeps_what_is_asked(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_event(c.event("old", "member.added", minute=0))
            uow.add_event(c.event("old-send", "invitation.sent", minute=1))
            uow.add_event(c.event("recent-send", "invitation.sent", minute=5))
            uow.add_event(c.event("recent", "member.added", minute=6))
            uow.add_event(c.event("new", "member.added", minute=20))
            uow.commit()
        with seeded.begin() as uow:
            removed = uow.purge_events(
                c.at(10), keep_actions={"invitation.sent"}, keep_since=c.at(5)
            )
            uow.commit()
        assert removed == 3
        with seeded.read() as uow:
            assert [e.id for e in uow.events("acc1", limit=9)] == ["new", "recent-send"]
        with seeded.begin() as uow:
            assert uow.purge_events(c.at(30)) == 2
            uow.commit()

    def test_deletes_and_purges_roll_back(self, seeded: Store) -> None:
        with seeded.begin() as uow:
            uow.add_invitation(c.invitation("i1"), "new@example.org")
            uow.add_outbox(c.outbox("m1", status="sent", sent_at=c.at(0)))
            uow.add_event(c.event("e1"))
            uow.add_contact(c.contact("c1"), "c1@example.org")
            uow.commit()
        with seeded.begin() as uow:
            uow.delete_invitation("i1")
            uow.delete_outbox("m1")
            uow.update_event(attrs.evolve(c.event("e1"), actor_id="x"))
            assert uow.purge_events(c.at(99)) == 1
            assert uow.purge_outbox(c.at(99)) == 0
            # no commit
        with seeded.read() as uow:
            assert uow.get_invitation("i1") is not None
            assert uow.pending_invitation_for("acc1", "new@example.org") is not None
            assert uow.get_outbox("m1") is not None
            assert uow.events("acc1", limit=5) == [c.event("e1")]

    def test_scrub_keeps_every_row(self, seeded: Store, reopen: Callable[[Store], Store]) -> None:
        with seeded.begin() as uow:
            uow.add_contact(c.contact("c1"), "c1@example.org")
            uow.add_contact(c.contact("c2"), "c2@example.org")
            uow.commit()
        with seeded.begin() as uow:
            uow.delete_contact("c1")
            uow.commit()
        seeded.scrub()
        store = reopen(seeded)
        with store.read() as uow:
            assert uow.contacts("acc1") == [c.contact("c2")]
            assert [m.user_id for m in uow.members("acc1")] == ["owner"]

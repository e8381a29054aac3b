"""Erasure in others' free text, searched before the write unit: on a store of 100,000
accounts each search of every account takes a second, and other writers would wait for
all of them. The unit searches only the accounts the search before it found and those
whose audit log grew since; what is written in between is still found, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from teamaccess import SYSTEM, MemoryMailer, PermissionSet, Store, TeamAccess
from teamaccess.testing import FrozenClock

from .unit_hook import UnitHook

PIA = "pia-user"
PIA_EMAIL = "pia.person@victim.example"
TEXTS = ("members_with_text", "invitations_with_text", "contacts_with_text", "events_with")
#: The searches for the person's own rows (memberships, invitations, contacts).
OWN = ("members_involving", "invitations_involving", "contacts_with")
SEARCHES = TEXTS + OWN
FILLER = 12


def make(store: Store, clock: FrozenClock) -> TeamAccess:
    return TeamAccess(store, MemoryMailer(), secret_key="s" * 32, clock=clock, pseudonym_key="k")


class Spy(UnitHook):
    """Records the free-text searches made while the erasure's write unit is open, with
    the accounts each was kept to (``None``: every account); *between* runs once, after
    the searches before the unit and before the unit opens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
        self.inside: list[tuple[str, frozenset[str] | None]] = []
        with store.read() as uow:
            unit_type = type(uow)
        for name in (*SEARCHES, "outbox_with"):
            real = getattr(unit_type, name)

            def search(
                uow: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any
            ) -> Any:
                if self.in_unit:
                    kept = kw.get("accounts")
                    self.inside.append((_name, None if kept is None else frozenset(kept)))
                return _real(uow, *args, **kw)

            monkeypatch.setattr(unit_type, name, search)
        super().__init__(monkeypatch, store)

    def searched(self) -> set[str]:
        """Every account a search inside the unit looked at; fails if one looked at all."""
        assert {name for name, _ in self.inside} == set(SEARCHES)
        found: set[str] = set()
        for name, kept in self.inside:
            if name == "outbox_with":
                continue
            assert kept is not None, f"{name} searched every account inside the write unit"
            found |= kept
        return found


def build(team: TeamAccess) -> tuple[str, list[str]]:
    """The person a member of one account; others' free text names them in two more;
    FILLER accounts with free text that does not. Returns the person's account and the
    filler accounts."""
    home = team.create_account(name="Home", owner_id="olga", owner_email="olga@shop.example").id
    inv = team.invite(home, actor_id="olga", email=PIA_EMAIL, permissions=PermissionSet.of())
    team.accept_invitation(inv.token or "", user_id=PIA, email=PIA_EMAIL)
    for n in range(2):
        acc = team.create_account(name=f"N{n}", owner_id=f"n{n}", owner_email=f"n{n}@x.example")
        team.add_contact(
            acc.id, actor_id=f"n{n}", name=f"Deputy {n}", email=f"d{n}@x.example",
            categories=["general"], role=f"stands in for {PIA_EMAIL.upper()}",
        )  # fmt: skip
    fillers = []
    for n in range(FILLER):
        acc = team.create_account(name=f"F{n}", owner_id=f"f{n}", owner_email=f"f{n}@y.example")
        team.add_contact(
            acc.id, actor_id=f"f{n}", name=f"Contact {n}", email=f"c{n}@y.example",
            categories=["billing"], company=f"Firm {n}", role="bookkeeping",
        )  # fmt: skip
        team.invite(
            acc.id, actor_id=f"f{n}", email=f"i{n}@y.example", permissions=PermissionSet.of(),
            note=f"welcome {n}", metadata={"ticket": f"T-{n}"},
        )  # fmt: skip
        fillers.append(acc.id)
    return home, fillers


def names_her(team: TeamAccess, accounts: list[str]) -> list[str]:
    """Where the person's address is still written, as the public API shows it."""
    found = []
    for acc in accounts:
        for c in team.contacts(acc):
            if PIA_EMAIL in f"{c.name} {c.company} {c.phone} {c.role}".lower():
                found.append(f"contact {c.id}")
        for inv in team.pending_invitations(acc):
            if PIA_EMAIL in f"{inv.note} {inv.metadata}".lower():
                found.append(f"invitation {inv.id}")
        for m in team.members(acc):
            if PIA_EMAIL in str(m.metadata).lower():
                found.append(f"member {m.user_id}")
        for e in team.audit_log(acc, limit=1000):
            if PIA_EMAIL in f"{e.actor_id} {e.target} {e.details}".lower():
                found.append(f"event {e.id}")
    return found


def every_account(team: TeamAccess) -> list[str]:
    users = ["olga", "n0", "n1", *(f"f{n}" for n in range(FILLER)), "zoe"]
    return sorted({a.id for u in users for a in team.accounts_for(u)})


class TestSearchedBeforeTheUnit:
    """An unchanged store: inside the unit, no search looks beyond the accounts found."""

    def test_the_unit_searches_only_the_accounts_found(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock)
        home, fillers = build(team)
        spy = Spy(monkeypatch, store)

        report = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM)

        searched = spy.searched()
        assert "outbox_with" not in {name for name, _ in spy.inside}  # every row's recipient
        assert not searched & set(fillers)
        assert home in searched
        assert len(searched) <= 3  # home and the two accounts whose text names her
        assert report.texts_redacted == 2
        assert report.memberships == 1
        assert report.messages == 1  # her invitation's mail
        assert names_her(team, every_account(team)) == []


class TestWrittenInBetween:
    """What is written between the search before the unit and the unit is found."""

    def test_rows_added_and_changed_in_between(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock)
        _, fillers = build(team)
        spy = Spy(monkeypatch, store)
        other = make(store, clock)
        changed = fillers[:4]

        def between() -> None:
            # A contact added, a contact changed, an invitation's note, and a member's
            # metadata (from the invitation it accepted), each in a filler account the
            # search before the unit did not find.
            other.add_contact(
                changed[0], actor_id="f0", name="Late", email="late@y.example",
                categories=["general"], phone=f"ask {PIA_EMAIL}",
            )  # fmt: skip
            contact = other.contacts(changed[1])[0]
            other.update_contact(contact.id, actor_id="f1", company=f"{PIA_EMAIL} GmbH")
            other.invite(
                changed[2], actor_id="f2", email="new@y.example",
                permissions=PermissionSet.of(), note=f"Grüße von {PIA_EMAIL}",
            )  # fmt: skip
            inv = other.invite(
                changed[3], actor_id="f3", email="joins@y.example",
                permissions=PermissionSet.of(), metadata={"deputy": [PIA_EMAIL]},
            )  # fmt: skip
            other.accept_invitation(inv.token or "", user_id="joins", email="joins@y.example")
            # And mail to her: an invitation (deleted with its mail).
            other.invite(
                fillers[4], actor_id="f4", email=PIA_EMAIL.upper(), permissions=PermissionSet.of()
            )

        spy.between = between

        report = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM)

        searched = spy.searched()
        assert set(changed + fillers[4:5]) <= searched
        assert not searched & set(fillers[5:])
        # the two found before, the four in between, and the invitation the new member
        # accepted (its metadata names her too)
        assert report.texts_redacted == 2 + 5
        assert (report.invitations, report.messages) == (2, 2)
        assert [i.email for i in team.pending_invitations(fillers[4])] == ["i4@y.example"]
        assert names_her(team, every_account(team)) == []

    def test_the_log_cut_back_in_between(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The events before the mark purged: a store that cannot tell what changed
        since makes the unit search every account; either way nothing is missed."""
        team = make(store, clock)
        _, fillers = build(team)
        spy = Spy(monkeypatch, store)
        other = make(store, clock)

        def between() -> None:
            with store.begin() as uow:
                uow.purge_events(clock.now().replace(year=clock.now().year + 1))
                uow.commit()
            other.add_contact(
                fillers[5], actor_id="f5", name=f"für {PIA_EMAIL}", email="late@y.example",
                categories=["general"],
            )  # fmt: skip

        spy.between = between

        report = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM)

        assert report.texts_redacted == 3
        assert names_her(team, every_account(team)) == []
        kept = [accounts for _, accounts in spy.inside]
        assert all(accounts is None or fillers[5] in accounts for accounts in kept)

    def test_the_person_gains_an_address_in_between(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whom the erasure looks for changed: the search before the unit looked for
        other needles, so the unit searches every account."""
        team = make(store, clock)
        _, fillers = build(team)
        new = "pia.neu@other.example"
        # Not hers when the search before the unit runs: it does not look for it.
        team.add_contact(
            fillers[6], actor_id="f6", name="Neu", email="neu@y.example",
            categories=["general"], role=f"Vertretung {new}",
        )  # fmt: skip
        spy = Spy(monkeypatch, store)
        other = make(store, clock)

        def between() -> None:
            second = other.create_account(name="Zwei", owner_id="zoe", owner_email="z@z.example")
            inv = other.invite(second.id, actor_id="zoe", email=new, permissions=PermissionSet.of())
            other.accept_invitation(inv.token or "", user_id=PIA, email=new)

        spy.between = between

        report = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM)

        assert new in report.addresses
        # (the person is found in the accounts searched before, then everywhere)
        assert {kept for name, kept in spy.inside if name in TEXTS} == {None}
        assert [kept for name, kept in spy.inside if name in OWN][-3:] == [None] * 3
        assert report.texts_redacted == 3
        roles = [c.role for c in team.contacts(fillers[6]) if c.email == "neu@y.example"]
        assert roles == ["Vertretung [erased]"]

"""A person erasing themselves with an address: the unit checks the address is theirs
through their memberships. On a store of 100,000 accounts a search of every account's
members takes long inside the unit, so it keeps to the accounts the searches before it
found and those whose audit log grew since, as the erasure's other searches do; a
membership gained or lost in between is still seen, on every backend."""

from __future__ import annotations

import pytest

from teamaccess import PermissionDenied, PermissionSet, Store
from teamaccess.testing import FrozenClock

from .test_privacy_texts_unlocked import PIA, PIA_EMAIL, Spy, build, every_account, make, names_her


def test_a_membership_gained_in_between_is_erased_and_nothing_searched_all(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make(store, clock)
    home, fillers = build(team)
    spy = Spy(monkeypatch, store)
    other = make(store, clock)
    joined = fillers[5]

    def between() -> None:
        inv = other.invite(joined, actor_id="f5", email=PIA_EMAIL, permissions=PermissionSet.of())
        other.accept_invitation(inv.token or "", user_id=PIA, email=PIA_EMAIL)

    spy.between = between

    report = team.erase_person(user_id=PIA, email=PIA_EMAIL, actor_id=PIA)

    searched = spy.searched()  # fails where a search inside looked at every account
    assert {home, joined} <= searched
    assert not searched & (set(fillers) - {joined})
    assert report.memberships == 2
    assert [m.user_id for m in team.members(joined)] == ["f5"]
    assert names_her(team, every_account(team)) == []


def test_the_address_lost_in_between_is_refused(
    store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make(store, clock)
    home, _ = build(team)
    spy = Spy(monkeypatch, store)
    other = make(store, clock)
    spy.between = lambda: other.remove_member(home, PIA, actor_id="olga")

    with pytest.raises(PermissionDenied, match="is not an address of user"):
        team.erase_person(user_id=PIA, email=PIA_EMAIL, actor_id=PIA)
    assert {name for name, _ in spy.inside} <= {"members_involving"}
    assert all(kept is not None for _, kept in spy.inside)

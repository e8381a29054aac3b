"""``MemoryStore`` in a big test suite: invite + accept with few and with many stored
invitations, interleaved, so the ratio shows what the store's size costs a call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teamaccess import MemoryStore, PermissionSet, TeamAccess

from ._data import Population, populate
from ._timing import compare, loop

GROWTH = 1.2  # flat: within noise of the small store


def _filled(invitations: int, team_on: Any) -> tuple[TeamAccess, Population]:
    """A store holding *invitations* accepted invitations (nine per account) and the
    members and contacts that go with them, all made through the public API."""
    team = team_on(MemoryStore())
    return team, populate(team, max(1, -(-invitations // 9)))


def invite_accept_growth(small: int, large: int, rounds: int, batch: int, team_on: Any) -> Any:
    """invite + accept on a store of *large* invitations against one of *small*.

    The small store is built afresh before every round (outside the timing), so it holds
    *small* invitations plus at most one batch; the large one only grows.
    """
    perms = PermissionSet.of("billing.view")
    big, big_pop = _filled(large, team_on)
    state: dict[str, Any] = {}
    counter = iter(range(10**9))

    def side(key: str) -> Any:
        def call(account_id: str, owner: str, email: str, user_id: str) -> None:
            team = state[key]
            inv = team.invite(account_id, actor_id=owner, email=email, permissions=perms)
            team.accept_invitation(inv.token, user_id=user_id, email=email)

        return loop(call)

    def fresh(pop: Population) -> list[tuple[str, str, str, str]]:
        out = []
        for _ in range(batch):
            n = next(counter)
            acc = pop.accounts[n % min(50, len(pop.accounts))]
            owner = pop.members[acc][0][0]
            out.append((acc, owner, f"new{n}@invitee{n % 97}.example", f"u{n}"))
        return out

    def batches(_round: int) -> tuple[list[Any], list[Any]]:
        state["large"] = big
        state["small"], small_pop = _filled(small, team_on)
        return fresh(big_pop), fresh(small_pop)

    return compare(
        f"invite + accept, MemoryStore, {9 * len(big_pop.accounts):,} invitations stored",
        side("large"),
        f"the same, {9 * max(1, -(-small // 9)):,} invitations stored",
        side("small"),
        batches,
        rounds=rounds,
    )


def run(cfg: Any, workdir: Path, team_on: Any) -> Any:
    return invite_accept_growth(
        cfg.memory_small, cfg.memory_large, cfg.rounds, cfg.slow_batch, team_on
    )

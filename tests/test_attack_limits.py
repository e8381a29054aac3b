"""A limit larger than a SQL integer means "all", on every backend: never a driver's
OverflowError (a page number far beyond the end reaches audit_log() from the web page)."""

from __future__ import annotations

from teamaccess import MemoryMailer, Store, TeamAccess
from teamaccess.testing import FrozenClock


def test_huge_limits(store: Store, clock: FrozenClock) -> None:
    team = TeamAccess(store, MemoryMailer(), secret_key="k", clock=clock, delivery="queue")
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
    team.add_contact(acc.id, actor_id="o", name="C", email="c@example.com",
                     categories=["general"])  # fmt: skip
    team.notify(acc.id, "general", subject="S", text="T")
    every = team.audit_log(acc.id, limit=1000)
    assert len(every) >= 2
    for limit in (2**63, 10**30):
        assert team.audit_log(acc.id, limit=limit) == every
    assert len(team.deliver_pending(limit=10**30)) == 2

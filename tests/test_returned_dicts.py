"""What a call returns is the caller's own: changing the metadata of a member or
invitation it got, or the details of an audit event a listener got, changes nothing
stored, on every backend.

Before, MemoryStore kept and handed out the very objects, so on the in-memory backend a
vendor test that changed ``member.metadata`` saw the change in every later read (the
invitation's metadata too, which the member's was the same dict as), where SQLite and
PostgreSQL never would: a test passed for a reason production lacks.
"""

from __future__ import annotations

from typing import Any

from teamaccess import Account, AuditEvent, PermissionSet, TeamAccess


class TestReturnedDicts:
    """Metadata and details a caller holds are copies."""

    def test_changing_returned_metadata_changes_nothing_stored(
        self, team: TeamAccess, account: Account
    ) -> None:
        inv = team.invite(account.id, actor_id="owner", email="x@example.com",
                          permissions=PermissionSet.of("billing.view"),
                          metadata={"tags": ["a"], "n": 1})  # fmt: skip
        assert inv.token is not None
        held: Any = inv.metadata
        held["n"] = 2
        member = team.accept_invitation(inv.token, user_id="x", email="x@example.com")
        held = member.metadata
        held["tags"].append("changed")
        held = team.get_member(account.id, "x").metadata
        held["n"] = 3
        held = team.members(account.id)[1].metadata
        held["extra"] = True

        assert team.get_member(account.id, "x").metadata == {"tags": ["a"], "n": 1}
        assert team.get_invitation(inv.id).metadata == {"tags": ["a"], "n": 1}

    def test_a_listener_changing_an_event_changes_nothing_stored(
        self, team: TeamAccess, account: Account
    ) -> None:
        def meddle(event: AuditEvent) -> None:
            details: Any = event.details
            details["name"] = "changed by a listener"

        team.add_listener(meddle)
        team.rename_account(account.id, actor_id="owner", name="Neu")
        [renamed] = [e for e in team.audit_log(account.id) if e.action == "account.renamed"]
        assert renamed.details == {"name": "Neu"}

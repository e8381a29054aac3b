"""remove_listener() takes back what add_listener() registered, so a test (or a panel)
that listens for a while on a long-lived TeamAccess leaves no listener behind; before,
there was no way to remove one."""

from __future__ import annotations

import pytest

from teamaccess import Account, AuditEvent, TeamAccess, ValidationError


class TestRemoveListener:
    """A removed listener hears nothing more; the others still do."""

    def test_removed_listener_is_not_called(self, team: TeamAccess, account: Account) -> None:
        heard: list[str] = []
        kept: list[str] = []

        def listener(event: AuditEvent) -> None:
            heard.append(event.action)

        team.add_listener(listener)
        team.add_listener(lambda event: kept.append(event.action))
        team.rename_account(account.id, actor_id="owner", name="Eins")
        team.remove_listener(listener)
        team.rename_account(account.id, actor_id="owner", name="Zwei")
        assert heard == ["account.renamed"]
        assert kept == ["account.renamed", "account.renamed"]

    def test_one_registration_goes_per_call(self, team: TeamAccess, account: Account) -> None:
        heard: list[str] = []
        team.add_listener(heard.append)  # type: ignore[arg-type]
        team.add_listener(heard.append)  # type: ignore[arg-type]
        team.remove_listener(heard.append)  # type: ignore[arg-type]
        team.rename_account(account.id, actor_id="owner", name="Eins")
        assert len(heard) == 1

    def test_unknown_listener_is_a_validation_error(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match=r"^this listener was not added"):
            team.remove_listener(print)

"""No escalation in time on the pages: a user whose own access ends sees that limit at
the date fields of the invite form and of a member's page, and a refusal (no end, a later
one, reactivating a member whose access outlasts theirs) is said at that field, in
English and German, with nothing written."""

from datetime import UTC, datetime, timedelta

import pytest

from teamaccess import PermissionSet

pytest.importorskip("flask")

from tests.web_panel import USERS, Panel, errors

#: anna's own access ends then (the panel's clock starts 2026-03-02 09:00 UTC)
ENDS = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
SAID = {
    "en": "Your own access ends on 2026-04-01 12:00 UTC, and the access you give ends no "
    "later. Choose an end on that day or before it.",
    "de": "Ihr eigener Zugang endet am 01.04.2026, 12:00 Uhr UTC; der Zugang, den Sie geben, "
    "endet spätestens dann. Wählen Sie ein Ende an diesem Tag oder davor.",
}
GRANT_REFUSED = {
    "en": "The access of buchhaltung@muster.de lasts beyond your own, which ends on "
    "2026-04-01 12:00 UTC. Give it an end on that day or before it under “Access” first, "
    "then grant more permissions.",
    "de": "Der Zugang von buchhaltung@muster.de reicht über Ihren eigenen hinaus, der am "
    "01.04.2026, 12:00 UTC endet. Geben Sie ihm zuerst unter „Zugriff“ ein Ende an diesem "
    "Tag oder davor, dann weitere Berechtigungen.",
}
HINT = {
    "en": "Your own access ends on 2026-04-01 12:00 UTC: choose that day or an earlier one.",
    "de": "Ihr eigener Zugang endet am 01.04.2026, 12:00 UTC: Wählen Sie diesen Tag oder "
    "einen früheren.",
}


@pytest.fixture
def panel() -> Panel:
    """anna manages users until ENDS; bea is a member without an end."""
    panel = Panel()
    panel.join("anna", "users.manage", "billing.view")
    panel.team.set_access_until(panel.account, "anna", ENDS, actor_id="max")
    panel.join("bea", "billing.view")
    return panel


@pytest.mark.parametrize("language", ["en", "de"])
class TestTheInviteForm:
    def test_shows_the_limit(self, panel: Panel, language: str) -> None:
        _, body = panel.get("anna", panel.users(), language)
        assert HINT[language] in body
        # the owner has no end, and is told so
        _, body = panel.get("max", panel.users(), language)
        assert HINT[language] not in body

    @pytest.mark.parametrize("until", ["", "2026-04-02"])
    def test_refuses_no_end_or_a_later_one_at_the_field(
        self, panel: Panel, language: str, until: str
    ) -> None:
        sent = len(panel.mailer.outbox)
        status, body, _ = panel.post("anna", panel.users() + "/invite", {
            "email": "zweite@agentur.de", "scope": "selected", "permission": ["billing.view"],
            "until": until,
        }, language)  # fmt: skip
        assert status == 400
        assert errors(body) == [SAID[language]]
        assert 'id="ta-until-error"' in body
        assert panel.team.pending_invitations(panel.account) == []
        assert len(panel.mailer.outbox) == sent

    def test_an_end_on_that_day_is_sent(self, panel: Panel, language: str) -> None:
        status, _, _ = panel.post("anna", panel.users() + "/invite", {
            "email": "zweite@agentur.de", "scope": "selected", "permission": ["billing.view"],
            "until": "2026-04-01",
        }, language)  # fmt: skip
        assert status == 303
        inv = panel.team.pending_invitations(panel.account)[0]
        assert inv.access_until == datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("language", ["en", "de"])
class TestTheMemberPage:
    def test_shows_the_limit_and_offers_no_removing_of_the_end(
        self, panel: Panel, language: str
    ) -> None:
        panel.team.set_access_until(panel.account, "bea", ENDS, actor_id="max")
        _, body = panel.get("anna", f"{panel.users()}/bea", language)
        assert HINT[language] in body
        assert 'value="clear"' not in body
        _, body = panel.get("max", f"{panel.users()}/bea", language)
        assert HINT[language] not in body
        assert 'value="clear"' in body

    @pytest.mark.parametrize(
        "data", [{"action": "set", "until": "2026-05-01"}, {"action": "clear"}]
    )
    def test_refuses_a_later_end_or_none_at_the_field(
        self, panel: Panel, language: str, data: dict[str, object]
    ) -> None:
        panel.team.set_access_until(panel.account, "bea", ENDS - timedelta(days=1),
                                    actor_id="max")  # fmt: skip
        before = panel.team.get_member(panel.account, "bea")
        status, body, _ = panel.post("anna", f"{panel.users()}/bea/access-until", data, language)
        assert status == 400
        assert errors(body) == [SAID[language]]
        assert 'id="ta-until-error"' in body
        assert panel.team.get_member(panel.account, "bea") == before

    def test_refuses_reactivating_a_member_without_end_at_the_field(
        self, panel: Panel, language: str
    ) -> None:
        panel.team.suspend_member(panel.account, "bea", actor_id="max")
        status, body, _ = panel.post("anna", f"{panel.users()}/bea/reactivate", {}, language)
        assert status == 400
        assert errors(body) == [SAID[language]]
        assert 'id="ta-until-error"' in body
        assert panel.team.get_member(panel.account, "bea").status == "suspended"
        # with an end on anna's last day set first, it works
        status, _, _ = panel.post("anna", f"{panel.users()}/bea/access-until",
                                  {"action": "set", "until": "2026-04-01"}, language)  # fmt: skip
        assert status == 303
        status, _, _ = panel.post("anna", f"{panel.users()}/bea/reactivate", {}, language)
        assert status == 303
        assert panel.team.get_member(panel.account, "bea").status == "active"

    def test_refuses_granting_more_to_a_member_without_end(
        self, panel: Panel, language: str
    ) -> None:
        status, body, _ = panel.post("anna", f"{panel.users()}/bea", {
            "scope": "selected", "permission": ["billing.view", "users.manage"],
        }, language)  # fmt: skip
        assert status == 400
        # the permissions form has no date field: the message sends the user to the one
        # that has, under "Access", rather than asking to "choose an end" here
        assert (
            f'class="ta-error-box" role="alert" tabindex="-1" autofocus>{GRANT_REFUSED[language]}<'
            in body
        )
        member = panel.team.get_member(panel.account, "bea")
        assert member.permissions == PermissionSet.of("billing.view")
        assert USERS["bea"] == member.email

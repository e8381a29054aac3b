"""Attack round 20 on the words of a refusal in time: an end seconds after the actor's
own was refused as "an end of 2026-02-04 09:00 UTC: its own access ends on 2026-02-04
09:00 UTC ...; give an end on or before 2026-02-04 09:00 UTC", the same minute three
times, so the message contradicted itself. Each instant is written exactly: to the
minute, or to the second (and below) where the minute would lose some."""

from datetime import timedelta

import pytest
from tests.conftest import START, add_member

from teamaccess import Account, PermissionDenied, PermissionSet, TeamAccess

P = PermissionSet.of
ENDS = START + timedelta(days=30)


@pytest.mark.parametrize(
    ("later", "given"),
    [
        (timedelta(seconds=30), ":30"),
        (timedelta(microseconds=500), ":00.000500"),
        (timedelta(minutes=1), ""),  # another minute: to the minute, as before
    ],
)
def test_an_end_just_after_the_actors_reads_apart_from_it(
    team: TeamAccess, account: Account, later: timedelta, given: str
) -> None:
    add_member(team, account.id, "temp", P("users.manage", "billing.view"))
    team.set_access_until(account.id, "temp", ENDS, actor_id="owner")
    with pytest.raises(PermissionDenied) as exc:
        team.invite(account.id, actor_id="temp", email="me2@example.org",
                    permissions=P("billing.view"), access_until=ENDS + later)  # fmt: skip
    text = str(exc.value)
    assert f"an end of {ENDS + later:%Y-%m-%d %H:%M}{given} UTC" in text
    assert f"its own access ends on {ENDS:%Y-%m-%d %H:%M} UTC" in text
    assert f"give an end on or before {ENDS:%Y-%m-%d %H:%M} UTC" in text
    assert exc.value.access_until == ENDS


def test_an_actors_end_between_minutes_is_written_exactly(
    team: TeamAccess, account: Account
) -> None:
    add_member(team, account.id, "temp", P("users.manage", "billing.view"))
    own = ENDS + timedelta(seconds=45)
    team.set_access_until(account.id, "temp", own, actor_id="owner")
    later = own + timedelta(seconds=5)
    with pytest.raises(PermissionDenied) as exc:
        team.invite(account.id, actor_id="temp", email="me2@example.org",
                    permissions=P("billing.view"), access_until=later)  # fmt: skip
    assert f"give an end on or before {own:%Y-%m-%d %H:%M:%S} UTC" in str(exc.value)
    assert f"with an end of {own:%Y-%m-%d %H:%M}:50 UTC" in str(exc.value)

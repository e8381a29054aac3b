"""Subjects that Python 3.11's header folder wrote wrong.

- A long non-ASCII subject ending in white space was folded with a last line of white
  space only, which the last check refuses as a damaged header: the mail was cancelled
  unsent. The builder drops the white space at the edges.
- At a fold between two encoded words the folder could drop the space between two words:
  the last check refused the mail sent now, and mail sent from the outbox arrived with
  the words run together. The builder writes such a subject as encoded words itself.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, TeamAccess, ValidationError
from teamaccess._mail.gate import check_stored, check_wire
from teamaccess._mail.mailers import build_message, parse_stored

FOLDED_TRAILING = "Über [erased] Über [erased] Über [erased] "


def subject_read_back(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])


@pytest.mark.parametrize("delivery", ["now", "queue"])
def test_a_notice_whose_subject_ends_in_a_space_is_delivered(tmp_path: Path, delivery: str) -> None:
    mailer = MemoryMailer()
    team = TeamAccess(SQLiteStore(tmp_path / "t.db"), mailer, secret_key=SECRET,
                      delivery=delivery)  # fmt: skip
    try:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.add_contact(acc.id, actor_id="o", name="K", email="k@example.org",
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject=FOLDED_TRAILING, text="Guten Tag")
        if delivery == "queue":
            rows = team.deliver_pending()
            assert {(r.status, r.last_error) for r in rows} == {("sent", None)}
        assert sorted(str(m["To"]) for m in mailer.outbox) == ["k@example.org", "o@example.org"]
        for message in mailer.outbox:
            raw = message.as_bytes(policy=email.policy.SMTP)
            assert subject_read_back(raw) == FOLDED_TRAILING.strip()
    finally:
        team.close()


_PIECES = st.sampled_from(
    ["Über", "Rechnung", "für", "März", "日本語", "Ω", "x" * 30, "a", "[erased]",
     " ", "  ", "\u3000", "\xa0", "\t"]
)  # fmt: skip


RUN_TOGETHER = (
    "Märzfür Rechnung[erased]株式会社株式会社Über 日本語日本語[erased] 株式会社 für Über "
    "日本語 Rechnung株式会社 Ω株式会社日本語Ω [erased]株式会社 ΩΩ"
)


@pytest.mark.parametrize("delivery", ["now", "queue"])
def test_a_notice_whose_folded_subject_lost_a_space_is_delivered_whole(
    tmp_path: Path, delivery: str
) -> None:
    mailer = MemoryMailer()
    team = TeamAccess(SQLiteStore(tmp_path / "t.db"), mailer, secret_key=SECRET,
                      delivery=delivery)  # fmt: skip
    try:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.notify(acc.id, "billing", subject=RUN_TOGETHER, text="Guten Tag")
        if delivery == "queue":
            assert [r.status for r in team.deliver_pending()] == ["sent"]
        [message] = mailer.outbox
        raw = message.as_bytes(policy=email.policy.SMTP)
        assert subject_read_back(raw) == RUN_TOGETHER
        assert max(map(len, raw.split(b"\r\n"))) <= 78
    finally:
        team.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_PIECES, min_size=1, max_size=40).map("".join))
@example(FOLDED_TRAILING)
@example(RUN_TOGETHER)
@example("日本語Ω" + "x" * 30 + "\t\tÜber")
@example("März \xa0 \u3000 \xa0  " + "x" * 30 + "   ")
def test_every_built_subject_passes_the_last_check_as_stored(subject: str) -> None:
    subject = subject[:200]
    message = build_message(
        sender="Panel <noreply@panel.example>", to="k@example.org", subject=subject,
        text="x", html=None, message_id="<m1@panel.example>", language="de",
    )  # fmt: skip
    raw = message.as_bytes()
    check_stored(raw)  # raises MailRefused on a line of white space only
    check_wire(parse_stored(raw), "k@example.org")
    header = raw.split(b"\n\n", 1)[0]
    assert all(line.strip() for line in header.split(b"\n"))
    # The stdlib may add or drop a space between encoded words on reading back.
    assert subject_read_back(raw).split() == subject.split()


@pytest.mark.parametrize("subject", ["Rechnung\n", "\r\nRechnung", "Über\u2028", "x\x00 "])
def test_a_line_break_at_an_edge_is_refused_not_dropped(subject: str) -> None:
    with pytest.raises(ValidationError, match=r"^mail header Subject contains a line break"):
        build_message(
            sender="Panel <noreply@panel.example>", to="k@example.org", subject=subject,
            text="x", html=None, message_id="<m1@panel.example>", language="de",
        )  # fmt: skip

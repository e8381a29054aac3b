"""A notice whose text or HTML holds a NUL is refused before anything is written or sent:
no mail may carry one (RFC 5322), and Python's email package writes it raw into a 7bit
part."""

from __future__ import annotations

import pytest

from teamaccess import Account, MemoryMailer, TeamAccess, ValidationError
from teamaccess._mail.mailers import build_message


def test_the_stdlib_writes_a_nul_raw() -> None:
    # Why the rule exists: the builder alone lets it through onto the wire.
    message = build_message(
        sender="Panel <noreply@panel.example>", to="b@example.com", subject="x",
        text="a\0b", html=None, message_id="<m@panel.example>", language="en",
    )  # fmt: skip
    assert b"a\0b" in message.as_bytes()


@pytest.mark.parametrize("where", ["text", "html"])
def test_notify_refuses_a_nul(
    team: TeamAccess, account: Account, mailer: MemoryMailer, where: str
) -> None:
    team.add_contact(account.id, actor_id="owner", name="B", email="b@example.com",
                     categories=["billing"])  # fmt: skip
    before = team.audit_log(account.id)
    body = {"text": "Your invoice", "html": None, where: "Your\0invoice"}

    with pytest.raises(ValidationError, match=f"{where} holds a NUL character") as caught:
        team.notify(account.id, "billing", subject="Invoice", **body)  # type: ignore[arg-type]

    assert "remove it" in str(caught.value)
    assert mailer.outbox == []
    assert team.pending_messages() == []
    assert team.audit_log(account.id) == before

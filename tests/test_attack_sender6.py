"""A sender whose address a mail server would not read as the envelope sender is refused
with a message that says so, not one about the name's length."""

from __future__ import annotations

import pytest

from teamaccess import MemoryMailer, MemoryStore, TeamAccess, ValidationError

from .conftest import SECRET


@pytest.mark.parametrize("sender", ["Shop <noreply@[192.0.2.1]>", "noreply@[IPv6:2001:db8::1]"])
def test_an_address_literal_sender_is_refused_for_what_it_is(sender: str) -> None:
    with pytest.raises(ValidationError, match=r"envelope sender \(MAIL FROM\)") as caught:
        TeamAccess(
            MemoryStore(), MemoryMailer(), secret_key=SECRET, sender=sender,
            accept_url="https://panel.example.net/accept?token={token}",
        )  # fmt: skip
    assert "shorten the name" not in str(caught.value)

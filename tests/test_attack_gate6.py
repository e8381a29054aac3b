"""The last check before sending refuses a line over 998 characters, as the builder does
for an added header: a server refuses such a line or breaks it where it likes."""

from __future__ import annotations

import pytest

from teamaccess import ValidationError
from teamaccess._mail.gate import MailRefused, check_outgoing

from .test_added_headers import built


@pytest.mark.parametrize("length", [998, 999, 1100])
def test_an_unfoldable_reply_to_is_refused_by_both(length: int) -> None:
    value = "x" * length
    with pytest.raises(ValidationError, match="Reply-To"):
        built({"Reply-To": value})
    message = built(None)
    message["Reply-To"] = value
    with pytest.raises(MailRefused, match="longer than 998 characters"):
        check_outgoing(message, "kunde@example.org")


def test_a_long_foldable_reply_to_passes_both() -> None:
    value = ", ".join(f"Team {i} <team{i}@example.org>" for i in range(40))
    built({"Reply-To": value})
    message = built(None)
    message["Reply-To"] = value
    assert check_outgoing(message, "kunde@example.org") == "kunde@example.org"

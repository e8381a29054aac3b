"""A configured sender is sent from the address it names, or refused: a sender string that
holds more than one address, or a group, must not have its mail go out from another
address (the envelope sender follows the From header) or under a shortened name."""

from __future__ import annotations

import email
import email.policy

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, TeamAccess, ValidationError


def from_on_the_wire(sender: str) -> tuple[str, str]:
    """The display name and address a reader finds in the invitation mail's From."""
    mailer = MemoryMailer()
    team = TeamAccess(
        MemoryStore(), mailer, secret_key=SECRET, sender=sender,
        accept_url="https://panel.example.org/accept",
    )  # fmt: skip
    account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    team.invite(account.id, actor_id="o", email="x@example.org", permissions=PermissionSet.all())
    wire = mailer.outbox[-1].as_bytes(policy=email.policy.SMTP)
    back = email.message_from_bytes(wire, policy=email.policy.default)
    (address,) = back["From"].addresses
    return address.display_name, address.addr_spec


def test_a_quoted_name_that_looks_like_an_address_is_a_name() -> None:
    assert from_on_the_wire('"support@acme.example" <noreply@acme.example>') == (
        "support@acme.example",
        "noreply@acme.example",
    )


@pytest.mark.parametrize(
    "sender",
    [
        # an unquoted address as the name: the mail went from it, not from noreply@
        "support@acme.example <noreply@acme.example>",
        # ... and this one from "Support help"@other.example
        "Support help@other.example <noreply@acme.example>",
        # two addresses: the first one was taken
        "Jörg <noreply@acme.example> <other@acme.example>",
        # a colon makes the name a group's: "ACME:" was dropped from the name
        "ACME: Billing <billing@acme.example>",
    ],
)
def test_a_sender_a_reader_splits_otherwise_is_refused(sender: str) -> None:
    with pytest.raises(ValidationError, match="quote"):
        from_on_the_wire(sender)

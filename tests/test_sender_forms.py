"""A ``sender`` the address parser would cut down is refused when the service is made,
with how to write it; one that is plainly meant goes out as meant.

Group syntax (``Shop: <a@b>;``) went out as ``From: a@b``, the name dropped without a
word; a second address, or text after the address, was dropped the same way.
"""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, MemoryStore, PermissionSet, TeamAccess, ValidationError
from teamaccess._mail.mailers import build_message


def make(sender: str, mailer: MemoryMailer | None = None) -> TeamAccess:
    return TeamAccess(
        MemoryStore(), MemoryMailer() if mailer is None else mailer, secret_key=SECRET,
        sender=sender,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "written"),
    [
        ("Shop: <shop@example.com>;", "'Shop <shop@example.com>'"),
        ("Shop: <shop@example.com>", "'Shop <shop@example.com>'"),
        ("Shop: shop@example.com;", "'Shop <shop@example.com>'"),
        ("Shop:shop@example.com", "'Shop <shop@example.com>'"),
        ("Shop: Team <shop@example.com>;", "'Shop <shop@example.com>'"),
        ("Shop:: <shop@example.com>", "'Shop <shop@example.com>'"),
        ("Müller: <shop@example.com>;", "'Müller <shop@example.com>'"),
    ],
)
def test_a_group_is_refused_with_how_to_write_it(sender: str, written: str) -> None:
    with pytest.raises(ValidationError, match="written as a group") as info:
        make(sender)
    assert f"like {written}" in str(info.value)
    # the builder, which vendors call too, refuses it the same way
    with pytest.raises(ValidationError, match="written as a group"):
        build_message(
            sender=sender, to="bob@example.org", subject="s", text="t", html=None,
            message_id="<m@example.com>", language="en",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("sender", "match"),
    [
        ("shop@example.com, billing@example.com", "names 2 addresses"),
        ("Shop <shop@example.com>, billing@example.com", "names 2 addresses"),
        ("Shop: <shop@example.com>, <billing@example.com>;", "written as a group"),
        ("Shop <shop@example.com>;", "text after its address"),
        ("Shop <shop@example.com> Team", "text after its address"),
        ("Shop: ;", "must hold an address"),
        ("undisclosed-recipients:;", "must hold an address"),
    ],
)
def test_what_would_lose_a_part_is_refused(sender: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        make(sender)


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ("Shop <shop@example.com>", "Shop"),
        ('"Shop: Billing" <shop@example.com>', "Shop: Billing"),
        ("shop@example.com (Shop)", "Shop"),  # the old form: the name in a comment
        ("Shop (Support) <shop@example.com>", "Shop (Support)"),
        ("Shop <shop@example.com>,", "Shop"),  # a trailing comma separates nothing
        ("shop@example.com", ""),
    ],
)
def test_what_is_plainly_meant_goes_out_as_meant(sender: str, name: str) -> None:
    mailer = MemoryMailer()
    team = make(sender, mailer)
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
    team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet())
    [built] = mailer.outbox
    wire = message_from_bytes(built.as_bytes(policy=policy.SMTP), policy=policy.default)
    [address] = wire["From"].addresses
    assert (address.display_name, address.addr_spec) == (name, "shop@example.com")

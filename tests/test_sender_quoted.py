"""A long ASCII sender name that must be quoted (a colon, a semicolon, a comma, a
parenthesis, a quote...) is written as one quoted string folded at its spaces.

Python 3.11's folder broke such a name into words outside the quotes once it did not
fit on a line: read back, a colon or semicolon made it a group, a comma two addresses,
parentheses a comment; the last check refused every mail, so the service refused the
sender when it was made. A fold inside a quoted string is white space kept in it, and
every reader unfolds it back to the name. Tested on the wire, parsed back, and through
a real SMTP server, sent now and from the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.headerregistry import Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer
from tests.test_envelope_send_message import SendMessageMailer

from teamaccess import (
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SmtpMailer,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.gate import check_outgoing
from teamaccess._mail.mailers import build_message, wire_policy

REGION = "Billing and Invoicing Department of Example Hosting GmbH and Co KG North Region"
NAMES = [
    f"Shop: {REGION}", f"Shop; {REGION}", f"{REGION}: Shop", f"{REGION}, Shop",
    f"{REGION} (Shop)", f'{REGION} "Shop"', f"{REGION} a\\b", f"{REGION} <x@y.example>",
    f"Shop: {REGION} {REGION}",
]  # fmt: skip
ADDRESS = "noreply@panel.example.com"


def quoted(name: str) -> str:
    return str(Address(display_name=name, addr_spec=ADDRESS))


def from_lines(wire: bytes) -> list[bytes]:
    head = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(b"From:"))
    end = next(i for i in range(start + 1, len(head)) if not head[i].startswith(b" "))
    return head[start:end]


def read_back(sender: str) -> Address:
    """The sender's one address as a mail program reads it: a plain mail built with it,
    passed by the last check, written as SMTP sends it and parsed back."""
    message = build_message(
        sender=sender, to="kunde@example.org", subject="s", text="t", html=None,
        message_id="<m1@panel.example.com>", language="de",
    )  # fmt: skip
    check_outgoing(message, "kunde@example.org")
    read = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    [address] = read["From"].addresses
    return address


@pytest.mark.parametrize("name", NAMES)
def test_written_as_one_quoted_string_and_read_back(name: str) -> None:
    sender = quoted(name)
    message = build_message(
        sender=sender, to="kunde@example.org", subject="Rechnung", text="Hallo",
        html="<p>Hallo</p>", message_id="<m1@panel.example.com>", language="de",
    )  # fmt: skip
    check_outgoing(message, "kunde@example.org")
    for writer in (wire_policy(False), policy.SMTP):
        wire = message.as_bytes(policy=writer)
        lines = from_lines(wire)
        assert len(lines) > 1  # folded
        assert all(len(line) <= 78 for line in lines)
        assert lines[0].startswith(b'From: "')
        assert lines[-1].endswith(f'" <{ADDRESS}>'.encode())
        read = message_from_bytes(wire, policy=policy.default)["From"]
        [address] = read.addresses
        assert (address.display_name, address.addr_spec) == (name, ADDRESS)
        assert len(read.groups) == 1
        assert read.groups[0].display_name is None


@pytest.fixture(scope="module")
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.mark.parametrize("name", [NAMES[0], NAMES[3], NAMES[5]])
@pytest.mark.parametrize("how", ["now", "queue", "send_message"])
def test_sent_through_a_real_server(
    name: str, how: str, server: SmtpServer, tmp_path: Path
) -> None:
    mailer = (
        SendMessageMailer(server) if how == "send_message"
        else SmtpMailer(host=server.host, port=server.port)
    )  # fmt: skip
    team = TeamAccess(
        SQLiteStore(tmp_path / "team.db"), mailer, secret_key=SECRET, sender=quoted(name),
        delivery="queue" if how == "queue" else "now",
        accept_url="https://panel.example.net/a?t={token}",
    )  # fmt: skip
    acc = team.create_account(name="Muster", owner_id="o", owner_email="bob@example.org")
    before = len(server.received)
    team.invite(acc.id, actor_id="o", email="neu@example.org", permissions=PermissionSet())
    team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag", html="<p>Tag</p>")
    if how == "queue":
        team.deliver_pending()
    assert team.pending_messages() == []
    got = server.received[before:]
    assert len(got) == 2
    for received in got:
        assert received.mail_from == ADDRESS
        read = message_from_bytes(received.content, policy=policy.default)["From"]
        [address] = read.addresses
        assert (address.display_name, address.addr_spec) == (name, ADDRESS)


_WORD = st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
    st.sampled_from(["Shop:", ";", ",", "(x)", '"', "\\", "<a@b.example>", "GmbH", "x" * 40]),
)
# Without encoded-word syntax ("=?" ... "?="), which the service refuses in any sender
# for its own reason (test_mail_safety).
NAME_WORDS = st.lists(_WORD, min_size=2, max_size=16).map(" ".join).filter(lambda n: "=?" not in n)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(NAME_WORDS)
@example(f"Shop: {REGION}")
@example("x" * 40 + ": " + "y" * 40)
def test_every_long_name_is_accepted_and_reads_back(name: str) -> None:
    sender = quoted(name)
    try:
        team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, sender=sender)
    except ValidationError:
        # Only a word too long for a line may be refused (one of 72 characters or more,
        # with its quotes), or a name the sender parser reads otherwise (see
        # test_sender_forms).
        assert max(map(len, name.split(" "))) >= 70 or quoted(name) != sender
        return
    del team
    address = read_back(sender)
    assert (address.display_name, address.addr_spec) == (name, ADDRESS)

"""Erasure in mail waiting for others, sent from a sender with a long name that is not
ASCII: the builder writes such a name as encoded words split over lines, which Python
3.11's parser reads back with a space more at the split. The rewritten message keeps the
stored ``From`` header as it was, byte for byte, and goes out, to a real SMTP server,
instead of being cancelled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.smtp_server import SmtpServer

from teamaccess import SYSTEM, SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.mailers import parse_stored
from teamaccess.testing import FrozenClock

from .conftest import SECRET

PIA = "pia.person@example.org"
ERASED = "[erased]"
#: Long names, not ASCII, that the builder folds into two lines of encoded words.
NAMES = [
    "Kundenservice der Müller-Lüdenscheidt Gärtnereibedarf Überseehandel",
    "株式会社 日本語テスト販売 お客様サポートセンター 東京本社 "
    "カスタマーサービス部門 第二営業課 担当窓口 山田",
]
#: A recipient whose address is ASCII, and one whose local part is not (a UTF-8 mail).
RECIPIENTS = ["other@other.example", "zoë@other.example"]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


def from_field(source: bytes) -> bytes:
    """The ``From`` header of *source* as it is written, folded lines and all."""
    head = source.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    match = re.search(rb"^From:.*\n(?:[ \t].*\n)*", head + b"\n", re.MULTILINE)
    assert match is not None
    return match.group()


def display_name(field: bytes) -> str:
    """The name in *field* (a ``From`` header) as an RFC 2047 reader decodes it."""
    value = field.decode("utf-8").removeprefix("From:").replace("\n", "")
    return str(make_header(decode_header(value.rsplit("<", 1)[0].strip())))


@pytest.mark.parametrize("name", NAMES, ids=["german", "japanese"])
def test_a_long_sender_name_that_is_not_ascii(
    tmp_path: Path, clock: FrozenClock, server: SmtpServer, name: str
) -> None:
    sender = f"{name} <noreply@panel.example.net>"
    team = TeamAccess(
        SQLiteStore(tmp_path / "teamaccess.db"), SmtpMailer(server.host, server.port),
        secret_key=SECRET, clock=clock, pseudonym_key="k", delivery="queue", sender=sender,
        accept_url="https://panel.example.net/accept?token={token}",
    )  # fmt: skip
    acc = team.create_account(name="Shop", owner_id="olga", owner_email="olga@shop.example").id
    for i, address in enumerate([PIA, *RECIPIENTS]):
        team.add_contact(acc, actor_id="olga", name=f"C{i}", email=address, categories=["billing"])
    team.notify(acc, "billing", subject=f"Neu: {PIA}", text=f"Bitte an {PIA} schreiben.\n")
    before = {m.recipient: m.message for m in team.pending_messages()}
    assert set(before) == {"olga@shop.example", PIA, *RECIPIENTS}
    for source in before.values():
        assert source is not None
        # Split over lines: the case Python 3.11 reads back with a space more.
        assert from_field(source).count(b"=?utf-8?") >= 2
        assert display_name(from_field(source)) == name

    report = team.erase_person(email=PIA, actor_id=SYSTEM)

    assert (report.messages_redacted, report.messages_cancelled) == (3, 0)
    assert [r.status for r in team.deliver_pending()] == ["sent"] * 3
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(
        ["olga@shop.example", *RECIPIENTS]
    )
    for received in server.received:
        to = received.rcpt_tos[0]
        was = before[to]
        assert was is not None
        # On the wire: the From header as it was stored, and read as the name.
        assert from_field(received.content) == from_field(was)
        assert display_name(from_field(received.content)) == name
        back = message_from_bytes(received.content, policy=policy.SMTPUTF8)
        assert isinstance(back, EmailMessage)
        assert str(back["From"]) == str(parse_stored(was)["From"])
        assert PIA not in received.content.decode("utf-8")
        assert "".join(str(back["Subject"]).split()) == f"Neu:{ERASED}"
        body = back.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert text.startswith(f"Bitte an {ERASED} schreiben.\n")

"""A long subject in SMTPUTF8 mail is folded within 78 bytes a line.

Python 3.11's folder measures a line in characters: a UTF-8 subject went out on a line of
up to 78 characters, each up to 4 bytes (RFC 5322: a line SHOULD be at most 78 bytes).
The builder folds such a subject at its spaces by bytes, and writes one that cannot be
folded so (CJK or emoji without spaces) as encoded words. Checked on the bytes a real SMTP
server receives, queued and sent at once, and read back as the same text.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import SmtpMailer, SQLiteStore, TeamAccess
from teamaccess._mail.gate import check_stored, check_wire
from teamaccess._mail.mailers import build_message, parse_stored

#: A recipient whose local part is not ASCII: the mail is built for SMTPUTF8.
ZOE = "zoë@kunde.example"

SUBJECTS = {
    "german": "Ihre Rechnung für März: Änderungen an der Zahlungsweise, Bestätigung und "
    "Rückfragen zu Gebühren, Mahnstufen und Überweisungen an die Buchhaltung",
    "greek": "Ενημέρωση λογαριασμού: η διεύθυνση χρέωσης άλλαξε και χρειάζεται "
    "επιβεβαίωση από εσάς σήμερα",
    "cjk-no-spaces": "お客様のアカウントの請求先住所が変更されましたのでご確認くださいますよう"
    "お願い申し上げます",
    "emoji": "🎉" * 30 + " Rechnung bezahlt " + "✅🧾" * 20,
    "emoji-words": " ".join(["🎉🎉🎉 Danke"] * 12),
    "two-byte-letters": "ä" * 30 + " " + "ö" * 10,  # 41 characters, 82 bytes
}


def header_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    return head.replace(b"\r\n", b"\n").split(b"\n")


def assert_wire(raw: bytes, subject: str) -> None:
    for line in header_lines(raw):
        assert len(line) <= 78, line
    back = message_from_bytes(raw, policy=policy.SMTPUTF8)
    assert str(back["Subject"]) == subject


@pytest.mark.parametrize("name", SUBJECTS)
def test_built_and_stored_forms(name: str) -> None:
    subject = SUBJECTS[name]
    msg = build_message(
        sender="Panel <noreply@panel.example>", to=ZOE, subject=subject, text="Guten Tag",
        html=None, message_id="<x@panel.example>", language="de",
    )  # fmt: skip
    stored = msg.as_bytes()
    assert_wire(stored, subject)
    check_stored(stored)
    check_wire(parse_stored(stored), ZOE)
    assert str(parse_stored(stored)["Subject"]) == subject
    if name in ("german", "greek", "emoji-words", "two-byte-letters"):
        # Folded at its spaces, the text stays UTF-8 as typed: no encoded word.
        assert b"=?" not in stored
        assert subject.split(" ")[0].encode() in stored


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


@pytest.mark.parametrize("delivery", ["now", "queue"])
def test_received_by_a_real_server(tmp_path: Path, server: SmtpServer, delivery: str) -> None:
    team = TeamAccess(
        SQLiteStore(tmp_path / "t.db"), SmtpMailer(server.host, server.port),
        secret_key=SECRET, delivery=delivery, sender="Panel <noreply@panel.example.net>",
        accept_url="https://panel.example.net/accept?token={token}",
    )  # fmt: skip
    try:
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org").id
        team.add_contact(acc, actor_id="o", name="Zoë", email=ZOE, categories=["billing"])
        for subject in SUBJECTS.values():
            team.notify(acc, "billing", subject=subject, text="Guten Tag")
        if delivery == "queue":
            assert {r.status for r in team.deliver_pending()} == {"sent"}
        received = [r for r in server.received if r.rcpt_tos == [ZOE]]
        assert len(received) == len(SUBJECTS)
        for got, subject in zip(received, SUBJECTS.values(), strict=True):
            assert_wire(got.content, subject)
    finally:
        team.close()

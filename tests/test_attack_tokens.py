"""Attacks on the accept token: a mail server that quotes the whole message in its
refusal, on the first send, a retry and a resend; the token must be in no stored error
text, no log record (DEBUG included), no exception message and no CLI output."""

from __future__ import annotations

import base64
import logging
import re
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import quote

import pytest

from teamaccess import DeliveryFailed, MemoryMailer, PermissionSet, Store, TeamAccess
from teamaccess.testing import FrozenClock

from .conftest import SECRET


class EchoMailer(MemoryMailer):
    """Refuses every message while failing, quoting all of it in every form a server or
    a library might: raw, its wire bytes, base64 and URL-quoted."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True
        self.seen: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.seen.append(message)
        if not self.failing:
            super().send(message)
            return
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        raw = message.as_bytes()
        raise ConnectionError(
            f"552 message refused: {text!r} {raw.decode('ascii', 'replace')} "
            f"{base64.b64encode(text.encode()).decode()} {quote(text)}"
        )


def tokens_of(messages: list[EmailMessage]) -> set[str]:
    found: set[str] = set()
    for message in messages:
        body = message.get_body(("plain",))
        assert body is not None
        for token in re.findall(r"token=([A-Za-z0-9_\-.~%]+)", body.get_content()):
            found.add(token)
    assert found
    return found


def pieces(token: str) -> set[str]:
    # any 16 characters of it in a row
    return {token[i : i + 16] for i in range(len(token) - 15)}


def test_no_token_anywhere(
    store: Store, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mailer = EchoMailer()
    team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock,
                      accept_url="https://shop.example.org/accept?token={token}")  # fmt: skip
    acc = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
    texts: list[str] = []
    with pytest.raises(DeliveryFailed) as failed:
        team.invite(acc.id, actor_id="o", email="i@example.com", permissions=PermissionSet.all())
    texts += [str(failed.value), repr(failed.value), repr(failed.value.invitation)]
    clock.advance(timedelta(hours=1))
    for row in team.deliver_pending():
        texts += [str(row.last_error), repr(row)]
    clock.advance(timedelta(hours=1))
    try:
        team.resend_invitation(failed.value.invitation.id, actor_id="o")
    except DeliveryFailed as exc:
        texts += [str(exc), repr(exc)]
    texts += [repr(m) + str(m.last_error) for m in team.pending_messages()]
    texts += [repr(i) for i in team.invitations(acc.id)]
    texts += [repr(e) for e in team.audit_log(acc.id, limit=100)]
    texts.append(str(team.export_person(email="i@example.com")))
    for record in caplog.records:
        texts += [record.getMessage(), str(record.args), str(record.exc_info)]
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert len(mailer.seen) >= 3
    everything = "\n".join(texts)
    assert "552 message refused" in everything or "withheld" in everything
    for token in tokens_of(mailer.seen):
        for piece in pieces(token):
            assert piece not in everything
        assert base64.b64encode(token.encode()).decode()[:16] not in everything

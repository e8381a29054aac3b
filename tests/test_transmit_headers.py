"""``SmtpMailer`` takes the envelope sender of a checked mail from its headers in one
pass: held to the former three reads (``get_all("Resent-Date")``, ``"Sender" in``, then
``message["Sender"]`` or ``message["From"]``), kept here as the oracle."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teamaccess._mail.gate import _envelope_sender
from teamaccess._mail.mailers import build_message, wire_policy
from teamaccess._mail.smtp import _transmit


class _Recorder:
    """An SMTP connection that notes how it was asked to send."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def send_message(self, message: EmailMessage, to_addrs: Any = None) -> dict[str, Any]:
        self.calls.append(("send_message", to_addrs))
        return {}

    def sendmail(self, from_addr: str, to_addrs: Any, msg: bytes, *options: Any) -> dict[str, Any]:
        self.calls.append(("sendmail", from_addr, tuple(to_addrs), msg, options))
        return {}

    def ehlo_or_helo_if_needed(self) -> None:
        self.calls.append(("ehlo",))

    def has_extn(self, name: str) -> bool:
        return True


def _old_transmit(
    smtp: Any, message: EmailMessage, wire: bytes, to_addrs: list[str]
) -> dict[str, Any]:
    resent = message.get_all("Resent-Date")
    if resent is not None:
        return smtp.send_message(message, to_addrs=to_addrs)  # type: ignore[no-any-return]
    sender = message["Sender"] if "Sender" in message else message["From"]
    from_addr = _envelope_sender(str(sender))
    if from_addr is None:
        return smtp.send_message(message, to_addrs=to_addrs)  # type: ignore[no-any-return]
    if not (from_addr + "".join(to_addrs)).isascii():
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("smtputf8"):
            return smtp.send_message(message, to_addrs=to_addrs)  # type: ignore[no-any-return]
        return smtp.sendmail(from_addr, to_addrs, wire, ["SMTPUTF8", "BODY=8BITMIME"])  # type: ignore[no-any-return]
    return smtp.sendmail(from_addr, to_addrs, wire)  # type: ignore[no-any-return]


_EXTRA = st.sampled_from(
    [
        ("Sender", "Other <other@example.org>"),
        ("sender", "second@example.org"),
        ("SENDER", "(comment only)"),
        ("From", "Later <later@example.org>"),
        ("from", "undisclosed-recipients:;"),
        ("Resent-Date", "Mon, 30 Nov 2026 20:00:00 +0000"),
        ("resent-date", "x"),
        ("Reply-To", "r@example.org"),
        ("X-Sender", "x@example.org"),
    ]
)


@pytest.mark.parametrize("sender", ["Panel <noreply@panel.example.net>", "noreply@панель.example"])
@settings(max_examples=150, deadline=None)
@given(extra=st.lists(_EXTRA, max_size=4), drop_from=st.booleans())
def test_as_the_three_reads(sender: str, extra: list[tuple[str, str]], drop_from: bool) -> None:
    message = build_message(
        sender=sender,
        to="bob@example.com",
        subject="Hello",
        text="Hello",
        html=None,
        message_id="<abc@panel.example.net>",
        language="en",
    )
    if drop_from:
        del message["From"]
    for name, value in extra:
        # a second From or Sender as an altered stored mail may hold it (the policy
        # refuses to add one)
        message._headers.append(message.policy.header_store_parse(name, value))  # type: ignore[attr-defined]
    wire = message.as_bytes(policy=wire_policy(False))
    new, old = _Recorder(), _Recorder()
    _transmit(new, message, wire, ["bob@example.com"])  # type: ignore[arg-type]
    _old_transmit(old, message, wire, ["bob@example.com"])
    assert new.calls == old.calls

"""``SmtpMailer`` sends a checked mail from the envelope sender the last check approved,
whatever headers the message object holds: the sender is not read a second time."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
def test_from_the_approved_sender(
    sender: str, extra: list[tuple[str, str]], drop_from: bool
) -> None:
    message = build_message(
        sender=sender,
        to="bob@example.com",
        subject="Hello",
        text="Hello",
        html=None,
        message_id="<abc@panel.example.net>",
        language="en",
    )
    approved = "approved@panel.example.net"
    if drop_from:
        del message["From"]
    for name, value in extra:
        # a second From, a Sender or a Resent-Date, as an altered stored mail may hold
        # them (the policy refuses to add some)
        message._headers.append(message.policy.header_store_parse(name, value))  # type: ignore[attr-defined]
    wire = message.as_bytes(policy=wire_policy(False))
    smtp = _Recorder()
    _transmit(smtp, message, wire, ["bob@example.com"], approved)  # type: ignore[arg-type]
    assert smtp.calls == [("sendmail", approved, ("bob@example.com",), wire, ())]


@pytest.mark.parametrize(("wire", "sender"), [(None, "a@example.org"), (b"x", None)])
def test_without_a_check_send_message_decides(wire: bytes | None, sender: str | None) -> None:
    message = build_message(
        sender="Panel <noreply@panel.example.net>", to="bob@example.com", subject="Hello",
        text="Hello", html=None, message_id="<abc@panel.example.net>", language="en",
    )  # fmt: skip
    smtp = _Recorder()
    _transmit(smtp, message, wire, ["bob@example.com"], sender)  # type: ignore[arg-type]
    assert smtp.calls == [("send_message", ["bob@example.com"])]


def test_a_sender_not_ascii_asks_for_smtputf8() -> None:
    message = build_message(
        sender="Panel <noreply@panel.example.net>", to="bob@example.com", subject="Hello",
        text="Hello", html=None, message_id="<abc@panel.example.net>", language="en",
    )  # fmt: skip
    smtp = _Recorder()
    _transmit(smtp, message, b"wire", ["bob@example.com"], "jörg@example.net")  # type: ignore[arg-type]
    assert smtp.calls == [
        ("ehlo",),
        ("sendmail", "jörg@example.net", ("bob@example.com",), b"wire",
         (["SMTPUTF8", "BODY=8BITMIME"],)),
    ]  # fmt: skip

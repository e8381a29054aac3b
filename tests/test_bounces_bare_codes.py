"""A ``5xx`` without an enhanced status code never closes a message, whatever its words.

What real servers answer without one, for an unknown mailbox, and what relays answer
for their own settings, in words that name a mailbox as unknown as often as not: no rule
on the words tells the two apart (docs/contacts-and-mail.md, "Servers without enhanced
status codes"). Each reply is sent by a real SMTP server to ``RCPT TO``; ``SmtpMailer``
raises a ``DeliveryFailed`` that is retried, never a ``DeliveryRefused``.
"""

from __future__ import annotations

import pytest
from tests.smtp_server import HOST, SmtpServer
from tests.test_bounces import message

from teamaccess import DeliveryFailed, DeliveryRefused, SmtpMailer

TO = "x@example.org"
SENDER = "noreply@panel.example.com"

#: An unknown mailbox, as servers without enhanced status codes say it.
UNKNOWN_MAILBOX = {
    "Exim's default (verify = recipient)": "550 Unrouteable address",
    "cPanel's Exim": "550 No Such User Here",
    "Exim with its own message": "550 Unknown user",
    "Sendmail without enhanced codes": f"550 <{TO}>... User unknown",
    "Postfix with enhanced codes turned off": (
        f"550 <{TO}>: Recipient address rejected: User unknown in local recipient table"
    ),
}

#: A relay refusing for its own settings (or the panel's), at RCPT TO.
RELAY_OR_SENDER = {
    "Exim refusing to relay": "550 relay not permitted",
    # A relay whose DNS or routers are broken cannot route any remote domain.
    "Exim that cannot route a remote domain": "550 Unrouteable address",
    # Which mailboxes a relay for a domain knows is its own configuration.
    "Postfix relay with an outdated recipient list": (
        f"550 <{TO}>: Recipient address rejected: User unknown in relay recipient table"
    ),
    # Mail for a domain the server wrongly takes for its own (a routing left on "local").
    "cPanel's Exim with a domain routed locally by mistake": "550 No Such User Here",
    "Exim verifying the panel's sender": (
        f"550-Verification failed for <{SENDER}>\r\n550-Unrouteable address\r\n"
        "550 Sender verify failed"
    ),
    "Exim calling the panel's sender back": (
        f"550-Verification failed for <{SENDER}>\r\n550-Called:   192.0.2.1\r\n"
        f"550-Sent:     RCPT TO:<{SENDER}>\r\n"
        f"550-Response: 550 5.1.1 <{SENDER}>: Recipient address rejected: User unknown\r\n"
        "550 Sender verify failed"
    ),
    "Sendmail refusing to relay": f"550 <{TO}>... Relaying denied",
    "Postfix refusing to relay, codes off": f"554 <{TO}>: Relay access denied",
    "Debian's Exim for local mail only": "550 Mailing to remote domains not supported",
    "cPanel's Exim without a login": (
        "550-Please turn on SMTP Authentication in your mail client.\r\n"
        "550-(panel) [192.0.2.7]:50402 is not permitted to relay through this\r\n"
        "550 server without authentication."
    ),
}


@pytest.mark.parametrize(
    "reply",
    [*UNKNOWN_MAILBOX.values(), *RELAY_OR_SENDER.values()],
    ids=[*UNKNOWN_MAILBOX, *RELAY_OR_SENDER],
)
def test_retried_never_closed(reply: str) -> None:
    with SmtpServer(rcpt_replies={TO: reply}) as server:
        with pytest.raises(DeliveryFailed) as info:
            SmtpMailer(HOST, server.port).send(message(TO), envelope_to=TO)
        assert server.answered == [("RCPT", TO)]
    assert not isinstance(info.value, DeliveryRefused)
    assert reply[:3] in str(info.value)

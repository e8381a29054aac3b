"""A built (or stored and parsed) message pickles, as task queues (Celery, RQ) need.

Unpickled, in this process or a fresh one, it is written to the same bytes and the last
check before sending gives the same verdict, recipient and sender.
"""

# ruff: noqa: S301  (the tests unpickle only what they pickled themselves)
from __future__ import annotations

import pickle
import subprocess
import sys
from email import policy
from email.message import EmailMessage

import pytest

from teamaccess._mail.gate import MailRefused, check_sent
from teamaccess._mail.mailers import build_message, parse_stored, parsing_policy, wire_policy

CASES = {
    "plain": ("Panel <noreply@panel.example.com>", "kunde@example.org", None, None),
    "html": ("Panel <noreply@panel.example.com>", "kunde@example.org", "<p>Hallo</p>", None),
    "added": (
        "Panel <noreply@panel.example.com>", "kunde@example.org", "<p>Hallo</p>",
        {"Reply-To": "Support <support@example.org>", "X-Panel": "account 42"},
    ),
    "name-encoded": (
        "Kundencenter Müller Hosting GmbH & Co. KG Süd <noreply@panel.example.com>",
        "kunde@example.org", "<p>Hallo</p>", None,
    ),
    "smtputf8": ("Jörg <noreply@panel.example.com>", "jörg@example.org", "<p>Hallo</p>", None),
}  # fmt: skip


def built(case: str) -> tuple[EmailMessage, str]:
    sender, to, html, headers = CASES[case]
    message = build_message(
        sender=sender, to=to, subject="Ihre Rechnung für März " * 5, text="Hallo",
        html=html, message_id="<m1@panel.example.com>", language="de", headers=headers,
    )  # fmt: skip
    return message, to


def wires(message: EmailMessage) -> list[bytes]:
    utf8 = bool(getattr(message.policy, "utf8", False))
    smtp = policy.SMTPUTF8 if utf8 else policy.SMTP
    return [message.as_bytes(policy=wire_policy(utf8)), message.as_bytes(policy=smtp)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_built_message_round_trips(case: str) -> None:
    message, to = built(case)
    before = wires(message)
    checked = check_sent(message, to)
    copy = pickle.loads(pickle.dumps(message))
    assert copy.policy is message.policy  # the builder's own policy, not a look-alike
    assert wires(copy) == before
    assert check_sent(copy, to) == checked


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stored_message_round_trips(case: str) -> None:
    message, to = built(case)
    utf8 = bool(getattr(message.policy, "utf8", False))
    source = message.as_bytes(policy=wire_policy(utf8)).replace(b"\r\n", b"\n")
    parsed = parse_stored(source)
    copy = pickle.loads(pickle.dumps(parsed))
    assert copy.policy is parsed.policy
    assert copy.policy in (parsing_policy(), parsing_policy(True))
    assert copy.as_bytes() == parsed.as_bytes()
    assert check_sent(copy, to, source) == check_sent(parsed, to, source)
    assert check_sent(copy, to) == check_sent(parsed, to)


def test_the_policies_round_trip_as_themselves() -> None:
    for one in (wire_policy(False), wire_policy(True), parsing_policy(), parsing_policy(True)):
        assert pickle.loads(pickle.dumps(one)) is one
    cloned = wire_policy(False).clone(max_line_length=100)
    again = pickle.loads(pickle.dumps(cloned))
    assert (again.max_line_length, again.linesep) == (100, "\r\n")


def test_a_refused_message_stays_refused() -> None:
    message, to = built("html")
    message["Reply-To"] = "x" * 80 + "(;"  # folded onto a line that is no field
    copy = pickle.loads(pickle.dumps(message))
    for one in (message, copy):
        with pytest.raises(MailRefused, match="no header field"):
            check_sent(one, to)


_WORKER = """
import pickle, sys
from teamaccess._mail.gate import check_sent
message, to = pickle.load(sys.stdin.buffer)
envelope, wire, sender = check_sent(message, to)
sys.stdout.buffer.write(pickle.dumps((envelope, wire, sender)))
"""


@pytest.mark.parametrize("case", ["html", "name-encoded", "smtputf8"])
def test_a_fresh_process_sends_the_same_bytes(case: str) -> None:
    """As a queue's worker does: unpickled where the email package and the builder's
    policy classes were never loaded."""
    message, to = built(case)
    done = subprocess.run(
        [sys.executable, "-c", _WORKER],
        input=pickle.dumps((message, to)), capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert pickle.loads(done.stdout) == check_sent(message, to)

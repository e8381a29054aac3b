"""The last check's bytes-only way, held to the full way on the mail the service builds.

``check_wire`` reads a fresh mail of the builder's plain shape back from its bytes and
leaves anything else to the full way, which parses the bytes back. Here every mail the
service checks, built from values a vendor or an attacker controls (template texts, the
brand, the sender, account names, notes, permission labels, addresses), is checked both
ways: the verdict, the envelope recipient and the bytes must be the same, and a real SMTP
server must receive exactly those bytes.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET, START
from tests.smtp_server import SmtpServer

from teamaccess import (
    Catalog,
    DefaultTemplates,
    MemoryMailer,
    MemoryStore,
    Permission,
    PermissionSet,
    SmtpMailer,
    TeamAccess,
    TeamAccessError,
)
from teamaccess._mail import gate
from teamaccess._ports import Mailer
from teamaccess.testing import FrozenClock

Verdict = tuple[str, bytes, str] | str
CHECK_SENT = gate.check_sent
READ_AS_BUILT = gate._envelope_as_built


class BothWays:
    """Stands in for ``gate.check_sent``: checks each mail the full way (on a copy) and
    as the library does, and fails the test if they differ."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = CHECK_SENT
        self.fast = READ_AS_BUILT
        self.checked: list[Verdict] = []
        self.took_bytes_way = 0
        self.monkeypatch = monkeypatch
        monkeypatch.setattr(gate, "check_sent", self)

    def _verdict(self, message: EmailMessage, recipient: str, source: bytes | None) -> Verdict:
        # A body that holds the builder's boundary gets a random one: the same for both.
        random.seed(1)
        try:
            return self.real(message, recipient, source)
        except gate.MailRefused:
            return "refused"

    def __call__(
        self, message: EmailMessage, recipient: str, source: bytes | None = None
    ) -> tuple[str, bytes, str]:
        twin = copy.deepcopy(message)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gate, "_envelope_as_built", lambda *args: None)
            full = self._verdict(twin, recipient, source)
        seen: list[object] = []

        def spy(*args: Any) -> object:
            seen.append(self.fast(*args))
            return seen[-1]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gate, "_envelope_as_built", spy)
            got = self._verdict(message, recipient, source)
        assert got == full
        if recipient != "probe@example.com":  # the sender check when the service is made
            self.took_bytes_way += any(found is not None for found in seen)
            self.checked.append(got)
        if isinstance(got, str):
            raise gate.MailRefused("refused both ways")
        return got


PIECES = [
    "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u2029", "\t",
    "=?utf-8?q?=0D=0ABcc:_eve@evil.example?=", "=?utf-8?b?DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?=",
    "=?", "?=", "--=_teamaccess_alternative_part", "\n--=_teamaccess_alternative_part\n",
    "\n--=_teamaccess_alternative_part--\n", "\nBcc: eve@evil.example\n", "ö", "中", "\U0001f600",
    "x" * 70, "y" * 997, "z" * 998, "w" * 999, " ", "  ", '"', "<", ">", ",", ";", ":", "@", "(",
    ")", "\\", ".", "\n.\n", "From ", "\nFrom x\n", "\x7f", "\xa0", "$inviter", "$account", "=",
    "=3D", "a", "Hello world", "&", "<script>",
]  # fmt: skip
BREAKING = set("\n\r\x0b\x0c\x1c\x1f\x85\u2028\u2029\x00")
LINE_PIECES = [p for p in PIECES if len(p) < 100 and BREAKING.isdisjoint(p)]
TEXT = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)
LINE = st.lists(st.sampled_from(LINE_PIECES), min_size=1, max_size=12).map("".join)
KEYS = ["invitation.subject", "invitation.body", "invitation.greeting", "invitation.action",
        "invitation.note", "invitation.some", "brand"]  # fmt: skip
INVITEES = ["neu@example.org", "Neu@Bücher.example", "jörg@example.org",
            "a.b+c@mail.sub-domain.example", "x" * 64 + "@example.com"]  # fmt: skip
SENDER_ADDRESSES = ["noreply@panel.example.net", "noreply@bücher.example", '"no reply"@example.net']


def invite_once(
    mailer: Mailer, *, strings: dict[str, str], brand: str | None, account: str,
    note: str | None, sender: str, invitee: str, label: str, language: str,
) -> None:  # fmt: skip
    """One invitation and one notification with these values; a value the library
    refuses with a TeamAccessError (DeliveryFailed for a refused mail) is fine."""
    try:
        team = TeamAccess(
            MemoryStore(), mailer, secret_key=SECRET, clock=FrozenClock(START), sender=sender,
            catalog=Catalog([Permission("users.manage", "Manage users"),
                             Permission("billing.view", label)]),
            templates=DefaultTemplates(brand=brand, strings={language: strings}),
            accept_url="https://panel.example.net/accept?token={token}",
        )  # fmt: skip
        acc = team.create_account(name=account, owner_id="o", owner_email="o@example.org")
    except TeamAccessError:
        return
    for action in (
        lambda: team.invite(acc.id, actor_id="o", email=invitee, note=note, language=language,
                            permissions=PermissionSet.of("billing.view")),
        lambda: team.notify(acc.id, "general", subject=account, text=note or account),
    ):  # fmt: skip
        with contextlib.suppress(TeamAccessError):
            action()


@settings(max_examples=150)
@given(
    strings=st.dictionaries(st.sampled_from(KEYS), TEXT, max_size=3),
    brand=st.one_of(st.none(), LINE), account=LINE, note=st.one_of(st.none(), TEXT),
    name=st.one_of(st.none(), LINE), address=st.sampled_from(SENDER_ADDRESSES),
    invitee=st.sampled_from(INVITEES), label=LINE, language=st.sampled_from(["en", "de"]),
)  # fmt: skip
def test_both_ways_agree_on_hostile_service_mail(
    strings: dict[str, str], brand: str | None, account: str,
    note: str | None, name: str | None, address: str, invitee: str, label: str, language: str,
) -> None:  # fmt: skip
    sender = address if name is None else f"{name} <{address}>"
    with pytest.MonkeyPatch.context() as patch:
        BothWays(patch)
        invite_once(MemoryMailer(), strings=strings, brand=brand, account=account, note=note,
                    sender=sender, invitee=invitee, label=label, language=language)  # fmt: skip


def test_the_bytes_way_is_taken_and_both_ways_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above is not empty: plain mail takes the bytes-only way."""
    both = BothWays(monkeypatch)
    for address in SENDER_ADDRESSES:
        invite_once(MemoryMailer(), strings={}, brand=None, account="Shop", note="Hi",
                    sender=f"Panel <{address}>", invitee="neu@example.org", label="Bills",
                    language="en")  # fmt: skip
    assert len(both.checked) == 6
    assert both.took_bytes_way == 6
    assert all(not isinstance(v, str) for v in both.checked)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"strings": {"invitation.body": "--=_teamaccess_alternative_part\n" + "z" * 998}},
        {"strings": {"invitation.subject": "=?utf-8?q?=0D=0ABcc:_eve@evil.example?= $account"}},
        {"strings": {"invitation.greeting": "Hallo\u2028Bcc: eve@evil.example\x0c\x85"}},
        {"account": "Müller & Söhne " * 10, "note": ".\n..\n.\r\n.\nBcc: eve@evil.example"},
        {"sender": "Jörg Müller vom Kundencenter <noreply@bücher.example>"},
        {"invitee": "jörg@bücher.example", "label": "Rechnungen ansehen <&>"},
        {"invitee": "x" * 64 + "@example.com", "brand": '"Panel, Inc." <eve@evil.example>'},
    ],
)
def test_the_server_receives_the_bytes_both_ways_checked(
    monkeypatch: pytest.MonkeyPatch, server: SmtpServer, values: dict[str, Any]
) -> None:
    both = BothWays(monkeypatch)
    args: dict[str, Any] = {
        "strings": {}, "brand": None, "account": "Shop", "note": "Hi", "language": "en",
        "sender": "Panel <noreply@panel.example.net>", "invitee": "neu@example.org",
        "label": "Bills", **values,
    }  # fmt: skip
    invite_once(SmtpMailer(server.host, server.port), **args)
    sent = [v for v in both.checked if not isinstance(v, str)]
    assert sent, both.checked
    # From the sender the check approved, to its recipient, the bytes it read.
    assert [(r.mail_from, r.rcpt_tos, r.content) for r in server.received] == [
        (sender, [envelope], wire) for envelope, wire, sender in sent
    ]

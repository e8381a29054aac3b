"""Queued mail: the last check reads the stored bytes once, and SmtpMailer sends the very
bytes it checked; the outcome is the same as checking the message written out afresh."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer

from teamaccess import MemoryStore, SmtpMailer, TeamAccess
from teamaccess._mail.gate import MailRefused, check_stored, check_wire, stored_wire
from teamaccess._mail.mailers import build_message, expected_recipient, parsing_policy


def built(to: str = "bob@example.com", subject: str = "Rechnung", html: str | None = "<p>t</p>"
          ) -> bytes:  # fmt: skip
    msg = build_message(
        sender="Panel <noreply@panel.example.net>", to=to, subject=subject,
        text="Guten Tag,\n.\nbis bald\n", html=html, message_id="<m1@panel.example.net>",
        language="de",
    )  # fmt: skip
    return msg.as_bytes()


def raw(*headers: str, body: str = "text\n") -> bytes:
    return ("\n".join(headers) + "\n\n" + body).encode("utf-8", "surrogateescape")


#: Stored messages as a damaged or hostile row might hold them, and clean ones.
STORED = {
    "clean": built(),
    "clean, text only": built(html=None),
    "clean, long subject": built(subject="Ihre Rechnung für den Monat November " * 4),
    "another recipient": built(to="eve@example.com"),
    "a Bcc line": built().replace(b"Subject:", b"Bcc: eve@example.com\nSubject:"),
    "two To lines": built().replace(b"Subject:", b"To: eve@example.com\nSubject:"),
    "a CR alone ends a line": built().replace(
        b"Subject: Rechnung", b"Subject: Rechnung\rBcc: eve@example.com"
    ),
    "CR LF line ends": built().replace(b"\n", b"\r\n"),
    "a CR LF in a header": built().replace(
        b"Subject: Rechnung", b"Subject: Rechnung\r\nBcc: eve@example.com"
    ),
    "an encoded line break": built().replace(
        b"Subject: Rechnung", b"Subject: =?utf-8?q?Rechnung=0D=0ABcc:_eve@example.com?="
    ),
    "an encoded word in To": raw(
        "From: a@example.net", "To: =?utf-8?q?bob@example.com?=", "Subject: x"
    ),
    "folded oddly": raw("From: a@example.net", "To: bob@example.com", "Subject: a\n  b\n\tc"),
    "no To": raw("From: a@example.net", "Subject: x"),
    "8-bit header": raw("From: a@example.net", "To: bob@example.com", "Subject: caf\udce9"),
}


def outcome(message: EmailMessage, source: bytes | None) -> tuple[object, ...]:
    """The verdict, and for a message let through its wire form as a reader sees it."""
    try:
        envelope, wire = check_wire(message, "bob@example.com", source)
    except MailRefused as exc:
        return ("refused", str(exc))
    read = message_from_string(wire.decode("utf-8", "surrogateescape"), policy=policy.default)
    headers = [[(n, " ".join(str(v).split())) for n, v in part.items()] for part in read.walk()]
    return ("sent", envelope, headers)


class TestCheckOfStoredBytes:
    """With the stored bytes, the check decides as it does writing the message out and
    reading it back, and what it lets through reads the same."""

    @pytest.mark.parametrize("name", list(STORED))
    def test_same_outcome_as_the_full_check(self, name: str) -> None:
        source = STORED[name]

        def parsed() -> EmailMessage:
            msg = message_from_bytes(source, policy=parsing_policy())
            assert isinstance(msg, EmailMessage)
            return msg

        assert outcome(parsed(), source) == outcome(parsed(), None)

    def test_the_cases_cover_both_outcomes(self) -> None:
        got = {
            name: outcome(message_from_bytes(src, policy=parsing_policy()), src)[0]  # type: ignore[arg-type]
            for name, src in STORED.items()
        }
        assert got["clean"] == got["clean, text only"] == got["clean, long subject"] == "sent"
        for name in ("another recipient", "a Bcc line", "two To lines", "no To",
                     "a CR alone ends a line", "a CR LF in a header"):  # fmt: skip
            assert got[name] == "refused", name

    @pytest.mark.parametrize("to", ["jörg@example.org", "bob@bücher.example"])
    def test_utf8_addresses_same_outcome(self, to: str) -> None:
        """Bytes parsed as bytes read UTF-8 as escapes; the check reads the wire as text."""
        source = built(to=to)
        results = []
        for given in (source, None):
            msg = message_from_bytes(source, policy=parsing_policy())
            assert isinstance(msg, EmailMessage)
            results.append(check_wire(msg, to, given))
        assert results[0] == results[1]

    def test_the_wire_is_the_stored_lines(self) -> None:
        source = STORED["clean"]
        msg = message_from_bytes(source, policy=parsing_policy())
        assert isinstance(msg, EmailMessage)
        assert check_wire(msg, "bob@example.com", source)[1] == source.replace(b"\n", b"\r\n")

    @pytest.mark.parametrize("name", ["CR LF line ends", "a CR alone ends a line"])
    def test_bytes_with_a_cr_are_written_out_afresh(self, name: str) -> None:
        source = STORED[name]
        msg = message_from_bytes(source, policy=parsing_policy())
        assert isinstance(msg, EmailMessage)
        try:
            wire = check_wire(msg, "bob@example.com", source)[1]
        except MailRefused:
            return
        assert wire == msg.as_bytes(policy=policy.SMTP)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


class TestQueuedDeliveryOverSmtp:
    """deliver_pending() through SmtpMailer: the server gets the stored message, CRLF."""

    def test_the_server_receives_the_stored_bytes(self, server: SmtpServer) -> None:
        mailer = SmtpMailer(server.host, server.port)
        team = TeamAccess(
            MemoryStore(), mailer, secret_key=SECRET, delivery="queue",
            sender="Panel <noreply@panel.example.net>",
            accept_url="https://panel.example.net/accept",
        )  # fmt: skip
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        for address in ("kunde@example.org", "jörg@example.org"):  # the second: SMTPUTF8
            team.add_contact(acc.id, actor_id="o", name="K", email=address, categories=["billing"])
        team.notify(acc.id, "billing", subject="Rechnung", text="Guten Tag,\n.\nbis bald")
        stored = {row.recipient: row.message for row in team.pending_messages()}
        done = team.deliver_pending()
        assert sorted(r.status for r in done) == ["sent"] * 3
        assert sorted(got.rcpt_tos[0] for got in server.received) == sorted(stored)
        for got in server.received:
            [to] = got.rcpt_tos
            source = stored[to]
            assert source is not None
            if to.isascii():
                # Sent as checked: the stored lines, each ended by CR LF.
                wire = got.message.as_bytes(policy=policy.SMTP)
                assert wire == source.replace(b"\n", b"\r\n")
            assert got.message["To"] == to
            body = got.message.get_body(("plain",))
            assert body is not None
            assert "Guten Tag,\n.\nbis bald" in body.get_content().replace("\r\n", "\n")


def multipart(*parts: str, boundary: str = "=_b", preamble: str = "") -> bytes:
    """A stored multipart/alternative message to bob@example.com with *parts* (each its
    header lines, an empty line and a body) between boundary lines."""
    head = raw(
        "From: Panel <noreply@panel.example.net>", "To: bob@example.com", "Subject: x",
        "Message-ID: <m1@panel.example.net>", "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"', body="",
    )  # fmt: skip
    body = preamble + "".join(f"--{boundary}\n{part}\n" for part in parts) + f"--{boundary}--\n"
    return head + body.encode("utf-8", "surrogateescape")


TEXT_PART = 'Content-Type: text/plain; charset="utf-8"\n\nhallo\n'

#: Stored messages aimed at reading the bytes without the parser: what the stdlib reads
#: in the parts' headers, and where it splits the parts.
SHAPES = {
    **STORED,
    "clean multipart": multipart(TEXT_PART, TEXT_PART),
    "an encoded line break in a part": multipart(
        TEXT_PART, 'Content-Type: text/html; name="=?utf-8?q?a=0Ab?="\n\n<p>x</p>\n'
    ),
    "an RFC 2231 line break in a part": multipart(
        TEXT_PART, "Content-Type: text/html; name*=utf-8''a%0Ab\n\n<p>x</p>\n"
    ),
    "a form feed in a header": built().replace(b"Subject: Rechnung", b"Subject: Rech\x0cnung"),
    "a form feed in a part header": multipart("Content-Type: text/plain;\x0c charset=x\n\nh\n"),
    "a message in a part": multipart(
        "Content-Type: message/rfc822\n\nBcc: eve@example.com\nTo: eve@example.com\n\nx\n"
    ),
    "a multipart in a part": multipart(
        'Content-Type: multipart/mixed; boundary="in"\n\n--in\nContent-Type: text/plain\n\nx\n'
        "--in--\n"
    ),
    "a boundary line with spaces": multipart(TEXT_PART).replace(b"--=_b\n", b"--=_b  \n", 1),
    "a boundary after the end": multipart(TEXT_PART) + b"--=_b\n\nmore\n",
    "no closing boundary": multipart(TEXT_PART).replace(b"--=_b--\n", b""),
    "a part without headers' end": multipart("Content-Type: text/plain"),
    "a part header that is no field": multipart("Content-Type : text/plain\n\nh\n"),
    "an unbalanced quote": multipart(TEXT_PART).replace(b'boundary="=_b"', b'boundary="=_b'),
    "a boundary in the preamble": multipart(TEXT_PART, preamble="--=_b x\n"),
    "a To with a name": raw("From: a@example.net", "To: Bob <bob@example.com>", "Subject: x"),
    "a To in capitals": raw("From: a@example.net", "To: BOB@example.com", "Subject: x"),
    "an encoded Message-ID": raw(
        "From: a@example.net", "To: bob@example.com", "Message-ID: <=?utf-8?q?a=0Ab?=@x>"
    ),
    "an encoded sender": raw(
        "From: =?utf-8?q?Panel=0ABcc:_eve@example.com?= <a@example.net>",
        "To: bob@example.com",
    ),
    "no sender": raw("To: bob@example.com", "Subject: x"),
    "junk after the To address": raw(
        "From: a@example.net", "To: bob@example.com eve@example.com", "Subject: x"
    ),
    "an encoded line break in the Date": raw(
        "From: a@example.net", "To: bob@example.com", "Date: =?utf-8?q?Mon=0ABcc:_eve@x?="
    ),
    "a To header in a part": multipart(TEXT_PART, "To: eve@example.com\n\nx\n"),
}


class TestStoredBytesReadWithoutTheParser:
    """stored_wire() lets through only what the full check lets through, as it sends it,
    and leaves everything else to the full check."""

    @staticmethod
    def full(source: bytes) -> tuple[object, ...]:
        msg = message_from_bytes(source, policy=parsing_policy())
        assert isinstance(msg, EmailMessage)
        try:
            return ("sent", *check_wire(msg, "bob@example.com", source))
        except MailRefused:
            return ("refused",)

    @pytest.mark.parametrize("name", list(SHAPES))
    def test_never_lets_through_what_the_full_check_refuses(self, name: str) -> None:
        source = SHAPES[name]
        try:
            check_stored(source)  # the first check on both ways
        except MailRefused:
            return
        fast = stored_wire(source, "bob@example.com")
        if fast is not None:
            envelope, wire, sender = fast
            assert self.full(source) == ("sent", envelope, wire)
            assert sender in ("noreply@panel.example.net", "a@example.net")

    def test_the_cases_reach_both_ways(self) -> None:
        fast = {name: stored_wire(src, "bob@example.com") for name, src in SHAPES.items()}
        for name in ("clean", "clean, text only", "clean, long subject", "clean multipart",
                     "folded oddly"):  # fmt: skip
            assert fast[name] is not None, name
        refused = [n for n, src in SHAPES.items() if self.full(src)[0] == "refused"]
        assert len(refused) >= 10
        assert all(fast[name] is None for name in refused)

    def test_a_plain_address_is_its_expected_recipient(self) -> None:
        for address in ("bob@example.com", "a.b+c_d-e@mail.sub-domain.example", "x@y.zz"):
            assert expected_recipient(address) == address

"""Attack round 16 on the loopback exemption for a login over ``security="plain"``.

The exemption was judged on the host *name* when the mailer was built. The connection
goes wherever that name resolves when mail goes out, to whatever ``host`` and
``security`` then say: ``localhost`` that a hosts file or resolver sends elsewhere, or a
``mailer.host`` (or ``mailer.security``) set after it was built, sent the password in
clear to a machine on the network. Now the address the connection reached is checked
before the login: a plain login goes only to a loopback address (unless
``allow_cleartext_login=True``). A real SMTP server on this machine's network address
stands in for the machine elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from tests.smtp_server import SmtpServer
from tests.test_smtp import message

from teamaccess import DeliveryFailed, SmtpMailer, ValidationError


def _network_address() -> str:
    """This machine's address on its network (not loopback), or skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # UDP: sends nothing, only picks a route
        except OSError:
            pytest.skip("no network address to listen on")
        address: str = sock.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no network address but loopback")
    return address


@pytest.fixture
def elsewhere() -> SmtpServer:
    """A server that takes a login over plain SMTP, not on a loopback address."""
    return SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True, host=_network_address())


class TestTheAddressReached:
    """A login over plain SMTP goes only to a loopback address, whatever the mailer says."""

    def test_host_set_after_it_was_built(self, elsewhere: SmtpServer) -> None:
        mailer = SmtpMailer("localhost", 2525, username="panel", password="s3cret")
        with elsewhere:
            mailer.host, mailer.port = elsewhere.host, elsewhere.port
            with pytest.raises(
                DeliveryFailed,
                match=rf"^mail server {elsewhere.host}:{elsewhere.port} is not this machine "
                r".*security='plain' would send the password unencrypted; nothing was sent: "
                r"use security=\"starttls\" or \"tls\"",
            ) as info:
                mailer.send(message())
            assert elsewhere.logins == []
            assert elsewhere.received == []
        assert "s3cret" not in str(info.value)

    def test_security_set_to_plain_after_it_was_built(self, elsewhere: SmtpServer) -> None:
        with elsewhere:
            mailer = SmtpMailer(elsewhere.host, elsewhere.port, security="starttls",
                                username="panel", password="s3cret")  # fmt: skip
            mailer.security = "plain"
            with pytest.raises(DeliveryFailed, match="is not this machine"):
                mailer.send(message())
            assert elsewhere.logins == []

    def test_in_a_batch(self, elsewhere: SmtpServer) -> None:
        mailer = SmtpMailer("127.0.0.1", 2525, username="panel", password="s3cret")
        with elsewhere:
            mailer.host, mailer.port = elsewhere.host, elsewhere.port
            with mailer.batch() as sender, pytest.raises(DeliveryFailed, match="not this"):
                sender.send(message())
            assert elsewhere.logins == []

    def test_the_opt_out_still_allows_it(self, elsewhere: SmtpServer) -> None:
        with elsewhere:
            SmtpMailer(elsewhere.host, elsewhere.port, username="panel", password="s3cret",
                       allow_cleartext_login=True).send(message())  # fmt: skip
            [got] = elsewhere.received
        assert got.login == "panel"

    def test_no_login_needs_no_loopback(self) -> None:
        with SmtpServer(host=_network_address()) as server:
            SmtpMailer(server.host, server.port).send(message())
            assert len(server.received) == 1

    @pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
    def test_loopback_still_takes_it(self, host: str) -> None:
        with SmtpServer(users={"panel": "s3cret"}, auth_over_plain=True) as server:
            SmtpMailer(host, server.port, username="panel", password="s3cret").send(message())
            [got] = server.received
        assert got.login == "panel"


class TestNamesThatAreNotLoopback:
    """What only looks like this machine is refused when the mailer is built (these held)."""

    @pytest.mark.parametrize(
        "host",
        ["127.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::1]", "127.0.0.1.nip.io",
         "localhost.evil.example", "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
         "localhost\u3002", "::127.0.0.1", "64:ff9b::7f00:1", "0.0.0.0", "::"],  # noqa: S104
    )  # fmt: skip
    def test_refused(self, host: str) -> None:
        with pytest.raises(ValidationError, match="would send the password"):
            SmtpMailer(host, username="panel", password="s3cret")

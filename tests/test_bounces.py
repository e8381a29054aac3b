"""Mail a server refuses for good stops being retried: ``SmtpMailer`` tells a refusal of
the message's recipient or content (``DeliveryRefused``) from the panel's own
misconfiguration and from what is temporary, and the service closes a message after
``give_up_after`` such refusals in a row, with its reason and an audit event. Against a
real SMTP server (aiosmtpd) on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.conftest import SECRET, SHARED
from tests.smtp_server import HOST, Certificates, SmtpServer, free_port

from teamaccess import (
    SYSTEM,
    AccountNotFound,
    AuditEvent,
    DeliveryFailed,
    DeliveryRefused,
    MemoryMailer,
    OutboxMessage,
    PermissionSet,
    SmtpMailer,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess._mail.mailers import build_message
from teamaccess.testing import FrozenClock

DEAD = "weg@example.org"  # the server answers 550 to RCPT TO for it
SPAM = "spam@example.org"  # ... 554 to the DATA of mail to it
FINE = ("k1@example.org", "k2@example.org")
OWNER = "chef@muster.de"
NO_USER = "550 5.1.1 <weg@example.org>: no such user"
CONTENT = "554 5.6.0 message content rejected"


def message(to: str) -> EmailMessage:
    return build_message(
        sender="Panel <noreply@panel.example.com>",
        to=to,
        subject="Rechnung",
        text="body",
        html=None,
        message_id="<b1@panel.example.com>",
        language="en",
    )


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates.create()


class TestSmtpMailerSaysWhatIsForGood:
    """Which replies SmtpMailer raises as DeliveryRefused, and which as a plain failure."""

    @pytest.mark.parametrize(
        ("rcpt", "data", "refused"),
        [
            ("550 5.1.1 no such user", None, True),
            ("551 user not local", None, True),
            ("553 5.1.3 mailbox name not allowed", None, True),
            (None, "554 5.6.0 content rejected", True),
            (None, "552 5.3.4 message too big", True),
            # temporary by their code
            ("450 4.2.1 mailbox busy", None, False),
            (None, "451 4.3.0 try again later", False),
            # a full mailbox: RFC 5321 says to treat 552 to RCPT TO as temporary
            ("552 5.2.2 mailbox full", None, False),
            # security or policy (5.7.x): relaying, SPF, DMARC, the panel's own settings
            ("554 5.7.1 relay access denied", None, False),
            ("530 5.7.0 authentication required", None, False),
            (None, "550 5.7.26 unauthenticated mail is prohibited (DMARC)", False),
        ],
    )
    def test_reply(self, rcpt: str | None, data: str | None, refused: bool) -> None:
        to = "x@example.org"
        with SmtpServer(
            rcpt_replies={to: rcpt} if rcpt else None, data_replies={to: data} if data else None
        ) as server:
            with pytest.raises(DeliveryFailed) as info:
                SmtpMailer(HOST, server.port).send(message(to), envelope_to=to)
            assert server.answered == [("RCPT" if rcpt else "DATA", to)]
        reply = rcpt or data
        assert reply is not None
        assert isinstance(info.value, DeliveryRefused) is refused
        assert reply.split()[0] in str(info.value)
        if refused:
            assert isinstance(info.value, DeliveryRefused)
            assert info.value.code == int(reply.split()[0])

    def test_a_wrong_login_is_not_for_good(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs, users={"panel": "s3cret"}) as server:
            mailer = SmtpMailer(
                HOST, server.port, security="starttls", ssl_context=certs.client_context(),
                username="panel", password="wrong",
            )  # fmt: skip
            with pytest.raises(DeliveryFailed, match="535") as info:
                mailer.send(message(DEAD))
        assert not isinstance(info.value, DeliveryRefused)

    def test_no_login_refused_sender_is_not_for_good(self, certs: Certificates) -> None:
        with SmtpServer(mode="starttls", certs=certs, users={"panel": "s3cret"}) as server:
            mailer = SmtpMailer(
                HOST, server.port, security="starttls", ssl_context=certs.client_context()
            )
            with pytest.raises(DeliveryFailed, match="530") as info:
                mailer.send(message(DEAD))
        assert not isinstance(info.value, DeliveryRefused)

    def test_a_batch_keeps_its_connection_after_a_refused_recipient(self) -> None:
        with SmtpServer(rcpt_replies={DEAD: NO_USER}, data_replies={SPAM: CONTENT}) as server:
            outcomes = []
            with SmtpMailer(HOST, server.port).batch() as sender:
                for to in (FINE[0], DEAD, SPAM, FINE[1]):
                    try:
                        sender.send(message(to), envelope_to=to)
                        outcomes.append("sent")
                    except DeliveryRefused:
                        outcomes.append("refused")
            assert outcomes == ["sent", "refused", "refused", "sent"]
            assert [g.rcpt_tos for g in server.received] == [[FINE[0]], [FINE[1]]]
            assert server.connections == 1


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(rcpt_replies={DEAD: NO_USER}, data_replies={SPAM: CONTENT}) as server:
        yield server


def queued_team(
    store: Store, clock: FrozenClock, mailer: object, *, give_up_after: int = 3
) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,  # type: ignore[arg-type]
        secret_key=SECRET,
        clock=clock,
        accept_url="https://panel.example.com/accept?token={token}",
        sender="Panel <noreply@panel.example.com>",
        delivery="queue",
        give_up_after=give_up_after,
    )


def with_contacts(team: TeamAccess, *emails: str) -> str:
    account = team.create_account(name="Muster GmbH", owner_id="owner", owner_email=OWNER)
    for i, email in enumerate(emails):
        team.add_contact(
            account.id, actor_id="owner", name=f"K {i}", email=email, categories=["billing"]
        )
    return account.id


def run(team: TeamAccess, clock: FrozenClock) -> dict[str, OutboxMessage]:
    """One deliver_pending() once everything waiting is due; the rows it tried, by
    recipient."""
    clock.advance(timedelta(days=1))
    return {row.recipient: row for row in team.deliver_pending()}


def bounces(team: TeamAccess, account_id: str) -> list[AuditEvent]:
    return [e for e in team.audit_log(account_id, limit=500) if e.action == "mail.bounced"]


class TestGiveUp:
    """A message refused for good give_up_after times in a row is closed, the others go."""

    def test_refused_recipient_and_content_closed_after_three_others_sent(
        self, store: Store, clock: FrozenClock, smtp: SmtpServer
    ) -> None:
        team = queued_team(store, clock, SmtpMailer(HOST, smtp.port))
        account_id = with_contacts(team, FINE[0], DEAD, SPAM, FINE[1])
        seen: list[AuditEvent] = []
        team.add_listener(seen.append)
        team.notify(account_id, "billing", subject="Rechnung", text="Ihre Rechnung")

        first = run(team, clock)
        # a refused recipient mid-batch stops nothing: the others went, over one connection
        assert {to for to, row in first.items() if row.status == "sent"} == {OWNER, *FINE}
        assert sorted(to for g in smtp.received for to in g.rcpt_tos) == sorted([OWNER, *FINE])
        assert smtp.connections == 1
        for to, code in ((DEAD, "550"), (SPAM, "554")):
            row = first[to]
            assert (row.status, row.attempts) == ("pending", 1)
            assert row.last_error is not None
            assert row.last_error.startswith("refused for good (1 in a row; closed at 3): ")
            assert f"DeliveryRefused: mail server {HOST}:{smtp.port} refused" in row.last_error
            assert code in row.last_error
        assert bounces(team, account_id) == []

        second = run(team, clock)
        assert set(second) == {DEAD, SPAM}
        assert second[DEAD].last_error is not None
        assert second[DEAD].last_error.startswith("refused for good (2 in a row; closed at 3)")
        third = run(team, clock)
        for to, reply in ((DEAD, NO_USER), (SPAM, CONTENT)):
            row = third[to]
            assert (row.status, row.attempts) == ("cancelled", 3)
            assert row.last_error is not None
            assert row.last_error.startswith(
                "undeliverable: refused for good 3 time(s) in a row, not retried: "
            )
            assert reply.split(maxsplit=1)[1] in row.last_error
        # closed: not retried, not listed as waiting
        assert run(team, clock) == {}
        assert team.pending_messages() == []
        assert smtp.answered.count(("RCPT", DEAD)) == 3
        assert smtp.answered.count(("DATA", SPAM)) == 3
        # the owner sees it in the account's log, and listeners heard it
        events = bounces(team, account_id)
        assert sorted(e.details["email"] for e in events) == [SPAM, DEAD]
        assert all(e.actor_id == SYSTEM for e in events)
        assert {e.target for e in events} == {third[DEAD].id, third[SPAM].id}
        assert {e.details["kind"] for e in events} == {"notification.billing"}
        assert "550" in next(e.details["error"] for e in events if e.details["email"] == DEAD)
        assert sorted(e.id for e in seen if e.action == "mail.bounced") == sorted(
            e.id for e in events
        )

    def test_a_temporary_failure_in_between_starts_the_count_afresh(
        self, store: Store, clock: FrozenClock, smtp: SmtpServer
    ) -> None:
        team = queued_team(store, clock, SmtpMailer(HOST, smtp.port), give_up_after=2)
        with_contacts(team, DEAD)
        team.notify(team.accounts_for("owner")[0].id, "billing", subject="S", text="T")
        first = run(team, clock)[DEAD].last_error
        assert first is not None
        assert first.startswith("refused for good (1 in a row")
        smtp.rcpt_replies[DEAD] = "450 4.2.1 mailbox busy, try later"
        busy = run(team, clock)[DEAD]
        assert busy.status == "pending"
        assert busy.last_error is not None
        assert "450" in busy.last_error
        assert not busy.last_error.startswith("refused for good")
        smtp.rcpt_replies[DEAD] = NO_USER
        again = run(team, clock)[DEAD]
        assert again.status == "pending"  # one in a row again, not two
        assert again.last_error is not None
        assert again.last_error.startswith("refused for good (1 in a row; closed at 2)")
        assert run(team, clock)[DEAD].status == "cancelled"

    def test_a_refused_login_never_closes_anything(
        self, store: Store, clock: FrozenClock, certs: Certificates
    ) -> None:
        with SmtpServer(
            mode="starttls", certs=certs, users={"panel": "s3cret"},
            rcpt_replies={DEAD: NO_USER},
        ) as server:  # fmt: skip
            mailer = SmtpMailer(
                HOST, server.port, security="starttls", ssl_context=certs.client_context(),
                username="panel", password="wrong",
            )  # fmt: skip
            team = queued_team(store, clock, mailer, give_up_after=1)
            account_id = with_contacts(team, DEAD, FINE[0])
            team.notify(account_id, "billing", subject="S", text="T")
            for _ in range(4):
                rows = run(team, clock)
                assert {r.status for r in rows.values()} == {"pending"}
                assert all("535" in (r.last_error or "") for r in rows.values())
            assert len(team.pending_messages()) == 3
            assert bounces(team, account_id) == []
            assert server.received == []

    def test_a_server_that_is_down_never_closes_anything(
        self, store: Store, clock: FrozenClock
    ) -> None:
        team = queued_team(store, clock, SmtpMailer(HOST, free_port(), timeout=5), give_up_after=1)
        account_id = with_contacts(team, DEAD)
        team.notify(account_id, "billing", subject="S", text="T")
        for _ in range(3):
            assert {r.status for r in run(team, clock).values()} == {"pending"}
        assert len(team.pending_messages()) == 2

    def test_invitation_sent_now_closed_at_once_with_give_up_after_one(
        self, store: Store, clock: FrozenClock, smtp: SmtpServer
    ) -> None:
        team = TeamAccess(
            store, SmtpMailer(HOST, smtp.port), secret_key=SECRET, clock=clock,
            accept_url="https://panel.example.com/accept?token={token}",
            sender="Panel <noreply@panel.example.com>", give_up_after=1,
        )  # fmt: skip
        account = team.create_account(name="Muster GmbH", owner_id="owner", owner_email=OWNER)
        with pytest.raises(DeliveryFailed, match="the mail server for good") as info:
            team.invite(account.id, actor_id="owner", email=DEAD, permissions=PermissionSet.none())
        invitation = info.value.invitation
        assert invitation is not None
        assert invitation.token is not None
        # the invitation stays (resend it to a corrected address, or revoke it); its mail
        # is closed, and says why, without the link
        assert [i.id for i in team.pending_invitations(account.id)] == [invitation.id]
        assert team.pending_messages() == []
        [event] = bounces(team, account.id)
        assert event.details["kind"] == "invitation"
        assert event.details["invitation"] == invitation.id
        assert invitation.token not in event.details["error"]
        assert "token" not in event.details["error"]
        assert run(team, clock) == {}
        assert smtp.answered == [("RCPT", DEAD)]


class TestThirdPartyMailer:
    """A Mailer of one's own closes a message only by raising DeliveryRefused."""

    class Refusing(MemoryMailer):
        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

        def send(self, message: EmailMessage) -> None:
            if message["To"] == DEAD:
                raise self.error
            super().send(message)

    def test_delivery_refused_counts(self, store: Store, clock: FrozenClock) -> None:
        mailer = self.Refusing(DeliveryRefused("550 no such user", code=550))
        team = queued_team(store, clock, mailer, give_up_after=2)
        account_id = with_contacts(team, DEAD)
        team.notify(account_id, "billing", subject="S", text="T")
        first = run(team, clock)
        assert first[OWNER].status == "sent"
        assert first[DEAD].status == "pending"
        [closed] = run(team, clock).values()
        assert closed.status == "cancelled"
        assert closed.last_error == (
            "undeliverable: refused for good 2 time(s) in a row, not retried: "
            "DeliveryRefused: 550 no such user"
        )
        assert len(bounces(team, account_id)) == 1

    @pytest.mark.parametrize(
        "error", [DeliveryFailed("550 no such user"), ConnectionRefusedError("down")]
    )
    def test_any_other_error_is_retried_for_ever(
        self, store: Store, clock: FrozenClock, error: Exception
    ) -> None:
        team = queued_team(store, clock, self.Refusing(error), give_up_after=1)
        account_id = with_contacts(team, DEAD)
        team.notify(account_id, "billing", subject="S", text="T")
        for _ in range(3):
            assert run(team, clock)[DEAD].status == "pending"
        assert bounces(team, account_id) == []


class TestSetting:
    """give_up_after is a positive integer; 12 unless given."""

    def test_default(self, store: Store) -> None:
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET)
        assert team.give_up_after == 12

    @pytest.mark.parametrize("value", [0, -1, True, 2.0, "3", None])
    def test_refused(self, store: Store, value: object) -> None:
        with pytest.raises(ValidationError, match="give_up_after must be"):
            TeamAccess(store, MemoryMailer(), secret_key=SECRET, give_up_after=value)  # type: ignore[arg-type]


class TestListing:
    """undeliverable_messages() and `teamaccess deliver --list --undeliverable` show the
    closed messages and why; pending_messages() no longer does."""

    def test_undeliverable_messages(
        self, store: Store, clock: FrozenClock, smtp: SmtpServer
    ) -> None:
        team = queued_team(store, clock, SmtpMailer(HOST, smtp.port), give_up_after=1)
        mine = with_contacts(team, DEAD, FINE[0])
        other = team.create_account(name="Andere AG", owner_id="o2", owner_email="o2@andere.de")
        team.add_contact(other.id, actor_id="o2", name="S", email=SPAM, categories=["billing"])
        team.notify(mine, "billing", subject="S", text="T")
        team.notify(other.id, "billing", subject="S", text="T")
        assert team.undeliverable_messages() == []
        run(team, clock)
        closed = team.undeliverable_messages()
        assert [m.recipient for m in closed] == [DEAD, SPAM]
        assert {m.status for m in closed} == {"cancelled"}
        assert [m.recipient for m in team.undeliverable_messages(mine)] == [DEAD]
        assert [m.recipient for m in team.undeliverable_messages(other.id)] == [SPAM]
        assert team.pending_messages() == []
        with pytest.raises(AccountNotFound):
            team.undeliverable_messages("acc_nope")

    def test_the_cli_lists_them(self, tmp_path: Path, clock: FrozenClock, smtp: SmtpServer) -> None:
        from teamaccess import SQLiteStore

        db = tmp_path / "teamaccess.db"
        team = queued_team(SQLiteStore(db), clock, SmtpMailer(HOST, smtp.port), give_up_after=1)
        account_id = with_contacts(team, DEAD)
        team.notify(account_id, "billing", subject="S", text="T")
        [closed] = [r for r in run(team, clock).values() if r.status == "cancelled"]
        team.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        proc = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--list",
             "--undeliverable", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        [shown] = json.loads(proc.stdout)
        assert (shown["id"], shown["recipient"], shown["status"]) == (closed.id, DEAD, "cancelled")
        assert shown["last_error"].startswith("undeliverable: refused for good 1 time(s)")
        assert "550 5.1.1" in shown["last_error"]
        table = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--list",
             "--undeliverable"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert table.returncode == 0, table.stderr
        assert DEAD in table.stdout
        assert "undeliverable: refused for good" in table.stdout
        waiting = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--list", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert json.loads(waiting.stdout) == []
        alone = subprocess.run(
            [sys.executable, "-m", "teamaccess", "--db", str(db), "deliver", "--undeliverable"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert alone.returncode == 2
        assert "--undeliverable goes with --list" in alone.stderr


class TestCountIsStored:
    """The count of refusals in a row is in the store, not in the process that saw them:
    another TeamAccess on the same database (a restarted worker) goes on counting."""

    @pytest.mark.parametrize("backend", SHARED, indirect=True)
    def test_a_new_process_goes_on_counting(
        self, store_factory: Callable[[], Store], clock: FrozenClock, smtp: SmtpServer
    ) -> None:
        first = queued_team(store_factory(), clock, SmtpMailer(HOST, smtp.port))
        with_contacts(first, DEAD)
        first.notify(first.accounts_for("owner")[0].id, "billing", subject="S", text="T")
        assert run(first, clock)[DEAD].status == "pending"
        assert run(first, clock)[DEAD].status == "pending"
        first.close()
        restarted = queued_team(store_factory(), clock, SmtpMailer(HOST, smtp.port))
        [waiting] = restarted.pending_messages()
        assert waiting.last_error is not None
        assert waiting.last_error.startswith("refused for good (2 in a row; closed at 3)")
        assert run(restarted, clock)[DEAD].status == "cancelled"
        assert smtp.answered.count(("RCPT", DEAD)) == 3

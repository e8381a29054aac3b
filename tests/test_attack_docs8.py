"""What the documentation promises, held against the code: each test names the promise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import ClassVar

import pytest
from tests.conftest import SECRET
from tests.smtp_server import SmtpServer
from tests.test_cli import Cli

from teamaccess import (
    Catalog,
    DeliveryFailed,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SmtpMailer,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

#: Subjects holding RFC 2047 encoded-word syntax, which the standard library decodes.
SUBJECTS = [
    "Invoice =?utf-8?q?hello_world?= due",  # would arrive as "Invoice hello world due"
    "=?utf-8?q?Rechnung=0D=0ABcc:_eve@example.com?=",  # a decoded line break
    "Rechnung =?utf-8?b?w7Y=?= für Sie",
]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer(smtputf8=True) as running:
        yield running


class TestSubjectWithEncodedWords:
    """contacts-and-mail.md: a subject with a line break is a ValidationError and nothing is
    stored or sent; a value that would inject a header is a ValidationError. A subject
    holding an encoded word was decoded by the standard library: the mail said other
    words, or, with an encoded line break, was stored, refused by the last check and
    cancelled (DeliveryFailed). It is refused as in names, before anything is stored."""

    @pytest.mark.parametrize("delivery", ["now", "queue"])
    @pytest.mark.parametrize("subject", SUBJECTS)
    def test_refused_before_anything_is_stored(
        self, server: SmtpServer, subject: str, delivery: str
    ) -> None:
        store = MemoryStore()
        team = TeamAccess(
            store, SmtpMailer(server.host, server.port), secret_key=SECRET,
            sender="Panel <noreply@panel.example.net>",
            accept_url="https://panel.example.net/accept", delivery=delivery,
        )  # fmt: skip
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        before = team.audit_log(acc.id)
        with pytest.raises(ValidationError, match="subject contains RFC 2047 encoded-word"):
            team.notify(acc.id, "billing", subject=subject, text="t")
        with store.read() as uow:
            assert uow.outbox() == []
        assert team.audit_log(acc.id) == before
        assert team.deliver_pending() == []
        assert server.received == []
        # The same words written plainly go out as written.
        plain = subject.replace("=?", "= ?")
        team.notify(acc.id, "billing", subject=plain, text="t")
        team.deliver_pending()
        [got] = server.received
        assert got.message["Subject"] == plain
        assert got.message.get_all("Bcc") is None


class TestDeliverPendingReturnsCancelledRows:
    """api.md: deliver_pending() returns the rows as they are afterwards; its docstring
    says sent, failed and waiting again, or cancelled; `teamaccess deliver --json` counts
    `cancelled` from them. A claimed invitation mail cancelled because its invitation was
    no longer pending was left out."""

    def _waiting_invitation(self) -> tuple[TeamAccess, FailingMailer, FrozenClock, DeliveryFailed]:
        clock = FrozenClock(datetime(2026, 5, 1, 9, tzinfo=UTC))
        down = FailingMailer()
        team = TeamAccess(MemoryStore(), down, secret_key=SECRET, clock=clock)
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        with pytest.raises(DeliveryFailed) as failed:
            team.invite(
                acc.id, actor_id="o", email="d@example.org", permissions=PermissionSet.none()
            )
        down.failing = False
        return team, down, clock, failed.value

    def test_an_expired_invitations_mail(self) -> None:
        team, down, clock, failed = self._waiting_invitation()
        clock.advance(timedelta(days=8))
        [row] = team.deliver_pending()
        assert (row.id, row.status) == (failed.message_ids[0], "cancelled")
        assert down.outbox == []
        assert team.pending_messages() == []

    def test_the_mail_of_an_inviter_who_lost_the_right(self) -> None:
        clock = FrozenClock(datetime(2026, 5, 1, 9, tzinfo=UTC))
        down = FailingMailer(failing=False)
        team = TeamAccess(MemoryStore(), down, secret_key=SECRET, clock=clock)
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        admin = team.invite(
            acc.id,
            actor_id="o",
            email="a@example.org",
            permissions=PermissionSet.of("users.manage"),
        )
        assert admin.token is not None
        team.accept_invitation(admin.token, user_id="a", email="a@example.org")
        down.failing = True
        with pytest.raises(DeliveryFailed) as failed:
            team.invite(
                acc.id, actor_id="a", email="d@example.org", permissions=PermissionSet.none()
            )
        down.failing = False
        # Acceptance would call the invitation revoked: its mail is not sent.
        team.set_permissions(acc.id, "a", PermissionSet.none(), actor_id="o")
        clock.advance(timedelta(minutes=1))
        sent_before = len(down.outbox)
        [row] = team.deliver_pending()
        assert (row.id, row.status) == (failed.value.message_ids[0], "cancelled")
        assert len(down.outbox) == sent_before
        assert team.pending_messages() == []


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path)


class TestCatalogInGerman:
    """cli.md: `teamaccess catalog [--language de]` shows the permissions in that language;
    permissions.md: the default catalog has German descriptions. Only the labels were
    German, the descriptions English."""

    def test_labels_and_descriptions_in_the_language(self, run: Cli) -> None:
        german = run("catalog", "--language", "de").stdout
        english = run("catalog").stdout
        for permission in Catalog.default():
            assert permission.description_de
            assert permission.description_de in german
            assert permission.description not in german
            assert permission.description in english


class TestSchemaHistoryIsDocumented:
    """backends.md lists what each schema version changed; it listed SQLite's 1, 2 and 7
    (of 7) and PostgreSQL's 1 (of 3), and cli.md's `migrate` example printed version 1."""

    @staticmethod
    def _versions(section: str) -> list[int]:
        text = (Path(__file__).parents[1] / "docs" / "backends.md").read_text()
        part = text.split(section, 1)[1].split("\n## ", 1)[0].split("\n### ", 2)
        table = next(p for p in part if "| version | what it changed |" in p)
        return [int(m) for m in re.findall(r"^\| *(\d+) \|", table, re.MULTILINE)]

    def test_every_sqlite_migration(self) -> None:
        from teamaccess._backends.sqlite_schema import MIGRATIONS

        assert self._versions("## `SQLiteStore`") == list(range(1, len(MIGRATIONS) + 1))

    def test_every_postgres_migration(self) -> None:
        from teamaccess._backends.postgres_schema import MIGRATIONS

        assert self._versions("## `PostgresStore`") == list(range(1, len(MIGRATIONS) + 1))
        cli = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
        assert f"(schema teamaccess): schema version {len(MIGRATIONS)}, up to date" in cli


def test_the_quick_start_names_every_dependency() -> None:
    """index.md names the dependencies; it left out idna, which pyproject.toml requires."""
    import tomllib

    root = Path(__file__).parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    text = (root / "docs" / "index.md").read_text()
    sentence = text.split("The dependencies are ", 1)[1].split(".\n", 1)[0]
    listed = {name.strip() for name in re.split(r",|\band\b", sentence.replace("\n", " "))}
    assert listed - {""} == names


class TestSenderIsTheAddressWritten:
    """contacts-and-mail.md: `sender=` is one address, with or without a name before it; a
    second address and text after the address are refused. These were accepted, and the
    mail went out from another address than the one written: the parser joins the words
    of an address written without angle brackets, reads an unclosed comment's rest (a
    second address in it) as the name, and takes text before angle brackets that reads as
    an address for the address."""

    REFUSED: ClassVar[dict[str, str]] = {
        "a name without angle brackets": "Customer Center noreply@example.com",
        "words after the address": "noreply@example.com Customer Center",
        "an unclosed comment holding a second address": (
            "info@shop.example (Shop <noreply@example.com>"
        ),
        "an unclosed comment": "noreply@example.com (Customer Center",
        "an address before the angle brackets": "info@shop.example,(): <noreply@example.com>",
        "a comment the parser joins to the domain": "noreply@example.com (a;)b)",
    }

    @pytest.mark.parametrize("sender", REFUSED.values(), ids=REFUSED.keys())
    def test_refused_when_the_service_is_made(self, sender: str) -> None:
        with pytest.raises(ValidationError, match=r"^sender .*<noreply@example\.com>"):
            TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, sender=sender)

    @pytest.mark.parametrize(
        ("sender", "address"),
        [
            ("Customer Center <noreply@example.com>", "noreply@example.com"),
            ("noreply@example.com (Customer Center)", "noreply@example.com"),
            ("noreply@example.com", "noreply@example.com"),
            ('"Shop <info@shop.example>" <noreply@example.com>', "noreply@example.com"),
            ("Shop (info@shop.example) <noreply@example.com>", "noreply@example.com"),
            ('"no reply"@example.com', '"no reply"@example.com'),
            ("Müller GmbH <info@müller.example>", "info@xn--mller-kva.example"),
        ],
    )
    def test_what_is_written_goes_out(self, sender: str, address: str) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET, sender=sender)
        acc = team.create_account(name="Muster", owner_id="o", owner_email="o@example.org")
        team.notify(acc.id, "billing", subject="Rechnung", text="t")
        [sent] = mailer.outbox
        back = message_from_bytes(sent.as_bytes(policy=policy.SMTP), policy=policy.default)
        assert [a.addr_spec for a in back["From"].addresses] == [address]

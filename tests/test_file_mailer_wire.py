"""FileMailer writes the bytes the last check before sending checked.

The service's last check writes each mail out and reads that wire form back (CRLF line
ends, as SMTP carries it). ``SmtpMailer`` sends those very bytes; ``FileMailer`` now
writes them too, with the LF line ends of a mail file, instead of writing the message a
second time with its own policy: what the file holds is what was checked.
"""

from __future__ import annotations

import email.message
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET

from teamaccess import FileMailer, PermissionSet, SQLiteStore, TeamAccess
from teamaccess._mail import gate
from teamaccess.testing import FrozenClock

P = PermissionSet.of


class _Checked:
    """Records what every last check before sending returned (the real check runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wires: list[bytes] = []
        check = gate.check_sent

        def recording(*args: Any, **kw: Any) -> tuple[str, bytes, str]:
            envelope, wire, sender = check(*args, **kw)
            self.wires.append(wire)
            return envelope, wire, sender

        monkeypatch.setattr(gate, "check_sent", recording)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often a message is written out whole (as_bytes(), which the last check
    and the old FileMailer both use)."""
    count = [0]
    as_bytes = email.message.Message.as_bytes

    def counting(self: email.message.Message, *args: Any, **kw: Any) -> bytes:
        count[0] += 1
        return as_bytes(self, *args, **kw)

    monkeypatch.setattr(email.message.Message, "as_bytes", counting)
    return count


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


def _team(tmp_path: Path, clock: FrozenClock, **kw: Any) -> TeamAccess:
    return TeamAccess(
        SQLiteStore(tmp_path / "t.db"), FileMailer(tmp_path / "mail"), secret_key=SECRET,
        clock=clock, **kw,
    )  # fmt: skip


def _as_file(wire: bytes) -> bytes:
    return wire.replace(b"\r\n", b"\n")


class TestSentAtOnce:
    """invite() and notify() with delivery="now"."""

    @pytest.mark.parametrize(
        "name", ["Muster GmbH", "Jörg Müller-Lüdenscheidt Kundencenter " * 3, "株式会社 漢字"]
    )
    def test_the_file_is_the_checked_wire(
        self, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, name: str
    ) -> None:
        team = _team(tmp_path, clock)
        checked = _Checked(monkeypatch)  # after the sender's check when the team is made
        acc = team.create_account(name=name, owner_id="o", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="o", email="dev@example.org", permissions=P())
        team.invite(acc.id, actor_id="o", email="jörg@bücher.example", permissions=P())
        team.add_contact(acc.id, actor_id="o", name="B", email="b@example.org",
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Rechnung für März", text="Grüße\n" * 50)
        data = [p.read_bytes() for p in _files(tmp_path / "mail")]
        assert len(data) == len(checked.wires) == 4
        for written, wire in zip(data, checked.wires, strict=True):
            assert written == _as_file(wire)
            assert b"\r" not in written
            assert written.replace(b"\n", b"\r\n") == wire  # nothing lost either way
        team.close()

    def test_the_message_is_written_once(
        self, tmp_path: Path, clock: FrozenClock, writes: list[int]
    ) -> None:
        team = _team(tmp_path, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        before = writes[0]
        team.invite(acc.id, actor_id="o", email="dev@example.org", permissions=P())
        # by the last check only; the file holds what it wrote
        assert writes[0] - before == 1
        assert len(_files(tmp_path / "mail")) == 1
        team.close()


class TestQueued:
    """deliver_pending() of queued mail."""

    def test_a_queued_notification_is_written_as_stored_and_checked(
        self, tmp_path: Path, clock: FrozenClock, writes: list[int]
    ) -> None:
        """A stored message of the builder's plain shape is checked on its bytes, and
        those are the file: it is neither parsed nor written again."""
        team = _team(tmp_path, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        team.add_contact(acc.id, actor_id="o", name="B", email="b@example.org",
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Invoice 2026-0042", text="Your invoice.")
        with team.store.read() as uow:
            stored = {m.message for m in uow.outbox(status="pending")}
        before = writes[0]
        assert [r.status for r in team.deliver_pending()] == ["sent", "sent"]
        assert writes[0] == before
        assert {p.read_bytes() for p in _files(tmp_path / "mail")} == stored
        team.close()

    def test_any_other_queued_notification_is_the_checked_wire(
        self, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = _team(tmp_path, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        team.add_contact(acc.id, actor_id="o", name="B", email="jörg@bücher.example",
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Rechnung für März", text="Grüße " * 40)
        with team.store.read() as uow:
            stored = {m.recipient: m.message for m in uow.outbox(status="pending")}
        checked = _Checked(monkeypatch)
        assert [r.status for r in team.deliver_pending()] == ["sent", "sent"]
        # The owner's mail is of the plain shape, checked on its stored bytes; the one to
        # an SMTPUTF8 address is parsed, written and read back by the full check.
        [wire] = checked.wires
        assert b"To: j\xc3\xb6rg@xn--bcher-kva.example\r\n" in wire
        files = {p.read_bytes() for p in _files(tmp_path / "mail")}
        assert files == {_as_file(wire), stored["chef@muster.de"]}
        team.close()

    def test_a_queued_invitation_is_the_checked_wire(
        self, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = _team(tmp_path, clock, delivery="queue")
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="o", email="dev@example.org", permissions=P())
        checked = _Checked(monkeypatch)
        [row] = team.deliver_pending()
        assert row.status == "sent"
        [path] = _files(tmp_path / "mail")
        assert [path.read_bytes()] == [_as_file(w) for w in checked.wires]
        team.close()


class TestUnchanged:
    """The file format, the modes and a subclass's own send()."""

    def test_mode_and_name(self, tmp_path: Path, clock: FrozenClock) -> None:
        team = _team(tmp_path, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="o", email="dev@example.org", permissions=P())
        [path] = _files(tmp_path / "mail")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "mail").st_mode) == 0o700
        assert path.name.endswith("-0000.eml")
        assert [p.name for p in (tmp_path / "mail").iterdir()] == [path.name]  # no temp file
        team.close()

    def test_a_subclass_that_overrides_send_sees_every_message(
        self, tmp_path: Path, clock: FrozenClock
    ) -> None:
        seen: list[str] = []

        class Logging(FileMailer):
            def send(self, message: Any) -> None:
                seen.append(str(message["To"]))
                super().send(message)

        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), Logging(tmp_path / "mail"),
                          secret_key=SECRET, clock=clock)  # fmt: skip
        acc = team.create_account(name="A", owner_id="o", owner_email="chef@muster.de")
        team.invite(acc.id, actor_id="o", email="dev@example.org", permissions=P())
        assert seen == ["dev@example.org"]
        assert len(_files(tmp_path / "mail")) == 1
        team.close()

"""A delivery run reads the next notification in the unit that records the send before
it. A failure of that read (the next row is damaged: another program wrote it) must
not lose the record of the mail that went: unrecorded, it goes again once its lease
ends, from whichever worker claims it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.conftest import SECRET

from teamaccess import MemoryMailer, SQLiteStore, StorageError, TeamAccess
from teamaccess.testing import FrozenClock

SENDER = "Panel <noreply@panel.example.net>"


class DamagingMailer(MemoryMailer):
    """Sends; with the first message, another program damages the other waiting row."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self._db = db

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        if len(self.outbox) == 1:
            with sqlite3.connect(self._db) as raw:
                raw.execute("UPDATE outbox SET message = 5 WHERE recipient <> ?", (message["To"],))
            raw.close()


def test_a_damaged_next_row_does_not_lose_the_record_of_a_sent_mail(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    clock = FrozenClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    panel = TeamAccess(
        SQLiteStore(db), None, secret_key=SECRET, delivery="queue", sender=SENDER, clock=clock
    )
    acct = panel.create_account(name="Muster GmbH", owner_id="max", owner_email="max@muster.de")
    panel.add_contact(
        acct.id, actor_id="max", name="Books", email="books@muster.de", categories=["billing"]
    )
    panel.notify(acct.id, "billing", subject="Invoice", text="Ready.")
    mailer = DamagingMailer(db)
    worker = TeamAccess(SQLiteStore(db), mailer, secret_key=SECRET, sender=SENDER, clock=clock)
    with pytest.raises(StorageError):  # the damaged row stops the run: it says so
        worker.deliver_pending()
    [sent] = [m["To"] for m in mailer.outbox]
    # Another process (this one may end now, as 'teamaccess deliver' does) reads the
    # first row as sent, so no worker sends it again after its lease.
    with sqlite3.connect(db) as raw:
        status = raw.execute("SELECT status FROM outbox WHERE recipient = ?", (sent,)).fetchone()
    raw.close()
    assert status == ("sent",)
    clock.advance(timedelta(hours=1))
    other = MemoryMailer()
    later = TeamAccess(SQLiteStore(db), other, secret_key=SECRET, sender=SENDER, clock=clock)
    with pytest.raises(StorageError):
        later.deliver_pending()
    assert sent not in [m["To"] for m in other.outbox]

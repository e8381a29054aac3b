"""Attacks on erase_person() in mail to others and in free text: forms of the person
that survived, and text that is not the person that was rewritten or cancelled."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest

from teamaccess import SYSTEM, MemoryMailer, PermissionSet, SQLiteStore, StorageError, Store
from teamaccess.testing import FrozenClock

from .test_privacy_mail import ERASED, OTHER, PIA, PIA_EMAIL, content, make, setup


def test_a_decomposed_address_is_erased(store: Store, clock: FrozenClock) -> None:
    # A text may hold "ö" as "o" and a combining diaeresis; the address is stored composed.
    decomposed = unicodedata.normalize("NFD", PIA_EMAIL)
    assert decomposed != PIA_EMAIL
    team = make(store, clock, MemoryMailer(), delivery="queue")
    acc = setup(team, clock)
    team.notify(acc, "billing", subject="Neu", text=f"Bitte an {decomposed} schreiben.")
    team.add_contact(
        acc,
        actor_id="olga",
        name=f"Vertretung von {decomposed}",
        email="v@other.example",
        categories=["product"],
    )

    report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

    assert (report.messages_redacted, report.messages_cancelled) == (2, 0)
    assert report.texts_redacted == 1
    team.deliver_pending()
    texts = [content(m)[1] for m in team.mailer.outbox]  # type: ignore[attr-defined]
    assert [t.split("\n")[0] for t in texts] == [f"Bitte an {ERASED} schreiben."] * 2
    for text in texts:
        assert "pia@" not in unicodedata.normalize("NFC", text).lower()
    names = [c.name for c in team.contacts(acc)]
    assert f"Vertretung von {ERASED}" in names


def test_an_id_that_is_a_word_of_the_sender_cancels_nothing(
    store: Store, clock: FrozenClock
) -> None:
    # The user id is also a word of the vendor's sender and of no text: mail to others
    # that does not name the person goes out unchanged.
    mailer = MemoryMailer()
    sender = "Panel Support <noreply@panel.example.net>"
    first = make(store, clock, MemoryMailer(), sender=sender)
    acc = first.create_account(name="Shop", owner_id="olga", owner_email="olga@shop.example").id
    inv = first.invite(
        acc, actor_id="olga", email="pia@pia.example", permissions=PermissionSet.of()
    )
    first.accept_invitation(inv.token or "", user_id="support", email="pia@pia.example")
    first.add_contact(acc, actor_id="olga", name="O", email=OTHER, categories=["billing"])
    team = make(store, clock, mailer, sender=sender, delivery="queue")
    team.notify(acc, "billing", subject="Invoice", text="Nothing about anyone.")
    with store.read() as uow:
        before = sorted(r.message or b"" for _, r in uow.outbox_texts(limit=100))

    report = team.erase_person(user_id="support", actor_id=SYSTEM)

    assert (report.messages_redacted, report.messages_cancelled) == (0, 0)
    with store.read() as uow:
        assert sorted(r.message or b"" for _, r in uow.outbox_texts(limit=100)) == before
    assert [r.status for r in team.deliver_pending()] == ["sent", "sent"]


def test_an_id_inside_another_address_stays(store: Store, clock: FrozenClock) -> None:
    team = make(store, clock, MemoryMailer(), delivery="queue")
    acc = setup(team, clock)
    others = f"{PIA}@other.example, info@{PIA}.example, {PIA}.5"
    team.notify(acc, "billing", subject="Invoice", text=f"{others}; {PIA}.")

    report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

    assert report.messages_redacted == 2
    team.deliver_pending()
    for msg in team.mailer.outbox:  # type: ignore[attr-defined]
        assert content(msg)[1].startswith(f"{others}; {ERASED}.\n")


@pytest.mark.parametrize(
    ("column", "value"),
    [("last_error", "x'00ff'"), ("message", "99999999999"), ("message", "123")],
)
def test_an_outbox_value_of_another_type_is_a_storage_error(
    tmp_path: Path, clock: FrozenClock, column: str, value: str
) -> None:
    # Another program wrote a BLOB where text belongs, or a number where the message is.
    team = make(SQLiteStore(tmp_path / "t.db"), clock, MemoryMailer(), delivery="queue")
    acc = setup(team, clock)
    team.notify(acc, "billing", subject="Invoice", text=f"Ask {PIA_EMAIL}")
    team._store.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        sql = f"UPDATE outbox SET {column} = {value} WHERE recipient = ?"  # noqa: S608
        conn.execute(sql, (OTHER,))
    conn.close()
    team = make(SQLiteStore(tmp_path / "t.db"), clock, MemoryMailer(), delivery="queue")
    with pytest.raises(StorageError, match=f"in the {column} column"):
        team.erase_person(user_id=PIA, actor_id=SYSTEM)
    team._store.close()

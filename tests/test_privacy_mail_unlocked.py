"""Erasure in mail to others, parsed before the write unit: with a month of sent mail
kept, parsing every stored message takes seconds, and other writers would wait for all of
it. The messages are judged before the unit opens; the unit parses only what was added or
changed since, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from teamaccess import SYSTEM, MemoryMailer, PermissionSet, SQLiteStore, Store, TeamAccess
from teamaccess._mail import redact
from teamaccess._mail.mailers import build_message, parse_stored
from teamaccess.testing import FrozenClock

from .test_privacy_mail import (
    ERASED,
    OTHER,
    PIA,
    PIA_EMAIL,
    SUBJECT,
    assert_no_form,
    content,
    erased,
    make,
    notify,
    setup,
    stored,
)
from .unit_hook import UnitHook

OLGA = "olga@shop.example"
HER = PIA_EMAIL.replace("Bü", "bü")  # her rows' recipient, as stored


class Watch(UnitHook):
    """Counts the parses of stored messages, those made while the erasure's write unit
    is open apart; *during* runs at the first parse."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, store: Store, during: Callable[[], None]
    ) -> None:
        self.store = store
        self.before: list[str] = []
        self.inside: list[str] = []
        self.during: Callable[[], None] | None = during
        real_redact = redact.redact_message

        def parse(source: bytes, recipient: str, redactor: redact.Redactor) -> bytes | None:
            (self.inside if self.in_unit else self.before).append(recipient)
            if self.during is not None:
                during, self.during = self.during, None
                during()
            return real_redact(source, recipient, redactor)

        monkeypatch.setattr(redact, "redact_message", parse)
        super().__init__(monkeypatch, store)


def foreign_row(team: TeamAccess) -> str:
    """A waiting row to OTHER rewritten by another program into one HTML part naming the
    person: it cannot be rewritten, so the erasure cancels it."""
    foreign = (
        "From: Panel <noreply@panel.example>\nTo: other@other.example\nSubject: x\n"
        "Date: Fri, 01 May 2026 09:00:00 +0000\nMessage-ID: <f@panel.example>\n"
        "Content-Language: de\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n"
        f"Content-Transfer-Encoding: 8bit\n\n<p>{PIA_EMAIL}</p>\n"
    ).encode()
    # "Invoice": stored() leaves it out.
    team.notify(team.accounts_for("olga")[0].id, "billing", subject="Invoice", text="odd")
    with team._store.read() as uow:
        rows = [m for _, m in uow.outbox_texts() if m.recipient == OTHER]
    row = next(m for m in rows if m.message is not None and b"odd" in m.message)
    with team._store.begin() as uow:
        uow.rewrite_outbox(attrs.evolve(row, message=foreign))
        uow.commit()
    return row.id


class TestParsedBeforeTheWriteUnit:
    """An unchanged outbox: no message is parsed while the write transaction is open."""

    def test_no_parse_in_the_unit_and_the_same_result(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock, MemoryMailer(), delivery="queue")
        acc = setup(team, clock)
        notify(team, acc)
        team.notify(acc, "billing", subject="Invoice", text="Nothing personal.")
        cancelled = foreign_row(team)
        plain = {
            m.id: m.message
            for m in team.pending_messages()
            if m.message is not None and b"Nothing personal" in m.message and m.recipient != HER
        }
        assert len(plain) == 2
        free: list[bool] = []

        def during() -> None:
            # Another store on the same file can write while a message is parsed: the
            # erasure holds no write lock (a short timeout: it must not have to wait).
            if isinstance(store, SQLiteStore):
                conn = store._conn
                assert conn is not None
                free.append(not conn.in_transaction)
                other = SQLiteStore(store.path, timeout=0.2)
                try:
                    make(other, clock, MemoryMailer()).add_contact(
                        acc, actor_id="olga", name="Late", email="late@other.example",
                        categories=["general"],
                    )  # fmt: skip
                finally:
                    other.close()

        watch = Watch(monkeypatch, store, during)

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert watch.inside == []
        # The named notice, the plain one and the odd one, foreign to OTHER (her rows too:
        # the unit deletes them).
        assert sorted(watch.before) == sorted([OLGA, OTHER, HER] * 3)
        assert free == ([True] if isinstance(store, SQLiteStore) else [])
        assert (report.messages_redacted, report.messages_cancelled) == (2, 1)
        after = stored(team)
        assert set(after) == {OLGA, OTHER}
        for source in after.values():
            assert_no_form(source)
            assert content(parse_stored(source))[0] == erased(SUBJECT)
        waiting = {m.id: m for m in team.pending_messages()}
        for message_id, source in plain.items():
            assert waiting[message_id].message == source  # untouched, byte for byte
        with team._store.read() as uow:
            row = uow.get_outbox(cancelled)
        assert row is not None
        assert (row.status, row.message) == ("cancelled", None)
        assert "not a message the library built" in (row.last_error or "")
        late = "late@other.example" in {c.email for c in team.contacts(acc)}
        assert late == isinstance(store, SQLiteStore)


class TestChangedBetween:
    """What changes between the scan and the write unit is parsed in the unit."""

    def test_added_and_changed_messages(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock, MemoryMailer(), delivery="queue")
        acc = setup(team, clock)
        notify(team, acc)
        team.notify(acc, "billing", subject="Invoice", text="Nothing personal.")
        named_to_olga = next(
            m for m in team.pending_messages()
            if m.recipient == OLGA and m.message is not None and b"Invoice" not in m.message
        )  # fmt: skip
        watch = Watch(monkeypatch, store, lambda: None)

        def between() -> None:
            # A new notice naming her, and olga's copy of the first one replaced by a
            # message that names her in other words: the verdict the scan kept for the
            # old bytes must not be used for it.
            team.notify(acc, "billing", subject="Zweite", text=f"Nachfolger von {PIA_EMAIL}.")
            was = parse_stored(named_to_olga.message or b"")
            again = build_message(
                sender=str(was["From"]), to=OLGA, subject="Geändert",
                text=f"Neu: {PIA_EMAIL} ist weg.", html=None,
                message_id=str(was["Message-ID"]), language=str(was["Content-Language"]),
            ).as_bytes()  # fmt: skip
            with store.read() as uow:
                row = uow.get_outbox(named_to_olga.id)
            assert row is not None
            with store.begin() as uow:
                uow.rewrite_outbox(attrs.evolve(row, message=again))
                uow.commit()

        watch.between = between

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        # Scanned: both notices to each. In the unit: the new notice (hers is
        # deleted first) and olga's changed copy; nothing else.
        assert sorted(watch.before) == sorted([OLGA, OTHER, HER] * 2)
        assert sorted(watch.inside) == sorted([OLGA, OTHER, OLGA])
        assert (report.messages_redacted, report.messages_cancelled) == (4, 0)
        texts = {}
        for m in team.pending_messages():
            if m.message is not None:
                assert_no_form(m.message)
                subject, text, _ = content(parse_stored(m.message))
                texts[(m.recipient, subject)] = text
        assert texts[(OLGA, "Geändert")].startswith(f"Neu: {ERASED} ist weg.")
        assert texts[(OTHER, "Zweite")].startswith(f"Nachfolger von {ERASED}.")
        assert texts[(OLGA, "Zweite")].startswith(f"Nachfolger von {ERASED}.")
        assert (OLGA, erased(SUBJECT)) not in texts  # the stale verdict was not used
        assert (OTHER, erased(SUBJECT)) in texts

    def test_the_person_gains_an_address_in_between(
        self, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock, MemoryMailer(), delivery="queue")
        acc = setup(team, clock)
        new = "pia.neu@other.example"
        # Not hers yet when the scan reads it: the scan's verdict is "names nobody".
        team.notify(acc, "billing", subject="Invoice", text=f"Fragen an {new}.")
        watch = Watch(monkeypatch, store, lambda: None)

        def between() -> None:
            now = make(store, clock, MemoryMailer())  # sends at once: the token is set
            second = now.create_account(name="Zwei", owner_id="zoe", owner_email=OTHER)
            inv = now.invite(second.id, actor_id="zoe", email=new, permissions=PermissionSet.of())
            now.accept_invitation(inv.token or "", user_id=PIA, email=new)

        watch.between = between

        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        # Whom the erasure looks for changed: every message is judged again in the unit.
        assert sorted(watch.before) == sorted([OLGA, OTHER, HER])
        assert sorted(watch.inside) == sorted([OLGA, OTHER])
        assert new in report.addresses
        assert report.messages_redacted == 2
        for m in team.pending_messages():
            if m.message is not None and m.kind != "invitation":
                assert content(parse_stored(m.message))[1].startswith(f"Fragen an {ERASED}.")

"""Schema 7 keeps ids unique whatever they look like: a row stored without its number
(its key was taken when it was written) still blocks a second row with its id once that
key is free again, and every id finds its own row."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from tests.conftest import START

from teamaccess import Conflict, OutboxMessage, SQLiteStore
from teamaccess.testing import contract as c


def outbox_row(message_id: str, recipient: str = "y@example.org") -> OutboxMessage:
    return OutboxMessage(id=message_id, account_id="acc1", kind="notice",
                         recipient=recipient, message_id="<2@x>", created_at=START,
                         next_attempt_at=START, message=b"x")  # fmt: skip


def ids_in(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute(f"SELECT id FROM {table}"))  # noqa: S608
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "team.db")
    with store.begin() as uow:
        uow.add_account(c.account())
        uow.commit()
    return store


def test_an_invitation_id_stored_without_its_number_stays_taken(store: SQLiteStore) -> None:
    # "x" takes key 1 first, so the numbered id of 1 is stored under another key ...
    for inv_id, email in (("x", "a@example.org"), ("inv_0000000000000001", "b@example.org")):
        with store.begin() as uow:
            uow.add_invitation(c.invitation(inv_id, email), email)
            uow.commit()
    with store.begin() as uow:  # ... and key 1 is free again
        uow.delete_invitation("x")
        uow.commit()
    with pytest.raises(Conflict, match="exists already"), store.begin() as uow:
        uow.add_invitation(c.invitation("inv_0000000000000001", "c@example.org"), "c@example.org")
    assert ids_in(store.path, "invitations") == ["inv_0000000000000001"]
    with store.read() as uow:
        found = uow.get_invitation("inv_0000000000000001")
    assert found is not None
    assert found.email == "b@example.org"
    store.close()


def test_an_outbox_id_stored_without_its_number_stays_taken(store: SQLiteStore) -> None:
    for message_id in ("by hand", "msg_0000000000000001"):
        with store.begin() as uow:
            uow.add_outbox(outbox_row(message_id))
            uow.commit()
    with store.begin() as uow:
        uow.delete_outbox("by hand")
        uow.commit()
    with pytest.raises(Conflict, match="exists already"), store.begin() as uow:
        uow.add_outbox(outbox_row("msg_0000000000000001", "z@example.org"))
    assert ids_in(store.path, "outbox") == ["msg_0000000000000001"]
    store.close()


# Ids whose numbers collide with the keys SQLite picks for the others (1, 2, ...), the
# same number written otherwise, an older random id, text of no such form.
_POOL = ["x", "inv_0000000000000001", "inv_0000000000000002", "inv_000000000000000A",
         "inv_+000000000000001"]  # fmt: skip


class NumberedIds(RuleBasedStateMachine):
    """Adds, deletes and updates by id against a dict: an id is stored once or refused."""

    def __init__(self) -> None:
        super().__init__()
        self.path = Path(tempfile.mkdtemp()) / "team.db"
        self.store = SQLiteStore(self.path)
        with self.store.begin() as uow:
            uow.add_account(c.account())
            uow.commit()
        self.model: dict[str, str] = {}
        self.n = 0

    def teardown(self) -> None:
        self.store.close()

    @rule(inv_id=st.sampled_from(_POOL))
    def add(self, inv_id: str) -> None:
        self.n += 1
        email = f"u{self.n}@example.org"
        try:
            with self.store.begin() as uow:
                uow.add_invitation(c.invitation(inv_id, email), email)
                uow.commit()
        except Conflict:
            assert inv_id in self.model
            return
        assert inv_id not in self.model
        self.model[inv_id] = email

    @rule(inv_id=st.sampled_from(_POOL))
    def delete(self, inv_id: str) -> None:
        with self.store.begin() as uow:
            uow.delete_invitation(inv_id)
            uow.commit()
        self.model.pop(inv_id, None)

    @rule(inv_id=st.sampled_from(_POOL))
    def resend(self, inv_id: str) -> None:
        with self.store.begin() as uow:
            inv = uow.get_invitation(inv_id)
            assert (inv is None) == (inv_id not in self.model)
            if inv is not None:
                uow.update_invitation(attrs.evolve(inv, sent_count=inv.sent_count + 1))
            uow.commit()

    @invariant()
    def each_id_finds_its_own_row(self) -> None:
        with self.store.read() as uow:
            for inv_id in _POOL:
                found = uow.get_invitation(inv_id)
                joined, _ = uow.invitation_and_inviter(inv_id)
                if inv_id in self.model:
                    assert found is not None
                    assert joined is not None
                    assert found.email == joined.email == self.model[inv_id]
                else:
                    assert found is None
                    assert joined is None
        assert ids_in(self.path, "invitations") == sorted(self.model)


TestNumberedIds = NumberedIds.TestCase
TestNumberedIds.settings = settings(
    max_examples=200, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


def test_the_check_is_a_search_of_the_small_id_index(tmp_path: Path) -> None:
    from teamaccess._backends.sqlite_unit import _UNNUMBERED_ID

    SQLiteStore(tmp_path / "team.db").close()
    conn = sqlite3.connect(tmp_path / "team.db")
    try:
        for table, sql in _UNNUMBERED_ID.items():
            plan = " ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, ("x",)))
            assert f"SEARCH {table} USING COVERING INDEX {table}_id (id=?)" in plan, plan
            assert f"SCAN {table}" not in plan
    finally:
        conn.close()

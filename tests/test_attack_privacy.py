"""Attacks on erasure: after erase_person() the raw SQLite file and its WAL hold no form of
the person's address (any case, Unicode or IDNA domain) or user id, also where it sat in
mail to others, in failed delivery text and in invitations they sent; the audit log keeps
its events; the export of a person in two accounts is complete."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from teamaccess import (
    SYSTEM,
    DeliveryFailed,
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    Store,
    TeamAccess,
)
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SECRET

P = PermissionSet.of
USER = "user-jurgen-4471"
# One person, written in three ways: mixed case with a Unicode domain, lower case with the
# IDNA domain, and upper case.
AS_INVITED = "Jürgen.Person@Bücher.example"
AS_ACCEPTED = "jürgen.person@xn--bcher-kva.example"
AS_CONTACT = "JÜRGEN.PERSON@BÜCHER.EXAMPLE"
NEEDLES = [
    "jürgen.person".encode(),
    "jÜrgen.person".encode(),  # bytes.lower() leaves the UTF-8 of Ü as it is
    b"j=c3=bcrgen",  # quoted-printable in a stored mail
    b"j%c3%bcrgen",  # URL-quoted
    b"jurgen-4471",
    b"jurgen.person",
    b"j\\u00fcrgen",  # JSON-escaped in a details column
]


def make(store: Store, clock: FrozenClock, mailer: MemoryMailer, **kw: object) -> TeamAccess:
    return TeamAccess(
        store,
        mailer,
        secret_key=SECRET,
        clock=clock,
        pseudonym_key="attack-pseudonym-key",
        require_email_match=False,
        **kw,  # type: ignore[arg-type]
    )


def files(path: Path) -> dict[str, bytes]:
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            found[p.name] = p.read_bytes().lower()
    return found


class QuotingMailer(FailingMailer):
    """A server that refuses, quoting the recipient of the message it refuses."""

    def send(self, message: EmailMessage) -> None:
        if self.failing:
            self.error = ConnectionError(f"550 <{message['To']}>: mailbox full")
        super().send(message)


def build(
    team: TeamAccess, mailer: FailingMailer, clock: FrozenClock, *, free_text: bool = False
) -> tuple[str, str, str]:
    t = team
    a1 = t.create_account(name="Alpha", owner_id="alpha", owner_email="alpha@owner.example").id
    a2 = t.create_account(name="Beta", owner_id="beta", owner_email="beta@owner.example").id
    a3 = t.create_account(name="Gamma", owner_id="gamma", owner_email="gamma@owner.example").id
    inv = t.invite(a1, actor_id="alpha", email=AS_INVITED, permissions=P("users.manage"),
                   note="For Jürgen.Person@Bücher.example", metadata={"ticket": 7})  # fmt: skip
    t.accept_invitation(inv.token or "", user_id=USER, email=AS_ACCEPTED)
    inv = t.invite(a2, actor_id="beta", email=AS_CONTACT, permissions=P("billing.view"))
    t.accept_invitation(inv.token or "", user_id=USER, email=AS_CONTACT)
    # He invites others: their mail names him as the inviter.
    inv = t.invite(a1, actor_id=USER, email="max@other.example", permissions=P())
    t.accept_invitation(inv.token or "", user_id="max", email="max@other.example")
    t.invite(a1, actor_id=USER, email="friend@other.example", permissions=P())
    t.add_contact(a2, actor_id="beta", name="Jürgen Person", email=AS_CONTACT,
                  categories=["billing"])  # fmt: skip
    t.add_contact(a2, actor_id="beta", name="Other", email="other@other.example",
                  categories=["billing"])  # fmt: skip
    # Mail fails, and the server's error quotes the recipient's address.
    mailer.failing = True
    text = "Your invoice"
    if free_text:
        # The vendor's own notice names him, in mail that waits for others; the error
        # text of every failed row quotes him.
        text = "Jürgen.Person@Bücher.example changed the invoice address"
        mailer.error = ConnectionError(f"550 <{AS_ACCEPTED}>: mailbox {AS_INVITED} full")
    with contextlib.suppress(DeliveryFailed):
        t.notify(a2, "billing", subject="Invoice", text=text)
    with contextlib.suppress(DeliveryFailed):
        t.invite(a3, actor_id="gamma", email=AS_CONTACT, permissions=P())
    mailer.failing = False
    # Filler, so tables and indexes span many pages.
    for n in range(200):
        t.add_contact(a2, actor_id="beta", name=f"C{n}", email=f"c{n}@other.example",
                      categories=["general"])  # fmt: skip
    clock.advance(timedelta(minutes=1))
    return a1, a2, a3


@pytest.mark.parametrize("free_text", [False, True], ids=["library-text", "vendor-free-text"])
@pytest.mark.parametrize("by", ["user_id", "email"])
def test_no_form_of_the_person_is_left_in_the_file(
    tmp_path: Path, clock: FrozenClock, by: str, free_text: bool
) -> None:
    path = tmp_path / "team.db"
    store = SQLiteStore(path)
    mailer = QuotingMailer(failing=False) if not free_text else FailingMailer(failing=False)
    team = make(store, clock, mailer)
    accounts = build(team, mailer, clock, free_text=free_text)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = files(path)
    present = [n for n in NEEDLES if any(n in data for data in before.values())]
    assert b"jurgen-4471" in present, present
    assert "jürgen.person".encode() in present, present
    counts = {a: len(team.audit_log(a, limit=10_000)) for a in accounts}

    if by == "user_id":
        report = team.erase_person(user_id=USER, email=AS_CONTACT, actor_id=SYSTEM)
    else:
        report = team.erase_person(email="JÜRGEN.Person@xn--BCHER-kva.example", actor_id=SYSTEM)
        # by address alone, the user id is found through the memberships
        assert USER in report.user_ids
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = files(path)
    for name, data in after.items():
        for needle in NEEDLES:
            assert needle not in data, f"{needle!r} still in {name}"
    for a in accounts:
        # the same events, plus the erasure itself where he had anything
        assert len(team.audit_log(a, limit=10_000)) in (counts[a], counts[a] + 1)
    assert b"other@other.example" in after[path.name]
    store.close()


def test_export_of_a_person_in_two_accounts_is_complete(tmp_path: Path, clock: FrozenClock) -> None:
    store = SQLiteStore(tmp_path / "team.db")
    mailer = FailingMailer(failing=False)
    team = make(store, clock, mailer)
    a1, a2, a3 = build(team, mailer, clock)
    for request in (
        {"user_id": USER},
        {"email": AS_INVITED},
        {"email": AS_ACCEPTED},
        {"email": AS_CONTACT},
        {"user_id": USER, "email": AS_CONTACT},
    ):
        doc = team.export_person(**request)  # type: ignore[arg-type]
        text = json.dumps(doc, default=str)
        assert {m["account_id"] for m in doc["memberships"]} == {a1, a2}, request
        received = {i["account_id"] for i in doc["invitations_received"]}
        assert received == {a1, a2, a3}, request
        assert len(doc["invitations_sent"]) == 2, request
        assert [c["account_id"] for c in doc["contacts"]] == [a2], request
        assert doc["mail"], request  # the failed notice and invitation wait for him
        assert doc["audit_events"], request
        assert "other@other.example" not in text
        assert "c17@other.example" not in text
    store.close()


def held_by_memory(store: object) -> bytes:
    """Every string and bytes value reachable from a MemoryStore, lower-cased."""
    import gc
    import types

    seen: set[int] = set()
    found: list[bytes] = []
    todo = [store]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type | types.FunctionType):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj.lower().encode())
        elif isinstance(obj, bytes):
            found.append(obj.lower())
        else:
            todo.extend(gc.get_referents(obj))
    return b"\n".join(found)


def held_by_postgres(tmp_path: Path) -> bytes:
    """Every value of every row of the test's schema, lower-cased."""
    import psycopg

    from .conftest import postgres_conninfo, postgres_schema

    schema = postgres_schema(tmp_path)
    found: list[bytes] = []
    with psycopg.connect(postgres_conninfo()) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        for (table,) in tables.fetchall():
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):  # noqa: S608
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        found.append(bytes(value).lower())
                    elif value is not None:
                        found.append(str(value).lower().encode())
    return b"\n".join(found)


def test_no_form_of_the_person_is_left_in_the_store(
    store: Store, backend: str, tmp_path: Path, clock: FrozenClock
) -> None:
    """The vendor-free-text case on every backend: the MemoryStore's object graph, the
    PostgreSQL rows, the SQLite file."""
    mailer = FailingMailer(failing=False)
    team = make(store, clock, mailer)
    build(team, mailer, clock, free_text=True)

    def held() -> bytes:
        if backend == "memory":
            return held_by_memory(store)
        if backend == "postgres":
            return held_by_postgres(tmp_path)
        path = tmp_path / "teamaccess.db"
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        return b"\n".join(files(path).values())

    before = held()
    assert "jürgen.person".encode() in before
    assert b"jurgen-4471" in before
    report = team.erase_person(user_id=USER, actor_id=SYSTEM)
    assert report.messages_redacted >= 2
    assert report.messages_cancelled == 0
    after = held()
    for needle in NEEDLES:
        assert needle not in after, needle
    assert b"other@other.example" in after
    # The notice still waits for the others, and goes out.
    clock.advance(timedelta(days=1))
    mailer.outbox.clear()
    sent = team.deliver_pending()
    assert sorted(r.recipient for r in sent) == ["beta@owner.example", "other@other.example"]
    assert {r.status for r in sent} == {"sent"}
    assert len(mailer.outbox) == 2
    for msg in mailer.outbox:
        body = msg.get_body(("plain",))
        assert body is not None
        assert "[erased] changed the invoice address" in body.get_content()

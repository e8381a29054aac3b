"""PostgresStore: the member, contact and account writes send their write and its audit
event together (``deferred()``), and read the account with the actor's membership in
one statement; counted on the wire as in test_postgres_pipeline.py. A write that fails
midway fails as it did alone and leaves nothing written. Needs TEAMACCESS_TEST_POSTGRES.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.conftest import SECRET, START, postgres_conninfo
from tests.test_postgres_pipeline import Wire, counts, locks_held

from teamaccess import (
    SYSTEM,
    Conflict,
    InvitationRevoked,
    MemoryMailer,
    PermissionDenied,
    PermissionSet,
    PostgresStore,
    StorageError,
    TeamAccess,
)
from teamaccess._service import core
from teamaccess.testing import FrozenClock
from teamaccess.testing import contract as c

pytestmark = pytest.mark.postgres

P = PermissionSet.of


# Each public write changed here, on an account of "boss" with a member "u1" who may
# manage users, an invitation "inv" u1 sent and a contact "ct": (name, call).
Call = Callable[[TeamAccess, dict[str, Any]], object]
WRITES: list[tuple[str, Call]] = [
    ("create_account", lambda t, s: t.create_account(
        name="B", owner_id="boss2", owner_email="b2@example.org")),
    ("rename_account", lambda t, s: t.rename_account(s["acc"], actor_id="boss", name="R")),
    ("set_permissions", lambda t, s: t.set_permissions(
        s["acc"], "u1", P("users.manage", "billing.view", "billing.pay"), actor_id="boss")),
    ("suspend_member", lambda t, s: t.suspend_member(s["acc"], "u1", actor_id="boss")),
    ("set_access_until", lambda t, s: t.set_access_until(
        s["acc"], "u1", START + timedelta(days=30), actor_id="boss")),
    ("forget_resource", lambda t, s: t.forget_resource(s["acc"], "srv1", actor_id="boss")),
    ("add_contact", lambda t, s: t.add_contact(
        s["acc"], actor_id="boss", name="N", email="n@example.org", categories=["billing"])),
    ("update_contact", lambda t, s: t.update_contact(s["ct"], actor_id="boss", name="Y")),
    ("remove_contact", lambda t, s: t.remove_contact(s["ct"], actor_id="boss")),
    ("notify", lambda t, s: t.notify(s["acc"], "billing", subject="S", text="T")),
    ("transfer_ownership", lambda t, s: t.transfer_ownership(
        s["acc"], actor_id="boss", to_user_id="u1")),
    ("remove_member", lambda t, s: t.remove_member(s["acc"], "u1", actor_id="boss")),
    ("leave", lambda t, s: t.remove_member(s["acc"], "u1", actor_id="u1")),
    ("resend_invitation", lambda t, s: t.resend_invitation(s["inv"], actor_id="u1")),
    ("resend_by_another", lambda t, s: t.resend_invitation(s["inv"], actor_id="boss")),
    ("revoke_invitation", lambda t, s: t.revoke_invitation(s["inv"], actor_id="u1")),
]  # fmt: skip

# (round trips, statements) of each, pipelined; one by one, a round trip per statement.
# Before this grouping (each write and its event alone; the account and the actor, the
# contact and the actor, the invitation and the inviter each read in two statements):
# create_account 5, rename_account 5, set_permissions, suspend_member, set_access_until
# and forget_resource 6, add_contact, update_contact and remove_contact 5, notify (two
# recipients, with the two sent records) 12, transfer_ownership 8, remove_member 8 (the
# member had sent a pending invitation, which it revokes) and leave 7 (the same),
# resend 10, revoke 4. Mail sent at once is read back before its send (one statement
# a message: a deletion committed in between stops it), which added one to the resends
# and two to notify (two recipients). add_contact reads whether another contact of the
# account has the address (one contact per address), which added one.
TRIPS = {
    "create_account": (3, 8),
    "rename_account": (3, 6),
    "set_permissions": (4, 7),
    "suspend_member": (4, 7),
    "set_access_until": (4, 7),
    "forget_resource": (5, 7),
    "add_contact": (4, 7),
    "update_contact": (3, 6),
    "remove_contact": (3, 6),
    "notify": (12, 23),
    "transfer_ownership": (4, 9),
    "remove_member": (5, 12),
    "leave": (4, 11),
    "resend_invitation": (9, 18),
    "resend_by_another": (10, 19),
    "revoke_invitation": (3, 7),
}


def seed(team: TeamAccess) -> dict[str, Any]:
    acc = team.create_account(name="A", owner_id="boss", owner_email="b@example.org")
    inv = team.invite(acc.id, actor_id="boss", email="u1@example.org",
                      permissions=P("users.manage", "billing.view"))  # fmt: skip
    assert inv.token is not None
    team.accept_invitation(inv.token, user_id="u1", email="u1@example.org")
    sent = team.invite(acc.id, actor_id="u1", email="x@example.org", permissions=P("billing.view"))
    ct = team.add_contact(acc.id, actor_id="boss", name="C", email="c@example.org",
                          categories=["billing"])  # fmt: skip
    return {"acc": acc.id, "inv": sent.id, "ct": ct.id}


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
@pytest.mark.parametrize(("name", "call"), WRITES, ids=[w[0] for w in WRITES])
def test_round_trips(tmp_path: Path, schema: str, pipelined: bool, name: str, call: Call) -> None:
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
        ids = seed(team)
        before = counts(wire.messages())
        call(team, ids)
        after = counts(wire.messages())
        team.close()
    wire.close()
    trips, statements = TRIPS[name]
    found = (after[0] - before[0], after[1] - before[1])
    assert found == ((trips, statements) if pipelined else (statements, statements))


# -- a write that fails midway ------------------------------------------------------------


def tables(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables, for "nothing written"."""
    with psycopg.connect(postgres_conninfo(), autocommit=True) as raw:
        return {
            table: sorted(
                raw.execute(f'SELECT * FROM "{schema}".{table}').fetchall(),  # noqa: S608
                key=repr,
            )
            for table in ("accounts", "members", "contacts", "invitations", "outbox", "events")
        }


@pytest.fixture
def team(schema: str) -> Iterator[TeamAccess]:
    store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
    team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=FrozenClock(START))
    yield team
    team.close()


@pytest.mark.parametrize(("name", "call"), WRITES, ids=[w[0] for w in WRITES])
def test_an_event_that_cannot_be_written_last_keeps_the_write_before_it_out(
    team: TeamAccess,
    schema: str,
    pipelined: bool,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    call: Call,
) -> None:
    """The audit event goes last, after the change it records: its id taken, it raises
    the Conflict it raises alone, and the change sent with it is not kept."""
    ids = seed(team)
    taken = team.audit_log(ids["acc"], limit=1)[0].id
    before = tables(schema)
    monkeypatch.setattr(core, "_new_id", lambda prefix: taken)
    with pytest.raises(Conflict, match=f"audit event {taken!r} exists already"):
        call(team, ids)
    monkeypatch.undo()
    assert tables(schema) == before
    call(team, ids)  # the pool's one connection serves the next call


REFUSING = """
CREATE FUNCTION "{s}".refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON "{s}".{table}
FOR EACH ROW EXECUTE FUNCTION "{s}".refuse();
"""

# The table of each call's first write in its group, which the server refuses: the
# writes queued after it (its audit event at least) must not run.
FIRST_WRITE = {
    "create_account": "accounts",
    "rename_account": "accounts",
    "set_permissions": "members",
    "suspend_member": "members",
    "set_access_until": "members",
    "add_contact": "contacts",
    "update_contact": "contacts",
    "remove_contact": "contacts",
    "notify": "outbox",
    "transfer_ownership": "members",
    "remove_member": "members",
    "leave": "members",
    "resend_invitation": "invitations",
    "revoke_invitation": "invitations",
}


@pytest.mark.parametrize(
    ("name", "call"),
    [w for w in WRITES if w[0] in FIRST_WRITE],
    ids=[w[0] for w in WRITES if w[0] in FIRST_WRITE],
)
def test_a_first_write_the_server_refuses_keeps_the_writes_after_it_out(
    team: TeamAccess, schema: str, pipelined: bool, name: str, call: Call
) -> None:
    ids = seed(team)
    before = tables(schema)
    with psycopg.connect(postgres_conninfo(), autocommit=True) as raw:
        raw.execute(REFUSING.format(s=schema, table=FIRST_WRITE[name]))  # type: ignore[arg-type]
        try:
            with pytest.raises(StorageError) as caught:
                call(team, ids)
        finally:
            raw.execute(f'DROP TRIGGER refuse ON "{schema}".{FIRST_WRITE[name]}')  # type: ignore[arg-type]
    message = str(caught.value)
    assert "refused by the test" in message
    assert "while running a query" in message
    assert isinstance(caught.value.__cause__, psycopg.errors.RaiseException)
    assert tables(schema) == before
    call(team, ids)  # the pool's one connection serves the next call


# -- delete_contact() and its lock --------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
@pytest.mark.parametrize("read", ["get_contact", "contact_and_member", "unread"])
def test_delete_contact_takes_its_accounts_lock_once(
    tmp_path: Path, schema: str, read: str
) -> None:
    """A contact this unit read (alone or with a membership) has its account locked
    already: its delete sends no second lock of it. Unread, the delete locks its account
    through the row."""
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool, psycopg.connect(postgres_conninfo(), autocommit=True) as raw:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_account(c.account("acc2", owner="boss2"))
            uow.add_member(c.member("owner", role="owner"), c.key("owner"))
            uow.add_contact(c.contact("ct1"), "ct1@example.org")
            uow.commit()
        with store.begin() as uow:
            if read == "get_contact":
                assert uow.get_contact("ct1") is not None
            elif read == "contact_and_member":
                found = uow.contact_and_member("ct1", "owner")
                assert found == (c.contact("ct1"), c.member("owner", role="owner"))
                # the read took the contact's account's lock, and no other
                assert locks_held(store, raw, ("acc1", "acc2")) == {"acc1"}
            before = counts(wire.messages())
            uow.delete_contact("ct1")
            sent = counts(wire.messages())
            assert locks_held(store, raw, ("acc1", "acc2")) == {"acc1"}
            uow.commit()
        with store.read() as uow:
            assert uow.get_contact("ct1") is None
            assert uow.contacts("acc1") == []
        store.close()
    wire.close()
    # read first: the delete alone; unread: BEGIN, the lock through the row, the delete
    expected = (1, 3) if read == "unread" else (1, 1)
    assert (sent[0] - before[0], sent[1] - before[1]) == expected


def test_a_contact_read_in_another_unit_is_locked_through_its_row(schema: str) -> None:
    """What a unit knows of a contact's account is its own: a unit that did not read
    the contact locks it through the row, whatever another unit read."""
    with psycopg.connect(postgres_conninfo(), autocommit=True) as raw:
        store = PostgresStore(postgres_conninfo(), schema=schema, max_size=2)
        with store.begin() as uow:
            uow.add_account(c.account())
            uow.add_contact(c.contact("ct1"), "ct1@example.org")
            uow.commit()
        with store.read() as uow:
            assert uow.get_contact("ct1") is not None
        with store.begin() as uow:
            uow.delete_contact("ct1")
            assert locks_held(store, raw, ("acc1",)) == {"acc1"}
            uow.commit()
        store.close()


def test_an_actor_that_is_the_inviter_is_read_once(
    team: TeamAccess, schema: str, pipelined: bool
) -> None:
    """The inviter's membership, read with the invitation, is the actor's when the
    actor sent it: a suspended inviter may not resend or revoke, as before."""
    ids = seed(team)
    team.suspend_member(ids["acc"], "u1", actor_id="boss")
    before = tables(schema)
    for call in (team.resend_invitation, team.revoke_invitation):
        with pytest.raises(PermissionDenied, match="is suspended in account"):
            call(ids["inv"], actor_id="u1")
    assert tables(schema) == before
    # SYSTEM needs no membership; its inviter suspended, the invitation counts as revoked
    with pytest.raises(InvitationRevoked, match="counts as revoked"):
        team.resend_invitation(ids["inv"], actor_id=SYSTEM)
    assert tables(schema) == before
    assert team.revoke_invitation(ids["inv"], actor_id=SYSTEM).status == "revoked"


class _Flaky(MemoryMailer):
    """A mailer that fails its next send when told to, as a server down for a moment."""

    fail_next = False

    def send(self, message: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the mail server is down for a moment")
        super().send(message)


@pytest.mark.skipif(sys.platform != "linux", reason="psycopg traces libpq on Linux only")
def test_a_queued_invitation_mail_reads_its_inviter_once(
    tmp_path: Path, schema: str, pipelined: bool
) -> None:
    """The worker reads the invitation with its inviter's membership, which also names
    the mail's sender, and writes the new token's hash with its event together."""
    from psycopg_pool import ConnectionPool

    wire = Wire(tmp_path / "wire.trace")
    mailer = _Flaky()
    clock = FrozenClock(START)
    with ConnectionPool(
        postgres_conninfo(), min_size=1, max_size=1, configure=wire.configure,
        kwargs={"autocommit": True, "prepare_threshold": None}, open=True,
    ) as pool:  # fmt: skip
        store = PostgresStore(pool, schema=schema)
        ids = seed(TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock))
        team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, delivery="queue")
        team.deliver_pending()  # nothing due
        found = []
        for k in range(2):  # the first try fails, the retry mints a new link, audited
            team.invite(ids["acc"], actor_id="u1", email=f"q{k}@example.org",
                        permissions=P("billing.view"))  # fmt: skip
            mailer.fail_next = True
            before = counts(wire.messages())
            assert [r.status for r in team.deliver_pending()] == ["pending"]
            failed = counts(wire.messages())
            clock.advance(timedelta(hours=1))
            assert [r.status for r in team.deliver_pending()] == ["sent"]
            sent = counts(wire.messages())
            found.append(
                (
                    (failed[0] - before[0], failed[1] - before[1]),
                    (sent[0] - failed[0], sent[1] - failed[1]),
                )
            )
        assert [e.action for e in team.audit_log(ids["acc"], limit=2)] == [
            "invitation.mail_retried", "invitation.sent"
        ]  # fmt: skip
        team.close()
    wire.close()
    # the inviter's address, read with the invitation, is in each mail
    assert [m.as_string().count("u1@example.org") > 0 for m in mailer.outbox] == [True, True]
    # (round trips, statements) of the failed first try, then of the retry. Before:
    # ((12, 19), (13, 20)): the invitation and its inviter read apart, the inviter read
    # again for the mail, the retry's event sent after the new hash.
    if pipelined:
        assert found == [((10, 17), (10, 18))] * 2
    else:
        assert found == [((17, 17), (18, 18))] * 2


def test_a_retry_whose_event_cannot_be_written_keeps_the_old_link(
    schema: str, pipelined: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry's new token hash and its event go together: the event's id taken, the
    row's try fails with the Conflict it raised alone, and the hash stays the old one."""
    mailer = _Flaky()
    clock = FrozenClock(START)
    store = PostgresStore(postgres_conninfo(), schema=schema, max_size=1)
    ids = seed(TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock))
    team = TeamAccess(store, mailer, secret_key=SECRET, clock=clock, delivery="queue")
    inv = team.invite(ids["acc"], actor_id="u1", email="q@example.org", permissions=P())
    mailer.fail_next = True
    assert [r.status for r in team.deliver_pending()] == ["pending"]
    clock.advance(timedelta(hours=1))
    before = tables(schema)
    taken = team.audit_log(ids["acc"], limit=1)[0].id
    monkeypatch.setattr(core, "_new_id", lambda prefix: taken)
    [row] = team.deliver_pending()
    monkeypatch.undo()
    assert row.status == "pending"
    assert row.last_error is not None
    assert f"Conflict: audit event {taken!r} exists already" in row.last_error
    after = tables(schema)
    assert after["invitations"] == before["invitations"]  # the old hash
    assert after["events"] == before["events"]
    assert mailer.outbox == []
    clock.advance(timedelta(hours=1))
    assert [r.status for r in team.deliver_pending()] == ["sent"]
    assert [str(m["To"]) for m in mailer.outbox] == [inv.email]
    team.close()

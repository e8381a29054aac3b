"""Personal data: export, erasure (audit trail pseudonymised, files scrubbed) and purge."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from teamaccess import (
    SYSTEM,
    DeliveryFailed,
    ErasureReport,
    InvalidEmail,
    MemoryMailer,
    MemoryStore,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    PurgeReport,
    RateLimited,
    Retention,
    StorageError,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SECRET, SHARED, START, postgres_conninfo

P = PermissionSet.of
PIA = "user-pia-7731"
# Mixed case on purpose: the address is matched whatever its case.
PIA_EMAIL = "Pia.Person@Example.net"
PIA_KEY = "pia.person@example.net"
# Close to Pia's address but another person's: nothing of it may be touched.
NEAR = "pia.person@example.com"


def make(
    store: Store, clock: FrozenClock, mailer: MemoryMailer | None = None, **kw: Any
) -> TeamAccess:
    return TeamAccess(
        store,
        mailer or MemoryMailer(),
        secret_key=SECRET,
        clock=clock,
        pseudonym_key="pseudonym-test-key",
        **kw,
    )


@attrs.define
class World:
    team: TeamAccess
    clock: FrozenClock
    acc1: str
    acc2: str
    acc3: str
    friend_invitation: str


def build(team: TeamAccess, clock: FrozenClock) -> World:
    """Pia: a member of two accounts, invited to a third, a contact in one, who invited
    others herself and received mail; plus a near-namesake who must stay untouched."""
    t = team
    acc1 = t.create_account(name="Olga Shop", owner_id="olga", owner_email="olga@shop.example")
    acc2 = t.create_account(name="Otto GmbH", owner_id="otto", owner_email="otto@gmbh.example")
    acc3 = t.create_account(name="Olaf AG", owner_id="olaf", owner_email="olaf@ag.example")
    clock.advance(timedelta(minutes=1))
    inv = t.invite(acc1.id, actor_id="olga", email=PIA_EMAIL, permissions=P("users.manage"))
    t.accept_invitation(inv.token or "", user_id=PIA, email=PIA_KEY)
    inv = t.invite(acc2.id, actor_id="otto", email=PIA_EMAIL, permissions=P("billing.view"))
    t.accept_invitation(inv.token or "", user_id=PIA, email=PIA_EMAIL)
    t.invite(acc3.id, actor_id="olaf", email=PIA_EMAIL, permissions=P("billing.view"))
    clock.advance(timedelta(minutes=1))
    # Pia invites: Max accepts (so Pia granted his rights), a friend has not answered.
    inv = t.invite(acc1.id, actor_id=PIA, email="max@example.org", permissions=P("users.manage"))
    t.accept_invitation(inv.token or "", user_id="max", email="max@example.org")
    friend = t.invite(acc1.id, actor_id=PIA, email="friend@example.org", permissions=P())
    t.set_permissions(acc1.id, PIA, P("users.manage", "billing.view"), actor_id="olga")
    t.add_contact(acc2.id, actor_id="otto", name="Pia P.", email=PIA_EMAIL, categories=["billing"])
    t.add_contact(acc2.id, actor_id="otto", name="Near", email=NEAR, categories=["billing"])
    t.notify(acc2.id, "billing", subject="Invoice 42", text="Your invoice is ready.")
    clock.advance(timedelta(minutes=1))
    return World(t, clock, acc1.id, acc2.id, acc3.id, friend.id)


@pytest.fixture
def world(store: Store, clock: FrozenClock) -> World:
    return build(make(store, clock), clock)


def mentions_pia(value: object) -> bool:
    text = json.dumps(value, default=str).lower()
    return PIA_KEY in text or PIA.lower() in text


def log(team: TeamAccess, account_id: str) -> list[tuple[str, str]]:
    return [(e.id, e.action) for e in team.audit_log(account_id, limit=1000)]


class TestExport:
    """export_person(): one JSON document with everything stored about the person."""

    def test_everything_about_the_person(self, world: World) -> None:
        doc = world.team.export_person(user_id=PIA)
        assert json.loads(json.dumps(doc)) == doc
        assert doc["user_ids"] == [PIA]
        assert [a.lower() for a in doc["addresses"]] == [PIA_KEY]
        assert doc["accounts_owned"] == []
        memberships = {m["account_id"]: m for m in doc["memberships"]}
        assert set(memberships) == {world.acc1, world.acc2}
        assert memberships[world.acc1]["permissions"] == ["billing.view", "users.manage"]
        assert memberships[world.acc1]["account_name"] == "Olga Shop"
        assert memberships[world.acc2]["joined_at"].startswith("2026-05-01T09:01")
        received = {(i["account_id"], i["status"]) for i in doc["invitations_received"]}
        assert received == {
            (world.acc1, "accepted"),
            (world.acc2, "accepted"),
            (world.acc3, "pending"),
        }
        sent = {(i["email"], i["status"]) for i in doc["invitations_sent"]}
        assert sent == {("max@example.org", "accepted"), ("friend@example.org", "pending")}
        assert [(c["account_id"], c["name"]) for c in doc["contacts"]] == [(world.acc2, "Pia P.")]
        kinds = sorted((m["kind"], m["subject"]) for m in doc["mail"])
        assert kinds == [
            ("invitation", None),
            ("invitation", None),
            ("invitation", None),
            ("notification.billing", "Invoice 42"),
        ]
        actions = [e["action"] for e in doc["audit_events"]]
        for action in ("invitation.sent", "invitation.accepted", "contact.added"):
            assert action in actions
        assert "member.permissions_changed" in actions  # Pia is its target
        # Another person's events and data are not in it.
        assert not any(NEAR in json.dumps(e) for e in doc["audit_events"])
        assert all(mentions_pia(e) for e in doc["audit_events"])

    def test_member_states_dates_notes_and_metadata(self, world: World) -> None:
        team, clock = world.team, world.clock
        team.suspend_member(world.acc1, PIA, actor_id="olga")
        team.set_access_until(world.acc2, PIA, clock.now() + timedelta(days=1), actor_id="otto")
        team.invite(world.acc1, actor_id="olga", email="note@example.org", permissions=P(),
                    note="Hi Pia's colleague", metadata={"customer_no": "4711"})  # fmt: skip
        clock.advance(timedelta(days=2))
        doc = team.export_person(user_id=PIA)
        memberships = {m["account_id"]: m for m in doc["memberships"]}
        assert memberships[world.acc1]["status"] == "suspended"
        assert memberships[world.acc2]["status"] == "expired"
        assert memberships[world.acc2]["access_until"].startswith("2026-05-02T09:03")
        actions = {e["action"] for e in doc["audit_events"]}
        assert {"member.suspended", "member.access_until_set"} <= actions
        # An invitation's note and metadata go with it into the invitee's export.
        [received] = team.export_person(email="note@example.org")["invitations_received"]
        assert (received["note"], received["metadata"]) == ("Hi Pia's colleague",
                                                            {"customer_no": "4711"})  # fmt: skip
        assert team.erase_person(user_id=PIA, actor_id=SYSTEM).memberships == 2
        for event in team.audit_log(world.acc1, limit=99):
            assert not mentions_pia(attrs.asdict(event))

    def test_no_token_hash_or_stored_message(self, world: World) -> None:
        text = json.dumps(world.team.export_person(email=PIA_EMAIL))
        assert "token" not in text
        assert "Your invoice is ready" not in text

    def test_by_email_by_id_and_both_agree(self, world: World) -> None:
        team = world.team
        by_id = team.export_person(user_id=PIA)
        by_email = team.export_person(email=PIA_KEY.upper())
        both = team.export_person(user_id=PIA, email=PIA_EMAIL)
        for key in ("memberships", "invitations_received", "contacts", "mail", "audit_events"):
            assert by_id[key] == by_email[key] == both[key], key

    def test_an_invitee_who_never_joined(self, world: World) -> None:
        doc = world.team.export_person(email="friend@example.org")
        assert doc["user_ids"] == []
        assert [i["id"] for i in doc["invitations_received"]] == [world.friend_invitation]
        assert doc["memberships"] == []

    def test_nobody_known_gets_empty_lists(self, world: World) -> None:
        doc = world.team.export_person(email="stranger@example.org")
        assert all(doc[k] == [] for k in ("memberships", "contacts", "mail", "audit_events"))

    def test_owner_export_names_the_account(self, world: World) -> None:
        doc = world.team.export_person(user_id="olga")
        assert [a["id"] for a in doc["accounts_owned"]] == [world.acc1]

    def test_request_must_name_someone(self, world: World) -> None:
        with pytest.raises(ValidationError, match="user_id=, email="):
            world.team.export_person()
        with pytest.raises(InvalidEmail):
            world.team.export_person(email="not an address")
        with pytest.raises(ValidationError, match="SYSTEM"):
            world.team.export_person(user_id=SYSTEM)


class TestErase:
    """erase_person(): gone from every list, audit trail kept under a pseudonym."""

    def test_gone_everywhere_and_the_audit_trail_keeps_its_shape(self, world: World) -> None:
        team = world.team
        accounts = (world.acc1, world.acc2, world.acc3)
        before = {a: log(team, a) for a in accounts}
        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

        assert isinstance(report, ErasureReport)
        assert (report.memberships, report.invitations, report.contacts) == (2, 3, 1)
        assert report.messages == 4  # three invitation mails and the invoice notice
        assert report.revoked_invitations == 1
        assert report.events > 0
        assert report.pseudonym.startswith("erased:")
        for a in accounts:
            assert all(m.user_id != PIA for m in team.members(a))
            assert not any(mentions_pia(attrs.asdict(c)) for c in team.contacts(a))
            assert not any(mentions_pia(attrs.asdict(i)) for i in team.invitations(a))
            assert team.pending_invitations(a) == []
            assert team.accounts_for(PIA) == []
            # The same events in the same order, plus the erasure itself.
            after = log(team, a)
            assert after[1:] == before[a]
            assert after[0][1] == "person.erased"
            events = team.audit_log(a, limit=1000)
            assert not any(mentions_pia(attrs.asdict(e)) for e in events)
        assert team.recipients(world.acc2, "billing") == ["otto@gmbh.example", NEAR]
        assert not any(mentions_pia(m.recipient) for m in team.pending_messages())
        # What Pia sent is revoked, and her name on others' rows is the pseudonym.
        friend = team.get_invitation(world.friend_invitation)
        assert (friend.status, friend.invited_by) == ("revoked", report.pseudonym)
        assert team.get_member(world.acc1, "max").granted_by == report.pseudonym
        assert not team.can(PIA, world.acc1, "billing.view")

        doc = team.export_person(user_id=PIA, email=PIA_EMAIL)
        for key in ("memberships", "invitations_received", "invitations_sent", "contacts"):
            assert doc[key] == [], key
        assert doc["mail"] == []
        assert doc["audit_events"] == []

    def test_the_history_still_reads_who_did_what(self, world: World) -> None:
        team = world.team
        pseudonym = team.erase_person(email=PIA_EMAIL, actor_id=SYSTEM).pseudonym
        events = team.audit_log(world.acc1, limit=99)
        # One pseudonym for her id and her address alike: "X accepted, X invited Max".
        assert any(e.action == "invitation.accepted" and e.actor_id == pseudonym for e in events)
        assert any(
            (e.action, e.actor_id, e.target) == ("member.permissions_changed", "olga", pseudonym)
            for e in events
        )
        sent = [e for e in events if e.action == "invitation.sent" and e.actor_id == pseudonym]
        assert {e.details["email"] for e in sent} == {"max@example.org", "friend@example.org"}
        erased = team.audit_log(world.acc1, limit=1)[0]
        assert (erased.actor_id, erased.target) == (SYSTEM, pseudonym)
        assert erased.details["memberships"] == 1

    def test_the_near_namesake_is_untouched(self, world: World) -> None:
        team = world.team
        before = team.export_person(email=NEAR)
        team.erase_person(user_id=PIA, actor_id=SYSTEM)
        after = team.export_person(email=NEAR)
        assert after["contacts"] == before["contacts"] != []
        assert after["audit_events"] == before["audit_events"] != []

    def test_pseudonym_is_stable_and_keyed(self) -> None:
        def erase(key: str | None, secret: str | list[str] = SECRET) -> str:
            clock = FrozenClock(START)
            options: dict[str, Any] = {} if key is None else {"pseudonym_key": key}
            team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=secret, clock=clock,
                              **options)  # fmt: skip
            build(team, clock)
            return team.erase_person(user_id=PIA, actor_id=SYSTEM).pseudonym

        assert erase("k1") == erase("k1") != erase("k2")
        # Without pseudonym_key it is derived from the newest secret key.
        assert erase(None) == erase(None) != erase(None, secret="another secret")
        assert erase(None) == erase(None, secret=["an older secret", SECRET])
        assert erase(None) != erase("k1")

    def test_owner_is_refused_and_nothing_changes(self, world: World) -> None:
        team = world.team
        before = team.export_person(user_id="olga")
        with pytest.raises(OwnershipRequired, match="transfer ownership"):
            team.erase_person(user_id="olga", actor_id=SYSTEM)
        with pytest.raises(OwnershipRequired, match=world.acc1):
            team.erase_person(email="OLGA@shop.example", actor_id=SYSTEM)
        assert team.export_person(user_id="olga") == before

    def test_after_a_transfer_the_old_owner_can_be_erased(self, world: World) -> None:
        team = world.team
        team.transfer_ownership(world.acc1, actor_id="olga", to_user_id="max")
        report = team.erase_person(user_id="olga", actor_id=SYSTEM)
        assert report.memberships == 1
        assert team.get_account(world.acc1).owner_id == "max"

    def test_the_person_may_erase_themselves(self, world: World) -> None:
        team = world.team
        report = team.erase_person(user_id=PIA, email=PIA_KEY, actor_id=PIA)
        assert report.memberships == 2
        erased = team.audit_log(world.acc2, limit=1)[0]
        assert erased.action == "person.erased"
        assert erased.actor_id == erased.target == report.pseudonym

    def test_nobody_else_may_erase(self, world: World) -> None:
        team = world.team
        for actor in ("olga", "max"):  # her account's owner, a member she invited
            with pytest.raises(PermissionDenied, match="SYSTEM"):
                team.erase_person(user_id=PIA, actor_id=actor)
        with pytest.raises(PermissionDenied):
            team.erase_person(email=PIA_EMAIL, actor_id=PIA)  # must name herself by id
        with pytest.raises(PermissionDenied, match="not an address of user"):
            team.erase_person(user_id=PIA, email=NEAR, actor_id=PIA)
        assert len(team.members(world.acc1)) == 3

    def test_unknown_person_changes_nothing(self, world: World) -> None:
        team = world.team
        before = log(team, world.acc1)
        report = team.erase_person(email="stranger@example.org", actor_id=SYSTEM)
        assert report.removed == 0
        assert report.events == 0
        assert log(team, world.acc1) == before

    def test_non_ascii_address_in_any_case_and_form(self, world: World) -> None:
        team = world.team
        team.invite(world.acc1, actor_id="olga", email="JÜRGEN@Bücher.example",
                    permissions=P())  # fmt: skip
        team.add_contact(world.acc2, actor_id="otto", name="J", categories=["billing"],
                         email="jürgen@xn--bcher-kva.example")  # fmt: skip
        report = team.erase_person(email="Jürgen@BÜCHER.example", actor_id=SYSTEM)
        assert (report.invitations, report.contacts) == (1, 1)
        text = json.dumps(
            [attrs.asdict(e) for a in (world.acc1, world.acc2) for e in team.audit_log(a)],
            default=str,
        )
        assert "rgen@" not in text
        assert report.pseudonym in text

    def test_an_invitee_who_never_joined(self, world: World) -> None:
        team = world.team
        report = team.erase_person(email="FRIEND@example.org", actor_id=SYSTEM)
        assert (report.invitations, report.memberships, report.user_ids) == (1, 0, ())
        assert all(i.id != world.friend_invitation for i in team.invitations(world.acc1))
        text = json.dumps([attrs.asdict(e) for e in team.audit_log(world.acc1)], default=str)
        assert "friend@example.org" not in text.lower()


class TestErasedFromTheFile:
    """SQLite: after an erasure the address is nowhere in the database file or its WAL."""

    @staticmethod
    def files(path: Path) -> dict[str, bytes]:
        found = {}
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = Path(f"{path}{suffix}")
            if p.exists():
                found[p.name] = p.read_bytes().lower()
        return found

    @staticmethod
    def needles() -> list[bytes]:
        return [PIA_KEY.encode(), PIA.lower().encode(), b"pia p."]

    def test_no_byte_left(self, tmp_path: Path, clock: FrozenClock) -> None:
        from teamaccess import SQLiteStore

        path = tmp_path / "team.db"
        store = SQLiteStore(path)
        team = make(store, clock)
        world = build(team, clock)
        # Enough rows that tables and indexes span many pages and get rebalanced.
        for n in range(300):
            team.add_contact(
                world.acc2, actor_id="otto", name=f"Contact {n}", email=f"c{n}@example.org",
                categories=["billing", "general"],
            )  # fmt: skip
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = self.files(path)
        # The check can fail: before the erasure every needle is there.
        for needle in self.needles():
            assert any(needle in data for data in before.values()), needle

        team.erase_person(user_id=PIA, actor_id=SYSTEM)
        after = self.files(path)
        assert after, "no database file"
        for name, data in after.items():
            for needle in self.needles():
                assert needle not in data, f"{needle!r} still in {name}"
        assert NEAR.encode() in after[path.name]  # others' data stays
        store.close()

    def test_secure_delete_is_on(self, tmp_path: Path, clock: FrozenClock) -> None:
        from teamaccess import SQLiteStore

        store = SQLiteStore(tmp_path / "team.db")
        assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
        # A plain removal, without the scrub an erasure does: the row's bytes are zeroed.
        team = make(store, clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        contact = team.add_contact(
            acc.id, actor_id="o", name="Gone", email="gone.contact@example.org",
            categories=["billing"],
        )  # fmt: skip
        team.remove_contact(contact.id, actor_id="o")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = (tmp_path / "team.db").read_bytes()
        # The audit log keeps the address (contact.removed); the contact row does not.
        assert data.count(b"gone.contact@example.org") == 2  # contact.added and .removed
        store.close()


class TestErasureFindsEachEventByKey:
    """erase_person() rewrites each event it found through a key, not a scan of the log."""

    @pytest.mark.parametrize("backend", SHARED, indirect=True)
    def test_no_scan_of_events_per_event(
        self, backend: str, store: Store, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = make(store, clock)
        build(team, clock)
        with store.read() as uow:
            unit = type(uow)
        # Record what update_event() sends; the real statements still run.
        sent: list[tuple[str, Any]] = []
        inside: list[bool] = []

        def recording(name: str) -> None:
            original = getattr(unit, name)

            def run(self: Any, sql: str, params: Any, *rest: Any) -> Any:
                if inside:
                    sent.append((sql, params))
                return original(self, sql, params, *rest)

            monkeypatch.setattr(unit, name, run)

        for name in ("_exec", "_all"):
            recording(name)
        update_event = unit.update_event

        def tracked(self: Any, event: Any) -> None:
            inside.append(True)
            try:
                update_event(self, event)
            finally:
                inside.pop()

        monkeypatch.setattr(unit, "update_event", tracked)
        report = team.erase_person(user_id=PIA, actor_id=SYSTEM)
        assert report.events > 5
        on_events = [(sql, params) for sql, params in sent if "events" in sql]
        assert len(on_events) >= report.events  # each event's statements were seen
        if backend == "sqlite":
            explain, keys = self.sqlite_plan, ("USING INTEGER PRIMARY KEY", "USING INDEX")
        else:
            explain, keys = self.postgres_plan, ("Index Scan", "Index Only Scan")
        for sql, params in on_events:
            plan = explain(store, sql, params)
            assert "SCAN events" not in plan, (sql, plan)
            assert "Seq Scan" not in plan, (sql, plan)
            assert any(key in plan for key in keys), (sql, plan)

    @staticmethod
    def sqlite_plan(store: Any, sql: str, params: Any) -> str:
        import sqlite3

        conn = sqlite3.connect(store.path)
        try:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            return " | ".join(str(row[-1]) for row in rows)
        finally:
            conn.close()

    @staticmethod
    def postgres_plan(store: Any, sql: str, params: Any) -> str:
        import psycopg

        # With sequential scans priced out, the plan takes an index whenever one fits.
        with psycopg.connect(postgres_conninfo()) as conn:
            conn.execute("SET enable_seqscan = off")
            rows = psycopg.ClientCursor(conn).execute("EXPLAIN " + sql, params).fetchall()
            conn.rollback()
        return " | ".join(str(row[0]) for row in rows)


class TestPurge:
    """purge(): keeps what the rules need, removes what retention lets go."""

    def test_removes_what_is_old_and_keeps_what_rules_need(
        self, store: Store, clock: FrozenClock
    ) -> None:
        failing = FailingMailer(failing=False)
        team = make(
            store, clock, failing,
            retention=Retention(
                closed_invitations=timedelta(days=30),
                sent_mail=timedelta(days=10),
                audit_events=timedelta(days=60),
            ),
        )  # fmt: skip
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        accepted = team.invite(acc.id, actor_id="o", email="a@example.org", permissions=P())
        team.accept_invitation(accepted.token or "", user_id="a", email="a@example.org")
        revoked = team.invite(acc.id, actor_id="o", email="r@example.org", permissions=P())
        team.revoke_invitation(revoked.id, actor_id="o")
        expired = team.invite(acc.id, actor_id="o", email="e@example.org", permissions=P())
        team.notify(acc.id, "general", subject="Old notice", text="sent")
        failing.failing = True
        with pytest.raises(DeliveryFailed):
            team.notify(acc.id, "general", subject="Waiting notice", text="not sent")
        start_events = len(team.audit_log(acc.id, limit=1000))

        clock.advance(timedelta(days=100))
        failing.failing = False
        fresh = team.invite(acc.id, actor_id="o", email="f@example.org", permissions=P())
        report = team.purge()

        assert report.invitations == 3  # accepted, revoked, and the expired one
        assert report.messages == 4  # three sent invitations and the sent notice
        assert report.events == start_events
        ids = {i.id for i in team.invitations(acc.id)}
        assert ids == {fresh.id}
        assert expired.id not in ids
        waiting = team.pending_messages(acc.id)
        assert [m.kind for m in waiting] == ["notification.general"]  # never purged
        assert [e.action for e in team.audit_log(acc.id)] == ["invitation.sent"]
        assert team.members(acc.id)[1].user_id == "a"  # members are not retention's

    def test_nothing_old_nothing_purged(self, world: World) -> None:
        assert world.team.purge().total == 0

    def test_what_the_rate_limit_counts_survives_short_periods(
        self, store: Store, clock: FrozenClock
    ) -> None:
        short = timedelta(minutes=5)
        team = make(
            store, clock, rate_limit=2, rate_window=timedelta(hours=1),
            recipient_rate_window=timedelta(minutes=20),
            retention=Retention(audit_events=short, closed_invitations=short, sent_mail=short),
        )  # fmt: skip
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        first = team.invite(acc.id, actor_id="o", email="a@example.org", permissions=P())
        team.revoke_invitation(first.id, actor_id="o")
        team.invite(acc.id, actor_id="o", email="b@example.org", permissions=P())
        clock.advance(timedelta(minutes=30))
        report = team.purge()
        assert report.events == 2  # account.created and invitation.revoked
        assert report.invitations == 0  # revoked, but younger than the rule's window
        assert report.messages == 0  # both mails were sent inside the window
        with pytest.raises(RateLimited):
            team.invite(acc.id, actor_id="o", email="c@example.org", permissions=P())
        clock.advance(timedelta(minutes=31))
        assert team.purge() == PurgeReport(invitations=1, messages=2, events=2)
        team.invite(acc.id, actor_id="o", email="c@example.org", permissions=P())

    def test_the_per_address_window_keeps_invitation_mail(
        self, store: Store, clock: FrozenClock
    ) -> None:
        team = make(
            store, clock, recipient_rate_limit=1, recipient_rate_window=timedelta(days=1),
            retention=Retention(sent_mail=timedelta(hours=1),
                                closed_invitations=timedelta(hours=1)),
        )  # fmt: skip
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        inv = team.invite(acc.id, actor_id="o", email="a@example.org", permissions=P())
        team.revoke_invitation(inv.id, actor_id="o")
        clock.advance(timedelta(hours=5))
        assert team.purge().messages == 0
        with pytest.raises(RateLimited):
            team.invite(acc.id, actor_id="o", email="a@example.org", permissions=P())
        clock.advance(timedelta(hours=20))
        assert team.purge().messages == 1
        team.invite(acc.id, actor_id="o", email="a@example.org", permissions=P())

    def test_retention_is_checked(self, store: Store) -> None:
        with pytest.raises(ValidationError, match="positive timedelta"):
            Retention(sent_mail=timedelta(0))
        with pytest.raises(ValidationError, match="Retention"):
            TeamAccess(store, MemoryMailer(), secret_key=SECRET, retention={"days": 3})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="pseudonym_key"):
            TeamAccess(store, MemoryMailer(), secret_key=SECRET, pseudonym_key="")
        assert Retention() == Retention(
            closed_invitations=timedelta(days=90),
            sent_mail=timedelta(days=30),
            audit_events=timedelta(days=730),
        )


class _OldUnit:
    """A unit of work written before the personal-data protocol."""

    def __init__(self, uow: Any) -> None:
        self._uow = uow

    def __getattr__(self, name: str) -> Any:
        if name in ("members_involving", "events_with", "purge_events"):
            raise AttributeError(name)
        return getattr(self._uow, name)


class _OldStore:
    """A store written before the personal-data protocol: no scrub(), fewer queries."""

    def __init__(self) -> None:
        self._store = MemoryStore()
        self.grant = self._store.grant
        self.recipients = self._store.recipients
        self.close = self._store.close

    @contextmanager
    def begin(self, *, durable: bool = True) -> Iterator[Any]:
        with self._store.begin(durable=durable) as uow:
            yield _OldUnit(uow)

    read = begin


class TestOlderStores:
    """A store without the personal-data methods gets a clear error and keeps its data."""

    def test_refused_by_name(self, clock: FrozenClock) -> None:
        team = make(_OldStore(), clock)  # type: ignore[arg-type]
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        for call in (
            lambda: team.export_person(user_id="o"),
            lambda: team.erase_person(user_id="o", actor_id=SYSTEM),
            team.purge,
        ):
            with pytest.raises(StorageError, match=r"members_involving.*Store\.scrub"):
                call()
        assert [e.action for e in team.audit_log(acc.id)] == ["account.created"]


class TestMailClaimedBeforeTheErasure:
    """A delivery run that claimed mail to the person before the erasure deleted it
    writes nothing of it back: no row, no event naming the address."""

    def test_a_refusal_recorded_after_the_erasure(
        self, store_factory: Callable[[], Store], backend: str, store: Store, clock: FrozenClock
    ) -> None:
        from teamaccess import DeliveryRefused

        mailer = FailingMailer(error=DeliveryRefused("550 5.1.1 no such user", code=550))
        team = make(store, clock, mailer, delivery="queue", give_up_after=1)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        team.add_contact(acc.id, actor_id="o", name="Pia", email=PIA_EMAIL,
                         categories=["billing"])  # fmt: skip
        team.notify(acc.id, "billing", subject="Invoice", text="Your invoice")
        # Another connection (the panel's, as the worker runs apart) erases her after the
        # run claimed the mail and before it sends it.
        other = make(store if backend == "memory" else store_factory(), clock)
        erased: list[ErasureReport] = []

        def stop() -> bool:
            if not erased:
                erased.append(other.erase_person(email=PIA_EMAIL, actor_id=SYSTEM))
            return False

        team.deliver_pending(stop=stop)
        assert erased[0].messages == 1
        doc = team.export_person(email=PIA_EMAIL)
        assert doc["audit_events"] == doc["mail"] == []
        log = [attrs.asdict(e) for e in team.audit_log(acc.id, limit=100)]
        assert PIA_KEY not in json.dumps(log, default=str).lower()

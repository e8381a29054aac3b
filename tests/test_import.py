"""import_accounts(): whole accounts moved in, every rule checked, nothing half-written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    SYSTEM,
    AuditEvent,
    ImportInterrupted,
    InvalidImport,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    SQLiteStore,
    StorageError,
    Store,
    TeamAccess,
    UnitOfWork,
    ValidationError,
)
from teamaccess.testing import FrozenClock

P = PermissionSet.of


def row(n: int = 0, *, members: int | list[Any] | str = 2, **changes: Any) -> dict[str, Any]:
    """Account *n* with its owner and *members* members (or the members given)."""
    base: dict[str, Any] = {
        "name": f"Kunde {n}",
        "owner_id": f"owner{n}",
        "owner_email": f"chef{n}@kunde.example",
        "members": [
            {"user_id": f"u{n}-{j}", "email": f"user{j}@kunde{n}.example",
             "permissions": ["billing.view"]}
            for j in range(members if isinstance(members, int) else 0)
        ],
    }  # fmt: skip
    if not isinstance(members, int):
        base["members"] = members
    base.update(changes)
    return base


def member(user_id: str = "dev", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "user_id": user_id,
        "email": f"{user_id}@kunde.example",
        "permissions": ["billing.view"],
    }
    base.update(changes)
    return base


def refused(team: TeamAccess, rows: list[dict[str, Any]], match: str) -> InvalidImport:
    with pytest.raises(InvalidImport, match=match) as info:
        team.import_accounts(rows)
    return info.value


def row_counts(path: Path) -> dict[str, int]:
    """Rows in every table of a SQLite file, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        # the names come from the file's own catalog, not from input
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
    finally:
        conn.close()


@pytest.fixture
def sqlite_team(tmp_path: Path, clock: FrozenClock, mailer: MemoryMailer) -> Iterator[TeamAccess]:
    team = TeamAccess(SQLiteStore(tmp_path / "t.db"), mailer, secret_key=SECRET, clock=clock)
    yield team
    team.close()


class TestImportAccounts:
    """What an import stores: accounts, owners, members, contacts and one audit event."""

    def test_members_join_without_invitation_or_mail(
        self, team: TeamAccess, mailer: MemoryMailer
    ) -> None:
        until = START + timedelta(days=90)
        [acc] = team.import_accounts(
            [
                {
                    "id": "cust-4711",
                    "name": "Muster GmbH",
                    "owner_id": "owner",
                    "owner_email": "Chef@Muster.DE",
                    "members": [
                        member("dev", permissions=["services.view", "services.manage@srv-1"],
                               access_until=until, metadata={"old_id": 17}),
                        member("books", email="Buch@MUSTER.de", permissions="*"),
                    ],
                    "contacts": [
                        {"name": "Rechnung", "email": "rechnung@muster.de",
                         "categories": ["billing"], "company": "Muster GmbH"},
                    ],
                }
            ]
        )  # fmt: skip
        assert acc.id == "cust-4711"
        assert (acc.owner_id, acc.owner_email, acc.created_at) == ("owner", "Chef@muster.de", START)
        members = team.members(acc.id)
        assert [(m.user_id, m.role, m.email) for m in members] == [
            ("owner", "owner", "Chef@muster.de"),
            ("dev", "member", "dev@kunde.example"),
            ("books", "member", "Buch@muster.de"),
        ]
        dev = members[1]
        assert dev.granted_by == SYSTEM
        assert (dev.access_until, dev.metadata, dev.status) == (until, {"old_id": 17}, "active")
        assert team.can("dev", acc.id, "services.manage", resource="srv-1")
        assert not team.can("dev", acc.id, "services.manage")
        assert team.permissions_of("books", acc.id).is_all
        assert team.recipients(acc.id, "billing") == ["Chef@muster.de", "rechnung@muster.de"]
        assert [c.company for c in team.contacts(acc.id)] == ["Muster GmbH"]
        assert mailer.outbox == []
        assert team.pending_invitations(acc.id) == []
        [event] = team.audit_log(acc.id)
        assert (event.action, event.actor_id, event.target) == (
            "account.imported", SYSTEM, acc.id,
        )  # fmt: skip
        assert event.details == {
            "name": "Muster GmbH", "owner_id": "owner", "members": ["dev", "books"], "contacts": 1,
        }  # fmt: skip

    def test_ids_are_generated_when_not_given(self, team: TeamAccess) -> None:
        accounts = team.import_accounts([row(0), row(1)])
        assert [a.name for a in accounts] == ["Kunde 0", "Kunde 1"]
        assert all(a.id.startswith("acc_") for a in accounts)
        assert [a.id for a in team.accounts_for("u1-0")] == [accounts[1].id]

    def test_an_owner_of_other_accounts_gets_one_more(self, team: TeamAccess) -> None:
        """Not an error: a customer may hold several contracts."""
        first = team.create_account(
            name="Alt", owner_id="owner0", owner_email="chef0@kunde.example"
        )
        [acc] = team.import_accounts([row(0)])
        assert [a.id for a in team.accounts_for("owner0")] == [first.id, acc.id]

    def test_flood_limits_for_customers_do_not_apply(self, team: TeamAccess) -> None:
        """account_rate_limit (10 an hour) and the invitation limits are for customers."""
        rows = [row(n, owner_id="reseller", members=0) for n in range(25)]
        assert len(team.import_accounts(rows)) == 25
        assert len(team.accounts_for("reseller")) == 25

    def test_listeners_hear_the_import(self, team: TeamAccess) -> None:
        heard: list[AuditEvent] = []
        team.add_listener(heard.append)
        accounts = team.import_accounts([row(0), row(1)], chunk_size=1)
        assert [(e.action, e.account_id) for e in heard] == [
            ("account.imported", a.id) for a in accounts
        ]

    def test_no_rows_no_work(self, team: TeamAccess) -> None:
        assert team.import_accounts([]) == []
        assert team.import_accounts(iter([row(0)]))[0].name == "Kunde 0"

    def test_progress_reports_checking_then_each_chunk(self, team: TeamAccess) -> None:
        seen: list[tuple[str, int, int]] = []
        team.import_accounts(
            [row(n) for n in range(5)], chunk_size=2, progress=lambda *a: seen.append(a)
        )
        assert seen == [("check", 5, 5), ("write", 2, 5), ("write", 4, 5), ("write", 5, 5)]

    def test_dry_run_checks_and_writes_nothing(self, team: TeamAccess) -> None:
        accounts = team.import_accounts([row(0, id="c-1"), row(1)], dry_run=True)
        assert [a.name for a in accounts] == ["Kunde 0", "Kunde 1"]
        assert team.accounts_for("owner0") == []
        refused_rows = [row(0, owner_email="nope")]
        with pytest.raises(InvalidImport, match=r"owner_email|nope"):
            team.import_accounts(refused_rows, dry_run=True)


class TestImportRules:
    """Each rule a single use case checks holds for every row; the error names the row."""

    def test_invalid_member_address(self, team: TeamAccess) -> None:
        exc = refused(team, [row(0, members=[member(email="not-an-address")])], "row 0, member 0")
        [problem] = exc.problems
        assert (problem.row, problem.part, problem.index) == (0, "member", 0)
        assert "not a valid email address" in problem.message

    def test_invalid_owner_address(self, team: TeamAccess) -> None:
        refused(team, [row(0, owner_email="chef@")], r"row 0: .*not a valid email")

    def test_address_with_a_line_break(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(email="a@b.example\nBcc: x@y.example")])],
                "member 0")  # fmt: skip

    def test_invalid_contact_address_and_category(self, team: TeamAccess) -> None:
        exc = refused(
            team,
            [row(0, contacts=[{"name": "A", "email": "a@", "categories": ["billing"]},
                              {"name": "B", "email": "b@x.example", "categories": ["spam"]}])],
            "contact 0",
        )  # fmt: skip
        assert [(p.part, p.index) for p in exc.problems] == [("contact", 0), ("contact", 1)]
        assert "spam" in exc.problems[1].message

    def test_unknown_permission(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(permissions=["biling.view"])])], "biling.view")

    def test_permissions_of_the_wrong_shape(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(permissions="billing.view")])], "list of names")
        refused(team, [row(0, members=[member(permissions=[1, 2])])], "list of names")

    def test_scoped_permission_with_a_bad_resource(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(permissions=["services.manage@"])])], "member 0")

    def test_same_user_twice_in_an_account(self, team: TeamAccess) -> None:
        members = [member("dev"), member("dev", email="other@kunde.example")]
        refused(team, [row(0, members=members)], "user 'dev' is already in this account")

    def test_same_address_twice_in_an_account(self, team: TeamAccess) -> None:
        """Addresses compare case-insensitively, as everywhere."""
        members = [member("a", email="dev@kunde.example"), member("b", email="DEV@Kunde.Example")]
        refused(team, [row(0, members=members)], "already in this account as member 0")

    def test_owner_listed_again_as_member(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member("owner0")])], "as the owner")
        refused(team, [row(0, members=[member("x", email="CHEF0@kunde.example")])], "as the owner")

    def test_system_is_nobody_s_owner_or_member(self, team: TeamAccess) -> None:
        refused(team, [row(0, owner_id=SYSTEM)], "owner_id cannot be teamaccess.SYSTEM")
        refused(team, [row(0, members=[member(SYSTEM)])], "cannot be teamaccess.SYSTEM")

    def test_account_name_rules(self, team: TeamAccess) -> None:
        refused(team, [row(0, name="")], "must not be empty")
        refused(team, [row(0, name="A\r\nBcc: x@y.example")], "row 0")
        refused(team, [row(0, name="x" * 201)], "limit is 200")
        refused(team, [row(0, name="=?utf-8?q?x?=")], "encoded-word")

    def test_account_id_rules(self, team: TeamAccess) -> None:
        refused(team, [row(0, id="")], "id must not be empty")
        refused(team, [row(0, id=" c-1")], "spaces around")
        refused(team, [row(0, id="c\n1")], "row 0")
        refused(team, [row(0, id="c" * 201)], "limit is 200")

    @pytest.mark.parametrize(
        "bad",
        [
            "K/4711",
            "a/users",
            "K 4711",
            "\uff14\uff17\uff11\uff11",
            "K-4711?x",
            "teamaccess:system",
            "../x#y",
        ],
    )
    def test_account_id_is_url_safe(self, team: TeamAccess, bad: str) -> None:
        """An id goes into the pages' URLs as it is: no "/" makes another page's path, no
        look-alike digit makes a second "4711"."""
        refused(team, [row(0, id=bad)], "only ASCII letters, digits")
        assert team.accounts_for("owner0") == []

    def test_account_id_of_the_safe_characters(self, team: TeamAccess) -> None:
        [acc] = team.import_accounts([row(0, id="K-4711_a.b~c")])
        assert acc.id == "K-4711_a.b~c"

    def test_missing_and_unknown_fields(self, team: TeamAccess) -> None:
        exc = refused(team, [{"name": "A", "owner": "x"}], "unknown field")
        assert [p.message for p in exc.problems] == [
            "unknown field(s) owner; use: contacts, id, members, name, owner_email, owner_id",
            "owner_id is missing",
            "owner_email is missing",
        ]
        refused(team, [row(0, members=[{"user_id": "x", "email": "x@y.example"}])],
                "permissions is missing")  # fmt: skip
        refused(team, [row(0, members=[member(role="admin")])], "unknown field.*role")

    def test_rows_of_the_wrong_shape(self, team: TeamAccess) -> None:
        refused(team, [["name", "owner"]], "must be a mapping")  # type: ignore[list-item]
        refused(team, [row(0, members="dev")], "members must be a list")
        refused(team, [row(0, members=["dev"])], "a member must be a mapping")
        with pytest.raises(ValidationError, match="rows must be a list"):
            team.import_accounts("accounts.csv")  # type: ignore[arg-type]

    def test_access_that_already_ended(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(access_until=START)])], "not in the future")
        naive = START.replace(tzinfo=None)
        refused(team, [row(0, members=[member(access_until=naive)])], "timezone-aware")

    def test_metadata_limits(self, team: TeamAccess) -> None:
        refused(team, [row(0, members=[member(metadata={"x": "y" * 3000})])], "2048 bytes")
        refused(team, [row(0, members=[member(metadata=["x"])])], "metadata must be a dict")

    def test_contact_detail_rules(self, team: TeamAccess) -> None:
        contact = {"name": "A", "email": "a@b.example", "categories": ["billing"],
                   "phone": "1\r\n2"}  # fmt: skip
        refused(team, [row(0, contacts=[contact])], "contact 0")

    def test_same_account_id_twice(self, team: TeamAccess) -> None:
        refused(team, [row(0, id="c-1"), row(1, id="c-1")], "also in row 0")

    def test_every_problem_is_listed_up_to_a_hundred(self, team: TeamAccess) -> None:
        rows = [row(n, owner_email="bad") for n in range(150)]
        exc = refused(team, rows, r"100\+ problem\(s\).*and 95 more")
        assert [p.row for p in exc.problems] == list(range(100))

    def test_settings_are_checked(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="existing must be"):
            team.import_accounts([], existing="replace")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="chunk_size"):
            team.import_accounts([], chunk_size=0)
        with pytest.raises(ValidationError, match="progress must be a callable"):
            team.import_accounts([], progress="bar")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="dry_run"):
            team.import_accounts([], dry_run="yes")  # type: ignore[arg-type]

    def test_not_inside_a_batch(self, team: TeamAccess) -> None:
        with team.batch(), pytest.raises(ValidationError, match=r"inside team\.batch"):
            team.import_accounts([row(0)])


class TestImportAgain:
    """Importing what exists: refused by default, skipped on request (resuming)."""

    def test_an_account_id_that_exists_is_refused(self, team: TeamAccess) -> None:
        team.import_accounts([row(0, id="c-1")])
        exc = refused(team, [row(1, id="c-2"), row(2, id="c-1")], "'c-1' exists already")
        assert [(p.row, p.account) for p in exc.problems] == [(1, "c-1")]
        assert team.accounts_for("owner1") == []

    def test_skip_leaves_existing_accounts_alone(self, team: TeamAccess) -> None:
        team.import_accounts([row(0, id="c-1")])
        created = team.import_accounts([row(9, id="c-1"), row(1, id="c-2")], existing="skip")
        assert [a.id for a in created] == ["c-2"]
        assert team.get_account("c-1").name == "Kunde 0"
        assert team.accounts_for("owner9") == []


class TestNothingHalfWritten:
    """On a real SQLite file: bad input writes no row; a failing store keeps whole chunks."""

    def test_bad_last_row_writes_nothing(self, sqlite_team: TeamAccess, tmp_path: Path) -> None:
        sqlite_team.import_accounts([row(100)])
        before = row_counts(tmp_path / "t.db")
        rows = [row(n) for n in range(30)] + [row(30, members=[member(email="x@")])]
        with pytest.raises(InvalidImport, match="row 30, member 0"):
            sqlite_team.import_accounts(rows, chunk_size=7)
        assert row_counts(tmp_path / "t.db") == before
        assert before["members"] == 3
        assert before["events"] == 1

    def test_rows_written_are_the_rows_expected(
        self, sqlite_team: TeamAccess, tmp_path: Path
    ) -> None:
        contact = {"name": "A", "email": "a@b.example", "categories": ["billing", "general"]}
        sqlite_team.import_accounts([row(n, contacts=[contact]) for n in range(5)], chunk_size=2)
        counts = row_counts(tmp_path / "t.db")
        assert {t: counts[t] for t in ("accounts", "members", "contacts", "contact_categories",
                                       "events", "invitations", "outbox")} == {
            "accounts": 5, "members": 15, "contacts": 5, "contact_categories": 10,
            "events": 5, "invitations": 0, "outbox": 0,
        }  # fmt: skip

    def test_store_failing_midway_keeps_the_chunks_before(
        self, sqlite_team: TeamAccess, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Another import takes an account id between the check and the third chunk."""
        other = TeamAccess(SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET,
                           clock=clock)  # fmt: skip

        def race(phase: str, done: int, total: int) -> None:
            if (phase, done) == ("write", 4):
                other.import_accounts([row(99, id="c-5")])

        rows = [row(n, id=f"c-{n}") for n in range(8)]
        with pytest.raises(ImportInterrupted, match="stopped after 4 account") as info:
            sqlite_team.import_accounts(rows, chunk_size=2, progress=race)
        other.close()
        assert isinstance(info.value, StorageError)
        assert info.value.done == 4
        assert [a.id for a in info.value.imported] == ["c-0", "c-1", "c-2", "c-3"]
        assert row_counts(tmp_path / "t.db")["accounts"] == 5
        assert sqlite_team.get_account("c-5").name == "Kunde 99"
        # Resuming: the same rows, existing ones skipped; c-5 stays the other import's.
        resumed = sqlite_team.import_accounts(
            [r for r in rows if r["id"] != "c-5"], existing="skip"
        )
        assert [a.id for a in resumed] == ["c-4", "c-6", "c-7"]
        assert row_counts(tmp_path / "t.db")["accounts"] == 8

    def test_store_failing_in_the_first_chunk_stores_nothing(
        self, sqlite_team: TeamAccess, tmp_path: Path, clock: FrozenClock
    ) -> None:
        other = TeamAccess(SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET,
                           clock=clock)  # fmt: skip

        def race(phase: str, done: int, total: int) -> None:
            if phase == "check":  # after every row passed, before the first write
                other.import_accounts([row(99, id="c-1")])

        with pytest.raises(ImportInterrupted, match="no row is stored") as info:
            sqlite_team.import_accounts([row(n, id=f"c-{n}") for n in range(3)], progress=race)
        other.close()
        assert (info.value.done, info.value.imported) == (0, [])
        assert row_counts(tmp_path / "t.db")["accounts"] == 1


class _NoBulkStore:
    """A third-party store without the optional add_many(): units only have the adds."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.units = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def _plain(self, unit: AbstractContextManager[UnitOfWork]) -> Iterator[UnitOfWork]:
        with unit as uow:
            self.units += 1
            yield _NoBulkUnit(uow)  # type: ignore[misc]

    def begin(self, *, durable: bool = True) -> AbstractContextManager[UnitOfWork]:
        return self._plain(self._inner.begin(durable=durable))

    def read(self) -> AbstractContextManager[UnitOfWork]:
        return self._plain(self._inner.read())


class _NoBulkUnit:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def __getattr__(self, name: str) -> Any:
        if name == "add_many":
            raise AttributeError(name)
        return getattr(self._uow, name)


class TestStoreWithoutBulkWrite:
    """add_many() is optional: without it the same rows are written one by one."""

    def test_same_result_row_by_row(self, tmp_path: Path, clock: FrozenClock) -> None:
        store = _NoBulkStore(SQLiteStore(tmp_path / "t.db"))
        team = TeamAccess(store, MemoryMailer(), secret_key=SECRET, clock=clock)  # type: ignore[arg-type]
        contact = {"name": "A", "email": "a@b.example", "categories": ["billing"]}
        [acc] = team.import_accounts([row(0, contacts=[contact])])
        assert [m.user_id for m in team.members(acc.id)] == ["owner0", "u0-0", "u0-1"]
        assert team.recipients(acc.id, "billing") == ["chef0@kunde.example", "a@b.example"]
        assert [e.action for e in team.audit_log(acc.id)] == ["account.imported"]
        assert store.units >= 2  # the check's read and the chunk's write went through it
        team.close()


class TestPrivacyOfImportedPeople:
    """export_person and erase_person find imported members, and the import's event."""

    def test_export_finds_the_membership_and_the_event(self, team: TeamAccess) -> None:
        [acc] = team.import_accounts([row(0)])
        document = team.export_person(user_id="u0-1")
        assert [m["account_id"] for m in document["memberships"]] == [acc.id]
        assert document["addresses"] == ["user1@kunde0.example"]
        assert [e["action"] for e in document["audit_events"]] == ["account.imported"]

    def test_erase_removes_the_member_and_its_name_from_the_event(self, team: TeamAccess) -> None:
        [acc] = team.import_accounts([row(0)])
        report = team.erase_person(user_id="u0-1", actor_id=SYSTEM)
        assert report.memberships == 1
        assert report.events == 1
        assert [m.user_id for m in team.members(acc.id)] == ["owner0", "u0-0"]
        imported = [e for e in team.audit_log(acc.id) if e.action == "account.imported"]
        assert imported[0].details["members"] == ["u0-0", report.pseudonym]
        assert team.export_person(user_id="u0-1")["audit_events"] == []

    def test_an_account_id_equal_to_a_user_id_is_not_that_user(self, team: TeamAccess) -> None:
        # Customer numbers often serve as account id and as some user's login.
        [acc] = team.import_accounts([row(0, id="4711")])
        team.rename_account("4711", actor_id="owner0", name="Kunde 4711")
        [other] = team.import_accounts([row(1, members=[member("4711")])])
        before = {e.action: e.target for e in team.audit_log(acc.id)}
        assert before == {"account.imported": "4711", "account.renamed": "4711"}
        assert team.export_person(user_id="4711")["audit_events"] == [
            e for e in team.export_person(user_id="4711")["audit_events"]
            if e["account_id"] == other.id
        ]  # fmt: skip
        report = team.erase_person(user_id="4711", actor_id=SYSTEM)
        assert {e.action: e.target for e in team.audit_log(acc.id)} == before
        imported = [e for e in team.audit_log(other.id) if e.action == "account.imported"]
        assert imported[0].details["members"] == [report.pseudonym]


def test_memory_store_imports_too() -> None:
    team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET)
    [acc] = team.import_accounts([row(0)])
    assert len(team.members(acc.id)) == 3

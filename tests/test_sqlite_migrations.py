"""SQLiteStore migrations: older files upgraded with their data, foreign or newer files refused
and left untouched."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.conftest import add_member
from tests.sqlite_older import older_file
from tests.test_sqlite import db, digest, open_team, raw

from teamaccess import PermissionSet, SQLiteStore, StorageError
from teamaccess._backends import sqlite as sqlite_backend

__all__ = ["db"]  # fixtures, imported for pytest

P = PermissionSet.of


def fake_next_migration(db: Any) -> None:
    """A later schema change, for the upgrade path: a column and an index."""
    db.execute("ALTER TABLE contacts ADD COLUMN notes TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX contacts_email_key ON contacts (email_key)")


class TestMigrations:
    """Older files are upgraded; foreign or newer files are refused and left untouched."""

    def test_older_file_is_upgraded_with_its_data(
        self, db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = open_team(db)
        acc = team.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
        add_member(team, acc.id, "u2", P("billing.view"))
        team.close()
        latest = len(sqlite_backend.MIGRATIONS)

        monkeypatch.setattr(
            sqlite_backend, "MIGRATIONS", [*sqlite_backend.MIGRATIONS, fake_next_migration]
        )
        upgraded = open_team(db)
        assert isinstance(upgraded.store, SQLiteStore)
        assert upgraded.store.schema_version == latest + 1
        assert "notes" in upgraded.store.db["contacts"].columns_dict
        assert upgraded.can("u2", acc.id, "billing.view")
        assert [m.user_id for m in upgraded.members(acc.id)] == ["owner", "u2"]
        upgraded.close()
        # opening again with the same code changes nothing more
        assert SQLiteStore(db).schema_version == latest + 1

    def test_an_older_file_opened_read_only_says_to_open_it_writable(
        self, db: Path, tmp_path: Path
    ) -> None:
        # Upgrading writes: opened read-only, the reason is the schema, not SQLite's
        # "attempt to write a readonly database".
        open_team(db).close()
        older = tmp_path / "older.db"
        older_file(db, older, 3)
        before = older.read_bytes()
        for options in ("mode=ro", "immutable=1"):
            uri = f"file:{older}?{options}"
            with pytest.raises(StorageError) as raised:
                SQLiteStore(uri)
            assert str(raised.value) == (
                f"the teamaccess database {uri} has schema version 3, older than this "
                f"teamaccess's {len(sqlite_backend.MIGRATIONS)}, and is opened read-only, so "
                "it cannot be upgraded: open it once writable, as a user who may write it "
                "(SQLiteStore on its path upgrades it), then read it again (the file was not "
                "changed)"
            )
        assert older.read_bytes() == before
        assert SQLiteStore(older).schema_version == len(sqlite_backend.MIGRATIONS)

    def test_failed_migration_leaves_the_old_version(
        self, db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        team = open_team(db)
        acc = team.create_account(name="Alt", owner_id="owner", owner_email="chef@muster.de")
        team.close()

        def broken(db: Any) -> None:
            db.execute("ALTER TABLE contacts ADD COLUMN notes TEXT")
            raise RuntimeError("migration bug")

        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", [*sqlite_backend.MIGRATIONS, broken])
        with pytest.raises(StorageError, match=r"team\.db.*migration bug"):
            SQLiteStore(db)
        monkeypatch.undo()
        store = SQLiteStore(db)
        assert store.schema_version == len(sqlite_backend.MIGRATIONS)
        assert "notes" not in store.db["contacts"].columns_dict
        assert open_team(db).get_account(acc.id) == acc
        store.close()

    def test_version_1_file_is_upgraded_and_recipients_read_it(
        self, db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A real version-1 file: only the first migration, filled as version 1's store
        # wrote it (today's store writes columns a version-1 file lacks): an account whose
        # ownership went from "owner" to "heir", and a second one.
        monkeypatch.setattr(sqlite_backend, "MIGRATIONS", sqlite_backend.MIGRATIONS[:1])
        store = SQLiteStore(db)
        assert store.schema_version == 1
        store.close()
        conn = raw(db)
        conn.execute("PRAGMA foreign_keys = ON")
        ts = "2026-05-01T09:00:00.000000+00:00"
        acc = SimpleNamespace(id="acc_alt")
        second = SimpleNamespace(id="acc_zwei")
        for account_id, name, owner, email in (
            (acc.id, "Alt", "heir", "heir@example.org"),
            (second.id, "Zwei", "o2", "o2@example.org"),
        ):
            conn.execute(
                "INSERT INTO accounts (id, name, owner_id, owner_email, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (account_id, name, owner, email, ts),
            )
        for n, (account_id, user, email, role) in enumerate((
            (acc.id, "owner", "Chef@muster.de", "member"),
            (acc.id, "heir", "heir@example.org", "owner"),
            (second.id, "o2", "o2@example.org", "owner"),
        )):  # fmt: skip
            conn.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?, '\"*\"', ?, NULL, ?)",
                (account_id, user, email, email.lower(), role, ts, n + 1),
            )
        # Contacts as version 1's store wrote them (its add_contact is gone with it):
        # the contact row, then one (contact, account, category) row per subscription.
        for n, email, cats in (
            (1, "anna@example.org", ["billing"]),
            (2, "b@example.org", ["support", "billing"]),
            (3, "HEIR@example.org", ["billing"]),
            (4, "c@example.org", ["support"]),
        ):
            conn.execute(
                "INSERT INTO contacts (id, account_id, name, email, email_key, company, "
                "phone, role, created_at) VALUES (?, ?, ?, ?, ?, '', '', '', NULL)",
                (f"con{n}", acc.id, f"C{n}", email, email.lower()),
            )
            for cat in cats:
                conn.execute(
                    "INSERT INTO contact_categories (contact_id, account_id, category) "
                    "VALUES (?, ?, ?)",
                    (f"con{n}", acc.id, cat),
                )
        conn.execute("DELETE FROM contacts WHERE id = 'con2'")
        conn.close()
        monkeypatch.undo()

        upgraded = open_team(db)
        assert isinstance(upgraded.store, SQLiteStore)
        assert upgraded.store.schema_version == len(sqlite_backend.MIGRATIONS)
        assert upgraded.get_account(acc.id).owner_email == "heir@example.org"
        assert [c.email for c in upgraded.contacts(acc.id)] == [
            "anna@example.org",
            "HEIR@example.org",
            "c@example.org",
        ]
        assert upgraded.recipients(acc.id, "billing") == ["heir@example.org", "anna@example.org"]
        assert upgraded.recipients(acc.id, "support") == ["heir@example.org", "c@example.org"]
        assert upgraded.recipients(second.id, "billing") == ["o2@example.org"]
        # the backfilled columns are the ones a version-2 file would hold
        conn = raw(db)
        assert conn.execute(
            "SELECT owner_email_key FROM accounts WHERE id = ?", (acc.id,)
        ).fetchone() == ("heir@example.org",)
        assert conn.execute(
            "SELECT count(*) FROM contact_categories cc JOIN contacts c ON c.id = cc.contact_id "
            "WHERE cc.seq IS c.seq AND cc.email IS c.email AND cc.email_key IS c.email_key"
        ).fetchone() == (conn.execute("SELECT count(*) FROM contact_categories").fetchone())
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        # and kept in step by the writes that follow the upgrade
        upgraded.transfer_ownership(acc.id, actor_id="heir", to_user_id="owner")
        upgraded.update_contact("con4", actor_id="owner", email="chef@muster.de",
                                categories=["billing"])  # fmt: skip
        # the heir's contact address is no longer the owner's; the new one is
        assert upgraded.recipients(acc.id, "billing") == [
            "Chef@muster.de",
            "anna@example.org",
            "HEIR@example.org",
        ]
        assert upgraded.recipients(acc.id, "support") == ["Chef@muster.de"]
        upgraded.close()

    def test_newer_file_is_refused_untouched(self, db: Path) -> None:
        SQLiteStore(db).close()
        conn = raw(db)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        before = digest(db)
        with pytest.raises(StorageError, match=r"schema version 99.*upgrade teamaccess"):
            SQLiteStore(db)
        assert digest(db) == before

    def test_foreign_table_of_the_same_name_is_refused_untouched(self, db: Path) -> None:
        conn = raw(db)
        conn.execute("CREATE TABLE accounts (login TEXT, password_hash TEXT)")
        conn.execute("INSERT INTO accounts VALUES ('admin', 'x')")
        conn.close()
        before = digest(db)
        with pytest.raises(StorageError, match=r"team\.db is not a teamaccess database.*accounts"):
            SQLiteStore(db)
        assert digest(db) == before
        conn = raw(db)
        assert conn.execute("SELECT * FROM accounts").fetchall() == [("admin", "x")]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        conn.close()

    def test_other_application_is_refused(self, db: Path) -> None:
        conn = raw(db)
        conn.execute("PRAGMA application_id = 1234")
        conn.close()
        with pytest.raises(StorageError, match="not a teamaccess database"):
            SQLiteStore(db)

    def test_damaged_file_missing_a_table(self, db: Path) -> None:
        SQLiteStore(db).close()
        conn = raw(db)
        conn.execute("DROP TABLE outbox")
        conn.close()
        with pytest.raises(StorageError, match="lacks the tables outbox"):
            SQLiteStore(db)

    def test_not_sqlite_at_all(self, db: Path) -> None:
        db.write_bytes(b"This is a spreadsheet, not a database.\n" * 200)
        before = digest(db)
        with pytest.raises(StorageError, match=r"team\.db is not a SQLite database"):
            SQLiteStore(db)
        assert digest(db) == before

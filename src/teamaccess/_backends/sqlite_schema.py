"""The SQLite schema: every migration, in order.

``PRAGMA user_version`` of a file is how many entries of :data:`MIGRATIONS` it has had
applied. To change the schema, append a migration; never edit one that has been released.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "APPLICATION_ID",
    "INVITATION_ADDRESS_KEY",
    "MIGRATIONS",
    "NUMBERED_INVITATION",
    "NUMBERED_OUTBOX",
    "SEND_ACTIONS_SQL",
    "Migration",
]

#: ``PRAGMA application_id`` of a teamaccess file: "tmac" in ASCII.
APPLICATION_ID: Final = 0x746D6163

#: The actions the invitation rate limit counts, as the SQL list its partial index and
#: ``event_times()`` both write.
SEND_ACTIONS_SQL: Final = "('invitation.resent', 'invitation.sent')"
#: The columns of the unique index on an address's invitations (schema 6): at most one
#: pending invitation per address and account, since only a pending one has ''.
INVITATION_ADDRESS_KEY: Final = (
    "email_key, account_id, CASE WHEN status = 'pending' THEN '' ELSE id END"
)

#: Schema 7: a row whose id starts with its table's prefix and its key as 16 hex digits
#: (what the service writes, with a random tail) is found by its key; any other (rows
#: from before, ids from elsewhere) by the partial index on id, which holds those only.
#: Queries repeat the text word for word, or SQLite will not use that index.
NUMBERED_INVITATION: Final = "substr(id, 1, 20) IS NOT printf('inv_%016x', key)"
NUMBERED_OUTBOX: Final = "substr(id, 1, 20) IS NOT printf('msg_%016x', key)"

Migration = Callable[[Any], None]  # takes a sqlite_utils.Database inside a transaction


def _migration_1(db: Any) -> None:
    """The whole first schema."""
    for sql in _SCHEMA_1:
        db.execute(sql)


_SCHEMA_1: Final = (
    # accounts: seq keeps creation order for accounts created at the same instant
    """CREATE TABLE accounts (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        owner_email TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # members: the primary key is grant()'s index; WITHOUT ROWID makes it one b-tree search
    """CREATE TABLE members (
        account_id TEXT NOT NULL REFERENCES accounts (id),
        user_id TEXT NOT NULL,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('owner', 'member')),
        permissions TEXT NOT NULL,
        joined_at TEXT NOT NULL,
        granted_by TEXT,
        seq INTEGER NOT NULL,
        PRIMARY KEY (account_id, user_id)
    ) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX members_email_key ON members (account_id, email_key)",
    "CREATE INDEX members_user ON members (user_id)",
    """CREATE TABLE invitations (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        permissions TEXT NOT NULL,
        invited_by TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        token_hash TEXT,
        closed_at TEXT,
        accepted_by TEXT,
        sent_count INTEGER NOT NULL,
        language TEXT NOT NULL
    )""",
    # the rule "one pending invitation per address and account", enforced by the file
    """CREATE UNIQUE INDEX invitations_one_pending ON invitations (account_id, email_key)
        WHERE status = 'pending'""",
    "CREATE INDEX invitations_account ON invitations (account_id, created_at)",
    """CREATE TABLE contacts (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        company TEXT NOT NULL,
        phone TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT
    )""",
    "CREATE INDEX contacts_account ON contacts (account_id, seq)",
    # Primary-key columns come first: SQLite 3.40's integrity_check wrongly reports NULLs
    # in a WITHOUT ROWID table whose key columns are not its leading columns.
    """CREATE TABLE contact_categories (
        contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        category TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        PRIMARY KEY (contact_id, category)
    ) WITHOUT ROWID""",
    "CREATE INDEX contact_categories_lookup ON contact_categories (account_id, category)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        at TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT NOT NULL
    )""",
    "CREATE INDEX events_account ON events (account_id, seq)",
    "CREATE INDEX events_action_time ON events (account_id, action, at)",
    """CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'cancelled')),
        message BLOB,
        invitation_id TEXT,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at TEXT
    )""",
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    "CREATE INDEX outbox_invitation ON outbox (invitation_id)",
)


def _migration_2(db: Any) -> None:
    """recipients() in two index searches whatever the file's size."""
    for sql in _SCHEMA_2:
        db.execute(sql)


# Version 1 answered recipients() with about nine B-tree descents (the account's id index
# and its row, the owner's membership for its key, the category index, then per contact
# its id index and its row), and the trees deepen as the file grows. Version 2 carries
# what recipients() reads next to where it searches, so the owner is one covering-index
# search and the contacts one range of another, already in creation order.
_SCHEMA_2: Final = (
    # The owner's comparison key, copied from the owner's membership by the triggers
    # below, so it is right whatever order a unit of work writes the account and member
    # in. NULL while there is no such membership, as version 1's LEFT JOIN gave.
    "ALTER TABLE accounts ADD COLUMN owner_email_key TEXT",
    """UPDATE accounts SET owner_email_key = (SELECT m.email_key FROM members m
        WHERE m.account_id = accounts.id AND m.user_id = accounts.owner_id)""",
    "CREATE INDEX accounts_recipient ON accounts (id, owner_email, owner_email_key)",
    """CREATE TRIGGER accounts_owner_key_on_insert AFTER INSERT ON accounts BEGIN
        UPDATE accounts SET owner_email_key = (SELECT m.email_key FROM members m
            WHERE m.account_id = NEW.id AND m.user_id = NEW.owner_id)
        WHERE seq = NEW.seq;
    END""",
    """CREATE TRIGGER accounts_owner_key_on_owner AFTER UPDATE OF owner_id ON accounts
        WHEN NEW.owner_id IS NOT OLD.owner_id BEGIN
        UPDATE accounts SET owner_email_key = (SELECT m.email_key FROM members m
            WHERE m.account_id = NEW.id AND m.user_id = NEW.owner_id)
        WHERE seq = NEW.seq;
    END""",
    """CREATE TRIGGER members_owner_key_on_insert AFTER INSERT ON members BEGIN
        UPDATE accounts SET owner_email_key = NEW.email_key
        WHERE id = NEW.account_id AND owner_id = NEW.user_id;
    END""",
    """CREATE TRIGGER members_owner_key_on_update AFTER UPDATE OF email_key ON members BEGIN
        UPDATE accounts SET owner_email_key = NEW.email_key
        WHERE id = NEW.account_id AND owner_id = NEW.user_id;
    END""",
    """CREATE TRIGGER members_owner_key_on_delete AFTER DELETE ON members BEGIN
        UPDATE accounts SET owner_email_key = NULL
        WHERE id = OLD.account_id AND owner_id = OLD.user_id;
    END""",
    # A subscription carries its contact's creation order and address; the store writes
    # them from the contact's row in the same unit of work that writes the contact
    # (_set_categories), and rewrites them whenever the contact changes.
    "ALTER TABLE contact_categories ADD COLUMN seq INTEGER",
    "ALTER TABLE contact_categories ADD COLUMN email TEXT",
    "ALTER TABLE contact_categories ADD COLUMN email_key TEXT",
    """UPDATE contact_categories SET (seq, email, email_key) = (SELECT c.seq, c.email,
        c.email_key FROM contacts c WHERE c.id = contact_categories.contact_id)""",
    # Replaces contact_categories_lookup (a prefix of it): one range, in seq order, with
    # every column recipients() returns.
    "DROP INDEX contact_categories_lookup",
    """CREATE INDEX contact_categories_recipients
        ON contact_categories (account_id, category, seq, email, email_key)""",
)


def _migration_3(db: Any) -> None:
    """Member states, access that ends, notes and the vendor's metadata."""
    for sql in _SCHEMA_3:
        db.execute(sql)


# Members keep their grants while suspended, so the state is a column beside them, not a
# change of the permissions. grant() reads the three columns it needs from the same
# primary-key search as before. Only "active" and "suspended" are stored: "expired" is
# read off the clock against access_until, so no job has to run for access to end.
_SCHEMA_3: Final = (
    """ALTER TABLE members ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended'))""",
    "ALTER TABLE members ADD COLUMN access_until TEXT",
    "ALTER TABLE members ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE invitations ADD COLUMN access_until TEXT",
    "ALTER TABLE invitations ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE invitations ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
)


def _migration_4(db: Any) -> None:
    """Fewer B-trees written per invitation round trip (invite + accept)."""
    for sql in _SCHEMA_4:
        db.execute(sql)


# A commit writes every page it changed, each B-tree at least one; version 2 wrote about
# 28 pages (113 KiB of WAL) per invite + accept, against about 10 for the same rows in
# tables with only a primary key. Version 4 removes trees nothing needs:
# - events lose the index that kept their random ids unique (80 random bits each; nothing
#   looks an event up by id);
# - the outbox's due index holds pending rows only, so marking a message sent removes one
#   entry from a small tree instead of moving it across a large one (which rebalanced up
#   to five pages, and freed and took back a page, each time).
# Tried and left: invitations WITHOUT ROWID (one index less at invite) cost as much at
# accept, where the grown row of a random key splits a full leaf; events WITHOUT ROWID on
# (account_id, seq) (two indexes less) needs seq counted per account, which files of
# earlier versions, where seq is the rowid, cannot hold.
_SCHEMA_4: Final = (
    # seq stays the rowid, so the log keeps its order across files of every version
    """CREATE TABLE events_v4 (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        at TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT NOT NULL
    )""",
    """INSERT INTO events_v4 (seq, id, account_id, at, actor_id, action, target, details)
        SELECT seq, id, account_id, at, actor_id, action, target, details FROM events""",
    "DROP TABLE events",
    "ALTER TABLE events_v4 RENAME TO events",
    "CREATE INDEX events_account ON events (account_id, seq)",
    "CREATE INDEX events_action_time ON events (account_id, action, at)",
    "DROP INDEX outbox_due",
    "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending'",
)


def _migration_5(db: Any) -> None:
    """Invitations by address, across accounts: the per-recipient flood limit's query."""
    db.execute("CREATE INDEX invitations_email_key ON invitations (email_key)")


def _migration_6(db: Any) -> None:
    """Two B-trees fewer per invite + accept: one index for an address's invitations,
    and the rate limit's index holding send events only."""
    for sql in _SCHEMA_6:
        db.execute(sql)


# A commit writes at least one page of every B-tree it changes: version 5 wrote about 26
# pages per invite + accept (invite 14, delivery record 2, accept 10), the same rows in
# tables with only a primary key about 12. Version 6 removes two trees:
# - invitations_one_pending (the rule) and invitations_email_key (the per-recipient limit)
#   become one unique index led by the address: a pending invitation's third column is
#   '' and a closed one's its own id, so only pending ones can clash;
# - the rate limit's index holds the two send actions only, so every other event (an
#   acceptance among them) writes two trees, not three.
# Tried and left: invitations and the outbox WITHOUT ROWID on their random text ids save
# the id index but split full leaves on insert (and, for an invitation, when acceptance
# grows its row) as often, so they wrote as many pages.
_SCHEMA_6: Final = (
    "DROP INDEX invitations_one_pending",
    "DROP INDEX invitations_email_key",
    f"CREATE UNIQUE INDEX invitations_address ON invitations ({INVITATION_ADDRESS_KEY})",
    "DROP INDEX events_action_time",
    # The IN list must stay word for word what event_times() writes, or SQLite will not
    # see that the query's rows are all in this partial index.
    f"CREATE INDEX events_sends ON events (account_id, at) WHERE action IN {SEND_ACTIONS_SQL}",
)


def _migration_7(db: Any) -> None:
    """Two B-trees fewer per invitation: invitations and outbox rows found by the number
    in their id, without an index on the id."""
    for sql in _SCHEMA_7:
        db.execute(sql)


# Version 6 wrote about 24 pages per invite + accept, 13 of them at invite; two were the
# id indexes of invitations and outbox (random text ids, each entry into a random leaf).
# The service now writes ids whose first 16 hex digits are a number that grows with time
# (the millisecond, then random bits; a random tail follows), and the row is stored under
# that number, its rowid: a look-up by id is a rowid search, a new row goes at the end
# of the table, and no id index is written. Rows of an older file (their ids random) keep
# their rowid and are found through a partial index on id that holds only the rows not
# stored under their id's number: empty in a new file, and written by the service's
# inserts only for the second of two ids with the same number.
# Tried before and left: the same tables WITHOUT ROWID on time-ordered ids (an index
# B-tree splits its right edge by redistributing full pages, about half a page a row).
_INVITATION_COLUMNS_7: Final = (
    "id, account_id, email, email_key, permissions, invited_by, status, created_at, "
    "expires_at, token_hash, closed_at, accepted_by, sent_count, language, access_until, "
    "note, metadata"
)
_OUTBOX_COLUMNS_7: Final = (
    "id, account_id, kind, recipient, message_id, created_at, next_attempt_at, status, "
    "message, invitation_id, attempts, last_error, sent_at"
)
_SCHEMA_7: Final = (
    """CREATE TABLE invitations_v7 (
        key INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        permissions TEXT NOT NULL,
        invited_by TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        token_hash TEXT,
        closed_at TEXT,
        accepted_by TEXT,
        sent_count INTEGER NOT NULL,
        language TEXT NOT NULL,
        access_until TEXT,
        note TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}'
    )""",
    # the column lists are the constants above
    f"""INSERT INTO invitations_v7 (key, {_INVITATION_COLUMNS_7})
        SELECT rowid, {_INVITATION_COLUMNS_7} FROM invitations""",  # noqa: S608
    "DROP TABLE invitations",
    "ALTER TABLE invitations_v7 RENAME TO invitations",
    f"CREATE UNIQUE INDEX invitations_id ON invitations (id) WHERE {NUMBERED_INVITATION}",
    f"CREATE UNIQUE INDEX invitations_address ON invitations ({INVITATION_ADDRESS_KEY})",
    "CREATE INDEX invitations_account ON invitations (account_id, created_at)",
    """CREATE TABLE outbox_v7 (
        key INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'cancelled')),
        message BLOB,
        invitation_id TEXT,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at TEXT
    )""",
    f"""INSERT INTO outbox_v7 (key, {_OUTBOX_COLUMNS_7})
        SELECT rowid, {_OUTBOX_COLUMNS_7} FROM outbox""",  # noqa: S608
    "DROP TABLE outbox",
    "ALTER TABLE outbox_v7 RENAME TO outbox",
    f"CREATE UNIQUE INDEX outbox_id ON outbox (id) WHERE {NUMBERED_OUTBOX}",
    "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX outbox_invitation ON outbox (invitation_id)",
)


def _migration_8(db: Any) -> None:
    """The invitations a user accepted, by an index: the way back to an accepted link."""
    for sql in _SCHEMA_8:
        db.execute(sql)


# Partial: only accepted invitations have accepted_by, so the index costs a write at an
# acceptance (one B-tree more then) and nothing at an invite, a resend or a revoke.
_SCHEMA_8: Final = (
    "CREATE INDEX invitations_accepted_by ON invitations (accepted_by) "
    "WHERE accepted_by IS NOT NULL",
)


def _migration_9(db: Any) -> None:
    """The outbox records a sender's lease apart from a backoff; the status rules of
    invitations and outbox written so SQLite checks them without a temporary index."""
    for sql in _SCHEMA_9:
        db.execute(sql)


# A row claimed by a running sender and a row waiting out its backoff both had only a
# next_attempt_at in the future; leased_until tells them apart, so retry_waiting() can
# make waiting mail due without taking a row from a live sender. A file of version 8
# cannot say which of its pending rows are leased, so each counts as leased until it is
# due (its lease, or its backoff, ends then): no row a sender holds is made due early.
# The tables are rebuilt for the CHECK constraints: SQLite 3.40 evaluates
# "status IN (...)" through a temporary index built for every check (about 2.7 % of an
# invite + accept's instructions); the same rule as a chain of OR tests builds none.
_OUTBOX_COLUMNS_9: Final = _OUTBOX_COLUMNS_7 + ", leased_until"
_SCHEMA_9: Final = (
    """CREATE TABLE invitations_v9 (
        key INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        permissions TEXT NOT NULL,
        invited_by TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status = 'pending' OR status = 'accepted'
            OR status = 'declined' OR status = 'revoked' OR status = 'expired'),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        token_hash TEXT,
        closed_at TEXT,
        accepted_by TEXT,
        sent_count INTEGER NOT NULL,
        language TEXT NOT NULL,
        access_until TEXT,
        note TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}'
    )""",
    # the column lists are the constants above
    f"""INSERT INTO invitations_v9 (key, {_INVITATION_COLUMNS_7})
        SELECT key, {_INVITATION_COLUMNS_7} FROM invitations""",  # noqa: S608
    "DROP TABLE invitations",
    "ALTER TABLE invitations_v9 RENAME TO invitations",
    f"CREATE UNIQUE INDEX invitations_id ON invitations (id) WHERE {NUMBERED_INVITATION}",
    f"CREATE UNIQUE INDEX invitations_address ON invitations ({INVITATION_ADDRESS_KEY})",
    "CREATE INDEX invitations_account ON invitations (account_id, created_at)",
    "CREATE INDEX invitations_accepted_by ON invitations (accepted_by) "
    "WHERE accepted_by IS NOT NULL",
    """CREATE TABLE outbox_v9 (
        key INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status = 'pending' OR status = 'sent' OR status = 'cancelled'),
        message BLOB,
        invitation_id TEXT,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at TEXT,
        leased_until TEXT
    )""",
    f"""INSERT INTO outbox_v9 (key, {_OUTBOX_COLUMNS_9})
        SELECT key, {_OUTBOX_COLUMNS_7},
            CASE WHEN status = 'pending' THEN next_attempt_at END FROM outbox""",  # noqa: S608
    "DROP TABLE outbox",
    "ALTER TABLE outbox_v9 RENAME TO outbox",
    f"CREATE UNIQUE INDEX outbox_id ON outbox (id) WHERE {NUMBERED_OUTBOX}",
    "CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX outbox_invitation ON outbox (invitation_id)",
)


def _migration_10(db: Any) -> None:
    """An account's contact with an address, by an index: the duplicate-contact check."""
    for sql in _SCHEMA_10:
        db.execute(sql)


# add_contact and update_contact refuse a second contact with an address the account has
# (AlreadyContact); contacts_account (account_id, seq) made that a walk over every contact
# of the account, so adding the 1,000th cost ten times the first. Address first: erasure
# looks the address up in every account, with this index too. One B-tree more written per
# contact added, changed or removed.
_SCHEMA_10: Final = ("CREATE INDEX contacts_email ON contacts (email_key, account_id)",)


#: The schema history: entry *n* upgrades a file from version *n* to *n + 1*. Append a
#: function to change the schema; never edit one that has been released.
MIGRATIONS: list[Migration] = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
    _migration_10,
]

#: Tables every teamaccess file has; a file missing one is not ours.
_TABLES: Final = frozenset(
    {"accounts", "members", "invitations", "contacts", "contact_categories", "events", "outbox"}
)

# Constant SQL; "{s}" (a schema name checked by PostgresStore) is the only thing filled in.
# ruff: noqa: S608
"""The PostgreSQL schema: its migrations and the statements the store sends."""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "NEEDS_EXTRA", "TABLES", "Statements"]

#: what a missing driver or pool is told: the extra to install, not just the module's name
#: (here, in a module that imports no driver, so postgres.py can say it before importing one)
NEEDS_EXTRA: Final = (
    "PostgresStore needs the postgres extra (psycopg 3 and psycopg-pool): "
    "pip install 'teamaccess[postgres]'"
)

# -- the schema ---------------------------------------------------------------------------
# Each entry upgrades a schema from version n to n + 1; "{s}" is the quoted schema name.
# Append to change the schema; never edit an entry that has been released.

_SCHEMA_1: Final = (
    """CREATE TABLE {s}.schema_info (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL
    )""",
    # seq columns keep creation order for rows created at the same instant
    """CREATE TABLE {s}.accounts (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        name text NOT NULL,
        owner_id text NOT NULL,
        owner_email text NOT NULL,
        created_at timestamptz NOT NULL
    )""",
    # the primary key is grant()'s index
    """CREATE TABLE {s}.members (
        account_id text NOT NULL REFERENCES {s}.accounts (id),
        user_id text NOT NULL,
        email text NOT NULL,
        email_key text NOT NULL,
        role text NOT NULL CHECK (role IN ('owner', 'member')),
        permissions text NOT NULL,
        joined_at timestamptz NOT NULL,
        granted_by text,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (account_id, user_id)
    )""",
    "CREATE UNIQUE INDEX members_email_key ON {s}.members (account_id, email_key)",
    "CREATE INDEX members_user ON {s}.members (user_id)",
    """CREATE TABLE {s}.invitations (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        account_id text NOT NULL REFERENCES {s}.accounts (id),
        email text NOT NULL,
        email_key text NOT NULL,
        permissions text NOT NULL,
        invited_by text NOT NULL,
        status text NOT NULL
            CHECK (status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        token_hash text,
        closed_at timestamptz,
        accepted_by text,
        sent_count integer NOT NULL,
        language text NOT NULL
    )""",
    # the rule "one pending invitation per address and account", enforced by the database
    """CREATE UNIQUE INDEX invitations_one_pending ON {s}.invitations (account_id, email_key)
        WHERE status = 'pending'""",
    "CREATE INDEX invitations_account ON {s}.invitations (account_id, created_at, seq)",
    """CREATE TABLE {s}.contacts (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        account_id text NOT NULL REFERENCES {s}.accounts (id),
        name text NOT NULL,
        email text NOT NULL,
        email_key text NOT NULL,
        company text NOT NULL,
        phone text NOT NULL,
        role text NOT NULL,
        created_at timestamptz,
        categories text[] NOT NULL
    )""",
    "CREATE INDEX contacts_account ON {s}.contacts (account_id, seq)",
    """CREATE TABLE {s}.events (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        account_id text NOT NULL REFERENCES {s}.accounts (id),
        at timestamptz NOT NULL,
        actor_id text NOT NULL,
        action text NOT NULL,
        target text NOT NULL,
        details text NOT NULL
    )""",
    "CREATE INDEX events_account ON {s}.events (account_id, seq)",
    "CREATE INDEX events_action_time ON {s}.events (account_id, action, at)",
    """CREATE TABLE {s}.outbox (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        account_id text NOT NULL REFERENCES {s}.accounts (id),
        kind text NOT NULL,
        recipient text NOT NULL,
        message_id text NOT NULL,
        created_at timestamptz NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'sent', 'cancelled')),
        message bytea,
        invitation_id text,
        attempts integer NOT NULL,
        last_error text,
        sent_at timestamptz
    )""",
    "CREATE INDEX outbox_due ON {s}.outbox (status, next_attempt_at)",
    "CREATE INDEX outbox_invitation ON {s}.outbox (invitation_id)",
)

# Member states, access that ends, notes and the vendor's metadata. Members keep their
# grants while suspended, so the state is a column beside them; grant() reads it from the
# same primary-key search. Only "active" and "suspended" are stored: "expired" is read off
# the clock against access_until, so no job has to run for access to end.
_SCHEMA_MEMBERS: Final = (
    """ALTER TABLE {s}.members ADD COLUMN status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended'))""",
    "ALTER TABLE {s}.members ADD COLUMN access_until timestamptz",
    "ALTER TABLE {s}.members ADD COLUMN metadata text NOT NULL DEFAULT '{}'",
    "ALTER TABLE {s}.invitations ADD COLUMN access_until timestamptz",
    "ALTER TABLE {s}.invitations ADD COLUMN note text NOT NULL DEFAULT ''",
    "ALTER TABLE {s}.invitations ADD COLUMN metadata text NOT NULL DEFAULT '{}'",
)

#: The schema history: entry *n* holds the statements that take a schema from version
#: *n* to *n + 1*.
# Invitations by address, across accounts: the per-recipient flood limit's query.
_SCHEMA_RECIPIENT_INDEX: Final = (
    "CREATE INDEX invitations_email_key ON {s}.invitations (email_key)",
)

# The invitations a user accepted, across accounts: the way back to an accepted link.
# Partial: only an acceptance writes it.
_SCHEMA_ACCEPTED_INDEX: Final = (
    "CREATE INDEX invitations_accepted_by ON {s}.invitations (accepted_by) "
    "WHERE accepted_by IS NOT NULL",
)

# A sender's lease on an outbox row, apart from a backoff: retry_waiting() makes waiting
# mail due without taking a row from a live sender. A schema of version 4 cannot say which
# of its pending rows are leased, so each counts as leased until it is due (its lease, or
# its backoff, ends then). The CHECK constraints stay: PostgreSQL builds no index for IN.
_SCHEMA_LEASE: Final = (
    "ALTER TABLE {s}.outbox ADD COLUMN leased_until timestamptz",
    "UPDATE {s}.outbox SET leased_until = next_attempt_at WHERE status = 'pending'",
)

# An account's contact with an address: the duplicate-contact check of add_contact and
# update_contact (AlreadyContact) read every contact of the account through
# contacts_account. Address first: erasure looks the address up in every account too.
_SCHEMA_CONTACT_EMAIL_INDEX: Final = (
    "CREATE INDEX contacts_email_key ON {s}.contacts (email_key, account_id)",
)

MIGRATIONS: list[tuple[str, ...]] = [
    _SCHEMA_1,
    _SCHEMA_MEMBERS,
    _SCHEMA_RECIPIENT_INDEX,
    _SCHEMA_ACCEPTED_INDEX,
    _SCHEMA_LEASE,
    _SCHEMA_CONTACT_EMAIL_INDEX,
]

#: Tables every teamaccess schema has; a schema missing one is damaged.
TABLES: Final = frozenset(
    {"schema_info", "accounts", "members", "invitations", "contacts", "events", "outbox"}
)

_ACCOUNT_COLS: Final = "id, name, owner_id, owner_email, created_at"
_MEMBER_COLS: Final = (
    "account_id, user_id, email, role, permissions, joined_at, granted_by, status, "
    "access_until, metadata"
)
_INVITATION_COLS: Final = (
    "id, account_id, email, permissions, invited_by, status, created_at, expires_at, "
    "token_hash, closed_at, accepted_by, sent_count, language, access_until, note, metadata"
)
_CONTACT_COLS: Final = "id, account_id, name, email, company, phone, role, created_at, categories"
_EVENT_COLS: Final = "id, account_id, at, actor_id, action, target, details"
_OUTBOX_COLS: Final = (
    "id, account_id, kind, recipient, message_id, created_at, next_attempt_at, status, "
    "message, invitation_id, attempts, last_error, sent_at, leased_until"
)


class Statements:
    """The store's SQL, with the schema name filled in once."""

    def __init__(self, s: str) -> None:
        self.version = f"SELECT version FROM {s}.schema_info"
        # grant(): one column, the permissions of an active member without an end (most
        # members), else NULL; then grant_full reads the state and the end. One value to
        # send and decode instead of three.
        self.grant = (
            "SELECT CASE WHEN status = 'active' AND access_until IS NULL THEN permissions "
            f"END FROM {s}.members WHERE account_id = %s AND user_id = %s"
        )
        self.grant_full = (
            f"SELECT permissions, status, access_until FROM {s}.members "
            "WHERE account_id = %s AND user_id = %s"
        )
        # The owner (part 0) with the owner's comparison key, then the contacts subscribed
        # to the category (part 1, by creation order), in one statement: one snapshot.
        self.recipients = (
            f"SELECT 0, 0::bigint, a.owner_email, m.email_key FROM {s}.accounts a "
            f"LEFT JOIN {s}.members m ON m.account_id = a.id AND m.user_id = a.owner_id "
            "WHERE a.id = %(a)s UNION ALL "
            f"SELECT 1, c.seq, c.email, c.email_key FROM {s}.contacts c "
            "WHERE c.account_id = %(a)s AND %(c)s = ANY (c.categories)"
        )
        self.lock = "SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))"
        self.lock_via = {
            table: "SELECT account_id, pg_advisory_xact_lock(%s::integer, hashtext(account_id)) "
            f"FROM {s}.{table} WHERE id = %s"
            for table in ("invitations", "contacts", "outbox")
        }
        # The combined reads (CombinedReads): each one statement with the single reads'
        # conditions, word for word (so their indexes). The unit takes the single reads'
        # locks in a statement before, so what it reads is what the locks' holders left.
        self.account_member = (
            f"SELECT {_qualified(_ACCOUNT_COLS, 'a')}, {_qualified(_MEMBER_COLS, 'm')} "
            f"FROM {s}.accounts a LEFT JOIN {s}.members m "
            "ON m.account_id = a.id AND m.user_id = %s WHERE a.id = %s"
        )
        self.address_in_use = (
            f"SELECT EXISTS (SELECT 1 FROM {s}.members WHERE account_id = %s "
            f"AND email_key = %s), {_qualified(_INVITATION_COLS, 'i')} FROM (SELECT 1) one "
            f"LEFT JOIN {s}.invitations i ON i.account_id = %s AND i.email_key = %s "
            "AND i.status = 'pending'"
        )
        # The nth newest send of the account and mail to the address after a time, or
        # NULL: event_times()'s and invitation_mail_times()'s rows, read from the newest.
        self.send_marks = (
            f"SELECT (SELECT at FROM {s}.events WHERE account_id = %s "
            "AND action = ANY (%s) AND at > %s ORDER BY at DESC LIMIT 1 OFFSET %s), "
            f"(SELECT o.created_at FROM {s}.invitations i JOIN {s}.outbox o "
            "ON o.invitation_id = i.id WHERE i.email_key = %s AND o.kind = 'invitation' "
            "AND o.created_at > %s ORDER BY o.created_at DESC LIMIT 1 OFFSET %s)"
        )
        self.outbox_row = f"SELECT {_OUTBOX_COLS} FROM {s}.outbox WHERE id = %s"
        self.invitation_account_member = (
            f"SELECT {_qualified(_INVITATION_COLS, 'i')}, {_qualified(_ACCOUNT_COLS, 'a')}, "
            f"{_qualified(_MEMBER_COLS, 'm')} FROM {s}.invitations i "
            f"LEFT JOIN {s}.accounts a ON a.id = i.account_id LEFT JOIN {s}.members m "
            "ON m.account_id = i.account_id AND m.user_id = %s WHERE i.id = %s"
        )
        self.invitation_and_inviter = (
            f"SELECT {_qualified(_INVITATION_COLS, 'i')}, {_qualified(_MEMBER_COLS, 'm')} "
            f"FROM {s}.invitations i LEFT JOIN {s}.members m "
            "ON m.account_id = i.account_id AND m.user_id = i.invited_by WHERE i.id = %s"
        )
        self.contact_and_member = (
            f"SELECT {_qualified(_CONTACT_COLS, 'c')}, {_qualified(_MEMBER_COLS, 'm')} "
            f"FROM {s}.contacts c LEFT JOIN {s}.members m "
            "ON m.account_id = c.account_id AND m.user_id = %s WHERE c.id = %s"
        )
        # Two locks in one round trip, in the order the single reads take them.
        self.lock_two = (
            "SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s)), "
            "pg_advisory_xact_lock(%s::integer, hashtext(%s))"
        )
        self.lock_outbox_of = (
            "SELECT account_id, pg_advisory_xact_lock(%s::integer, hashtext(account_id)) "
            f"FROM {s}.outbox WHERE invitation_id = %s AND status = 'pending'"
        )
        self.s = s


def _qualified(cols: str, table: str) -> str:
    return ", ".join(f"{table}.{c}" for c in cols.split(", "))

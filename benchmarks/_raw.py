"""The floors: plain ``sqlite3`` on the same file, with a connection of its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# The same indexed look-up grant() makes (members' primary key), nothing around it.
CAN_SQL = "SELECT permissions FROM members WHERE account_id = ? AND user_id = ?"
# The owner's address, then the subscribed contacts in creation order: recipients()'s rows,
# by the best plain query on schema 2: one search of accounts' covering index (named, as
# the store does: SQLite's planner would take the UNIQUE id index and then the row), one
# range of the subscriptions' covering index, already in seq order, so nothing is sorted.
RECIPIENTS_SQL = (
    "SELECT owner_email FROM accounts INDEXED BY accounts_recipient WHERE id = ?1 "
    "UNION ALL SELECT email FROM (SELECT email FROM contact_categories "
    "WHERE account_id = ?1 AND category = ?2 ORDER BY seq)"
)


class RawQueries:
    """Answers ``can()`` and ``recipients()`` with one statement each, autocommit."""

    def __init__(self, path: Path | str) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)

    def can(self, user_id: str, account_id: str, permission: str) -> bool:
        row = self.conn.execute(CAN_SQL, (account_id, user_id)).fetchone()
        # permissions are stored as JSON: '"*"' for all, else a list of quoted names
        return row is not None and (row[0] == '"*"' or f'"{permission}"' in row[0])

    def can_on(self, user_id: str, account_id: str, permission: str, resource: str) -> bool:
        """``can(..., resource=)`` by the same query: an account-wide grant, or the scoped
        one, stored as ``"permission@resource"`` in the JSON list."""
        row = self.conn.execute(CAN_SQL, (account_id, user_id)).fetchone()
        return row is not None and (
            row[0] == '"*"' or f'"{permission}"' in row[0] or f'"{permission}@{resource}"' in row[0]
        )

    def recipients(self, account_id: str, category: str) -> list[str]:
        return [r[0] for r in self.conn.execute(RECIPIENTS_SQL, (account_id, category))]

    def close(self) -> None:
        self.conn.close()

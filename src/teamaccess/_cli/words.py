"""The library's messages in the words of the command line.

The service's errors tell a Python caller what to call (``members(account_id)``,
``deliver_pending()``, ``SQLiteStore(..., timeout=...)``); an operator types commands
and options. The command rewrites those hints before printing an error. Each rewrite
names a hint the library gives today; tests/test_cli_operators.py (``TestTheCommandsWords``)
makes the library raise them and checks what the command prints, and that every rewrite
still matches words the library's source says.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["for_operators"]

#: (library's words, the command's words), as regular expressions; applied in order.
_REWRITES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        # where to look something up
        (r"accounts_for\(user_id\) lists a user's accounts",
         "'teamaccess accounts list USER' lists a user's accounts"),
        (r"members\(account_id\) lists who is", "'teamaccess members ACCOUNT' lists who is"),
        (r"pending_invitations\(account_id\) lists them",
         "'teamaccess invitations ACCOUNT' lists them"),
        (r"contacts\(account_id\) lists them", "'teamaccess contacts list ACCOUNT' lists them"),
        (r"pending_messages\(\) does not list them",
         "'teamaccess deliver --list' does not list them"),
        # what to do instead
        (r"with set_permissions\(\) instead", "with 'teamaccess permissions set' instead"),
        (r"\(transfer_ownership\(\)\)", "('teamaccess transfer')"),
        (r"\(delete_account\(\)\)", "('teamaccess delete-account')"),
        (r"use remove_member\(\)", "use 'teamaccess remove'"),
        (r"\(to leave the account, remove_member\(\) yourself\)",
         "(to leave the account: 'teamaccess remove ACCOUNT USER --as USER')"),
        (r"first set its end with set_access_until\(\)",
         "first set its end with 'teamaccess access-until'"),
        # one contact per address, and at least one category
        (r"\(update_contact\('?([^',]+)'?, categories=\.\.\.\)\)",
         r"('teamaccess contacts update \1 --category ...')"),
        (r"e\.g\. categories=\['general'\]", "e.g. --category general"),
        (r"remove it \(remove_contact\)", "remove it ('teamaccess contacts remove')"),
        (r"the invitation (\S+) is saved and its mail will be retried by deliver_pending\(\) "
         r"\(or send it again with resend_invitation\(\)\)",
         r"the invitation \1 is saved and its mail will be retried by 'teamaccess deliver' "
         r"(or send it again with 'teamaccess resend \1')"),
        (r"do not call notify\(\) again", "do not run 'teamaccess notify' again"),
        (r"deliver_pending\(\)", "'teamaccess deliver'"),
        # purge scrubs only when it deleted something: scrub is the step on its own.
        (r"call store\.scrub\(\) \(teamaccess scrub\)", "run 'teamaccess scrub'"),
        (r"call store\.scrub\(\) again", "run 'teamaccess scrub'"),
        # the database
        (r"point SQLiteStore at", "point --db at"),
        (r"open it once writable, as a user who may write it \(SQLiteStore on its path "
         r"upgrades it\)",
         "run 'teamaccess migrate' once as a user who may write it (the file's owner)"),
        (r"retry, or open it with a longer SQLiteStore\(\.\.\., timeout=\.\.\.\)",
         "retry once the other process is done"),
        (r"retry, or give the store a larger pool \(max_size=\) or a longer timeout=",
         "retry once the other processes are done"),
        (r"pass PostgresStore\(\.\.\., schema=\.\.\.\) a new or empty schema",
         "pass --schema a new or empty schema"),
        (r"open a new PostgresStore", "run the command again"),
        # who acts: --as, not actor_id=
        (r"\(actor_id=teamaccess\.SYSTEM, acting on a request\)",
         "(--as system, acting on a request)"),
        (r"\(actor_id equal to user_id\)", "(--as the user named by --user)"),
        (r"with actor_id=teamaccess\.SYSTEM\)", "with --as system)"),
        (r"\(teamaccess\.SYSTEM\)", "(--as system)"),
        (r"cannot be teamaccess\.SYSTEM", "cannot be the operator (teamaccess:system)"),
    )
)  # fmt: skip

#: Rewrites of a message that names a parameter first: the command's option or argument.
_NAMES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        # settings named as the constructor's parameters
        (r"^accept_url\b", "--accept-url (TEAMACCESS_ACCEPT_URL)"),
        (r"^sender\b", "--sender (TEAMACCESS_SENDER)"),
        (r"^schema( names)?\b", r"--schema\1 (TEAMACCESS_SCHEMA)"),
        (r"^secret_key\b", "TEAMACCESS_SECRET_KEY"),
        (r"^pseudonym_key\b", "TEAMACCESS_PSEUDONYM_KEY"),
        (r"^the PostgreSQL connection string\b", "--db (TEAMACCESS_DB)"),
        (r"^access_until (?=\d)", "the end of access "),
        (r"^until (?=\d)", "the end of access "),  # set_access_until()'s parameter
        # an id argument, as the command's help names it
        (r"^owner_id\b", "--owner-id"),
        (r"^owner_email\b", "--owner-email"),
        (r"^actor_id\b", "--as"),
        (r"^account_id\b", "ACCOUNT_ID"),
        (r"^user_id\b", "USER_ID"),
        (r"^contact_id\b", "CONTACT_ID"),
        (r"^invitation_id\b", "INVITATION_ID"),
    )
)  # fmt: skip


def for_operators(message: str, *, names: bool = True) -> str:
    """*message* with each hint at a Python call replaced by the command to type, and
    (*names*) a parameter it starts with by the option or argument the command has."""
    for pattern, words in _REWRITES + _NAMES if names else _REWRITES:
        message = pattern.sub(words, message)
    return message

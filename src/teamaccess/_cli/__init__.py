"""The ``teamaccess`` command: every use case for scripts and operators, plus ``demo``.

Imported only when the command runs (the console script, ``python -m teamaccess``), never
by ``import teamaccess``. It works on an embedded default: a SQLite file (``./teamaccess.db``;
``--db postgresql://...`` for a PostgreSQL database),
mail written as ``.eml`` files to ``./outbox`` unless SMTP settings are given, and a secret
key generated once and kept next to the database.

Exit status: 0 on success, 2 for a usage error, one code per error family (see
``EXIT_CODES``), so a script can tell "not found" from "not allowed", and 130 for Ctrl-C
(``EXIT_INTERRUPTED``); the same on every command, as docs/cli.md tabulates them. Error
lines say what to type, not what to call (``words``).

One module per area: ``app`` (the group, its options and shared helpers), ``config`` (the
settings), ``output`` (text and JSON), and the commands in ``accounts``, ``members``,
``invitations``, ``contacts``, ``delivery``, ``lifecycle`` (member states, scopes),
``database`` (``migrate``), ``privacy``, ``imports`` (``import``), ``demo`` and ``web``
(``web-demo``). Importing a
command module registers its commands on the group.
"""

from . import (
    accounts,
    contacts,
    database,
    delivery,
    demo,
    imports,
    invitations,
    lifecycle,
    members,
    privacy,
    web,
)
from .app import EXIT_CODES, cli, main

__all__ = ["EXIT_CODES", "cli", "main"]

# The command modules register their commands when imported.
_COMMANDS = (
    accounts, contacts, database, delivery, demo, invitations, lifecycle, members, privacy, web,
    imports,
)  # fmt: skip

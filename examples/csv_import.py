"""Import members (as invitations) and contacts from another panel's CSV export.

This brings new people into ONE existing account: each must accept with their own login.
To move whole accounts whose people already have logins in your panel (owners, members
and contacts, no invitation, no mail), use ``teamaccess import FILE`` on the command line
or ``TeamAccess.import_accounts(rows)`` in Python instead (docs/cli.md, docs/api.md).

A vendor migrating customers from another panel exports one CSV per account::

    kind,email,name,permissions,categories,company,phone,role
    member,dev@agentur.de,Anna Dev,services.view;support.tickets,,,,
    member,buchhaltung@muster.de,Bernd,all,,,,
    contact,kanzlei@steuer.de,Steuerbüro Klein,,billing;general,Klein & Co,+49 30 1234,Tax adviser

Here members are not copied: they have to accept an invitation with their own login,
so each ``member`` row becomes an invitation mail. ``contact`` rows become contacts.

Every row is checked first (address, permission and category names, duplicates, people
who are already members or invited); if any row is bad, the bad rows are reported with
their line numbers and nothing is imported. ``--dry-run`` only checks and shows the plan.
The import itself runs in one ``team.batch()``: one commit for the whole file, and the
mails go out once it is stored.

    TEAMACCESS_SECRET_KEY=... python examples/csv_import.py export.csv \\
        --db teamaccess.db --account acc_... [--as USER] [--dry-run]

The database and key are the ``teamaccess`` command's (``teamaccess accounts create ...``
makes the account); mail goes to ``./outbox`` as ``.eml`` files.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import teamaccess
from teamaccess import (
    SYSTEM,
    DeliveryFailed,
    FileMailer,
    PermissionSet,
    TeamAccess,
    TeamAccessError,
    normalize_email,
)

COLUMNS = ["kind", "email", "name", "permissions", "categories", "company", "phone", "role"]


@dataclass
class Row:
    line: int
    kind: str
    email: str
    name: str = ""
    permissions: PermissionSet = field(default_factory=PermissionSet.none)
    categories: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)


def split(value: str) -> list[str]:
    """``a;b``, ``a|b`` or ``a b``: other panels export lists every which way."""
    return [part for part in value.replace("|", ";").replace(" ", ";").split(";") if part]


def read_rows(path: str) -> Iterator[tuple[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = {"kind", "email"} - set(header)
        if missing:
            raise SystemExit(f"error: {path} has no column(s) {', '.join(sorted(missing))}")
        end = reader.line_num
        for values in reader:
            # A quoted value may hold a line break, so a record is named by the line it
            # starts on (where an editor shows it); reader.line_num is where it ended.
            line, end = end + 1, reader.line_num
            if values:  # not a blank line
                record = dict.fromkeys(header, "") | dict(zip(header, values, strict=False))
                yield line, {k: v.strip() for k, v in record.items() if k}


def check(team: TeamAccess, account_id: str, actor: str, path: str) -> tuple[list[Row], list[str]]:
    """Every row parsed and checked against the account; ``(rows, errors)``."""
    members = {normalize_email(m.email).key for m in team.members(account_id)}
    invited = {normalize_email(i.email).key for i in team.pending_invitations(account_id)}
    contacts = {normalize_email(c.email).key for c in team.contacts(account_id)}
    seen: dict[tuple[str, str], int] = {}
    rows: list[Row] = []
    errors: list[str] = []
    for line, record in read_rows(path):
        try:
            if any(c in value for value in record.values() for c in "\r\n\0"):
                raise ValueError("a field contains a line break; keep every value on one line")
            kind = record.get("kind", "").lower()
            if kind not in ("member", "contact"):
                raise ValueError(f"kind must be 'member' or 'contact', not {kind!r}")
            address = normalize_email(record.get("email", ""))
            if (kind, address.key) in seen:
                raise ValueError(
                    f"{address.email} is listed twice (first on line {seen[kind, address.key]})"
                )
            seen[kind, address.key] = line
            row = Row(line, kind, address.email, name=record.get("name", ""))
            if kind == "member":
                if not team.can(actor, account_id, "users.manage"):
                    raise ValueError(f"{actor} may not invite users (needs users.manage)")
                names = split(record.get("permissions", ""))
                if names == ["all"]:
                    row.permissions = PermissionSet.all()
                else:
                    row.permissions = team.catalog.check(PermissionSet.of(*names))
                if address.key in members:
                    raise ValueError(f"{address.email} is already a member")
                if address.key in invited:
                    raise ValueError(f"{address.email} already has a pending invitation")
            else:
                if not team.can(actor, account_id, "contacts.manage"):
                    raise ValueError(f"{actor} may not add contacts (needs contacts.manage)")
                if not row.name:
                    raise ValueError("a contact needs a name")
                if address.key in contacts:
                    raise ValueError(f"{address.email} is already a contact")
                row.categories = sorted(team.categories.check(split(record["categories"])))
                if not row.categories:
                    raise ValueError(
                        "a contact needs at least one category: "
                        + ", ".join(team.categories.names())
                    )
                row.details = {k: record[k] for k in ("company", "phone", "role") if record.get(k)}
            rows.append(row)
        except (ValueError, TeamAccessError) as exc:
            # teamaccess's ValidationError is a ValueError too
            errors.append(f"line {line}: {exc}")
    return rows, errors


def describe(row: Row) -> str:
    if row.kind == "member":
        perms = "all permissions" if row.permissions.is_all else ", ".join(
            sorted(row.permissions.names)) or "no permissions"  # fmt: skip
        return f"invite {row.email} with {perms}"
    return f"add contact {row.name} <{row.email}> for {', '.join(row.categories)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="the exported file")
    parser.add_argument("--account", required=True, help="id of the account to import into")
    parser.add_argument("--db", default="teamaccess.db", help="SQLite file (teamaccess.db)")
    parser.add_argument("--outbox", default="outbox", help="folder for the invitation mails")
    parser.add_argument("--as", dest="actor", default=SYSTEM, help="acting user (the vendor)")
    parser.add_argument("--dry-run", action="store_true", help="check and show, change nothing")
    args = parser.parse_args(argv)

    key = os.environ.get("TEAMACCESS_SECRET_KEY")
    if not key:
        print("error: set TEAMACCESS_SECRET_KEY (the key the panel signs invitations with)",
              file=sys.stderr)  # fmt: skip
        return 2
    store = teamaccess.SQLiteStore(args.db)
    # A migration is one deliberate bulk operation by the vendor, so the per-account
    # invitation rate limit (50 an hour, against abuse by a customer) is lifted for it.
    team = TeamAccess(store, FileMailer(args.outbox), secret_key=key, rate_limit=100_000)
    try:
        team.get_account(args.account)
        rows, errors = check(team, args.account, args.actor, args.csv)
        if errors:
            for error in errors:
                print(f"{args.csv}: {error}", file=sys.stderr)
            print(f"{len(errors)} bad row(s); nothing was imported. Fix them and run again.",
                  file=sys.stderr)  # fmt: skip
            return 1
        for row in rows:
            print(("would " if args.dry_run else "") + describe(row))
        if not args.dry_run:
            try:
                # One unit of work for the whole file: one commit, every rule checked
                # again as it goes, and the invitation mails sent once it is stored.
                with team.batch():
                    for row in rows:
                        if row.kind == "member":
                            team.invite(
                                args.account, actor_id=args.actor, email=row.email,
                                permissions=row.permissions,
                            )  # fmt: skip
                        else:
                            team.add_contact(
                                args.account, actor_id=args.actor, name=row.name,
                                email=row.email, categories=row.categories, **row.details,
                            )  # fmt: skip
            except DeliveryFailed as exc:
                print(f"  ({len(exc.message_ids)} mail(s) wait in the outbox: run "
                      "`teamaccess deliver` later)")  # fmt: skip
        done = "checked, nothing changed (dry run)" if args.dry_run else "imported"
        print(f"{len(rows)} row(s) {done}")
        return 0
    except TeamAccessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        team.close()


if __name__ == "__main__":
    sys.exit(main())

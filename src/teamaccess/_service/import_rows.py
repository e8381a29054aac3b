"""``TeamAccess.import_accounts()``: move whole accounts in from another panel.

A vendor adopting teamaccess moves its customers over with the people who already use
each account. Those people have their logins in the vendor's panel already, so they
become members directly: no invitation, no token, no mail. That is why only the vendor
imports (``teamaccess.SYSTEM`` is audited as the actor), and why the rules of the single
use cases that concern what is stored all hold, while those that concern invitations do
not apply.

Every row is checked before the first write, so bad input writes nothing. The rows are
then written in chunks, one unit of work (one commit) each: a single transaction for
100,000 accounts would hold the write lock for minutes, blocking every other writer of
the panel, and would grow SQLite's WAL to the size of the whole import.

This module loads on the first call of ``import_accounts()``, whose method is in
``importing``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import attrs

from .._domain import SYSTEM, Account, AuditEvent, Contact, Member, check_metadata
from .._emails import NAME_LIMIT, check_length, check_name, normalize_email
from .._errors import (
    ImportInterrupted,
    InvalidImport,
    TeamAccessError,
    ValidationError,
)
from .._permissions import PermissionSet
from .._ports import add_each
from .checks import _CONTACT_FIELDS, _check_id, _check_new_user, _check_until, _new_id, _Work
from .contacts import _Contacts, _some_categories

if TYPE_CHECKING:
    from .core import _Core

__all__ = ["ImportProblem", "_Importer"]

#: How many problems one ``InvalidImport`` lists at most: enough to fix a file in a few
#: rounds, few enough to read.
MAX_PROBLEMS: Final = 100
_ACCOUNT_KEYS: Final = frozenset({"id", "name", "owner_id", "owner_email", "members", "contacts"})
_MEMBER_KEYS: Final = frozenset({"user_id", "email", "permissions", "access_until", "metadata"})
_CONTACT_KEYS: Final = frozenset({"name", "email", "categories", *_CONTACT_FIELDS})
_NOT_ROWS: Final = (str, bytes, bytearray, Mapping)
#: An imported account id: the characters of a generated one, which a URL path segment,
#: a shell and a log line take as they are.
_ID: Final = re.compile(r"[A-Za-z0-9._~-]+")

Progress = Callable[[str, int, int], object]


@attrs.frozen
class ImportProblem:
    """One thing wrong with one row of ``import_accounts()``.

    ``row`` is the row's position (0 for the first), ``account`` the account id the row
    asked for (if any), ``part`` says whether the account itself, one of its ``members``
    or one of its ``contacts`` is wrong, ``index`` which one (0 for the first), and
    ``message`` what to fix.
    """

    row: int
    part: Literal["account", "member", "contact"]
    message: str
    index: int | None = None
    account: str | None = None

    def __str__(self) -> str:
        where = f"row {self.row}"
        if self.account is not None:
            where += f" (account {self.account!r})"
        if self.part != "account":
            where += f", {self.part} {self.index}"
        return f"{where}: {self.message}"


class _Person(NamedTuple):
    """A member as checked: what ``Member`` needs, and the address's comparison key."""

    user_id: str
    email: str
    key: str
    permissions: PermissionSet
    access_until: datetime | None
    metadata: dict[str, object]


class _Entry(NamedTuple):
    """One contact as checked."""

    name: str
    email: str
    key: str
    categories: frozenset[str]
    details: dict[str, str]


@attrs.define
class _Row:
    """One account as checked, not yet written."""

    id: str | None
    name: str
    owner: _Person
    members: list[_Person]
    contacts: list[_Entry]
    skip: bool = False


class _Problems:
    """The problems found so far, each tied to its row."""

    def __init__(self) -> None:
        self.found: list[ImportProblem] = []

    def add(
        self,
        row: int,
        part: Literal["account", "member", "contact"],
        exc: TeamAccessError | str,
        index: int | None = None,
        account: str | None = None,
    ) -> None:
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(ImportProblem(row, part, str(exc), index, account))

    @property
    def full(self) -> bool:
        return len(self.found) >= MAX_PROBLEMS


class _Importer:
    """One ``import_accounts()`` call's work, on the ``TeamAccess`` it runs for."""

    def __init__(self, team: _Core) -> None:
        self.team = team

    def run(
        self,
        rows: Iterable[Mapping[str, Any]],
        existing: Literal["error", "skip"],
        chunk_size: int,
        progress: Progress | None,
        dry_run: bool,
    ) -> list[Account]:
        """See ``TeamAccess.import_accounts()``."""
        state = getattr(self.team, "_batch_state", None)
        if callable(state) and state() is not None:
            raise ValidationError(
                "import_accounts() commits its own chunks and cannot run inside "
                "team.batch(); call it after the with block"
            )
        if existing not in ("error", "skip"):
            raise ValidationError(
                f"existing must be 'error' (refuse an account id that exists) or 'skip' "
                f"(leave that row out), not {existing!r}"
            )
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValidationError(
                f"chunk_size must be a positive integer (accounts per commit), not {chunk_size!r}"
            )
        if progress is not None and not callable(progress):
            raise ValidationError(
                "progress must be a callable taking (phase, done, total), "
                f"not {type(progress).__name__}"
            )
        if not isinstance(dry_run, bool):
            raise ValidationError(f"dry_run must be True or False, not {dry_run!r}")
        if isinstance(rows, _NOT_ROWS) or not isinstance(rows, Iterable):
            raise ValidationError(
                "rows must be a list (or other iterable) of mappings, one per account, "
                f"not {type(rows).__name__}"
            )
        given = list(rows)
        checked = self._check_rows(given, existing, progress)
        if dry_run:
            now = self.team.now()
            return [self._account_of(r, now) for r in checked if not r.skip]
        return self._write_rows(checked, chunk_size, progress)

    # -- checking -------------------------------------------------------------------------

    def _check_rows(
        self, rows: Sequence[object], existing: str, progress: Progress | None
    ) -> list[_Row]:
        problems = _Problems()
        checked: list[_Row] = []
        perms: dict[object, PermissionSet] = {}
        ids: dict[str, int] = {}
        now = self.team.now()
        total = len(rows)
        for i, raw in enumerate(rows):
            row = self._check_row(i, raw, problems, perms, now)
            if row is not None:
                if row.id is not None:
                    first = ids.setdefault(row.id, i)
                    if first != i:
                        problems.add(
                            i, "account", f"the account id {row.id!r} is also in row {first}; "
                            "each account comes once", account=row.id,
                        )  # fmt: skip
                checked.append(row)
            if problems.full:
                break
            if progress is not None and (i + 1) % 1000 == 0:
                progress("check", i + 1, total)
        if ids and not problems.full:
            with self.team._read() as uow:
                for row in checked:
                    if row.id is not None and uow.get_account(row.id) is not None:
                        if existing == "skip":
                            row.skip = True
                        else:
                            problems.add(
                                ids[row.id], "account", f"account {row.id!r} exists already; "
                                "leave the row out, or pass existing='skip' to resume an "
                                "import", account=row.id,
                            )  # fmt: skip
        if problems.found:
            shown = "; ".join(str(p) for p in problems.found[:5])
            more = len(problems.found) - 5
            raise InvalidImport(
                f"{len(problems.found)}{'+' if problems.full else ''} problem(s) in the rows, "
                f"nothing was imported: {shown}"
                + (f"; and {more} more (see .problems)" if more > 0 else ""),
                problems=problems.found,
            )
        if progress is not None:
            progress("check", total, total)
        return checked

    def _check_row(
        self,
        i: int,
        raw: object,
        problems: _Problems,
        perms: dict[object, PermissionSet],
        now: datetime,
    ) -> _Row | None:
        if not isinstance(raw, Mapping):
            problems.add(
                i, "account", f"a row must be a mapping (a dict), not {type(raw).__name__}"
            )
            return None
        account_id = raw.get("id")
        ref = account_id if isinstance(account_id, str) else None
        before = len(problems.found)

        def fail(exc: TeamAccessError | str) -> None:
            problems.add(i, "account", exc, account=ref)

        unknown = sorted(str(k) for k in raw if k not in _ACCOUNT_KEYS)
        if unknown:
            fail(f"unknown field(s) {', '.join(unknown)}; use: {', '.join(sorted(_ACCOUNT_KEYS))}")
        for required in ("name", "owner_id", "owner_email"):
            if raw.get(required) is None:
                fail(f"{required} is missing")
        try:
            if account_id is not None:
                account_id = _check_id("id", account_id)
                check_length("id", account_id, NAME_LIMIT)
                if account_id != account_id.strip():
                    raise ValidationError(f"id {account_id!r} has spaces around it; remove them")
                if not _ID.fullmatch(account_id):
                    # An account id goes as it is into the pages' URLs, commands and logs:
                    # a "/" made another page's path, and fullwidth digits looked like "4711".
                    raise ValidationError(
                        f"id {account_id!r} may hold only ASCII letters, digits and - . _ ~ "
                        "(as a generated id does); map the old number to such an id"
                    )
        except ValidationError as exc:
            fail(exc)
        name = owner = None
        try:
            if raw.get("name") is not None:
                name = check_name("account name", raw["name"])
        except ValidationError as exc:
            fail(exc)
        try:
            if raw.get("owner_id") is not None and raw.get("owner_email") is not None:
                owner_id = _check_new_user("owner_id", raw["owner_id"])
                address = normalize_email(
                    raw["owner_email"],
                    check_deliverability=self.team.check_deliverability,
                    what="owner_email",
                )
                owner = _Person(owner_id, address.email, address.key, PermissionSet.all(), None, {})
        except ValidationError as exc:
            fail(exc)
        members = self._check_people(i, ref, raw.get("members"), problems, perms, now, owner)
        contacts = self._check_contacts(i, ref, raw.get("contacts"), problems)
        if len(problems.found) > before or name is None or owner is None:
            return None
        return _Row(account_id, name, owner, members, contacts)

    @staticmethod
    def _items(
        i: int, ref: str | None, value: object, what: str, problems: _Problems
    ) -> list[object]:
        if value is None:
            return []
        if isinstance(value, _NOT_ROWS) or not isinstance(value, Iterable):
            problems.add(
                i, "account", f"{what} must be a list of mappings, not {type(value).__name__}",
                account=ref,
            )  # fmt: skip
            return []
        return list(value)

    def _check_people(
        self,
        i: int,
        ref: str | None,
        value: object,
        problems: _Problems,
        perms: dict[object, PermissionSet],
        now: datetime,
        owner: _Person | None,
    ) -> list[_Person]:
        people: list[_Person] = []
        # who is in the account already: user id or address key -> who ("the owner", ...)
        taken: dict[str, str] = {}
        if owner is not None:
            taken[f"user:{owner.user_id}"] = taken[f"key:{owner.key}"] = "the owner"
        for j, raw in enumerate(self._items(i, ref, value, "members", problems)):
            try:
                person = self._check_person(raw, perms, now)
            except ValidationError as exc:
                problems.add(i, "member", exc, j, ref)
                continue
            for slot, shown in ((f"user:{person.user_id}", f"user {person.user_id!r}"),
                                (f"key:{person.key}", person.email)):  # fmt: skip
                if slot in taken:
                    problems.add(
                        i, "member", f"{shown} is already in this account as {taken[slot]}; "
                        "each person comes once per account", j, ref,
                    )  # fmt: skip
                    break
            else:
                taken[f"user:{person.user_id}"] = taken[f"key:{person.key}"] = f"member {j}"
                people.append(person)
        return people

    def _check_person(
        self, raw: object, perms: dict[object, PermissionSet], now: datetime
    ) -> _Person:
        if not isinstance(raw, Mapping):
            raise ValidationError(f"a member must be a mapping, not {type(raw).__name__}")
        unknown = sorted(str(k) for k in raw if k not in _MEMBER_KEYS)
        if unknown:
            raise ValidationError(
                f"unknown field(s) {', '.join(unknown)}; use: {', '.join(sorted(_MEMBER_KEYS))}"
            )
        for required in ("user_id", "email", "permissions"):
            if raw.get(required) is None:
                raise ValidationError(f"{required} is missing")
        user_id = _check_new_user("user_id", raw["user_id"])
        address = normalize_email(
            raw["email"], check_deliverability=self.team.check_deliverability, what="email"
        )
        return _Person(
            user_id,
            address.email,
            address.key,
            self._import_permissions(raw["permissions"], perms),
            _check_until("access_until", raw.get("access_until"), now),
            check_metadata(raw.get("metadata")),
        )

    def _import_permissions(
        self, value: object, memo: dict[object, PermissionSet]
    ) -> PermissionSet:
        """A ``PermissionSet``, ``"*"`` for all, or names as ``to_list()`` writes them
        (``"permission@resource"`` for a scoped grant); checked against the catalog."""
        key: object = value
        if isinstance(value, list | tuple) and all(type(n) is str for n in value):
            key = tuple(value)
        try:
            found = memo.get(key)
        except TypeError:  # unhashable: a PermissionSet with a mapping inside, say
            found, key = None, None
        if found is not None:
            return found
        if value == "*":
            ps = PermissionSet.all()
        elif isinstance(value, PermissionSet):
            ps = value
        elif isinstance(value, list | tuple) and all(isinstance(n, str) for n in value):
            ps = PermissionSet.from_list(list(value))
        else:
            raise ValidationError(
                "permissions must be a PermissionSet, '*' for all, or a list of names like "
                f"['billing.view', 'services.manage@srv-1'], not {value!r}"
            )
        ps = self.team.catalog.check(ps)
        if key is not None:
            memo[key] = ps
        return ps

    def _check_contacts(
        self, i: int, ref: str | None, value: object, problems: _Problems
    ) -> list[_Entry]:
        entries: list[_Entry] = []
        seen: set[str] = set()  # the row's contacts' address keys: one contact per address
        for j, raw in enumerate(self._items(i, ref, value, "contacts", problems)):
            try:
                if not isinstance(raw, Mapping):
                    raise ValidationError(f"a contact must be a mapping, not {type(raw).__name__}")
                unknown = sorted(str(k) for k in raw if k not in _CONTACT_KEYS)
                if unknown:
                    raise ValidationError(
                        f"unknown field(s) {', '.join(unknown)}; use: "
                        + ", ".join(sorted(_CONTACT_KEYS))
                    )
                for required in ("name", "email", "categories"):
                    if raw.get(required) is None:
                        raise ValidationError(f"{required} is missing")
                name = check_name("contact name", raw["name"])
                address = normalize_email(
                    raw["email"], check_deliverability=self.team.check_deliverability, what="email"
                )
                categories = _some_categories(self.team.categories.check(raw["categories"]))
                details = {k: raw[k] for k in _CONTACT_FIELDS if raw.get(k) is not None}
                extra = _Contacts._contact_details(details, _CONTACT_FIELDS)
                if address.key in seen:
                    raise ValidationError(
                        f"{address.email} is listed twice among the account's contacts; "
                        "list it once, with all its categories"
                    )
            except ValidationError as exc:
                problems.add(i, "contact", exc, j, ref)
                continue
            seen.add(address.key)
            entries.append(_Entry(name, address.email, address.key, categories, extra))
        return entries

    # -- writing --------------------------------------------------------------------------

    @staticmethod
    def _account_of(row: _Row, now: datetime) -> Account:
        return Account(
            id=row.id if row.id is not None else _new_id("acc"),
            name=row.name,
            owner_id=row.owner.user_id,
            owner_email=row.owner.email,
            created_at=now,
        )

    def _write_rows(
        self, rows: list[_Row], chunk_size: int, progress: Progress | None
    ) -> list[Account]:
        created: list[Account] = []
        total = len(rows)
        for start in range(0, total, chunk_size):
            chunk = [r for r in rows[start : start + chunk_size] if not r.skip]
            try:
                if chunk:
                    with self.team._write() as work:
                        written = self._write_chunk(work, chunk)
                    created.extend(written)
            except TeamAccessError as exc:
                done = f"rows 0 to {start - 1} are done" if start else "no row is stored"
                raise ImportInterrupted(
                    f"the import stopped after {len(created)} account(s) ({done}, the rest "
                    f"not): {type(exc).__name__}: {exc}. "
                    "Fix the cause, then import the remaining rows (rows[done:]), or the "
                    "same rows with existing='skip' if they give account ids",
                    imported=created,
                    done=start,
                ) from exc
            if progress is not None:
                progress("write", min(start + chunk_size, total), total)
        return created

    def _write_chunk(self, work: _Work, chunk: list[_Row]) -> list[Account]:
        now = work.now
        accounts: list[Account] = []
        members: list[tuple[Member, str]] = []
        contacts: list[tuple[Contact, str]] = []
        events: list[AuditEvent] = []
        for row in chunk:
            account = self._account_of(row, now)
            accounts.append(account)
            o = row.owner
            members.append(
                (Member(account.id, o.user_id, o.email, "owner", o.permissions, now), o.key)
            )
            for p in row.members:
                members.append(
                    (
                        Member(
                            account.id, p.user_id, p.email, "member", p.permissions, now,
                            SYSTEM, "active", p.access_until, p.metadata,
                        ),
                        p.key,
                    )
                )  # fmt: skip
            for c in row.contacts:
                contacts.append(
                    (
                        Contact(
                            _new_id("con"), account.id, c.name, c.email, c.categories,
                            created_at=now, **c.details,
                        ),
                        c.key,
                    )
                )  # fmt: skip
            # One event per account keeps the log lean; it names every member, so an
            # export or erasure of a member finds it.
            events.append(
                AuditEvent(
                    _new_id("evt"), account.id, now, SYSTEM, "account.imported", account.id,
                    {
                        "name": account.name,
                        "owner_id": o.user_id,
                        "members": [p.user_id for p in row.members],
                        "contacts": len(row.contacts),
                    },
                )
            )  # fmt: skip
        add_many = getattr(work.uow, "add_many", None)
        if callable(add_many):
            add_many(accounts=accounts, members=members, contacts=contacts, events=events)
        else:  # a store without the optional bulk method: the same rows, one by one
            add_each(work.uow, accounts=accounts, members=members, contacts=contacts, events=events)
        work.events.extend(events)
        return accounts

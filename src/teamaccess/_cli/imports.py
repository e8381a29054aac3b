"""``teamaccess import FILE``: move whole accounts in from a CSV file.

The file has one line per person: the owner, each member and each contact of an account,
tied together by the ``account`` column (the account id to create). Every line is
checked before anything is written; bad lines are reported by their line number, and
nothing is imported. docs/cli.md describes the format.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import click

from .._errors import ImportInterrupted, InvalidImport, ValidationError
from .app import EXIT_INTERRUPTED, Integer, _settings, cli, json_option
from .config import exists, is_postgres
from .metadata import read_metadata
from .output import emit_json
from .words import for_operators

if TYPE_CHECKING:
    from .._service.import_rows import ImportProblem

__all__ = ["import_command", "read_accounts"]

#: Columns every file has (a value may be empty where the role needs none).
REQUIRED: Final = ("account", "role", "email")
#: Columns a file may have.
OPTIONAL: Final = (
    "account_name", "user_id", "permissions", "access_until", "metadata",
    "name", "categories", "company", "phone", "contact_role",
)  # fmt: skip
#: What each role's line may fill in (the columns REQUIRED are always read).
_ALLOWED: Final = {
    "owner": {"account_name", "user_id"},
    "member": {"account_name", "user_id", "permissions", "access_until", "metadata"},
    "contact": {"account_name", "name", "categories", "company", "phone", "contact_role"},
}
#: How many bad lines the error names; the rest are counted.
_SHOWN: Final = 20


@attrs.define
class _Lines:
    """Where an account's parts came from: line numbers in the file."""

    first: int
    owner: int | None = None
    members: list[int] = attrs.field(factory=list)
    contacts: list[int] = attrs.field(factory=list)

    def of(self, problem: ImportProblem) -> int:
        if problem.part == "member" and problem.index is not None:
            return self.members[problem.index]
        if problem.part == "contact" and problem.index is not None:
            return self.contacts[problem.index]
        return self.owner if self.owner is not None else self.first


@attrs.frozen
class LineProblem:
    line: int
    message: str


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


def read_accounts(
    path: Path, delimiter: str = ","
) -> tuple[list[dict[str, Any]], list[_Lines], list[LineProblem], dict[int, int]]:
    """The file's accounts as ``import_accounts()`` rows, where each part came from, the
    problems of the file's own format (each with its line number), and the last line of
    each record that spans several (a quoted value with a line break), by its first."""
    problems: list[LineProblem] = []
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, _Lines] = {}
    ends: dict[int, int] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = next(reader, [])
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in REQUIRED and c not in OPTIONAL]
            if missing or unknown or len(set(header)) != len(header):
                raise ValidationError(
                    f"{path.name}, line 1: the header must name the columns "
                    f"{', '.join(REQUIRED)} and may name {', '.join(OPTIONAL)}"
                    + (f"; missing: {', '.join(missing)}" if missing else "")
                    + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                    + ("; a column is named twice" if len(set(header)) != len(header) else "")
                    + (f" (is the delimiter {delimiter!r} right?)" if len(header) == 1 else "")
                )
            # A record is named by the line it starts on, which is where an editor shows
            # it; reader.line_num is the line it ended on.
            end = reader.line_num
            for values in reader:
                line, end = end + 1, reader.line_num
                if not values:
                    continue  # a blank line, skipped as csv.DictReader skips it
                if end > line:
                    ends[line] = end
                if len(values) > len(header):
                    problems.append(LineProblem(line, "more values than the header has columns"))
                    continue
                # A short record's missing values read as empty, as csv.DictReader has them.
                record = dict.fromkeys(header, "") | dict(zip(header, values, strict=False))
                _read_line(record, line, rows, lines, problems)
    except UnicodeDecodeError as exc:
        # exc.start counts from the start of the chunk the text reader decoded, not of
        # the file: find the byte again, counting from the file's start.
        where = _first_bad_byte(path)
        raise ValidationError(
            f"{path.name} is not UTF-8 text ({exc.reason} at {where}); save it as CSV in UTF-8"
        ) from None
    except csv.Error as exc:
        raise ValidationError(f"{path.name} is not a readable CSV file: {exc}") from None
    except OSError as exc:  # unreadable, or gone, since the command line was checked
        raise ValidationError(
            f"cannot read {path}: {exc.strerror}; check the file and its permissions"
        ) from None
    for ref, at in lines.items():
        if at.owner is None:
            problems.append(LineProblem(at.first, f"account {ref!r} has no line with role owner"))
    return list(rows.values()), list(lines.values()), problems, ends


def _first_bad_byte(path: Path) -> str:
    """Where *path*'s first byte that is not UTF-8 is, as "byte N, line L", counted from
    the start of the file (the first byte is 0, the first line 1)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    read = newlines = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 16):
                # Bytes of a character split across chunks wait in the decoder.
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # exc.object is the pending bytes (never a line break) and the chunk.
                    line = newlines + exc.object[: exc.start].count(b"\n") + 1
                    return f"byte {read - pending + exc.start}, line {line}"
                read += len(chunk)
                newlines += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return f"the end of the file (byte {read}, a character cut off)"
    except OSError:
        pass
    return "a byte it no longer has (the file changed while it was read)"


def _read_line(
    record: dict[str, str],
    line: int,
    rows: dict[str, dict[str, Any]],
    lines: dict[str, _Lines],
    problems: list[LineProblem],
) -> None:
    value = {k: v.strip() for k, v in record.items()}
    ref, role = value["account"], value["role"]

    def fail(message: str) -> None:
        problems.append(LineProblem(line, message))

    if not ref:
        return fail("the account column is empty; name the account id on every line")
    if role not in _ALLOWED:
        return fail(f"role must be owner, member or contact, not {role!r}")
    extra = [k for k, v in value.items() if v and k not in REQUIRED and k not in _ALLOWED[role]]
    if extra:
        return fail(f"a {role} line leaves {', '.join(extra)} empty")
    row = rows.setdefault(ref, {"id": ref})
    at = lines.setdefault(ref, _Lines(line))
    name = value.get("account_name", "")
    if name:
        if row.get("name", name) != name:
            return fail(f"account {ref!r} is named {row['name']!r} on an earlier line")
        row["name"] = name
    if role == "owner":
        if at.owner is not None:
            return fail(f"account {ref!r} has its owner on line {at.owner} already")
        if not name:
            return fail("the owner's line names the account in account_name")
        at.owner = line
        row["owner_id"], row["owner_email"] = value.get("user_id") or None, value["email"]
    elif role == "member":
        member: dict[str, Any] = {
            "user_id": value.get("user_id") or None,
            "email": value["email"],
            "permissions": "*" if value.get("permissions") == "*"
            else _words(value.get("permissions", "")),
        }  # fmt: skip
        if value.get("access_until"):
            try:
                until = datetime.fromisoformat(value["access_until"])
            except ValueError:
                return fail(
                    f"access_until {value['access_until']!r} is not a date and time like "
                    "2027-01-31T00:00:00+00:00"
                )
            if until.utcoffset() is None:
                # A time without its offset could be any zone's: the file says which.
                return fail(
                    f"access_until {value['access_until']!r} has no time zone; write the "
                    "date and time with its offset from UTC, like 2027-01-31T00:00:00+00:00 "
                    "or 2027-01-31T00:00:00+01:00"
                )
            member["access_until"] = until
        if value.get("metadata"):
            try:
                member["metadata"] = read_metadata(value["metadata"])
            except ValidationError as exc:
                return fail(str(exc))
        row.setdefault("members", []).append(member)
        at.members.append(line)
    else:
        contact = {"name": value.get("name", ""), "email": value["email"],
                   "categories": _words(value.get("categories", ""))}  # fmt: skip
        for column, key in (("company", "company"), ("phone", "phone"), ("contact_role", "role")):
            if value.get(column):
                contact[key] = value[column]
        row.setdefault("contacts", []).append(contact)
        at.contacts.append(line)
    return None


def _refuse(
    path: Path, problems: list[LineProblem], ends: dict[int, int], as_json: bool
) -> InvalidImport:
    problems = sorted(problems, key=lambda p: p.line)
    if as_json:
        found = [
            {"line": p.line, "last_line": ends.get(p.line, p.line), "message": p.message}
            for p in problems
        ]
        emit_json({"imported": 0, "problems": found})

    def where(line: int) -> str:
        return f"lines {line}-{ends[line]}" if line in ends else f"line {line}"

    shown = "\n".join(f"  {where(p.line)}: {p.message}" for p in problems[:_SHOWN])
    more = len(problems) - _SHOWN
    return InvalidImport(
        f"{len(problems)} problem(s) in {path.name}; nothing was imported. Correct these "
        f"lines and import the file again:\n{shown}"
        + (f"\n  ... and {more} more" if more > 0 else "")
    )


@contextmanager
def _bars(show: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback drawing one bar per phase on stderr (or nothing)."""
    labels = {"check": "checking ", "write": "importing"}
    current: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if not show:
            return
        if current.get("phase") != phase:
            if current:
                current["bar"].__exit__(None, None, None)
            bar = click.progressbar(length=total, label=labels[phase], file=sys.stderr)
            bar.__enter__()
            current.update(phase=phase, bar=bar, done=0)
        current["bar"].update(done - current["done"])
        current["done"] = done

    try:
        yield progress
    finally:
        if current:
            current["bar"].__exit__(None, None, None)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file only; import nothing.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Leave out accounts whose id exists (to resume an interrupted import).",
)
@click.option(
    "--chunk-size", type=Integer(min=1), default=1000, show_default=True,
    help="Accounts per commit.",
)  # fmt: skip
@click.option("--delimiter", default=",", show_default=True, help="The CSV field separator.")
@json_option
def import_command(
    file: Path, dry_run: bool, skip_existing: bool, chunk_size: int, delimiter: str, as_json: bool
) -> None:
    """Import whole accounts (owners, members, contacts) from the CSV FILE.

    One line per person; the members join without invitation or mail, as the operator
    (teamaccess.SYSTEM) adds them. Every line is checked first: if any is wrong, the
    lines are named and nothing is imported. The columns: the command-line guide,
    https://github.com/teamaccess/teamaccess/tree/main/docs/cli.md.
    """
    if len(delimiter) != 1:
        raise click.UsageError(f"--delimiter must be one character, not {delimiter!r}")
    rows, lines, problems, ends = read_accounts(file, delimiter)
    settings = _settings()
    checking = dry_run or bool(problems)
    sqlite_file = settings.db != ":memory:" and not is_postgres(settings.db)
    if checking and sqlite_file and not exists(Path(settings.db)):
        # No file, so no account exists yet: the same checks run against an empty
        # database in memory, and a check creates no file.
        settings = attrs.evolve(settings, db=":memory:")
    team = settings.team(read_only=checking)
    existing: Literal["error", "skip"] = "skip" if skip_existing else "error"
    # With problems in the file's format, the other accounts are still checked (without
    # writing), so one round of fixes is enough.
    bad = {p.line for p in problems}
    checked = [i for i, at in enumerate(lines) if not bad & _all_lines(at)]
    created = []
    # How far the writing got: each "write" progress call follows a commit.
    stored = 0

    def counted(progress: Callable[[str, int, int], None]) -> Callable[[str, int, int], None]:
        def call(phase: str, done: int, total: int) -> None:
            nonlocal stored
            if phase == "write":
                stored = done
            progress(phase, done, total)

        return call

    try:
        if problems:
            team.import_accounts([rows[i] for i in checked], existing=existing, dry_run=True)
        else:
            with _bars(not as_json and sys.stderr.isatty()) as progress:
                created = team.import_accounts(
                    rows, existing=existing, chunk_size=chunk_size, progress=counted(progress),
                    dry_run=dry_run,
                )  # fmt: skip
    except KeyboardInterrupt:
        # The chunk in hand was rolled back; the ones before it are committed.
        if stored:
            said = (
                f"interrupted after the first {stored} of {len(rows)} account(s) of "
                f"{file.name} were stored; run the same command with --skip-existing to "
                "import the rest"
            )
        else:
            said = f"interrupted; nothing from {file.name} was imported"
        click.echo(f"error: {said}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except ImportInterrupted as exc:
        if exc.imported:
            said = (
                f"the import stopped after {len(exc.imported)} account(s), which are "
                f"stored; the rest is not ({exc.__cause__}). Fix the cause, then run the "
                "same command with --skip-existing to import the rest"
            )
        else:
            said = (
                f"the import stopped before any account was stored ({exc.__cause__}); fix "
                "the cause, then run the same command again"
            )
        raise ImportInterrupted(
            said,
            imported=exc.imported,
            done=exc.done,
        ) from exc
    except InvalidImport as exc:
        problems += [
            LineProblem(
                lines[checked[p.row]].of(p),
                _csv_words(p.message),
            )
            for p in exc.problems
        ]
    if problems:
        raise _refuse(file, problems, ends, as_json)
    members = sum(len(r.get("members", ())) for r in rows)
    contacts = sum(len(r.get("contacts", ())) for r in rows)
    skipped = len(rows) - len(created)
    if as_json:
        emit_json(
            {"dry_run": dry_run, "imported": len(created), "skipped": skipped,
             "accounts": [a.id for a in created]}
        )  # fmt: skip
        return
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{verb} {len(created)} account(s) from {file.name} "
        f"({members} member(s) and {contacts} contact(s) in the file)"
        + (f"; skipped {skipped} that exist" if skipped else "")
    )


def _csv_words(message: str) -> str:
    """A row problem of ``import_accounts()`` in the file's words: its columns (the
    owner's id is in user_id) and the command's options."""
    message = message.replace("pass existing='skip'", "pass --skip-existing")
    message = re.sub(r"^owner_id\b", "user_id", message)
    message = re.sub(r"^owner_email\b", "email", message)
    return for_operators(message, names=False)


def _all_lines(at: _Lines) -> set[int]:
    return {at.first, *([] if at.owner is None else [at.owner]), *at.members, *at.contacts}

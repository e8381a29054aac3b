"""The paired figures: each library call against its floor, measured A B A B in one run."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from teamaccess import Catalog, MemoryStore, TeamAccess

from ._data import SECRET, NullMailer, Population, populate
from ._raw import RawQueries
from ._timing import Result, compare, fmt_ns, loop


@dataclass(frozen=True)
class Config:
    accounts: int  # accounts populated for the can() and recipients() figures
    rounds: int  # A B rounds per figure
    batch: int  # calls per timed batch (cheap calls)
    slow_batch: int  # calls per timed batch (invite + accept)
    import_runs: int  # subprocess runs per side for the import figure
    scale_repeats: int  # measuring processes per scale point, run in rotation
    memory_small: int = 200  # stored invitations, MemoryStore growth figure: the floor
    memory_large: int = 20_000  # ... and the measured side


QUICK = Config(
    accounts=20,
    rounds=5,
    batch=200,
    slow_batch=5,
    import_runs=3,
    scale_repeats=1,
    memory_small=20,
    memory_large=200,
)
FULL = Config(accounts=300, rounds=60, batch=2000, slow_batch=20, import_runs=40, scale_repeats=3)


@dataclass
class Line:
    """One printed line: a figure, its floor, and the goal it is held to."""

    what: str
    value: str
    floor_what: str
    floor_value: str
    measure: str  # "1.23x" or "+12.3 ms"
    goal: str
    passed: bool | None  # None: a figure shown for information, held to no goal

    def row(self) -> str:
        verdict = "INFO" if self.passed is None else "PASS" if self.passed else "MISS"
        return (
            f"| {self.what} | {self.value} | {self.floor_what} | {self.floor_value} | "
            f"{self.measure} | {self.goal} | {verdict} |"
        )


HEADER = (
    "| figure | median | floor | floor median | ratio | goal | |\n|---|---:|---|---:|---:|---|---|"
)


def ratio_line(result: Result, limit: float | None) -> Line:
    return Line(
        result.name,
        fmt_ns(result.median),
        result.floor_name,
        fmt_ns(result.floor_median),
        f"{result.ratio:.2f}x",
        "none" if limit is None else f"≤ {limit:g}x",
        None if limit is None else result.ratio <= limit,
    )


def team_on(store: Any) -> TeamAccess:
    # The limit of 50 invitations an hour protects a real panel; populating does more.
    return TeamAccess(store, NullMailer(), secret_key=SECRET, rate_limit=10**9)


def _batches(args: Sequence[Any], size: int, rng: random.Random) -> Any:
    def batches(_round: int) -> tuple[list[Any], list[Any]]:
        batch = rng.sample(list(args), size) if size < len(args) else list(args)
        return batch, batch  # the same calls on both sides

    return batches


# -- can() on MemoryStore vs a dict and set look-up ------------------------------------


def can_memory(cfg: Config, workdir: Path) -> Line:
    rng = random.Random(1)
    team = team_on(MemoryStore())
    pop = populate(team, cfg.accounts)
    names = Catalog.default().names()
    grants = _floor_grants(pop, names)

    def floor(user_id: str, account_id: str, permission: str) -> bool:
        held = grants.get((account_id, user_id))
        return held is not None and permission in held

    args = pop.can_args(max(cfg.batch * 4, 1000), rng, names)
    for a in args[:200]:  # both answer alike, or the comparison means nothing
        assert team.can(*a) == floor(*a), a
    result = compare(
        "can(), MemoryStore",
        loop(team.can),
        "dict + set look-up",
        loop(floor),
        _batches(args, cfg.batch, rng),
        rounds=cfg.rounds,
    )
    return ratio_line(result, 3)


def _floor_grants(pop: Population, names: tuple[str, ...]) -> dict[tuple[str, str], frozenset[str]]:
    return {
        (account, user): frozenset(names) if perms.is_all else perms.names
        for account, members in pop.members.items()
        for user, perms in members
    }


# -- SQLite: one populated file for can() and recipients() -----------------------------

_populated: dict[Path, tuple[TeamAccess, Population]] = {}


def sqlite_team(cfg: Config, workdir: Path) -> tuple[TeamAccess, Population, Path]:
    from teamaccess import SQLiteStore

    path = workdir / "pairs.db"
    if path not in _populated:
        team = team_on(SQLiteStore(path))
        _populated[path] = (team, populate(team, cfg.accounts))
    team, pop = _populated[path]
    return team, pop, path


def can_sqlite(cfg: Config, workdir: Path) -> Line:
    team, pop, path = sqlite_team(cfg, workdir)
    rng = random.Random(2)
    raw = RawQueries(path)
    args = pop.can_args(max(cfg.batch * 4, 1000), rng, Catalog.default().names())
    for a in args[:200]:
        assert team.can(*a) == raw.can(*a), a
    try:
        result = compare(
            "can(), SQLiteStore",
            loop(team.can),
            "raw sqlite3 point query",
            loop(raw.can),
            _batches(args, cfg.batch, rng),
            rounds=cfg.rounds,
        )
    finally:
        raw.close()
    return ratio_line(result, 1.5)


def recipients_sqlite(cfg: Config, workdir: Path) -> Line:
    team, pop, path = sqlite_team(cfg, workdir)
    rng = random.Random(3)
    raw = RawQueries(path)
    args = [(rng.choice(pop.accounts), "billing") for _ in range(max(cfg.batch * 4, 1000))]
    for a in args[:200]:
        assert team.recipients(*a) == raw.recipients(*a), a
    try:
        result = compare(
            f"recipients(), {len(pop.accounts)} accounts",
            loop(team.recipients),
            "raw SQL, same rows",
            loop(raw.recipients),
            _batches(args, cfg.batch, rng),
            rounds=cfg.rounds,
        )
    finally:
        raw.close()
    return ratio_line(result, 2)


# -- invite + accept vs the sum of its parts ---------------------------------------------

_FLOOR_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS invitations (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
    "email TEXT NOT NULL, permissions TEXT NOT NULL, status TEXT NOT NULL, "
    "token_hash TEXT NOT NULL, mailed INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS members (account_id TEXT NOT NULL, user_id TEXT NOT NULL, "
    "email TEXT NOT NULL, permissions TEXT NOT NULL, PRIMARY KEY (account_id, user_id)) "
    "WITHOUT ROWID",
)


class InviteParts:
    """What an invite + accept cannot do without: validate the address, sign and verify a
    token, and two committed transactions (write the invitation; read it, write the
    member, close the invitation), on a WAL file like SQLiteStore's, with the same
    ``PRAGMA synchronous`` as the store it is compared with."""

    label = "its parts (validate, sign+verify, 2 commits)"
    goal: float | None = 2
    figure_note = ""

    def __init__(self, path: Path, synchronous: str) -> None:
        import sqlite3

        from itsdangerous import URLSafeSerializer

        self.serializer = URLSafeSerializer(SECRET.encode(), salt="benchmark")
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        for sql in _FLOOR_SCHEMA:
            self.conn.execute(sql)

    def __call__(self, account_id: str, email: str, user_id: str) -> None:
        inv_id, address, token = self.invite(account_id, email)
        self.after_invite(inv_id, address, token)
        self.accept(token, user_id)

    def invite(self, account_id: str, email: str) -> tuple[str, str, str]:
        """Validate, sign, store: the first commit. Returns id, address and token."""
        import hashlib
        import secrets

        import email_validator

        address = email_validator.validate_email(email, check_deliverability=False)
        inv_id = "inv_" + secrets.token_hex(10)
        token = self.serializer.dumps([inv_id, secrets.token_urlsafe(16)])
        digest = hashlib.sha256(token.encode()).hexdigest()
        execute = self.conn.execute
        execute("BEGIN IMMEDIATE")
        execute(
            "INSERT INTO invitations (id, account_id, email, permissions, status, token_hash) "
            "VALUES (?, ?, ?, ?, 'pending', ?)",
            (inv_id, account_id, address.normalized, '["billing.view"]', digest),
        )
        execute("COMMIT")
        return inv_id, address.normalized, token

    def after_invite(self, inv_id: str, address: str, token: str) -> None:
        """Nothing: the parts the goal names stop at the stored invitation."""

    def accept(self, token: str, user_id: str) -> None:
        """Verify the token, then the second commit: the member in, the invitation closed."""
        execute = self.conn.execute
        opened = self.serializer.loads(token)[0]
        execute("BEGIN IMMEDIATE")
        row = execute(
            "SELECT account_id, email, permissions FROM invitations WHERE id = ?", (opened,)
        ).fetchone()
        execute("INSERT INTO members VALUES (?, ?, ?, ?)", (row[0], user_id, row[1], row[2]))
        execute("UPDATE invitations SET status = 'accepted' WHERE id = ?", (opened,))
        execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class InvitePartsWithMail(InviteParts):
    """Its parts, plus what issue 6 asks a decision on: the invitation mail built (text
    and HTML, with teamaccess's ``build_message``, the cheapest way known here, from the
    shipped English template rendered once) and a third commit recording that it was
    sent, not fsynced, as the library makes it. Informational: it has no goal."""

    label = "its parts + the mail built + a 3rd commit, not fsynced"
    goal = None
    figure_note = " (informational)"

    def __init__(self, path: Path, synchronous: str) -> None:
        from datetime import UTC, datetime

        from teamaccess import InvitationContext
        from teamaccess._mail.templates import DefaultTemplates

        super().__init__(path, synchronous)
        self.synchronous = synchronous
        rendered = DefaultTemplates().invitation(
            InvitationContext(
                language="en",
                brand="",
                account_name="Firma 1",
                inviter_email="b1@f.example",
                invitee_email="new1@invitee1.example",
                accept_url="https://panel.example.com/invitations/accept?token=TOKEN",
                expires_at=datetime(2026, 11, 30, tzinfo=UTC),
                all_permissions=False,
                permission_labels=["View invoices"],
            )
        )
        self.rendered = rendered

    def after_invite(self, inv_id: str, address: str, token: str) -> None:
        """Build the mail, then record in a third, unsynced commit that it went out."""
        import secrets
        from datetime import UTC, datetime

        from teamaccess._mail.mailers import build_message

        r = self.rendered
        build_message(
            sender="Customer Center <noreply@panel.example.com>",
            to=address,
            subject=r.subject,
            text=r.text.replace("TOKEN", token),
            html=None if r.html is None else r.html.replace("TOKEN", token),
            message_id=f"<{secrets.token_hex(12)}@panel.example.com>",
            language="en",
            date=datetime.now(UTC),
        )
        execute = self.conn.execute
        execute("PRAGMA synchronous = NORMAL")
        execute("BEGIN IMMEDIATE")
        execute("UPDATE invitations SET mailed = 1 WHERE id = ?", (inv_id,))
        execute("COMMIT")
        execute(f"PRAGMA synchronous = {self.synchronous}")


def invite_accept(
    cfg: Config,
    workdir: Path,
    synchronous: Literal["FULL", "NORMAL"],
    floor_type: type[InviteParts] = InviteParts,
) -> Line:
    from teamaccess import PermissionSet, SQLiteStore

    tag = f"{synchronous}-{floor_type.__name__}"
    team = team_on(SQLiteStore(workdir / f"invite-{tag}.db", synchronous=synchronous))
    accounts = [
        team.create_account(name=f"Firma {i}", owner_id=f"boss{i}", owner_email=f"b{i}@f.example")
        for i in range(50)
    ]
    perms = PermissionSet.of("billing.view")

    def library(account_id: str, email: str, user_id: str) -> None:
        owner = "boss" + account_id_owner[account_id]
        inv = team.invite(account_id, actor_id=owner, email=email, permissions=perms)
        assert inv.token is not None
        team.accept_invitation(inv.token, user_id=user_id, email=email)

    account_id_owner = {a.id: a.owner_id[4:] for a in accounts}
    parts = floor_type(workdir / f"invite-floor-{tag}.db", synchronous)
    counter = iter(range(10**9))

    def batches(_round: int) -> tuple[list[Any], list[Any]]:
        def fresh() -> list[tuple[str, str, str]]:
            out = []
            for _ in range(cfg.slow_batch):
                n = next(counter)
                acc = accounts[n % len(accounts)].id
                out.append((acc, f"new{n}@invitee{n % 97}.example", f"u{n}"))
            return out

        return fresh(), fresh()

    try:
        result = compare(
            f"invite + accept{floor_type.figure_note}, SQLiteStore, synchronous={synchronous}",
            loop(library),
            floor_type.label,
            loop(parts),
            batches,
            rounds=cfg.rounds,
        )
    finally:
        parts.close()
    return ratio_line(result, floor_type.goal)


# -- import teamaccess vs python -c pass -------------------------------------------


def import_time(cfg: Config, workdir: Path) -> Line:
    """``import teamaccess`` against ``import attrs``, its one dependency that every import
    needs: what is left is the library's own share (its modules, the stdlib modules it
    pulls in, email-validator or itsdangerous if it imported them eagerly)."""
    # Measured with bytecode cached, as on any installed system: both sides read their
    # .pyc files from one private cache, even where PYTHONDONTWRITEBYTECODE is set.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pyc")

    def run(code: str) -> float:
        t0 = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return (time.perf_counter_ns() - t0) / 1e6

    bare: list[float] = []
    full: list[float] = []
    for _ in range(2):  # compile the .pyc files, outside the figure
        run("import teamaccess")
    for i in range(cfg.import_runs):
        pair = [(bare, "import attrs"), (full, "import teamaccess")]
        for samples, code in pair if i % 2 else pair[::-1]:
            samples.append(run(code))
    added = statistics.median(full) - statistics.median(bare)
    return Line(
        "import teamaccess (subprocess)",
        f"{statistics.median(full):.1f} ms",
        "python -c 'import attrs'",
        f"{statistics.median(bare):.1f} ms",
        # Signed: on a loaded machine the median of the bare import can come out the
        # slower one.
        f"{added:+.1f} ms",
        f"≤ +{IMPORT_OVER_ATTRS_MS:g} ms",
        added <= IMPORT_OVER_ATTRS_MS,
    )


IMPORT_OVER_ATTRS_MS = 15


def invite_accept_full(cfg: Config, workdir: Path) -> Line:
    """The default durability: every commit fsynced, on both sides."""
    return invite_accept(cfg, workdir, "FULL")


def invite_accept_with_mail(cfg: Config, workdir: Path) -> Line:
    """For the decision issue 6 asks for: the floor with the mail and its record in it."""
    return invite_accept(cfg, workdir, "FULL", InvitePartsWithMail)


def invite_accept_normal(cfg: Config, workdir: Path) -> Line:
    """``SQLiteStore(synchronous="NORMAL")``, and the floor's connection set alike."""
    return invite_accept(cfg, workdir, "NORMAL")


def invite_accept_memory(cfg: Config, workdir: Path) -> Line:
    """MemoryStore stays flat as a test suite fills it: many stored invitations against few."""
    from . import memstore

    return ratio_line(memstore.run(cfg, workdir, team_on), memstore.GROWTH)


def run_all(cfg: Config, workdir: Path) -> list[Line]:
    lines = []
    benches = (
        can_memory,
        can_sqlite,
        invite_accept_full,
        invite_accept_with_mail,
        invite_accept_normal,
        recipients_sqlite,
        import_time,
        invite_accept_memory,
    )
    for bench in benches:
        line = bench(cfg, workdir)
        print(line.row(), flush=True)
        lines.append(line)
    return lines

"""The benchmark command runs at CI size and prints every figure; its times are not judged."""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "TEAMACCESS_TEST_POSTGRES"

FIGURES = [
    "can(), MemoryStore",
    "can(), SQLiteStore",
    "invite + accept, SQLiteStore, synchronous=FULL",
    "invite + accept (informational), SQLiteStore, synchronous=NORMAL",
    "WAL bytes per invite + accept, synchronous=FULL",
    "SQL statements per invite + accept",
    "invite + accept against the indexed floor (informational), synchronous=FULL",
    "invite + accept, indexed floor against the floor (informational), synchronous=FULL",
    "invite + accept against the indexed floor (informational), synchronous=NORMAL",
    "invite + accept, indexed floor against the floor (informational), synchronous=NORMAL",
    "WAL bytes per invite + accept against the indexed floor (informational)",
    "recipients(),",
    "import teamaccess (subprocess)",
    "import teamaccess after attrs, in the process (informational)",
    "invite + accept, MemoryStore,",
    "import_accounts(),",
    "for comparison: invite + accept in team.batch(),",
    "queued delivery, 50 messages, SmtpMailer batch",
    "queued delivery (informational), 10 messages, a connection each",
    "notify(), 50 recipients, queued, SQLiteStore",
]
#: Printed when a PostgreSQL server is configured (the benchmarks use the tests' server).
POSTGRES_FIGURES = [
    "can(), PostgresStore",
    "can() (informational), PostgresStore",
    "invite + accept (informational), PostgresStore",
]
GROWTH = [
    "can() library/raw growth",
    "recipients() library/raw growth",
    "active-set (10 accounts) can() library/raw growth",
    "active-set (10 accounts) recipients() library/raw growth",
    "peak RSS growth",
]
INFORMATION = [
    "can() growth",
    "can() raw growth",
    "recipients() growth",
    "recipients() raw growth",
    "active-set (10 accounts) can() growth",
    "active-set (10 accounts) recipients() growth",
]


@pytest.fixture(scope="module")
def output() -> str:
    """The output of one real run, in a subprocess, shared by the checks below."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
class TestQuickBenchmark:
    """`python -m benchmarks --quick` completes and reports each figure with a verdict."""

    @pytest.mark.parametrize("figure", FIGURES)
    def test_prints_each_paired_figure_with_floor_ratio_and_verdict(
        self, output: str, figure: str
    ) -> None:
        lines = [line for line in output.splitlines() if line.startswith(f"| {figure}")]
        assert len(lines) == 1, output
        cells = [c.strip() for c in lines[0].strip("|").split("|")]
        assert len(cells) == 7, lines[0]
        # A figure with a goal passes or misses it; one shown for information has none.
        if "(informational)" in figure or figure.startswith(("SQL statements", "for comparison")):
            assert (cells[-2], cells[-1]) == ("none", "INFO"), lines[0]
        else:
            assert cells[-1] in ("PASS", "MISS")
        assert re.fullmatch(r"[\d.]+ (ns|us|ms|KiB|stmts)", cells[1]), cells[1]
        assert re.fullmatch(r"[\d.]+ (ns|us|ms|KiB|stmts)", cells[3]), cells[3]
        assert re.fullmatch(r"[+-]?[\d.]+(x| ms)", cells[4]), cells[4]

    def test_prints_a_row_per_process_count_with_and_without_a_writer(self, output: str) -> None:
        ratio = r"[\d.]+x \([\d.]+-[\d.]+\)"  # the median of the rounds, and their IQR
        rows = re.findall(
            rf"^\| ([124]) \| (no|yes) \| [\d,]+ \| [\d,]+ \| {ratio} \| [\d.]+ (?:ns|us|ms) "
            rf"\| [\d.]+ (?:ns|us|ms) \| {ratio} \| (-|[\d,]+ / [\d,]+) \| (\d+) "
            r"\| (?:PASS|MISS) \|$",
            output,
            re.M,
        )
        # The writer's rounds are counted only where there is one; no error of any kind.
        assert rows == [
            (n, w, "-" if w == "no" else rows[i][2], "0")
            for i, (w, n) in enumerate((w, n) for w in ("no", "yes") for n in ("1", "2", "4"))
        ], output
        assert all(re.fullmatch(r"[\d,]+ / [\d,]+", r[2]) for r in rows[3:]), rows

    def test_prints_the_mail_costs_beside_the_figures(self, output: str) -> None:
        assert re.search(
            r"^one connection per message costs the library [\d.]+x and smtplib [\d.]+x the "
            r"time per message of one batch \(information\)$",
            output,
            re.M,
        ), output
        t = r"[\d.]+ (?:ns|us|ms)"
        for what in ("batch", "a connection each"):
            assert re.search(
                rf"^CPU per message, {what}: library {t}, smtplib {t} \([\d.]+x\); "
                rf"server {t} and {t} \(information\)$",
                output,
                re.M,
            ), output
        # At this size the command's start outweighs its 50 messages: the difference may
        # come out below zero on a busy machine.
        assert re.search(
            rf"^CPU per message, teamaccess deliver of 50 messages \(a process; its start of "
            rf"{t} taken off\): -?{t}, deliver_pending\(\) {t} \(-?[\d.]+x\) "
            r"\(information\)$",
            output,
            re.M,
        ), output

    def test_prints_a_scale_row_per_size(self, output: str) -> None:
        rows = re.findall(r"^\| (100|300) \| ([\d,]+) \| ([\d.]+) MiB \|.* MiB \|$", output, re.M)
        assert [(r[0], r[1]) for r in rows] == [("100", "1,000"), ("300", "3,000")], output

    def test_prints_an_active_set_row_per_size(self, output: str) -> None:
        rows = re.findall(
            r"^\| (100|300) \| [\d.]+ (?:ns|us) \| .* \| [\d.]+ (?:ns|us) \|$", output, re.M
        )
        assert rows == ["100", "300"], output

    @pytest.mark.parametrize("what", GROWTH)
    def test_prints_each_growth_with_verdict(self, output: str, what: str) -> None:
        assert re.search(
            rf"^{re.escape(what)}, 100 -> 300 accounts: [\d.]+x \(goal <= [\d.]+x\) (PASS|MISS)$",
            output,
            re.M,
        ), output

    @pytest.mark.parametrize("what", INFORMATION)
    def test_prints_each_time_growth_for_information(self, output: str, what: str) -> None:
        assert re.search(
            rf"^{re.escape(what)}, 100 -> 300 accounts: [\d.]+x \(information\)$", output, re.M
        ), output


class TestInterleavedTiming:
    """compare() takes one sample per round and side, alternating which side goes first."""

    def test_alternates_order_and_counts_rounds(self) -> None:
        sys.path.insert(0, str(ROOT))
        try:
            from benchmarks._timing import compare
        finally:
            sys.path.remove(str(ROOT))
        calls: list[str] = []

        def side(batch: object) -> None:
            calls.append("A")

        def floor(batch: object) -> None:
            calls.append("B")

        result = compare("a", side, "b", floor, lambda i: ([1], [1]), rounds=4, warmup=1)
        assert calls == ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
        assert len(result.samples) == len(result.floor_samples) == 4
        assert result.ratio > 0


@pytest.mark.slow
class TestQuickBenchmarkOnPostgres:
    """With a server the PostgreSQL figures are printed; without one, one line says so."""

    def test_figures_or_the_line_that_skips_them(self, output: str) -> None:
        if not any(os.environ.get(v) for v in ("TEAMACCESS_BENCH_POSTGRES", POSTGRES_ENV)):
            assert "PostgreSQL figures skipped: no server" in output, output
            return
        for figure in POSTGRES_FIGURES:
            [line] = [line for line in output.splitlines() if line.startswith(f"| {figure}")]
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 7, line
            assert re.fullmatch(r"[\d.]+ (us|ms)", cells[1]), line
            assert re.fullmatch(r"[\d.]+ (ns|us|ms)", cells[3]), line
            assert re.fullmatch(r"[\d.]+x", cells[4]), line
            assert cells[-1] in (("INFO",) if "(informational)" in figure else ("PASS", "MISS"))
        for n in ("1 process", "2 processes", "4 processes"):
            [line] = [
                line
                for line in output.splitlines()
                if line.startswith(f"| can() throughput, PostgresStore, {n} |")
            ]
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert re.fullmatch(r"[\d.]+k/s", cells[1]), line
            assert re.fullmatch(r"[\d.]+k/s", cells[3]), line
            assert cells[-1] in ("PASS", "MISS"), line


@pytest.mark.slow
class TestManyProcessesErrors:
    """An error of any kind in a reader or the writer is counted and fails the figure."""

    @pytest.fixture
    def procs(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        # On sys.path for the spawned processes too, which import the benchmark by name.
        monkeypatch.syspath_prepend(str(ROOT))
        from benchmarks import procs

        return procs

    def test_a_reader_that_cannot_open_the_file(self, procs: Any, tmp_path: Path) -> None:
        path = tmp_path / "foreign.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        conn.close()
        row = procs.measure(path, 2, False, [("u", "a", "billing.view")], [], rounds=1,
                            seconds=0.05)  # fmt: skip
        assert any("StorageError" in e and "not a teamaccess database" in e
                   for e in row["errors"]), row["errors"]  # fmt: skip
        assert row["rounds"] == 0
        assert not procs.passed(row)

    def test_a_writer_whose_calls_fail(self, procs: Any, tmp_path: Path) -> None:
        from benchmarks._data import SECRET, NullMailer, populate

        from teamaccess import Catalog, SQLiteStore, TeamAccess

        path = tmp_path / "team.db"
        store = SQLiteStore(path)
        pop = populate(TeamAccess(store, NullMailer(), secret_key=SECRET), 2, members=2)
        store.close()
        args = pop.can_args(50, random.Random(1), Catalog.default().names())
        ghost = [("no-such-account", "owner0", ["user0-1"])]
        row = procs.measure(path, 1, True, args, ghost, rounds=2, seconds=0.05)
        assert row["rounds"] == 2  # the readers ran ...
        assert row["errors"]
        assert all(e.startswith("writer: AccountNotFound") for e in row["errors"]), row["errors"]
        assert not procs.passed(row)  # ... and the figure fails all the same


def test_walpages_names_the_b_tree_of_every_page_written() -> None:
    """`python -m benchmarks.walpages` counts the pages of all three sides' three commits."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.walpages", "--warm", "5", "--rounds", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for side in (
        "library: ",
        "floor (tables with only primary keys): ",
        "floor with the library's indexes (",
    ):
        [line] = [line for line in out.splitlines() if line.startswith(side)]
        assert re.search(r"[\d.]+ pages \([\d.]+ KiB\), \d+ statements per round", line), out
    # the library's rule indexes appear by name
    for tree in ("invitations_address", "members_email_key", "outbox_due", "events_sends"):
        assert f"{tree} " in out, out
    assert out.count("  invite: ") == out.count("  accept: ") == 3, out
    # each B-tree beside: the library's, the floor's and the indexed floor's pages a round
    beside = out.split("pages a round, B-tree by B-tree: library | floor | indexed floor\n")[1]
    rows = {}
    for line in beside.splitlines():
        tree, *cells = line.strip().rsplit(None, 3)
        rows[tree] = [float(c) for c in cells]
    assert rows, out
    assert all(len(c) == 3 for c in rows.values()), beside
    # an index the floor has not and the indexed floor has
    assert rows["members_user"][1] == 0 < rows["members_user"][2], beside
    assert rows["all"][2] > rows["all"][1], beside


class TestIndexedFloor:
    """The floor with the library's indexes carries exactly what the library's schema has."""

    TABLES = ("events", "invitations", "members", "outbox")

    @pytest.fixture
    def indexed(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        monkeypatch.syspath_prepend(str(ROOT))
        from benchmarks import indexed

        return indexed

    def _schema(self, conn: sqlite3.Connection) -> tuple[Any, ...]:
        indexes = conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' "
            "AND sql IS NOT NULL AND tbl_name IN (?, ?, ?, ?) ORDER BY name",
            self.TABLES,
        ).fetchall()
        references = [
            [fk[2:] for fk in conn.execute(f"PRAGMA foreign_key_list({t})")] for t in self.TABLES
        ]
        pragmas = [
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("foreign_keys", "secure_delete")
        ]
        return indexes, references, pragmas

    def test_same_indexes_references_and_settings_as_the_library(
        self, indexed: Any, tmp_path: Path
    ) -> None:
        from teamaccess import SQLiteStore

        store = SQLiteStore(tmp_path / "library.db")
        floor = indexed.IndexedFloor(tmp_path / "floor.db", "FULL", ["acc_1"])
        try:
            library = self._schema(store.db.conn)
            assert len(library[0]) >= 10, library  # what there is to copy
            assert any(library[1]), library
            assert self._schema(floor.conn) == library
        finally:
            floor.close()
            store.close()

    def test_the_rules_hold_on_its_rows(self, indexed: Any, tmp_path: Path) -> None:
        floor = indexed.IndexedFloor(tmp_path / "floor.db", "NORMAL", ["acc_1"])
        try:
            floor("acc_1", "ann@example.com", "u1")
            # one member per address in an account: the library's unique index
            with pytest.raises(sqlite3.IntegrityError, match=r"members\.account_id, members"):
                floor("acc_1", "Ann@example.com", "u2")
            floor.conn.execute("ROLLBACK")
            # every row's account exists: the library's references, enforced
            with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                floor("acc_2", "bob@example.com", "u3")
        finally:
            floor.close()


def test_indexed_splits_the_gap_between_library_and_floor() -> None:
    """`python -m benchmarks.indexed` times the three sides in turn and splits the gap."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.indexed", "--warm", "5", "--rounds", "3",
         "--batch", "2", "--synchronous", "NORMAL"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    t = r"-?[\d.]+ (?:ns|us|ms)"
    for side in ("library", "indexed floor", "floor"):
        assert re.search(rf"^\| {side} \| {t} \| {t} \| {t} \| {t} \| \d+ \|$", out, re.M), out
    # the three parts, each with its share of the gap (a share may come out below zero)
    parts = re.findall(rf"^  the library[^:]+: ({t}) \((-?\d+)%\)$", out, re.M)
    assert len(parts) == 3, out
    assert re.search(r"^the gap, library - floor: .* CPU a call \([\d.]+x\); of it:$", out, re.M)


def _table_rows(flag: str) -> tuple[list[str], str]:
    """The table rows `python -m benchmarks --quick FLAG` prints, and its whole output."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", flag],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("|")], done.stdout


def test_only_import_prints_just_the_import_figure() -> None:
    """`python -m benchmarks --quick --only-import` prints the goal's line, with its
    verdict and the spread of its rounds, then the import alone for information."""
    rows, out = _table_rows("--only-import")
    assert len(rows) == 4, out  # the header, its rule, the figure and the information
    assert rows[2].rstrip(" |").endswith(("PASS", "MISS")), out
    # the spread of the rounds' differences, whose median is the figure
    assert re.match(r"\| import teamaccess \(subprocess\), the rounds' differences "
                    r"[+-]\d+\.\d to [+-]\d+\.\d ms \(IQR\) \|", rows[2]), out  # fmt: skip
    assert rows[3].startswith("| import teamaccess after attrs, in the process"), out
    assert rows[3].rstrip(" |").endswith("INFO"), out


def test_only_invite_prints_just_the_invite_accept_figures() -> None:
    """`python -m benchmarks --quick --only-invite` prints the invite + accept lines."""
    rows, out = _table_rows("--only-invite")
    assert len(rows) == 13, out  # the header, its rule and eleven figures
    assert all("invite + accept" in row for row in rows[2:]), out


def test_only_memory_prints_just_the_memory_store_figure() -> None:
    """`python -m benchmarks --quick --only-memory` prints the MemoryStore growth line."""
    rows, out = _table_rows("--only-memory")
    assert len(rows) == 3, out  # the header, its rule and the figure
    assert "MemoryStore" in rows[2], out
    assert rows[2].rstrip(" |").endswith(("PASS", "MISS")), out


def test_erasure_benchmark_erases_the_person_from_each_fresh_copy() -> None:
    """`python -m benchmarks.erasure` erases the same person from a fresh copy each run."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.erasure", "--accounts", "60", "--runs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    runs = [line for line in done.stdout.splitlines() if line.startswith("run ")]
    assert len(runs) == 2, done.stdout
    # three memberships, two contacts, two invitations and their two mails, every time
    assert all("'removed': [3, 2, 2, 2], 'texts_redacted': 4" in line for line in runs), runs
    assert re.search(
        r": whole [\d.]+-[\d.]+ s; unit [\d.]+-[\d.]+ s; changed_accounts x", done.stdout
    )

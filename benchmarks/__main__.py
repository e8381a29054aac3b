"""``python -m benchmarks [--quick]``: the paired figures, then the scale curve.

Every figure is a median over many rounds, each round timing a batch of calls of the
library and of its floor, interleaved (A B B A ...), and printed with the ratio and the
goal it is held to. ``--quick`` is the CI smoke size: it checks that everything runs, and
its times mean little.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from . import pairs, postgres, scale
from ._timing import fmt_ns

FULL_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (100, 300)
# library/raw at the largest size over library/raw at the smallest: the library adds
# nothing that grows with the file
OVERHEAD_GROWTH = 1.1
MEMORY_GROWTH = 1.2  # "does not grow with the file": within noise of the smallest size


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI smoke size: checks it runs")
    parser.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        help="accounts per scale point, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument("--skip-pairs", action="store_true", help="only the scale curve")
    parser.add_argument("--skip-scale", action="store_true", help="only the paired figures")
    parser.add_argument("--only-postgres", action="store_true", help="only the PostgreSQL figures")
    parser.add_argument("--only-bulk", action="store_true", help="only the bulk import figures")
    parser.add_argument("--skip-mail", action="store_true", help="no SMTP throughput figures")
    parser.add_argument("--only-mail", action="store_true", help="only the SMTP throughput figures")
    parser.add_argument("--only-procs", action="store_true", help="only the many-processes figure")
    parser.add_argument(
        "--only-import", action="store_true", help="only the `import teamaccess` figure"
    )
    parser.add_argument(
        "--only-invite", action="store_true", help="only the invite + accept figures"
    )
    parser.add_argument(
        "--only-memory", action="store_true", help="only the MemoryStore growth figure"
    )
    args = parser.parse_args()
    cfg = pairs.QUICK if args.quick else pairs.FULL
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    print(
        f"teamaccess benchmarks ({'quick' if args.quick else 'full'}), "
        f"Python {platform.python_version()} on {platform.machine()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="teamaccess-bench-") as tmp:
        workdir = Path(tmp)
        if args.only_postgres:
            postgres.run_all(cfg, workdir)
            return
        if args.only_bulk:
            print(pairs.HEADER, flush=True)
            for bench in (pairs.bulk_import, pairs.bulk_batch):
                print(bench(cfg, workdir).row(), flush=True)
            return
        if args.only_mail:
            mail_throughput(args.quick, workdir)
            return
        if args.only_import:
            print(pairs.HEADER, flush=True)
            for line in pairs.import_time(cfg, workdir):
                print(line.row(), flush=True)
            return
        if args.only_invite:
            print(pairs.HEADER, flush=True)
            for figure in pairs.INVITE_ACCEPT:
                print(figure(cfg, workdir).row(), flush=True)
            return
        if args.only_memory:
            print(pairs.HEADER, flush=True)
            print(pairs.invite_accept_memory(cfg, workdir).row(), flush=True)
            return
        failures = 0
        if args.only_procs:
            failures = many_processes(cfg, workdir)
        elif not args.skip_pairs:
            print(f"\n## Against the floor ({cfg.rounds} rounds per figure, medians)\n")
            print(pairs.HEADER, flush=True)
            pairs.run_all(cfg, workdir)
            postgres.run_all(cfg, workdir)
            failures = many_processes(cfg, workdir)
            if not args.skip_mail:
                mail_throughput(args.quick, workdir)
        if not args.skip_scale and not args.only_procs:
            scale_curve(sizes, cfg, workdir)
    if failures:
        # An error of any kind fails the run (and the CI smoke that runs --quick).
        raise SystemExit(f"many processes: {failures} error(s); see the table above")


def many_processes(cfg: pairs.Config, workdir: Path) -> int:
    """Print the many-processes table; return the number of errors (the goal is none)."""
    from teamaccess import Catalog

    from . import procs

    _team, pop, path = pairs.sqlite_team(cfg, workdir)
    print(
        f"\n## Many processes on one SQLite file (can(); per configuration "
        f"{cfg.procs_rounds} rounds of a library and a raw window of {cfg.procs_seconds:g} s, "
        "interleaved; medians over rounds)\n"
    )
    print(f"Machine: {procs.machine()} (before)", flush=True)
    print(
        "\n| processes | writer | can()/s | raw/s | raw/library (IQR) | p99 | raw p99 | "
        "p99 ratio (IQR) | writer rounds/s | errors | |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        flush=True,
    )
    rows = []
    for writer in (False, True):
        for n in (1, 2, 4):
            [r] = procs.run(
                path,
                pop,
                Catalog.default().names(),
                rounds=cfg.procs_rounds,
                seconds=cfg.procs_seconds,
                counts=(n,),
                writers=(writer,),
            )
            rows.append(r)
            t, p = r["tput_ratio"], r["p99_ratio"]
            writes = f"{r['writes']:,.0f} / {r['raw_writes']:,.0f}" if writer else "-"
            print(
                f"| {n} | {'yes' if writer else 'no'} | {r['tput']:,.0f} | "
                f"{r['raw_tput']:,.0f} | {t[1]:.2f}x ({t[0]:.2f}-{t[2]:.2f}) | "
                f"{fmt_ns(r['p99'])} | {fmt_ns(r['raw_p99'])} | "
                f"{p[1]:.2f}x ({p[0]:.2f}-{p[2]:.2f}) | {writes} | {len(r['errors'])} | "
                f"{'PASS' if procs.passed(r) else 'MISS'} |",
                flush=True,
            )
            for error in r["errors"][:3]:
                print(f"    error: {error.strip().splitlines()[-1]}", flush=True)
    errors = sum(len(r["errors"]) for r in rows)
    print(
        f"\nMachine: {procs.machine()} (after). Goal: throughput and p99 within "
        f"{procs.RATIO:g}x of the raw query (the median of the rounds' ratios), no error of "
        f"any kind; errors in all: {errors}. The writer runs set_permissions + invite + "
        f"accept at {procs.WRITER_RATE:g} rounds a second; its rounds per second of the "
        "library's windows / of the raw ones are shown. With more busy "
        "processes than cores (4 readers and the writer here on few cores) the scheduler "
        "decides much of these figures, the p99 most.",
        flush=True,
    )
    return errors


def mail_throughput(quick: bool, workdir: Path) -> None:
    from . import mail

    sizes = mail.QUICK if quick else mail.FULL
    print(
        "\n## Mail throughput (aiosmtpd on 127.0.0.1 in its own process, STARTTLS and "
        f"login required; {sizes.rounds} interleaved rounds per figure after a warm-up, "
        "medians per message)\n",
        flush=True,
    )
    try:
        import aiosmtpd  # noqa: F401
        import trustme  # noqa: F401
    except ImportError:
        print(
            "Mail figures skipped: they need aiosmtpd and trustme (pip install -e '.[bench]')",
            flush=True,
        )
        return
    print(pairs.HEADER, flush=True)
    for line in mail.run(workdir, quick):
        print(line, flush=True)


def scale_curve(sizes: tuple[int, ...], cfg: pairs.Config, workdir: Path) -> None:
    print(
        f"\n## Scale curve (SQLiteStore, {scale.MEMBERS} members and {scale.CONTACTS} "
        "contacts per account; each size built in one process, measured in a fresh one)\n"
    )
    print(
        "| accounts | members | file | build | can() | raw | recipients() | raw | peak RSS |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        flush=True,
    )
    points = scale.curve(
        workdir, sizes, repeats=cfg.scale_repeats, rounds=cfg.rounds, batch=cfg.batch
    )
    for p in points:
        print(
            f"| {p['accounts']:,} | {p['members']:,} | {p['file_bytes'] / 2**20:.1f} MiB | "
            f"{p['build_s']:.0f} s | {fmt_ns(p['can_ns'])} | {fmt_ns(p['can_raw_ns'])} | "
            f"{fmt_ns(p['recipients_ns'])} | {fmt_ns(p['recipients_raw_ns'])} | "
            f"{p['peak_rss_kib'] / 1024:.1f} MiB |",
            flush=True,
        )
    active = points[0]["active"]
    print(
        f"\nThe same files, questions about a fixed active set of {active:,} accounts "
        "(drawn once from the whole file; the same number at every size):\n"
    )
    print(
        "| accounts | can() | raw | recipients() | raw |\n|---:|---:|---:|---:|---:|",
        flush=True,
    )
    for p in points:
        print(
            f"| {p['accounts']:,} | {fmt_ns(p['active_can_ns'])} | "
            f"{fmt_ns(p['active_can_raw_ns'])} | {fmt_ns(p['active_recipients_ns'])} | "
            f"{fmt_ns(p['active_recipients_raw_ns'])} |",
            flush=True,
        )
    first, last = points[0], points[-1]
    span = f"{first['accounts']:,} -> {last['accounts']:,} accounts"
    print()
    # The goals: what the library adds on top of the raw query does not grow with the file
    # (the raw query's own growth is SQLite's page cache, shared by both), and neither does
    # the serving process's memory.
    for what, key, raw_key in (
        ("can() library/raw", "can_ns", "can_raw_ns"),
        ("recipients() library/raw", "recipients_ns", "recipients_raw_ns"),
        (f"active-set ({active:,} accounts) can() library/raw", "active_can_ns",
         "active_can_raw_ns"),
        (f"active-set ({active:,} accounts) recipients() library/raw",
         "active_recipients_ns", "active_recipients_raw_ns"),
    ):  # fmt: skip
        growth = (last[key] / last[raw_key]) / (first[key] / first[raw_key])
        verdict = "PASS" if growth <= OVERHEAD_GROWTH else "MISS"
        print(
            f"{what} growth, {span}: {growth:.2f}x (goal <= {OVERHEAD_GROWTH:g}x) {verdict}",
            flush=True,
        )
    growth = last["peak_rss_kib"] / first["peak_rss_kib"]
    verdict = "PASS" if growth <= MEMORY_GROWTH else "MISS"
    print(
        f"peak RSS growth, {span}: {growth:.2f}x (goal <= {MEMORY_GROWTH:g}x) {verdict}",
        flush=True,
    )
    # For information: the times themselves, which grow with the raw query's B-tree walk.
    for what, key in (
        ("can() growth", "can_ns"),
        ("can() raw growth", "can_raw_ns"),
        ("recipients() growth", "recipients_ns"),
        ("recipients() raw growth", "recipients_raw_ns"),
        (f"active-set ({active:,} accounts) can() growth", "active_can_ns"),
        (f"active-set ({active:,} accounts) recipients() growth", "active_recipients_ns"),
    ):
        print(f"{what}, {span}: {last[key] / first[key]:.2f}x (information)", flush=True)


if __name__ == "__main__":
    main()

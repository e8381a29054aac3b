"""``python -m benchmarks [--quick]``: the paired figures, then the scale curve.

Every figure is a median over many rounds, each round timing a batch of calls of the
library and of its floor, interleaved (A B B A ...), and printed with the ratio and the
goal of issue 6. ``--quick`` is the CI smoke size: it checks that everything runs, and
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
SCALE_GROWTH = 1.3  # issue 6: from the smallest to the largest size, at most this growth
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
        if not args.skip_pairs:
            print(f"\n## Against the floor ({cfg.rounds} rounds per figure, medians)\n")
            print(pairs.HEADER, flush=True)
            pairs.run_all(cfg, workdir)
            postgres.run_all(cfg, workdir)
        if not args.skip_scale:
            scale_curve(sizes, cfg, workdir)


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
    for what, key, limit in (
        ("can() growth", "can_ns", SCALE_GROWTH),
        ("recipients() growth", "recipients_ns", SCALE_GROWTH),
        ("peak RSS growth", "peak_rss_kib", MEMORY_GROWTH),
        (f"active-set ({active:,} accounts) can() growth", "active_can_ns", SCALE_GROWTH),
        (
            f"active-set ({active:,} accounts) recipients() growth",
            "active_recipients_ns",
            SCALE_GROWTH,
        ),
    ):
        growth = last[key] / first[key]
        verdict = "PASS" if growth <= limit else "MISS"
        print(f"{what}, {span}: {growth:.2f}x (goal <= {limit:g}x) {verdict}", flush=True)


if __name__ == "__main__":
    main()

"""``python -m benchmarks [--quick]``: the paired figures, then the scale curve."""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from . import pairs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI smoke size: checks it runs")
    args = parser.parse_args()
    cfg = pairs.QUICK if args.quick else pairs.FULL
    print(
        f"teamaccess benchmarks ({'quick' if args.quick else 'full'}), "
        f"Python {platform.python_version()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="teamaccess-bench-") as tmp:
        print(pairs.HEADER)
        pairs.run_all(cfg, Path(tmp))


if __name__ == "__main__":
    main()

"""One throughput worker of benchmarks/postgres.py, in a process of its own.

``python -m benchmarks.pgworker MODE CONNINFO SCHEMA ARGS START SECONDS``: say ``ready``,
wait for the file START, then ask ``can()`` (MODE ``library``) or the raw point query
(MODE ``raw``) for the questions in the JSON file ARGS, round and round, for SECONDS;
print ``{"calls": n, "seconds": s}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable


def main(mode: str, url: str, schema: str, args_file: str, start: str, seconds: str) -> None:
    with open(args_file, encoding="utf-8") as fh:
        args = [tuple(a) for a in json.load(fh)]
    ask: Callable[..., object]
    if mode == "library":
        from teamaccess import PostgresStore, TeamAccess

        from ._data import SECRET, NullMailer

        team = TeamAccess(PostgresStore(url, schema=schema, max_size=1), NullMailer(),
                          secret_key=SECRET)  # fmt: skip
        ask = team.can
    else:
        from .postgres import RawCan

        ask = RawCan(url, schema)
    ask(*args[0])  # connected and warm before the start
    print("ready", flush=True)
    while not os.path.exists(start):
        time.sleep(0.001)  # a start line for the race, not a clock
    calls = 0
    t0 = time.perf_counter()
    deadline = t0 + float(seconds)
    while True:
        for a in args[:100]:
            ask(*a)
        calls += 100
        args = args[100:] + args[:100]
        if time.perf_counter() >= deadline:
            break
    print(json.dumps({"calls": calls, "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

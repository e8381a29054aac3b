"""Running a piece of a test in a forked child, as a pre-forking server runs its workers."""

from __future__ import annotations

import json
import os
import select
import warnings
from collections.abc import Callable
from typing import Any


def in_a_fork(work: Callable[[], object]) -> dict[str, Any]:
    """Run *work* in a child forked from this process (as gunicorn --preload forks its
    workers after the app was built) and return what it reported, or that it hung."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with the pool's threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's coverage is not collected)
        try:
            answer: dict[str, Any] = {"result": repr(work())}
        except BaseException as exc:
            answer = {"error": type(exc).__name__, "message": str(exc)}
        os.write(write_end, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        if not ready:
            os.kill(pid, 9)
            return {"hung": True}
        return json.loads(os.read(read_end, 65536))  # type: ignore[no-any-return]
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)

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


def refused_in_a_fork(uow: Any, *steps: Callable[[], object]) -> dict[str, Any]:
    """Run *steps* on *uow*, a unit of work open at the fork, in a forked child, then end
    the unit there as the child's ``with`` block would; what ``in_a_fork`` reports: for
    each step, whether it was refused with the fork's ``StorageError``."""
    from teamaccess import StorageError

    def in_the_child() -> object:
        refused = []
        for step in steps:
            try:
                step()
            except StorageError as exc:
                refused.append("a fork of it" in str(exc))
        uow.rollback(quiet=False)  # the with block's end in the child: leaves it be
        return refused

    return in_a_fork(in_the_child)

"""The SQLite fork handler imports nothing in the child: the import of ``ctypes`` it needs
for a connection inherited busy is done in the parent, when a store opens on a file.

An import in a forked child hangs for ever when another thread of the parent was inside
that same import at the fork: the child inherits the module's import lock held by a
thread it does not have. A fresh interpreter runs the scenario, so that nothing else has
imported ``ctypes`` yet."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import importlib.machinery, os, select, sys, threading, warnings
    from teamaccess import Account, SQLiteStore
    from datetime import datetime, timezone

    # Today sqlite-utils imports ctypes as the store opens (python-dateutil's tz module
    # does, for Windows time zones); the store must not count on it. Without that module
    # (an ImportError dateutil expects), nothing but the store may import ctypes.
    sys.modules["dateutil.tz.win"] = None
    assert "ctypes" not in sys.modules, "the scenario needs ctypes not yet imported"
    store = SQLiteStore(sys.argv[1])

    # Another thread of the parent is inside "import ctypes" at the fork, holding the
    # module's import lock: a loader that waits stands for a slow file system. (It waits
    # in exec_module: a finder runs under the global import lock, which fork takes.)
    inside, release = threading.Event(), threading.Event()

    class SlowLoader:
        def __init__(self, loader):
            self.loader = loader

        def create_module(self, spec):
            return self.loader.create_module(spec)

        def exec_module(self, module):
            inside.set()
            release.wait(60)
            self.loader.exec_module(module)

    class Slow:
        def find_spec(self, name, path=None, target=None):
            if name != "ctypes" or threading.current_thread() is threading.main_thread():
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = SlowLoader(spec.loader)
            return spec

    sys.meta_path.insert(0, Slow())

    def importer():
        import ctypes  # noqa: F401

    thread = threading.Thread(target=importer, daemon=True)
    thread.start()
    inside.wait(0.5)  # set only if ctypes was not imported yet (no fix)
    with store.begin() as uow:  # a unit open at the fork: its connection is kept busy
        uow.add_account(Account(id="a", name="A", owner_id="o", owner_email="o@example.org",
                                created_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with a thread
            pid = os.fork()
        if pid == 0:
            os.write(write_end, b"child ran")
            os._exit(0)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], 10)
        if not ready:
            os.kill(pid, 9)
            print("child hung")
        else:
            print(os.read(read_end, 100).decode())
        os.waitpid(pid, 0)
        uow.commit()
    release.set()
    thread.join()
    store.close()
    """
)


def test_a_child_forked_during_another_threads_import_of_ctypes_does_not_hang(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "team.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child ran"


def test_import_teamaccess_does_not_import_ctypes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, teamaccess; print('ctypes' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"

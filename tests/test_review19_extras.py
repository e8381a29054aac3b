"""PostgreSQL without its extra, as a newcomer meets it: ``pip install psycopg`` alone (no
pool), and the command given a postgresql:// --db. Each is told which extra to install,
the command on one error line, not with a traceback."""

from __future__ import annotations

import subprocess
import sys

#: run in a fresh interpreter where the modules {blocked} cannot be imported, as without
#: the extra; then {statement}
WITHOUT = """
import sys
from importlib.abc import MetaPathFinder

class Missing(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
{statement}
"""

EXTRA = "pip install 'teamaccess[postgres]'"


def without(blocked: set[str], statement: str) -> subprocess.CompletedProcess[str]:
    code = WITHOUT.format(blocked=sorted(blocked), statement=statement)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_psycopg_without_its_pool_names_the_extra() -> None:
    # Before: "No module named 'psycopg_pool'" from PostgresStore(), with psycopg itself
    # installed (pip install psycopg, as its own docs say), which names no extra.
    proc = without(
        {"psycopg_pool"},
        "from teamaccess import PostgresStore\n"
        "try:\n"
        "    PostgresStore('postgresql://nobody@localhost/x')\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc, '|', exc.name)\n",
    )
    assert proc.stdout.strip() == (
        f"PostgresStore needs the postgres extra (psycopg 3 and psycopg-pool): {EXTRA} "
        "| psycopg_pool"
    ), proc.stderr


def test_the_command_on_postgresql_without_the_extra(tmp_path: object) -> None:
    # Before: a traceback ending in ModuleNotFoundError, exit status 1.
    proc = without(
        {"psycopg", "psycopg_pool"},
        "sys.argv = ['teamaccess', '--db', 'postgresql://nobody@localhost/x', "
        "'accounts', 'list', 'max']\n"
        "from teamaccess._cli import main\n"
        "main()\n",
    )
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ")
    assert EXTRA in proc.stderr
    assert proc.returncode == 3  # a ConfigError: the setup, not the data

"""The public namespace: teamaccess.__all__ agrees with the private modules (httpx style)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import teamaccess


def _ruff_order(name: str) -> tuple[int, str]:
    # RUF022's isort-style order: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def _private_modules() -> list[types.ModuleType]:
    found = []
    for info in pkgutil.walk_packages(teamaccess.__path__, "teamaccess."):
        # Packages such as teamaccess._backends only group modules; __main__ runs the CLI.
        if info.ispkg or info.name.endswith("__main__"):
            continue
        if any(part.startswith("_") for part in info.name.split(".")):
            found.append(importlib.import_module(info.name))
    return found


class TestExportedMembers:
    """Everything public is re-exported, once, from the module that defines it."""

    def test_all_is_sorted_and_unique(self) -> None:
        assert teamaccess.__all__ == sorted(set(teamaccess.__all__), key=_ruff_order)

    def test_every_exported_name_resolves(self) -> None:
        for name in teamaccess.__all__:
            assert getattr(teamaccess, name) is not None, name

    def test_public_names_are_exported(self) -> None:
        public = {
            name
            for name, value in vars(teamaccess).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name not in {"annotations", "TYPE_CHECKING", "Any"}
        }
        assert public - set(teamaccess.__all__) == set()

    def test_private_modules_agree(self) -> None:
        modules = _private_modules()
        assert modules, "no private modules found"
        owners: dict[str, list[str]] = {}
        for module in modules:
            assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
            for name in module.__all__:
                assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"
                owners.setdefault(name, []).append(module.__name__)
        for name in teamaccess.__all__:
            value = getattr(teamaccess, name)
            defined_in = getattr(value, "__module__", None)
            if isinstance(value, type | types.FunctionType) and defined_in != "teamaccess":
                module = importlib.import_module(defined_in)  # type: ignore[arg-type]
                assert name in module.__all__, f"{name} is missing from {defined_in}.__all__"
            else:
                assert name in owners, f"no private module lists {name} in its __all__"

    def test_exported_classes_live_in_private_modules(self) -> None:
        for name in teamaccess.__all__:
            value = getattr(teamaccess, name)
            if isinstance(value, type) and not issubclass(value, teamaccess.TeamAccessError):
                module = value.__module__
                assert module.startswith("teamaccess._"), f"{name} is defined in {module}"

    def test_errors_report_their_public_home(self) -> None:
        """A traceback named teamaccess._errors.PermissionDenied; the name to catch is
        teamaccess.PermissionDenied (STYLE: public classes report their public home)."""
        import pickle
        import traceback

        values = [getattr(teamaccess, name) for name in teamaccess.__all__]
        errors = [v for v in values if isinstance(v, type) and issubclass(v, BaseException)]
        assert len(errors) >= 25
        for error in errors:
            assert error.__module__ == "teamaccess", error
            assert getattr(teamaccess, error.__qualname__) is error
        try:
            raise teamaccess.PermissionDenied("max may not invite")
        except teamaccess.PermissionDenied as exc:
            text = "".join(traceback.format_exception(exc))
            again = pickle.loads(pickle.dumps(exc))  # noqa: S301 (its own bytes)
        assert text.endswith("teamaccess.PermissionDenied: max may not invite\n"), text
        assert type(again) is teamaccess.PermissionDenied
        assert str(again) == "max may not invite"

    def test_lazy_names_are_in_dir(self) -> None:
        assert "SQLiteStore" in dir(teamaccess)
        assert "SmtpMailer" in dir(teamaccess)

    def test_import_loads_only_the_core(self) -> None:
        # What a fresh `import teamaccess` loads beyond attrs: the library's own core and
        # datetime; sqlite-utils, smtplib, email, itsdangerous, email-validator and the
        # mail modules wait for their first use.
        code = (
            "import sys, attrs; before = set(sys.modules); import teamaccess; "
            "print(*sorted(set(sys.modules) - before))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        foreign = {m.split(".")[0] for m in out} - {"teamaccess", "datetime", "_datetime", "math"}
        assert foreign == set(), out
        assert not [m for m in out if m.startswith("teamaccess._mail.")], out
        # ...and they load when a name from them is used
        code = (
            "import sys, teamaccess; teamaccess.MemoryMailer; "
            "print('teamaccess._mail.mailers' in sys.modules)"
        )
        assert subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split() == ["True"]


#: What only the rare calls (bulk import, export, erasure, purge) use.
RARE_MODULES = (
    "teamaccess._privacy",
    "teamaccess._service.import_rows",
    "teamaccess._service.privacy_work",
)
#: Modules `import teamaccess` must not load: the stores, the pages' error texts and
#: the rare calls' modules. They load on first use.
LAZY_MODULES = (
    "teamaccess._backends.memory",
    "teamaccess._backends.sqlite",
    "teamaccess._messages",
    *RARE_MODULES,
)


def _fresh(code: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


class TestLazyParts:
    """What waits for its first use stays out of `import teamaccess`, and loads when used."""

    def test_import_leaves_the_lazy_modules_out(self) -> None:
        code = f"import sys, teamaccess; print(*[m for m in {LAZY_MODULES!r} if m in sys.modules])"
        assert _fresh(code) == []

    def test_a_team_at_work_leaves_the_rare_calls_out(self) -> None:
        # The savings are real only if the common path does not load them after all.
        code = (
            "import sys, teamaccess as t; "
            "team = t.TeamAccess(t.MemoryStore(), t.MemoryMailer(), secret_key='k'); "
            "a = team.create_account(name='A', owner_id='o', owner_email='o@example.com'); "
            "inv = team.invite(a.id, actor_id='o', email='m@example.com', "
            "permissions=t.PermissionSet.of('billing.view')); "
            "team.accept_invitation(inv.token, user_id='m', email='m@example.com'); "
            "assert team.can('m', a.id, 'billing.view'); "
            f"print(*[m for m in {RARE_MODULES!r} if m in sys.modules])"
        )
        assert _fresh(code) == []

    def test_each_lazy_name_resolves_from_a_fresh_import(self) -> None:
        names = sorted(teamaccess._LAZY)
        assert set(names) <= set(teamaccess.__all__)
        assert set(names) <= set(dir(teamaccess))
        # One interpreter per name, so no name is served by another's import.
        for name in names:
            module = teamaccess._LAZY[name][0]
            code = (
                f"from teamaccess import {name}; import teamaccess; "
                f"print({name}.__module__, {name} is teamaccess.{name})"
            )
            # The store and mailer modules need their optional packages; skip those absent.
            if name == "PostgresStore" and importlib.util.find_spec("psycopg") is None:
                continue
            assert _fresh(code) == [f"teamaccess{module}", "True"], name

    def test_opening_a_current_sqlite_file_leaves_sqlite_utils_out(self, tmp_path: Path) -> None:
        # sqlite-utils (with click, pluggy and more) costs several times import teamaccess;
        # only a migration and SQLiteStore.db need it.
        path = tmp_path / "team.db"
        made = "import sys, teamaccess as t; t.SQLiteStore(sys.argv[1]).close(); print('ok')"
        assert subprocess.run(
            [sys.executable, "-c", made, str(path)], capture_output=True, text=True, check=True
        ).stdout.split() == ["ok"]
        code = (
            "import sys, teamaccess as t; store = t.SQLiteStore(sys.argv[1]); "
            "team = t.TeamAccess(store, t.MemoryMailer(), secret_key='k'); "
            "a = team.create_account(name='A', owner_id='o', owner_email='o@example.com'); "
            "inv = team.invite(a.id, actor_id='o', email='m@example.com', "
            "permissions=t.PermissionSet.of('billing.view')); "
            "team.accept_invitation(inv.token, user_id='m', email='m@example.com'); "
            "print('sqlite_utils' in sys.modules, "
            "*sorted({m.split('.')[0] for m in sys.modules} & {'click', 'pluggy'})); "
            "print(store.db['members'].count, 'sqlite_utils' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert out == ["False", "2", "True"]

    def test_permission_checks_leave_the_token_signer_out(self) -> None:
        # A process that only checks permissions never signs: itsdangerous waits for the
        # first token, and a bad key is still refused when the TeamAccess is made.
        code = (
            "import sys, teamaccess as t; "
            "team = t.TeamAccess(t.MemoryStore(), t.MemoryMailer(), secret_key='k'); "
            "a = team.create_account(name='A', owner_id='o', owner_email='o@example.com'); "
            "print(team.can('o', a.id, 'billing.view'), 'itsdangerous' in sys.modules); "
            "inv = team.invite(a.id, actor_id='o', email='m@example.com', "
            "permissions=t.PermissionSet.of('billing.view')); "
            "team.accept_invitation(inv.token, user_id='m', email='m@example.com'); "
            "print('itsdangerous' in sys.modules)"
        )
        assert _fresh(code) == ["True", "False", "True"]
        with pytest.raises(teamaccess.ValidationError, match="secret_key"):
            teamaccess.TeamAccess(
                teamaccess.MemoryStore(), teamaccess.MemoryMailer(), secret_key=""
            )

    def test_the_rare_calls_load_their_modules(self) -> None:
        code = (
            "import sys, teamaccess as t; "
            "team = t.TeamAccess(t.MemoryStore(), t.MemoryMailer(), secret_key='k'); "
            "before = 'teamaccess._privacy' in sys.modules; "
            "r = team.purge(); "
            "rows = [{'name': 'A', 'owner_id': 'o', 'owner_email': 'o@example.com'}]; "
            "done = team.import_accounts(rows, dry_run=True); "
            "print(before, type(r).__name__, type(team.retention).__name__, len(done))"
        )
        assert _fresh(code) == ["False", "PurgeReport", "Retention", "1"]

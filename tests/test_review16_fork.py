"""A ``PostgresStore`` forked while a unit of work is open (say, inside ``team.batch()``
an import hands rows to a multiprocessing pool): the child holds the parent's unit's
connection too. It must be refused as any other use in a fork is, not read and write
over the parent's socket (two processes on one socket hang or take each other's
answers), and the parent's unit goes on."""

from __future__ import annotations

import pytest

from teamaccess import TeamAccess

from .fork_helpers import refused_in_a_fork
from .test_postgres import conninfo, in_a_fork, schema, team

__all__ = ["conninfo", "schema", "team"]  # fixtures, imported for pytest

pytestmark = pytest.mark.postgres


def test_a_fork_inside_a_unit_is_refused(team: TeamAccess) -> None:
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    with team.store.read() as uow:
        assert uow.get_account(account.id) is not None  # the unit's connection is in use
        got = in_a_fork(lambda: team.can("owner", account.id, "billing.view"))
        assert got.get("error") == "StorageError", got
        assert "a fork of it" in got["message"]
        got = in_a_fork(lambda: team.get_account(account.id))
        assert got.get("error") == "StorageError", got
        assert uow.get_account(account.id) is not None


def test_a_fork_inside_a_batch_is_refused(team: TeamAccess) -> None:
    account = team.create_account(name="A", owner_id="owner", owner_email="o@example.org")
    with team.batch():
        team.can("owner", account.id, "billing.view")  # the batch's connection is in use
        for call in (
            lambda: team.can("owner", account.id, "billing.view"),
            lambda: team.members(account.id),
            lambda: team.rename_account(account.id, actor_id="owner", name="C"),
        ):
            got = in_a_fork(call)
            assert got.get("error") == "StorageError", got
            assert "fork" in got["message"]
        team.rename_account(account.id, actor_id="owner", name="B")
    assert team.get_account(account.id).name == "B"


def test_a_unit_open_at_the_fork_is_the_parents_alone(team: TeamAccess) -> None:
    """The child's statements, commit and rollback ran over the parent's socket: its end
    of the with block rolled back the parent's transaction."""
    from teamaccess import Account

    from .conftest import START

    def account(name: str) -> Account:
        return Account(id=name, name=name, owner_id="o", owner_email="o@example.org",
                       created_at=START)  # fmt: skip

    with team.store.begin() as uow:
        uow.add_account(account("parent"))
        assert uow.get_account("parent") is not None  # sent: the unit's socket is in use

        got = refused_in_a_fork(
            uow,
            lambda: uow.add_account(account("child")),
            lambda: uow.get_account("parent"),
            uow.commit,
        )
        assert got == {"result": "[True, True, True]"}
        uow.commit()
    with team.store.read() as uow:
        assert uow.get_account("parent") is not None
        assert uow.get_account("child") is None


def test_a_child_leaving_the_unit_open_at_the_fork_leaves_the_parents_session(
    team: TeamAccess,
) -> None:
    """The child's way out of the with block (sys.exit() in it, or an exception) ran the
    unit's end, which gave the connection back to a pool the child no longer has: it
    closed it, which told the server over the parent's socket to end the session, and
    the parent's commit failed with its transaction lost."""
    import os
    import warnings

    from teamaccess import Account

    from .conftest import START

    unit = team.store.begin()
    with unit as uow:
        uow.add_account(Account(id="parent", name="P", owner_id="o",
                                owner_email="o@example.org", created_at=START))  # fmt: skip
        assert uow.get_account("parent") is not None  # sent: the unit's socket is in use
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with the pool's threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover (the child's coverage is not collected)
            try:  # sys.exit() in the with block: its end runs, then the child exits
                unit.__exit__(SystemExit, SystemExit(0), None)
            finally:
                os._exit(0)  # not through pytest's own exit
        os.waitpid(pid, 0)
        uow.commit()
    with team.store.read() as uow:
        assert uow.get_account("parent") is not None

"""What the invitation page's clean URL costs when it holds no token: anyone logged in can
send any ``?invitation=``, so a malformed one is refused before any read, and a
well-formed one reads only the invitations the user accepted, through an index, however
many accounts and invitations they have. Flask's test client on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from flask.testing import FlaskClient  # noqa: E402
from tests.conftest import BACKENDS, make_store  # noqa: E402

from teamaccess import (  # noqa: E402
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    TeamAccess,
)
from teamaccess.testing import FrozenClock  # noqa: E402
from teamaccess.web import User  # noqa: E402
from teamaccess.web.flask import blueprint  # noqa: E402

ACCEPT = "/team/invitations/accept"
P = PermissionSet.of


def addr(user_id: str) -> str:
    return f"{user_id}@example.org"


class Setup:
    """Three accounts; bea accepted an invitation to each, and each has others' too."""

    def __init__(self, store: object) -> None:
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        self.team = TeamAccess(store, MemoryMailer(), secret_key="cost", clock=self.clock)  # type: ignore[arg-type]
        self.accepted: list[str] = []
        for n in range(3):
            acc = self.team.create_account(
                name=f"Account {n}", owner_id=f"boss{n}", owner_email=addr(f"boss{n}")
            )
            for who in ("bea", "anna", "carl"):
                inv = self.team.invite(
                    acc.id, actor_id=f"boss{n}", email=addr(who), permissions=P("billing.view")
                )
                assert inv.token is not None
                self.team.accept_invitation(inv.token, user_id=who, email=addr(who))
                if who == "bea":
                    self.accepted.append(inv.id)
            for k in range(4):  # open ones, which no Back can match
                self.team.invite(acc.id, actor_id=f"boss{n}", email=addr(f"p{k}"),
                                 permissions=P("billing.view"))  # fmt: skip
        app = flask.Flask(__name__)
        app.secret_key = "test only"

        def current_user() -> User | None:
            uid = flask.request.headers.get("X-User")
            return User(uid, addr(uid)) if uid else None

        app.register_blueprint(
            blueprint(self.team, current_user=current_user, login_url="/login?next={next}"),
            url_prefix="/team",
        )
        self.app = app

    def client(self, user: str) -> FlaskClient:
        c = self.app.test_client()
        c.environ_base["HTTP_X_USER"] = user
        return c


def slot_of(invitation_id: str) -> str:
    """The slot the page's redirect names, read off the page rather than computed."""
    from teamaccess.web._pages.accept import _slot

    return _slot(invitation_id)


@pytest.fixture
def sqlite_setup(tmp_path: Path) -> Iterator[Setup]:
    store = SQLiteStore(tmp_path / "t.db")
    try:
        yield Setup(store)
    finally:
        store.close()


def statements(setup: Setup, client: FlaskClient, slot: str) -> tuple[int, list[str]]:
    """The page's status for *slot*, and the SQL it ran on the SQLite file."""
    store = setup.team.store
    assert isinstance(store, SQLiteStore)
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        status = client.get(ACCEPT, query_string={"invitation": slot}).status_code
    finally:
        store.db.conn.set_trace_callback(None)
    return status, seen


class TestMalformedSlot:
    """A slot _slot() cannot have written is refused before any read."""

    @pytest.mark.parametrize(
        "slot",
        ["x" * 5000, "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcde",
         "0123456789abcdeg", "%00", "' OR 1=1 --", "0123456789abcdef\n"],
    )  # fmt: skip
    def test_no_statement_runs(self, sqlite_setup: Setup, slot: str) -> None:
        status, seen = statements(sqlite_setup, sqlite_setup.client("bea"), slot)
        assert status == 403
        assert seen == []


class TestWellFormedSlot:
    """A well-formed slot reads the user's own acceptances, by the index, and no more."""

    def test_junk_reads_only_by_accepted_by(self, sqlite_setup: Setup) -> None:
        status, seen = statements(sqlite_setup, sqlite_setup.client("bea"), "0" * 16)
        assert status == 403
        reads = [s for s in seen if "FROM invitations" in s]
        assert reads, seen
        # the trace shows the statement with its values filled in
        assert [s.split(" WHERE ", 1)[1] for s in reads] == [
            "accepted_by = 'bea' ORDER BY created_at, id"
        ], reads
        assert not any("FROM members" in s or "FROM accounts" in s for s in seen), seen
        store = sqlite_setup.team.store
        assert isinstance(store, SQLiteStore)
        conn = sqlite3.connect(store.path)
        try:
            [read] = reads
            plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {read}"))
        finally:
            conn.close()
        assert "USING INDEX invitations_accepted_by" in plan, plan

    def test_back_to_an_accepted_link_leads_in(self, sqlite_setup: Setup) -> None:
        client = sqlite_setup.client("bea")
        for n, inv_id in enumerate(sqlite_setup.accepted):
            response = client.get(ACCEPT, query_string={"invitation": slot_of(inv_id)})
            assert response.status_code == 303
            account = sqlite_setup.team.get_invitation(inv_id).account_id
            assert response.headers["Location"] == f"/team/accounts/{account}/users"
            assert sqlite_setup.team.get_account(account).name == f"Account {n}"

    def test_not_for_someone_else(self, sqlite_setup: Setup) -> None:
        """anna is a user of the same accounts: bea's slot does not lead her in."""
        slot = slot_of(sqlite_setup.accepted[0])
        assert (
            sqlite_setup.client("anna").get(ACCEPT, query_string={"invitation": slot}).status_code
            == 403
        )

    def test_not_after_leaving(self, sqlite_setup: Setup) -> None:
        inv = sqlite_setup.team.get_invitation(sqlite_setup.accepted[1])
        sqlite_setup.team.remove_member(inv.account_id, "bea", actor_id="bea")
        client = sqlite_setup.client("bea")
        assert client.get(ACCEPT, query_string={"invitation": slot_of(inv.id)}).status_code == 403
        other = slot_of(sqlite_setup.accepted[2])
        assert client.get(ACCEPT, query_string={"invitation": other}).status_code == 303


class TestInvitationsAcceptedBy:
    """``TeamAccess.invitations_accepted_by()`` on every backend, with or without the
    store's own indexed read."""

    # Named "backend", so conftest marks the PostgreSQL case and leaves it out, with the
    # one summary line, on a machine without a server.
    @pytest.fixture
    def setup(self, backend: str, tmp_path: Path) -> Iterator[Setup]:
        if backend == "postgres":
            from tests.conftest import drop_postgres_schema, postgres_conninfo

            postgres_conninfo()
        store = make_store(backend, tmp_path)
        try:
            yield Setup(store)
        finally:
            store.close()
            if backend == "postgres":
                drop_postgres_schema(tmp_path)

    @pytest.fixture(params=BACKENDS)
    def backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    def test_the_users_own_acceptances(self, setup: Setup) -> None:
        found = setup.team.invitations_accepted_by("bea")
        assert [i.id for i in found] == setup.accepted
        assert {i.status for i in found} == {"accepted"}
        assert {i.token_hash for i in found} == {None}
        assert setup.team.invitations_accepted_by("boss0") == []  # sent, never accepted
        assert setup.team.invitations_accepted_by("nobody") == []

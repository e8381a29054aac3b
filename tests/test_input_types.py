"""A value of the wrong type is a ValidationError that names the parameter, and changes nothing.

Before, a list as an id escaped as ``TypeError: unhashable type`` from MemoryStore (or a
``StorageError`` from SQLite), and a string as ``rate_limit`` as a bare ``TypeError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from tests.conftest import SECRET, START, add_member

from teamaccess import (
    SYSTEM,
    InvalidImport,
    InvalidInvitation,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    Retention,
    SQLiteStore,
    Store,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FrozenClock

# The wrong values every string parameter is tried with; a bool stands in for "an int
# where a string belongs" and, for the int parameters, for "a bool where an int belongs".
NOT_STRINGS: list[object] = [["x"], {"x": 1}, None, 5, b"x", True]
NOT_LIMITS: list[object] = [["x"], {"x": 1}, None, "5", b"5", True, 1.5]
NOT_PERMISSIONS: list[object] = [{"billing.view": False}, None, 5, b"x", True, [5], [["x"]]]
NOT_CATEGORIES: list[object] = [{"billing": False}, None, 5, b"x", True, [5], [["billing"]]]
NOT_CALLABLES: list[object] = [["x"], {"x": 1}, None, 5, b"x", True]
# None is valid (no end); a naive datetime and one in the past are wrong too.
NOT_INSTANTS: list[object] = [
    "2027-01-01",
    5,
    True,
    datetime(2027, 1, 1),
    START - timedelta(days=1),
    START,
]


@attrs.frozen
class Ctx:
    """The ids of the state each test starts from."""

    account_id: str
    invitation_id: str
    token: str
    contact_id: str


@attrs.frozen
class Call:
    """One public method: its positional parameters and a call that succeeds."""

    method: str
    positional: tuple[str, ...]
    good: Callable[[Ctx], dict[str, Any]]

    def run(self, team: TeamAccess, ctx: Ctx, **override: object) -> object:
        params = {**self.good(ctx), **override}
        args = [params.pop(name) for name in self.positional]
        return getattr(team, self.method)(*args, **params)


def _added_listener(event: object) -> None:
    """The listener the ``ctx`` fixture adds, for remove_listener() to take back."""


CALLS = [
    Call("create_account", (), lambda c: {
        "name": "Neu GmbH", "owner_id": "owner", "owner_email": "neu@example.com"}),
    Call("get_account", ("account_id",), lambda c: {"account_id": c.account_id}),
    Call("accounts_for", ("user_id",), lambda c: {"user_id": "owner"}),
    Call("invitations_accepted_by", ("user_id",), lambda c: {"user_id": "owner"}),
    Call("rename_account", ("account_id",), lambda c: {
        "account_id": c.account_id, "actor_id": "owner", "name": "Neu GmbH"}),
    Call("transfer_ownership", ("account_id",), lambda c: {
        "account_id": c.account_id, "actor_id": "owner", "to_user_id": "u2"}),
    Call("members", ("account_id",), lambda c: {"account_id": c.account_id}),
    Call("get_member", ("account_id", "user_id"), lambda c: {
        "account_id": c.account_id, "user_id": "u2"}),
    Call("set_permissions", ("account_id", "user_id", "permissions"), lambda c: {
        "account_id": c.account_id, "user_id": "u2",
        "permissions": PermissionSet.of("support.pin"), "actor_id": "owner"}),
    Call("remove_member", ("account_id", "user_id"), lambda c: {
        "account_id": c.account_id, "user_id": "u2", "actor_id": "owner"}),
    Call("can", ("user_id", "account_id", "permission"), lambda c: {
        "user_id": "u2", "account_id": c.account_id, "permission": "billing.view",
        "resource": "srv-1"}),
    Call("require", ("user_id", "account_id", "permission"), lambda c: {
        "user_id": "u2", "account_id": c.account_id, "permission": "billing.view",
        "resource": "srv-1"}),
    Call("resources_for", ("user_id", "account_id", "permission"), lambda c: {
        "user_id": "u2", "account_id": c.account_id, "permission": "services.view"}),
    Call("forget_resource", ("account_id", "resource_id"), lambda c: {
        "account_id": c.account_id, "resource_id": "srv-1", "actor_id": "owner"}),
    Call("suspend_member", ("account_id", "user_id"), lambda c: {
        "account_id": c.account_id, "user_id": "u2", "actor_id": "owner"}),
    Call("reactivate_member", ("account_id", "user_id"), lambda c: {
        "account_id": c.account_id, "user_id": "u2", "actor_id": "owner"}),
    Call("set_access_until", ("account_id", "user_id", "until"), lambda c: {
        "account_id": c.account_id, "user_id": "u2", "until": START + timedelta(days=30),
        "actor_id": "owner"}),
    Call("permissions_of", ("user_id", "account_id"), lambda c: {
        "user_id": "u2", "account_id": c.account_id}),
    Call("accept_link", ("token",), lambda c: {"token": c.token}),
    Call("invite", ("account_id",), lambda c: {
        "account_id": c.account_id, "actor_id": "owner", "email": "neu@example.org",
        "permissions": PermissionSet.of("billing.view"), "language": "de",
        "access_until": START + timedelta(days=30), "note": "Hallo!",
        "metadata": {"customer_no": "4711"}}),
    Call("resend_invitation", ("invitation_id",), lambda c: {
        "invitation_id": c.invitation_id, "actor_id": "owner"}),
    Call("revoke_invitation", ("invitation_id",), lambda c: {
        "invitation_id": c.invitation_id, "actor_id": "owner"}),
    Call("pending_invitations", ("account_id",), lambda c: {"account_id": c.account_id}),
    Call("invitations", ("account_id",), lambda c: {"account_id": c.account_id}),
    Call("get_invitation", ("invitation_id",), lambda c: {"invitation_id": c.invitation_id}),
    Call("accept_invitation", ("token",), lambda c: {
        "token": c.token, "user_id": "u3", "email": "dev@agentur.de"}),
    Call("add_contact", ("account_id",), lambda c: {
        "account_id": c.account_id, "actor_id": "owner", "name": "Buchhaltung",
        "email": "buha@example.org", "categories": ["billing"], "phone": "+49 30 1234",
        "company": "Muster GmbH", "role": "Buchhaltung"}),
    Call("update_contact", ("contact_id",), lambda c: {
        "contact_id": c.contact_id, "actor_id": "owner", "name": "Neu",
        "email": "neu@example.org", "categories": ["general"], "phone": "+49 30 9876",
        "company": "Neu GmbH", "role": "Chef"}),
    Call("remove_contact", ("contact_id",), lambda c: {
        "contact_id": c.contact_id, "actor_id": "owner"}),
    Call("get_contact", ("contact_id",), lambda c: {"contact_id": c.contact_id}),
    Call("contacts", ("account_id",), lambda c: {"account_id": c.account_id}),
    Call("recipients", ("account_id", "category"), lambda c: {
        "account_id": c.account_id, "category": "billing"}),
    Call("notify", ("account_id", "category"), lambda c: {
        "account_id": c.account_id, "category": "billing", "subject": "Rechnung",
        "text": "Ihre Rechnung", "html": "<p>Ihre Rechnung</p>", "language": "de"}),
    Call("pending_messages", (), lambda c: {"account_id": c.account_id}),
    Call("undeliverable_messages", (), lambda c: {"account_id": c.account_id}),
    Call("deliver_pending", (), lambda c: {"limit": 10}),
    Call("retry_waiting", (), lambda c: {"actor_id": SYSTEM, "account_id": c.account_id}),
    Call("audit_log", ("account_id",), lambda c: {"account_id": c.account_id, "limit": 10}),
    Call("add_listener", ("listener",), lambda c: {"listener": lambda event: None}),
    Call("remove_listener", ("listener",), lambda c: {"listener": _added_listener}),
    Call("export_person", (), lambda c: {"user_id": "u2", "email": "dev@agentur.de"}),
    Call("erase_person", (), lambda c: {
        "user_id": "u9", "email": "dev@agentur.de", "actor_id": SYSTEM}),
    Call("purge", (), lambda c: {"scrub": True}),
    Call("delete_account", ("account_id",), lambda c: {
        "account_id": c.account_id, "actor_id": SYSTEM}),
    Call("import_accounts", ("rows",), lambda c: {
        "rows": [{"id": "imp-1", "name": "Neu GmbH", "owner_id": "owner",
                  "owner_email": "neu@example.com"}],
        "existing": "skip", "chunk_size": 10, "progress": lambda *a: None, "dry_run": False}),
]  # fmt: skip
BY_METHOD = {call.method: call for call in CALLS}

# Parameters whose wrong values are not NOT_STRINGS; None is a valid language and html.
WRONG: dict[str, list[object]] = {
    "permissions": NOT_PERMISSIONS,
    "categories": NOT_CATEGORIES,
    "limit": NOT_LIMITS,
    "listener": NOT_CALLABLES,
    "language": [v for v in NOT_STRINGS if v is not None],
    "html": [v for v in NOT_STRINGS if v is not None],
    "resource": [v for v in NOT_STRINGS if v is not None],
    "note": [v for v in NOT_STRINGS if v is not None],
    "until": NOT_INSTANTS,
    "access_until": NOT_INSTANTS,
    "metadata": [["x"], 5, "x", b"x", True, {1: "x"}, {"x": object()}, {"x": float("nan")}],
    "scrub": ["yes", 1, None],
    "chunk_size": NOT_LIMITS,
    "progress": NOT_CALLABLES,
    "dry_run": ["yes", 1, None],
}
# Parameters where None is a valid value: pending_messages(None) lists every account's.
NONE_MEANS_ALL = {("pending_messages", "account_id")}
NONE_MEANS_ALL |= {("undeliverable_messages", "account_id")}
NONE_MEANS_ALL |= {("retry_waiting", "account_id")}
# import_accounts(progress=None) shows no progress.
NONE_MEANS_ALL |= {("import_accounts", "progress")}
# export_person() and erase_person() take a user id, an address, or both.
NONE_MEANS_ALL |= {(m, p) for m in ("export_person", "erase_person") for p in ("user_id", "email")}
# The token of accept_invitation() is pinned elsewhere as InvalidInvitation: see below.
CASES = [
    pytest.param(call.method, param, value, id=f"{call.method}-{param}-{value!r}")
    for call in CALLS
    for param in call.good(Ctx("acc", "inv", "tok", "con"))
    if (call.method, param) != ("accept_invitation", "token")
    for value in WRONG.get(param, NOT_STRINGS)
    if not (value is None and (call.method, param) in NONE_MEANS_ALL)
]
TOKEN_METHODS = ["inspect_invitation", "accept_invitation", "decline_invitation"]
# Public methods that take no argument to get wrong.
NO_ARGUMENTS = {"batch", "close", "now"}


@pytest.fixture
def ctx(team: TeamAccess) -> Ctx:
    """An account with a member ``u2``, a pending invitation and a contact."""
    acc = team.create_account(name="Muster GmbH", owner_id="owner", owner_email="chef@muster.de")
    add_member(team, acc.id, "u2", PermissionSet.of("billing.view"))
    inv = team.invite(
        acc.id,
        actor_id="owner",
        email="dev@agentur.de",
        permissions=PermissionSet.of("orders.place"),
    )
    con = team.add_contact(
        acc.id,
        actor_id="owner",
        name="Kontakt",
        email="kontakt@example.org",
        categories=["billing"],
    )
    assert inv.token is not None
    team.add_listener(_added_listener)
    return Ctx(acc.id, inv.id, inv.token, con.id)


def snapshot(team: TeamAccess, mailer: MemoryMailer, ctx: Ctx) -> object:
    """Everything a rejected call must leave as it was."""
    return (
        team.get_account(ctx.account_id),
        team.accounts_for("owner"),
        team.members(ctx.account_id),
        team.invitations(ctx.account_id),
        team.contacts(ctx.account_id),
        team.audit_log(ctx.account_id, limit=1000),
        team.pending_messages(),
        [message.as_bytes() for message in mailer.outbox],
    )


class TestEveryMethodIsCovered:
    """The table below names every public method of TeamAccess, so a new one is not missed."""

    def test_table_is_complete(self) -> None:
        public = {
            name
            for name in dir(TeamAccess)
            if not name.startswith("_") and callable(getattr(TeamAccess, name))
        }
        assert public == set(BY_METHOD) | set(TOKEN_METHODS) | NO_ARGUMENTS

    @pytest.mark.parametrize("method", sorted(BY_METHOD))
    def test_the_good_call_succeeds(self, team: TeamAccess, ctx: Ctx, method: str) -> None:
        # So each case below fails because of the one wrong value, not another argument.
        BY_METHOD[method].run(team, ctx)


class TestWrongTypeInMethods:
    """Each parameter of each method, given a value of the wrong type."""

    @pytest.mark.parametrize(("method", "param", "value"), CASES)
    def test_is_validation_error_and_changes_nothing(
        self,
        team: TeamAccess,
        mailer: MemoryMailer,
        ctx: Ctx,
        method: str,
        param: str,
        value: object,
    ) -> None:
        before = snapshot(team, mailer, ctx)
        with pytest.raises(ValidationError, match=re.escape(param)):
            BY_METHOD[method].run(team, ctx, **{param: value})
        assert snapshot(team, mailer, ctx) == before

    def test_a_rejected_listener_is_not_called(self, team: TeamAccess, ctx: Ctx) -> None:
        with pytest.raises(ValidationError, match="listener"):
            team.add_listener(None)  # type: ignore[arg-type]
        seen: list[str] = []
        team.add_listener(lambda event: seen.append(event.action))
        team.rename_account(ctx.account_id, actor_id="owner", name="Neu GmbH")
        assert seen == ["account.renamed"]


class TestWrongTypeOfToken:
    """A token that is not a string is InvalidInvitation, as the landing page expects."""

    # Not ValidationError: a host passes request.args.get("token"), None when the link
    # was cut off, and shows the user the InvitationError it catches.
    @pytest.mark.parametrize("value", NOT_STRINGS)
    @pytest.mark.parametrize("method", TOKEN_METHODS)
    def test_is_invalid_invitation_and_changes_nothing(
        self, team: TeamAccess, mailer: MemoryMailer, ctx: Ctx, method: str, value: object
    ) -> None:
        before = snapshot(team, mailer, ctx)
        kwargs = (
            {"user_id": "u3", "email": "dev@agentur.de"} if method == "accept_invitation" else {}
        )
        with pytest.raises(InvalidInvitation):
            getattr(team, method)(value, **kwargs)
        assert snapshot(team, mailer, ctx) == before


class TestHotPathsTakeStrSubclasses:
    """can() and recipients() test ``type(x) is str`` first; a str subclass still passes."""

    class UserId(str):
        pass

    def test_can_and_recipients(self, team: TeamAccess, ctx: Ctx) -> None:
        account_id = self.UserId(ctx.account_id)
        assert team.can(self.UserId("u2"), account_id, "billing.view") is True
        assert team.permissions_of(self.UserId("u2"), account_id) == PermissionSet.of(
            "billing.view"
        )
        assert team.recipients(account_id, self.UserId("billing")) == [
            "chef@muster.de",
            "kontakt@example.org",
        ]


# The settings of TeamAccess(...) and wrong values for each.
SETTINGS: dict[str, list[object]] = {
    "invitation_ttl": [7, "7 days", None, 7.0],
    "rate_window": [3600, "1h", None],
    "retry_backoff": [60, "1m", None],
    "max_retry_backoff": [3600, None],
    "rate_limit": ["5", True, 5.0, None, [5]],
    "require_email_match": ["yes", 1, None],
    "check_deliverability": ["no", 0, None],
    "language": [["de"], {"de": 1}, None, b"de", 5],
    "accept_url": [None, b"https://panel.example.com/?token={token}", 5, ["https://x"]],
    "sender": [None, b"ops@example.com", 5, ["ops@example.com"]],
    "listeners": [5, None, print, [5], [None], "f"],
    "catalog": [["billing.view"], 5, "billing.view"],
    "categories": [5, "billing", b"billing", [5], [["billing"]], {"billing": False}],
    "templates": [5, "templates", object()],
    "clock": [5, "now", object()],
    "retention": [5, "90 days", {"days": 3}, timedelta(days=3)],
    "pseudonym_key": ["", b"", 5, ["key"]],
}


class TestWrongTypeInSettings:
    """A TeamAccess setting of the wrong type is refused when built, by name."""

    @pytest.mark.parametrize(
        ("setting", "value"),
        [pytest.param(s, v, id=f"{s}-{v!r}") for s, values in SETTINGS.items() for v in values],
    )
    def test_setting(self, store: Store, setting: str, value: object) -> None:
        with pytest.raises(ValidationError, match=re.escape(setting)):
            TeamAccess(store, MemoryMailer(), secret_key=SECRET, **{setting: value})

    @pytest.mark.parametrize("value", [None, 5, "store", object()])
    def test_store(self, value: object) -> None:
        with pytest.raises(ValidationError, match="store"):
            TeamAccess(value, MemoryMailer(), secret_key=SECRET)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [None, 5, "mailer", object()])
    def test_mailer(self, value: object) -> None:
        with pytest.raises(ValidationError, match="mailer"):
            TeamAccess(MemoryStore(), value, secret_key=SECRET)  # type: ignore[arg-type]

    def test_good_settings_still_work(self, store: Store, clock: FrozenClock) -> None:
        team = TeamAccess(
            store,
            MemoryMailer(),
            secret_key=SECRET,
            clock=clock,
            invitation_ttl=timedelta(days=2),
            rate_limit=3,
            rate_window=timedelta(minutes=30),
            require_email_match=False,
            check_deliverability=False,
            language="de",
            listeners=[print],
            categories=["billing"],
        )
        assert (team.rate_limit, team.language, team.categories.names()) == (3, "de", ("billing",))


#: The durations among the settings, each with a sensible value.
DURATIONS = (
    "invitation_ttl", "rate_window", "recipient_rate_window", "account_rate_window",
    "retry_backoff", "max_retry_backoff", "delivery_lease",
)  # fmt: skip


class TestDurationsInRange:
    """A duration past any sensible length is refused when built, not found out as a
    bare OverflowError when it is first added to the clock."""

    @pytest.mark.parametrize("setting", DURATIONS)
    def test_setting(self, store: Store, setting: str) -> None:
        with pytest.raises(ValidationError, match=f"{setting} .*at most 100 years"):
            TeamAccess(
                store, MemoryMailer(), secret_key=SECRET, **{setting: timedelta(days=999_999_999)}
            )

    @pytest.mark.parametrize("period", ["closed_invitations", "sent_mail", "audit_events"])
    def test_retention(self, period: str) -> None:
        with pytest.raises(ValidationError, match=f"Retention.{period} .*at most 100 years"):
            Retention(**{period: timedelta(days=999_999_999)})

    def test_a_century_still_works(self, store: Store, clock: FrozenClock) -> None:
        century = timedelta(days=36_525)
        team = TeamAccess(
            store, MemoryMailer(), secret_key=SECRET, clock=clock,
            retention=Retention(century, century, century),
            **dict.fromkeys(DURATIONS, century),  # type: ignore[arg-type]
        )  # fmt: skip
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        inv = team.invite(
            account.id, actor_id="o", email="x@example.org", permissions=PermissionSet.of()
        )
        assert inv.expires_at == clock.now() + century
        assert team.purge().total == 0


class TestUserIdLength:
    """A user id that becomes an owner or a member has at most 255 characters, on every
    backend: PostgreSQL cannot index a longer one that does not compress (about 2,700
    bytes), and refused it as a lost connection to retry, while the others stored it."""

    LONG = "".join(chr(0x1F600 + i % 64) for i in range(256))  # 4 UTF-8 bytes each

    def test_owner(self, team: TeamAccess) -> None:
        with pytest.raises(ValidationError, match="owner_id is 256 characters long; the limit"):
            team.create_account(name="A", owner_id=self.LONG, owner_email="o@example.org")
        assert team.accounts_for(self.LONG) == []
        longest = self.LONG[:255]
        account = team.create_account(name="A", owner_id=longest, owner_email="o@example.org")
        assert [a.id for a in team.accounts_for(longest)] == [account.id]

    def test_member(self, team: TeamAccess) -> None:
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        inv = team.invite(
            account.id, actor_id="o", email="x@example.org", permissions=PermissionSet.of()
        )
        assert inv.token is not None
        with pytest.raises(ValidationError, match="user_id is 256 characters long; the limit"):
            team.accept_invitation(inv.token, user_id=self.LONG, email="x@example.org")
        assert team.get_invitation(inv.id).status == "pending"
        member = team.accept_invitation(inv.token, user_id=self.LONG[1:], email="x@example.org")
        assert team.get_member(account.id, self.LONG[1:]) == member

    def test_import(self, team: TeamAccess) -> None:
        row = {"name": "A", "owner_id": "o", "owner_email": "o@example.org"}
        member = {"user_id": self.LONG, "email": "x@example.org", "permissions": []}
        with pytest.raises(InvalidImport) as info:
            team.import_accounts([{**row, "owner_id": self.LONG}, {**row, "members": [member]}])
        assert [(p.row, p.message) for p in info.value.problems] == [
            (0, "owner_id is 256 characters long; the limit is 255, shorten it"),
            (1, "user_id is 256 characters long; the limit is 255, shorten it"),
        ]


class BytesPath:
    """An os.PathLike that returns bytes: valid for os.fspath, not for SQLiteStore."""

    def __fspath__(self) -> bytes:
        return b"/tmp/teamaccess.db"


class TestSQLiteStoreSettings:
    """SQLiteStore's path and timeout of the wrong type are refused before a file is made."""

    @pytest.mark.parametrize("path", [None, 5, b"team.db", ["team.db"], BytesPath()])
    def test_path(self, path: object) -> None:
        with pytest.raises(ValidationError, match="path"):
            SQLiteStore(path)  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", ["5", None, True, [5], float("nan")])
    def test_timeout(self, tmp_path: Path, timeout: object) -> None:
        with pytest.raises(ValidationError, match="timeout"):
            SQLiteStore(tmp_path / "team.db", timeout=timeout)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("synchronous", [None, ["FULL"], {"FULL": 1}, 1, b"FULL"])
    def test_synchronous(self, tmp_path: Path, synchronous: object) -> None:
        with pytest.raises(ValidationError, match="synchronous"):
            SQLiteStore(tmp_path / "team.db", synchronous=synchronous)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []

    def test_numbers_and_paths_still_work(self, tmp_path: Path) -> None:
        for store in (
            SQLiteStore(tmp_path / "a.db", timeout=1),
            SQLiteStore(str(tmp_path / "b.db"), timeout=0.5),
        ):
            assert store.schema_version >= 1
            store.close()

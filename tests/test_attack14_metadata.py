"""A vendor's metadata that JSON or Python cannot carry: an integer past Python's limit on
its digits, NaN, an infinity (``1e400`` reads as one), nesting past the parser's
recursion, a value that holds itself, a key that is not a string (at any depth, where JSON
would turn ``1`` into ``"1"``). ``invite --metadata``, the import file's column,
``invite(metadata=)`` and ``import_accounts()`` each say so in words that tell what to
write instead, the same words for the same value, never Python's own
(``sys.set_int_max_str_digits``, "maximum recursion depth", "Out of range float"), and
nothing is stored or sent."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.test_attack14_numbers import command

from teamaccess import (
    InvalidImport,
    MemoryMailer,
    PermissionSet,
    SQLiteStore,
    Store,
    TeamAccess,
    ValidationError,
)

#: What Python says of these values; none of it may reach a vendor or an operator.
PYTHONS_WORDS = (
    "set_int_max_str_digits", "Exceeds the limit", "recursion", "Out of range float",
    "Circular reference", "not JSON serializable", "keys must be str", "Traceback",
)  # fmt: skip
LIMIT = sys.get_int_max_str_digits()
DIGITS = (
    f"holds an integer of 5000 digits and may hold integers of at most {LIMIT} digits "
    "(Python's limit on converting them); write a longer number as a string, like "
    '{"customer_no": "12345678901234567890"}'
)


def rows(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 (fixed names)
    finally:
        conn.close()


#: (--metadata / the import column, what follows "metadata" in the message)
TEXTS = [
    pytest.param('{"no": ' + "7" * 5000 + "}", f" {DIGITS}", id="integer-of-5000-digits"),
    pytest.param(
        '{"ratio": 1e400}',
        " holds the number 1e400, which JSON cannot carry (it is not a standard JSON "
        'number, or too large for one); write it as a string, like {"ratio": "1e400"}, '
        "or leave it out",
        id="1e400",
    ),
    pytest.param(
        '{"ratio": [NaN]}',
        " holds the number NaN, which JSON cannot carry (it is not a standard JSON number, "
        'or too large for one); write it as a string, like {"ratio": "NaN"}, or leave it out',
        id="NaN",
    ),
    pytest.param(
        '{"ratio": -Infinity}',
        " holds the number -Infinity, which JSON cannot carry (it is not a standard JSON "
        'number, or too large for one); write it as a string, like {"ratio": "-Infinity"}, '
        "or leave it out",
        id="-Infinity",
    ),
    pytest.param(
        '{"a": ' * 5000 + "1" + "}" * 5000,
        ' must be a JSON object like {"customer_no": "4711"}, of at most 2048 bytes; this '
        "one is nested too deeply to read",
        id="nested-5000-deep",
    ),
    pytest.param(
        '{"no": 7',
        ' must be a JSON object like {"customer_no": "4711"}; this is not valid JSON '
        "(expecting ',' delimiter at character 9)",
        id="cut-off",
    ),
    pytest.param(
        "[7]", ' must be a JSON object like {"customer_no": "4711"}, not an array', id="array"
    ),
    # JSON keeps the last of a key given twice and drops the other without a word.
    pytest.param(
        '{"no": 1, "x": {"a": 1, "b": 2, "a": 3}}',
        ' names the key "a" twice in one object; give each key once (JSON readers keep only '
        "one of the two values)",
        id="key-twice",
    ),
    pytest.param(
        '{"Straße": 1, "Straße": 1}',
        ' names the key "Straße" twice in one object; give each key once (JSON readers keep '
        "only one of the two values)",
        id="key-twice-same-value",
    ),
]


class TestInviteMetadataOption:
    """``teamaccess invite --metadata``: a usage error (exit 2) in the import's words."""

    @pytest.mark.parametrize(("text", "words"), TEXTS)
    def test_refused_in_the_commands_words(self, tmp_path: Path, text: str, words: str) -> None:
        made = command(tmp_path, "accounts", "create", "--name", "M", "--owner-id", "max",
                       "--owner-email", "chef@muster.de", "--json")  # fmt: skip
        assert made.returncode == 0, made.stderr
        account = made.stdout.split('"id": "')[1].split('"')[0]
        proc = command(tmp_path, "invite", account, "dev@agentur.de", "--all",
                       "--metadata", text, "--as", "max")  # fmt: skip
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
        assert proc.stderr == f"error: --metadata{words}; see 'teamaccess invite --help'\n"
        assert not any(w in proc.stderr for w in PYTHONS_WORDS)
        db = tmp_path / "teamaccess.db"
        assert (rows(db, "invitations"), rows(db, "outbox")) == (0, 0)
        assert not (tmp_path / "outbox").exists()

    def test_refused_before_a_database_is_made(self, tmp_path: Path) -> None:
        proc = command(tmp_path, "invite", "acc_1", "dev@agentur.de", "--all",
                       "--metadata", "[7]", "--as", "max")  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == []


class TestImportMetadataColumn:
    """The import file's ``metadata`` column says the same of the same text (exit 3)."""

    @pytest.mark.parametrize(("text", "words"), TEXTS)
    def test_a_bad_line_in_the_same_words(self, tmp_path: Path, text: str, words: str) -> None:
        quoted = text.replace('"', '""')
        (tmp_path / "in.csv").write_text(
            "account,account_name,role,user_id,email,metadata\n"
            "K-1,Muster GmbH,owner,u-1,chef@muster.de,\n"
            f'K-1,,member,u-2,dev@agentur.de,"{quoted}"\n',
            encoding="utf-8",
        )
        proc = command(tmp_path, "import", "in.csv")
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.splitlines()[1:] == [f"  line 3: metadata{words}"]
        assert not any(w in proc.stderr for w in PYTHONS_WORDS)
        assert not (tmp_path / "teamaccess.db").exists()


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def _deep_dict(levels: int, bottom: dict[Any, Any]) -> list[Any]:
    value: list[Any] = [bottom]
    for _ in range(levels - 1):
        value = [value]
    return value


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {"a": []}
    value["a"].append(value)
    return value


#: (metadata a Python caller passes, the ValidationError's message)
VALUES = [
    pytest.param(
        {"no": 7 * 10**4999},
        f"metadata holds an integer of more than {LIMIT} digits and may hold integers of "
        f"at most {LIMIT} digits (Python's limit on converting them); write a longer number "
        'as a string, like {"customer_no": "12345678901234567890"}',
        id="integer-of-5000-digits",
    ),
    pytest.param(
        {"ratio": float("nan")},
        "metadata holds NaN or an infinity, which JSON cannot carry; write it as a string, "
        'like {"ratio": "NaN"}, or leave it out',
        id="nan",
    ),
    pytest.param(
        {"ratio": [float("-inf")]},
        "metadata holds NaN or an infinity, which JSON cannot carry; write it as a string, "
        'like {"ratio": "NaN"}, or leave it out',
        id="-inf",
    ),
    pytest.param(
        {"deep": _deep(100_000)},
        "metadata is nested too deeply to write as JSON; keep it within 2048 bytes (store "
        "an id here and the rest in your own database)",
        id="nested-100000-deep",
    ),
    pytest.param(
        _circular(),
        "metadata holds itself (a circular reference); pass plain, copied data",
        id="circular",
    ),
    pytest.param(
        {"tags": {"a", "b"}},
        "metadata must hold only JSON values (str, int, float, bool, None, list, dict, with "
        "str keys); a value is a set",
        id="set",
    ),
    # Below the top a key that is not a string is refused as at the top, with the path to
    # it: JSON would write 1 as "1" (and refuse a tuple in its own words).
    pytest.param(
        {"by": {("a", 1): "x"}},
        "metadata keys must be strings, not ('a', 1) (a key of metadata['by'])",
        id="tuple-key",
    ),
    pytest.param(
        {"a": {1: "x"}},
        "metadata keys must be strings, not 1 (a key of metadata['a'])",
        id="int-key-below",
    ),
    pytest.param(
        {"a": [0, {"b": {None: 1}}]},
        "metadata keys must be strings, not None (a key of metadata['a'][1]['b'])",
        id="none-key-in-a-list",
    ),
    pytest.param(
        {"t": ("x", {True: 1})},
        "metadata keys must be strings, not True (a key of metadata['t'][1])",
        id="bool-key-in-a-tuple",
    ),
    pytest.param(
        {"d": _deep_dict(100_000, {2.5: "x"})},
        "metadata keys must be strings, not 2.5 (a key of metadata['d'][0][0][0]...[0][0][0][0])",
        id="float-key-100000-deep",
    ),
]


class TestMetadataArgument:
    """``invite(metadata=)`` and ``import_accounts()``: a ValidationError a vendor acts on."""

    @pytest.mark.parametrize(("value", "message"), VALUES)
    def test_invite(self, store: Store, value: dict[str, Any], message: str) -> None:
        mailer = MemoryMailer()
        team = TeamAccess(store, mailer, secret_key=SECRET)
        acc = team.create_account(name="M", owner_id="max", owner_email="chef@muster.de")
        with pytest.raises(ValidationError) as info:
            team.invite(acc.id, actor_id="max", email="dev@agentur.de",
                        permissions=PermissionSet.all(), metadata=value)  # fmt: skip
        assert str(info.value) == message
        assert (team.pending_invitations(acc.id), mailer.outbox) == ([], [])
        assert [e.action for e in team.audit_log(acc.id)] == ["account.created"]

    @pytest.mark.parametrize(("value", "message"), VALUES)
    def test_import_accounts(self, tmp_path: Path, value: dict[str, Any], message: str) -> None:
        team = TeamAccess(SQLiteStore(tmp_path / "t.db"), MemoryMailer(), secret_key=SECRET)
        with pytest.raises(InvalidImport) as info:
            team.import_accounts([{
                "id": "K-1", "name": "M", "owner_id": "max", "owner_email": "chef@muster.de",
                "members": [{"user_id": "dev", "email": "dev@agentur.de", "permissions": "*",
                             "metadata": value}],
            }])  # fmt: skip
        assert [p.message for p in info.value.problems] == [message]
        assert team.accounts_for("max") == []
        team.close()

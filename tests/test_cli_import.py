"""`teamaccess import FILE`: the real command in a subprocess, on a real SQLite file."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SECRET

from teamaccess import SYSTEM, MemoryMailer, PermissionSet, SQLiteStore, TeamAccess

HEADER = "account,account_name,role,user_id,email,permissions,access_until,metadata,name,categories,company\n"  # noqa: E501
GOOD = HEADER + (
    "K-1,Muster GmbH,owner,u-1,chef@muster.de,,,,,,\n"
    "K-1,,member,u-2,Buha@Muster.DE,billing.view billing.pay,,,,,\n"
    'K-1,,member,u-3,dev@agentur.de,services.manage@srv-1,2030-01-01T00:00:00+00:00,"{""no"": 7}",,,\n'  # noqa: E501
    "K-1,,contact,,rechnung@muster.de,,,,Rechnungen,billing general,Muster GmbH\n"
    "K-2,Beispiel AG,owner,u-9,it@beispiel.de,,,,,,\n"
    "K-2,,member,u-2,buha@muster.de,*,,,,,\n"
)


def run(
    folder: Path, *args: str, code: int = 0, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    if key is not None:
        env["TEAMACCESS_SECRET_KEY"] = key
    proc = subprocess.run(
        [sys.executable, "-m", "teamaccess", *args], cwd=folder, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 (fixed names)
            for t in ("accounts", "members", "contacts", "contact_categories", "events",
                      "invitations", "outbox")
        }  # fmt: skip
    finally:
        conn.close()


def write(folder: Path, text: str, name: str = "customers.csv") -> str:
    (folder / name).write_text(text, encoding="utf-8")
    return name


class TestImportCommand:
    """Good files import; the result is what the library reads back from the file."""

    def test_imports_accounts_members_and_contacts(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", write(tmp_path, GOOD))
        assert proc.stdout == (
            "imported 2 account(s) from customers.csv (3 member(s) and 1 contact(s) in the file)\n"
        )
        assert proc.stderr == ""  # no progress bar: stderr is not a terminal
        team = TeamAccess(SQLiteStore(tmp_path / "teamaccess.db"), MemoryMailer(),
                          secret_key=SECRET)  # fmt: skip
        assert [(m.user_id, m.role, m.email, m.granted_by) for m in team.members("K-1")] == [
            ("u-1", "owner", "chef@muster.de", None),
            ("u-2", "member", "Buha@muster.de", SYSTEM),
            ("u-3", "member", "dev@agentur.de", SYSTEM),
        ]
        dev = team.get_member("K-1", "u-3")
        assert dev.permissions == PermissionSet.on("services.manage", "srv-1")
        assert dev.access_until is not None
        assert dev.access_until.year == 2030
        assert dev.metadata == {"no": 7}
        assert team.permissions_of("u-2", "K-2").is_all
        assert team.recipients("K-1", "general") == ["chef@muster.de", "rechnung@muster.de"]
        assert team.contacts("K-1")[0].company == "Muster GmbH"
        assert [a.id for a in team.accounts_for("u-2")] == ["K-1", "K-2"]
        assert team.audit_log("K-2")[0].action == "account.imported"
        team.close()
        assert not (tmp_path / "outbox").exists()  # no mail at all

    def test_json_output(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", "--json", write(tmp_path, GOOD))
        assert json.loads(proc.stdout) == {
            "dry_run": False, "imported": 2, "skipped": 0, "accounts": ["K-1", "K-2"],
        }  # fmt: skip
        assert proc.stderr == ""

    def test_dry_run_creates_nothing(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", "--dry-run", write(tmp_path, GOOD))
        assert proc.stdout.startswith("would import 2 account(s)")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]

    def test_dry_run_on_a_database_checks_against_it(self, tmp_path: Path) -> None:
        name = write(tmp_path, GOOD)
        run(tmp_path, "import", name)
        before = counts(tmp_path / "teamaccess.db")
        proc = run(tmp_path, "import", "--dry-run", name, code=3)
        assert "line 2: account 'K-1' exists already" in proc.stderr
        assert "--skip-existing" in proc.stderr
        assert counts(tmp_path / "teamaccess.db") == before

    def test_skip_existing_resumes(self, tmp_path: Path) -> None:
        run(tmp_path, "import", write(tmp_path, HEADER + GOOD.splitlines(True)[1], "first.csv"))
        proc = run(tmp_path, "import", "--skip-existing", "--json", write(tmp_path, GOOD))
        assert json.loads(proc.stdout)["accounts"] == ["K-2"]
        assert counts(tmp_path / "teamaccess.db")["accounts"] == 2

    def test_semicolons_and_a_byte_order_mark(self, tmp_path: Path) -> None:
        """What a spreadsheet saves as "CSV UTF-8" in a German locale."""
        text = "\ufeffaccount;account_name;role;user_id;email\nK-7;Sieben;owner;u-7;s@x.de\n"
        run(tmp_path, "import", "--delimiter", ";", write(tmp_path, text))
        assert counts(tmp_path / "teamaccess.db")["accounts"] == 1


class TestBadFiles:
    """Bad lines are named by their number, and nothing is imported."""

    BAD = HEADER + (
        "K-1,Muster GmbH,owner,u-1,chef@muster.de,,,,,,\n"  # line 2
        "K-1,,member,u-2,buha@,billing.view,,,,,\n"  # line 3: address
        "K-1,,admin,u-3,x@y.de,,,,,,\n"  # line 4: role
        "K-3,Drei,owner,u-5,c@d.de,,,,,,\n"  # line 5
        "K-3,,member,u-6,e@f.de,biling.view,,,,,\n"  # line 6: permission
        "K-3,,member,u-7,g@h.de,,yesterday,,,,\n"  # line 7: time
        "K-3,,contact,,i@j.de,,,,Buchhaltung,spam,\n"  # line 8: category
        "K-4,,member,u-8,k@l.de,,,,,,\n"  # line 9: no owner
        "K-5,Fünf,owner,u-9,m@n.de,,,,,,\n"  # line 10: fine
    )

    def test_every_bad_line_named_nothing_written(self, tmp_path: Path) -> None:
        run(tmp_path, "import", write(tmp_path, GOOD, "first.csv"))
        before = counts(tmp_path / "teamaccess.db")
        proc = run(tmp_path, "import", write(tmp_path, self.BAD), code=3)
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert lines[0] == (
            "error: 6 problem(s) in customers.csv; nothing was imported. Correct these lines "
            "and import the file again:"
        )
        assert [line.split(":")[0].strip() for line in lines[1:]] == [
            "line 3", "line 4", "line 6", "line 7", "line 8", "line 9",
        ]  # fmt: skip
        assert "biling.view" in lines[3]
        assert "spam" in lines[5]
        assert "no line with role owner" in lines[6]
        assert counts(tmp_path / "teamaccess.db") == before

    # A quoted value may hold a line break: such a record spans lines of the file.
    SPANNING = HEADER + (
        "K-1,Muster GmbH,owner,u-1,chef@muster.de,,,,,,\n"  # line 2
        'K-1,,contact,,r@muster.de,,,,"Rech\nnungen",billing,\n'  # lines 3-4: name
        "K-1,,member,u-2,b@muster.de,spam,,,,,\n"  # line 5: permission
        "K-2,Zwei,owner,u-5,c@d.de,,,,,,\n"  # line 6
        'K-2,,admin,u-6,e@f.de,,,,,,"Firma\n\nGmbH"\n'  # lines 7-9: role
        "K-2,,member,u-7,g@h.de,,yesterday,,,,\n"  # line 10: time
    )

    def test_a_record_over_several_lines_is_named_by_its_lines(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", write(tmp_path, self.SPANNING), code=3)
        lines = proc.stderr.splitlines()[1:]
        assert [line.split(":")[0].strip() for line in lines] == [
            "lines 3-4", "line 5", "lines 7-9", "line 10",
        ]  # fmt: skip
        assert "contact name contains a line break" in lines[0]
        assert "role must be" in lines[2]
        proc = run(tmp_path, "import", "--json", "customers.csv", code=3)
        problems = json.loads(proc.stdout)["problems"]
        assert [(p["line"], p["last_line"]) for p in problems] == [
            (3, 4), (5, 5), (7, 9), (10, 10),
        ]  # fmt: skip

    def test_problems_as_json(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", "--json", write(tmp_path, self.BAD), code=3)
        document = json.loads(proc.stdout)
        assert document["imported"] == 0
        assert [p["line"] for p in document["problems"]] == [3, 4, 6, 7, 8, 9]
        assert not (tmp_path / "teamaccess.db").exists()

    def test_a_person_twice_in_an_account(self, tmp_path: Path) -> None:
        text = GOOD + "K-2,,member,u-4,IT@beispiel.de,,,,,,\n"
        proc = run(tmp_path, "import", write(tmp_path, text), code=3)
        assert "line 8: IT@beispiel.de is already in this account as the owner" in proc.stderr
        # Opened for writing (the check reads the database), and removed again, unused.
        assert not (tmp_path / "teamaccess.db").exists()
        assert not (tmp_path / "teamaccess.db.secret").exists()

    # 5,000 levels: far past the parser's recursion, within the CSV field limit
    @pytest.mark.parametrize("deep", ["[" * 5_000, '"' + '{""a"":' * 5_000 + '"'])
    def test_metadata_nested_too_deep(self, tmp_path: Path, deep: str) -> None:
        """JSON nested deeper than the parser recurses is a bad line, not a traceback."""
        text = GOOD + f"K-2,,member,u-4,neu@beispiel.de,,,{deep},,,\n"
        proc = run(tmp_path, "import", write(tmp_path, text), code=3)
        assert "line 8: metadata must be a JSON object" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "teamaccess.db").exists()

    def test_wrong_header(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", write(tmp_path, "account,role,mail\nK,owner,x@y\n"), code=3)
        assert "line 1: the header must name the columns" in proc.stderr
        assert "missing: email; unknown: mail" in proc.stderr

    def test_not_utf8(self, tmp_path: Path) -> None:
        (tmp_path / "latin1.csv").write_bytes(
            "account,role,email,account_name\nK,owner,x@y.de,Müller\n".encode("latin-1")
        )
        proc = run(tmp_path, "import", "latin1.csv", code=3)
        assert "is not UTF-8 text" in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_not_utf8_far_into_the_file_names_the_file_offset_and_line(
        self, tmp_path: Path
    ) -> None:
        # Far past the first chunk the text reader decodes, so a chunk's offset would
        # be wrong; "ü" in Latin-1 is the byte 0xfc.
        owners = "".join(
            f"K-{i},Firma {i},owner,u-{i},o{i}@example.de,,,,,,\n" for i in range(3000)
        )
        data = (HEADER + owners).encode() + "K-x,Müller,owner,u-x,x@y.de,,,,,,\n".encode("latin-1")
        (tmp_path / "latin1.csv").write_bytes(data)
        offset = data.index(b"\xfc")
        assert offset > 100_000
        proc = run(tmp_path, "import", "latin1.csv", code=3)
        assert proc.stderr == (
            f"error: latin1.csv is not UTF-8 text (invalid start byte at byte {offset}, "
            "line 3002); save it as CSV in UTF-8\n"
        )
        # a character cut off at the end of the file
        (tmp_path / "cut.csv").write_bytes(HEADER.encode() + "K-1,Mü".encode()[:-1])
        proc = run(tmp_path, "import", "cut.csv", code=3)
        assert "at the end of the file" in proc.stderr
        assert not (tmp_path / "teamaccess.db").exists()

    def test_access_until_without_a_time_zone(self, tmp_path: Path) -> None:
        text = HEADER + (
            "K-1,Muster GmbH,owner,u-1,chef@muster.de,,,,,,\n"
            "K-1,,member,u-2,buha@muster.de,billing.view,2030-01-31T00:00:00,,,,\n"
        )
        proc = run(tmp_path, "import", write(tmp_path, text), code=3)
        assert proc.stderr.splitlines()[1:] == [
            "  line 3: access_until '2030-01-31T00:00:00' has no time zone; write the date "
            "and time with its offset from UTC, like 2027-01-31T00:00:00+00:00 or "
            "2027-01-31T00:00:00+01:00"
        ]
        assert not (tmp_path / "teamaccess.db").exists()

    def test_an_integer_longer_than_python_converts_in_metadata(self, tmp_path: Path) -> None:
        limit = sys.get_int_max_str_digits()
        text = HEADER + (
            "K-1,Muster GmbH,owner,u-1,chef@muster.de,,,,,,\n"
            f'K-1,,member,u-2,buha@muster.de,billing.view,,"{{""no"": {"7" * 5000}}}",,,\n'
        )
        proc = run(tmp_path, "import", write(tmp_path, text), code=3)
        assert proc.stderr.splitlines()[1:] == [
            f"  line 3: metadata holds an integer of 5000 digits and may hold integers of "
            f"at most {limit} digits (Python's limit on converting them); write a longer "
            'number as a string, like {"customer_no": "12345678901234567890"}'
        ]
        assert not (tmp_path / "teamaccess.db").exists()

    def test_missing_file_is_a_usage_error(self, tmp_path: Path) -> None:
        proc = run(tmp_path, "import", "nowhere.csv", code=2)
        assert "nowhere.csv" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
class TestProgressBar:
    """On a terminal, stderr shows a bar per phase; stdout keeps the result line."""

    def test_bar_on_a_terminal(self, tmp_path: Path) -> None:
        rows = "".join(
            f"K-{n},Kunde {n},owner,o-{n},o{n}@kunde.example,,,,,,\n" for n in range(2500)
        )
        name = write(tmp_path, HEADER + rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        env["COLUMNS"] = "100"
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "teamaccess", "import", name], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=slave, text=True,
        )  # fmt: skip
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        os.close(master)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out.startswith("imported 2500 account(s)")
        text = seen.decode()
        assert "checking" in text
        assert "importing" in text
        assert "100%" in text


@pytest.mark.postgres
class TestImportOnPostgres:
    """The same command with --db postgresql://...: imported once, refused the second time."""

    def test_import_then_refuse_then_skip(self, tmp_path: Path) -> None:
        from tests.conftest import drop_postgres_schema, postgres_conninfo, postgres_schema
        from tests.test_cli_postgres import to_url

        from teamaccess import PostgresStore

        conninfo = postgres_conninfo()
        schema = postgres_schema(tmp_path)
        db = ["--db", to_url(conninfo), "--schema", schema]
        try:
            name = write(tmp_path, GOOD)
            run(tmp_path, *db, "import", name, key="cli-test-key")
            proc = run(tmp_path, *db, "import", name, code=3, key="cli-test-key")
            assert "line 2: account 'K-1' exists already" in proc.stderr
            again = run(tmp_path, *db, "import", "--json", "--skip-existing", name,
                        key="cli-test-key")  # fmt: skip
            assert json.loads(again.stdout)["skipped"] == 2
            team = TeamAccess(PostgresStore(conninfo, schema=schema), MemoryMailer(),
                              secret_key=SECRET)  # fmt: skip
            assert [m.user_id for m in team.members("K-1")] == ["u-1", "u-2", "u-3"]
            assert team.recipients("K-1", "billing") == ["chef@muster.de", "rechnung@muster.de"]
            team.close()
        finally:
            drop_postgres_schema(tmp_path)


class TestInterrupted:
    """A store that fails partway: exit 10, the chunks before stay, --skip-existing resumes."""

    def test_resume_with_skip_existing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from click.testing import CliRunner

        from teamaccess import StorageError
        from teamaccess._cli import cli
        from teamaccess._service.import_rows import _Importer

        name = write(tmp_path, GOOD)
        monkeypatch.chdir(tmp_path)
        real = _Importer._write_chunk
        calls: list[int] = []

        def fail_second(self: Any, work: Any, chunk: Any) -> Any:
            calls.append(1)
            if len(calls) == 2:  # as a full disk would, in the second commit
                raise StorageError("the database or disk is full")
            return real(self, work, chunk)

        monkeypatch.setattr(_Importer, "_write_chunk", fail_second)
        env = dict.fromkeys(k for k in os.environ if k.startswith("TEAMACCESS_"))
        result = CliRunner(env=env).invoke(cli, ["import", "--chunk-size", "1", name])
        assert result.exit_code == 10
        assert "stopped after 1 account(s), which are stored" in result.stderr
        assert "disk is full" in result.stderr
        assert "run the same command with --skip-existing" in result.stderr
        assert counts(tmp_path / "teamaccess.db")["accounts"] == 1
        monkeypatch.setattr(_Importer, "_write_chunk", real)
        proc = run(tmp_path, "import", "--skip-existing", name)
        assert "imported 1 account(s)" in proc.stdout
        assert "skipped 1 that exist" in proc.stdout
        assert counts(tmp_path / "teamaccess.db")["members"] == 5

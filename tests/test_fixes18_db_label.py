"""The ``--db`` label (what commands print for the database) hides every password libpq
reads from a PostgreSQL URL, whatever characters it holds, and the password its writer
meant where libpq reads the URL otherwise (``db?password=p@ss`` is to libpq the user
``db?password=p`` at host ``ss``). Checked against psycopg's ``conninfo_to_dict``, which
asks libpq itself."""

from __future__ import annotations

from urllib.parse import quote

import pytest

S = "S3cr3t"  # the part of each password a label must never show

#: (URL, the password its writer meant); each shape of URL with passwords of many forms
SHAPES = [
    (f"postgresql://db?password={S}p@ss", f"{S}p@ss"),
    (f"postgresql://db/panel?password={S}p@ss", f"{S}p@ss"),
    (f"postgresql://db?password={S}p@ss/x", f"{S}p@ss/x"),
    (f"postgresql://db?password={S}%40ss", f"{S}@ss"),
    (f"postgresql://db/panel?password={S}%3Fx%23y", f"{S}?x#y"),
    (f"postgresql://db/panel?password={S}?x#y", f"{S}?x#y"),
    (f"postgresql://db/panel?password={S}%26b&sslmode=disable", f"{S}&b"),
    (f"postgresql://db/panel?sslmode=disable&password={quote(S + '&@?#/:', safe='')}",
     f"{S}&@?#/:"),
    (f"postgresql://db/panel?PassWord={S}", S),
    (f"postgresql://db/panel?pass%77ord={S}&user=u", S),
    (f"postgresql://db/panel?sslpassword={S}&sslkey=k", S),
    (f"postgresql://db?dbname=a/b&password={S}@x", f"{S}@x"),
    (f"postgresql://db:5432?password={S}@x", f"{S}@x"),
    (f"postgresql://u:{S}@db/panel", S),
    (f"postgres://u:{S}@db:5432/panel?sslmode=require", S),
    (f"postgresql://u:{S}%40x@db/panel", f"{S}@x"),
    (f"postgresql://u:{S}@x@db/panel", f"{S}@x"),
    (f"postgresql://u:{S}?x#y@db/panel", f"{S}?x#y"),
    (f"postgresql://u:pw{S}@db?password={S}a@b/c", f"{S}a@b/c"),
    (f"postgresql://u?x@db/panel?password={S}", S),
    (f"postgresql://u?x:{S}@db/panel?password={S}", S),
    (f"postgresql://u@db/panel?a=b?password={S}", S),
    (f"postgresql://u@db/panel?application_name=x&password={S}=y&z", f"{S}=y"),
    (f"postgresql://[::1]:5432/panel?password={S}", S),
    (f"postgresql://u:{S}@[::1]/panel", S),
    (f"postgresql://u:{S}@h1,h2:5433/panel", S),
    # a "/" in the password (base64 makes them): the path does not start there
    (f"postgresql://app:{S}/x+y@db/panel", f"{S}/x+y"),
    (f"postgresql://app:a/{S}@db:5432/panel?sslmode=require", f"a/{S}"),
    (f"postgresql://app:a/{S}@x@db/panel", f"a/{S}@x"),
]  # fmt: skip


@pytest.mark.parametrize(("db", "meant"), SHAPES)
def test_no_password_shows(db: str, meant: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from teamaccess._cli.config import safe_db_label

    label = safe_db_label(db)
    try:
        read = conninfo_to_dict(db)
    except psycopg.ProgrammingError:
        read = {}  # libpq refuses the URL (at connect, too): what was meant is hidden all the same
    # Whatever libpq takes for a password, in any form it may be written in the URL.
    secrets = [v for k, v in read.items() if k in ("password", "sslpassword") and v]
    for secret in [*secrets, meant]:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in label, (label, read)
    assert S not in label, (label, read)
    assert label.startswith(db.partition("://")[0] + "://")


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        ("postgresql://db?password=p@ss", "postgresql://db?password=***"),
        ("postgresql://db/panel?password=p%40ss&sslmode=require",
         "postgresql://db/panel?password=***&sslmode=require"),
        ("postgresql://u:p@ss@db/panel", "postgresql://u:***@db/panel"),
        ("postgresql://u:pw@db:5432/panel?sslpassword=k&user=v",
         "postgresql://u:***@db:5432/panel?sslpassword=***&user=v"),
        ("postgresql://max@db:5432/panel?sslmode=require",
         "postgresql://max@db:5432/panel?sslmode=require"),
        ("postgresql:///panel?host=/run/postgresql", "postgresql:///panel?host=/run/postgresql"),
    ],
)  # fmt: skip
def test_the_rest_stays_readable(db: str, shown: str) -> None:
    from teamaccess._cli.config import safe_db_label

    assert safe_db_label(db) == shown

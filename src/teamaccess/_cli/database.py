"""The command that prepares the database: ``migrate``."""

from __future__ import annotations

from pathlib import Path

import click

from .app import _settings, cli, json_option
from .config import is_postgres, safe_db_label
from .output import emit_json

__all__ = ["migrate"]


@cli.command()
@json_option
def migrate(as_json: bool) -> None:
    """Create or upgrade the database's schema, e.g. before a rolling deploy.

    Opening the database applies what is missing, once however many processes start
    together; this command does only that, and needs no secret key or mail settings.
    """
    settings = _settings()
    store = settings.store()
    try:
        version = store.schema_version  # type: ignore[attr-defined]
        # What opening the store did: 0 made the tables, None found them up to date.
        before: int | None = getattr(store, "_migrated_from", None)
    finally:
        store.close()
    where = safe_db_label(settings.db)
    if is_postgres(settings.db):
        where += f" (schema {settings.schema})"
    if before is None and Path(settings.db) in settings.created:
        before = 0  # the command made the file; another process may have made its tables
    if as_json:
        # The version before this command: 0 for none, the same number when up to date.
        previous = version if before is None else before
        emit_json({"database": where, "schema_version": version, "previous_version": previous})
        return
    if before == 0:
        click.echo(f"{where}: created, schema version {version}")
    elif before is not None:
        click.echo(f"{where}: upgraded from schema version {before} to {version}")
    else:
        click.echo(f"{where}: schema version {version}, up to date")

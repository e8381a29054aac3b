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
    finally:
        store.close()
    where = safe_db_label(settings.db)
    if is_postgres(settings.db):
        where += f" (schema {settings.schema})"
    if as_json:
        emit_json({"database": where, "schema_version": version})
        return
    if Path(settings.db) in settings.created:
        click.echo(f"{where}: created, schema version {version}")
        return
    click.echo(f"{where}: schema version {version}, up to date")

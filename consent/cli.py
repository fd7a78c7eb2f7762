"""`kodomo people …`: import the person register from a resident-register extract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consent import importer
from core import audit
from core.cli import fail, sub_cli
from core.db import unit_of_work
from core.reasons import DomainError

people_cli = sub_cli("本人（住民記録） / people (person register)")




@people_cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a resident-register extract (CSV: UTF-8, UTF-8 with BOM or CP932); all or nothing.

    Columns: docs/people-import.md. Importing the same file again changes nothing.
    """
    data = file.read_bytes()
    try:
        with unit_of_work() as session:
            result = importer.import_bytes(session, audit.SYSTEM, data)
    except DomainError as error:
        typer.echo("取り込みを中止しました。何も登録されていません。/ Import aborted; nothing was "
                   "imported.", err=True)
        raise fail(error) from error
    typer.echo(f"rows {result.rows}: created {result.created}, updated {result.updated}, "
               f"unchanged {result.unchanged}; guardianship links added {result.links_added}, "
               f"ended {result.links_ended}")

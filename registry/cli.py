"""`kodomo registry …`: import (YAML or CSV, all or nothing), export, and the register PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core import audit, textio
from core.cli import fail, sub_cli
from core.db import unit_of_work
from core.reasons import DomainError
from core.service import organ_by_key
from registry import importer, service

registry_cli = sub_cli("個人情報ファイル簿 / personal-information file register")




@registry_cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str | None, typer.Option("--format", help="yaml or csv (default: by suffix)")]
    = None,
    publish: Annotated[bool, typer.Option(help="publish the entries that must be published")]
    = False,
    reason: Annotated[str, typer.Option(help="why (kept in each file's history)")]
    = "一括取込",
) -> None:
    """Import files and items from YAML or CSV: the whole file is accepted or nothing is."""
    kind = fmt or ("csv" if file.suffix.lower() == ".csv" else "yaml")
    try:
        text = textio.decode(file.read_bytes())
        with unit_of_work() as session:
            records = importer.parse(text, kind)
            result = importer.import_records(session, audit.SYSTEM, records,
                                             f"{reason}（{file.name}）", publish=publish)
    except DomainError as error:
        typer.echo("取り込みを中止しました。何も登録されていません。/ Import aborted; nothing was "
                   "imported.", err=True)
        raise fail(error) from error
    typer.echo(f"created {result.created}, updated {result.updated}, items {result.items}, "
               f"published {result.published}")


@registry_cli.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", help="yaml, json or csv")] = "yaml",
    public: Annotated[bool, typer.Option(help="the public register only (JSON)")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
) -> None:
    """Export the register: all files and items (import format), or the public register."""
    with unit_of_work() as session:
        if public:
            text = service.public_register(session).model_dump_json(indent=2)
        else:
            records = importer.export_records(session)
            text = {"yaml": importer.to_yaml, "json": importer.to_json,
                    "csv": importer.to_csv}.get(fmt, importer.to_yaml)(records)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@registry_cli.command("pdf")
def pdf_command(
    out: Annotated[Path, typer.Argument(help="OUT.pdf")],
    organ: Annotated[str | None, typer.Option(help="one organ's 簿 (organ key)")] = None,
) -> None:
    """Write the published register as PDF (each organ's 簿, each file on a new page)."""
    try:
        with unit_of_work() as session:
            if organ is not None:
                organ_by_key(session, organ)
            content = service.register_pdf(session, organ)
    except DomainError as error:
        raise fail(error) from error
    out.write_bytes(content)
    typer.echo(f"wrote {out} ({len(content):,} bytes)")

"""`kodomo governance …`: export and apply privacy-as-code bundles, and print their JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from core import audit
from core.cli import fail, sign_in_as, sub_cli
from core.db import get_engine, unit_of_work
from core.reasons import DomainError
from governance import bundle

governance_cli = sub_cli("利用目的・経路・承認 / purposes, routes and authorisations")


def _fail(error: DomainError, headline: str) -> typer.Exit:
    typer.echo(headline, err=True)
    return fail(error)


@governance_cli.command("export")
def export_command(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write here, not to stdout")]
    = None,
) -> None:
    """Export organs, staff roles, the register, purposes, routes and authorisations as YAML."""
    with Session(get_engine(), expire_on_commit=False) as session:
        text = bundle.to_yaml(bundle.export_bundle(session))
        session.rollback()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@governance_cli.command("apply")
def apply_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the changes; write nothing")]
    = False,
    as_login: Annotated[str | None, typer.Option(
        "--as", help="submit / approve as this login where the bundle says so")] = None,
) -> None:
    """Apply a bundle: all of it or nothing; approvals only as the very approver (--as)."""
    try:
        parsed = bundle.parse_bundle(file.read_text(encoding="utf-8-sig"))
    except DomainError as error:
        raise _fail(error, "バンドルが正しくありません。何も適用していません。/ The bundle is not "
                           "valid; nothing was applied.") from error
    if dry_run:
        try:
            with Session(get_engine(), expire_on_commit=False) as session:
                changes = bundle.plan(session, parsed, as_login)
                session.rollback()
        except DomainError as error:
            raise _fail(error, "バンドルが正しくありません。/ The bundle is not valid.") from error
        for change in changes:
            if change.action != "unchanged":
                typer.echo(change.line())
        if as_login:
            typer.echo(f"(dry run: --as {as_login} was not signed in; the submit / approve "
                       "lines assume it would be)")
        typer.echo(f"dry run, nothing written: {bundle.summary(changes)}")
        return
    principal = sign_in_as(as_login) if as_login else None
    try:
        with unit_of_work() as session:
            changes = bundle.apply(session, audit.SYSTEM, parsed, principal)
    except DomainError as error:
        raise _fail(error, "適用を中止しました。何も書き込んでいません。/ Apply aborted; nothing "
                           "was written.") from error
    for change in changes:
        if change.action != "unchanged":
            typer.echo(change.line())
    typer.echo(f"applied: {bundle.summary(changes)}")


@governance_cli.command("schema")
def schema_command() -> None:
    """Print the bundle's JSON Schema (docs/bundle.schema.json)."""
    typer.echo(bundle.json_schema_text(), nl=False)

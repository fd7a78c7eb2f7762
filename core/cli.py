"""Core's sub-commands: database migrations, staff accounts, the audit chain, keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from alembic import command
from alembic.config import Config
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit, service
from core.auth import Principal, authenticate, principal_for, staff_principal_from_token
from core.crypto import commit_rotation, rotate_keys
from core.db import get_engine, metadata, unit_of_work
from core.demo import mark_database
from core.keys import ensure_keyring
from core.reasons import DomainError, NotAuthenticated, Reason
from core.settings import get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def sub_cli(help_text: str) -> typer.Typer:
    """A sub-command group; tracebacks stay short so that secrets never reach the screen."""
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False)


db_cli = sub_cli("データベース / database")
users_cli = sub_cli("職員アカウント / staff accounts")
audit_cli = sub_cli("監査ログ / audit chain")
keys_cli = sub_cli("暗号鍵 / keys")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def fail(error: DomainError) -> typer.Exit:
    """Print every reason as `row N [field] code: ja / en` and exit with status 2."""
    for reason in error.reasons:
        where = []
        if reason.row is not None:
            where.append(f"row {reason.row}")
        if reason.field:
            where.append(f"[{reason.field}]")
        prefix = " ".join(where)
        typer.echo(f"{prefix + ' ' if prefix else ''}{reason.code}: {reason.message_ja} / "
                   f"{reason.message_en}", err=True)
    return typer.Exit(2)


def sign_in_as(login: str) -> Principal:
    """The principal of a command's --as LOGIN: KODOMO_TOKEN (a staff bearer token of that
    login), else a password (KODOMO_PASSWORD or a prompt). A failed sign-in is counted and
    audited like any other, then the command stops with exit status 2."""
    token = os.environ.get("KODOMO_TOKEN")
    password = None if token else (os.environ.get("KODOMO_PASSWORD") or typer.prompt(
        f"{login} のパスワード / password", hide_input=True))
    failure: DomainError | None = None
    principal: Principal | None = None
    with unit_of_work() as session:
        try:
            if token:
                principal = staff_principal_from_token(session, token)
                if principal.login != login:
                    raise NotAuthenticated(Reason.of("auth.token_other_login",
                                                     token_login=principal.login, login=login))
            else:
                assert password is not None
                principal = principal_for(session, authenticate(session, login, password))
        except DomainError as error:
            failure = error  # the failed attempt is committed with the block, then refused
    if failure is not None:
        typer.echo(f"--as {login}: サインインできません / cannot sign in", err=True)
        raise fail(failure)
    assert principal is not None
    return principal


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option(
        "sqlalchemy.url", (url or get_settings().effective_database_url).replace("%", "%%")
    )
    return config


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(), revision)
    if get_settings().demo:
        with unit_of_work() as session:
            mark_database(session, "db upgrade")
        typer.echo("デモ用データベースとして記録しました / marked as a demo database")
    typer.echo(f"database at {revision}")


@db_cli.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m")]) -> None:
    """Autogenerate a migration from the models (developers)."""
    command.revision(alembic_config(), message=message, autogenerate=True)


@users_cli.command("create")
def users_create(
    login: str,
    name: Annotated[str, typer.Option(help="表示名 / display name")],
    role: Annotated[list[str], typer.Option(help="ROLE@ORGAN[/DEPARTMENT], repeatable")],
    department: Annotated[str | None, typer.Option(help="所属部署キー")] = None,
) -> None:
    """Create a staff account with roles; the password is asked for (or KODOMO_PASSWORD)."""
    password = os.environ.get("KODOMO_PASSWORD") or typer.prompt(
        "パスワード / password", hide_input=True, confirmation_prompt=True
    )
    try:
        with unit_of_work() as session:
            service.create_account(
                session,
                audit.SYSTEM,
                login=login,
                display_name=name,
                password=password,
                department_key=department,
            )
            for spec in role:
                role_name, _, place = spec.partition("@")
                organ_key, _, department_key = place.partition("/")
                service.grant_role(
                    session,
                    audit.SYSTEM,
                    login=login,
                    role=role_name,
                    organ_key=organ_key,
                    department_key=department_key or None,
                )
    except DomainError as error:
        raise fail(error) from error
    typer.echo(f"created {login}")


def _reader_engine() -> tuple[Engine, bool]:
    """The engine verify reads through, and whether it is a private one to dispose of.

    core.db begins every SQLite transaction IMMEDIATE, i.e. with the write lock, which a
    verify of a long chain would hold for its whole run and so stall (or, past the busy
    timeout, fail) every writer. Verify only reads, so on SQLite it gets a plain connection
    whose SELECTs read a WAL snapshot without taking the write lock.
    """
    engine = get_engine()
    if engine.dialect.name != "sqlite":
        return engine, False
    return create_engine(engine.url), True


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check every link and every signed checkpoint; name the first broken one."""
    engine, private = _reader_engine()
    try:
        with progress_bar() as bar, engine.connect() as connection:
            task = bar.add_task("verify", total=None)
            report = audit.verify(
                connection,
                audit.public_keys(),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        if private:
            engine.dispose()
    if report.problem is not None:
        problem = report.problem
        typer.echo(f"BROKEN at seq {problem.seq}: {problem.code}", err=True)
        typer.echo(f"  {problem.message_ja}", err=True)
        typer.echo(f"  {problem.message_en}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {report.events} events, {report.checkpoints} signed checkpoints")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's current head now."""
    with unit_of_work() as session:
        checkpoint = audit.checkpoint_now(session)
    typer.echo(
        "chain is empty"
        if checkpoint is None
        else f"signed seq {checkpoint.seq} with key {checkpoint.key_id}"
    )


@keys_cli.command("init")
def keys_init() -> None:
    """Create a new keyring at KODOMO_KEY_FILE (refuses to overwrite one)."""
    path = get_settings().effective_key_file
    if path.exists():
        typer.echo(f"{path} already exists; refusing to overwrite it", err=True)
        raise typer.Exit(2)
    keyring = ensure_keyring(path)
    typer.echo(f"created {path}; back it up apart from the database")
    typer.echo(
        f"  field key {keyring.active_field_key}, hash key {keyring.active_hmac_key}, "
        f"audit signing key {keyring.audit_signing_kid}"
    )


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """New field and hash keys; re-encrypt and re-hash everything; then retire the old keys."""
    path = get_settings().effective_key_file
    with progress_bar() as bar, Session(get_engine(), expire_on_commit=False) as session:
        task = bar.add_task("re-encrypt", total=None)
        try:
            report = rotate_keys(
                session,
                metadata,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            audit.append(
                session,
                "core.keys_rotated",
                details={
                    "new_field_key": report.new_field_kid,
                    "new_hash_key": report.new_hmac_kid,
                    "retired_field_keys": sorted(report.retired_field_kids),
                    "retired_hash_keys": sorted(report.retired_hmac_kids),
                    "values_reencrypted": report.values_reencrypted,
                    "hashes_recomputed": report.hashes_recomputed,
                },
            )
            backup = commit_rotation(session, report.keyring, path)
        except BaseException:
            session.rollback()
            raise
    typer.echo(
        f"rotated: {report.values_reencrypted} values re-encrypted, "
        f"{report.hashes_recomputed} hashes recomputed in {len(report.tables)} tables"
    )
    typer.echo(
        f"new keys: field {report.new_field_kid}, hash {report.new_hmac_kid}; "
        f"retired: {', '.join(sorted(report.retired_field_kids | report.retired_hmac_kids))}"
    )
    typer.echo(f"previous keyring backed up to {backup}; destroy it once the new one is backed up")

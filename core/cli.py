"""Core's sub-commands: database migrations, staff accounts, the audit chain, keys."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
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

from core import audit, policies, service, witness
from core.auth import Principal, authenticate, principal_for, staff_principal_from_token
from core.crypto import commit_rotation, rotate_keys
from core.db import get_engine, metadata, unit_of_work
from core.demo import mark_database
from core.keys import (
    Keyring,
    KeyringError,
    backup_keyring,
    ensure_keyring,
    load_keyring,
    reset_keyring_cache,
    save_keyring,
)
from core.models import OrganKind, OutsideBodyKind, Role
from core.reasons import DomainError, Forbidden, NotAuthenticated, Reason
from core.settings import SettingsError, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def sub_cli(help_text: str) -> typer.Typer:
    """A sub-command group; tracebacks stay short so that secrets never reach the screen."""
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False)


db_cli = sub_cli("データベース / database")
users_cli = sub_cli("職員アカウント / staff accounts")
org_cli = sub_cli("組織（機関・部署・外部機関） / organs, departments, outside bodies")
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


def setting_error(error: SettingsError) -> typer.Exit:
    """Print a wrong setting (every problem of a policy file, one a line) and exit with 2."""
    problems = getattr(error, "problems", None) or [(error.variable, error.problem)]
    for key, problem in problems:
        typer.echo(f"設定エラー / setting error: {key}: {problem}", err=True)
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
def audit_verify(
    witness_file: Annotated[
        Path | None,
        typer.Option("--witness", help="compare with this copy of the witness (e.g. exported "
                     "from the syslog collector) instead of the configured one"),
    ] = None,
) -> None:
    """Check every link, every signed checkpoint and the witness; name the first problem."""
    sink = witness.FileWitness(witness_file) if witness_file else witness.configured()
    engine, private = _reader_engine()
    try:
        with progress_bar() as bar, engine.connect() as connection:
            task = bar.add_task("verify", total=None)
            report = audit.verify_against_witness(
                connection,
                sink=sink,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        if private:
            engine.dispose()
    for ja, en in report.warnings:
        typer.echo(f"WARNING: {ja} / {en}", err=True)
    if report.problem is not None:
        problem = report.problem
        typer.echo(f"BROKEN at seq {problem.seq}: {problem.code}", err=True)
        typer.echo(f"  {problem.message_ja}", err=True)
        typer.echo(f"  {problem.message_en}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"OK: {report.events} events, {report.checkpoints} signed checkpoints, "
        f"{report.witnessed} witness entries ({sink.describe()})"
    )


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's current head now (also written to the witness)."""
    with unit_of_work() as session:
        checkpoint = audit.checkpoint_now(session)
    typer.echo(
        "chain is empty"
        if checkpoint is None
        else f"signed seq {checkpoint.seq} with key {checkpoint.key_id}"
    )


@audit_cli.command("reanchor")
def audit_reanchor(
    confirm: Annotated[bool, typer.Option("--confirm", help="required: this accepts the "
                                          "database's current state as the witnessed one")] = False,
) -> None:
    """After a restore from backup: make the restored chain the witnessed state from now on.

    The chain must verify on its own; the witness keeps its older lines (the record of what the
    restore lost) and gets a signed re-anchoring line; the re-anchoring is an audit event too.
    """
    if not confirm:
        typer.echo("re-anchoring accepts the database as it is; read docs/security.md, then "
                   "run again with --confirm", err=True)
        raise typer.Exit(2)
    engine, private = _reader_engine()
    try:
        with engine.connect() as connection:
            report = audit.verify(connection, audit.public_keys())
            if report.problem is not None:
                typer.echo(f"BROKEN at seq {report.problem.seq}: {report.problem.code}; "
                           "not re-anchored", err=True)
                raise typer.Exit(1)
            try:
                entries = witness.configured().read()
            except witness.WitnessError as error:
                typer.echo(f"{error.variable}: {error.problem}; not re-anchored", err=True)
                raise typer.Exit(1) from error
            lost = max((e.seq for e in entries or ()), default=0)
            entry = audit.reanchor(connection)
    finally:
        if private:
            engine.dispose()
    with unit_of_work() as session:
        audit.append(session, "core.audit_reanchored",
                     details={"seq": entry.seq, "witness_seq_before": lost})
        audit.checkpoint_now(session)
    typer.echo(f"re-anchored the witness at seq {entry.seq} (it had seen seq {lost})")


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
def keys_rotate(
    fields: Annotated[bool, typer.Option("--fields", help="field and hash keys (the default): "
                                         "re-encrypt and re-hash everything")] = False,
    audit_keys: Annotated[bool, typer.Option("--audit", help="audit chain and checkpoint "
                                             "keys: new links and checkpoints use the new "
                                             "keys; nothing is re-hashed")] = False,
    receipts: Annotated[bool, typer.Option("--receipts", help="receipt signing key: new "
                                           "receipts use it; old ones still verify")] = False,
) -> None:
    """Rotate keys. Old audit and receipt keys stay in the keyring (public halves of the
    signing keys) so that everything signed before still verifies."""
    path = get_settings().effective_key_file
    if not (fields or audit_keys or receipts):
        fields = True
    try:
        current = load_keyring(path)
    except KeyringError as error:
        typer.echo(f"鍵リングがありません / no keyring: {error.variable}: {error.problem}",
                   err=True)
        raise typer.Exit(2) from error
    if audit_keys or receipts:
        _rotate_signing_keys(path, current, audit_keys=audit_keys, receipts=receipts)
    if fields:
        _rotate_field_keys(path)


def _rotate_signing_keys(path: Path, current: Keyring, *, audit_keys: bool,
                         receipts: bool) -> None:
    # The new keyring holds every old key too, so it is written first: should the database
    # step below fail, nothing signed or chained is left without its key.
    new = current
    if audit_keys:
        new = new.with_new_audit_keys()
    if receipts:
        new = new.with_new_receipt_key()
    backup = backup_keyring(path)
    save_keyring(new, path)
    reset_keyring_cache()
    details: dict[str, object] = {}
    if audit_keys:
        details.update(new_chain_key=new.active_audit_chain_key,
                       retired_chain_key=current.active_audit_chain_key,
                       new_audit_signing_key=new.audit_signing_kid,
                       retired_audit_signing_key=current.audit_signing_kid)
    if receipts:
        details.update(new_receipt_key=new.receipt_signing_kid,
                       retired_receipt_key=current.receipt_signing_kid)
    with unit_of_work() as session:
        # Keyed from here on: the first keyed event marks an unkeyed chain's head (upgrade in
        # place), and the checkpoint after it is signed with the new signing key.
        audit.append(session, "core.keys_rotated", details=details)
        audit.checkpoint_now(session)
    for name, value in details.items():
        typer.echo(f"  {name}: {value}")
    typer.echo(f"previous keyring backed up to {backup}; keep the retired keys in the keyring")


def _rotate_field_keys(path: Path) -> None:
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


# ---------------------------------------------------------------- the organisation's lifecycle

AsAdmin = Annotated[str | None, typer.Option(
    "--as", help="an administrator's login (signed in); omitted: the operator on the server, "
    "as for `users create`")]


def admin_actor(as_login: str | None) -> audit.Actor:
    """The actor of an organisation change: the administrator `--as` names (signed in), or the
    system (the operator on the server itself)."""
    if as_login is None:
        return audit.SYSTEM
    principal = sign_in_as(as_login)
    if not principal.has_role(Role.admin):
        raise fail(Forbidden(Reason.of("auth.role_required", roles="システム管理者 / admin")))
    return principal.actor(Role.admin)


class UnitChoice(enum.StrEnum):
    organ = "organ"
    department = "department"
    body = "body"

    @property
    def kind(self) -> str:
        return "outside_body" if self is UnitChoice.body else self.value


def _run(change: Callable[[Session], object], done: str) -> None:
    try:
        with unit_of_work() as session:
            change(session)
    except DomainError as error:
        raise fail(error) from error
    typer.echo(done)


@org_cli.command("list")
def org_list() -> None:
    """Every organ, department and outside body, deactivated ones marked."""
    with unit_of_work(writes=False) as session:
        organs = {o.id: o for o in service.list_organs(session)}
        for organ in organs.values():
            typer.echo(f"organ\t{organ.key}\t{_state(organ.is_active)}\t{organ.name_ja}")
        for department in service.list_departments(session):
            owner = organs.get(department.organ_id)
            typer.echo(f"department\t{department.key}\t{_state(department.is_active)}\t"
                       f"{department.name_ja}\t({owner.key if owner else '?'})")
        for body in service.list_outside_bodies(session):
            typer.echo(f"body\t{body.key}\t{_state(body.is_active)}\t{body.name_ja}")


def _state(active: bool) -> str:
    return "active" if active else "deactivated"


@org_cli.command("update")
def org_update(
    what: UnitChoice,
    key: str,
    name_ja: Annotated[str | None, typer.Option(help="名称 / Japanese name")] = None,
    name_en: Annotated[str | None, typer.Option(help="English name")] = None,
    organ_kind: Annotated[OrganKind | None, typer.Option(help="organ: 種別")] = None,
    body_kind: Annotated[OutsideBodyKind | None, typer.Option(help="body: 種別")] = None,
    parent: Annotated[str | None, typer.Option(help="department: parent department key")] = None,
    top_level: Annotated[bool, typer.Option(help="department: no parent")] = False,
    public_body: Annotated[bool | None, typer.Option(
        "--public-body/--not-public-body", help="body: a public body (69(2)(iii))")] = None,
    as_login: AsAdmin = None,
) -> None:
    """Change an organ's, department's or outside body's names (and kind, parent, public body)."""
    actor = admin_actor(as_login)

    def change(session: Session) -> None:
        if what is UnitChoice.organ:
            service.update_organ(session, actor, key, kind=organ_kind, name_ja=name_ja,
                                 name_en=name_en)
        elif what is UnitChoice.department:
            if parent is not None or top_level:
                service.update_department(session, actor, key, name_ja=name_ja,
                                          name_en=name_en, parent_key=parent)
            else:
                service.update_department(session, actor, key, name_ja=name_ja,
                                          name_en=name_en)
        else:
            service.update_outside_body(session, actor, key, kind=body_kind, name_ja=name_ja,
                                        name_en=name_en, is_public_body=public_body)
    _run(change, f"updated {what.value} {key}")


@org_cli.command("deactivate")
def org_deactivate(what: UnitChoice, key: str, as_login: AsAdmin = None) -> None:
    """Deactivate it: refused, with every record to move or end first, while routes, files,
    purposes, grants, departments or accounts still name it."""
    actor = admin_actor(as_login)
    _run(lambda session: service.deactivate_unit(
        session, actor, service.unit_by_key(session, what.kind, key)),
        f"deactivated {what.value} {key}")


@org_cli.command("reactivate")
def org_reactivate(what: UnitChoice, key: str, as_login: AsAdmin = None) -> None:
    """Make a deactivated organ, department or outside body choosable again."""
    actor = admin_actor(as_login)
    _run(lambda session: service.reactivate_unit(
        session, actor, service.unit_by_key(session, what.kind, key)),
        f"reactivated {what.value} {key}")


@users_cli.command("update")
def users_update(
    login: str,
    name: Annotated[str | None, typer.Option(help="表示名 / display name")] = None,
    department: Annotated[str | None, typer.Option(help="所属部署キー")] = None,
    no_department: Annotated[bool, typer.Option(help="所属部署なし / no department")] = False,
    as_login: AsAdmin = None,
) -> None:
    """Change an account's display name or department."""
    actor = admin_actor(as_login)

    def change(session: Session) -> None:
        if department is not None or no_department:
            service.change_account(session, actor, login, display_name=name,
                                   department_key=department)
        else:
            service.change_account(session, actor, login, display_name=name)
    _run(change, f"updated {login}")


@users_cli.command("deactivate")
def users_deactivate(login: str, as_login: AsAdmin = None) -> None:
    """The account can no longer sign in, and every token it holds stops working at once."""
    actor = admin_actor(as_login)
    _run(lambda session: service.change_account(session, actor, login, active=False),
         f"deactivated {login}")


@users_cli.command("reactivate")
def users_reactivate(login: str, as_login: AsAdmin = None) -> None:
    """The account can sign in again (tokens issued before deactivation stay revoked)."""
    actor = admin_actor(as_login)
    _run(lambda session: service.change_account(session, actor, login, active=True),
         f"reactivated {login}")
# ---------------------------------------------------------------- policies

policies_cli = sub_cli("方針（ポリシー） / policies")
DOC_BEGIN, DOC_END = "<!-- policies:begin -->", "<!-- policies:end -->"


@policies_cli.command("show")
def policies_show() -> None:
    """Every policy key in force, with its value and where it comes from."""
    for view in policies.in_force():
        typer.echo(f"[{view.section}] {view.title_ja} / {view.title_en}")
        for key in view.keys:
            source = policies.SOURCES[key.source][0]
            typer.echo(f"  {key.field} = {key.value}  ({source}; [{key.marker}] {key.basis})")


@policies_cli.command("check")
def policies_check(file: Annotated[Path, typer.Argument(help="TOML policy file")]) -> None:
    """Check a policy file as the start would (unknown keys, wrong values), without using it."""
    try:
        policies.check_policy_file(file)
    except SettingsError as error:
        raise setting_error(error) from error
    typer.echo(f"{file}: 問題はありません / no problems")


@policies_cli.command("doc")
def policies_doc(
    write: Annotated[Path | None, typer.Option(help="rewrite the generated part of this file")]
    = None,
) -> None:
    """The policy reference of docs/policies.md, generated from the policies' declarations."""
    generated = policies.reference_markdown()
    if write is None:
        typer.echo(generated, nl=False)
        return
    text = write.read_text(encoding="utf-8")
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    write.write_text(f"{text[:start]}\n{generated}{text[end:]}", encoding="utf-8")
    typer.echo(f"{write}: updated")

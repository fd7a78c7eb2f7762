"""`kodomo governance …`: export and apply privacy-as-code bundles, and print their JSON Schema."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from core import audit
from core.cli import fail, progress_bar, sign_in_as, sub_cli
from core.clock import as_utc
from core.db import get_engine, unit_of_work
from core.reasons import DomainError, Forbidden
from governance import gate, jobs, worker
from governance.bundle import plan as bundle_plan
from governance.bundle.export import export_bundle
from governance.bundle.format import json_schema_text, parse_bundle, to_yaml

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
        text = to_yaml(export_bundle(session))
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
        parsed = parse_bundle(file.read_bytes())
    except DomainError as error:
        raise _fail(error, "バンドルが正しくありません。何も適用していません。/ The bundle is not "
                           "valid; nothing was applied.") from error
    if dry_run:
        try:
            with Session(get_engine(), expire_on_commit=False) as session:
                changes = bundle_plan.plan(session, parsed, as_login)
                session.rollback()
        except DomainError as error:
            raise _fail(error, "バンドルが正しくありません。/ The bundle is not valid.") from error
        for change in changes:
            if change.action != "unchanged":
                typer.echo(change.line())
        if as_login:
            typer.echo(f"(dry run: --as {as_login} was not signed in; the submit / approve "
                       "lines assume it would be)")
        typer.echo(f"dry run, nothing written: {bundle_plan.summary(changes)}")
        return
    principal = sign_in_as(as_login) if as_login else None
    try:
        with unit_of_work() as session:
            changes = bundle_plan.apply(session, audit.SYSTEM, parsed, principal)
    except DomainError as error:
        raise _fail(error, "適用を中止しました。何も書き込んでいません。/ Apply aborted; nothing "
                           "was written.") from error
    for change in changes:
        if change.action != "unchanged":
            typer.echo(change.line())
    typer.echo(f"applied: {bundle_plan.summary(changes)}")


@governance_cli.command("schema")
def schema_command() -> None:
    """Print the bundle's JSON Schema (docs/bundle.schema.json)."""
    typer.echo(json_schema_text(), nl=False)


gate_cli = sub_cli("ジョブの可否判定 / the job gate")
jobs_cli = sub_cli("ジョブ / jobs")


def _print_decision(decision: gate.Decision, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))
        return
    verdict = "許可 / ALLOWED" if decision.allowed else "不許可 / REFUSED"
    typer.echo(f"{verdict}: {decision.kind.value} for {decision.purpose_key} "
               f"→ {decision.recipient}")
    for flow in decision.flows:
        via = f" under {flow.authorisation}" if flow.authorisation else ""
        typer.echo(f"  {flow.item}: route {flow.route} ({flow.kind.value}){via}")
    if decision.pia:
        typer.echo(f"  PIA {decision.pia['id']} v{decision.pia['version']} "
                   f"design {decision.pia['design_hash'][:12]}")
    for reason in decision.reasons:
        where = f" [{reason.field}]" if reason.field else ""
        typer.echo(f"  ✗{where} {reason.code}: {reason.message_ja} / {reason.message_en}")


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as error:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}") from error


@gate_cli.command("explain")
def gate_explain(
    purpose: Annotated[str, typer.Option(help="purpose key")],
    kind: Annotated[gate.JobKind, typer.Option(help="job kind")],
    items: Annotated[str, typer.Option(help="item keys, comma separated")],
    as_login: Annotated[str, typer.Option("--as", help="evaluate as this staff login")],
    at: Annotated[str | None, typer.Option(help="ISO time to evaluate at")] = None,
    to_organ: Annotated[str | None, typer.Option(help="recipient organ key")] = None,
    to_body: Annotated[str | None, typer.Option(help="recipient outside body key")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The decision a job would get now (or --at); explain is not recorded as a decision."""
    principal = sign_in_as(as_login)
    request = gate.JobRequest(kind=kind, purpose=purpose,
                              items=[i.strip() for i in items.split(",") if i.strip()],
                              principal=principal, recipient_organ=to_organ,
                              recipient_body=to_body, at=_parse_at(at))
    with Session(get_engine()) as session:
        decision = gate.explain(session, request)
    _print_decision(decision, as_json)
    raise typer.Exit(0 if decision.allowed else 1)


@jobs_cli.command("submit")
def jobs_submit(
    purpose: Annotated[str, typer.Option(help="purpose key")],
    kind: Annotated[gate.JobKind, typer.Option(help="job kind")],
    items: Annotated[str, typer.Option(help="item keys, comma separated")],
    as_login: Annotated[str, typer.Option("--as", help="submit as this staff login")],
    to_organ: Annotated[str | None, typer.Option(help="recipient organ key")] = None,
    to_body: Annotated[str | None, typer.Option(help="recipient outside body key")] = None,
    params: Annotated[str, typer.Option(help="the kind's parameters as a JSON object")] = "{}",
) -> None:
    """Submit a job; the gate decides and its decision is recorded either way."""
    try:
        given = json.loads(params)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--params") from error
    if not isinstance(given, dict):
        raise typer.BadParameter("a JSON object, e.g. '{\"threshold\": 10}'",
                                 param_hint="--params")
    principal = sign_in_as(as_login)
    request = gate.JobRequest(kind=kind, purpose=purpose,
                              items=[i.strip() for i in items.split(",") if i.strip()],
                              principal=principal, recipient_organ=to_organ,
                              recipient_body=to_body, params=given)
    try:
        with unit_of_work() as session:
            decision, job = jobs.submit(session, request)
    except DomainError as error:
        raise fail(error) from error
    _print_decision(decision, False)
    if job is None:
        raise typer.Exit(1)
    typer.echo(f"job {job.id} submitted")


@jobs_cli.command("list")
def jobs_list() -> None:
    """The latest jobs."""
    with Session(get_engine()) as session:
        for job in jobs.list_jobs(session):
            population = "-" if job.population_count is None else job.population_count
            line = _progress_line(jobs.describe(job)) if job.state == "started" else ""
            typer.echo(f"{job.id:>6}  {job.state:<10} {job.kind:<10} "
                       f"purpose {job.purpose_id}  population {population}  {line}".rstrip())


@jobs_cli.command("show")
def jobs_show(job_id: int) -> None:
    """One job as JSON."""
    with Session(get_engine()) as session:
        try:
            described = jobs.describe(jobs.get_job(session, job_id))
        except DomainError as error:
            raise fail(error) from error
    typer.echo(json.dumps(described, ensure_ascii=False, indent=2, default=str))


@jobs_cli.command("cancel")
def jobs_cancel(job_id: int, as_login: Annotated[str, typer.Option("--as")]) -> None:
    """Cancel a submitted job (its requester or a privacy officer)."""
    principal = sign_in_as(as_login)
    try:
        with unit_of_work() as session:
            jobs.cancel(session, principal, job_id)
    except DomainError as error:
        raise fail(error) from error
    typer.echo(f"job {job_id} cancelled")


def _progress_line(described: dict[str, Any]) -> str:
    progress = described["progress"]
    if not progress.get("stage"):
        return ""
    percent = "" if progress["percent"] is None else f" {progress['percent']}%"
    return f"{progress['stage']} {progress['done']}/{progress['total']}{percent}"


@jobs_cli.command("run")
def jobs_run(job_id: int) -> None:
    """Claim a waiting job and run it here: the gate checks again at start."""
    with progress_bar() as bar:
        task = bar.add_task(f"job {job_id}", total=None)

        def show(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"job {job_id}: {stage}", completed=done, total=total)

        try:
            job = jobs.run(get_engine(), job_id, progress=show)
        except DomainError as error:
            raise fail(error) from error
    typer.echo(f"job {job_id}: {job.state}")
    if job.state != "finished":
        if job.error_code:
            typer.echo(f"  {job.error_code}", err=True)
        raise typer.Exit(1)


@jobs_cli.command("progress")
def jobs_progress(job_id: int) -> None:
    """A job's state and its last reported progress (stage, done / total)."""
    with Session(get_engine()) as session:
        try:
            described = jobs.describe(jobs.get_job(session, job_id))
        except DomainError as error:
            raise fail(error) from error
    line = _progress_line(described)
    typer.echo(f"job {job_id}: {described['state']}" + (f"  {line}" if line else ""))


@jobs_cli.command("retry")
def jobs_retry(
    job_id: int,
    as_login: Annotated[str, typer.Option("--as", help="the requester or a privacy officer")],
    run_here: Annotated[bool, typer.Option("--run", help="run it here instead of a worker")]
    = False,
) -> None:
    """Rerun a failed job under its start decision and population, if the gate confirms that
    nothing job-level changed (no one-off run is consumed again)."""
    principal = sign_in_as(as_login)
    try:
        with unit_of_work() as session:
            job, decision, problems = jobs.retry(session, principal, job_id)
    except DomainError as error:
        raise fail(error) from error
    if problems:
        typer.echo("再実行できません。/ The job cannot be retried.", err=True)
        raise fail(Forbidden(problems))
    if decision is not None:
        typer.echo(f"gate: allowed again ({decision.id[:8]}); start decision "
                   f"{(job.start_decision_id or '')[:8]} kept")
    typer.echo(f"job {job_id}: {job.state}")
    if run_here:
        jobs_run(job_id)


@jobs_cli.command("recover")
def jobs_recover(
    dead_after: Annotated[float | None, typer.Option(
        help="seconds without a heartbeat (default KODOMO_WORKER_DEAD_AFTER_SECONDS)")] = None,
) -> None:
    """Fail the jobs whose worker stopped answering, leaving nothing of them (for cron)."""
    recovered = jobs.recover(get_engine(), dead_after_seconds=dead_after)
    for job_id in recovered:
        typer.echo(f"job {job_id}: recovered as failed")
    typer.echo(f"{len(recovered)} job(s) recovered")


def run_worker(poll_seconds: float = 2.0, once: bool = False,
               worker_id: str | None = None) -> int:
    """Run waiting jobs one at a time (see governance.worker); returns how many were run."""
    return worker.run_worker(get_engine(), worker_id=worker_id, poll_seconds=poll_seconds,
                             once=once, report=lambda line: typer.echo(line, err=True))

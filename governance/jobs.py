"""The job lifecycle: submit (gate), start (gate again, consume runs, population), run, finish."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import column, insert, literal, table, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from consent import eligibility
from consent.rules import body_recipient, organ_recipient
from core import audit
from core.auth import Principal, principal_for
from core.clock import as_utc, utcnow
from core.db import TemporaryTableAs, get_by, is_postgres, unit_of_work
from core.models import StaffAccount
from core.reasons import Conflict, Forbidden, Reason
from governance import gate
from governance.models import (
    Authorisation,
    Job,
    JobPopulation,
    JobState,
    Purpose,
)
from governance.rules import parse_json_object


@dataclass
class JobContext:
    """What a handler gets: its transaction, the job, the start decision and the population."""

    session: Session
    job: Job
    decision: gate.Decision
    progress: Callable[[int, int], None] = field(default=lambda done, total: None)

    def population(self) -> Any:
        """A query of the person ids this job may touch."""
        return sa_select(col(JobPopulation.person_id)).where(
            col(JobPopulation.job_id) == self.job.id
        )


@dataclass(frozen=True)
class JobResult:
    counts: dict[str, int] = field(default_factory=dict)


Handler = Callable[[JobContext], JobResult]
_handlers: dict[str, Handler] = {}


def register_handler(kind: gate.JobKind | str, handler: Handler) -> None:
    """Wire a job kind to its handler (main.py does this, so governance imports no job package)."""
    _handlers[str(kind)] = handler


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


def get_job(session: Session, job_id: int) -> Job:
    return get_by(session, Job, "jobs.unknown_job", id=job_id)


def list_jobs(session: Session, limit: int = 100) -> list[Job]:
    return list(session.exec(select(Job).order_by(col(Job.id).desc()).limit(limit)).all())


def _request_of(session: Session, job: Job, at: datetime | None) -> gate.JobRequest:
    account = session.get(StaffAccount, job.requester_id)
    assert account is not None
    purpose = session.get(Purpose, job.purpose_id)
    assert purpose is not None
    return gate.JobRequest(
        kind=gate.JobKind(job.kind), purpose=purpose.key, items=json.loads(job.items),
        principal=principal_for(session, account), recipient_organ=job.recipient_organ,
        recipient_body=job.recipient_body, at=at,
    )


def submit(session: Session, request: gate.JobRequest) -> tuple[gate.Decision, Job | None]:
    """Ask the gate; a refused submission creates no job (its recorded decision is the record)."""
    decision = gate.check(session, request)
    if not decision.allowed:
        return decision, None
    assert decision.purpose_id is not None
    job = Job(kind=request.kind.value, purpose_id=decision.purpose_id,
              items=json.dumps(sorted(request.items), ensure_ascii=False),
              recipient_organ=request.recipient_organ, recipient_body=request.recipient_body,
              requester_id=request.principal.account_id, submit_decision_id=decision.id)
    session.add(job)
    session.flush()
    audit.append(session, "jobs.submitted", actor=request.principal.actor(),
                 target_type="job", target_id=job.id, purpose_id=job.purpose_id,
                 decision_id=decision.id, details={"kind": job.kind})
    return decision, job


def subjects_query(purpose: Purpose, at: datetime) -> Any:
    """The purpose's subjects in the person register, as a query of ids (age per 年齢計算法)."""
    rule = parse_json_object(purpose.subjects_rule)
    low, high = int(rule.get("min_age", 0)), int(rule.get("max_age", -1))  # type: ignore[call-overload]
    return eligibility.population_of_children(low, high, at)


def _consume_runs(session: Session, decision: gate.Decision) -> list[Reason]:
    """Take one run of every one-off authorisation atomically; the loser of a race is refused."""
    problems: list[Reason] = []
    for key in decision.one_off_authorisations:
        taken = session.execute(
            update(Authorisation)
            .where(col(Authorisation.key) == key,
                   col(Authorisation.runs_used) < col(Authorisation.runs_allowed))
            .values(runs_used=col(Authorisation.runs_used) + 1)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            problems.append(Reason.of("jobs.run_taken", key=key, refs={"authorisation": key}))
    return problems


def _population_hash(session: Session, job_id: int) -> tuple[int, str]:
    """The population's size and SHA-256 over its ids in byte order, one per line."""
    digest = hashlib.sha256()
    count = 0
    rows = session.execute(sa_select(col(JobPopulation.person_id))
                           .where(col(JobPopulation.job_id) == job_id)
                           .order_by(col(JobPopulation.person_id))).scalars()
    for person_id in rows:
        digest.update(person_id.encode("ascii"))
        digest.update(b"\n")
        count += 1
    return count, digest.hexdigest()


def _write_population(session: Session, job_id: int, eligible: Any) -> tuple[int, str]:
    """Write the eligible ids as the job's population; return its size and hash.

    SQLite runs one `INSERT … SELECT`. PostgreSQL never plans the SELECT of an INSERT in
    parallel, and the eligibility query is most of the work, so there the ids go first into a
    temporary table with `CREATE TABLE … AS` (planned in parallel), then into the population
    with one `INSERT … SELECT` in id order (the primary key fills from the right). The ids
    never leave the database.
    """
    if not is_postgres(session):
        session.execute(insert(JobPopulation).from_select(
            ["job_id", "person_id"], sa_select(literal(job_id), eligible.subquery().c[0])))
        return _population_hash(session, job_id)
    # JIT compilation costs more than it saves on a statement that runs once.
    session.execute(text("SET LOCAL jit = off"))
    staged = table(f"population_{job_id}", column("person_id"))
    session.execute(TemporaryTableAs(staged.name, eligible))
    session.execute(insert(JobPopulation).from_select(
        ["job_id", "person_id"],
        sa_select(literal(job_id), staged.c.person_id).order_by(staged.c.person_id)))
    return _population_hash(session, job_id)


def consent_flows(decision: gate.Decision) -> list[eligibility.Flow]:
    """The (item, recipient) pairs whose people must be filtered by their own consent."""
    recipient = (organ_recipient(decision.to_organ_id) if decision.to_organ_id is not None
                 else body_recipient(decision.to_body_id or 0))
    return [(f.item_id, recipient) for f in decision.consent_flows]


def start(engine: Engine, job_id: int, at: datetime | None = None) -> gate.Decision:
    """Check again, consume runs, write the population — in a transaction of its own."""
    with unit_of_work(engine) as session:
        job = get_job(session, job_id)
        if job.state != JobState.submitted:
            raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="開始",
                                     action_en="started"))
        moment = as_utc(at or utcnow())
        decision = gate.check(session, _request_of(session, job, moment))
        problems = list(decision.reasons)
        if not problems:
            problems = _consume_runs(session, decision)
        if problems:
            # The runs taken above (if any) go back with the rollback of this savepoint.
            session.rollback()
            _refuse_at_start(engine, job_id, decision, problems)
            return gate.Decision(**{**decision.__dict__, "allowed": False, "reasons": problems})
        purpose = session.get(Purpose, job.purpose_id)
        assert purpose is not None and job.id is not None
        eligible = eligibility.eligible(session, job.purpose_id, consent_flows(decision),
                                        subjects_query(purpose, moment), moment)
        if decision.person_scope is not None:
            # A support worker's export: only the children of the cases assigned to them.
            chosen = eligible.subquery("eligible")
            eligible = sa_select(chosen.c.person_id).where(
                chosen.c.person_id.in_(sorted(decision.person_scope)))
        job.population_count, job.population_hash = _write_population(session, job.id, eligible)
        job.state = JobState.started
        job.start_decision_id = decision.id
        job.started_at = moment
        job.consumed_authorisations = json.dumps(decision.one_off_authorisations)
        session.add(job)
        audit.append(session, "jobs.started", target_type="job", target_id=job.id,
                     purpose_id=job.purpose_id, decision_id=decision.id,
                     details={"population": job.population_count,
                              "population_hash": job.population_hash,
                              "runs": decision.one_off_authorisations})
        return decision


def _refuse_at_start(engine: Engine, job_id: int, decision: gate.Decision,
                     problems: list[Reason]) -> None:
    with unit_of_work(engine) as session:
        job = get_job(session, job_id)
        job.state = JobState.refused
        job.start_decision_id = decision.id
        job.error_code = problems[0].code
        session.add(job)
        audit.append(session, "gate.decision", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, decision_id=decision.id,
                     details={"allowed": False, "stage": "start",
                              "codes": sorted({p.code for p in problems})[:50]})
        audit.append(session, "jobs.refused_at_start", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, decision_id=decision.id)


def run(engine: Engine, job_id: int, at: datetime | None = None,
        progress: Callable[[int, int], None] | None = None) -> Job:
    """Start, then run the handler and finish in one transaction; a failure leaves nothing."""
    with unit_of_work(engine) as session:
        kind = get_job(session, job_id).kind
    handler = handler_for(kind)
    if handler is None:
        raise Conflict(Reason.of("jobs.no_handler", kind=kind))
    decision = start(engine, job_id, at)
    if not decision.allowed:
        with unit_of_work(engine) as session:
            return get_job(session, job_id)
    try:
        with unit_of_work(engine) as session:
            job = get_job(session, job_id)
            context = JobContext(session, job, decision)
            if progress is not None:
                context.progress = progress
            result = handler(context)
            job.state = JobState.finished
            job.finished_at = utcnow()
            job.result = json.dumps(result.counts, sort_keys=True)
            session.add(job)
            audit.append(session, "jobs.finished", target_type="job", target_id=job.id,
                         purpose_id=job.purpose_id, decision_id=decision.id,
                         details={"counts": result.counts})
            return job
    except Exception as error:
        with unit_of_work(engine) as session:
            job = get_job(session, job_id)
            job.state = JobState.failed
            job.finished_at = utcnow()
            job.error_code = type(error).__name__[:80]
            session.add(job)
            audit.append(session, "jobs.failed", target_type="job", target_id=job.id,
                         purpose_id=job.purpose_id, details={"error": job.error_code})
        raise


def cancel(session: Session, principal: Principal, job_id: int) -> Job:
    job = get_job(session, job_id)
    if job.requester_id != principal.account_id and "privacy_officer" not in principal.roles:
        raise Forbidden(Reason.of("jobs.not_requester"))
    if job.state != JobState.submitted:
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="取消",
                                 action_en="cancelled"))
    job.state = JobState.cancelled
    job.finished_at = utcnow()
    session.add(job)
    audit.append(session, "jobs.cancelled", actor=principal.actor(), target_type="job",
                 target_id=job.id, purpose_id=job.purpose_id)
    return job


def next_submitted(session: Session) -> Job | None:
    return session.exec(select(Job).where(Job.state == JobState.submitted.value)
                        .order_by(col(Job.id))).first()


def describe(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "purpose_id": job.purpose_id,
        "items": json.loads(job.items), "state": job.state,
        "recipient": job.recipient_organ or job.recipient_body,
        "submit_decision_id": job.submit_decision_id,
        "start_decision_id": job.start_decision_id,
        "population_count": job.population_count, "population_hash": job.population_hash,
        "result": json.loads(job.result or "{}"), "error_code": job.error_code,
        "submitted_at": job.submitted_at, "started_at": job.started_at,
        "finished_at": job.finished_at,
    }

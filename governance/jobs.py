"""The job lifecycle: submit (gate), claim, start (gate again, consume runs, population), run
the handler outside any write transaction, finish (publish in one step), fail, recover, retry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import column, insert, literal, or_, table, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from consent import eligibility
from consent.rules import body_recipient, organ_recipient
from core import audit
from core.auth import Principal, principal_for
from core.clock import as_utc, utcnow
from core.db import (
    TemporaryTableAs,
    discard_after_read,
    get_by,
    is_postgres,
    open_session,
    unit_of_work,
)
from core.models import Organ, OutsideBody, Role, StaffAccount
from core.reasons import Conflict, DomainError, Forbidden, InvalidInput, Reason
from core.service import Reference, Unit, register_reference_check
from governance import gate
from governance.design import canonical_json
from governance.job_runtime import (
    HELD,
    Heartbeat,
    JobLost,
    ProgressReporter,
    ProgressSink,
    discard_files,
    fresh_staging,
    progress_json,
    progress_of,
    publish_files,
    staging_dir,
    unpublish_files,
    worker_settings,
)
from governance.models import (
    Authorisation,
    Job,
    JobPopulation,
    JobState,
    Purpose,
    RouteKind,
)
from governance.rules import parse_json_object


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class JobContext:
    """What a handler gets: a read of the database, the job, its start decision, its
    parameters, its staging directory and a progress reporter.

    `session` is a read (a snapshot; on SQLite it never takes the write lock), so staff keep
    working while the handler computes. A handler writes only where nobody reads yet: files in
    `directory` (renamed to the job's result directory when it finishes), rows of its own
    tables keyed by the job in short transactions (`writing`), and the `publish` step of its
    result, which runs in the transaction that finishes the job.
    """

    session: Session
    job: Job
    decision: gate.Decision
    engine: Engine | None = None
    params: BaseModel | None = None
    directory: Path | None = None
    progress: Callable[[str, int, int], None] = _no_progress

    def population(self) -> Any:
        """A query of the person ids this job may touch."""
        return sa_select(col(JobPopulation.person_id)).where(
            col(JobPopulation.job_id) == self.job.id
        )

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A short write transaction of its own, for staged rows keyed by this job."""
        assert self.engine is not None
        with unit_of_work(self.engine) as session:
            yield session


@dataclass(frozen=True)
class JobResult:
    counts: dict[str, int] = field(default_factory=dict)
    # Run in the transaction that marks the job finished: what makes staged rows visible.
    publish: Callable[[Session], None] | None = None


Handler = Callable[[JobContext], JobResult]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    params_model: type[BaseModel] | None = None
    # Drops what a failed or dead run staged in the kind's own tables (files go by themselves).
    discard: Callable[[Session, int], None] | None = None


_handlers: dict[str, Registration] = {}


def register_handler(kind: gate.JobKind | str, handler: Handler,
                     params_model: type[BaseModel] | None = None,
                     discard: Callable[[Session, int], None] | None = None) -> None:
    """Wire a job kind to its handler and its parameters' model (main.py does this, so
    governance imports no job package)."""
    _handlers[str(kind)] = Registration(handler, params_model, discard)


def unregister_handler(kind: gate.JobKind | str) -> None:
    _handlers.pop(str(kind), None)


def handler_for(kind: str) -> Handler | None:
    found = _handlers.get(kind)
    return None if found is None else found.handler


def validate_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as the kind's model reads them; every bad field named, or refused."""
    registration = _handlers.get(kind)
    model = None if registration is None else registration.params_model
    if model is None:
        if params:
            raise InvalidInput(Reason.of("jobs.params_not_expected", kind=kind, field="params"))
        return {}
    try:
        parsed = model.model_validate(dict(params))
    except ValidationError as error:
        reasons = []
        for problem in error.errors():
            name = ".".join(str(part) for part in problem.get("loc", ())) or "params"
            reasons.append(Reason.of("jobs.bad_param", name=name,
                                     problem=str(problem.get("msg", ""))[:200],
                                     field=f"params.{name}"))
        raise InvalidInput(reasons) from error
    dumped: dict[str, Any] = parsed.model_dump(mode="json")
    return dumped


def parsed_params(job: Job) -> BaseModel | None:
    registration = _handlers.get(job.kind)
    if registration is None or registration.params_model is None:
        return None
    return registration.params_model.model_validate(json.loads(job.params or "{}"))


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
        recipient_body=job.recipient_body, at=at, params=json.loads(job.params or "{}"),
    )


def submit(session: Session, request: gate.JobRequest) -> tuple[gate.Decision, Job | None]:
    """Ask the gate; a refused submission creates no job (its recorded decision is the record).

    Parameters that the kind's model refuses are bad input: refused before the gate is asked,
    each bad field named.
    """
    params = validate_params(request.kind.value, request.params)
    request = dataclasses.replace(request, params=params)
    decision = gate.check(session, request)
    if not decision.allowed:
        return decision, None
    assert decision.purpose_id is not None
    job = Job(kind=request.kind.value, purpose_id=decision.purpose_id,
              items=json.dumps(sorted(request.items), ensure_ascii=False),
              recipient_organ=request.recipient_organ, recipient_body=request.recipient_body,
              requester_id=request.principal.account_id, submit_decision_id=decision.id,
              params=canonical_json(params))
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


# ---------------------------------------------------------------- the start decision's basis

# What a retry compares: if any of it differs now, a job-level condition has changed.
_BASIS_KEYS = ("recipient", "to_organ_id", "to_body_id", "flows", "design_hash", "pia")


def _basis_of(decision: gate.Decision) -> dict[str, Any]:
    return {
        "decision_id": decision.id, "at": decision.at.isoformat(),
        "kind": decision.kind.value, "purpose_key": decision.purpose_key,
        "purpose_id": decision.purpose_id, "recipient": decision.recipient,
        "to_organ_id": decision.to_organ_id, "to_body_id": decision.to_body_id,
        "flows": [{**f.to_dict(), "item_id": f.item_id} for f in decision.flows],
        "pia": decision.pia, "design_hash": decision.design_hash,
        "inputs_hash": decision.inputs_hash,
    }


def start_decision(job: Job) -> gate.Decision:
    """The start decision a job runs under, as its basis was stored at start."""
    basis = json.loads(job.start_basis or "{}")
    if not basis:
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="再実行",
                                 action_en="retried"))
    return gate.Decision(
        id=basis["decision_id"], allowed=True, kind=gate.JobKind(basis["kind"]),
        purpose_key=basis["purpose_key"], purpose_id=basis["purpose_id"],
        recipient=basis["recipient"], at=datetime.fromisoformat(basis["at"]), reasons=[],
        to_organ_id=basis["to_organ_id"], to_body_id=basis["to_body_id"],
        flows=[gate.FlowBasis(f["item"], f["item_id"], f["route"], RouteKind(f["kind"]),
                              f["authorisation"]) for f in basis["flows"]],
        pia=basis["pia"], design_hash=basis["design_hash"], inputs_hash=basis["inputs_hash"])


def _basis_changes(job: Job, decision: gate.Decision) -> list[Reason]:
    before = json.loads(job.start_basis or "{}")
    now = _basis_of(decision)
    changed = [key for key in _BASIS_KEYS if before.get(key) != now.get(key)]
    if not changed:
        return []
    return [Reason.of("jobs.retry_basis_changed", what=", ".join(changed),
                      refs={"job": job.id})]


# ---------------------------------------------------------------- claim, start, resume


def _claimable(job: Job, worker_id: str | None) -> bool:
    if worker_id is None:
        return job.state == JobState.submitted
    return job.state == JobState.claimed and job.worker_id == worker_id


def claim(engine: Engine, worker_id: str, job_id: int | None = None) -> int | None:
    """Take the oldest waiting job (or this one) for this worker, or None.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers on several machines never wait for one
    another nor take the same job. SQLite (one machine): the write transaction is IMMEDIATE,
    and the claim is a conditional update (submitted or retrying → claimed) either way.
    """
    waiting = (JobState.submitted.value, JobState.retrying.value)
    with unit_of_work(engine) as session:
        query = sa_select(col(Job.id)).where(col(Job.state).in_(waiting)).order_by(col(Job.id))
        if job_id is not None:
            query = query.where(col(Job.id) == job_id)
        query = query.limit(5)
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        now = utcnow()
        for candidate in session.execute(query).scalars().all():
            taken = session.execute(
                update(Job).where(col(Job.id) == candidate, col(Job.state).in_(waiting))
                .values(state=JobState.claimed.value, worker_id=worker_id, claimed_at=now,
                        heartbeat_at=now, progress="{}"))
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                audit.append(session, "jobs.claimed", target_type="job", target_id=candidate,
                             details={"worker": worker_id})
                return int(candidate)
    return None


def start(engine: Engine, job_id: int, at: datetime | None = None,
          worker_id: str | None = None) -> gate.Decision:
    """Check again, consume runs, write the population — in a transaction of its own."""
    with unit_of_work(engine) as session:
        job = get_job(session, job_id)
        if not _claimable(job, worker_id):
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
            return dataclasses.replace(decision, allowed=False, reasons=problems)
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
        job.start_basis = canonical_json(_basis_of(decision))
        job.started_at = moment
        job.heartbeat_at = utcnow()
        job.attempts = 1
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
        job.finished_at = utcnow()
        session.add(job)
        audit.append(session, "gate.decision", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, decision_id=decision.id,
                     details={"allowed": False, "stage": "start",
                              "codes": sorted({p.code for p in problems})[:50]})
        audit.append(session, "jobs.refused_at_start", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, decision_id=decision.id)


def _recheck(session: Session, job: Job, moment: datetime) -> tuple[gate.Decision, list[Reason]]:
    """The gate again for a job that already started once, without a second run.

    The job holds one run of each one-off authorisation it consumed at start. For the check it
    hands them back, so the gate judges the authorisations as they stand for this job (not
    "used up" by the job itself), and then takes them again: in one transaction, so no other
    job can take a run in between, and the counts end where they were.
    """
    for key in json.loads(job.consumed_authorisations or "[]"):
        session.execute(update(Authorisation)
                        .where(col(Authorisation.key) == key, col(Authorisation.runs_used) > 0)
                        .values(runs_used=col(Authorisation.runs_used) - 1))
    decision = gate.check(session, _request_of(session, job, moment))
    problems = list(decision.reasons)
    if not problems:
        problems = _basis_changes(job, decision)
    if not problems:
        problems = _consume_runs(session, decision)
    return decision, problems


def _note_refused_recheck(session: Session, job: Job, decision: gate.Decision,
                          problems: list[Reason], actor: audit.Actor, stage: str) -> None:
    """A refused re-check, after its work was rolled back: the job stays (or becomes) failed."""
    if job.state in (JobState.claimed, JobState.retrying):
        job.state = JobState.failed
        job.finished_at = utcnow()
    job.error_code = problems[0].code[:80]
    session.add(job)
    audit.append(session, "gate.decision", actor=actor, target_type="job", target_id=job.id,
                 purpose_id=job.purpose_id, decision_id=decision.id,
                 details={"allowed": False, "stage": stage,
                          "codes": sorted({p.code for p in problems})[:50]})
    audit.append(session, "jobs.retry_refused", actor=actor, target_type="job",
                 target_id=job.id, purpose_id=job.purpose_id, decision_id=decision.id,
                 details={"stage": stage})


def _guarded_recheck(session: Session, job: Job, moment: datetime, actor: audit.Actor,
                     stage: str, *, population: bool) -> tuple[gate.Decision, list[Reason]]:
    """`_recheck` in a savepoint: kept when allowed; rolled back (runs as they were, the
    refused decision then recorded on its own) when not."""
    savepoint = session.begin_nested()
    decision, problems = _recheck(session, job, moment)
    if not problems and population and job.id is not None and _population_hash(
            session, job.id) != (job.population_count, job.population_hash):
        problems = [Reason.of("jobs.population_changed", refs={"job": job.id})]
    if problems:
        savepoint.rollback()
        _note_refused_recheck(session, job, decision, problems, actor, stage)
        return dataclasses.replace(decision, allowed=False, reasons=problems), problems
    savepoint.commit()
    return decision, []


def resume(engine: Engine, job_id: int, worker_id: str,
           at: datetime | None = None) -> gate.Decision:
    """Run a retried job again: the gate confirms nothing job-level changed, the population
    is the one written at start; returns the original start decision (or the refusal)."""
    with unit_of_work(engine) as session:
        job = get_job(session, job_id)
        if not _claimable(job, worker_id) or not job.start_decision_id:
            raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="再実行",
                                     action_en="retried"))
        decision, problems = _guarded_recheck(session, job, as_utc(at or utcnow()),
                                              audit.SYSTEM, "resume", population=True)
        if problems:
            return decision
        job.state = JobState.started
        job.heartbeat_at = utcnow()
        job.attempts += 1
        session.add(job)
        audit.append(session, "jobs.resumed", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, decision_id=decision.id,
                     details={"start_decision": job.start_decision_id,
                              "attempt": job.attempts})
        return start_decision(job)


# ---------------------------------------------------------------- run, finish, fail


def _error_code(error: BaseException) -> str:
    if isinstance(error, DomainError) and error.reasons:
        return error.reasons[0].code[:80]
    if isinstance(error, JobLost):
        return "jobs.worker_lost"
    return type(error).__name__[:80]


def _held(session: Session, job_id: int, worker_id: str, state: JobState) -> Job:
    """The job, locked, if this worker still holds it in `state`; else JobLost."""
    query = select(Job).where(Job.id == job_id, Job.worker_id == worker_id,
                              Job.state == state.value)
    if is_postgres(session):
        query = query.with_for_update()
    job = session.exec(query).first()
    if job is None:
        raise JobLost(f"job {job_id} is no longer held by {worker_id}")
    return job


def _finish(engine: Engine, job_id: int, worker_id: str, decision: gate.Decision,
            result: JobResult) -> Job:
    """Publish in one step: the result rows, the files and the state, or none of them."""
    with open_session(engine, writes=True) as session:
        try:
            job = _held(session, job_id, worker_id, JobState.started)
            if result.publish is not None:
                result.publish(session)
            stored = json.loads(job.progress or "{}")
            job.state = JobState.finished
            job.finished_at = utcnow()
            job.result = json.dumps(result.counts, sort_keys=True)
            job.progress = progress_json(stored.get("stage") or "done",
                                         int(stored.get("total") or 1),
                                         int(stored.get("total") or 1),
                                         list(stored.get("stages", [])))
            session.add(job)
            audit.append(session, "jobs.finished", target_type="job", target_id=job.id,
                         purpose_id=job.purpose_id, decision_id=decision.id,
                         details={"counts": result.counts, "attempt": job.attempts})
            session.flush()
            moved = False
            if staging_dir(job_id, worker_id).exists():
                publish_files(job_id, worker_id)
                moved = True
            try:
                session.commit()
            except BaseException:
                if moved:
                    unpublish_files(job_id, worker_id)
                raise
        except BaseException:
            session.rollback()
            raise
        return job


def _fail(engine: Engine, job_id: int, worker_id: str, code: str) -> bool:
    """Record `failed` on its own, if this worker still holds the job; drop what it staged."""
    with unit_of_work(engine) as session:
        done = session.execute(
            update(Job).where(col(Job.id) == job_id, col(Job.worker_id) == worker_id,
                              col(Job.state).in_(HELD))
            .values(state=JobState.failed.value, error_code=code[:80], finished_at=utcnow()))
        if not done.rowcount:  # type: ignore[attr-defined]
            return False
        job = get_job(session, job_id)
        _discard_rows(session, job)
        audit.append(session, "jobs.failed", target_type="job", target_id=job_id,
                     purpose_id=job.purpose_id, details={"error": code[:80]})
    discard_files(job_id, worker_id)
    return True


def _discard_rows(session: Session, job: Job) -> None:
    registration = _handlers.get(job.kind)
    if registration is not None and registration.discard is not None and job.id is not None:
        registration.discard(session, job.id)


def execute(engine: Engine, job_id: int, worker_id: str, at: datetime | None = None,
            progress: ProgressSink | None = None) -> Job:
    """Run a job this worker claimed: start (or resume a retry), the handler outside any
    write transaction with a heartbeat, then finish; a failure records `failed` and leaves
    nothing visible (the handler's error is raised again)."""
    with unit_of_work(engine, writes=False) as session:
        job = get_job(session, job_id)
    if not _claimable(job, worker_id):
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="実行",
                                 action_en="run"))
    registration = _handlers.get(job.kind)
    if registration is None:
        _fail(engine, job_id, worker_id, "jobs.no_handler")
        return _reload(engine, job_id)
    with Heartbeat(engine, job_id, worker_id):
        if job.start_decision_id is None:
            decision = start(engine, job_id, at, worker_id)
        else:
            decision = resume(engine, job_id, worker_id, at)
    if not decision.allowed:
        return _reload(engine, job_id)
    try:
        job = _reload(engine, job_id)
        context = JobContext(
            session=open_session(engine, writes=False), job=job, decision=decision,
            engine=engine, params=parsed_params(job),
            directory=fresh_staging(job_id, worker_id),
            progress=ProgressReporter(engine, job_id, worker_id, progress))
        try:
            with Heartbeat(engine, job_id, worker_id) as heartbeat:
                result = registration.handler(context)
        finally:
            context.session.rollback()
            discard_after_read(context.session)
            context.session.close()
        if heartbeat.lost:
            raise JobLost(f"job {job_id} was recovered while its handler ran")
        return _finish(engine, job_id, worker_id, decision, result)
    except BaseException as error:
        _fail(engine, job_id, worker_id, _error_code(error))
        raise


def _reload(engine: Engine, job_id: int) -> Job:
    with unit_of_work(engine, writes=False) as session:
        return get_job(session, job_id)


def run(engine: Engine, job_id: int, at: datetime | None = None,
        progress: ProgressSink | None = None, worker_id: str | None = None) -> Job:
    """Claim this job and run it here (`kodomo jobs run ID`)."""
    from governance.job_runtime import new_worker_id

    me = worker_id or new_worker_id("cli")
    if claim(engine, me, job_id) is None:
        with unit_of_work(engine, writes=False) as session:
            job = get_job(session, job_id)
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="実行",
                                 action_en="run"))
    return execute(engine, job_id, me, at, progress)


# ---------------------------------------------------------------- recovery and retry


def recover(engine: Engine, at: datetime | None = None,
            dead_after_seconds: float | None = None) -> list[int]:
    """Jobs whose worker has not been heard of for too long: failed, nothing of them left."""
    moment = as_utc(at or utcnow())
    wait = (worker_settings().dead_after_seconds if dead_after_seconds is None
            else dead_after_seconds)
    cutoff = moment - timedelta(seconds=wait)
    silent = or_(col(Job.heartbeat_at).is_(None), col(Job.heartbeat_at) < cutoff)
    with unit_of_work(engine, writes=False) as session:
        candidates = session.execute(sa_select(col(Job.id)).where(
            col(Job.state).in_(HELD), silent).order_by(col(Job.id))).scalars().all()
    recovered: list[int] = []
    for job_id in candidates:
        with unit_of_work(engine) as session:
            done = session.execute(
                update(Job).where(col(Job.id) == job_id, col(Job.state).in_(HELD), silent)
                .values(state=JobState.failed.value, error_code="jobs.worker_lost",
                        finished_at=moment))
            if not done.rowcount:  # type: ignore[attr-defined]
                continue
            job = get_job(session, job_id)
            _discard_rows(session, job)
            audit.append(session, "jobs.recovered", target_type="job", target_id=job_id,
                         purpose_id=job.purpose_id,
                         details={"worker": job.worker_id, "error": "jobs.worker_lost"})
        discard_files(job_id)
        recovered.append(int(job_id))
    return recovered


def _may_act(principal: Principal, job: Job) -> None:
    if job.requester_id != principal.account_id and Role.privacy_officer not in principal.roles:
        raise Forbidden(Reason.of("jobs.not_requester"))


def retry(session: Session, principal: Principal, job_id: int, at: datetime | None = None
          ) -> tuple[Job, gate.Decision | None, list[Reason]]:
    """Queue a failed job to run again under its start decision and population.

    The gate is asked now, as the job's requester, and must find nothing job-level changed
    (same routes, authorisations, recipient, PIA and design); no one-off run is consumed
    again. A job that failed before it started goes back to `submitted` (its start asks the
    gate as any start does). Refused: the job stays failed, the refused decision is recorded
    in this unit of work, and the reasons are returned (commit, then answer with them).
    """
    job = get_job(session, job_id)
    _may_act(principal, job)
    if job.state != JobState.failed:
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="再実行",
                                 action_en="retried"))
    decision: gate.Decision | None = None
    if job.start_decision_id is not None:
        decision, problems = _guarded_recheck(session, job, as_utc(at or utcnow()),
                                              principal.actor(), "retry", population=False)
        if problems:
            return job, decision, problems
    job.state = JobState.retrying if job.start_decision_id else JobState.submitted
    job.worker_id = None
    job.error_code = None
    job.finished_at = None
    job.progress = "{}"
    session.add(job)
    audit.append(session, "jobs.retry_queued", actor=principal.actor(), target_type="job",
                 target_id=job_id, purpose_id=job.purpose_id,
                 decision_id=decision.id if decision else None)
    return job, decision, []


def cancel(session: Session, principal: Principal, job_id: int) -> Job:
    job = get_job(session, job_id)
    _may_act(principal, job)
    if job.state not in (JobState.submitted, JobState.retrying):
        raise Conflict(Reason.of("jobs.bad_state", state=job.state, action="取消",
                                 action_en="cancelled"))
    job.state = JobState.cancelled
    job.finished_at = utcnow()
    session.add(job)
    audit.append(session, "jobs.cancelled", actor=principal.actor(), target_type="job",
                 target_id=job.id, purpose_id=job.purpose_id)
    return job


def next_submitted(session: Session) -> Job | None:
    return session.exec(select(Job).where(col(Job.state).in_(
        (JobState.submitted.value, JobState.retrying.value))).order_by(col(Job.id))).first()


def describe(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "purpose_id": job.purpose_id,
        "items": json.loads(job.items), "state": job.state,
        "recipient": job.recipient_organ or job.recipient_body,
        "submit_decision_id": job.submit_decision_id,
        "start_decision_id": job.start_decision_id,
        "population_count": job.population_count, "population_hash": job.population_hash,
        "result": json.loads(job.result or "{}"), "error_code": job.error_code,
        "params": json.loads(job.params or "{}"), "progress": progress_of(job),
        "worker_id": job.worker_id, "heartbeat_at": job.heartbeat_at,
        "attempts": job.attempts,
        "submitted_at": job.submitted_at, "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


# States in which a job still names its recipient as one it will deliver to.
UNFINISHED = (JobState.submitted, JobState.claimed, JobState.started, JobState.retrying)


def jobs_naming(session: Session, unit: Unit) -> list[Reference]:
    """Jobs not yet finished whose recipient is `unit` (an organ or an outside body)."""
    if isinstance(unit, Organ):
        column = col(Job.recipient_organ)
    elif isinstance(unit, OutsideBody):
        column = col(Job.recipient_body)
    else:
        return []
    ids = session.exec(select(Job.id).where(
        column == unit.key,
        col(Job.state).in_([s.value for s in UNFINISHED]))
        .order_by(col(Job.id))).all()
    return [Reference("ジョブ", "job", str(job_id)) for job_id in ids]


register_reference_check(jobs_naming)

"""The job lifecycle on a database that commits: re-check at start, runs, population, failure."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from consent import eligibility
from consent import service as consent
from consent.models import ConsentRecord, Person
from consent.schemas import WithdrawIn
from core import audit
from core.db import unit_of_work
from core.models import AuditEvent
from core.reasons import Conflict
from governance import gate, jobs, purposes
from governance.models import Authorisation, Job, JobPopulation, JobState
from governance.schemas import Decision
from main import DEMO_LOADERS, cli
from tests.factories import carers_in_force, who

TEST_KIND = "test_count"


@pytest.fixture
def city(fresh_engine: Engine) -> Iterator[Engine]:
    """The demo city in a database of its own, with a test job kind wired to a handler."""
    with unit_of_work(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
    wired = dict(jobs._handlers)
    jobs.register_handler(gate.JobKind.scoring, _count_population)
    jobs.register_handler(gate.JobKind.linkage, _count_population)
    yield fresh_engine
    jobs._handlers.clear()
    jobs._handlers.update(wired)


def _count_population(ctx: jobs.JobContext) -> jobs.JobResult:
    total = ctx.session.execute(
        select(func.count()).select_from(ctx.population().subquery())
    ).scalar_one()

    def publish(session: Session) -> None:
        audit.append(session, "test.result_written", target_type="job", target_id=ctx.job.id)

    return jobs.JobResult({"people": int(total)}, publish=publish)


def _explode(ctx: jobs.JobContext) -> jobs.JobResult:
    with ctx.writing() as session:
        audit.append(session, "test.staged", target_type="job", target_id=ctx.job.id)
    raise RuntimeError("the handler broke half-way")


def _submit(engine: Engine, purpose: str = "child_abuse_prevention",
            items: tuple[str, ...] = ("seiho.kind", "shukketsu.days_absent"),
            kind: gate.JobKind = gate.JobKind.scoring) -> int:
    with unit_of_work(engine) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            kind=kind, purpose=purpose, items=list(items), principal=who(session, "analyst")))
        assert decision.allowed, [r.code for r in decision.reasons]
        assert job is not None and job.id is not None
        return job.id


def _job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as session:
        return jobs.get_job(session, job_id)


def test_a_job_runs_on_its_population_and_consumes_one_run(city: Engine) -> None:
    job_id = _submit(city)
    job = jobs.run(city, job_id)
    assert job.state == JobState.finished
    assert job.population_count is not None and job.population_count > 0
    assert job.result == f'{{"people": {job.population_count}}}'
    with Session(city) as session:
        runs = {a.key: a.runs_used for a in session.exec(select(Authorisation))}
        assert runs == {"abuse.mayor_internal.2026": 1, "abuse.boe_provision.2026": 1}
        stored = session.exec(select(func.count()).select_from(JobPopulation)
                              .where(JobPopulation.job_id == job_id)).one()
        assert stored == job.population_count
        started = session.exec(select(AuditEvent).where(AuditEvent.action == "jobs.started")
                               ).one()
        assert started.decision_id == job.start_decision_id != job.submit_decision_id


def test_start_refuses_when_a_job_level_condition_changed(city: Engine) -> None:
    job_id = _submit(city)
    with unit_of_work(city) as session:
        purposes.suspend_purpose(session, who(session, "privacy"), "child_abuse_prevention",
                                Decision(comment="見直しのため一時停止"))
    job = jobs.run(city, job_id)
    assert job.state == JobState.refused
    assert job.error_code == "gate.purpose_not_in_force"
    with Session(city) as session:
        assert session.exec(select(func.count()).select_from(JobPopulation)).one() == 0
        runs = [a.runs_used for a in session.exec(select(Authorisation))]
        assert runs == [0, 0]
        refusal = session.exec(select(AuditEvent).where(
            AuditEvent.decision_id == job.start_decision_id,
            AuditEvent.action == "gate.decision")).one()
        assert '"allowed":false' in refusal.details


def test_a_withdrawal_between_submit_and_start_only_shrinks_the_population(city: Engine
                                                                           ) -> None:
    with unit_of_work(city) as session:
        carers_in_force(session)
    items = ("shukketsu.days_absent", "shukketsu.late_early")
    first = _submit(city, "young_carers_outreach", items, gate.JobKind.linkage)
    before = jobs.run(city, first).population_count
    assert before is not None and before > 0

    second = _submit(city, "young_carers_outreach", items, gate.JobKind.linkage)
    with unit_of_work(city) as session:
        population = session.execute(select(JobPopulation.person_id).where(
            JobPopulation.job_id == first)).scalars().all()
        record = session.exec(select(ConsentRecord).where(
            col(ConsentRecord.principal_id).in_(population))).first()
        assert record is not None and record.id is not None
        consent.withdraw(session, audit.SYSTEM, record.id, WithdrawIn())
    job = jobs.run(city, second)
    assert job.state == JobState.finished
    assert job.population_count == before - 1


@pytest.mark.parametrize("purpose, items, kind", [
    ("child_abuse_prevention", ("seiho.kind", "shukketsu.days_absent"), gate.JobKind.scoring),
    ("young_carers_outreach", ("shukketsu.days_absent", "shukketsu.late_early"),
     gate.JobKind.linkage),
])
def test_the_population_is_the_eligible_set_with_its_hash(
        city: Engine, purpose: str, items: tuple[str, ...], kind: gate.JobKind) -> None:
    # The population table has no foreign keys (one query per row on PostgreSQL), so this
    # checks what they would: every row names this job and a person of the register.
    with unit_of_work(city) as session:
        carers_in_force(session)
    job_id = _submit(city, purpose, items, kind)
    moment = datetime.now(UTC)
    decision = jobs.start(city, job_id, at=moment)
    assert decision.allowed, [r.code for r in decision.reasons]
    with Session(city) as session:
        job = jobs.get_job(session, job_id)
        subjects = jobs.subjects_query(purposes.get_purpose(session, purpose), moment)
        expected = set(session.execute(eligibility.eligible(
            session, job.purpose_id, jobs.consent_flows(decision), subjects, moment)).scalars())
        stored = session.execute(select(JobPopulation.person_id)
                                 .where(JobPopulation.job_id == job_id)).scalars().all()
        known = set(session.execute(select(Person.id).where(
            col(Person.id).in_(stored))).scalars())
        orphans = session.exec(select(func.count()).select_from(JobPopulation).where(
            col(JobPopulation.job_id).not_in(select(Job.id)))).one()
    assert expected and set(stored) == expected and len(stored) == len(expected)
    assert known == expected and orphans == 0
    digest = hashlib.sha256("".join(f"{i}\n" for i in sorted(expected)).encode()).hexdigest()
    assert (job.population_count, job.population_hash) == (len(expected), digest)
    assert bool(jobs.consent_flows(decision)) == (purpose == "young_carers_outreach")


def test_the_last_run_goes_to_exactly_one_of_two_racing_jobs(city: Engine) -> None:
    with unit_of_work(city) as session:
        for auth in session.exec(select(Authorisation)):
            auth.runs_used = auth.runs_allowed - 1
            session.add(auth)
    racers = [_submit(city), _submit(city)]
    barrier = threading.Barrier(2)
    outcomes: dict[int, bool] = {}

    def race(job_id: int) -> None:
        barrier.wait()
        outcomes[job_id] = jobs.start(city, job_id).allowed

    threads = [threading.Thread(target=race, args=(job_id,)) for job_id in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == [False, True]
    states = sorted(_job(city, job_id).state for job_id in racers)
    assert states == [JobState.refused, JobState.started]
    with Session(city) as session:
        assert all(a.runs_used == a.runs_allowed for a in session.exec(select(Authorisation)))


def test_a_failed_job_leaves_nothing_visible_and_keeps_its_run(city: Engine) -> None:
    jobs.register_handler(gate.JobKind.scoring, _explode)
    job_id = _submit(city)
    with pytest.raises(RuntimeError):
        jobs.run(city, job_id)
    job = _job(city, job_id)
    assert job.state == JobState.failed
    assert job.error_code == "RuntimeError"
    with Session(city) as session:
        written = session.exec(select(AuditEvent).where(
            AuditEvent.action == "test.result_written")).all()
        assert written == []
        # By default a failed job does not give its run back.
        assert {a.runs_used for a in session.exec(select(Authorisation))} == {1}


def test_a_job_cannot_start_twice_or_after_cancel(city: Engine) -> None:
    job_id = _submit(city)
    with unit_of_work(city) as session:
        jobs.cancel(session, who(session, "analyst"), job_id)
    with pytest.raises(Conflict):
        jobs.start(city, job_id)
    other = _submit(city)
    jobs.run(city, other)
    with pytest.raises(Conflict):
        jobs.start(city, other)


def test_no_code_path_starts_a_refused_request(city: Engine) -> None:
    with unit_of_work(city) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.scoring, purpose="all_children_scoring", items=["seiho.case_notes"],
            principal=who(session, "analyst")))
    assert not decision.allowed and job is None
    with Session(city) as session:
        assert session.exec(select(Job)).all() == []


def test_the_cli_explains_and_runs(city: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.demo import demo_password

    monkeypatch.setenv("KODOMO_PASSWORD", demo_password())
    runner = CliRunner()
    explained = runner.invoke(cli, ["gate", "explain", "--purpose", "child_abuse_prevention",
                                    "--kind", "scoring", "--items", "seiho.kind",
                                    "--as", "analyst"])
    assert explained.exit_code == 0, explained.output
    assert "ALLOWED" in explained.output and "69-2-2" in explained.output
    refused = runner.invoke(cli, ["gate", "explain", "--purpose", "all_children_scoring",
                                  "--kind", "scoring", "--items", "seiho.case_notes",
                                  "--as", "analyst", "--json"])
    assert refused.exit_code == 1
    assert '"allowed": false' in refused.output
    submitted = runner.invoke(cli, ["jobs", "submit", "--purpose", "child_abuse_prevention",
                                    "--kind", "scoring", "--items", "seiho.kind",
                                    "--as", "analyst"])
    assert submitted.exit_code == 0, submitted.output
    worker = runner.invoke(cli, ["worker", "--once"])
    assert worker.exit_code == 0, worker.output
    listed = runner.invoke(cli, ["jobs", "list"])
    assert "finished" in listed.output


def test_a_support_workers_export_reaches_only_the_children_assigned_to_them(
        city: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """LAW.md §10.5: the gate reads the support ledger's hook (empty until the ledger exists);
    with cases assigned, the population is the assigned children among the eligible ones."""
    from consent import people

    monkeypatch.setattr(people, "_case_assignments", [])
    jobs.register_handler(gate.JobKind.export, _count_population)
    request = {"kind": gate.JobKind.export, "purpose": "child_abuse_prevention",
               "items": ["seiho.kind", "shukketsu.days_absent"]}
    with unit_of_work(city) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            principal=who(session, "support"), **request))  # type: ignore[arg-type]
    assert job is None
    assert [r.code for r in decision.reasons] == ["gate.person_not_assigned"]
    with Session(city) as session:
        children = list(session.exec(select(Person.id).where(
            col(Person.birth_date) > datetime(2012, 1, 1).date()).order_by(col(Person.id))
            .limit(3)).all())
    assert len(children) == 3
    assigned = {*children[:2], "someone-not-in-the-register"}
    people.register_case_assignments(
        lambda session, principal: assigned if principal.login == "support" else set())
    with unit_of_work(city) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            principal=who(session, "support"), **request))  # type: ignore[arg-type]
    assert decision.allowed, [r.code for r in decision.reasons]
    assert job is not None and job.id is not None
    finished = jobs.run(city, job.id)
    assert finished.state == JobState.finished
    with Session(city) as session:
        population = set(session.exec(select(JobPopulation.person_id)
                                      .where(JobPopulation.job_id == job.id)).all())
    assert population == set(children[:2])

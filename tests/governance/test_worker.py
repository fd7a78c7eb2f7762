"""Jobs that really run: workers claim, keep a heartbeat, die and are recovered; retries run
under the start decision; parameters; live progress; results appear whole; staff keep working."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from core.clock import utcnow
from core.db import unit_of_work
from core.models import AuditEvent
from core.reasons import Conflict, Forbidden, InvalidInput
from governance import gate, jobs, purposes
from governance.job_runtime import result_dir, worker_settings
from governance.models import Authorisation, Job, JobState
from governance.schemas import Decision
from governance.worker import run_worker
from main import DEMO_LOADERS, cli, create_app
from tests import job_handlers
from tests.factories import codes, who
from tests.web import api_token, bearer, sign_in

ROOT = Path(__file__).resolve().parents[2]
ITEMS = ("seiho.kind", "shukketsu.days_absent")


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test handler's control directory; job directories of this test's own; progress
    written at every step."""
    directory = tmp_path / "control"
    directory.mkdir()
    monkeypatch.setenv(job_handlers.CONTROL_VARIABLE, str(directory))
    monkeypatch.setenv("KODOMO_WORKER_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("KODOMO_WORKER_PROGRESS_EVERY_SECONDS", "0")
    worker_settings.cache_clear()
    yield directory
    worker_settings.cache_clear()


@pytest.fixture
def city(fresh_engine: Engine, control: Path) -> Iterator[Engine]:
    """The demo city in a database of its own, with the test handler wired for scoring."""
    with unit_of_work(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
    wired = dict(jobs._handlers)
    job_handlers.wire()
    yield fresh_engine
    jobs._handlers.clear()
    jobs._handlers.update(wired)


def _submit(engine: Engine, params: dict[str, object] | None = None,
            login: str = "analyst") -> int:
    with unit_of_work(engine) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.scoring, purpose="child_abuse_prevention", items=list(ITEMS),
            principal=who(session, login), params=params or {}))
        assert decision.allowed, [r.code for r in decision.reasons]
        assert job is not None and job.id is not None
        return job.id


def _job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as session:
        return jobs.get_job(session, job_id)


def _actions(engine: Engine, action: str, job_id: int | None = None) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.action == action)
        if job_id is not None:
            query = query.where(AuditEvent.target_id == str(job_id))
        return list(session.exec(query).all())


def _runs(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {a.key: a.runs_used for a in session.exec(select(Authorisation))}


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    """Wait until `check` holds (a guard against a hang, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.02)


def _summary(job_id: int) -> str:
    return (result_dir(job_id) / "summary.json").read_text(encoding="utf-8")


def _worker_process(engine: Engine, worker_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KODOMO_DATABASE_URL": engine.url.render_as_string(
        hide_password=False), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.job_handlers", worker_id],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


# ---------------------------------------------------------------- the done-when tests


def test_a_killed_worker_leaves_nothing_and_a_retry_gives_the_same_result(
        city: Engine, control: Path) -> None:
    uninterrupted = _submit(city)
    assert jobs.run(city, uninterrupted).state == JobState.finished
    killed = _submit(city)
    assert _runs(city) == {"abuse.mayor_internal.2026": 1, "abuse.boe_provision.2026": 1}

    (control / "hold").write_text("", encoding="utf-8")
    process = _worker_process(city, "doomed-worker")
    try:
        _wait_for(lambda: (control / f"waiting-{killed}").exists()
                  or process.poll() is not None, "the worker to be half-way")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        held = _job(city, killed)
        assert (held.state, held.worker_id) == (JobState.started, "doomed-worker")
        assert jobs.describe(held)["progress"]["stage"] == "count"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (control / "hold").unlink()

    # Killed half-way: staged files on disk, nothing of the result visible.
    assert list((city_jobs := result_dir(killed).parent).glob("staging/*/summary.json"))
    assert not result_dir(killed).exists()
    dead = _job(city, killed)
    assert dead.state == JobState.started and json.loads(dead.result) == {}
    assert _actions(city, "jobs.finished", killed) == []
    assert _actions(city, "test.result_written", killed) == []

    # Not yet silent for long enough: nothing recovered; then, later, it is.
    assert jobs.recover(city) == []
    later = utcnow() + timedelta(seconds=worker_settings().dead_after_seconds + 1)
    assert jobs.recover(city, at=later) == [killed]
    recovered = _job(city, killed)
    assert (recovered.state, recovered.error_code) == (JobState.failed, "jobs.worker_lost")
    assert not (city_jobs / "staging").exists() and not result_dir(killed).exists()
    assert len(_actions(city, "jobs.recovered", killed)) == 1

    # The retry: the gate is asked again; both authorisations are used up (2 of 2), yet the
    # retry runs on the run this job already holds and takes no other.
    with unit_of_work(city) as session:
        job, decision, problems = jobs.retry(session, who(session, "analyst"), killed)
    assert problems == [] and decision is not None and decision.allowed
    assert job.state == JobState.retrying
    assert _runs(city) == {"abuse.mayor_internal.2026": 2, "abuse.boe_provision.2026": 2}
    retried = jobs.run(city, killed)
    assert retried.state == JobState.finished and retried.attempts == 2
    assert retried.start_decision_id == dead.start_decision_id
    assert _runs(city) == {"abuse.mayor_internal.2026": 2, "abuse.boe_provision.2026": 2}

    first = _job(city, uninterrupted)
    assert json.loads(retried.result) == json.loads(first.result)
    assert (retried.population_count, retried.population_hash) == (
        first.population_count, first.population_hash)
    assert _summary(killed) == _summary(uninterrupted)
    assert len(_actions(city, "test.result_written", killed)) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_workers_on_postgresql_run_each_job_once(city: Engine, control: Path) -> None:
    with unit_of_work(city) as session:
        session.execute(update(Authorisation).values(runs_allowed=100))
    submitted = [_submit(city) for _ in range(8)]
    workers = [_worker_process(city, f"machine-{n}") for n in (1, 2)]
    for process in workers:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    runs = (control / "runs.log").read_text(encoding="utf-8").split("\n")
    ran = sorted(int(line.split()[0]) for line in runs if line)
    assert ran == submitted  # each job's handler ran exactly once
    for job_id in submitted:
        job = _job(city, job_id)
        assert job.state == JobState.finished and job.attempts == 1
        assert len(_actions(city, "jobs.claimed", job_id)) == 1
        assert len(_actions(city, "jobs.finished", job_id)) == 1
    assert {line.split()[1] for line in runs if line} <= {"machine-1", "machine-2"}


# ---------------------------------------------------------------- 1. wiring and the worker


def test_a_kind_with_no_handler_fails_its_job_without_taking_a_run(city: Engine) -> None:
    jobs.unregister_handler(job_handlers.KIND)
    job_id = _submit(city)
    job = jobs.run(city, job_id)
    assert (job.state, job.error_code) == (JobState.failed, "jobs.no_handler")
    assert set(_runs(city).values()) == {0}
    # The worker no longer spins on it: nothing waits.
    other = _submit(city)
    assert run_worker(city, once=True) == 1
    assert _job(city, other).state == JobState.failed
    assert run_worker(city, once=True) == 0


def test_the_cli_worker_stops_when_nothing_waits(city: Engine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    jobs.unregister_handler(job_handlers.KIND)
    _submit(city)
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 job(s) run" in result.output


def test_a_second_worker_cannot_claim_a_claimed_job(city: Engine) -> None:
    job_id = _submit(city)
    assert jobs.claim(city, "first", job_id) == job_id
    assert jobs.claim(city, "second", job_id) is None
    assert jobs.claim(city, "second") is None
    with pytest.raises(Conflict):
        jobs.execute(city, job_id, "second")
    assert jobs.execute(city, job_id, "first").state == JobState.finished
    assert _job(city, job_id).worker_id == "first"


def test_a_worker_taken_for_dead_publishes_nothing(city: Engine, control: Path) -> None:
    job_id = _submit(city)
    (control / "hold").write_text("", encoding="utf-8")
    outcome: dict[str, BaseException | Job] = {}

    def work() -> None:
        try:
            outcome["job"] = jobs.run(city, job_id, worker_id="slow")
        except BaseException as error:  # the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=work)
    thread.start()
    try:
        _wait_for(lambda: (control / f"waiting-{job_id}").exists(), "the handler")
        later = utcnow() + timedelta(seconds=worker_settings().dead_after_seconds + 1)
        assert jobs.recover(city, at=later) == [job_id]
    finally:
        (control / "hold").unlink()
        thread.join()
    # The recovery took its staging directory away, and its held state: the run ends in an
    # error whichever it meets first, and publishes nothing.
    assert "error" in outcome and "job" not in outcome
    job = _job(city, job_id)
    assert (job.state, job.error_code) == (JobState.failed, "jobs.worker_lost")
    assert not result_dir(job_id).exists()
    assert _actions(city, "jobs.finished", job_id) == []
    assert _actions(city, "test.result_written", job_id) == []


def test_a_failed_handler_leaves_no_files(city: Engine) -> None:
    def explode(ctx: jobs.JobContext) -> jobs.JobResult:
        assert ctx.directory is not None
        (ctx.directory / "half.csv").write_text("a,b\n", encoding="utf-8")
        raise RuntimeError("broke")

    jobs.register_handler(job_handlers.KIND, explode)
    job_id = _submit(city)
    with pytest.raises(RuntimeError):
        jobs.run(city, job_id)
    job = _job(city, job_id)
    assert (job.state, job.error_code) == (JobState.failed, "RuntimeError")
    assert not result_dir(job_id).exists()
    assert not list(result_dir(job_id).parent.glob("staging/*/*"))


# ---------------------------------------------------------------- 2. retry


def _failed_job(city: Engine) -> int:
    def explode(ctx: jobs.JobContext) -> jobs.JobResult:
        raise RuntimeError("broke")

    jobs.register_handler(job_handlers.KIND, explode)
    job_id = _submit(city)
    with pytest.raises(RuntimeError):
        jobs.run(city, job_id)
    job_handlers.wire()
    return job_id


def test_a_retry_is_refused_when_a_job_level_condition_changed(city: Engine) -> None:
    job_id = _failed_job(city)
    with unit_of_work(city) as session:
        purposes.suspend_purpose(session, who(session, "privacy"), "child_abuse_prevention",
                                 Decision(comment="見直しのため一時停止"))
    with unit_of_work(city) as session:
        _, decision, problems = jobs.retry(session, who(session, "analyst"), job_id)
    assert "gate.purpose_not_in_force" in [p.code for p in problems]
    assert decision is not None and not decision.allowed
    after = _job(city, job_id)
    assert (after.state, after.error_code) == (JobState.failed, "gate.purpose_not_in_force")
    assert set(_runs(city).values()) == {1}
    assert len(_actions(city, "jobs.retry_refused", job_id)) == 1


def test_a_retry_after_the_authorisation_expired_is_refused(city: Engine) -> None:
    job_id = _failed_job(city)
    with unit_of_work(city) as session:
        session.execute(update(Authorisation).values(valid_until=utcnow() - timedelta(days=1)))
    with unit_of_work(city) as session:
        *_rest, problems = jobs.retry(session, who(session, "analyst"), job_id)
    assert "gate.authorisation_expired" in [p.code for p in problems]
    assert _job(city, job_id).state == JobState.failed
    assert set(_runs(city).values()) == {1}


def test_only_the_requester_or_a_privacy_officer_may_retry(city: Engine) -> None:
    job_id = _failed_job(city)
    with unit_of_work(city) as session, pytest.raises(Forbidden) as refused:
        jobs.retry(session, who(session, "holder"), job_id)
    assert codes(refused.value) == ["jobs.not_requester"]
    with unit_of_work(city) as session:
        job, _decision, problems = jobs.retry(session, who(session, "privacy"), job_id)
    assert problems == [] and job.state == JobState.retrying
    with unit_of_work(city) as session, pytest.raises(Conflict):
        jobs.retry(session, who(session, "privacy"), job_id)  # not failed any more
    assert jobs.run(city, job_id).state == JobState.finished
    assert set(_runs(city).values()) == {1}


def test_the_api_and_the_cli_retry(city: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.demo import demo_password

    job_id = _failed_job(city)
    with TestClient(create_app(engine=city)) as client:
        holder = client.post(f"/api/jobs/{job_id}/retry",
                             headers=bearer(api_token(client, "holder")))
        assert holder.status_code == 403
        assert holder.json()["error"]["code"] == "jobs.not_requester"
        answer = client.post(f"/api/jobs/{job_id}/retry",
                             headers=bearer(api_token(client, "analyst")))
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "retrying"
    assert jobs.run(city, job_id).state == JobState.finished
    other = _failed_job(city)
    monkeypatch.setenv("KODOMO_PASSWORD", demo_password())
    result = CliRunner().invoke(cli, ["jobs", "retry", str(other), "--as", "analyst", "--run"])
    assert result.exit_code == 0, result.output
    assert f"job {other}: finished" in result.output


# ---------------------------------------------------------------- 3. parameters


def test_parameters_are_validated_stored_and_hashed(city: Engine) -> None:
    with unit_of_work(city) as session, pytest.raises(InvalidInput) as bad:
        jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.scoring, purpose="child_abuse_prevention", items=list(ITEMS),
            principal=who(session, "analyst"), params={"batch": 0, "colour": "red"}))
    fields = sorted(r.field or "" for r in bad.value.reasons)
    assert fields == ["params.batch", "params.colour"]
    assert {r.code for r in bad.value.reasons} == {"jobs.bad_param"}
    with Session(city) as session:
        assert session.exec(select(Job)).all() == []

    job_id = _submit(city, {"batch": "7"})
    assert json.loads(_job(city, job_id).params) == {"batch": 7, "label": "count"}

    with Session(city) as session:
        at = utcnow()
        hashes = {gate.explain(session, gate.JobRequest(
            kind=gate.JobKind.scoring, purpose="child_abuse_prevention", items=list(ITEMS),
            principal=who(session, "analyst"), at=at, params=params)).inputs_hash
            for params in ({"batch": 7}, {"batch": 8}, {"batch": 7})}
    assert len(hashes) == 2


def test_a_kind_without_a_parameter_model_takes_none(city: Engine) -> None:
    jobs.register_handler(job_handlers.KIND, job_handlers.count_handler)
    with unit_of_work(city) as session, pytest.raises(InvalidInput) as bad:
        jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.scoring, purpose="child_abuse_prevention", items=list(ITEMS),
            principal=who(session, "analyst"), params={"batch": 5}))
    assert [(r.code, r.field) for r in bad.value.reasons] == [
        ("jobs.params_not_expected", "params")]


def test_the_api_refuses_bad_parameters_naming_the_field(city: Engine) -> None:
    with TestClient(create_app(engine=city)) as client:
        answer = client.post("/api/jobs", headers=bearer(api_token(client, "analyst")), json={
            "purpose": "child_abuse_prevention", "kind": "scoring", "items": list(ITEMS),
            "params": {"batch": -1}})
    assert answer.status_code == 422, answer.text
    assert "params.batch" in answer.text


# ---------------------------------------------------------------- 4, 5. progress; staff work on


def test_progress_is_live_and_staff_keep_working_while_a_job_runs(
        city: Engine, control: Path) -> None:
    job_id = _submit(city, {"batch": 1, "label": "ライブ"})
    (control / "hold").write_text("", encoding="utf-8")
    thread = threading.Thread(target=jobs.run, args=(city, job_id))
    thread.start()
    try:
        _wait_for(lambda: (control / f"waiting-{job_id}").exists(), "the handler")
        with TestClient(create_app(engine=city)) as client:
            sign_in(client, "analyst")
            page = client.get(f"/jobs/{job_id}")
            assert page.status_code == 200
            assert page.headers.get("refresh")
            assert "<progress" in page.text and 'value="' in page.text
            assert "batch" in page.text and "ライブ" in page.text
            polled = client.get(f"/jobs/{job_id}/progress").json()
            assert polled["state"] == "started"
            assert polled["progress"]["stage"] == "count"
            assert 0 < polled["progress"]["done"] < polled["progress"]["total"]
            # A write answers while the handler computes (no write transaction is held).
            wrote = client.post("/api/jobs", headers=bearer(api_token(client, "analyst")),
                                json={"purpose": "child_abuse_prevention", "kind": "scoring",
                                      "items": list(ITEMS)})
            assert wrote.status_code == 201, wrote.text
            assert client.get("/jobs").status_code == 200
        listed = CliRunner().invoke(cli, ["jobs", "progress", str(job_id)])
        assert "count" in listed.output and "started" in listed.output
        assert not result_dir(job_id).exists()
    finally:
        (control / "hold").unlink()
        thread.join()
    job = _job(city, job_id)
    assert job.state == JobState.finished
    progress = jobs.describe(job)["progress"]
    assert progress["percent"] == 100 and progress["done"] == progress["total"] > 0
    assert result_dir(job_id).exists()
    with TestClient(create_app(engine=city)) as client:
        sign_in(client, "analyst")
        page = client.get(f"/jobs/{job_id}")
        assert "refresh" not in page.headers
        assert f'value="{progress["total"]}"' in page.text


def test_recovery_from_the_cli(city: Engine) -> None:
    job_id = _submit(city)
    assert jobs.claim(city, "gone", job_id) == job_id
    with unit_of_work(city) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(
            heartbeat_at=utcnow() - timedelta(hours=1)))
    result = CliRunner().invoke(cli, ["jobs", "recover"])
    assert result.exit_code == 0, result.output
    assert f"job {job_id}: recovered as failed" in result.output
    assert _job(city, job_id).state == JobState.failed

"""Around a running job's handler: worker settings, job directories, heartbeat, progress."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.clock import utcnow
from core.db import unit_of_work
from core.settings import get_settings
from governance.models import Job, JobState

# The states in which a worker holds a job (and keeps its heartbeat).
HELD = (JobState.claimed.value, JobState.started.value)


class WorkerSettings(BaseSettings):
    """KODOMO_WORKER_*: how workers keep time; operational settings, not rules of law."""

    model_config = SettingsConfigDict(env_prefix="KODOMO_WORKER_", extra="ignore")

    heartbeat_seconds: float = Field(10.0, gt=0, description="how often a busy worker says so")
    # A job whose worker has not been heard of for this long is recovered as failed. Keep it
    # several heartbeats long: a worker only slowed down must not lose its job.
    dead_after_seconds: float = Field(120.0, gt=0)
    # Progress is written at most this often (a stage change and the last step always are).
    progress_every_seconds: float = Field(2.0, ge=0)
    jobs_dir: Path | None = Field(
        None, description="job directories; default <data dir>/jobs; shared by every worker")


@lru_cache(maxsize=1)
def worker_settings() -> WorkerSettings:
    return WorkerSettings()


def new_worker_id(prefix: str = "worker") -> str:
    """A worker id that names the machine and process, unique across restarts."""
    return f"{prefix}:{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def jobs_root() -> Path:
    return worker_settings().jobs_dir or (get_settings().data_dir / "jobs")


def job_dir(job_id: int) -> Path:
    return jobs_root() / str(job_id)


def staging_dir(job_id: int, worker_id: str) -> Path:
    """Where one worker's run of a job writes: nobody reads it, and a worker that was taken
    for dead (but still runs) never writes into the run that replaced it."""
    token = hashlib.sha256(worker_id.encode("utf-8")).hexdigest()[:16]
    return job_dir(job_id) / "staging" / token


def result_dir(job_id: int) -> Path:
    """Where a finished job's files are: `finish` renames the staging directory to it."""
    return job_dir(job_id) / "result"


def fresh_staging(job_id: int, worker_id: str) -> Path:
    """An empty staging directory for this worker's run."""
    path = staging_dir(job_id, worker_id)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def discard_files(job_id: int, worker_id: str | None = None) -> None:
    """Nothing of an unfinished run stays on disk: this worker's staging directory, or (for a
    job recovered from a dead worker) every staging directory and any result directory."""
    if worker_id is not None:
        shutil.rmtree(staging_dir(job_id, worker_id), ignore_errors=True)
        return
    shutil.rmtree(job_dir(job_id) / "staging", ignore_errors=True)
    shutil.rmtree(result_dir(job_id), ignore_errors=True)


def publish_files(job_id: int, worker_id: str) -> Path:
    """Rename the staging directory to the result directory: one step on one file system."""
    target = result_dir(job_id)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging_dir(job_id, worker_id), target)
    return target


def unpublish_files(job_id: int, worker_id: str) -> None:
    """Undo `publish_files` when the transaction that publishes the job did not commit."""
    if result_dir(job_id).exists():
        os.replace(result_dir(job_id), staging_dir(job_id, worker_id))


class JobLost(RuntimeError):
    """The worker no longer holds the job (recovered as dead, or taken): stop at once."""


def touch(engine: Engine, job_id: int, worker_id: str, **values: Any) -> bool:
    """Update the held job's heartbeat (and `values`) in a short transaction of its own;
    False when this worker no longer holds it."""
    with unit_of_work(engine) as session:
        done = session.execute(
            update(Job).where(col(Job.id) == job_id, col(Job.worker_id) == worker_id,
                              col(Job.state).in_(HELD))
            .values(heartbeat_at=utcnow(), **values))
        return bool(done.rowcount)  # type: ignore[attr-defined]


class Heartbeat:
    """A timer thread that keeps the job's heartbeat while its handler computes."""

    def __init__(self, engine: Engine, job_id: int, worker_id: str,
                 every_seconds: float | None = None) -> None:
        self.engine, self.job_id, self.worker_id = engine, job_id, worker_id
        self.every = every_seconds or worker_settings().heartbeat_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}",
                                        daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not touch(self.engine, self.job_id, self.worker_id):
                    self.lost = True
                    return
            except Exception:  # noqa: S112 - a busy database: try again at the next beat
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


ProgressSink = Callable[[str, int, int], None]


class ProgressReporter:
    """`ctx.progress(stage, done, total)`: stored on the job, throttled, each write short."""

    def __init__(self, engine: Engine, job_id: int, worker_id: str,
                 sink: ProgressSink | None = None, every_seconds: float | None = None) -> None:
        self.engine, self.job_id, self.worker_id, self.sink = engine, job_id, worker_id, sink
        self.every = (worker_settings().progress_every_seconds if every_seconds is None
                      else every_seconds)
        self.stages: list[str] = []
        self._written_at: float | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.sink is not None:
            self.sink(stage, done, total)
        new_stage = stage not in self.stages
        if new_stage:
            self.stages.append(stage)
        now = time.monotonic()
        due = (self._written_at is None or new_stage or done >= total
               or now - self._written_at >= self.every)
        if not due:
            return
        self._written_at = now
        state = progress_json(stage, done, total, self.stages)
        if not touch(self.engine, self.job_id, self.worker_id, progress=state):
            raise JobLost(f"job {self.job_id} is no longer held by {self.worker_id}")


def progress_json(stage: str, done: int, total: int, stages: list[str]) -> str:
    return json.dumps({"stage": stage, "done": max(0, int(done)), "total": max(0, int(total)),
                       "stages": stages}, ensure_ascii=False, sort_keys=True)


def progress_of(job: Job) -> dict[str, Any]:
    """The job's progress as shown: stage, done, total and the percentage (None if unknown)."""
    try:
        stored = json.loads(job.progress or "{}")
    except ValueError:
        stored = {}
    done, total = int(stored.get("done", 0)), int(stored.get("total", 0))
    percent = None if total <= 0 else min(100, round(100 * done / total))
    if job.state == JobState.finished:
        done, percent = total, 100
    return {"stage": stored.get("stage"), "done": done, "total": total, "percent": percent,
            "stages": list(stored.get("stages", []))}

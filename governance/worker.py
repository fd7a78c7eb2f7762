"""The worker loop: recover dead workers' jobs, claim one job, run it, again."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from core.reasons import DomainError
from governance import jobs
from governance.job_runtime import new_worker_id

Report = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


def run_worker(engine: Engine, *, worker_id: str | None = None, poll_seconds: float = 2.0,
               once: bool = False, stop: threading.Event | None = None,
               report: Report = _quiet) -> int:
    """Run waiting jobs one at a time until stopped (or, with `once`, until none waits).

    Each loop first recovers the jobs of workers not heard of for too long (as failed, with
    nothing of them left), then claims one job. A job that fails is failed, never retried by
    the worker: a retry is a person's decision (`kodomo jobs retry`). Returns how many jobs
    this worker ran.
    """
    me = worker_id or new_worker_id()
    halt = stop or threading.Event()
    count = 0
    while not halt.is_set():
        for lost in jobs.recover(engine):
            report(f"job {lost}: recovered as failed (its worker stopped answering)")
        job_id = jobs.claim(engine, me)
        if job_id is None:
            if once:
                break
            halt.wait(poll_seconds)
            continue
        count += 1
        try:
            job = jobs.execute(engine, job_id, me)
            report(f"job {job_id}: {job.state}"
                   + (f" ({job.error_code})" if job.error_code else ""))
        except DomainError as error:
            report(f"job {job_id}: {error.code}")
        except Exception as error:  # the job is failed already; the worker goes on
            report(f"job {job_id} failed: {type(error).__name__}")
    return count

"""A test job handler that can be held half-way, and a worker process that runs it.

A plain module (neither a test module nor a conftest). `python -m tests.job_handlers` is a
worker in a process of its own (the database from KODOMO_DATABASE_URL), for tests that kill
it or run two of them.

The handler counts the job's population and writes a summary file to its staging directory
in two halves. Between them, while the file `hold` exists in the control directory
(TEST_JOB_CONTROL), it waits, having first written `waiting-<job id>` there: a test then
knows the job is half done. Every run appends "<job id> <worker id>" to `runs.log` there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from core import audit
from governance import gate, jobs

CONTROL_VARIABLE = "TEST_JOB_CONTROL"
KIND = gate.JobKind.scoring


class CountParams(BaseModel):
    """The test kind's parameters."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field("count", min_length=1, max_length=20)
    batch: int = Field(100, ge=1, le=10_000)


def control_dir() -> Path:
    return Path(os.environ[CONTROL_VARIABLE])


def count_handler(ctx: jobs.JobContext) -> jobs.JobResult:
    control = control_dir()
    assert ctx.directory is not None and ctx.job.id is not None
    with (control / "runs.log").open("a", encoding="utf-8") as log:
        log.write(f"{ctx.job.id} {ctx.job.worker_id}\n")
    params = ctx.params if isinstance(ctx.params, CountParams) else CountParams()
    ids = sorted(ctx.session.execute(ctx.population()).scalars())
    digest = hashlib.sha256("".join(f"{i}\n" for i in ids).encode("ascii")).hexdigest()
    batches = max(1, -(-len(ids) // params.batch))
    ctx.progress("count", 0, batches)
    summary = ctx.directory / "summary.json"
    summary.write_text(json.dumps({"label": params.label, "people": len(ids)}) + "\n",
                       encoding="utf-8")
    ctx.progress("count", max(1, batches // 2), batches)
    if (control / "hold").exists():
        (control / f"waiting-{ctx.job.id}").write_text("", encoding="utf-8")
        while (control / "hold").exists():
            time.sleep(0.02)
    with summary.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"digest": digest}) + "\n")
    ctx.progress("count", batches, batches)
    job_id = ctx.job.id

    def publish(session: Session) -> None:
        audit.append(session, "test.result_written", target_type="job", target_id=job_id)

    return jobs.JobResult({"people": len(ids)}, publish=publish)


def wire() -> None:
    jobs.register_handler(KIND, count_handler, CountParams)


def main(argv: list[str]) -> int:
    """`python -m tests.job_handlers WORKER_ID`: run waiting jobs, then stop."""
    import main as _composition  # noqa: F401  (registers every table)
    from core.db import get_engine
    from core.settings import get_settings
    from core.startup import prepare
    from governance.worker import run_worker

    prepare(get_settings())
    wire()
    run_worker(get_engine(), worker_id=argv[0], once=True, poll_seconds=0.05,
               report=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

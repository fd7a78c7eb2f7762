"""Each bench still runs end to end at a tiny size and prints its figures.

Whether a target is met is the bench's report (its exit status), never asserted here: timing
belongs in bench/, not in the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import skip_or_fail_without_postgres

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "gate.py": ["--residents", "2000", "--events", "600", "--restrictions", "10",
                "--explains", "20"],
    "eligibility.py": ["--persons", "2000", "--events", "600", "--restrictions", "10"],
    "audit.py": ["--events", "50", "--verify-events", "500"],
    "load.py": ["--tiny"],
}


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    # 1 is "a target was missed"; anything else, or a traceback, is the bench breaking.
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, (
        done.stdout[-2000:] + done.stderr[-4000:])
    return done.stdout


@pytest.mark.parametrize("script", sorted(SMALL))
def test_a_bench_runs_small_and_reports(backend: str, script: str) -> None:
    if backend == "postgres":
        skip_or_fail_without_postgres()
    out = _run(script, *SMALL[script], "--backend", backend)
    assert "machine:" in out and "target" in out.lower()
    if script == "gate.py":
        assert "gate.explain p95" in out and "jobs.start median" in out
    if script == "load.py":
        # A request the mix expects to succeed that fails means the mix no longer matches the
        # app (a route or its rules changed), not that the machine is slow.
        assert "errors 0;" in out, out[-2000:]


def test_the_register_pdf_bench_runs_small() -> None:
    out = _run("register_pdf.py", "--files", "3", "--items", "5", "--runs", "1")
    assert "machine:" in out

"""The statistics job: small cells shown as 「10未満」, complements so no total reveals one."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from consent.models import Person
from core.ages import age_on
from core.clock import local_day
from core.db import unit_of_work
from core.reasons import InvalidInput
from governance import gate, jobs
from governance.job_runtime import result_dir, worker_settings
from governance.models import Authorisation, JobPopulation, JobState
from governance.statistics import CSV_NAME, Grid, StatisticsParams, suppress
from main import DEMO_LOADERS, wire_job_handlers
from tests.factories import who

ITEMS = ["juki.birth_date", "shukketsu.days_absent"]


def _hidden_in_line(grid: Grid, hidden: frozenset[tuple[int, int]]) -> list[int]:
    return [sum(cell in hidden for cell in line) for line in grid.lines()]


@pytest.mark.parametrize(("body", "threshold", "expected"), [
    # Nothing small: nothing hidden.
    ([[10, 12], [15, 11]], 10, set()),
    # One small cell: its row and column each get a complement, and the corner closes the
    # rectangle, so that neither total nor margin gives it away.
    ([[3, 12], [15, 11]], 10, {(0, 0), (0, 1), (1, 0), (1, 1)}),
    # The smallest shown cell of the line is the complement.
    ([[3, 12, 20], [15, 11, 30], [40, 50, 60]], 10, {(0, 0), (0, 1), (1, 0), (1, 1)}),
    # Two small cells in one row hide each other; their columns still need complements.
    ([[3, 4, 20], [15, 11, 30]], 10, {(0, 0), (0, 1), (1, 0), (1, 1)}),
    # One column: a small cell and its total (the same number) hide together, and the
    # column's total needs one more: the smallest shown row.
    ([[3], [12], [40]], 10, {(0, 0), (0, 1), (1, 0), (1, 1)}),
    # A zero is under the threshold too (「10未満」 says nothing about which).
    ([[0, 12], [15, 11]], 10, {(0, 0), (0, 1), (1, 0), (1, 1)}),
])
def test_suppression_table(body: list[list[int]], threshold: int,
                           expected: set[tuple[int, int]]) -> None:
    grid = Grid.of(body)
    hidden = suppress(grid, threshold)
    assert set(hidden) == expected
    assert 1 not in _hidden_in_line(grid, hidden)


@given(st.integers(1, 5).flatmap(lambda rows: st.integers(1, 4).flatmap(
    lambda columns: st.lists(st.lists(st.integers(0, 40), min_size=columns,
                                      max_size=columns), min_size=rows, max_size=rows))),
       st.integers(2, 15))
def test_no_small_cell_is_shown_and_no_line_hides_just_one(body: list[list[int]],
                                                           threshold: int) -> None:
    grid = Grid.of(body)
    hidden = suppress(grid, threshold)
    for r, row in enumerate(grid.cells):
        for c, value in enumerate(row):
            if value < threshold:
                assert (r, c) in hidden
    assert 1 not in _hidden_in_line(grid, hidden)


def test_parameters_are_checked() -> None:
    assert StatisticsParams().dimensions == ["age", "sex"]
    for bad in ({"threshold": 5}, {"dimensions": ["age", "age"]}, {"dimensions": ["town"]},
                {"age_band": 0}, {"colour": "red"}):
        with pytest.raises(ValueError):
            StatisticsParams.model_validate(bad)


@pytest.fixture
def city(fresh_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[Engine]:
    monkeypatch.setenv("KODOMO_WORKER_JOBS_DIR", str(tmp_path / "jobs"))
    worker_settings.cache_clear()
    with unit_of_work(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
        session.execute(update(Authorisation).values(runs_allowed=10))
    wire_job_handlers()
    yield fresh_engine
    worker_settings.cache_clear()


def _submit(engine: Engine, params: dict[str, object]) -> int:
    with unit_of_work(engine) as session:
        decision, job = jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.statistics, purpose="child_abuse_prevention", items=ITEMS,
            principal=who(session, "analyst"), params=params))
        assert decision.allowed, [r.code for r in decision.reasons]
        assert job is not None and job.id is not None
        return job.id


def test_a_statistics_job_writes_a_suppressed_table(city: Engine) -> None:
    job_id = _submit(city, {"age_band": 6})
    job = jobs.run(city, job_id)
    assert job.state == JobState.finished, job.error_code
    with (result_dir(job_id) / CSV_NAME).open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["年齢＼性別", "男", "女", "不詳", "計"]
    assert [row[0] for row in table[1:]] == ["0〜5歳", "6〜11歳", "12〜17歳", "計"]

    # What is shown is the truth; what is hidden was under 10 or is a complement.
    with Session(city) as session:
        day = local_day(job.started_at) if job.started_at else None
        assert day is not None
        people = session.exec(select(Person).join(
            JobPopulation, col(JobPopulation.person_id) == col(Person.id)).where(
            JobPopulation.job_id == job_id)).all()
    bands = {"0〜5歳": range(0, 6), "6〜11歳": range(6, 12), "12〜17歳": range(12, 18)}
    sexes = {"男": "male", "女": "female", "不詳": "unknown"}
    for row in table[1:-1]:
        for column, cell in zip(table[0][1:-1], row[1:-1], strict=True):
            truth = sum(1 for p in people if age_on(p.birth_date, day) in bands[row[0]]
                        and str(p.sex) == sexes[column])
            if cell == "10未満":
                continue
            assert int(cell) == truth >= 10
    grand = table[-1][-1]
    assert grand == ("10未満" if len(people) < 10 else str(len(people)))
    # No row or column hides exactly one cell.
    hidden = [[cell == "10未満" for cell in row[1:]] for row in table[1:]]
    assert all(sum(row) != 1 for row in hidden)
    assert all(sum(column) != 1 for column in zip(*hidden, strict=True))
    counts = jobs.describe(job)["result"]
    assert counts["threshold"] == 10 and counts["cells"] == 16


def test_a_threshold_below_the_policy_is_refused_at_submit(city: Engine) -> None:
    with unit_of_work(city) as session, pytest.raises(InvalidInput) as bad:
        jobs.submit(session, gate.JobRequest(
            kind=gate.JobKind.statistics, purpose="child_abuse_prevention", items=ITEMS,
            principal=who(session, "analyst"), params={"threshold": 3}))
    assert [r.field for r in bad.value.reasons] == ["params.threshold"]

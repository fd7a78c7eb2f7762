"""The statistics job: counts over the population with small-cell suppression, as CSV."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col

from consent.models import Person
from core.ages import age_on
from core.clock import local_day
from core.policies import Policy, policy, rule
from governance.jobs import JobContext, JobResult
from governance.models import JobPopulation, Purpose
from governance.rules import parse_json_object

Dimension = Literal["age", "sex"]
DEFAULT_DIMENSIONS: tuple[Dimension, ...] = ("age", "sex")
SEXES = ("male", "female", "unknown")
SEX_LABELS = {"male": "男", "female": "女", "unknown": "不詳"}
TOTAL_LABEL = "計"
CSV_NAME = "statistics.csv"


class StatisticsPolicy(Policy, env_prefix="KODOMO_STATISTICS_"):
    """[I] Small cells: LAW.md's 69(2)(iv) route asks for output that cannot re-identify; the
    threshold is the common 10 of Japanese official statistics, a policy, not a rule of law."""

    title_ja: ClassVar[str] = "統計の作成（小さな集計値の秘匿）"
    title_en: ClassVar[str] = "statistics (suppression of small cells)"

    min_cell: int = rule(
        10, ge=2, marker="I", basis="法69条2項4号（統計の作成）; LAW.md §4.2",
        ja="この数未満の集計値は「N未満」と表示する（ジョブはより大きい値のみ指定できる）",
        en="cells and totals under this count are shown as 「N未満」 (a job may only raise it)")


class StatisticsParams(BaseModel):
    """What a statistics job counts by, and its suppression threshold."""

    model_config = ConfigDict(extra="forbid")

    dimensions: list[Dimension] = Field(default_factory=lambda: list(DEFAULT_DIMENSIONS),
                                        min_length=1, max_length=2)
    # Ages in bands of this many years (0–2, 3–5, …); 1 gives one row per age.
    age_band: int = Field(1, ge=1, le=18)
    # At least the policy's minimum (checked below); None takes the minimum.
    threshold: int | None = Field(None, ge=2, le=1000)

    @field_validator("dimensions")
    @classmethod
    def _distinct(cls, value: list[Dimension]) -> list[Dimension]:
        if len(set(value)) != len(value):
            raise ValueError("each dimension once")
        return value

    @field_validator("threshold")
    @classmethod
    def _not_below_policy(cls, value: int | None) -> int | None:
        floor = policy(StatisticsPolicy).min_cell
        if value is not None and value < floor:
            raise ValueError(f"at least {floor} (KODOMO_STATISTICS_MIN_CELL)")
        return value


# ---------------------------------------------------------------- suppression (pure)


@dataclass(frozen=True)
class Grid:
    """Counts with their margins: `cells[r][c]` for r < rows and c < columns; the last column
    holds the row totals, the last row the column totals, the corner the grand total."""

    cells: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, body: Sequence[Sequence[int]]) -> Grid:
        rows = [[*row, sum(row)] for row in body]
        width = len(rows[0]) if rows else 1
        totals = [sum(row[c] for row in rows) for c in range(width)]
        return cls(tuple(tuple(row) for row in [*rows, totals]))

    def lines(self) -> list[list[tuple[int, int]]]:
        """Every row and column with its total (the total last): each sums to its last cell."""
        height, width = len(self.cells), len(self.cells[0])
        found = [[(r, c) for c in range(width)] for r in range(height)]
        found += [[(r, c) for r in range(height)] for c in range(width)]
        return found


def suppress(grid: Grid, threshold: int) -> frozenset[tuple[int, int]]:
    """The cells to hide: every count under `threshold` (totals too), then complements until
    no row or column has exactly one hidden cell, so that no total minus the shown cells
    gives a hidden one. A complement is the smallest shown cell of the line, a body cell
    before a total, the earlier before the later."""
    hidden = {(r, c) for r, row in enumerate(grid.cells) for c, value in enumerate(row)
              if value < threshold}
    lines = grid.lines()
    changed = True
    while changed:
        changed = False
        for line in lines:
            inside = [cell for cell in line if cell in hidden]
            if len(inside) != 1:
                continue
            shown = [cell for cell in line if cell not in hidden]
            if not shown:
                continue
            total = line[-1]
            pick = min(shown, key=lambda cell: (cell == total,
                                                 grid.cells[cell[0]][cell[1]], cell))
            hidden.add(pick)
            changed = True
    return frozenset(hidden)


def shown(value: int, hidden: bool, threshold: int) -> str:
    return f"{threshold}未満" if hidden else str(value)


# ---------------------------------------------------------------- the table


def age_labels(low: int, high: int, band: int) -> list[str]:
    labels = []
    for start in range(low, high + 1, band):
        end = min(start + band - 1, high)
        labels.append(f"{start}歳" if start == end else f"{start}〜{end}歳")
    return labels


def age_label(age: int, low: int, high: int, band: int) -> str:
    start = low + (min(max(age, low), high) - low) // band * band
    end = min(start + band - 1, high)
    return f"{start}歳" if start == end else f"{start}〜{end}歳"


def tabulate(counts: Counter[tuple[str, str]], dimensions: Sequence[Dimension],
             ages: list[str]) -> tuple[list[str], list[str], list[list[int]]]:
    """Row labels, column labels and the body of counts, every category present (a missing
    row would say "none" as loudly as a zero)."""
    categories = {"age": ages, "sex": list(SEXES)}
    rows = categories[dimensions[0]]
    columns = categories[dimensions[1]] if len(dimensions) > 1 else [TOTAL_LABEL]

    def value(row: str, column: str) -> int:
        if len(dimensions) == 1:
            return sum(n for (a, s), n in counts.items()
                       if (a if dimensions[0] == "age" else s) == row)
        key = {dimensions[0]: row, dimensions[1]: column}
        return counts.get((key["age"], key["sex"]), 0)

    return rows, columns, [[value(r, c) for c in columns] for r in rows]


def write_csv(path: Path, dimensions: Sequence[Dimension], rows: list[str],
              columns: list[str], grid: Grid, hidden: frozenset[tuple[int, int]],
              threshold: int) -> None:
    """The table as CSV, in UTF-8 with a byte order mark (spreadsheets in Japan expect it);
    one dimension shows the totals column alone."""
    names = {"age": "年齢", "sex": "性別"}
    two = len(dimensions) > 1
    head = names[dimensions[0]] + (f"＼{names[dimensions[1]]}" if two else "")
    shown_columns = list(range(len(columns) + 1)) if two else [len(columns)]
    titles = [*(SEX_LABELS.get(c, c) for c in columns), TOTAL_LABEL] if two else ["人数"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([head, *titles])
        for r, label in enumerate([*rows, TOTAL_LABEL]):
            writer.writerow([SEX_LABELS.get(label, label),
                             *[shown(grid.cells[r][c], (r, c) in hidden, threshold)
                               for c in shown_columns]])


def statistics_handler(ctx: JobContext) -> JobResult:
    """Count the population by age (on the start decision's day) and sex, suppress small
    cells, write the CSV to the job's staging directory."""
    params = ctx.params if isinstance(ctx.params, StatisticsParams) else StatisticsParams()
    threshold = params.threshold or policy(StatisticsPolicy).min_cell
    purpose = ctx.session.get(Purpose, ctx.job.purpose_id)
    assert purpose is not None and ctx.directory is not None
    rule = parse_json_object(purpose.subjects_rule)
    low = int(rule.get("min_age", 0))  # type: ignore[call-overload]
    high = int(rule.get("max_age", 17))  # type: ignore[call-overload]
    day: date = local_day(ctx.decision.at)
    ctx.progress("count", 0, 1)
    grouped = ctx.session.execute(
        sa_select(col(Person.birth_date), col(Person.sex), func.count())
        .join(JobPopulation, col(JobPopulation.person_id) == col(Person.id))
        .where(col(JobPopulation.job_id) == ctx.job.id)
        .group_by(col(Person.birth_date), col(Person.sex))).all()
    counts: Counter[tuple[str, str]] = Counter()
    for birth, sex, number in grouped:
        age = age_label(age_on(birth, day), low, high, params.age_band)
        counts[(age, str(sex) if str(sex) in SEXES else "unknown")] += int(number)
    ctx.progress("count", 1, 1)
    ctx.progress("suppress", 0, 1)
    rows, columns, body = tabulate(counts, params.dimensions,
                                   age_labels(low, high, params.age_band))
    grid = Grid.of(body)
    hidden = suppress(grid, threshold)
    write_csv(ctx.directory / CSV_NAME, params.dimensions, rows, columns, grid, hidden,
              threshold)
    ctx.progress("suppress", 1, 1)
    cells = sum(len(row) for row in grid.cells)
    return JobResult({"cells": cells, "suppressed_cells": len(hidden), "threshold": threshold})

"""The threshold rule table at its edges, scoring, and the pure guards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pia import rules
from pia.models import Level

A = rules.ThresholdAnswers


@pytest.mark.parametrize(
    ("answers", "level"),
    [
        (A(), Level.none),
        (A(persons=999), Level.none),
        (A(persons=1_000), Level.basic),
        (A(persons=9_999, handlers=10_000, serious_accident=True), Level.basic),
        (A(persons=10_000), Level.basic),
        (A(persons=10_000, handlers=499), Level.basic),
        (A(persons=10_000, handlers=500), Level.focused),
        (A(persons=10_000, serious_accident=True), Level.focused),
        (A(persons=99_999, handlers=500), Level.focused),
        (A(persons=100_000), Level.focused),
        (A(persons=100_000, handlers=499), Level.focused),
        (A(persons=100_000, handlers=500), Level.full),
        (A(persons=100_000, serious_accident=True), Level.full),
        (A(persons=299_999), Level.focused),
        (A(persons=300_000), Level.full),
        # The service's rule [I]: any cross-organ linkage of children's data is full.
        (A(children=True, cross_organ=True), Level.full),
        (A(persons=1, children=True, cross_organ=True), Level.full),
        (A(children=True), Level.none),
        (A(cross_organ=True), Level.none),
        (A(special_care=True), Level.basic),
        (A(scoring=True), Level.basic),
        (A(foreign_storage=True), Level.basic),
        (A(outsourcing=True), Level.none),
    ],
)
def test_threshold_table_edges(answers: rules.ThresholdAnswers, level: Level) -> None:
    assert rules.threshold_level(answers).level == level


def test_the_rule_table_is_configurable() -> None:
    table = (rules.ThresholdRule("any_scoring", {"scoring": True}, Level.full),)
    assert rules.threshold_level(A(scoring=True), table).level == Level.full
    assert rules.threshold_level(A(children=True, cross_organ=True), table).level == Level.none
    result = rules.threshold_level(A(children=True, cross_organ=True, persons=2_000))
    assert result.matched == ("children_cross_organ", "persons_1k")


def test_scoring_bands_and_heat_map() -> None:
    assert rules.score(None, 3) is None
    assert [rules.band(rules.score(lk, im)) for lk, im in ((1, 3), (2, 2), (2, 4), (3, 3))] == [
        "low", "medium", "medium", "high"]
    heat = rules.heat_map([(1, 1), (1, 1), (4, 4), (None, 2)])
    assert heat[(1, 1)] == 2 and heat[(4, 4)] == 1 and sum(heat.values()) == 3


def test_comment_period_edges() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    assert rules.comment_period_problems(start, start + timedelta(days=30), "") == []
    short = rules.comment_period_problems(start, start + timedelta(days=29), "")
    assert [r.code for r in short] == ["pia.comment_period_short"]
    assert rules.comment_period_problems(start, start + timedelta(days=29), "災害対応のため") == []
    assert [r.code for r in rules.comment_period_problems(None, None, "")] == [
        "pia.comment_period_missing"]


def test_design_facts() -> None:
    snapshot = {
        "design": {"subjects_rule": {"min_age": 0, "max_age": 17},
                   "flows": [{"from": "board_of_education", "to": "organ:mayor"}]},
        "context": {"items": [{"key": "k", "special_care": ["health_check_result"]}]},
    }
    assert rules.design_facts(snapshot) == {"children": True, "cross_organ": True,
                                            "special_care": True, "scoring": False}
    assert rules.special_care_items(snapshot) == ["k"]
    within = {"design": {"flows": [{"from": "mayor", "to": "organ:mayor"}]}}
    assert rules.design_facts(within)["cross_organ"] is False


@pytest.mark.parametrize("kinds, profiling", [
    (["linkage", "scoring"], True),
    (["linkage", "statistics", "export"], False),
    ([], False),
])
def test_profiling_is_derived_from_the_job_kinds_never_from_the_text(
        kinds: list[str], profiling: bool) -> None:
    # The young carers' text says 「スコアリングは行わない」: the words decide nothing.
    snapshot = {"design": {"job_kinds": kinds,
                           "handling": {"logic": "確認リスト（スコアリングは行わない）"}}}
    assert rules.design_facts(snapshot)["scoring"] is profiling
    denied = rules.threshold_problems({"scoring": False, "children": False}, snapshot)
    assert ("scoring" in {r.field for r in denied}) is profiling


def test_the_policy_is_set_by_kodomo_pia_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_PIA_REFUSE_OVERDUE_REVIEW", "false")
    monkeypatch.setenv("KODOMO_PIA_REVIEW_INTERVAL_DAYS", "180")
    read = rules.PiaPolicy.from_environment()
    assert (read.refuse_overdue_review, read.review_interval_days) == (False, 180)
    assert read.threshold_rules == rules.DEFAULT_THRESHOLD_RULES

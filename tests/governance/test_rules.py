"""The centre's pure rules: completeness, route derivation and the four conditions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.reasons import Reason
from governance.models import Basis, Recurrence, RouteKind, SubjectRole
from governance.rules import (
    DEFAULT_POLICY,
    FourConditions,
    PurposeFacts,
    Recipient,
    completeness,
    derive_route,
    four_condition_problems,
    item_in_purpose_problem,
    one_holder_problem,
    repeated_item_problems,
    repeats_within_window,
    route_fields_problems,
    separation_problem,
)

COMPLETE = PurposeFacts(
    title_ja="児童虐待の未然防止",
    purpose_text="支援が必要なこどもを早期に把握する",
    citations=1,
    necessity="単独の部署では把握できない",
    acquisition_method="reuse",
    acquisition_note="",
    handling={
        "extraction": "x",
        "matching_key": "宛名番号",
        "logic": "ルール",
        "result_viewers": "こども家庭課",
        "human_assessment": "ケース会議",
    },
    safeguards={
        "organisational": ["責任者"],
        "human": ["研修"],
        "physical": ["施錠"],
        "technical": ["暗号化"],
    },
    public_notice={"web_page": "https://example.invalid/notice"},
    subjects_rule={"min_age": 0, "max_age": 17},
    subject_roles=frozenset(SubjectRole),
    items=(("welfare.assistance", "必要", "困窮"),),
    job_kinds=frozenset({"linkage", "scoring"}),
)


def codes(reasons: list[Reason]) -> list[str]:
    return [r.code for r in reasons]


def test_a_complete_purpose_has_no_problem() -> None:
    assert completeness(COMPLETE) == []


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"title_ja": " "}, "governance.missing_title", "title_ja"),
        ({"purpose_text": ""}, "governance.missing_purpose_text", "purpose_text"),
        ({"citations": 0}, "governance.missing_citation", "citations"),
        ({"necessity": ""}, "governance.missing_necessity", "necessity"),
        (
            {"acquisition_method": "new_collection"},
            "governance.missing_acquisition_note",
            "acquisition_note",
        ),
        (
            {"handling": {**COMPLETE.handling, "human_assessment": ""}},
            "governance.missing_handling",
            "handling_human_assessment",
        ),
        (
            {"safeguards": {**COMPLETE.safeguards, "physical": []}},
            "governance.missing_safeguard",
            "safeguards.physical",
        ),
        ({"public_notice": {"web_page": ""}}, "governance.missing_public_notice", "public_notice"),
        ({"subjects_rule": {}}, "governance.missing_subjects_rule", "subjects_rule"),
        (
            {"subjects_rule": {"min_age": 18, "max_age": 3}},
            "governance.bad_subjects_rule",
            "subjects_rule",
        ),
        (
            {"subject_roles": frozenset(SubjectRole) - {SubjectRole.use}},
            "governance.missing_subject_role",
            "subjects",
        ),
        ({"items": ()}, "governance.missing_items", "items"),
        ({"job_kinds": frozenset()}, "governance.missing_job_kinds", "job_kinds"),
        (
            {"items": (("a", "", "r"),)},
            "governance.item_missing_necessity",
            "items.a.necessity_reason",
        ),
        (
            {"items": (("a", "n", " "),)},
            "governance.item_missing_relevance",
            "items.a.relevance_to_difficulty",
        ),
    ],
)
def test_each_missing_element_is_named(change: dict, code: str, field: str) -> None:
    reasons = completeness(replace(COMPLETE, **change))
    assert codes(reasons) == [code]
    assert reasons[0].field == field
    assert reasons[0].message_ja and reasons[0].message_en


def test_all_missing_elements_are_collected() -> None:
    empty = PurposeFacts("", "", 0, "", "reuse", "", {}, {}, {}, {}, frozenset(), ())
    found = set(codes(completeness(empty)))
    assert {
        "governance.missing_title",
        "governance.missing_citation",
        "governance.missing_items",
        "governance.missing_subject_role",
    } <= found
    assert len(completeness(empty)) >= 15


CITY_ORGAN, BOARD = 1, 2
PUBLIC_BODY = Recipient(None, "pref_child_guidance", "県児相", "Prefecture CGC", True)
PRIVATE_BODY = Recipient(None, "npo", "NPO", "NPO", False)


@pytest.mark.parametrize(
    ("basis", "recurrence", "recipient", "expected"),
    [
        (Basis.one_off, Recurrence.one_off, Recipient(CITY_ORGAN), RouteKind.internal_use),
        (Basis.one_off, Recurrence.one_off, Recipient(BOARD), RouteKind.provision),
        (Basis.one_off, Recurrence.one_off, PUBLIC_BODY, RouteKind.provision),
        (Basis.one_off, Recurrence.one_off, PRIVATE_BODY, "governance.provision_to_private_body"),
        (
            Basis.one_off,
            Recurrence.recurring,
            Recipient(CITY_ORGAN),
            "governance.recurring_one_off",
        ),
        (Basis.one_off, Recurrence.recurring, Recipient(BOARD), "governance.recurring_one_off"),
        (Basis.purpose_change, Recurrence.recurring, Recipient(BOARD), RouteKind.purpose_change),
        (
            Basis.purpose_change,
            Recurrence.one_off,
            Recipient(BOARD),
            "governance.change_needs_recurring",
        ),
        (
            Basis.within_purpose,
            Recurrence.recurring,
            Recipient(CITY_ORGAN),
            RouteKind.within_purpose,
        ),
        (
            Basis.within_purpose,
            Recurrence.recurring,
            Recipient(BOARD),
            "governance.within_purpose_other_body",
        ),
        (Basis.consent, Recurrence.one_off, PRIVATE_BODY, RouteKind.consent),
        (Basis.consent, Recurrence.recurring, Recipient(BOARD), RouteKind.consent),
        (Basis.statistics, Recurrence.one_off, PRIVATE_BODY, RouteKind.statistics),
        (Basis.law, Recurrence.recurring, PUBLIC_BODY, RouteKind.law),
    ],
)
def test_route_is_derived_from_basis_and_parties(
    basis: Basis, recurrence: Recurrence, recipient: Recipient, expected: object
) -> None:
    result = derive_route(basis, recurrence, CITY_ORGAN, recipient)
    if isinstance(expected, RouteKind):
        assert result == expected
    else:
        assert isinstance(result, Reason) and result.code == expected


@given(st.integers(1, 50), st.integers(1, 50))
def test_internal_use_exactly_when_the_organs_are_the_same(source: int, target: int) -> None:
    kind = derive_route(Basis.one_off, Recurrence.one_off, source, Recipient(target))
    assert kind == (RouteKind.internal_use if source == target else RouteKind.provision)


def test_route_fields_required_by_kind() -> None:
    assert codes(route_fields_problems(RouteKind.within_purpose, "", "", "")) == [
        "governance.missing_reasoning"
    ]
    assert codes(route_fields_problems(RouteKind.purpose_change, "", "", "")) == [
        "governance.missing_reasoning",
        "governance.missing_purpose_text",
    ]
    assert codes(route_fields_problems(RouteKind.law, "", "", "")) == [
        "governance.missing_law_citation"
    ]
    assert route_fields_problems(RouteKind.law, "", "", "児童福祉法第25条の3") == []
    assert route_fields_problems(RouteKind.consent, "", "", "") == []


START = datetime(2026, 4, 1, tzinfo=UTC)
FOUR = FourConditions(
    is_temporary=True,
    temporary_reasoning="今年度1回限り",
    valid_from=START,
    valid_until=START + timedelta(days=90),
    runs_allowed=1,
    within_necessary_extent=True,
    necessity_reasoning="必要最小限",
    substantial_reason=True,
    substantial_reasoning="虐待の未然防止",
    recipient_task_citation="児童福祉法第10条",
    no_undue_infringement=True,
    infringement_reasoning="PIAで評価済み",
)
ITEMS = frozenset({"a", "b"})


def test_four_conditions_met() -> None:
    assert four_condition_problems(FOUR, ["a", "b"], ITEMS) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"is_temporary": False}, "is_temporary"),
        ({"temporary_reasoning": ""}, "is_temporary"),
        ({"within_necessary_extent": False}, "within_necessary_extent"),
        ({"necessity_reasoning": " "}, "within_necessary_extent"),
        ({"substantial_reason": False}, "substantial_reason"),
        ({"substantial_reasoning": ""}, "substantial_reason"),
        ({"no_undue_infringement": False}, "no_undue_infringement"),
        ({"infringement_reasoning": ""}, "no_undue_infringement"),
    ],
)
def test_each_condition_refuses_on_its_own(change: dict, field: str) -> None:
    reasons = four_condition_problems(replace(FOUR, **change), ["a"], ITEMS)
    assert codes(reasons) == ["governance.condition_not_met"]
    assert reasons[0].field == field


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"valid_until": None}, "governance.period_unbounded"),
        ({"valid_until": START - timedelta(days=1)}, "governance.period_reversed"),
        (
            {"valid_until": START + timedelta(days=DEFAULT_POLICY.max_one_off_days + 1)},
            "governance.period_too_long",
        ),
        ({"runs_allowed": 0}, "governance.runs_out_of_range"),
        ({"runs_allowed": DEFAULT_POLICY.max_one_off_runs + 1}, "governance.runs_out_of_range"),
        ({"recipient_task_citation": ""}, "governance.missing_recipient_citation"),
    ],
)
def test_bounds_and_citation(change: dict, code: str) -> None:
    assert codes(four_condition_problems(replace(FOUR, **change), ["a"], ITEMS)) == [code]


def test_an_item_beyond_the_purpose_refuses() -> None:
    reasons = four_condition_problems(FOUR, ["a", "z"], ITEMS)
    assert codes(reasons) == ["governance.item_beyond_purpose"]
    assert "z" in reasons[0].message_en


def test_repeat_window() -> None:
    now = START + timedelta(days=100)
    assert repeats_within_window([("auth-1", START)], now) == "auth-1"
    assert (
        repeats_within_window(
            [("auth-1", now - timedelta(days=DEFAULT_POLICY.repeat_window_days))], now
        )
        is None
    )
    assert repeats_within_window([], now) is None


def test_a_routes_items_once_each_of_its_purpose_and_of_one_holder() -> None:
    repeated = repeated_item_problems(["a", "b", "a", "a"])
    assert list(repeated) == [2, 3]
    assert {r.code for r in repeated.values()} == {"governance.duplicate_item"}
    assert repeated_item_problems(["a", "b"]) == {}
    outside = item_in_purpose_problem("z", "p", {"a"}, field_name="items[1]")
    assert outside is not None and outside.field == "items[1]" and "z" in outside.message_en
    assert item_in_purpose_problem("a", "p", {"a"}) is None
    several = one_holder_problem(["mayor", "board", "mayor"])
    assert several is not None and "board, mayor" in several.message_en
    assert one_holder_problem(["mayor", "mayor"]) is None


def test_the_submitter_cannot_approve() -> None:
    refused = separation_problem("analyst", "analyst")
    assert refused is not None and refused.code == "governance.self_approval"
    assert separation_problem("analyst", "privacy") is None
    assert separation_problem(None, "privacy") is None

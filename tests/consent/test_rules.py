"""Pure rules: ages by 年齢計算ニ関スル法律 (property tests at the boundaries), scope, names."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from consent import rules
from consent.rules import CapacityPolicy

births = st.one_of(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)),
    # 29 February births, on purpose
    st.sampled_from([2000, 2004, 2008, 2012, 2016, 2020, 2024]).map(lambda y: date(y, 2, 29)),
)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))
ages = st.integers(min_value=1, max_value=30)


@given(births, ages)
def test_a_person_attains_an_age_on_the_anniversary_not_a_day_earlier(birth: date,
                                                                      years: int) -> None:
    first = rules.anniversary(birth, years)
    assert rules.age_on(birth, first) == years
    assert rules.age_on(birth, first - timedelta(days=1)) == years - 1


@given(births, days, st.integers(min_value=0, max_value=30))
def test_the_birth_date_bound_agrees_with_the_age(birth: date, day: date, years: int) -> None:
    assume(day >= birth)
    assert (rules.age_on(birth, day) >= years) == (
        birth <= rules.latest_birth_for_age(day, years))


@given(births, days)
def test_age_never_decreases_and_grows_by_at_most_one_a_day(birth: date, day: date) -> None:
    today, tomorrow = rules.age_on(birth, day), rules.age_on(birth, day + timedelta(days=1))
    assert 0 <= tomorrow - today <= 1


@pytest.mark.parametrize(("day", "age"), [
    (date(2024, 2, 28), 15), (date(2024, 2, 29), 16),  # a leap year: the 29th itself
    (date(2025, 2, 28), 16), (date(2025, 3, 1), 17),  # a common year: from 1 March
    (date(2026, 2, 28), 17), (date(2026, 3, 1), 18),
])
def test_a_29_february_birth(day: date, age: int) -> None:
    assert rules.age_on(date(2008, 2, 29), day) == age


def test_the_birth_date_bound_on_29_february() -> None:
    # On 29 Feb 2024, the latest 17-year-old was born on 28 Feb 2007 (2007 has no 29th).
    assert rules.latest_birth_for_age(date(2024, 2, 29), 17) == date(2007, 2, 28)
    assert rules.latest_birth_for_age(date(2024, 2, 29), 16) == date(2008, 2, 29)


def test_policy_defaults_and_thresholds() -> None:
    policy = CapacityPolicy()
    assert policy.guardian_required_below == 16 and policy.child_view_from == 12
    assert policy.parents == "all" and policy.withdrawal_by_either_withdraws
    assert policy.thresholds() == (12, 16, 18)
    assert rules.crossed_thresholds(policy, 11, 16) == [12, 16]
    with pytest.raises(ValueError):
        CapacityPolicy(child_view_from=17, guardian_required_below=16)


def test_scope_must_match_the_notice() -> None:
    offered = rules.Offered(items={1: False, 2: True}, recipients={"organ:1": False})
    assert rules.scope_problems(offered, [1], ["organ:1"]) == []
    assert rules.scope_problems(offered, [1, 2], ["organ:1"]) == []
    codes = [c for c, _f, _d in rules.scope_problems(offered, [2, 3], ["organ:2"])]
    assert codes == ["consent.scope_not_in_notice", "consent.scope_missing_necessary",
                     "consent.scope_not_in_notice", "consent.scope_missing_necessary"]


def test_names_and_codes_as_typed() -> None:
    assert rules.normalise_kana("わかば　さくら") == "ワカバサクラ"
    assert rules.normalise_kana("ﾜｶﾊﾞ ｻｸﾗ") == "ワカバサクラ"
    assert rules.normalise_name("若葉　さくら") == "若葉さくら"
    assert rules.parse_sex("1") == "male" and rules.parse_sex("女") == "female"
    assert rules.parse_recipient("organ:3") == ("organ", 3)
    assert rules.parse_recipient("organ:0") is None

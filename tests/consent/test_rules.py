"""Pure rules: the capacity policy and its ages, scope, names."""

from __future__ import annotations

from datetime import date

import pytest

from consent import rules
from consent.rules import CapacityPolicy
from core.ages import AgeReachedOn


@pytest.mark.parametrize(("reached_on", "day", "age", "guardian_decides"), [
    # born 2010-12-02: 16 on 2026-12-01 by the default (the practice of 年齢計算法)
    (AgeReachedOn.day_before_birthday, date(2026, 11, 30), 15, True),
    (AgeReachedOn.day_before_birthday, date(2026, 12, 1), 16, False),
    (AgeReachedOn.birthday, date(2026, 12, 1), 15, True),
    (AgeReachedOn.birthday, date(2026, 12, 2), 16, False),
])
def test_the_day_a_capacity_age_starts_is_policy(reached_on: AgeReachedOn, day: date, age: int,
                                                 guardian_decides: bool) -> None:
    policy = CapacityPolicy(age_reached_on=reached_on)
    assert policy.age(date(2010, 12, 2), day) == age
    assert policy.guardian_decides(policy.age(date(2010, 12, 2), day)) is guardian_decides
    assert (date(2010, 12, 2) <= policy.latest_birth(day, 16)) is not guardian_decides


def test_the_capacity_day_defaults_to_the_practice() -> None:
    assert CapacityPolicy().age_reached_on == AgeReachedOn.day_before_birthday


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

"""Ages as the law counts them (年齢計算ニ関スル法律 with 民法143条), one function for every rule.

Age runs from the day of birth, the first day counted, and a year of age is a period by the
calendar (民法143条): the N-year period ends at the end of the day before the day that
corresponds to the birth date in the N-th year, or, where that year has no such day (a birth on
29 February in a common year), at the end of the last day of February. So age N is reached at
the end of the day before the N-th birthday.

Which *day* then counts as the first day of age N is a choice (LAW.md §13a [I]):
`day_before_birthday` (default) follows administrative practice, which calls that last day the
day the age is reached ("N歳に達した日": 児童手当's 18歳に達する日以後の最初の3月31日, school
entry): a child born 2010-12-02 is 16 on 2026-12-01, and one born on 29 February is N on
28 February of every year. `birthday` counts only whole days of age N: from the N-th birthday
(1 March in a common year for a 29 February birth).
"""

from __future__ import annotations

import calendar
import enum
from datetime import date, timedelta

MAJORITY_AGE = 18  # 民法第4条 (since 2022-04-01)
_DAY = timedelta(days=1)


class AgeReachedOn(enum.StrEnum):
    """The first day on which a person counts as N years old."""

    day_before_birthday = "day_before_birthday"
    birthday = "birthday"


PRACTICE = AgeReachedOn.day_before_birthday


def _first_whole_day(birth: date, years: int) -> date:
    """The day after the `years`-year period from `birth` ends (民法143条, with its ただし書)."""
    year = birth.year + years
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return date(year, birth.month, birth.day)


def age_reached(birth: date, years: int, reached_on: AgeReachedOn = PRACTICE) -> date:
    """The first day on which a person born on `birth` counts as `years` old."""
    whole = _first_whole_day(birth, years)
    return whole - _DAY if reached_on == AgeReachedOn.day_before_birthday else whole


def age_on(birth: date, day: date, reached_on: AgeReachedOn = PRACTICE) -> int:
    """Age in whole years during `day` (0 before birth; never negative)."""
    if day < birth:
        return 0
    years = day.year - birth.year + 1
    while years > 0 and age_reached(birth, years, reached_on) > day:
        years -= 1
    return years


def latest_birth_for_age(day: date, years: int, reached_on: AgeReachedOn = PRACTICE) -> date:
    """The latest birth date of a person who is at least `years` old during `day`.

    `age_on(b, day) >= years` exactly when `b <= latest_birth_for_age(day, years)`, which lets
    the database compare the stored birth date with one bound value (set-based, no age column).
    """
    if years <= 0:
        return day  # everyone born by `day` is at least 0
    if reached_on == AgeReachedOn.day_before_birthday:
        # Reaching the age on the day before the birthday is reaching it by `day + 1` whole.
        day += _DAY
    year = day.year - years
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, day.month, day.day)

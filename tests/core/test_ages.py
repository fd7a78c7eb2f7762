"""Ages by 年齢計算ニ関スル法律 and 民法143条: the day an age is reached, 29 February births, the
birth-date bound the database compares with, and both policies of which day counts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.ages import AgeReachedOn, age_on, age_reached, latest_birth_for_age

PRACTICE, BIRTHDAY = AgeReachedOn.day_before_birthday, AgeReachedOn.birthday

births = st.one_of(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)),
    # 29 February and 1 March births, on purpose
    st.sampled_from([2000, 2004, 2008, 2012, 2016, 2020, 2024]).flatmap(
        lambda y: st.sampled_from([date(y, 2, 29), date(y, 3, 1), date(y - 1, 3, 1)])),
)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))
counts = st.sampled_from(list(AgeReachedOn))


@pytest.mark.parametrize(
    ("birth", "day", "practice", "birthday"),
    [
        # the example: born 2010-12-02, 16 on 2026-12-01 by the practice
        (date(2010, 12, 2), date(2026, 11, 30), 15, 15),
        (date(2010, 12, 2), date(2026, 12, 1), 16, 15),
        (date(2010, 12, 2), date(2026, 12, 2), 16, 16),
        # school entry: born 4/1 reaches 6 on 3/31 (the earlier grade), born 4/2 on 4/1
        (date(2019, 4, 1), date(2025, 3, 31), 6, 5),
        (date(2019, 4, 2), date(2025, 3, 31), 5, 5),
        (date(2019, 4, 2), date(2025, 4, 1), 6, 5),
        # 1 January births reach the age on 31 December of the year before
        (date(2008, 1, 1), date(2025, 12, 31), 18, 17),
        (date(2008, 1, 1), date(2026, 1, 1), 18, 18),
        # 29 February: 28 February every year by the practice; 1 March in common years, the 29th
        # in leap years, counting whole days from the birthday
        (date(2008, 2, 29), date(2024, 2, 27), 15, 15),
        (date(2008, 2, 29), date(2024, 2, 28), 16, 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16, 16),
        (date(2008, 2, 29), date(2025, 2, 27), 16, 16),
        (date(2008, 2, 29), date(2025, 2, 28), 17, 16),
        (date(2008, 2, 29), date(2025, 3, 1), 17, 17),
        # 1 March after a leap day: the day before is the 29th in a leap year
        (date(2007, 3, 1), date(2024, 2, 28), 16, 16),
        (date(2007, 3, 1), date(2024, 2, 29), 17, 16),
        (date(2007, 3, 1), date(2025, 2, 28), 18, 17),
        # the day of birth and before it
        (date(2026, 6, 1), date(2026, 6, 1), 0, 0),
        (date(2026, 6, 1), date(2026, 5, 31), 0, 0),
        (date(2025, 6, 1), date(2026, 5, 31), 1, 0),
    ],
)
def test_ages_around_birthdays(birth: date, day: date, practice: int, birthday: int) -> None:
    assert age_on(birth, day) == practice
    assert age_on(birth, day, PRACTICE) == practice
    assert age_on(birth, day, BIRTHDAY) == birthday


@pytest.mark.parametrize(
    ("birth", "years", "practice", "birthday"),
    [
        (date(2010, 12, 2), 16, date(2026, 12, 1), date(2026, 12, 2)),
        (date(2008, 2, 29), 16, date(2024, 2, 28), date(2024, 2, 29)),
        (date(2008, 2, 29), 17, date(2025, 2, 28), date(2025, 3, 1)),
        (date(2008, 3, 1), 16, date(2024, 2, 29), date(2024, 3, 1)),
        (date(2008, 1, 1), 18, date(2025, 12, 31), date(2026, 1, 1)),
    ],
)
def test_the_day_an_age_is_reached(birth: date, years: int, practice: date,
                                   birthday: date) -> None:
    assert age_reached(birth, years) == practice
    assert age_reached(birth, years, BIRTHDAY) == birthday


@given(births, st.integers(min_value=1, max_value=30), counts)
def test_an_age_counts_from_the_day_it_is_reached_not_a_day_earlier(
        birth: date, years: int, reached_on: AgeReachedOn) -> None:
    first = age_reached(birth, years, reached_on)
    assert age_on(birth, first, reached_on) == years
    assert age_on(birth, first - timedelta(days=1), reached_on) == years - 1


@given(births, days, st.integers(min_value=0, max_value=30), counts)
def test_the_birth_date_bound_agrees_with_the_age(birth: date, day: date, years: int,
                                                  reached_on: AgeReachedOn) -> None:
    assume(day >= birth)
    assert (age_on(birth, day, reached_on) >= years) == (
        birth <= latest_birth_for_age(day, years, reached_on))


@given(births, days)
def test_the_practice_is_one_day_ahead_of_whole_days(birth: date, day: date) -> None:
    assume(day >= birth)
    assert age_on(birth, day) == age_on(birth, day + timedelta(days=1), BIRTHDAY)


@given(births, days, counts)
def test_age_never_decreases_and_grows_by_at_most_one_a_day(birth: date, day: date,
                                                            reached_on: AgeReachedOn) -> None:
    today = age_on(birth, day, reached_on)
    tomorrow = age_on(birth, day + timedelta(days=1), reached_on)
    assert 0 <= tomorrow - today <= 1


@pytest.mark.parametrize(
    ("day", "years", "practice", "birthday"),
    [
        # on 29 Feb 2024 the latest 17-year-old was born on 1 Mar 2007 by the practice (reaching
        # 17 on the 29th), on 28 Feb 2007 counting whole days (2007 has no 29th)
        (date(2024, 2, 29), 17, date(2007, 3, 1), date(2007, 2, 28)),
        (date(2024, 2, 29), 16, date(2008, 3, 1), date(2008, 2, 29)),
        (date(2024, 2, 28), 16, date(2008, 2, 29), date(2008, 2, 28)),
        (date(2026, 12, 1), 16, date(2010, 12, 2), date(2010, 12, 1)),
        (date(2026, 12, 1), 0, date(2026, 12, 1), date(2026, 12, 1)),
    ],
)
def test_the_birth_date_bound(day: date, years: int, practice: date, birthday: date) -> None:
    assert latest_birth_for_age(day, years) == practice
    assert latest_birth_for_age(day, years, BIRTHDAY) == birthday

"""The municipal calendar and statutory periods (民法140–143, 地方自治法4条の2): table tests across
年末年始, Golden Week and a 振替休日, and properties of every deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.periods import (
    DEFAULT_CALENDAR,
    MunicipalCalendar,
    deadline,
    first_counted_day,
    period_end,
)
from core.policies import Policy
from core.settings import SettingsError


def tokyo(day: date, hour: int = 10) -> datetime:
    """`hour` o'clock in Tokyo on `day`, as an aware UTC moment."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour - 9)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2026, 12, 1), None),  # a Tuesday
        (date(2026, 12, 5), "weekend"),
        (date(2026, 12, 6), "weekend"),
        (date(2026, 11, 3), "national_holiday"),  # 文化の日
        (date(2026, 5, 6), "national_holiday"),  # 振替休日 for 5/3 (a Sunday)
        (date(2026, 9, 22), "national_holiday"),  # 国民の休日 between 敬老の日 and 秋分の日
        (date(2027, 3, 22), "national_holiday"),  # 振替休日 for 春分の日 (a Sunday)
        (date(2026, 12, 28), None),
        (date(2026, 12, 29), "year_end"),
        (date(2026, 12, 31), "year_end"),
        (date(2027, 1, 1), "national_holiday"),  # 元日 is a holiday first
        (date(2027, 1, 4), None),
        (date(2028, 1, 3), "year_end"),  # a Monday, closed by the 条例 span
        (date(2028, 1, 4), None),
    ],
)
def test_closed_days(day: date, why: str | None) -> None:
    assert DEFAULT_CALENDAR.closed_because(day) == why
    assert DEFAULT_CALENDAR.is_closed(day) is (why is not None)


def test_the_year_end_span_and_extra_dates_are_policy() -> None:
    calendar = MunicipalCalendar(year_end_first="12-28", year_end_last="01-04",
                                 closed_dates=frozenset({date(2026, 12, 1)}))
    assert calendar.closed_because(date(2026, 12, 28)) == "year_end"
    assert calendar.closed_because(date(2027, 1, 4)) == "year_end"
    assert calendar.closed_because(date(2026, 12, 1)) == "municipal"
    extended = DEFAULT_CALENDAR.with_closed_dates([date(2026, 12, 2)])
    assert extended.is_closed(date(2026, 12, 2)) and not DEFAULT_CALENDAR.is_closed(
        date(2026, 12, 2))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KODOMO_CALENDAR_YEAR_END_FIRST", "12/29"),
        ("KODOMO_CALENDAR_YEAR_END_FIRST", "12-32"),
        ("KODOMO_CALENDAR_YEAR_END_LAST", "02-01"),
        ("KODOMO_CALENDAR_CLOSED_DATES", '["2026-13-01"]'),
    ],
)
def test_a_bad_calendar_setting_is_named(monkeypatch: pytest.MonkeyPatch, variable: str,
                                         value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match="KODOMO_CALENDAR_"):
        MunicipalCalendar.from_environment()


def test_the_calendar_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_CALENDAR_YEAR_END_FIRST", "12-28")
    monkeypatch.setenv("KODOMO_CALENDAR_CLOSED_DATES", '["2026-06-15"]')
    assert MunicipalCalendar.from_environment() == MunicipalCalendar(
        year_end_first="12-28", closed_dates=frozenset({date(2026, 6, 15)}))
    assert issubclass(MunicipalCalendar, Policy)
    with pytest.raises(ValidationError):
        MunicipalCalendar(year_end_first="01-02")


@pytest.mark.parametrize(
    ("start", "from_midnight", "first"),
    [
        (tokyo(date(2026, 11, 29)), False, date(2026, 11, 30)),  # 初日不算入
        (tokyo(date(2026, 11, 29), 23), False, date(2026, 11, 30)),
        (tokyo(date(2026, 11, 29), 0), False, date(2026, 11, 30)),  # an event at 0:00 too
        (datetime(2026, 11, 29, 15, 0, tzinfo=UTC), False, date(2026, 12, 1)),  # 11/30 Tokyo
        # a period that begins at 0:00 of its first day counts that day (140ただし書)
        (tokyo(date(2026, 11, 29), 0), True, date(2026, 11, 29)),
        (tokyo(date(2026, 11, 29), 10), True, date(2026, 11, 29)),
    ],
)
def test_the_first_day_is_not_counted(start: datetime, from_midnight: bool, first: date) -> None:
    assert first_counted_day(start, from_midnight=from_midnight) == first


@pytest.mark.parametrize(
    ("first", "unit", "n", "end"),
    [
        (date(2026, 11, 30), "days", 30, date(2026, 12, 29)),
        (date(2026, 4, 2), "days", 1, date(2026, 4, 2)),
        (date(2026, 4, 2), "weeks", 2, date(2026, 4, 15)),
        (date(2026, 1, 16), "months", 1, date(2026, 2, 15)),  # the day before the 応当日
        (date(2026, 2, 1), "months", 1, date(2026, 2, 28)),  # from the 1st: the month's end
        (date(2026, 1, 31), "months", 1, date(2026, 2, 28)),  # no 2/31: the month's last day
        (date(2028, 1, 31), "months", 1, date(2028, 2, 29)),
        (date(2026, 3, 31), "months", 1, date(2026, 4, 30)),  # no 4/31
        (date(2026, 8, 30), "months", 3, date(2026, 11, 29)),
        (date(2026, 11, 15), "months", 3, date(2027, 2, 14)),
        (date(2024, 2, 29), "years", 1, date(2025, 2, 28)),  # no 2/29 in 2025
        (date(2026, 4, 1), "years", 3, date(2029, 3, 31)),
    ],
)
def test_period_ends(first: date, unit: str, n: int, end: date) -> None:
    assert period_end(first, **{unit: n}) == end


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        # the example: 30 days from 11/29 ends 12/29, in 年末年始 → 2027-01-04
        (date(2026, 11, 29), 30, date(2027, 1, 4)),
        (date(2026, 11, 27), 30, date(2026, 12, 28)),  # ends on the last open day of the year
        (date(2026, 12, 25), 5, date(2027, 1, 4)),  # 12/30 → past 元日 and the span
        # Golden Week 2026: 4/29 昭和の日, 5/2–3 weekend, 5/4–5/5 祝日, 5/6 振替休日
        (date(2026, 4, 1), 28, date(2026, 4, 30)),  # 4/29 → 4/30
        (date(2026, 4, 2), 30, date(2026, 5, 7)),  # 5/2 → past the whole Golden Week
        (date(2026, 4, 5), 30, date(2026, 5, 7)),  # 5/5 → 5/6 振替休日 → 5/7
        (date(2026, 4, 6), 30, date(2026, 5, 7)),  # 5/6 振替休日 itself
        (date(2026, 4, 7), 30, date(2026, 5, 7)),
        # 振替休日 of 春分の日 2027 (3/21 a Sunday): 3/20 Sat, 3/21 Sun, 3/22 Mon closed
        (date(2027, 2, 18), 30, date(2027, 3, 23)),
        # Silver Week 2026: 9/19–20 weekend, 9/21 敬老の日, 9/22 国民の休日, 9/23 秋分の日
        (date(2026, 8, 20), 30, date(2026, 9, 24)),
        (date(2026, 4, 1), 1, date(2026, 4, 2)),
    ],
)
def test_deadlines(received: date, days: int, due: date) -> None:
    assert deadline(tokyo(received), days=days) == due


def test_a_period_from_midnight_counts_its_first_day() -> None:
    # 30 days from 0:00 of 11/29 end on 12/28, an open day
    assert deadline(tokyo(date(2026, 11, 29), 0), days=30, from_midnight=True) == date(
        2026, 12, 28)


def test_a_deadline_in_months_across_the_year_end() -> None:
    # received 11/28: first counted day 11/29; one month ends 12/28, open → 12/28;
    # received 11/29: ends 12/29, closed → 2027-01-04
    assert deadline(tokyo(date(2026, 11, 28)), months=1) == date(2026, 12, 28)
    assert deadline(tokyo(date(2026, 11, 29)), months=1) == date(2027, 1, 4)


def test_a_period_has_one_unit_and_is_not_negative() -> None:
    with pytest.raises(ValueError):
        period_end(date(2026, 1, 1), days=1, months=1)
    with pytest.raises(ValueError):
        period_end(date(2026, 1, 1), days=-1)


moments = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2035, 12, 31),
                       timezones=st.just(UTC))
extra_dates = st.frozensets(st.dates(min_value=date(2019, 1, 1), max_value=date(2036, 12, 31)),
                            max_size=30)
calendars = st.builds(MunicipalCalendar, year_end_first=st.sampled_from(["12-27", "12-29"]),
                      year_end_last=st.sampled_from(["01-03", "01-05"]), closed_dates=extra_dates)
units = st.sampled_from(["days", "weeks", "months", "years"])


@given(moments, st.integers(min_value=0, max_value=400), units, calendars)
def test_a_deadline_is_the_first_open_day_on_or_after_the_naive_end(
        start: datetime, n: int, unit: str, calendar: MunicipalCalendar) -> None:
    period: dict[str, Any] = {unit: n}
    due = deadline(start, calendar, **period)
    naive = period_end(first_counted_day(start), **period)
    assert not calendar.is_closed(due)
    assert due >= naive
    day = naive
    while day < due:  # every day skipped was closed
        assert calendar.is_closed(day)
        day += timedelta(days=1)


@given(moments, st.integers(min_value=1, max_value=400))
def test_a_period_of_days_counts_exactly_that_many_days(start: datetime, n: int) -> None:
    first = first_counted_day(start)
    assert (period_end(first, days=n) - first).days == n - 1

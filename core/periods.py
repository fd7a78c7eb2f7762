"""The municipal calendar and statutory periods: 民法140–143 and 地方自治法4条の2 (LAW.md §13a).

Pure functions over dates. A period is counted in Japanese days; its naive end follows 民法:
the first day is not counted unless the period begins at 0:00 of it (140), the period ends when its
last day ends (141), and weeks, months and years run by the calendar, ending on the day before
the day that corresponds to the first counted day, or on the last day of the month where the
last month has no such day (143). A deadline for an act addressed to the municipality that falls
on one of its closed days moves to the next open day (地方自治法4条の2第4項; 民法142).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Annotated, ClassVar, Literal, Self

import jpholiday
from pydantic import AfterValidator, model_validator

from core.clock import local_day
from core.policies import Policy, rule

_DAY = timedelta(days=1)
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


def _month_day(text: str) -> str:
    match = _MONTH_DAY.match(text)
    if not match:
        raise ValueError("must be MM-DD, e.g. 12-29")
    date(2000, int(match[1]), int(match[2]))  # a real day of a leap year, or ValueError
    return text


MonthDay = Annotated[str, AfterValidator(_month_day)]
ClosedBecause = Literal["weekend", "national_holiday", "year_end", "municipal"]


class MunicipalCalendar(Policy, env_prefix="KODOMO_CALENDAR_"):
    """The municipality's closed days (休日, 地方自治法4条の2): Saturdays and Sundays, the national
    holidays (祝日法, including 振替休日 and 国民の休日, from the maintained `jpholiday` package),
    the 年末年始 days its 休日条例 names, and any further closed dates.

    year_end_first, year_end_last: the 年末年始 span as MM-DD, both days closed (default
        12-29 to 01-03, the common 条例 [I]: each ordinance decides).
    closed_dates: further closed days (a JSON list of dates).
    """

    title_ja: ClassVar[str] = "市の休日（期限の計算）"
    title_en: ClassVar[str] = "the municipality's closed days (deadlines)"

    year_end_first: MonthDay = rule(
        "12-29", marker="I", basis="地方自治法4条の2第1項3号（休日条例）; LAW.md §13a",
        ja="年末年始の休日の初日（月-日）", en="first day of the 年末年始 closure (MM-DD)")
    year_end_last: MonthDay = rule(
        "01-03", marker="I", basis="地方自治法4条の2第1項3号（休日条例）; LAW.md §13a",
        ja="年末年始の休日の最終日（月-日）", en="last day of the 年末年始 closure (MM-DD)")
    closed_dates: frozenset[date] = rule(
        frozenset(), marker="R", basis="地方自治法4条の2（休日条例）; 民法142条",
        ja="土日・祝日・年末年始のほかの閉庁日",
        en="closed days besides weekends, national holidays and 年末年始")

    @model_validator(mode="after")
    def _span_turns_the_year(self) -> Self:
        if self.year_end_first[:2] != "12" or self.year_end_last[:2] != "01":
            raise ValueError("the 年末年始 span runs from a day of December to a day of January")
        return self

    def with_closed_dates(self, extra: Iterable[date]) -> MunicipalCalendar:
        """This calendar with further closed dates."""
        return self.model_copy(update={"closed_dates": self.closed_dates | frozenset(extra)})

    def closed_because(self, day: date) -> ClosedBecause | None:
        """Why `day` is a closed day of the municipality, or None when it is open."""
        if day.weekday() >= 5:
            return "weekend"
        if jpholiday.is_holiday(day):
            return "national_holiday"
        month_day = f"{day.month:02d}-{day.day:02d}"
        if month_day >= self.year_end_first or month_day <= self.year_end_last:
            return "year_end"
        if day in self.closed_dates:
            return "municipal"
        return None

    def is_closed(self, day: date) -> bool:
        return self.closed_because(day) is not None

    def next_open_day(self, day: date) -> date:
        """`day` itself when open, else the first open day after it."""
        while self.is_closed(day):
            day += _DAY
        return day


DEFAULT_CALENDAR = MunicipalCalendar()


def first_counted_day(start: datetime, *, from_midnight: bool = False) -> date:
    """The first counted day of a period that runs from the event at `start` (民法140): the
    next Japanese day. With `from_midnight` the period is one that begins at 0:00 of the day of
    `start` (140ただし書, e.g. a period set to run "from 1 April"), so that day counts.

    The time of day of an event does not decide this: a date recorded without a time is
    stored at 0:00, and an event at 0:00 would otherwise lose a day."""
    day = local_day(start)
    return day if from_midnight else day + _DAY


def _add_months(first: date, months: int) -> date:
    """The last day of a period of `months` from the first counted day `first` (民法143)."""
    total = first.year * 12 + first.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    if first.day > calendar.monthrange(year, month)[1]:
        return date(year, month, calendar.monthrange(year, month)[1])
    return date(year, month, first.day) - _DAY


def period_end(first: date, *, days: int = 0, weeks: int = 0, months: int = 0,
               years: int = 0) -> date:
    """The last day of a period of one unit counted from its first counted day `first`
    (民法141, 143). Days and weeks count days; months and years run by the calendar."""
    if min(days, weeks, months, years) < 0:
        raise ValueError("a period is not negative")
    if sum(1 for n in (days, weeks, months, years) if n) > 1:
        raise ValueError("a period has one unit")
    if months or years:
        return _add_months(first, months + 12 * years)
    return first + timedelta(days=days + 7 * weeks) - _DAY


def deadline(start: datetime, cal: MunicipalCalendar = DEFAULT_CALENDAR, *, days: int = 0,
             weeks: int = 0, months: int = 0, years: int = 0,
             from_midnight: bool = False) -> date:
    """The last day for an act due to the municipality within a period from `start` (e.g. the
    receipt of a request): the period's end, moved to the next open day when it is closed."""
    end = period_end(first_counted_day(start, from_midnight=from_midnight), days=days,
                     weeks=weeks, months=months, years=years)
    return cal.next_open_day(end)

"""Dates as people and source systems type them (西暦, 和暦, compact), one parser for all; an era
date outside its era is refused with the reason, at every boundary from 明治6年 to 令和."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest

from core.dates import ERAS, Era, era_date, parse_date, read_date
from core.reasons import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-01", date(2024, 4, 1)),
        ("2024/4/1", date(2024, 4, 1)),
        ("2024年4月1日", date(2024, 4, 1)),
        ("令和6年4月1日", date(2024, 4, 1)),
        ("R6.4.1", date(2024, 4, 1)),
        ("r6.4.1", date(2024, 4, 1)),
        ("H28/4/1", date(2016, 4, 1)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("令和６年４月１日", date(2024, 4, 1)),
        ("Ｒ６．４．１", date(2024, 4, 1)),
        # as the person register's source systems write them
        ("平成24年5月10日", date(2012, 5, 10)),
        ("H24.5.10", date(2012, 5, 10)),
        ("20120510", date(2012, 5, 10)),
        ("大正15年12月24日", date(1926, 12, 24)),
        ("T15.12.24", date(1926, 12, 24)),
        ("昭和元年12月25日", date(1926, 12, 25)),
        ("２０２４０４０１", date(2024, 4, 1)),
        # 漢数字, 十-style and digit by digit
        ("令和六年四月一日", date(2024, 4, 1)),
        ("平成三十一年四月三十日", date(2019, 4, 30)),
        ("昭和六十四年一月七日", date(1989, 1, 7)),
        ("令和元年十二月二十九日", date(2019, 12, 29)),
        ("二〇二四年四月一日", date(2024, 4, 1)),
        (" 令和 6 年 4 月 1 日 ", date(2024, 4, 1)),
    ],
)
def test_dates_as_typed(text: str, expected: date) -> None:
    assert parse_date(text) == expected
    assert read_date(text) == expected


# Every era boundary, both sides, in the era's name, its letter and 元年 where it applies:
# (text, the date, or the refusal's code).
BOUNDARIES: list[tuple[str, date | str]] = [
    # 明治: 和暦 dates are Gregorian only from 明治6年1月1日 (改暦)
    ("明治5年12月2日", "core.date_before_gregorian"),
    ("明治元年10月23日", "core.date_before_gregorian"),
    ("明治6年1月1日", date(1873, 1, 1)),
    ("M6.1.1", date(1873, 1, 1)),
    # 明治 → 大正 (1912-07-30)
    ("明治45年7月29日", date(1912, 7, 29)),
    ("M45.7.29", date(1912, 7, 29)),
    ("明治45年7月30日", "core.date_after_era"),
    ("大正元年7月29日", "core.date_before_era"),
    ("大正元年7月30日", date(1912, 7, 30)),
    ("大正1年7月30日", date(1912, 7, 30)),
    ("T1.7.30", date(1912, 7, 30)),
    # 大正 → 昭和 (1926-12-25)
    ("大正15年12月24日", date(1926, 12, 24)),
    ("大正15年12月25日", "core.date_after_era"),
    ("T15.12.25", "core.date_after_era"),
    ("昭和元年12月24日", "core.date_before_era"),
    ("昭和元年12月25日", date(1926, 12, 25)),
    ("S1.12.25", date(1926, 12, 25)),
    # 昭和 → 平成 (1989-01-08)
    ("昭和64年1月7日", date(1989, 1, 7)),
    ("S64.1.7", date(1989, 1, 7)),
    ("昭和64年1月8日", "core.date_after_era"),
    ("平成元年1月7日", "core.date_before_era"),
    ("平成元年1月8日", date(1989, 1, 8)),
    ("H1.1.8", date(1989, 1, 8)),
    # 平成 → 令和 (2019-05-01)
    ("平成31年4月30日", date(2019, 4, 30)),
    ("H31.4.30", date(2019, 4, 30)),
    ("平成31年5月1日", "core.date_after_era"),
    ("H31.5.1", "core.date_after_era"),
    ("平成35年1月1日", "core.date_after_era"),
    ("H35.1.1", "core.date_after_era"),
    ("令和元年4月30日", "core.date_before_era"),
    ("R1.4.1", "core.date_before_era"),
    ("令和元年5月1日", date(2019, 5, 1)),
    ("R1.5.1", date(2019, 5, 1)),
    ("令和1年5月1日", date(2019, 5, 1)),
    # year 0, unknown eras, days that do not exist, text that is no date
    ("令和0年5月1日", "core.date_era_year_zero"),
    ("R0.5.1", "core.date_era_year_zero"),
    ("平成0年1月8日", "core.date_era_year_zero"),
    ("慶応3年1月1日", "core.date_era_unknown"),
    ("光文元年1月1日", "core.date_era_unknown"),
    ("X5.1.1", "core.date_era_unknown"),
    ("令和5年2月29日", "core.date_no_such_day"),
    ("令和6年2月29日", date(2024, 2, 29)),
    ("2024-02-30", "core.date_no_such_day"),
    ("20240230", "core.date_no_such_day"),
    ("2024041", "core.date_not_a_date"),
    ("202404011", "core.date_not_a_date"),
    ("そのうち", "core.date_not_a_date"),
    ("令和十十年1月1日", "core.date_not_a_date"),
    ("", "core.date_not_a_date"),
]


@pytest.mark.parametrize(("text", "expected"), BOUNDARIES)
def test_every_era_boundary(text: str, expected: date | str) -> None:
    if isinstance(expected, date):
        assert read_date(text) == expected
        return
    with pytest.raises(InvalidInput) as refused:
        read_date(text, field="birth_date", row=3)
    reason = refused.value.reasons[0]
    assert (reason.code, reason.field, reason.row) == (expected, "birth_date", 3)
    assert reason.message_ja and reason.message_en and reason.message_ja != reason.message_en
    assert parse_date(text) is None


def test_the_refusal_says_which_era_the_day_belongs_to() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_date("平成31年5月1日")
    reason = refused.value.reasons[0]
    assert "令和元年5月1日" in reason.message_ja and "平成31年4月30日" in reason.message_ja
    assert "令和元年5月1日" in reason.message_en
    with pytest.raises(InvalidInput) as refused:
        read_date("R1.4.1")
    assert "平成31年4月1日" in refused.value.reasons[0].message_ja


def test_the_era_table_has_no_gap_and_no_overlap() -> None:
    for earlier, later in pairwise(ERAS):
        assert earlier.last_day is not None
        assert (later.first_day - earlier.last_day).days == 1
        assert later.first_year == later.first_day.year


@pytest.mark.parametrize("era", ERAS)
def test_each_era_reads_back_its_own_first_and_last_day(era: Era) -> None:
    for day in (era.first_day, era.last_day or date(2100, 12, 31)):
        assert read_date(era_date(day)) == day

"""Dates as people and source systems type them (西暦, 和暦, compact), one parser for all."""

from __future__ import annotations

from datetime import date

import pytest

from core.dates import parse_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-01", date(2024, 4, 1)),
        ("2024/4/1", date(2024, 4, 1)),
        ("2024年4月1日", date(2024, 4, 1)),
        ("令和6年4月1日", date(2024, 4, 1)),
        ("R6.4.1", date(2024, 4, 1)),
        ("H28/4/1", date(2016, 4, 1)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("令和６年４月１日", date(2024, 4, 1)),
        ("2024-02-30", None),
        ("そのうち", None),
        # as the person register's source systems write them (formerly consent.rules.parse_date)
        ("平成24年5月10日", date(2012, 5, 10)),
        ("H24.5.10", date(2012, 5, 10)),
        ("20120510", date(2012, 5, 10)),
        ("2012-02-30", None),
        # accepted since the two parsers were merged: 大正 and the compact form
        ("大正15年12月24日", date(1926, 12, 24)),
        ("T15.12.24", date(1926, 12, 24)),
        ("昭和元年12月25日", date(1926, 12, 25)),
        ("２０２４０４０１", date(2024, 4, 1)),
        ("20240230", None),
        ("2024041", None),
        ("202404011", None),
    ],
)
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected

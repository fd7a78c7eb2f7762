"""Dates as people type them (西暦 and 和暦) and statutory day counting."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta

from core.clock import to_tokyo

_ERAS = {"令和": 2018, "R": 2018, "平成": 1988, "H": 1988, "昭和": 1925, "S": 1925,
         "大正": 1911, "T": 1911}
_ERA_DATE = re.compile(r"^(令和|平成|昭和|大正|[RHST])\s*(元|\d{1,2})\s*[年./\-]\s*(\d{1,2})\s*"
                       r"[月./\-]\s*(\d{1,2})\s*日?$")
_ISO_DATE = re.compile(r"^(\d{4})\s*[年./\-]\s*(\d{1,2})\s*[月./\-]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def parse_date(text: str) -> date | None:
    """A date as a person or a source system types it: 2024-04-01, 2024/4/1, 20240401,
    2024年4月1日, 令和6年4月1日, R6.4.1, H28/4/1, 令和元年5月1日 (eras 大正 to 令和, full-width
    digits too). None when the text is not a date."""
    folded = unicodedata.normalize("NFKC", text).strip().upper()
    try:
        match = _ERA_DATE.match(folded)
        if match:
            era, year, month, day = match.groups()
            offset = _ERAS[era]
            return date(offset + (1 if year == "元" else int(year)), int(month), int(day))
        match = _ISO_DATE.match(folded) or _COMPACT_DATE.match(folded)
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return None


def deadline(start: datetime, days: int, is_closed: Callable[[date], bool]) -> date:
    """The last day of a period of `days` from `start` (a Tokyo date; the first day is not
    counted, 民法140条); a deadline on a closed day moves to the next open day (民法142条)."""
    day = to_tokyo(start).date() + timedelta(days=days)
    while is_closed(day):
        day += timedelta(days=1)
    return day

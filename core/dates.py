"""Dates as people and source systems type them (西暦, 和暦), era dates checked against the era."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from core import messages
from core.reasons import InvalidInput, Reason

messages.register(
    {
        "core.date_not_a_date": (
            "「{text}」は日付として読めません（例: 2024-04-01、令和6年4月1日、R6.4.1）。",
            "{text!r} is not a date (for example 2024-04-01, 令和6年4月1日, R6.4.1).",
        ),
        "core.date_no_such_day": (
            "「{text}」という日はありません。",
            "{text!r} is not a day of the calendar.",
        ),
        "core.date_era_unknown": (
            "「{era}」は使える元号ではありません"
            "（明治・大正・昭和・平成・令和、または M・T・S・H・R）。",
            "{era!r} is not an era this service reads (明治, 大正, 昭和, 平成, 令和, "
            "or M, T, S, H, R).",
        ),
        "core.date_era_year_zero": (
            "{era}0年はありません（最初の年は{era}元年です）。",
            "There is no year 0 of {era} (its first year is {era}元年).",
        ),
        "core.date_before_era": (
            "「{text}」は{era}の始まり（{first}）より前の日です（その日は{actual}です）。",
            "{text!r} is before {era} began ({first}); that day is {actual}.",
        ),
        "core.date_after_era": (
            "「{text}」は{era}の終わり（{last}）より後の日です（その日は{actual}です）。",
            "{text!r} is after {era} ended ({last}); that day is {actual}.",
        ),
        "core.date_before_gregorian": (
            "明治5年以前の和暦の日付は旧暦のため読み替えられません。西暦で入力してください。",
            "Era dates before 明治6年 (1873) are lunisolar-calendar dates and cannot be "
            "converted; enter the Gregorian date.",
        ),
    }
)


@dataclass(frozen=True)
class Era:
    """A 元号 of the Gregorian period: its names and the days it covers (both inclusive)."""

    name: str
    letter: str
    first_day: date
    last_day: date | None
    # The year counted as 元年 (the era's first year begins on its first day, not on 1 January).
    first_year: int


# Each change of era took effect on the first day below (大正・昭和: the 改元詔書 made the day of
# the 践祚 the new era's first day, so 明治45年7月30日 and 大正15年12月25日 do not exist; 平成:
# 元号を改める政令, in force 1989-01-08; 令和: 政令, in force 2019-05-01). Japan adopted the
# Gregorian calendar on 明治6年1月1日 (1873-01-01, 改暦ノ布告): earlier 明治 dates are dates of the
# lunisolar calendar, which no fixed offset converts, so they are refused rather than misread.
ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1873, 1, 1), date(1912, 7, 29), 1868),
    Era("大正", "T", date(1912, 7, 30), date(1926, 12, 24), 1912),
    Era("昭和", "S", date(1926, 12, 25), date(1989, 1, 7), 1926),
    Era("平成", "H", date(1989, 1, 8), date(2019, 4, 30), 1989),
    Era("令和", "R", date(2019, 5, 1), None, 2019),
)
_BY_NAME = {key: era for era in ERAS for key in (era.name, era.letter)}
GREGORIAN_SINCE = ERAS[0].first_day

_ERA_DATE = re.compile(r"^(?P<era>[^\d\s./\-]+?)\s*(?P<year>元|\d{1,3})\s*[年./\-]\s*"
                       r"(?P<month>\d{1,2})\s*[月./\-]\s*(?P<day>\d{1,2})\s*日?$")
_WESTERN_DATE = re.compile(r"^(\d{4})\s*[年./\-]\s*(\d{1,2})\s*[月./\-]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十]+")
_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}


def _kanji_number(text: str) -> str:
    """漢数字 as Arabic digits: 十-style (三十一) or digit by digit (二〇二四); '' if malformed."""
    if "十" not in text:
        return "".join(str(_KANJI_DIGITS[c]) for c in text)
    tens, _, units = text.partition("十")
    if len(tens) > 1 or len(units) > 1 or "十" in units or tens == "〇" or units == "〇":
        return ""
    return str(_KANJI_DIGITS.get(tens, 1) * 10 + _KANJI_DIGITS.get(units, 0))


def _fold(text: str) -> str:
    """NFKC (full-width digits and letters), upper case, 漢数字 as digits."""
    folded = unicodedata.normalize("NFKC", text).strip().upper()
    return _KANJI_NUMBER.sub(lambda m: _kanji_number(m[0]) or "\0", folded)


def era_date(day: date) -> str:
    """`day` written in its era (令和元年5月1日), for messages; 西暦 before 明治6年."""
    for era in reversed(ERAS):
        if day >= era.first_day:
            year = day.year - era.first_year + 1
            return f"{era.name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def _refused(code: str, typed: str, field: str | None, row: int | None,
             **params: Any) -> InvalidInput:
    return InvalidInput(Reason.of(code, field=field, row=row, text=typed[:40], **params))


def read_date(text: str, *, field: str | None = None, row: int | None = None) -> date:
    """A date as a person or a source system types it: 2024-04-01, 2024/4/1, 20240401,
    2024年4月1日, 令和6年4月1日, R6.4.1, H28/4/1, 令和元年5月1日, 令和六年四月一日 (eras 明治 from
    明治6年 to 令和; full-width digits too).

    Raises InvalidInput with the reason (code `core.date_*`, the field and row named) when the
    text is not a date, names an unknown era, or names a day outside its era.
    """
    typed = text.strip()
    folded = _fold(text)
    match = _ERA_DATE.match(folded)
    if match:
        era = _BY_NAME.get(match["era"])
        if era is None:
            raise _refused("core.date_era_unknown", typed, field, row, era=match["era"])
        year = 1 if match["year"] == "元" else int(match["year"])
        if year == 0:
            raise _refused("core.date_era_year_zero", typed, field, row, era=era.name)
        try:
            day = date(era.first_year + year - 1, int(match["month"]), int(match["day"]))
        except ValueError:
            raise _refused("core.date_no_such_day", typed, field, row) from None
        if day < GREGORIAN_SINCE:
            raise _refused("core.date_before_gregorian", typed, field, row)
        if day < era.first_day:
            raise _refused("core.date_before_era", typed, field, row, era=era.name,
                           first=era_date(era.first_day), actual=era_date(day))
        if era.last_day is not None and day > era.last_day:
            raise _refused("core.date_after_era", typed, field, row, era=era.name,
                           last=era_date(era.last_day), actual=era_date(day))
        return day
    match = _WESTERN_DATE.match(folded) or _COMPACT_DATE.match(folded)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise _refused("core.date_no_such_day", typed, field, row) from None
    raise _refused("core.date_not_a_date", typed, field, row)


def parse_date(text: str) -> date | None:
    """`read_date` for callers that only need to know whether the text is a date."""
    try:
        return read_date(text)
    except InvalidInput:
        return None


def date_or_text(text: str, *, field: str | None = None, row: int | None = None) -> date | str:
    """A date when `text` is one, else the text itself for a later validator (an ISO datetime,
    say); refused (InvalidInput) when it names a day that does not exist or is outside its era."""
    try:
        return read_date(text, field=field, row=row)
    except InvalidInput as error:
        if error.reasons[0].code == "core.date_not_a_date":
            return text
        raise


def date_reason(text: str, *, field: str | None = None, row: int | None = None) -> Reason | None:
    """Why `text` is not an acceptable date (None when it is one)."""
    try:
        read_date(text, field=field, row=row)
    except InvalidInput as error:
        return error.reasons[0]
    return None

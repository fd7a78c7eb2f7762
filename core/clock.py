"""Time: always timezone-aware, stored in UTC, shown in Asia/Tokyo."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Treat a naive value (as SQLite returns it) as UTC; convert an aware one."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_tokyo(moment: datetime) -> datetime:
    return as_utc(moment).astimezone(TOKYO)


def local_day(at: datetime) -> date:
    """The calendar day in Japan at an instant (ages, periods and deadlines count Japanese days)."""
    return to_tokyo(at).date()


def format_tokyo(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return to_tokyo(moment).strftime("%Y-%m-%d %H:%M")

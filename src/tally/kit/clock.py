"""The current time, always timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: A source of the current time (aware UTC): :func:`utcnow`, or a test's clock that it moves.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC; naive values are taken to be UTC already.

    SQLite hands back naive datetimes for values we stored as UTC.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant after ``day`` in ``zone``, in UTC: a date means through that day."""
    local = datetime.combine(day, time.min, tzinfo=zone)
    return (local + timedelta(days=1)).astimezone(UTC)


def local_date(value: datetime, zone: ZoneInfo) -> date:
    """The calendar date of ``value`` in ``zone``."""
    return as_utc(value).astimezone(zone).date()

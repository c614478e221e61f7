"""Periods a report judges: UTC days and ISO weeks, and the bars the market's calendar has in each."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from labkit.analysis.calendar import MarketCalendar, bar_times
from labkit.analysis.trips import _between, _ms
from labkit.errors import ConfigError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


_DAY = pd.Timedelta(days=1)


def iso_week(ts: pd.Timestamp) -> str:
    """Return the ISO week of an instant, ``YYYY-Www``.

    Examples
    --------
    >>> iso_week(pd.Timestamp("2026-01-05T10:00Z"))
    '2026-W02'
    """
    year, week, _ = ts.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str | date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the half-open UTC range ``[Monday 00:00, next Monday 00:00)`` of an ISO week.

    `week` is ``YYYY-Www``, or any day in it (a date, datetime or pandas Timestamp; UTC).
    """
    if isinstance(week, date):
        week = iso_week(pd.Timestamp(_utc_day(week)))
    match = _WEEK.match(week) if isinstance(week, str) else None
    try:
        assert match is not None
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except (AssertionError, ValueError):
        raise ConfigError(f"week: {week!r} is not an ISO week; write YYYY-Www, e.g. 2026-W02") from None
    _in_range(monday, "week", week)
    start = pd.Timestamp(monday.isoformat(), tz="UTC")
    return start, start + 7 * _DAY


def day_bounds(day: str | date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the half-open UTC range of a day: ``YYYY-MM-DD``, a date, or the UTC day of a datetime."""
    try:
        parsed = _utc_day(day) if isinstance(day, date) else date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ConfigError(f"date: {day!r} is not a day; write YYYY-MM-DD, e.g. 2026-01-05") from None
    _in_range(parsed, "date", day)
    start = pd.Timestamp(parsed.isoformat(), tz="UTC")
    return start, start + _DAY


def _utc_day(value: date) -> date:
    # A datetime (pandas' Timestamp too) names the UTC day it falls in; naive ones are UTC already.
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
    return value


def _in_range(day: date, field: str, text: object) -> None:
    if not date(1970, 1, 1) <= day < date(2200, 1, 1):
        raise ConfigError(f"{field}: {text!r} is outside 1970..2199; labkit keeps bars of those years only")


def coverage(
    journal: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    timeframe_ms: int,
    calendar: MarketCalendar | None = None,
) -> tuple[int, int]:
    """Return (decisions made, bars expected) in ``[start, end)`` of the market's `calendar`.

    Every bar the calendar has in the period is expected, whether or not the session ran then:
    the days it did not run count as missing. A decision counts once per bar, and only on a bar
    the calendar has. `calendar` defaults to 24/7.

    Examples
    --------
    >>> monday = pd.Timestamp("2026-01-05", tz="UTC")
    >>> ran = pd.DataFrame({"ts": monday + pd.to_timedelta(range(54), unit="h")})  # 2.25 days
    >>> coverage(ran, monday, monday + 7 * _DAY, 3_600_000)
    (54, 168)
    """
    calendar = calendar or MarketCalendar()
    phase = int(_ms(journal["ts"].iloc[0]) % timeframe_ms) if len(journal) else 0
    expected = calendar.expected_bars(start, end, timeframe_ms, phase)
    if journal.empty:
        return 0, expected
    times = bar_times(_between(journal, start, end))
    times = np.unique(times[calendar.in_calendar(times, start, end, timeframe_ms)])
    return len(times), expected


def heartbeat_gaps(journal: pd.DataFrame, timeframe_ms: int) -> pd.Series:
    """Return, per decision, the seconds since the previous decision was taken when that exceeds
    two bars (a stalled or restarted session), else 0."""
    if journal.empty:
        return pd.Series(dtype="float64")
    gaps = journal["decided_at"].diff().dt.total_seconds().fillna(0.0)
    return gaps.where(gaps > 2 * timeframe_ms / 1000.0, 0.0)


def relative_day(value: str | None, today: date | None = None) -> str | None:
    """Return ``today`` and ``yesterday`` as ``YYYY-MM-DD`` (UTC); any other value as it is.

    Schedules ask for "yesterday" rather than a date they cannot know when they are written.

    Examples
    --------
    >>> relative_day("yesterday", date(2026, 1, 1))
    '2025-12-31'
    """
    today = today or datetime.now(UTC).date()
    shifts = {"today": 0, "yesterday": 1}
    return (today - timedelta(days=shifts[value])).isoformat() if value in shifts else value


def relative_week(value: str | None, today: date | None = None) -> str | None:
    """Return ``this`` and ``last`` as ISO weeks ``YYYY-Www`` (UTC); any other value as it is.

    Examples
    --------
    >>> relative_week("last", date(2026, 1, 5))
    '2026-W01'
    """
    shifts = {"this": 0, "last": 7}
    if value not in shifts:
        return value
    year, week, _ = ((today or datetime.now(UTC).date()) - timedelta(days=shifts[value])).isocalendar()
    return f"{year}-W{week:02d}"

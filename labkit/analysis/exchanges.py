"""An exchange's sessions, from exchange-calendars: the days it trades and when each opens and closes.

exchange-calendars keeps every exchange's holidays, half days (early closes), late opens, lunch
breaks and one-off closures (the 2025-01-09 national day of mourning, Hurricane Sandy on
2012-10-29/30). `exchange_sessions` reads them into arrays of epoch milliseconds that
`labkit.analysis.calendar` counts bars in.

Building an exchange's calendar costs about half a second whatever its range (its holiday rules
dominate), so each exchange is built once, over the years asked for, and rebuilt only when a later
question reaches years outside them. Only ``equities`` calendars ask: a 24/7 or FX market never
imports exchange-calendars.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from datetime import time
from typing import Any

import numpy as np
import pandas as pd

from labkit.errors import ConfigError

DEFAULT_EXCHANGE = "XNYS"
_NO_BREAK = -1


@dataclass(frozen=True)
class RegularHours:
    """An exchange's regular trading hours: minutes after local midnight in `tz`, and its lunch break."""

    tz: str
    open_minute: int
    close_minute: int
    break_minutes: tuple[int, int] | None = None

    def segments(self) -> list[tuple[int, int]]:
        """Return the stretches a regular session trades, as (open, close) minutes: two with a break."""
        if self.break_minutes is None:
            return [(self.open_minute, self.close_minute)]
        return [(self.open_minute, self.break_minutes[0]), (self.break_minutes[1], self.close_minute)]


# Every yfinance session is XNYS: its hours are known without importing exchange-calendars (a
# quarter of a second) or building it (half a second), which annualised figures alone never need.
_KNOWN_HOURS = {DEFAULT_EXCHANGE: RegularHours("America/New_York", 9 * 60 + 30, 16 * 60)}


@dataclass(frozen=True)
class Sessions:
    """An exchange's sessions over whole years: one entry per session, in order.

    `days` are the sessions' dates (days since 1970-01-01); `opens`, `closes`, `break_starts` and
    `break_ends` are epoch ms (a break is -1 where the session has none). `late` and `early` are the
    ms a session opens after, and closes before, the regular hours of its date (a half day's
    `early` is 3 hours on XNYS).
    """

    exchange: str
    first_year: int
    last_year: int
    hours: RegularHours
    days: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    break_starts: np.ndarray
    break_ends: np.ndarray
    late: np.ndarray
    early: np.ndarray

    def covers(self, first_year: int, last_year: int) -> bool:
        """Return True when these sessions span the years `first_year` to `last_year`."""
        return self.first_year <= first_year and last_year <= self.last_year

    def on_days(self, first_day: int, last_day: int) -> np.ndarray:
        """Return the indices of the sessions dated `first_day` to `last_day` (days since 1970-01-01)."""
        lo, hi = np.searchsorted(self.days, [first_day, last_day + 1])
        return np.arange(lo, hi)

    def trading(self, lo: int, hi: int) -> np.ndarray:
        """Return the indices of the sessions that trade some time in ``[lo, hi)`` (epoch ms)."""
        first = int(np.searchsorted(self.closes, lo, side="right"))
        last = int(np.searchsorted(self.opens, hi, side="left"))
        return np.arange(first, max(first, last))


_BUILT: dict[str, Sessions] = {}
_BUILDING = threading.Lock()


def exchange_sessions(exchange: str, first_year: int, last_year: int) -> Sessions:
    """Return `exchange`'s sessions over the years `first_year` to `last_year`, at least.

    The sessions built for an exchange are kept: a question within their years costs nothing, one
    beyond them builds the exchange again over both ranges.
    """
    with _BUILDING:
        have = _BUILT.get(exchange)
        if have is not None and have.covers(first_year, last_year):
            return have
        if have is not None:
            first_year, last_year = min(first_year, have.first_year), max(last_year, have.last_year)
        with warnings.catch_warnings():
            # exchange-calendars reads tz-aware columns through `.values`, which pandas 3 deprecates.
            warnings.simplefilter("ignore", DeprecationWarning)
            built = _build(exchange, first_year, last_year)
        _BUILT[exchange] = built
        return built


def regular_hours(exchange: str) -> RegularHours:
    """Return `exchange`'s regular hours (today's, for an exchange that changed them)."""
    known = _KNOWN_HOURS.get(exchange) or (_BUILT[exchange].hours if exchange in _BUILT else None)
    if known is not None:
        return known
    year = pd.Timestamp.now(tz="UTC").year
    return exchange_sessions(exchange, year, year).hours


def _build(exchange: str, first_year: int, last_year: int) -> Sessions:
    import exchange_calendars as xc

    try:
        calendar = xc.get_calendar(exchange, start=f"{first_year}-01-01", end=f"{last_year}-12-31")
    except (ValueError, xc.errors.CalendarError) as exc:  # years it does not keep; a name it lost
        what = f"{exchange} over {first_year}-{last_year}"
        raise ConfigError(f"exchange: exchange-calendars cannot build {what}: {exc}") from None
    if calendar.open_offset or calendar.close_offset:
        raise ConfigError(
            f"exchange: {exchange}'s sessions open on one day and close on another; the equities "
            "calendar takes an exchange whose sessions open and close on the same day (e.g. XNYS, XLON)"
        )
    tz = str(calendar.tz)
    hours = RegularHours(
        tz,
        _minute(calendar.open_times[-1][1]),
        _minute(calendar.close_times[-1][1]),
        _break(calendar),
    )
    schedule = calendar.schedule
    days = schedule.index.to_numpy(dtype="datetime64[D]").astype("int64")
    opens, closes = _ms(schedule["open"]), _ms(schedule["close"])
    regular_opens = _regular(calendar.open_times, schedule.index, tz)
    regular_closes = _regular(calendar.close_times, schedule.index, tz)
    return Sessions(
        exchange,
        first_year,
        last_year,
        hours,
        days,
        opens,
        closes,
        _ms(schedule["break_start"]),
        _ms(schedule["break_end"]),
        np.maximum(opens - regular_opens, 0),
        np.maximum(regular_closes - closes, 0),
    )


def _regular(times: Any, dates: pd.DatetimeIndex, tz: str) -> np.ndarray:
    # exchange-calendars gives an exchange's hours as (from date, time) pairs, the first from None.
    result = np.zeros(len(dates), dtype="int64")
    for since, at in times:
        when = dates + pd.Timedelta(minutes=_minute(at))
        local = _ms(pd.Series(when.tz_localize(tz, nonexistent="shift_forward", ambiguous="NaT")))
        chosen = np.ones(len(dates), dtype=bool) if since is None else dates >= pd.Timestamp(since)
        result = np.where(chosen, local, result)
    return result


def _break(calendar: Any) -> tuple[int, int] | None:
    starts, ends = calendar.break_start_times, calendar.break_end_times
    if not starts or not ends:
        return None
    return _minute(starts[-1][1]), _minute(ends[-1][1])


def _minute(at: time) -> int:
    return at.hour * 60 + at.minute


def _ms(values: pd.Series) -> np.ndarray:
    # NaT (no break that session) reads as -1, never a time.
    stamps = pd.to_datetime(values, utc=True)
    ms = stamps.to_numpy(dtype="datetime64[ms]").astype("int64")
    return np.where(stamps.isna().to_numpy(), _NO_BREAK, ms)

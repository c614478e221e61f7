"""Market calendars: when a market trades, how many bars a day or a week holds, how many make a year.

Three calendars, after the market a source serves:

- ``24/7`` (``synthetic``, ``ccxt:*``): every day, 24 hours UTC; a year is 365 days.
- ``equities`` (``yfinance``): the sessions of an exchange (XNYS unless ``session.exchange`` names
  another), as exchange-calendars keeps them: its holidays, half days and one-off closures, during
  its trading hours (09:30-16:00 New York time on XNYS); a year is 252 sessions.
- ``fx``: Monday to Friday, 24 hours UTC; a year is 260 days.

A bar file's calendar (``csv:``, ``parquet:``, and any source labkit does not know) is inferred
from its bars by `infer_calendar`, unless the session's ``calendar`` setting names one. A bar
belongs to the calendar when it opens inside a trading window; a bar of a day or longer belongs to
the trading day it opens on. Coverage counts the bars the calendar has in a period
(`MarketCalendar.expected_bars`) and annualisation the periods a year holds
(`MarketCalendar.periods_per_year`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.exchanges import DEFAULT_EXCHANGE, RegularHours, exchange_sessions, regular_hours
from labkit.errors import ConfigError
from labkit.timeutil import DAY_MS

KINDS = ("24/7", "equities", "fx")
SETTINGS = ("auto", *KINDS)
DAYS_PER_YEAR = {"24/7": 365, "equities": 252, "fx": 260}
_WEEK_MS = 7 * DAY_MS
_EPOCH = date(1970, 1, 1)
# Weekdays that trade at least this long are an FX-like market, not an exchange's session.
_FULL_DAY_MS = 20 * 3_600_000


@dataclass(frozen=True)
class MarketCalendar:
    """When a market trades: its kind, its trading hours and how it was chosen.

    `open_minute` and `close_minute` are the trading hours of an ``equities`` day, in minutes after
    midnight in `tz`; the other kinds trade the whole UTC day. `basis` says why this calendar.
    ``equities`` trade the sessions of `exchange` (exchange-calendars' name, "" for XNYS): with the
    exchange's own hours, each session as the exchange keeps it (half days, late opens, lunch
    breaks); with other hours (a bar file's), those hours on each session's date, shortened as the
    exchange shortens that session.
    """

    kind: str = "24/7"
    open_minute: int = 0
    close_minute: int = 1440
    tz: str = "UTC"
    basis: str = "the default"
    exchange: str = ""

    @property
    def exchange_name(self) -> str:
        """Return the exchange whose sessions an ``equities`` calendar trades: XNYS unless named."""
        return self.exchange or DEFAULT_EXCHANGE

    @property
    def days_per_year(self) -> int:
        """Return the trading days in a year: 365, 252 or 260."""
        return DAYS_PER_YEAR[self.kind]

    def trades_on(self, day: date) -> bool:
        """Return True when `day` is a trading day.

        Examples
        --------
        >>> nyse = exchange_calendar()
        >>> nyse.trades_on(date(2026, 1, 5)), nyse.trades_on(date(2026, 1, 10))
        (True, False)
        >>> nyse.trades_on(date(2026, 11, 26)), MarketCalendar("fx").trades_on(date(2026, 11, 26))
        (False, True)
        >>> nyse.trades_on(date(2025, 1, 9))  # closed for a national day of mourning
        False
        """
        if self.kind == "24/7":
            return True
        if self.kind != "equities":
            return day.weekday() < 5
        number = (day - _EPOCH).days
        return len(exchange_sessions(self.exchange_name, day.year, day.year).on_days(number, number)) > 0

    def windows(self, start: pd.Timestamp, end: pd.Timestamp, timeframe_ms: int) -> list[tuple[int, int]]:
        """Return the trading windows ``[open, close)`` in epoch ms that lie in ``[start, end)``.

        Examples
        --------
        >>> monday = pd.Timestamp("2026-01-05", tz="UTC")
        >>> [(pd.Timestamp(a, unit="ms"), pd.Timestamp(b, unit="ms"))
        ...  for a, b in exchange_calendar().windows(monday, monday + pd.Timedelta(days=1), 60_000)]
        [(Timestamp('2026-01-05 14:30:00'), Timestamp('2026-01-05 21:00:00'))]
        """
        lo, hi = _ms(start), _ms(end)
        if self.kind == "24/7":
            return [(lo, hi)] if hi > lo else []
        if self.kind == "equities":
            return self._sessions(lo, hi, timeframe_ms) if hi > lo else []
        found = []
        for day in _days(lo, hi):  # fx: the whole UTC day of every weekday
            if not self.trades_on(day):
                continue
            midnight = _ms(pd.Timestamp(day, tz="UTC"))
            a, b = max(midnight, lo), min(midnight + DAY_MS, hi)
            if b > a:
                found.append((a, b))
        return found

    def expected_bars(
        self, start: pd.Timestamp, end: pd.Timestamp, timeframe_ms: int, phase_ms: int = 0
    ) -> int:
        """Return the bars the market has in ``[start, end)``: every bar that opens in a window.

        Bars open at multiples of the timeframe plus `phase_ms` (the offset a source's bars keep,
        e.g. 30 minutes for hourly bars of an exchange that opens at half past); an equities
        session's intraday bars open at its open.

        Examples
        --------
        >>> monday = pd.Timestamp("2026-01-05", tz="UTC")
        >>> week = (monday, monday + pd.Timedelta(days=7))
        >>> MarketCalendar().expected_bars(*week, 60_000), MarketCalendar("fx").expected_bars(*week, 60_000)
        (10080, 7200)
        >>> nyse = exchange_calendar()
        >>> nyse.expected_bars(*week, 60_000), nyse.expected_bars(*week, 86_400_000)
        (1950, 5)
        """
        total = 0
        for a, b in self.windows(start, end, timeframe_ms):
            anchor = self._anchor(a, timeframe_ms, phase_ms)
            total += _slots(a, b, anchor, timeframe_ms)
        return total

    def in_calendar(
        self, times_ms: np.ndarray, start: pd.Timestamp, end: pd.Timestamp, timeframe_ms: int
    ) -> np.ndarray:
        """Return, per bar open time (epoch ms), whether it opens in a trading window of ``[start, end)``."""
        times = np.asarray(times_ms, dtype="int64")
        inside = np.zeros(len(times), dtype=bool)
        for a, b in self.windows(start, end, timeframe_ms):
            inside |= (times >= a) & (times < b)
        return inside

    def split(
        self, start: pd.Timestamp, end: pd.Timestamp, parts: int, timeframe_ms: int
    ) -> list[pd.Timestamp]:
        """Return the ``parts + 1`` edges that cut the trading time of ``[start, end)`` into equal parts.

        A week of equities is cut in its 32.5 trading hours, not in its 168: no part is a weekend.

        Examples
        --------
        >>> monday = pd.Timestamp("2026-01-05", tz="UTC")
        >>> edges = exchange_calendar().split(monday, monday + pd.Timedelta(days=7), 2, 60_000)
        >>> [e.strftime("%a %H:%M") for e in edges]
        ['Mon 00:00', 'Wed 17:45', 'Mon 00:00']
        """
        spans = self.windows(start, end, timeframe_ms)
        total = sum(b - a for a, b in spans)
        edges = [start]
        for k in range(1, parts):
            target, passed = total * k / parts, 0.0
            for a, b in spans:
                if passed + (b - a) >= target:
                    edges.append(pd.Timestamp(int(a + target - passed), unit="ms", tz="UTC"))
                    break
                passed += b - a
            else:
                edges.append(end)
        return [*edges, end]

    def periods_per_year(self, timeframe_ms: int) -> float:
        """Return how many bars of `timeframe_ms` make a year of this market (the annualisation factor).

        Examples
        --------
        >>> MarketCalendar().periods_per_year(86_400_000), exchange_calendar().periods_per_year(86_400_000)
        (365.0, 252.0)
        >>> MarketCalendar().periods_per_year(60_000), MarketCalendar("fx").periods_per_year(3_600_000)
        (525600.0, 6240.0)
        >>> exchange_calendar().periods_per_year(60_000), exchange_calendar().periods_per_year(3_600_000)
        (98280.0, 1764.0)
        """
        if timeframe_ms >= _WEEK_MS:  # weekly and longer bars span calendar time, weekends included
            return 365.0 * DAY_MS / timeframe_ms
        if timeframe_ms >= DAY_MS:
            return self.days_per_year * DAY_MS / timeframe_ms
        return float(self.days_per_year * self.bars_per_day(timeframe_ms))

    def bars_per_day(self, timeframe_ms: int) -> float:
        """Return the bars of a regular (not early-closing) trading day."""
        if timeframe_ms >= DAY_MS:
            return DAY_MS / timeframe_ms
        if self.kind != "equities":
            return DAY_MS / timeframe_ms
        own = self._own_hours()
        segments = own.segments() if own else [(self.open_minute, self.close_minute)]
        return float(sum(math.ceil((b - a) * 60_000 / timeframe_ms) for a, b in segments))

    def describe(self) -> str:
        """Return one line saying when this market trades, how a year is counted and why.

        Examples
        --------
        >>> for part in exchange_calendar().describe().split("; "):
        ...     print(part)
        equities: XNYS sessions, half days and closures (exchange-calendars), 09:30-16:00 America/New_York
        a year is 252 sessions (yfinance source)
        """
        if self.kind == "24/7":
            when = "every day, 24 hours UTC"
        elif self.kind == "fx":
            when = "Monday to Friday, 24 hours UTC"
        else:
            own = self._own_hours()
            pause = own.break_minutes if own else None
            lunch = f" with a break {_clock(pause[0])}-{_clock(pause[1])}" if pause else ""
            when = (
                f"{self.exchange_name} sessions, half days and closures (exchange-calendars), "
                f"{self.hours}{lunch} {self.tz}"
            )
        unit = "sessions" if self.kind == "equities" else "days"
        return f"{self.kind}: {when}; a year is {self.days_per_year} {unit} ({self.basis})"

    def annualisation(self, timeframe_ms: int) -> str:
        """Return how an annualised figure of bars of `timeframe_ms` is scaled, for reports.

        Examples
        --------
        >>> MarketCalendar().annualisation(60_000)
        'annualised over 525,600 bars a year (24/7: 365 days)'
        """
        per_year = self.periods_per_year(timeframe_ms)
        unit = "sessions" if self.kind == "equities" else "days"
        return f"annualised over {per_year:,.6g} bars a year ({self.kind}: {self.days_per_year} {unit})"

    @property
    def hours(self) -> str:
        """Return the trading hours as ``HH:MM-HH:MM``."""
        return f"{_clock(self.open_minute)}-{_clock(self.close_minute)}"

    def to_dict(self) -> dict[str, Any]:
        """Return the calendar as JSON-ready data, with its description (and exchange, for equities)."""
        exchange = {"exchange": self.exchange_name} if self.kind == "equities" else {}
        return {
            "kind": self.kind,
            "hours": self.hours,
            "tz": self.tz,
            **exchange,
            "days_per_year": self.days_per_year,
            "basis": self.basis,
            "description": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MarketCalendar:
        """Return the calendar `to_dict` described; one recorded before exchanges were named is XNYS's."""
        opens, _, closes = str(data.get("hours", "00:00-24:00")).partition("-")
        return cls(
            str(data.get("kind", "24/7")),
            _minutes(opens),
            _minutes(closes),
            str(data.get("tz", "UTC")),
            str(data.get("basis", "")),
            str(data.get("exchange") or ""),
        )

    def _own_hours(self) -> RegularHours | None:
        # The exchange's regular hours when this calendar keeps them, else None (a bar file's hours).
        if self.kind != "equities":
            return None
        hours = regular_hours(self.exchange_name)
        own = (hours.tz, hours.open_minute, hours.close_minute)
        return hours if (self.tz, self.open_minute, self.close_minute) == own else None

    def _sessions(self, lo: int, hi: int, timeframe_ms: int) -> list[tuple[int, int]]:
        first_day, last_day = lo // DAY_MS, -(-hi // DAY_MS) - 1
        # A day either side: a session may open on the UTC day before its date (Sydney in summer).
        sessions = exchange_sessions(self.exchange_name, _year(first_day - 1), _year(last_day + 1))
        if timeframe_ms >= DAY_MS:  # a daily bar stands for the whole session: the UTC day of its date
            dated = sessions.days[sessions.on_days(first_day, last_day)]
            return _clip(zip(dated * DAY_MS, (dated + 1) * DAY_MS, strict=True), lo, hi)
        if self._own_hours() is not None:
            spans = []
            for k in sessions.trading(lo, hi):
                opens, closes = int(sessions.opens[k]), int(sessions.closes[k])
                pause, resume = int(sessions.break_starts[k]), int(sessions.break_ends[k])
                spans += [(opens, pause), (resume, closes)] if pause >= 0 else [(opens, closes)]
            return _clip(spans, lo, hi)
        picked = sessions.on_days(first_day, last_day)
        midnights = pd.DatetimeIndex(sessions.days[picked].astype("datetime64[D]"))
        opens = _local_ms(midnights, self.open_minute, self.tz) + sessions.late[picked]
        closes = _local_ms(midnights, self.close_minute, self.tz) - sessions.early[picked]
        return _clip(zip(opens, closes, strict=True), lo, hi)

    def _anchor(self, window_open: int, timeframe_ms: int, phase_ms: int) -> int:
        # An exchange's intraday bars start at its open; elsewhere bars keep their source's phase.
        if self.kind == "equities" and timeframe_ms < DAY_MS:
            return window_open
        return phase_ms


def exchange_calendar(basis: str = "yfinance source", exchange: str = DEFAULT_EXCHANGE) -> MarketCalendar:
    """Return the calendar of an exchange's equities (XNYS: 09:30-16:00 New York time), its hours its own.

    Examples
    --------
    >>> london = exchange_calendar("calendar set to equities", "XLON")
    >>> london.hours, london.tz, london.periods_per_year(60_000)
    ('08:00-16:30', 'Europe/London', 128520.0)
    """
    hours = regular_hours(exchange)
    own = "" if exchange == DEFAULT_EXCHANGE else exchange
    return MarketCalendar("equities", hours.open_minute, hours.close_minute, hours.tz, basis, own)


def infer_calendar(times_ms: np.ndarray, timeframe_ms: int) -> MarketCalendar:
    """Return the calendar a series of bar open times (epoch ms) keeps.

    Bars on a Saturday: ``24/7``. No bar on a Saturday the bars span: daily bars are ``equities``
    (252 a year); intraday bars that trade 20 hours or more of a weekday are ``fx``, fewer hours
    ``equities`` with the hours the bars trade on most days (UTC). Bars that span no whole
    Saturday cannot tell: ``24/7``, unless their hours are an exchange's.

    Examples
    --------
    >>> hours = np.arange(24 * 14) * 3_600_000 + 1_767_571_200_000  # two weeks of hours from a Monday
    >>> weekday = hours[(hours // 86_400_000 + 3) % 7 < 5]
    >>> infer_calendar(hours, 3_600_000).kind, infer_calendar(weekday, 3_600_000).kind
    ('24/7', 'fx')
    >>> session = weekday[(weekday % 86_400_000 >= 14 * 3_600_000) & (weekday % 86_400_000 < 21 * 3_600_000)]
    >>> found = infer_calendar(session, 3_600_000)
    >>> found.kind, found.hours
    ('equities', '14:00-21:00')
    """
    times = _in_order(times_ms)
    if not len(times):
        return MarketCalendar("24/7", basis="no bars to infer from")
    days = times // DAY_MS
    if np.any(_weekday(days) == 5):
        return MarketCalendar("24/7", basis="inferred: the bars trade on Saturdays")
    spans_weekend = _whole_saturday_within(int(times[0]), int(times[-1]) + timeframe_ms)
    if timeframe_ms >= DAY_MS:
        if spans_weekend:
            return MarketCalendar("equities", basis="inferred: daily bars, none at weekends")
        return MarketCalendar("24/7", basis="inferred: the bars span no weekend to tell")
    opens, closes = _trading_hours(times, timeframe_ms)
    if closes - opens < _FULL_DAY_MS // 60_000:
        return MarketCalendar("equities", opens, closes, "UTC", "inferred: the hours the bars trade")
    if spans_weekend:
        return MarketCalendar("fx", basis="inferred: 24-hour weekdays, no weekend bars")
    return MarketCalendar("24/7", basis="inferred: the bars span no weekend to tell")


def session_calendar(
    source: str,
    setting: str = "auto",
    times_ms: np.ndarray | None = None,
    timeframe_ms: int = 60_000,
    exchange: str | None = None,
) -> MarketCalendar:
    """Return the calendar of a session on `source`, with the ``calendar`` setting applied.

    ``auto`` follows the source: ``synthetic`` and ``ccxt:*`` are 24/7, ``yfinance`` is equities,
    anything else (bar files) is inferred from `times_ms`, the open times of its bars.
    ``equities`` on a bar file keeps the hours the file trades. Equities trade the sessions of
    `exchange` (``session.exchange``; None or "" is XNYS).

    Examples
    --------
    >>> session_calendar("ccxt:binance").kind, session_calendar("yfinance").kind
    ('24/7', 'equities')
    >>> session_calendar("synthetic", "fx").describe()
    'fx: Monday to Friday, 24 hours UTC; a year is 260 days (calendar set to fx)'
    """
    if setting not in SETTINGS:
        raise ConfigError(f"calendar: {setting!r} is not a calendar; allowed: {', '.join(SETTINGS)}")
    kind = source.partition(":")[0]
    times = np.asarray([] if times_ms is None else times_ms, dtype="int64")
    if setting in ("24/7", "fx"):
        return MarketCalendar(setting, basis=f"calendar set to {setting}")
    exchange = exchange or DEFAULT_EXCHANGE
    if setting == "equities":
        if kind == "yfinance" or not len(times) or timeframe_ms >= DAY_MS:
            return exchange_calendar("calendar set to equities", exchange)
        opens, closes = _trading_hours(_in_order(times), timeframe_ms)
        basis = "calendar set to equities; the hours the bars trade"
        return MarketCalendar("equities", opens, closes, "UTC", basis, _named(exchange))
    if kind in ("synthetic", "ccxt"):
        return MarketCalendar("24/7", basis=f"{kind} source")
    if kind == "yfinance":
        return exchange_calendar(exchange=exchange)
    found = infer_calendar(times, timeframe_ms)
    return replace(found, exchange=_named(exchange)) if found.kind == "equities" else found


def calendar_of(
    config: Mapping[str, Any], journal: pd.DataFrame, setting: str | None = None
) -> MarketCalendar:
    """Return the calendar of a session from its saved config and its journal.

    `setting` (a ``--calendar`` given to a report) wins over the session's ``session.calendar``.
    A config recorded before ``session.exchange`` existed has XNYS's equities.
    """
    from labkit.timeutil import timeframe_ms

    session = config.get("session", {})
    chosen = setting or session.get("calendar") or "auto"
    times = bar_times(journal)
    return session_calendar(
        str(session.get("source", "synthetic")),
        chosen,
        times,
        timeframe_ms(session.get("timeframe", "1m")),
        session.get("exchange"),
    )


def bar_times(journal: pd.DataFrame) -> np.ndarray:
    """Return the journal's bar open times as epoch milliseconds."""
    if journal.empty or "ts" not in journal.columns:
        return np.empty(0, dtype="int64")
    since_epoch = (journal["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return since_epoch.to_numpy(dtype="int64")


def _trading_hours(times: np.ndarray, timeframe_ms: int) -> tuple[int, int]:
    # The first and last bar of most weekdays: a day the session joined late or left early is rare.
    days = times // DAY_MS
    weekdays = _weekday(days) < 5
    times, days = times[weekdays], days[weekdays]
    if not len(times):
        return 0, 1440
    first = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])  # the times are in order
    last = np.r_[first[1:] - 1, len(times) - 1]
    opens = _mode(times[first] % DAY_MS)
    closes = min(_mode(times[last] % DAY_MS) + timeframe_ms, DAY_MS)
    return int(opens // 60_000), int(math.ceil(closes / 60_000))


def _mode(values: np.ndarray) -> int:
    found, counts = np.unique(values, return_counts=True)
    return int(found[np.argmax(counts)])


def _in_order(times_ms: np.ndarray) -> np.ndarray:
    # Bars arrive in order: checking that is a pass over them, sorting them (np.unique) is half a
    # second for a million.
    times = np.asarray(times_ms, dtype="int64")
    if len(times) < 2 or bool(np.all(times[1:] > times[:-1])):
        return times
    return np.unique(times)


def _named(exchange: str) -> str:
    return "" if exchange == DEFAULT_EXCHANGE else exchange


def _clip(spans: Any, lo: int, hi: int) -> list[tuple[int, int]]:
    clipped = ((max(int(a), lo), min(int(b), hi)) for a, b in spans)
    return [(a, b) for a, b in clipped if b > a]


def _local_ms(midnights: pd.DatetimeIndex, minute: int, tz: str) -> np.ndarray:
    wall = midnights + pd.Timedelta(minutes=minute)
    return (wall.tz_localize(tz) if tz != "UTC" else wall).as_unit("ms").asi8


def _year(day: int) -> int:
    return (_EPOCH + timedelta(days=day)).year


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01, day 0, was a Thursday; Monday is 0


def _whole_saturday_within(lo: int, hi: int) -> bool:
    first = -(-lo // DAY_MS)
    saturday = first + (5 - (first + 3) % 7) % 7
    return (saturday + 1) * DAY_MS <= hi


def _days(lo: int, hi: int) -> list[date]:
    first = pd.Timestamp(lo, unit="ms").date()
    last = pd.Timestamp(hi - 1, unit="ms").date()
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def _slots(lo: int, hi: int, anchor: int, step: int) -> int:
    # Bar opens t = anchor + k * step with lo <= t < hi.
    first = lo + (anchor - lo) % step
    return max(0, -(-(hi - first) // step))


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    try:
        return int(hours) * 60 + int(minutes or 0)
    except ValueError:
        return 0

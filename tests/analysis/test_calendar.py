"""Market calendars (issue 9): bars expected and annualisation for 24/7, equity and FX markets.

Coverage used to count only the span a session ran, and Sharpe was always annualised over a 365-day
year, 20% too high for daily equities. Here each calendar is checked on the bars it expects in a
day and a week, the periods in its year, and how it is chosen for a session's source.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.calendar import MarketCalendar, calendar_of, exchange_calendar, session_calendar
from labkit.analysis.periods import day_bounds, week_bounds
from labkit.config.loading import load_config
from labkit.engine.journal import read_journal
from labkit.errors import ConfigError
from labkit.readiness.weekly import weekly_readiness
from labkit.session.paths import session_paths
from labkit.session.state import read_saved_config
from labkit.timeutil import timeframe_ms
from tests import stubs

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
FX = MarketCalendar("fx")
NYSE = exchange_calendar()


@pytest.mark.parametrize(
    ("calendar", "timeframe", "per_year"),
    [
        (MarketCalendar(), DAY, 365.0),
        (MarketCalendar(), MINUTE, 365 * 1440.0),
        (NYSE, DAY, 252.0),
        (NYSE, MINUTE, 252 * 390.0),
        (NYSE, HOUR, 252 * 7.0),  # 09:30, 10:30 ... 15:30: the last hour is half a bar
        (FX, DAY, 260.0),
        (FX, HOUR, 260 * 24.0),
        (MarketCalendar(), 7 * DAY, 365 / 7),
    ],
)
def test_periods_per_year_when_calendar_and_timeframe_given_counts_the_markets_year(
    calendar, timeframe, per_year
):
    # Arrange / Act
    result = calendar.periods_per_year(timeframe)
    # Assert
    assert result == pytest.approx(per_year)


def test_periods_per_year_when_daily_equities_annualise_sharpe_over_252_not_365():
    # Arrange: issue 9, a daily equity Sharpe annualised over 365 days read about 20% too high
    per_bar_sharpe = 0.1
    # Act
    annual = per_bar_sharpe * math.sqrt(NYSE.periods_per_year(DAY))
    # Assert
    assert annual == pytest.approx(0.1 * math.sqrt(252))
    assert per_bar_sharpe * math.sqrt(365) / annual == pytest.approx(1.2035, abs=1e-4)
    assert NYSE.annualisation(DAY) == "annualised over 252 bars a year (equities: 252 sessions)"


@pytest.mark.parametrize(
    ("calendar", "week", "timeframe", "expected"),
    [
        (MarketCalendar(), "2026-W02", MINUTE, 7 * 1440),
        (FX, "2026-W02", MINUTE, 5 * 1440),
        (NYSE, "2026-W02", MINUTE, 5 * 390),
        (NYSE, "2026-W02", HOUR, 5 * 7),
        (NYSE, "2026-W02", DAY, 5),
        (NYSE, "2026-W04", MINUTE, 4 * 390),  # Martin Luther King Jr. Day, Monday 2026-01-19
        (NYSE, "2026-W48", MINUTE, 3 * 390 + 210),  # Thanksgiving, then a 13:00 close on Friday
        (FX, "2026-W48", MINUTE, 5 * 1440),
    ],
)
def test_expected_bars_when_whole_week_counts_every_bar_of_the_calendar(calendar, week, timeframe, expected):
    # Arrange
    start, end = week_bounds(week)
    # Act
    result = calendar.expected_bars(start, end, timeframe)
    # Assert
    assert result == expected


@pytest.mark.parametrize(
    ("day", "opens"),
    [("2026-03-06", "14:30"), ("2026-03-09", "13:30")],  # New York moves its clocks on 2026-03-08
)
def test_windows_when_daylight_saving_changes_follow_new_york_time(day, opens):
    # Arrange
    start, end = day_bounds(day)
    # Act
    [(first, last)] = NYSE.windows(start, end, MINUTE)
    # Assert
    assert pd.Timestamp(first, unit="ms").strftime("%H:%M") == opens
    assert (last - first) == 390 * MINUTE


def test_trades_on_when_weekend_or_holiday_only_24_7_trades():
    # Arrange
    saturday, good_friday = date(2026, 1, 10), date(2026, 4, 3)
    # Act
    result = [(c.trades_on(saturday), c.trades_on(good_friday)) for c in (MarketCalendar(), FX, NYSE)]
    # Assert
    assert result == [(True, True), (False, True), (False, False)]


@pytest.mark.parametrize(
    ("source", "setting", "kind"),
    [
        ("synthetic", "auto", "24/7"),
        ("ccxt:binance", "auto", "24/7"),
        ("yfinance", "auto", "equities"),
        ("synthetic", "fx", "fx"),
        ("yfinance", "24/7", "24/7"),
        ("csv:bars.csv", "equities", "equities"),
    ],
)
def test_session_calendar_when_source_or_setting_given_picks_the_market(source, setting, kind):
    # Arrange / Act
    result = session_calendar(source, setting)
    # Assert
    assert result.kind == kind


def test_session_calendar_when_setting_unknown_names_the_field():
    # Arrange / Act
    with pytest.raises(ConfigError) as caught:
        session_calendar("synthetic", "crypto")
    # Assert
    assert str(caught.value).startswith("calendar: 'crypto' is not a calendar")


def test_config_when_session_calendar_unknown_refuses_naming_the_key():
    # Arrange / Act
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"session.calendar": "crypto"}, environ={})
    # Assert
    assert "session.calendar" in str(caught.value)


def _bar_file(path: Path, times: pd.DatetimeIndex) -> str:
    closes = 100 + np.sin(np.arange(len(times)) / 5.0)
    frame = pd.DataFrame(
        {"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": closes, "high": closes + 0.5,
         "low": closes - 0.5, "close": closes, "volume": 1.0}
    )
    frame.to_csv(path, index=False)
    return f"csv:{path}"


def _file_session(home: Path, name: str, times: pd.DatetimeIndex, timeframe: str):
    spec = _bar_file(home / f"{name}.csv", times)
    until = times[-1] + pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    stubs.replayed_session(home, name, times[0].isoformat(), until.isoformat(),
                           **{"session.source": spec, "session.timeframe": timeframe})
    paths = session_paths(home, name)
    return read_saved_config(paths) or {}, read_journal(paths.decisions)


def _week_hours(keep) -> pd.DatetimeIndex:
    hours = pd.date_range("2025-12-29", "2026-01-12", freq="h", inclusive="left", tz="UTC")
    return hours[[keep(t) for t in hours]]


@pytest.fixture(scope="module")
def file_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


def test_calendar_of_when_bar_file_trades_exchange_hours_infers_equities_and_covers_its_week(file_home):
    # Arrange: two weeks of hourly bars, 14:00-21:00 UTC on weekdays only
    times = _week_hours(lambda t: t.weekday() < 5 and 14 <= t.hour < 21)
    config, journal = _file_session(file_home, "stocks", times, "1h")
    # Act
    calendar = calendar_of(config, journal)
    result = weekly_readiness(journal, "2026-W02", load_config(None, {}, environ={}).readiness, HOUR,
                              calendar=calendar)
    # Assert: the weekend and the night are no missing bars
    assert (calendar.kind, calendar.hours, calendar.periods_per_year(HOUR)) == ("equities", "14:00-21:00", 252 * 7)
    assert (result.decisions, result.expected) == (35, 35)
    assert result.gate("coverage").passed


def test_calendar_of_when_bar_file_trades_24_hour_weekdays_infers_fx_unless_told_otherwise(file_home):
    # Arrange: two weeks of hourly bars on weekdays, all day
    times = _week_hours(lambda t: t.weekday() < 5)
    config, journal = _file_session(file_home, "fx", times, "1h")
    readiness = load_config(None, {}, environ={}).readiness
    # Act
    inferred = calendar_of(config, journal)
    told = calendar_of(config, journal, "24/7")
    as_fx = weekly_readiness(journal, "2026-W02", readiness, HOUR, calendar=inferred)
    as_crypto = weekly_readiness(journal, "2026-W02", readiness, HOUR, calendar=told)
    # Assert
    assert (inferred.kind, inferred.periods_per_year(HOUR)) == ("fx", 260 * 24)
    assert (as_fx.decisions, as_fx.expected) == (120, 120)
    assert (as_crypto.decisions, as_crypto.expected) == (120, 168)
    assert not as_crypto.gate("coverage").passed


def test_calendar_of_when_bar_file_has_daily_bars_without_weekends_counts_252_a_year(file_home):
    # Arrange: six weeks of daily bars, weekdays only
    days = pd.date_range("2025-12-01", "2026-01-12", freq="D", inclusive="left", tz="UTC")
    config, journal = _file_session(file_home, "daily", days[days.day_of_week < 5], "1d")
    # Act
    calendar = calendar_of(config, journal)
    # Assert
    assert (calendar.kind, calendar.periods_per_year(DAY)) == ("equities", 252.0)
    assert calendar.expected_bars(*week_bounds("2026-W02"), DAY) == 5


def test_calendar_of_when_bar_file_trades_weekends_is_24_7(file_home):
    # Arrange
    times = _week_hours(lambda t: True)
    config, journal = _file_session(file_home, "crypto", times, "1h")
    # Act
    calendar = calendar_of(config, journal)
    # Assert
    assert (calendar.kind, calendar.periods_per_year(HOUR)) == ("24/7", 365 * 24)

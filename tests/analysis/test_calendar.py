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

from labkit.analysis.calendar import (
    MarketCalendar,
    calendar_of,
    exchange_calendar,
    infer_calendar,
    session_calendar,
)
from labkit.analysis.periods import coverage, day_bounds, week_bounds
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
    # Decided as the bars close (a simulated clock): the verdict counts forward decisions only.
    stubs.forward_session(home, name, times[0].isoformat(), until.isoformat(),
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


# Issue 17: equities trade an exchange's sessions as exchange-calendars keeps them. Each case below
# failed on the hand-written US holidays it replaced (which expected a full session on these days).

LONDON = exchange_calendar("calendar set to equities", "XLON")


@pytest.mark.parametrize(
    "closed",
    [
        date(2025, 1, 9),  # national day of mourning for President Carter
        date(2018, 12, 5),  # national day of mourning for President George H. W. Bush
        date(2012, 10, 29),  # Hurricane Sandy
        date(2012, 10, 30),
    ],
)
def test_expected_bars_when_exchange_closed_for_one_day_expects_none(closed):
    # Arrange
    start, end = day_bounds(closed.isoformat())
    # Act
    result = [NYSE.trades_on(closed), *(NYSE.expected_bars(start, end, tf) for tf in (MINUTE, DAY))]
    # Assert
    assert result == [False, 0, 0]


@pytest.mark.parametrize(
    ("week", "timeframe", "expected"),
    [
        ("2025-W02", MINUTE, 4 * 390),  # Thursday 2025-01-09 closed
        ("2025-W02", DAY, 4),
        ("2012-W44", MINUTE, 3 * 390),  # Monday and Tuesday closed for Hurricane Sandy
        ("2018-W49", HOUR, 4 * 7),  # Wednesday 2018-12-05 closed
    ],
)
def test_expected_bars_when_week_holds_a_one_off_closure_counts_the_sessions_only(week, timeframe, expected):
    # Arrange
    start, end = week_bounds(week)
    # Act
    result = NYSE.expected_bars(start, end, timeframe)
    # Assert
    assert result == expected


def _every_bar(calendar: MarketCalendar, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    opens = [t for a, b in calendar.windows(start, end, MINUTE) for t in range(a, b, MINUTE)]
    return pd.DataFrame({"ts": pd.to_datetime(opens, unit="ms", utc=True)})


def test_coverage_when_session_decides_every_bar_of_a_week_with_a_closure_is_whole():
    # Arrange: a session that decided every bar XNYS traded in the week of 2025-01-09
    start, end = week_bounds("2025-W02")
    journal = _every_bar(NYSE, start, end)
    # Act
    made, expected = coverage(journal, start, end, MINUTE, NYSE)
    # Assert: the closed Thursday is no missing bars (the old calendar expected 1950: 80%)
    assert (made, expected) == (4 * 390, 4 * 390)


@pytest.mark.parametrize(
    ("calendar", "day", "bars", "closes"),
    [
        (NYSE, "2024-11-29", 210, "18:00"),  # the day after Thanksgiving: 13:00 New York
        (NYSE, "2024-12-24", 210, "18:00"),
        (MarketCalendar("equities", 14 * 60 + 30, 21 * 60, "UTC", "a bar file"), "2024-11-29", 210, "18:00"),
        (LONDON, "2024-12-24", 270, "12:30"),  # Christmas Eve: 12:30 London
        (LONDON, "2024-12-23", 510, "16:30"),
    ],
)
def test_windows_when_half_day_closes_early_expects_fewer_bars(calendar, day, bars, closes):
    # Arrange
    start, end = day_bounds(day)
    # Act
    expected = calendar.expected_bars(start, end, MINUTE)
    [(_, last)] = calendar.windows(start, end, MINUTE)
    # Assert
    assert expected == bars
    assert pd.Timestamp(last, unit="ms").strftime("%H:%M") == closes


def test_expected_bars_when_exchange_breaks_for_lunch_counts_both_halves():
    # Arrange: Tokyo trades 09:00-11:30 and 12:30-15:30 (since 2024-11-05)
    tokyo = exchange_calendar("calendar set to equities", "XTKS")
    start, end = day_bounds("2025-01-06")
    # Act
    result = (tokyo.expected_bars(start, end, MINUTE), len(tokyo.windows(start, end, MINUTE)))
    # Assert
    assert result == (150 + 180, 2)
    assert tokyo.periods_per_year(MINUTE) == 252 * 330
    assert "with a break 11:30-12:30 Asia/Tokyo" in tokyo.describe()


def test_calendar_of_when_session_exchange_names_london_trades_its_hours_and_holidays():
    # Arrange
    config = load_config(None, {"session.source": "yfinance", "session.exchange": "xlon"}, environ={})
    start, end = week_bounds("2026-W01")  # New Year's Day, Thursday 2026-01-01, closes London
    # Act
    calendar = calendar_of(config.model_dump(mode="json"), pd.DataFrame())
    # Assert
    assert config.session.exchange == "XLON"
    assert (calendar.exchange_name, calendar.hours, calendar.tz) == ("XLON", "08:00-16:30", "Europe/London")
    assert calendar.periods_per_year(MINUTE) == 252 * 510
    assert calendar.expected_bars(start, end, MINUTE) == 3 * 510 + 270  # 2025-12-31 closes at 12:30
    assert calendar.to_dict()["exchange"] == "XLON"


@pytest.mark.parametrize(
    "recorded",
    [
        {"session": {"source": "yfinance", "calendar": "equities"}},  # before session.exchange existed
        {"session": {"source": "yfinance", "calendar": "auto", "exchange": "XNYS"}},
    ],
)
def test_calendar_of_when_recorded_config_has_no_exchange_is_xnys(recorded):
    # Arrange
    start, end = week_bounds("2025-W02")
    # Act
    calendar = calendar_of(recorded, pd.DataFrame())
    # Assert
    assert (calendar.exchange_name, calendar.hours, calendar.expected_bars(start, end, MINUTE)) == (
        "XNYS", "09:30-16:00", 4 * 390
    )


def test_from_dict_when_recorded_before_exchanges_were_named_is_xnys():
    # Arrange: a weekly verdict's calendar as labkit recorded it before issue 17
    recorded = {"kind": "equities", "hours": "09:30-16:00", "tz": "America/New_York",
                "basis": "yfinance source"}
    # Act
    calendar = MarketCalendar.from_dict(recorded)
    # Assert
    assert calendar == NYSE
    assert calendar.to_dict()["exchange"] == "XNYS"


def test_config_when_session_exchange_unknown_refuses_naming_the_key_and_valid_names():
    # Arrange / Act
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"session.exchange": "XNYZ"}, environ={})
    # Assert
    message = str(caught.value)
    assert "session.exchange: 'XNYZ' is unknown to exchange-calendars; did you mean" in message
    assert "XNYS" in message and "XLON" in message


def test_cli_when_session_exchange_unknown_exits_2(tmp_path, monkeypatch, capsys):
    # Arrange
    from labkit.cli import main

    monkeypatch.setenv("LABKIT_SESSION__EXCHANGE", "Nowhere")
    # Act
    code = main(["--home", str(tmp_path), "backtest", "--max-bars", "10", "--json"])
    # Assert
    assert code == 2
    assert "session.exchange" in capsys.readouterr().err


def test_calendars_when_24_7_or_fx_never_build_an_exchange_calendar(monkeypatch):
    # Arrange: building one costs half a second; crypto and FX markets must not pay it
    from labkit.analysis import exchanges

    def refuse(*args):
        raise AssertionError("an exchange calendar was built")

    monkeypatch.setattr(exchanges, "_build", refuse)
    monkeypatch.setattr(exchanges, "_BUILT", {})
    minutes = np.arange(100_000, dtype="int64") * MINUTE + 1_767_571_200_000
    start, end = week_bounds("2026-W02")
    # Act
    calendars = [
        session_calendar("synthetic"),
        session_calendar("ccxt:binance"),
        session_calendar("csv:x", "auto", minutes),  # a bar file of 24/7 bars, inferred
        session_calendar("synthetic", "fx"),
    ]
    result = [(c.kind, c.expected_bars(start, end, MINUTE), c.periods_per_year(MINUTE)) for c in calendars]
    # Assert
    assert result == [("24/7", 10080, 525600.0)] * 3 + [("fx", 7200, 374400.0)]


def test_exchange_sessions_when_asked_again_within_their_years_are_not_built_again():
    # Arrange
    from labkit.analysis.exchanges import exchange_sessions

    first = exchange_sessions("XNYS", 2024, 2025)
    # Act
    again = exchange_sessions("XNYS", 2025, 2025)
    wider = exchange_sessions("XNYS", 2023, 2025)
    # Assert
    assert again is first
    assert wider.first_year <= 2023 and wider.last_year >= 2025
    assert exchange_sessions("XNYS", 2024, 2024) is wider


def test_infer_calendar_when_times_out_of_order_or_repeated_infers_as_if_sorted():
    # Arrange: two weeks of weekday hours, once in order and once shuffled with repeats
    hours = _week_hours(lambda t: t.weekday() < 5)
    ordered = ((hours - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy()
    shuffled = np.random.default_rng(0).permutation(np.r_[ordered, ordered[:10]])
    # Act
    result = [infer_calendar(t, HOUR) for t in (ordered, shuffled)]
    # Assert
    assert result[0] == result[1]
    assert result[0].kind == "fx"

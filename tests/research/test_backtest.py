"""A backtest annualises over the calendar of the market it ran on, the named exchange included."""

from __future__ import annotations

import pytest

from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.research.backtest import run_backtest
from labkit.timeutil import parse_instant


@pytest.mark.parametrize(("exchange", "minutes"), [("XNYS", 390), ("XLON", 510)])
def test_backtest_when_equities_on_a_named_exchange_annualises_over_its_sessions(exchange, minutes):
    # Arrange: yfinance bars are equities, and the exchange decides how long a session is (a bar
    # file's own hours would decide it for a file; yfinance's are the exchange's)
    bars = synthetic_bars("SPY", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-06"))
    overrides = {"session.source": "yfinance", "session.exchange": exchange}
    config = load_config(None, overrides, environ={})
    # Act
    summary = run_backtest(config, bars).summary
    # Assert: 252 sessions of the exchange's regular hours, in 1-minute bars
    assert summary["periods_per_year"] == 252 * minutes

"""labkit.analysis.metrics against empyrical-reloaded and the worked examples of Bailey & López de Prado.

empyrical's conventions, which labkit follows: Sharpe with ``ddof=1`` and a zero risk-free rate,
annualised by the square root of the periods in a year; annual volatility the same deviation times
that root; ``annual_return`` compounded over the bars; ``max_drawdown`` negative (labkit's is the
same number, positive); Sortino's downside deviation a root mean square over every return.
"""

from __future__ import annotations

import doctest
import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from labkit.analysis import metrics
from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.research.backtest import run_backtest
from tests import stubs

# 24/7 days, equity sessions, FX days, and 1-minute bars of a 24/7 year.
PERIODS = [365, 252, 260, 525_600]


def _random_returns(seed: int, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Fat tails and a drift, so skewness, kurtosis and drawdowns are far from a normal's.
    return rng.standard_t(4, n) * 0.01 + 0.0004


def _fixture_returns() -> np.ndarray:
    closes = read_bar_file(stubs.FIXTURE_CSV)["close"].to_numpy()
    return np.diff(closes) / closes[:-1]


def _backtest_returns() -> np.ndarray:
    bars = read_bar_file(stubs.FIXTURE_CSV)
    result = run_backtest(load_config(None, {"gates.enabled": ["data"]}, environ={}), bars)
    return metrics.equity_returns(result.equity.to_numpy(), 10_000.0)


SAMPLES = {
    "random-0": lambda: _random_returns(0),
    "random-1": lambda: _random_returns(1, 2_000),
    "random-2": lambda: _random_returns(2, 60),
    "fixture-closes": _fixture_returns,
    "fixture-backtest": _backtest_returns,
}


@pytest.fixture(params=list(SAMPLES), scope="module")
def returns(request: pytest.FixtureRequest) -> np.ndarray:
    return SAMPLES[request.param]()


@pytest.mark.parametrize("ppy", PERIODS)
def test_ratios_when_compared_with_empyrical_match(returns, ppy):
    # Arrange
    expected = {
        "sharpe": ep.sharpe_ratio(returns, annualization=ppy),
        "annual_volatility": ep.annual_volatility(returns, annualization=ppy),
        "annual_return": ep.annual_return(returns, annualization=ppy),
        "sortino": ep.sortino_ratio(returns, annualization=ppy),
        "downside_risk": ep.downside_risk(returns, annualization=ppy),
        "calmar": ep.calmar_ratio(returns, annualization=ppy),
    }
    # Act
    result = {
        "sharpe": metrics.sharpe_ratio(returns, ppy),
        "annual_volatility": metrics.annual_volatility(returns, ppy),
        "annual_return": metrics.annual_return(returns, ppy),
        "sortino": metrics.sortino_ratio(returns, ppy),
        "downside_risk": metrics.downside_risk(returns, ppy),
        "calmar": metrics.calmar_ratio(returns, ppy),
    }
    # Assert
    assert result == pytest.approx(expected, rel=1e-10, nan_ok=True)


def test_drawdown_and_total_return_when_compared_with_empyrical_match(returns):
    # Arrange
    equity = 10_000.0 * np.cumprod(1.0 + returns)
    # Act / Assert: empyrical's drawdown is negative, labkit's the same fraction, positive
    assert metrics.returns_max_drawdown(returns) == pytest.approx(-ep.max_drawdown(returns), rel=1e-12)
    assert metrics.max_drawdown(equity, start=10_000.0) == pytest.approx(-ep.max_drawdown(returns), rel=1e-9)
    assert metrics.total_return(returns) == pytest.approx(ep.cum_returns_final(returns), rel=1e-12)


def test_equity_returns_when_first_bar_moves_measure_it_from_the_starting_capital():
    # Arrange: the first close is already 10% up on the capital
    equity = np.array([11_000.0, 9_900.0, 10_890.0])
    # Act
    result = metrics.equity_returns(equity, 10_000.0)
    # Assert
    assert result == pytest.approx([0.1, -0.1, 0.1])
    assert metrics.max_drawdown(equity, 10_000.0) == pytest.approx(-ep.max_drawdown(result))


def test_sharpe_when_a_series_has_nan_ignores_it_like_empyrical():
    # Arrange
    returns = np.array([0.01, np.nan, -0.02, 0.03, 0.005])
    # Act / Assert
    assert metrics.sharpe_ratio(returns, 252) == pytest.approx(ep.sharpe_ratio(returns, annualization=252))
    assert metrics.annual_volatility(returns, 252) == pytest.approx(
        ep.annual_volatility(returns, annualization=252)
    )


def test_annual_figures_when_a_series_has_nan_rows_leave_them_out_not_count_them_as_periods():
    # Arrange: half a year of 1% days, with NaN rows (bars with no return) in between
    clean = [0.01] * 126
    gappy = np.array([0.01, np.nan] * 126)
    # Act / Assert: the NaN rows are no periods, so the same half year compounds to the same year
    assert metrics.annual_return(gappy, 252) == pytest.approx(metrics.annual_return(clean, 252), rel=1e-12)
    drawn = np.array([0.1, np.nan, -0.2, np.nan, 0.05])
    assert metrics.calmar_ratio(drawn, 12) == pytest.approx(metrics.calmar_ratio([0.1, -0.2, 0.05], 12))
    for figure in (
        metrics.annual_volatility,
        metrics.sharpe_ratio,
        metrics.sortino_ratio,
        metrics.downside_risk,
    ):
        assert figure(drawn, 12) == pytest.approx(figure([0.1, -0.2, 0.05], 12)), figure.__name__


@pytest.mark.parametrize("returns", [[np.nan, np.nan], []])
def test_annual_return_when_no_return_is_known_is_nan(returns):
    assert math.isnan(metrics.annual_return(np.array(returns, dtype=float), 252))
    assert math.isnan(metrics.total_return(np.array(returns, dtype=float)))


@pytest.mark.parametrize("returns", [[], [0.01], [0.01, 0.01, 0.01], [0.0, 0.0]])
def test_sharpe_when_too_few_or_no_dispersion_is_nan(returns):
    assert math.isnan(metrics.sharpe_ratio(returns, 252))


def test_sortino_when_nothing_falls_below_target_is_inf_like_empyrical():
    returns = [0.01, 0.02, 0.0]
    assert (
        metrics.sortino_ratio(returns, 252)
        == ep.sortino_ratio(np.array(returns), annualization=252)
        == math.inf
    )


def test_calmar_when_no_drawdown_is_nan_like_empyrical():
    returns = np.array([0.01, 0.02])
    assert math.isnan(metrics.calmar_ratio(returns, 252)) and math.isnan(ep.calmar_ratio(returns))


def test_cagr_when_span_is_the_bars_year_equals_annual_return():
    # Arrange: 730 daily bars of a 24/7 market are two years of 365 days
    returns = _random_returns(3, 730)
    # Act
    result = metrics.cagr(returns, years=730 / 365)
    # Assert
    assert result == pytest.approx(metrics.annual_return(returns, 365), rel=1e-12)
    assert math.isnan(metrics.cagr(returns, years=0.0))


# --- drawdown duration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "start", "expected"),
    [
        # recovered at bar 4 from the peak at bar 1: 3 bars
        ([100, 120, 90, 110, 125, 100], 100, (3, 1, 4, True)),
        # the starting capital is the peak and equity never gets back to it
        ([90, 95, 99], 100, (3, -1, 2, False)),
        # the longest is the later, unrecovered one
        ([100, 90, 100, 99, 98, 97, 96], None, (4, 2, 6, False)),
        # never under water
        ([100, 101, 102], 100, (0, -1, -1, True)),
    ],
)
def test_drawdown_duration_when_hand_made_curves_counts_bars_from_peak_to_recovery(equity, start, expected):
    # Act
    result = metrics.drawdown_duration(np.array(equity, dtype=float), start)
    # Assert
    assert (result.bars, result.peak, result.end, result.recovered) == expected


def test_drawdown_duration_when_given_times_gives_the_span_from_peak_to_recovery():
    # Arrange: hourly bars with a weekend gap inside the drawdown
    times = pd.DatetimeIndex(
        ["2026-01-09 15:00", "2026-01-09 16:00", "2026-01-12 09:00", "2026-01-12 10:00"], tz="UTC"
    )
    # Act
    result = metrics.drawdown_duration([100.0, 90.0, 95.0, 101.0], 100.0, times)
    # Assert
    assert result.bars == 3 and result.span == pd.Timedelta(hours=67)


# --- trades ----------------------------------------------------------------------------------------


def _trips() -> pd.DataFrame:
    t = pd.to_datetime(
        [
            "2026-01-05 00:00",
            "2026-01-05 01:00",
            "2026-01-05 02:00",
            "2026-01-05 05:00",
            "2026-01-05 06:00",
            "2026-01-05 06:30",
        ],
        utc=True,
    )
    return pd.DataFrame(
        {
            "entry_ts": t[[0, 2, 4]],
            "exit_ts": t[[1, 3, 5]],
            "net_pnl": [30.0, -10.0, 20.0],
            "net_return": [0.03, -0.01, 0.02],
        }
    )


def test_trade_stats_when_three_trips_gives_hand_computed_figures():
    # Act
    result = metrics.trade_stats(_trips())
    # Assert: 50 won against 10 lost; two of three won; +40 over three trades
    assert result["trades"] == 3
    assert result["profit_factor"] == 5.0
    assert result["hit_rate"] == pytest.approx(2 / 3)
    assert result["expectancy"] == pytest.approx(40 / 3)
    assert result["avg_return"] == pytest.approx(0.04 / 3)
    assert (result["best_trade"], result["worst_trade"]) == (0.03, -0.01)
    assert result["avg_duration"] == pd.Timedelta(minutes=90)
    assert result["max_duration"] == pd.Timedelta(hours=3)


def test_trade_stats_when_no_trade_is_nan_not_zero():
    # Act
    empty = _trips().iloc[:0]
    result = metrics.trade_stats(empty)
    # Assert
    assert result["trades"] == 0
    assert all(math.isnan(result[k]) for k in ("profit_factor", "expectancy", "hit_rate", "best_trade"))
    assert result["avg_duration"] is pd.NaT


@pytest.mark.parametrize(
    ("pnl", "expected"), [([10.0, 5.0], math.inf), ([-1.0, -2.0], 0.0), ([0.0], math.nan), ([], math.nan)]
)
def test_profit_factor_when_edge_cases_follows_its_definition(pnl, expected):
    result = metrics.profit_factor(pnl)
    assert result == expected or (math.isnan(result) and math.isnan(expected))


def test_exposure_when_hourly_bars_counts_bars_closed_holding_a_position():
    # Arrange: 8 hourly bars; held 00:00-01:00 (1 bar), 02:00-05:00 (3), 06:00-06:30 (1)
    times = pd.date_range("2026-01-05", periods=8, freq="h", tz="UTC")
    # Act
    result = metrics.exposure(_trips(), times)
    # Assert: from each entry's bar up to the exit's bar, that one excluded (sold at its open);
    # the exit at 06:30 lies inside the bar of 06:00, which the trip entered, so that bar counts
    assert result == pytest.approx((1 + 3 + 1) / 8)


def test_buy_and_hold_when_closes_given_is_first_to_last_close_with_its_drawdown():
    closes = read_bar_file(stubs.FIXTURE_CSV)["close"]
    result = metrics.buy_and_hold(closes)
    assert result[0] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1)
    assert result[1] == pytest.approx(-ep.max_drawdown(closes.pct_change().dropna().to_numpy()))


# --- PSR, deflated Sharpe, minimum track record length -------------------------------------------


def test_deflated_sharpe_when_bailey_lopez_de_prado_2014_example_is_0_9004():
    # An annual Sharpe of 2.5 over 1,250 daily returns (250 a year), skewness -3, kurtosis 10, the
    # best of 100 trials whose annual Sharpe ratios have a variance of 0.5.
    # Arrange
    sr0 = metrics.expected_max_sharpe(100, 0.5 / 250)
    # Act
    result = metrics.psr_from_moments(2.5 / math.sqrt(250), 1250, skew=-3.0, kurtosis=10.0, benchmark=sr0)
    # Assert
    assert round(sr0, 4) == 0.1132  # the paper's expected maximum Sharpe, per day
    assert round(result, 4) == 0.9004


def test_mintrl_when_bailey_lopez_de_prado_2012_appendix_example_is_59_9_months():
    # A monthly Sharpe of 2/sqrt(12) against 1/sqrt(12), skewness -0.72, kurtosis 5.78: the paper
    # prints 59.895 months, about 4.99 years.
    result = metrics.mintrl_from_moments(2 / math.sqrt(12), -0.72, 5.78, benchmark=1 / math.sqrt(12))
    assert result == pytest.approx(59.895, abs=0.005)
    assert result / 12 == pytest.approx(4.99, abs=0.005)


def test_mintrl_when_annual_sharpe_2_against_1_on_daily_normal_returns_is_2_73_years():
    # The 2012 paper: an annualised Sharpe of 2 needs 2.73 years of daily data to beat 1 at 95%.
    result = metrics.mintrl_from_moments(2 / math.sqrt(252), 0.0, 3.0, benchmark=1 / math.sqrt(252))
    assert round(result / 252, 2) == 2.73


def test_mintrl_when_plugged_back_into_psr_gives_the_confidence():
    # Arrange
    moments = metrics.sharpe_moments(_random_returns(5, 400))
    assert moments is not None and moments.sharpe > 0
    # Act
    n = metrics.mintrl_from_moments(moments.sharpe, moments.skew, moments.kurtosis, confidence=0.95)
    psr = metrics.psr_from_moments(moments.sharpe, n, moments.skew, moments.kurtosis)
    # Assert
    assert psr == pytest.approx(0.95, abs=1e-12)


def test_min_track_record_length_when_sharpe_not_above_benchmark_is_inf():
    returns = -np.abs(_random_returns(6, 100))
    assert metrics.min_track_record_length(returns) == math.inf


def test_deflated_sharpe_when_more_trials_or_more_spread_is_lower():
    # Arrange
    returns = _random_returns(7, 1_000)
    alone = metrics.probabilistic_sharpe_ratio(returns)
    # Act
    few = metrics.deflated_sharpe_ratio(returns, 5, 1e-4)
    many = metrics.deflated_sharpe_ratio(returns, 500, 1e-4)
    wider = metrics.deflated_sharpe_ratio(returns, 500, 4e-4)
    # Assert: one trial pays nothing; each more trial, and a wider spread of them, costs
    assert metrics.deflated_sharpe_ratio(returns, 1, math.nan) == alone
    assert alone > few > many > wider


def test_sharpe_moments_when_compared_with_pandas_skew_and_kurtosis_use_population_moments():
    # Arrange
    returns = _random_returns(8, 300)
    series = pd.Series(returns)
    n = len(returns)
    # Act
    m = metrics.sharpe_moments(returns)
    # Assert: pandas gives the sample-adjusted moments; unadjust them (Fisher-Pearson)
    assert m is not None
    g1 = series.skew() * (n - 2) / math.sqrt(n * (n - 1))
    g2 = (series.kurt() * (n - 2) * (n - 3) / (n - 1) - 6) / (n + 1) + 3  # non-excess
    assert m.skew == pytest.approx(g1, rel=1e-9)
    assert m.kurtosis == pytest.approx(g2, rel=1e-9)
    assert m.sharpe == pytest.approx(metrics.sharpe_ratio(returns))


def test_metrics_docstring_examples_when_run_print_what_they_show():
    result = doctest.testmod(metrics)
    assert result.failed == 0 and result.attempted >= 30


def test_rolling_sharpe_when_compared_with_the_report_figures_old_arithmetic_is_identical():
    # Issue 17: reports/figures.py computed its own rolling Sharpe; it now calls this one.
    # Arrange: an equity curve with flat stretches (windows without dispersion) and a NaN first return
    rng = np.random.default_rng(17)
    steps = rng.normal(0.0, 1e-3, 3_000) * (rng.random(3_000) > 0.3)
    returns = pd.Series(10_000.0 * np.cumprod(1.0 + steps)).pct_change()
    window, per_year = 60, 525_600.0
    roll = returns.rolling(window)
    expected = (roll.mean() / roll.std(ddof=1) * per_year**0.5).where(roll.std(ddof=1) > 0)
    # Act
    result = metrics.rolling_sharpe(returns, window, per_year)
    # Assert: the same floats, NaN where the old figure had NaN
    pd.testing.assert_series_equal(result, expected, check_exact=True)
    assert result.iloc[:window].isna().all() and result.notna().sum() > 2_000


def test_rolling_sharpe_when_a_full_window_is_taken_equals_sharpe_ratio():
    returns = pd.Series(_random_returns(9, 200))
    result = metrics.rolling_sharpe(returns, 50, 252.0)
    assert result.iloc[-1] == pytest.approx(metrics.sharpe_ratio(returns.iloc[-50:], 252.0), rel=1e-9)


@pytest.mark.parametrize("psr_moments", [(-1.0, 8.0), (0.5, 3.5), (0.0, 3.0)])
def test_implied_moments_when_recovered_from_a_psr_give_the_sweep_reports_old_dsr(psr_moments):
    # Issue 17: reports/sweeps.py re-derived these moments itself; the arithmetic moved here unchanged.
    from statistics import NormalDist

    sr, n, benchmark = 0.04, 1_500, 0.015
    psr = metrics.psr_from_moments(sr, n, *psr_moments)
    z = NormalDist().inv_cdf(psr)
    factor = (sr * math.sqrt(n - 1) / z) ** 2
    expected = metrics.psr_from_moments(sr, n, 0.0, 1.0 + 4.0 * (factor - 1.0) / (sr * sr), benchmark)
    # Act
    m = metrics.implied_moments(psr, sr, n)
    # Assert: bit for bit the old figure, and the DSR of the true moments to 1e-9
    assert m is not None
    result = metrics.psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, benchmark)
    assert result == expected
    assert result == pytest.approx(metrics.psr_from_moments(sr, n, *psr_moments, benchmark), abs=1e-9)


@pytest.mark.parametrize("psr", [None, math.nan, 0.0, 1.0, 1.0 - 1e-12, 0.3])
def test_implied_moments_when_psr_says_nothing_or_disagrees_returns_none(psr):
    # 0.3 < 0.5 says the Sharpe ratio is negative, against a positive one
    assert metrics.implied_moments(psr, 0.04, 1_500) is None

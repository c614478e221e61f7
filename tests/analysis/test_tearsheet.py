"""labkit.analysis.tearsheet against plain-loop computations, empyrical-reloaded and pandas, and
against series built to break each definition (a drawdown that never recovers, all-winning trades,
returns that never vary, a benchmark that never moves)."""

from __future__ import annotations

import doctest
import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from labkit.analysis import tearsheet as ts

TOL = 1e-9
# A small hand-made series: a loss, a gain, a deep fall, a partial recovery.
RETURNS = [0.01, -0.02, 0.015, 0.03, -0.05, 0.002, -0.01, 0.04, 0.0, -0.003, 0.025, -0.015]
BENCHMARK = [0.0, -0.01, 0.012, 0.02, -0.03, 0.001, -0.004, 0.015, 0.002, -0.002, 0.01, -0.01]


def _mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def _sample_std(values: list[float]) -> float:
    m = _mean(values)
    total = 0.0
    for v in values:
        total += (v - m) ** 2
    return math.sqrt(total / (len(values) - 1))


def _percentile(values: list[float], q: float) -> float:
    # Linear interpolation between the closest ranks, numpy's default.
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    low = int(math.floor(pos))
    high = min(low + 1, len(s) - 1)
    return s[low] + (s[high] - s[low]) * (pos - low)


def test_doctests_when_run_pass() -> None:
    # Act
    result = doctest.testmod(ts)

    # Assert
    assert result.failed == 0


# --- drawdown periods ----------------------------------------------------------------------------


def _loop_periods(equity: list[float], start: float) -> list[dict[str, float | int | bool]]:
    # Walk the curve: a period opens when equity falls below its running peak, closes at the first
    # bar back at it.
    peak, peak_at = start, -1
    periods: list[dict[str, float | int | bool]] = []
    current: dict[str, float | int | bool] | None = None
    for i, value in enumerate(equity):
        if value >= peak:
            if current is not None:
                current["end"], current["recovered"] = i, True
                periods.append(current)
                current = None
            peak, peak_at = value, i
            continue
        depth = 1.0 - value / peak
        if current is None:
            current = {"peak": peak_at, "valley": i, "depth": depth}
        elif depth > float(current["depth"]):
            current["valley"], current["depth"] = i, depth
    if current is not None:
        current["end"], current["recovered"] = len(equity) - 1, False
        periods.append(current)
    return sorted(periods, key=lambda p: -float(p["depth"]))


def test_drawdown_periods_when_compared_with_a_loop_match() -> None:
    # Arrange
    equity = list(10_000.0 * np.cumprod(1.0 + np.array(RETURNS)))
    times = pd.date_range("2026-01-05", periods=len(equity), freq="h", tz="UTC")

    # Act
    table = ts.drawdown_periods(equity, 10_000.0, times)

    # Assert
    expected = _loop_periods(equity, 10_000.0)
    assert len(table) == len(expected)
    for row, want in zip(table.itertuples(), expected, strict=True):
        assert row.depth == pytest.approx(want["depth"], abs=TOL)
        assert row.valley == times[int(want["valley"])]
        assert row.peak == times[max(int(want["peak"]), 0)]
        assert row.bars == int(want["end"]) - int(want["peak"])
        assert (row.recovery is pd.NaT) == (not want["recovered"])


def test_drawdown_periods_when_equity_never_recovers_says_not_recovered_up_to_the_last_bar() -> None:
    # Arrange: a peak at the second bar, then a fall that never gets back
    times = pd.date_range("2026-01-05", periods=5, freq="D", tz="UTC")

    # Act
    table = ts.drawdown_periods([110.0, 120.0, 90.0, 100.0, 115.0], 100.0, times)

    # Assert
    (row,) = table.itertuples()
    assert row.recovery is pd.NaT
    assert row.peak == times[1] and row.valley == times[2]
    assert row.depth == pytest.approx(0.25, abs=TOL)
    assert row.bars == 3 and row.length == pd.Timedelta(days=3)


def test_drawdown_periods_when_more_than_top_keeps_the_five_deepest() -> None:
    # Arrange: seven dips of different depths, each recovered
    equity, depths = [], [0.01, 0.07, 0.03, 0.05, 0.02, 0.06, 0.04]
    for depth in depths:
        equity += [100.0 * (1 - depth), 100.0]
    times = pd.date_range("2026-01-05", periods=len(equity), freq="min", tz="UTC")

    # Act
    table = ts.drawdown_periods(equity, 100.0, times)

    # Assert
    assert table["depth"].round(9).tolist() == [0.07, 0.06, 0.05, 0.04, 0.03]


def test_drawdown_periods_when_equity_only_rises_is_empty() -> None:
    # Act
    table = ts.drawdown_periods([101.0, 102.0], 100.0, pd.date_range("2026-01-05", periods=2, tz="UTC"))

    # Assert
    assert table.empty and list(table.columns) == ["peak", "valley", "recovery", "depth", "bars", "length"]


# --- against the benchmark -----------------------------------------------------------------------


def test_benchmark_figures_when_compared_with_loops_match() -> None:
    # Arrange
    r, b, ppy = RETURNS, BENCHMARK, 365.0
    mr, mb = _mean(r), _mean(b)
    cov = sum((x - mr) * (y - mb) for x, y in zip(r, b, strict=True))
    var_b = sum((y - mb) ** 2 for y in b)
    var_r = sum((x - mr) ** 2 for x in r)
    want_beta = cov / var_b
    want_alpha = (1.0 + _mean([x - want_beta * y for x, y in zip(r, b, strict=True)])) ** ppy - 1.0
    active = [x - y for x, y in zip(r, b, strict=True)]
    want_ir = _mean(active) / _sample_std(active) * math.sqrt(ppy)

    # Act
    got = ts.against_benchmark(r, b, ppy)

    # Assert
    assert got.beta == pytest.approx(want_beta, abs=TOL)
    assert got.alpha == pytest.approx(want_alpha, rel=TOL)
    assert got.information_ratio == pytest.approx(want_ir, abs=TOL)
    assert got.correlation == pytest.approx(cov / math.sqrt(var_b * var_r), abs=TOL)
    assert got.bars == len(r)


@pytest.mark.parametrize("ppy", [252, 365, 525_600])
def test_benchmark_figures_when_compared_with_empyrical_match(ppy: int) -> None:
    # Arrange
    rng = np.random.default_rng(7)
    b = rng.standard_t(4, 400) * 0.01
    r = 0.6 * b + rng.normal(0.0003, 0.005, 400)

    # Act / Assert: empyrical's excess Sharpe is per bar, labkit's information ratio annualised
    assert ts.beta(r, b) == pytest.approx(ep.beta(r, b), abs=TOL)
    assert ts.alpha(r, b, ppy) == pytest.approx(ep.alpha(r, b, annualization=ppy), rel=TOL)
    assert ts.information_ratio(r, b, ppy) / math.sqrt(ppy) == pytest.approx(ep.excess_sharpe(r, b), abs=TOL)
    assert ts.correlation(r, b) == pytest.approx(float(np.corrcoef(r, b)[0, 1]), abs=TOL)


def test_benchmark_figures_when_the_benchmark_never_moves_are_not_defined() -> None:
    # Arrange: a constant benchmark has no variance to measure beta or a correlation against
    flat = [0.001] * len(RETURNS)

    # Act
    got = ts.against_benchmark(RETURNS, flat, 365.0)

    # Assert: the active return still varies, so the information ratio stays defined
    assert math.isnan(got.beta) and math.isnan(got.alpha) and math.isnan(got.correlation)
    assert got.information_ratio == pytest.approx(
        _mean([x - 0.001 for x in RETURNS]) / _sample_std(RETURNS) * math.sqrt(365.0), abs=TOL
    )


def test_information_ratio_when_returns_equal_the_benchmark_is_not_defined() -> None:
    # Arrange: the same prices turned into returns two ways differ by rounding only
    prices = 100.0 * np.cumprod(1.0 + np.array(BENCHMARK))
    equity = prices * 37.0
    from_equity = np.diff(equity) / equity[:-1]
    from_prices = np.diff(prices) / prices[:-1]

    # Act / Assert
    assert math.isnan(ts.information_ratio(BENCHMARK, BENCHMARK, 365.0))
    assert math.isnan(ts.information_ratio(from_equity, from_prices, 365.0))


def test_benchmark_figures_when_a_return_is_nan_leave_that_bar_out() -> None:
    # Arrange
    r = [*RETURNS, math.nan]
    b = [*BENCHMARK, 0.5]

    # Act / Assert
    assert ts.against_benchmark(r, b, 365.0) == ts.against_benchmark(RETURNS, BENCHMARK, 365.0)


def test_buy_and_hold_returns_when_compounded_give_the_last_close_over_the_first() -> None:
    # Arrange
    closes = [100.0, 104.0, 98.0, 101.5]

    # Act
    returns = ts.buy_and_hold_returns(closes)

    # Assert
    assert returns[0] == 0.0
    assert float(np.prod(1.0 + returns)) - 1.0 == pytest.approx(closes[-1] / closes[0] - 1.0, abs=TOL)


# --- the return distribution ---------------------------------------------------------------------


def test_distribution_when_compared_with_loops_match() -> None:
    # Arrange
    r = RETURNS
    n = len(r)
    m = _mean(r)
    m2 = sum((x - m) ** 2 for x in r) / n
    m3 = sum((x - m) ** 3 for x in r) / n
    m4 = sum((x - m) ** 4 for x in r) / n
    want_skew = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    want_kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * m4 / m2**2 - 3 * (n - 1))
    worst = sorted(r)[: int((n - 1) * 0.05) + 1]

    # Act / Assert
    assert ts.value_at_risk(r) == pytest.approx(_percentile(r, 5.0), abs=TOL)
    assert ts.conditional_value_at_risk(r) == pytest.approx(_mean(worst), abs=TOL)
    assert ts.skewness(r) == pytest.approx(want_skew, abs=TOL)
    assert ts.excess_kurtosis(r) == pytest.approx(want_kurt, abs=TOL)
    assert ts.tail_ratio(r) == pytest.approx(abs(_percentile(r, 95.0)) / abs(_percentile(r, 5.0)), abs=TOL)


def test_distribution_when_compared_with_empyrical_and_pandas_match() -> None:
    # Arrange
    r = np.random.default_rng(3).standard_t(4, 1000) * 0.01

    # Act / Assert: pandas' skew and kurt are QuantStats's (kurt is excess: 0 for a normal)
    assert ts.value_at_risk(r) == pytest.approx(ep.value_at_risk(r), abs=TOL)
    assert ts.conditional_value_at_risk(r) == pytest.approx(ep.conditional_value_at_risk(r), abs=TOL)
    assert ts.tail_ratio(r) == pytest.approx(ep.tail_ratio(r), abs=TOL)
    assert ts.skewness(r) == pytest.approx(pd.Series(r).skew(), abs=TOL)
    assert ts.excess_kurtosis(r) == pytest.approx(pd.Series(r).kurt(), abs=TOL)


def test_distribution_when_returns_never_vary_has_no_shape() -> None:
    # Arrange
    flat = [0.001] * 20

    # Act / Assert: the quantiles exist, skew, kurtosis do not
    assert ts.value_at_risk(flat) == pytest.approx(0.001, abs=TOL)
    assert ts.conditional_value_at_risk(flat) == pytest.approx(0.001, abs=TOL)
    assert math.isnan(ts.skewness(flat)) and math.isnan(ts.excess_kurtosis(flat))


def test_tail_ratio_when_the_left_tail_is_zero_is_not_defined() -> None:
    # Act / Assert: the 5th percentile is 0, and dividing by it says nothing
    assert math.isnan(ts.tail_ratio([0.0] * 19 + [0.01]))


def test_distribution_when_empty_is_nan() -> None:
    # Act / Assert
    for fn in (
        ts.value_at_risk,
        ts.conditional_value_at_risk,
        ts.skewness,
        ts.excess_kurtosis,
        ts.tail_ratio,
    ):
        assert math.isnan(fn([]))


# --- trades --------------------------------------------------------------------------------------


def test_streaks_when_compared_with_a_loop_match() -> None:
    # Arrange
    pnl = [5.0, 3.0, -1.0, 2.0, 2.0, 2.0, 0.0, -4.0, -1.0, -2.0, 6.0]

    # Act
    best, worst = ts.streaks(pnl)

    # Assert
    assert (best, worst) == (3, 3)
    assert ts.streaks([]) == (0, 0)
    assert ts.streaks([1.0, 0.0, 1.0]) == (1, 0)  # a flat trade ends a streak


def test_kelly_when_compared_with_the_formula_matches() -> None:
    # Arrange
    r = [0.03, -0.01, 0.02, -0.02, 0.0, 0.01]
    wins, losses = [x for x in r if x > 0], [x for x in r if x < 0]
    p = len(wins) / (len(wins) + len(losses))
    b = _mean(wins) / abs(_mean(losses))

    # Act / Assert
    assert ts.kelly_fraction(r) == pytest.approx(p - (1 - p) / b, abs=TOL)


def test_kelly_when_every_trade_wins_is_not_defined() -> None:
    # Act / Assert: without a loss there is no payoff ratio to size against
    assert math.isnan(ts.kelly_fraction([0.01, 0.02, 0.03]))
    assert math.isnan(ts.kelly_fraction([-0.01, -0.02]))
    assert math.isnan(ts.kelly_fraction([]))


def test_sqn_when_compared_with_a_loop_matches() -> None:
    # Arrange
    pnl = [120.0, -40.0, 35.5, -80.0, 210.0, 12.0]

    # Act / Assert
    assert ts.system_quality_number(pnl) == pytest.approx(
        math.sqrt(len(pnl)) * _mean(pnl) / _sample_std(pnl), abs=TOL
    )
    assert math.isnan(ts.system_quality_number([10.0, 10.0, 10.0]))  # no variance
    assert math.isnan(ts.system_quality_number([10.0]))


# --- over time -----------------------------------------------------------------------------------


def test_yearly_returns_when_compared_with_year_ends_match() -> None:
    # Arrange: two and a half years of daily equity
    times = pd.date_range("2024-07-01", "2026-12-31", freq="D", tz="UTC")
    equity = pd.Series(10_000.0 * np.cumprod(1.0 + np.resize(RETURNS, len(times))), index=times)

    # Act
    yearly = ts.yearly_returns(equity, 10_000.0)

    # Assert
    ends = {y: float(equity[equity.index.year == y].iloc[-1]) for y in (2024, 2025, 2026)}
    assert yearly[2024] == pytest.approx(ends[2024] / 10_000.0 - 1.0, abs=TOL)
    assert yearly[2025] == pytest.approx(ends[2025] / ends[2024] - 1.0, abs=TOL)
    assert yearly[2026] == pytest.approx(ends[2026] / ends[2025] - 1.0, abs=TOL)


def test_rolling_volatility_when_compared_with_a_loop_matches() -> None:
    # Arrange
    r = pd.Series(RETURNS)

    # Act
    rolled = ts.rolling_volatility(r, 5, periods_per_year=365.0)

    # Assert
    assert rolled.iloc[:4].isna().all()
    for i in range(4, len(RETURNS)):
        assert rolled.iloc[i] == pytest.approx(
            _sample_std(RETURNS[i - 4 : i + 1]) * math.sqrt(365.0), abs=TOL
        )


# --- the report tables and figures built on them -------------------------------------------------


def _journal(equity: list[float], prices: list[float], freq: str = "D") -> pd.DataFrame:
    times = pd.date_range("2026-01-05", periods=len(equity), freq=freq, tz="UTC")
    return pd.DataFrame({"ts": times, "equity": equity, "price": prices})


def test_drawdown_periods_table_when_equity_never_recovers_says_not_recovered() -> None:
    # Arrange
    from labkit.reports.tables import drawdown_periods_table

    journal = _journal([100.0, 120.0, 90.0, 100.0], [1.0, 1.0, 1.0, 1.0])

    # Act
    table = drawdown_periods_table(journal, 100.0)

    # Assert
    assert table.loc[1].to_dict() == {
        "peak (UTC)": "2026-01-06 00:00 UTC",
        "valley (UTC)": "2026-01-07 00:00 UTC",
        "recovery (UTC)": "not recovered",
        "depth": "-25.00%",
        "bars": "2",
        "length": "2 d",
    }


def test_benchmark_table_when_the_run_holds_the_market_shows_no_rounding_noise() -> None:
    # Arrange: all in from the first bar, so the run's returns are the market's to rounding
    from labkit.reports.tables import benchmark_table

    prices = list(100.0 * np.cumprod(1.0 + np.array(BENCHMARK)))
    journal = _journal([p * 100.0 for p in prices], prices)

    # Act
    table = benchmark_table(journal, prices[0] * 100.0, 365.0, "365 days a year")

    # Assert
    values = table["value"].to_dict()
    assert values["beta"] == "1.00" and values["correlation"] == "1.00"
    assert values["information ratio (annual)"] == "n/a"
    assert values["alpha (annual)"] == "0.00% (extrapolated from 11.0 days)"
    assert not any("e-" in v or "e+" in v for v in table["value"])


def test_benchmark_table_when_a_year_of_data_does_not_say_extrapolated() -> None:
    # Arrange
    from labkit.reports.tables import benchmark_table

    n = 400
    prices = list(100.0 * np.cumprod(1.0 + np.resize(BENCHMARK, n)))
    equity = list(10_000.0 * np.cumprod(1.0 + np.resize(RETURNS, n)))

    # Act
    table = benchmark_table(_journal(equity, prices), 10_000.0, 365.0)

    # Assert
    assert "extrapolated" not in " ".join(table["value"])


def test_yearly_returns_table_when_a_run_spans_two_years_sets_each_beside_buy_and_hold() -> None:
    # Arrange
    from labkit.reports.tables import yearly_returns_table

    journal = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2025-12-30", "2025-12-31", "2026-01-02"], utc=True),
            "equity": [100.0, 110.0, 99.0],
            "price": [50.0, 60.0, 66.0],
        }
    )

    # Act
    table = yearly_returns_table(journal, 100.0)

    # Assert
    assert table.to_dict("index") == {
        2025: {"return %": 10.0, "buy and hold %": 20.0, "difference %": -10.0},
        2026: {"return %": -10.0, "buy and hold %": 10.0, "difference %": -20.0},
    }


def test_equity_figure_when_log_scale_labels_amounts_without_powers_of_ten() -> None:
    # Arrange
    from labkit.reports.figures import equity_figure

    journal = _journal([10_000.0, 9_500.0, 9_000.0, 10_500.0], [1.0, 0.95, 0.9, 1.05])

    # Act
    fig = equity_figure(journal, 10_000.0, log_scale=True)
    fig.canvas.draw()

    # Assert
    top = fig.axes[0]
    labels = [t.get_text() for t in top.get_yticklabels() + top.get_yticklabels(minor=True) if t.get_text()]
    assert top.get_yscale() == "log"
    assert "10,000" in labels and not any("times" in x or "^" in x for x in labels)


def test_rolling_risk_figure_when_drawn_shows_volatility_beside_sharpe() -> None:
    # Arrange
    from labkit.reports.figures import rolling_risk_figure

    equity = list(10_000.0 * np.cumprod(1.0 + np.resize(RETURNS, 60)))
    journal = _journal(equity, [1.0] * 60, freq="min")

    # Act
    fig = rolling_risk_figure(journal, 10, 525_600.0, 10_000.0)

    # Assert: both panels hold a curve
    volatility, sharpe = fig.axes
    assert volatility.get_ylabel() == "volatility %" and sharpe.get_ylabel() == "Sharpe"
    assert len(volatility.get_lines()[0].get_xdata()) == 60


def test_returns_histogram_when_drawn_marks_var_and_cvar_and_counts_without_powers_of_ten() -> None:
    # Arrange
    from labkit.reports.figures import returns_histogram_figure

    equity = list(10_000.0 * np.cumprod(1.0 + np.resize(RETURNS, 600)))
    journal = _journal(equity, [1.0] * 600, freq="min")

    # Act
    fig = returns_histogram_figure(journal, 10_000.0)
    fig.canvas.draw()

    # Assert
    (ax,) = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("VaR 95% -") and legend[1].startswith("CVaR 95% -")
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and not any("^" in x for x in labels)

"""The figures a tearsheet adds to the summary: drawdown periods, the benchmark, the return
distribution, trade streaks, Kelly, SQN, yearly returns and rolling volatility.

Conventions are `labkit.analysis.metrics`'s (empyrical's where it has the figure): simple per-bar
returns, the first from the starting capital; NaN returns left out; ``ddof=1`` for standard
deviations; annual figures counted by ``periods_per_year``, the bars a year of the market's
calendar holds (per-bar returns annualised by that calendar, never assumed daily). Where a figure
is not defined (no dispersion, no losing trade) it is NaN, never a sentinel.

- Against the benchmark: empyrical's ``beta`` (covariance over the benchmark's variance) and
  ``alpha`` (the mean per-bar excess over ``beta`` times the benchmark, compounded over a year);
  the information ratio is empyrical's ``excess_sharpe`` (QuantStats's ``information_ratio``)
  annualised by ``√periods_per_year``; the correlation is Pearson's.
- The distribution: historical VaR and CVaR as empyrical computes them (negative: a loss), the
  tail ratio as empyrical's, skewness and excess kurtosis as pandas' (and QuantStats's):
  bias-corrected, a normal distribution giving 0 for both.
- Trades: the Kelly fraction as QuantStats's over the trades' net returns, SQN as backtesting.py's
  (Van Tharp's) over their net results in money.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.metrics import ArrayLike, drawdowns

# The share of the worst returns VaR and CVaR look at: 95% historical.
VAR_CUTOFF = 0.05
# Below this variance a benchmark is taken as constant (empyrical's threshold for beta).
_FLAT_VARIANCE = 1e-30
# Differences below this share of the returns' size are rounding, not tracking error.
_ROUNDING = 1e-12


def _clean(values: ArrayLike) -> np.ndarray:
    # The known values: NaN rows are left out, as empyrical's nan-functions do.
    v = np.asarray(values, dtype=float)
    return v[~np.isnan(v)]


# --- drawdown periods ------------------------------------------------------------------------------


def drawdown_periods(
    equity: ArrayLike, start: float, times: pd.DatetimeIndex | Sequence[Any], top: int = 5
) -> pd.DataFrame:
    """Return the `top` deepest drawdown periods of an equity curve, deepest first.

    A period runs from a peak to the first bar back at it. Columns: ``peak`` (the time of the
    last bar at the peak; the first bar's time when the peak is the starting capital `start`),
    ``valley`` (the bar furthest below it), ``recovery`` (the first bar back at the peak, NaT when
    equity never got back), ``depth`` (the fall at the valley, a positive fraction of the peak),
    ``bars`` (from the peak to the recovery, or to the last bar: `metrics.drawdown_duration`'s
    count) and ``length`` (the time between them). Equal depths keep their order in time.

    Examples
    --------
    >>> t = pd.date_range("2026-01-05", periods=6, freq="D", tz="UTC")
    >>> p = drawdown_periods([100.0, 90.0, 100.0, 120.0, 96.0, 108.0], 100.0, t)
    >>> p[["depth", "bars"]].round(2).to_dict("records")
    [{'depth': 0.2, 'bars': 2}, {'depth': 0.1, 'bars': 2}]
    >>> p["recovery"].isna().tolist()
    [True, False]
    """
    values = np.asarray(equity, dtype=float)
    index = pd.DatetimeIndex(times)
    fall = drawdowns(values, start)
    under = fall > 0
    n = len(values)
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    firsts, lasts = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    rows = []
    for first, last in zip(firsts, lasts, strict=True):
        peak = int(first) - 1
        recovered = last + 1 < n
        end = int(last) + 1 if recovered else int(last)
        valley = int(first) + int(np.argmax(fall[first : last + 1]))
        rows.append(
            {
                "peak": index[max(peak, 0)],
                "valley": index[valley],
                "recovery": index[end] if recovered else pd.NaT,
                "depth": float(fall[valley]),
                "bars": end - peak,
                "length": index[end] - index[max(peak, 0)],
            }
        )
    columns = ["peak", "valley", "recovery", "depth", "bars", "length"]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    return table.sort_values("depth", ascending=False, kind="stable").head(top).reset_index(drop=True)


# --- against the benchmark ---------------------------------------------------------------------


def buy_and_hold_returns(closes: ArrayLike) -> np.ndarray:
    """Return the per-bar returns of holding the market from the first close: 0 on the first bar.

    The benchmark of a run's returns, bar for bar: the equity figure's buy and hold enters at the
    first close, so it has earned nothing by then.

    Examples
    --------
    >>> buy_and_hold_returns([100.0, 110.0, 99.0]).round(4).tolist()
    [0.0, 0.1, -0.1]
    """
    c = np.asarray(closes, dtype=float)
    if not len(c):
        return c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.concatenate([[0.0], c[1:] / c[:-1] - 1.0])


@dataclass(frozen=True)
class AgainstBenchmark:
    """A run's returns against its benchmark's: `alpha` (annual), `beta`, `information_ratio`
    (annualised), `correlation`, and the `bars` both returns are known on."""

    alpha: float
    beta: float
    information_ratio: float
    correlation: float
    bars: int


def _paired(returns: ArrayLike, benchmark: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r, b = np.asarray(returns, dtype=float), np.asarray(benchmark, dtype=float)
    if r.shape != b.shape:
        raise ValueError(f"returns and benchmark differ in length ({len(r)} and {len(b)})")
    known = ~(np.isnan(r) | np.isnan(b))
    return r[known], b[known]


def beta(returns: ArrayLike, benchmark: ArrayLike) -> float:
    """Return the covariance of the returns with the benchmark's over the benchmark's variance.

    empyrical's ``beta`` (both moments with the same ``ddof``, so it cancels); NaN with fewer than
    two bars or a benchmark that does not move.

    Examples
    --------
    >>> round(beta([0.02, -0.02, 0.04], [0.01, -0.01, 0.02]), 4)
    2.0
    """
    r, b = _paired(returns, benchmark)
    if len(r) < 2:
        return math.nan
    centred = b - b.mean()
    variance = float(np.mean(centred * centred))
    if variance < _FLAT_VARIANCE:
        return math.nan
    return float(np.mean(centred * r)) / variance


def alpha(returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float) -> float:
    """Return the annual alpha: ``(1 + mean(r - β b))^periods_per_year - 1`` (empyrical's).

    NaN where `beta` is.

    Examples
    --------
    >>> round(alpha([0.03, -0.01, 0.05], [0.01, -0.01, 0.02], periods_per_year=1), 4)
    0.01
    """
    slope = beta(returns, benchmark)
    if slope != slope:
        return math.nan
    r, b = _paired(returns, benchmark)
    with np.errstate(over="ignore"):
        return float(np.power(1.0 + float(np.mean(r - slope * b)), periods_per_year) - 1.0)


def information_ratio(returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float = 1.0) -> float:
    """Return ``mean(r - b) / std(r - b, ddof=1) · √periods_per_year``.

    With ``periods_per_year=1`` it is empyrical's ``excess_sharpe`` and QuantStats's
    ``information_ratio`` (both per bar). NaN with fewer than two bars or an active return that
    never varies (beyond rounding: a spread under 1e-12 of the largest return).

    Examples
    --------
    >>> round(information_ratio([0.02, 0.0, 0.03], [0.01, 0.0, 0.01]), 4)
    1.0
    """
    r, b = _paired(returns, benchmark)
    if len(r) < 2:
        return math.nan
    active = r - b
    spread = float(np.std(active, ddof=1))
    # Returns that equal the benchmark's up to rounding (the same prices divided two ways) have no
    # tracking error: a spread of 1e-17 would turn their rounding into a ratio of -17.
    scale = float(max(np.max(np.abs(r)), np.max(np.abs(b))))
    if not spread > _ROUNDING * scale:
        return math.nan
    return float(np.mean(active)) / spread * math.sqrt(periods_per_year)


def correlation(returns: ArrayLike, benchmark: ArrayLike) -> float:
    """Return Pearson's correlation of the returns with the benchmark's (NaN when either is flat).

    Examples
    --------
    >>> round(correlation([0.02, -0.02, 0.04], [0.01, -0.01, 0.02]), 4)
    1.0
    """
    r, b = _paired(returns, benchmark)
    if len(r) < 2 or r.max() == r.min() or b.max() == b.min():
        return math.nan
    rc, bc = r - r.mean(), b - b.mean()
    denominator = math.sqrt(float(np.sum(rc * rc)) * float(np.sum(bc * bc)))
    return float(np.sum(rc * bc)) / denominator if denominator > 0 else math.nan


def against_benchmark(returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float) -> AgainstBenchmark:
    """Return `alpha`, `beta`, `information_ratio` and `correlation` of returns against a benchmark."""
    r, _ = _paired(returns, benchmark)
    return AgainstBenchmark(
        alpha=alpha(returns, benchmark, periods_per_year),
        beta=beta(returns, benchmark),
        information_ratio=information_ratio(returns, benchmark, periods_per_year),
        correlation=correlation(returns, benchmark),
        bars=len(r),
    )


# --- the return distribution -------------------------------------------------------------------


def value_at_risk(returns: ArrayLike, cutoff: float = VAR_CUTOFF) -> float:
    """Return the historical VaR: the `cutoff` percentile of the returns, linearly interpolated.

    empyrical's ``value_at_risk``: a return, negative when it is a loss (NaN with no return).

    Examples
    --------
    >>> round(value_at_risk([-0.05, -0.01, 0.0, 0.01, 0.02]), 4)
    -0.042
    """
    r = _clean(returns)
    return float(np.percentile(r, 100.0 * cutoff)) if len(r) else math.nan


def conditional_value_at_risk(returns: ArrayLike, cutoff: float = VAR_CUTOFF) -> float:
    """Return the historical CVaR: the mean of the worst ``int((n - 1) · cutoff) + 1`` returns.

    empyrical's ``conditional_value_at_risk`` (the expected shortfall past the VaR); NaN with no
    return.

    Examples
    --------
    >>> conditional_value_at_risk([-0.05, -0.01, 0.0, 0.01, 0.02])
    -0.05
    """
    r = _clean(returns)
    if not len(r):
        return math.nan
    k = int((len(r) - 1) * cutoff)
    return float(np.mean(np.partition(r, k)[: k + 1]))


def _central_moments(r: np.ndarray) -> tuple[float, float, float]:
    d = r - r.mean()
    d2 = d * d
    return float(np.mean(d2)), float(np.mean(d2 * d)), float(np.mean(d2 * d2))


def skewness(returns: ArrayLike) -> float:
    """Return the bias-corrected skewness ``√(n(n-1)) / (n-2) · m3 / m2^1.5`` (pandas' ``skew``).

    NaN with fewer than 3 returns or none that differ.

    Examples
    --------
    >>> round(skewness([0.01, 0.02, -0.005, 0.015, 0.004]), 4)
    -0.4945
    """
    r = _clean(returns)
    n = len(r)
    if n < 3 or r.max() == r.min():
        return math.nan
    m2, m3, _ = _central_moments(r)
    return math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5


def excess_kurtosis(returns: ArrayLike) -> float:
    """Return the bias-corrected excess kurtosis (pandas' ``kurt``): 0 for a normal distribution.

    ``(n-1) / ((n-2)(n-3)) · ((n+1) m4 / m2² - 3 (n-1))``; NaN with fewer than 4 returns or none
    that differ.

    Examples
    --------
    >>> round(excess_kurtosis([0.01, 0.02, -0.005, 0.015, 0.004]), 4)
    -0.4715
    """
    r = _clean(returns)
    n = len(r)
    if n < 4 or r.max() == r.min():
        return math.nan
    m2, _, m4 = _central_moments(r)
    return (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * m4 / (m2 * m2) - 3.0 * (n - 1))


def tail_ratio(returns: ArrayLike) -> float:
    """Return ``|95th percentile| / |5th percentile|`` of the returns (empyrical's ``tail_ratio``).

    Above 1: the best returns are larger than the worst are deep. NaN with no return or a 5th
    percentile of 0 (empyrical divides by it).

    Examples
    --------
    >>> round(tail_ratio([-0.05, -0.01, 0.0, 0.01, 0.02]), 4)
    0.4286
    """
    r = _clean(returns)
    if not len(r):
        return math.nan
    high, low = np.percentile(r, [95.0, 5.0])
    return float(abs(high) / abs(low)) if low != 0 else math.nan


# --- trades --------------------------------------------------------------------------------------


def streaks(results: ArrayLike) -> tuple[int, int]:
    """Return the most consecutive winning trades and the most consecutive losing ones.

    A trade that made exactly nothing ends both streaks; NaN results are left out.

    Examples
    --------
    >>> streaks([1.0, 2.0, -1.0, -1.0, -3.0, 0.0, 4.0])
    (2, 3)
    """
    best = worst = won = lost = 0
    for value in _clean(results):
        won = won + 1 if value > 0 else 0
        lost = lost + 1 if value < 0 else 0
        best, worst = max(best, won), max(worst, lost)
    return best, worst


def kelly_fraction(returns: ArrayLike) -> float:
    """Return the Kelly fraction ``p - (1 - p) / b`` of the trades' returns (QuantStats's).

    ``p`` is the share of winning trades among those that won or lost (a trade at exactly 0 counts
    as neither), ``b`` the mean winning return over the mean losing one's size. NaN without a
    winning or a losing trade: the payoff ratio ``b`` is then not defined.

    Examples
    --------
    >>> round(kelly_fraction([0.02, 0.02, -0.01, -0.01]), 4)
    0.25
    """
    r = _clean(returns)
    wins, losses = r[r > 0], r[r < 0]
    if not len(wins) or not len(losses):
        return math.nan
    p = len(wins) / (len(wins) + len(losses))
    payoff = float(np.mean(wins)) / abs(float(np.mean(losses)))
    return p - (1.0 - p) / payoff


def system_quality_number(results: ArrayLike) -> float:
    """Return Van Tharp's SQN: ``√n · mean / std(ddof=1)`` of the trades' results (backtesting.py's).

    NaN with fewer than two trades or results that never differ.

    Examples
    --------
    >>> round(system_quality_number([30.0, -10.0, 20.0, -15.0]), 4)
    0.5649
    """
    r = _clean(results)
    if len(r) < 2 or r.max() == r.min():
        return math.nan
    return math.sqrt(len(r)) * float(np.mean(r)) / float(np.std(r, ddof=1))


# --- over time -----------------------------------------------------------------------------------


def yearly_returns(equity: pd.Series, start: float) -> pd.Series:
    """Return each UTC calendar year's return: its last equity over the year before's (or `start`).

    `equity` is indexed by time. The first and last years are partial when the run is.

    Examples
    --------
    >>> e = pd.Series([110.0, 99.0], index=pd.to_datetime(["2025-12-31", "2026-06-30"], utc=True))
    >>> yearly_returns(e, 100.0).round(4).to_dict()
    {2025: 0.1, 2026: -0.1}
    """
    if equity.empty:
        return pd.Series(dtype=float, name="return")
    index = pd.DatetimeIndex(equity.index).tz_convert("UTC")
    ends = pd.Series(equity.to_numpy(dtype=float), index=index.year).groupby(level=0).last()
    before = ends.shift(1).fillna(float(start))
    return (ends / before - 1.0).rename("return").rename_axis("year")


def rolling_volatility(returns: pd.Series, window: int, periods_per_year: float = 1.0) -> pd.Series:
    """Return the annualised volatility over each trailing `window` of returns (``ddof=1``).

    NaN until a window is full and over a window holding a NaN, like `metrics.rolling_sharpe`.

    Examples
    --------
    >>> r = pd.Series([0.01, -0.01, 0.02, 0.0])
    >>> rolling_volatility(r, 4, periods_per_year=252).round(4).tolist()
    [nan, nan, nan, 0.2049]
    """
    return returns.rolling(window).std(ddof=1) * math.sqrt(periods_per_year)

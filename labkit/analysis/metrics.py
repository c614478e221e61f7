"""Performance metrics: returns, risk and risk-adjusted ratios, trades, and how far a Sharpe can be trusted.

Conventions follow empyrical's, so figures can be checked against it:

- returns are simple per-bar returns, the first measured from the starting capital
  (`equity_returns`); NaN returns are left out, as empyrical's nan-functions do, and an annual
  figure counts only the known returns as periods;
- the Sharpe ratio is the mean over the standard deviation with ``ddof=1`` and a zero risk-free
  rate, annualised by ``√periods_per_year``; annual volatility is that deviation times the same
  root; `annual_return` is the geometric (compounded) annual return over the bars, empyrical's
  ``annual_return``;
- drawdown is a positive fraction of the running peak, the starting capital counting as a peak
  (empyrical's ``max_drawdown`` is the same number, negative).

Where empyrical returns ±inf for a ratio with no dispersion, labkit returns NaN (the ratio is not
defined); a Sortino ratio without a downside stays +inf as in empyrical.

``periods_per_year`` is the caller's to give, since only the caller knows the market's calendar:
bars in 365 days for 24/7 markets, 252 sessions for equities, 260 days for FX; for intraday bars,
the bars such a year holds.

The probabilistic and deflated Sharpe ratios and the minimum track record length follow Bailey and
López de Prado (2012, 2014): they work on the per-observation (not annualised) Sharpe ratio, with
the returns' skewness and (non-excess) kurtosis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

_NORMAL = NormalDist()
_EULER_GAMMA = 0.5772156649015329
# A calendar year, for growth over the span between two times.
YEAR_DAYS = 365.25

ArrayLike: TypeAlias = Sequence[float] | np.ndarray | pd.Series


def drawdowns(equity: Sequence[float] | np.ndarray | pd.Series, start: float | None = None) -> np.ndarray:
    """Return, at each point, the fall from the running peak as a positive fraction of the peak.

    `start` is the equity before the first value; it counts towards the peak. This is labkit's one
    definition of drawdown: backtests, readiness and report figures all use it.

    Examples
    --------
    >>> drawdowns([100.0, 120.0, 90.0, 130.0], start=100.0).round(4).tolist()
    [0.0, 0.0, 0.25, 0.0]
    """
    values = np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(values) if len(values) else values
    if start is not None:
        peak = np.maximum(peak, float(start))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - values / peak, 0.0)


def max_drawdown(equity: Sequence[float] | pd.Series, start: float | None = None) -> float:
    """Return the largest fall from a running peak, as a fraction of the peak (NaN when empty).

    `start` is the equity before the first value (it can be the peak).

    Examples
    --------
    >>> max_drawdown([100.0, 120.0, 90.0, 130.0], start=100.0)
    0.25
    """
    values = np.asarray(equity, dtype=float)
    if not len(values):
        return math.nan if start is None else 0.0
    return max(0.0, float(np.max(drawdowns(values, start))))


@dataclass(frozen=True)
class DrawdownDuration:
    """The longest stay under a running peak: from the peak to the recovery, or to the last bar.

    ``bars`` counts the bars after the peak up to the first one back at it (or up to the last bar
    when equity never got back); ``peak`` and ``end`` are their positions, ``peak`` -1 when the peak
    is the starting capital; ``span`` is the time between them when times were given (from the
    first bar's time when the peak is the starting capital).
    """

    bars: int
    peak: int
    end: int
    recovered: bool
    span: pd.Timedelta | None = None


def drawdown_duration(
    equity: ArrayLike, start: float | None = None, times: pd.DatetimeIndex | Sequence[Any] | None = None
) -> DrawdownDuration:
    """Return the longest drawdown of an equity curve, in bars and, given `times`, as a time span.

    Examples
    --------
    >>> d = drawdown_duration([100.0, 120.0, 90.0, 110.0, 125.0, 100.0], start=100.0)
    >>> d.bars, d.peak, d.end, d.recovered
    (3, 1, 4, True)
    >>> times = pd.date_range("2026-01-05", periods=6, freq="h", tz="UTC")
    >>> str(drawdown_duration([100.0, 120.0, 90.0, 110.0, 125.0, 100.0], 100.0, times).span)
    '0 days 03:00:00'
    """
    under = drawdowns(equity, start) > 0
    n = len(under)
    if not under.any():
        return DrawdownDuration(0, -1, -1, True, pd.Timedelta(0) if times is not None else None)
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    firsts, lasts = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    peaks = firsts - 1
    ends = np.where(lasts + 1 < n, lasts + 1, lasts)
    k = int(np.argmax(ends - peaks))  # the first of the longest
    peak, end = int(peaks[k]), int(ends[k])
    span = None
    if times is not None:
        index = pd.DatetimeIndex(times)
        span = index[end] - index[max(peak, 0)]
    return DrawdownDuration(end - peak, peak, end, bool(lasts[k] + 1 < n), span)


# --- returns, risk and risk-adjusted ratios --------------------------------------------------------


def equity_returns(equity: ArrayLike, start: float) -> np.ndarray:
    """Return an equity curve's per-bar simple returns, the first measured from `start`.

    Examples
    --------
    >>> equity_returns([110.0, 99.0], start=100.0).round(4).tolist()
    [0.1, -0.1]
    """
    curve = np.concatenate([[float(start)], np.asarray(equity, dtype=float)])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diff(curve) / curve[:-1]


def _clean(returns: ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    missing = np.isnan(r)
    return r[~missing] if missing.any() else r


def total_return(returns: ArrayLike) -> float:
    """Return the compounded return of all the returns, NaN rows left out (NaN when none is known).

    Examples
    --------
    >>> round(total_return([0.1, -0.1]), 4)
    -0.01
    """
    r = _clean(returns)
    return float(np.prod(1.0 + r) - 1.0) if len(r) else math.nan


def annual_return(returns: ArrayLike, periods_per_year: float) -> float:
    """Return the compounded annual growth over the bars, ``periods_per_year`` bars making a year.

    empyrical's ``annual_return`` (and its ``cagr``): ``(1 + total)^(periods_per_year / n) - 1``,
    where ``n`` counts the known returns only: a NaN row is no period (empyrical counts it as a
    flat one, which shrinks the growth of a series with holes towards zero).

    Examples
    --------
    >>> round(annual_return([0.01] * 126, periods_per_year=252), 4)  # half a year at 1% a day
    11.274
    """
    r = _clean(returns)
    if not len(r):
        return math.nan
    with np.errstate(over="ignore"):
        return float(np.power(1.0 + total_return(r), periods_per_year / len(r)) - 1.0)


def cagr(returns: ArrayLike, years: float) -> float:
    """Return the compounded annual growth over a calendar span of `years` (NaN for no span).

    `annual_return` counts years in bars; this counts them on the calendar, so weekends and
    closed hours count too (``YEAR_DAYS`` days a year).

    Examples
    --------
    >>> round(cagr([0.1, 0.1], years=2.0), 4)
    0.1
    """
    r = np.asarray(returns, dtype=float)
    if not len(r) or not years > 0:
        return math.nan
    with np.errstate(over="ignore"):
        return float(np.power(1.0 + total_return(r), 1.0 / years) - 1.0)


def annual_volatility(returns: ArrayLike, periods_per_year: float) -> float:
    """Return the standard deviation of the returns (``ddof=1``) times ``√periods_per_year``.

    Examples
    --------
    >>> round(annual_volatility([0.01, -0.01, 0.02, 0.0], periods_per_year=252), 4)
    0.2049
    """
    r = _clean(returns)
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = 1.0) -> float:
    """Return the Sharpe ratio: mean over standard deviation (``ddof=1``), times ``√periods_per_year``.

    The risk-free rate is zero. With ``periods_per_year=1`` it is the per-observation ratio the
    probabilistic Sharpe ratio uses. NaN with fewer than two returns or none that differ.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, -0.01, 0.02, 0.0], periods_per_year=252), 4)
    6.1482
    """
    r = _clean(returns)
    if len(r) < 2 or r.max() == r.min():
        return math.nan
    std = float(np.std(r, ddof=1))
    return float(np.mean(r) / std * math.sqrt(periods_per_year)) if std > 0 else math.nan


def rolling_sharpe(returns: pd.Series, window: int, periods_per_year: float = 1.0) -> pd.Series:
    """Return `sharpe_ratio` over each trailing `window` of `returns`, aligned with them.

    NaN until a window is full, over a window holding a NaN, and where a window's returns do not
    differ (no standard deviation above zero).

    Examples
    --------
    >>> r = pd.Series([0.01, -0.01, 0.02, 0.0, 0.0, 0.0])
    >>> rolling_sharpe(r, 4, periods_per_year=252).round(4).tolist()
    [nan, nan, nan, 6.1482, 3.1539, 7.9373]
    """
    roll = returns.rolling(window)
    std = roll.std(ddof=1)
    return (roll.mean() / std * periods_per_year**0.5).where(std > 0)


def downside_risk(returns: ArrayLike, periods_per_year: float, required_return: float = 0.0) -> float:
    """Return the annualised downside deviation: ``√mean(min(r - required, 0)²) · √periods_per_year``.

    The mean runs over every return, those above `required_return` counting as zero (empyrical).

    Examples
    --------
    >>> round(downside_risk([0.01, -0.01, 0.02, 0.0], periods_per_year=252), 4)
    0.0794
    """
    r = _clean(returns)
    if not len(r):
        return math.nan
    below = np.minimum(r - required_return, 0.0)
    return float(math.sqrt(float(np.mean(below**2))) * math.sqrt(periods_per_year))


def sortino_ratio(returns: ArrayLike, periods_per_year: float, required_return: float = 0.0) -> float:
    """Return the Sortino ratio: the annualised mean excess return over the annualised `downside_risk`.

    +inf when nothing falls below `required_return` and the mean is above it (empyrical); NaN with
    fewer than two returns.

    Examples
    --------
    >>> round(sortino_ratio([0.01, -0.01, 0.02, 0.0], periods_per_year=252), 4)
    15.8745
    """
    r = _clean(returns)
    if len(r) < 2:
        return math.nan
    mean = float(np.mean(r - required_return)) * periods_per_year
    risk = downside_risk(r, periods_per_year, required_return)
    if risk > 0:
        return mean / risk
    return math.inf if mean > 0 else math.nan


def returns_max_drawdown(returns: ArrayLike) -> float:
    """Return the max drawdown of the returns compounded from 1 (positive; empyrical's, negated).

    Examples
    --------
    >>> round(returns_max_drawdown([0.1, -0.2, 0.05]), 4)
    0.2
    """
    r = _clean(returns)
    if not len(r):
        return math.nan
    return max_drawdown(np.cumprod(1.0 + r), start=1.0)


def calmar_ratio(returns: ArrayLike, periods_per_year: float, *, drawdown: float | None = None) -> float:
    """Return the Calmar ratio: `annual_return` over the max drawdown; NaN without a drawdown.

    `drawdown`, when the caller has it, is the returns' max drawdown (`returns_max_drawdown`).

    Examples
    --------
    >>> round(calmar_ratio([0.1, -0.2, 0.05], periods_per_year=12), 4)
    -1.3553
    """
    dd = returns_max_drawdown(returns) if drawdown is None else drawdown
    if not dd > 0:
        return math.nan
    ratio = annual_return(returns, periods_per_year) / dd
    return ratio if math.isfinite(ratio) else math.nan


# --- trades --------------------------------------------------------------------------------------


def profit_factor(pnl: ArrayLike) -> float:
    """Return the gross profit of the winning trades over the gross loss of the losing ones.

    +inf with profits and no loss; NaN with no trade, or neither profit nor loss.

    Examples
    --------
    >>> profit_factor([30.0, -10.0, 20.0, -15.0])
    2.0
    """
    p = _clean(pnl)
    won, lost = float(p[p > 0].sum()), float(-p[p < 0].sum())
    if lost > 0:
        return won / lost
    return math.inf if won > 0 else math.nan


def expectancy(pnl: ArrayLike) -> float:
    """Return the mean result per trade (NaN with no trade): what one more trade is expected to make.

    Examples
    --------
    >>> expectancy([30.0, -10.0, 20.0, -15.0])
    6.25
    """
    p = _clean(pnl)
    return float(p.mean()) if len(p) else math.nan


def hit_rate(pnl: ArrayLike) -> float:
    """Return the share of trades that made money (NaN with no trade).

    Examples
    --------
    >>> hit_rate([30.0, -10.0, 20.0, -15.0])
    0.5
    """
    p = _clean(pnl)
    return float((p > 0).mean()) if len(p) else math.nan


def exposure(trips: pd.DataFrame, times: pd.DatetimeIndex | Sequence[Any], open_since: Any = None) -> float:
    """Return the share of bars that closed holding a position (NaN with no bar).

    A round trip holds a position from its entry bar (``entry_ts``, the bar whose open filled it) up
    to the bar before its exit (``exit_ts``, sold at that bar's open). `open_since` is the entry of a
    position still open after the last bar. `times` are the bars' open times, in order.

    Examples
    --------
    >>> times = pd.date_range("2026-01-05", periods=10, freq="min", tz="UTC")
    >>> trips = pd.DataFrame({"entry_ts": [times[1]], "exit_ts": [times[4]]})
    >>> exposure(trips, times), exposure(trips, times, open_since=times[8])
    (0.3, 0.5)
    """
    index = pd.DatetimeIndex(times)
    if not len(index):
        return math.nan
    held = 0
    if len(trips):
        entries = index.searchsorted(pd.DatetimeIndex(trips["entry_ts"]))
        exits = index.searchsorted(pd.DatetimeIndex(trips["exit_ts"]))
        held = int((exits - entries).sum())
    if open_since is not None:
        held += len(index) - int(index.searchsorted(pd.Timestamp(open_since)))
    return held / len(index)


def trade_stats(trips: pd.DataFrame) -> dict[str, Any]:
    """Return the closed trades' figures from a round-trips frame (`labkit.readiness.round_trips`).

    ``trades``; from ``net_pnl`` (quote currency): ``profit_factor``, ``expectancy``, ``hit_rate``;
    from ``net_return`` (fractions of the entry cost): ``avg_return``, ``best_trade``,
    ``worst_trade``; from ``entry_ts`` to ``exit_ts``: ``avg_duration`` and ``max_duration``
    (Timedelta). NaN (NaT for durations) where there is no trade.

    Examples
    --------
    >>> t = pd.to_datetime(["2026-01-05 00:00", "2026-01-05 02:00", "2026-01-05 03:00",
    ...                     "2026-01-05 07:00"], utc=True)
    >>> trips = pd.DataFrame({"entry_ts": t[[0, 2]], "exit_ts": t[[1, 3]], "net_pnl": [12.0, -4.0],
    ...                       "net_return": [0.012, -0.004]})
    >>> stats = trade_stats(trips)
    >>> stats["profit_factor"], stats["best_trade"], str(stats["avg_duration"])
    (3.0, 0.012, '0 days 03:00:00')
    """
    pnl = trips["net_pnl"].to_numpy(dtype=float) if len(trips) else np.empty(0)
    ret = trips["net_return"].to_numpy(dtype=float) if len(trips) else np.empty(0)
    durations = (
        pd.DatetimeIndex(trips["exit_ts"]) - pd.DatetimeIndex(trips["entry_ts"])
        if len(trips)
        else pd.TimedeltaIndex([])
    )
    return {
        "trades": len(trips),
        "profit_factor": profit_factor(pnl),
        "expectancy": expectancy(pnl),
        "hit_rate": hit_rate(pnl),
        "avg_return": float(np.mean(ret)) if len(ret) else math.nan,
        "best_trade": float(np.max(ret)) if len(ret) else math.nan,
        "worst_trade": float(np.min(ret)) if len(ret) else math.nan,
        "avg_duration": durations.mean() if len(durations) else pd.NaT,
        "max_duration": durations.max() if len(durations) else pd.NaT,
    }


def buy_and_hold(closes: ArrayLike) -> tuple[float, float]:
    """Return the return and max drawdown of holding from the first close to the last, without costs.

    Examples
    --------
    >>> [round(x, 4) for x in buy_and_hold([100.0, 80.0, 120.0, 110.0])]
    [0.1, 0.2]
    """
    c = np.asarray(closes, dtype=float)
    if not len(c):
        return math.nan, math.nan
    return float(c[-1] / c[0] - 1.0), max_drawdown(c)


# --- how far a Sharpe ratio can be trusted ---------------------------------------------------------


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Return a percentile bootstrap interval of the mean; NaNs when there are fewer than 2 values.

    The resampling is seeded, so the same values give the same interval.

    Examples
    --------
    >>> low, high = bootstrap_mean_ci([0.01, 0.02, -0.005, 0.015, 0.004], samples=1000, seed=0)
    >>> round(low, 4), round(high, 4)
    (0.001, 0.0158)
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // len(data))  # bound the index matrix to ~16 MB
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        means[start : start + size] = data[rng.integers(0, len(data), size=(size, len(data)))].mean(1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class SharpeMoments:
    """What the Sharpe ratio's sampling error depends on: the per-observation ratio, skewness,
    non-excess kurtosis (3 for a normal distribution) and the number of returns."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int


def sharpe_moments(returns: ArrayLike) -> SharpeMoments | None:
    """Return the per-observation Sharpe ratio and the moments of `returns`; None with fewer than
    3 returns or none that differ.

    Examples
    --------
    >>> m = sharpe_moments([0.01, 0.02, -0.005, 0.015, 0.004])
    >>> round(m.sharpe, 4), round(m.skew, 4), round(m.kurtosis, 4), m.n
    (0.9043, -0.3317, 1.8821, 5)
    """
    r = _clean(returns)
    if len(r) < 3 or r.max() == r.min():
        return None
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return None
    z = (r - r.mean()) / r.std(ddof=0)
    z2 = z * z  # products, not powers: numpy's float power is many times slower
    return SharpeMoments(float(r.mean()) / sd, float(np.mean(z2 * z)), float(np.mean(z2 * z2)), len(r))


def _sharpe_variance_factor(sharpe: float, skew: float, kurtosis: float) -> float:
    return 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2


def psr_from_moments(
    sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0
) -> float:
    """Return ``PSR = Φ((SR - SR*) √(n-1) / √(1 - γ3 SR + (γ4 - 1)/4 SR²))`` from its inputs.

    All Sharpe ratios per observation; NaN when the moments make the variance non-positive.

    Examples
    --------
    >>> round(psr_from_moments(0.1, 250, skew=-0.5, kurtosis=6.0), 4)
    0.9371
    """
    variance = _sharpe_variance_factor(sharpe, skew, kurtosis)
    if not variance > 0 or n < 2:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(variance))


def implied_moments(psr: float | None, sharpe: float, n: int) -> SharpeMoments | None:
    """Return moments that give `psr` as the PSR against zero of `sharpe` over `n` returns.

    A summary that keeps a run's PSR but not its returns still holds their skewness and kurtosis
    through ``V = 1 - γ3 SR + (γ4 - 1)/4 SR²``, since ``PSR = Φ(SR √(n-1) / √V)``: this recovers
    ``V`` and returns skewness 0 with the kurtosis that gives the same ``V`` at this Sharpe ratio
    (per observation), so `psr_from_moments` against any benchmark uses the run's own ``V``.
    None when `psr` is missing, saturated (within 1e-9 of 0 or 1) or disagrees with the sign of
    `sharpe`.

    Examples
    --------
    >>> m = implied_moments(psr_from_moments(0.05, 2_000, skew=-1.0, kurtosis=8.0), 0.05, 2_000)
    >>> round(psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, 0.02), 6)
    0.904268
    >>> round(psr_from_moments(0.05, 2_000, -1.0, 8.0, 0.02), 6)
    0.904268
    """
    if psr is None or not (math.isfinite(psr) and 1e-9 < psr < 1.0 - 1e-9) or sharpe == 0.0:
        return None
    z = _NORMAL.inv_cdf(psr)
    if not z * sharpe > 0.0:
        return None
    variance = (sharpe * math.sqrt(n - 1) / z) ** 2
    return SharpeMoments(sharpe, 0.0, 1.0 + 4.0 * (variance - 1.0) / (sharpe * sharpe), n)


def probabilistic_sharpe_ratio(returns: Sequence[float] | np.ndarray, benchmark: float = 0.0) -> float:
    """Return the probability that the true Sharpe ratio of `returns` exceeds `benchmark`.

    Bailey & López de Prado (2012): ``PSR = Φ((SR - SR*) √(n-1) / √(1 - γ3 SR + (γ4 - 1)/4 SR²))``
    with the per-observation Sharpe ratio ``SR``, skewness ``γ3`` and (non-excess) kurtosis ``γ4``.
    NaN with fewer than 3 returns, no dispersion, or moments that make the variance non-positive.

    Examples
    --------
    >>> round(probabilistic_sharpe_ratio([0.01, 0.02, -0.005, 0.015, 0.004]), 4)
    0.9314
    """
    m = sharpe_moments(returns)
    if m is None:
        return math.nan
    return psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, benchmark)


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """Return the Sharpe ratio the best of `trials` unskilled trials is expected to reach.

    Bailey & López de Prado (2014): ``√V · ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` with the
    variance ``V`` of the trials' Sharpe ratios and Euler's ``γ``. Zero for a single trial or an
    unknown (NaN) variance: with nothing to choose from, there is no selection to pay for.

    Examples
    --------
    >>> round(expected_max_sharpe(100, 0.5 / 250), 4)
    0.1132
    """
    if trials < 2 or not sharpe_variance > 0:
        return 0.0
    n = float(trials)
    return math.sqrt(sharpe_variance) * (
        (1.0 - _EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
        + _EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    )


def deflated_sharpe_ratio(returns: ArrayLike, trials: int, sharpe_variance: float) -> float:
    """Return the deflated Sharpe ratio: the PSR against the best Sharpe `trials` would give by luck.

    `sharpe_variance` is the variance of the trials' per-observation Sharpe ratios (an annualised
    variance divided by ``periods_per_year``). With one trial it is the PSR against zero.

    Examples
    --------
    Bailey & López de Prado's (2014) example, an annual Sharpe of 2.5 over 1,250 daily returns with
    skewness -3 and kurtosis 10, the best of 100 trials whose annual Sharpe ratios vary by 0.5:

    >>> sr0 = expected_max_sharpe(100, 0.5 / 250)
    >>> round(psr_from_moments(2.5 / 250**0.5, 1250, skew=-3.0, kurtosis=10.0, benchmark=sr0), 4)
    0.9004
    """
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(trials, sharpe_variance))


def mintrl_from_moments(
    sharpe: float, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0, confidence: float = 0.95
) -> float:
    """Return ``MinTRL = 1 + (1 - γ3 SR + (γ4 - 1)/4 SR²) (Φ⁻¹(confidence) / (SR - SR*))²``.

    The number of observations needed before a per-observation Sharpe ratio `sharpe` is above
    `benchmark` with that confidence (Bailey & López de Prado 2012). +inf when the ratio is not
    above the benchmark: no track record is long enough.

    Examples
    --------
    The 2012 paper's example (its appendix): a monthly Sharpe of 2/√12 against 1/√12, skewness
    -0.72 and kurtosis 5.78, needs about 59.9 months:

    >>> round(mintrl_from_moments(2 / 12**0.5, -0.72, 5.78, benchmark=1 / 12**0.5), 2)
    59.9
    """
    if not sharpe > benchmark:
        return math.inf
    z = _NORMAL.inv_cdf(confidence)
    variance = _sharpe_variance_factor(sharpe, skew, kurtosis)
    return 1.0 + variance * (z / (sharpe - benchmark)) ** 2


def min_track_record_length(returns: ArrayLike, benchmark: float = 0.0, confidence: float = 0.95) -> float:
    """Return how many returns like these are needed to trust their Sharpe ratio is above `benchmark`.

    ``benchmark`` is per observation. NaN when the Sharpe ratio is not defined (fewer than 3
    returns or no dispersion), +inf when it is not above the benchmark. The shortfall, "at this
    Sharpe, about N more observations are needed", is this minus the returns there are.

    Examples
    --------
    >>> round(min_track_record_length([0.01, 0.02, -0.005, 0.015, 0.004]), 1)
    5.9
    """
    m = sharpe_moments(returns)
    if m is None:
        return math.nan
    return mintrl_from_moments(m.sharpe, m.skew, m.kurtosis, benchmark, confidence)

"""Performance metrics: drawdown, bootstrap intervals of the mean, the probabilistic Sharpe ratio."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


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
    r = np.asarray(returns, dtype=float)
    n = len(r)
    if n < 3:
        return math.nan
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return math.nan
    sr = float(r.mean()) / sd
    z = (r - r.mean()) / r.std(ddof=0)
    skew, kurt = float(np.mean(z**3)), float(np.mean(z**4))
    variance = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not variance > 0:
        return math.nan
    stat = (sr - benchmark) * math.sqrt(n - 1) / math.sqrt(variance)
    return 0.5 * (1.0 + math.erf(stat / math.sqrt(2.0)))

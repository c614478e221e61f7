"""Windowed reductions in a fixed order: the arithmetic every feature is built from.

Arrays here are aligned on their newest value: the last element of every input and output is the
newest bar, and a shorter array simply reaches less far back. A rolling function returns one value
per complete window (``len(values) - window + 1`` of them, none if the input is shorter than a
window), so no NaN is carried through the arithmetic; `pad` adds the warm-up NaN at the end.

Each window is reduced on its own, oldest value to newest, one addition at a time, in one of two
ways:

- many windows (a series): one shifted slice per window position, added in place (as `sma()`
  does), so a million windows cost ``window`` array additions;
- a few windows (the newest bar of a live session): the windows gathered into a small matrix and
  summed along each row with ``np.add.accumulate``, which adds strictly left to right.

Both perform the same floating-point operations in the same order, so a bar's value is bit for bit
the same whether the series holds a million bars or only that bar's window. Running totals along
the series are never used: a difference of cumulative sums would carry the rounding of all the
history before the window.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Up to this many values in all windows together, gathering them costs less than the per-call
# overhead of `window` numpy operations on tiny slices. The result is the same either way.
_GATHER_LIMIT = 4096


@lru_cache(maxsize=256)
def _positions(m: int, window: int) -> np.ndarray:
    positions = np.arange(m)[:, None] + np.arange(window)
    positions.flags.writeable = False
    return positions


def _count(values: np.ndarray, window: int) -> int:
    if window < 1:
        raise ValueError(f"a window needs at least 1 bar, not {window}")
    return max(len(values) - window + 1, 0)


def tail(values: np.ndarray, k: int) -> np.ndarray:
    """Return the newest `k` values (none when `k` is 0, unlike ``values[-0:]``)."""
    return values[len(values) - k :]


def pad(values: np.ndarray, n: int) -> np.ndarray:
    """Return `values` preceded by NaN up to length `n`: the warm-up bars of a full series.

    Examples
    --------
    >>> pad(np.array([1.0, 2.0]), 3)
    array([nan,  1.,  2.])
    """
    out = np.empty(n)
    out[: n - len(values)] = np.nan
    out[n - len(values) :] = values
    return out


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Return the sum of each `window` consecutive values, added oldest first.

    Examples
    --------
    >>> rolling_sum(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([3., 5., 7.])
    """
    m = _count(values, window)
    if m == 1:
        return np.add.accumulate(values)[-1:]
    if m * window <= _GATHER_LIMIT:
        # np.add.accumulate adds strictly left to right along each row, as the slices below do.
        return np.add.accumulate(values[_positions(m, window)], axis=1)[:, -1]
    total = values[:m].copy()
    for offset in range(1, window):
        total += values[offset : offset + m]
    return total


def rolling_dot(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return each window's weighted sum; ``weights[0]`` applies to the window's oldest value.

    Examples
    --------
    >>> rolling_dot(np.array([1.0, 2.0, 3.0]), np.array([0.25, 0.75]))
    array([1.75, 2.75])
    """
    window = len(weights)
    m = _count(values, window)
    if m * window <= _GATHER_LIMIT:
        # Each product is rounded, then the products are added left to right, as below.
        return np.add.accumulate(values[_positions(m, window)] * weights, axis=1)[:, -1]
    total = values[:m] * weights[0]
    term = np.empty(m)
    for offset in range(1, window):
        np.multiply(values[offset : offset + m], weights[offset], out=term)
        total += term
    return total


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    """Return the largest of each `window` consecutive values."""
    return _extreme(values, window, np.maximum)


def rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    """Return the smallest of each `window` consecutive values."""
    return _extreme(values, window, np.minimum)


def _extreme(values: np.ndarray, window: int, pick: np.ufunc) -> np.ndarray:
    # A maximum or minimum is exact in any order; only the cost differs between the two paths.
    m = _count(values, window)
    if m * window <= _GATHER_LIMIT:
        return pick.reduce(values[_positions(m, window)], axis=1)
    best = values[:m].copy()
    for offset in range(1, window):
        pick(best, values[offset : offset + m], out=best)
    return best


def rolling_moments(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the sums of ``d`` and ``d**2``, with ``d`` each value minus its window's newest value.

    Centring on a value of the window (the shifted-data formula) keeps the spread accurate, since
    that value is never far from the mean relative to the spread itself, and makes a window of equal
    values give exactly zero spread (every ``d`` is 0), so zero-spread guards compare exactly.
    """
    m = _count(values, window)
    if m == 1:
        d = values - values[-1]
        s1 = np.add.accumulate(d)[-1:]
        np.multiply(d, d, out=d)
        return s1, np.add.accumulate(d)[-1:]
    if m * window <= _GATHER_LIMIT:
        rows = values[_positions(m, window)]
        d = rows - rows[:, -1:]
        s1 = np.add.accumulate(d, axis=1)[:, -1]
        np.multiply(d, d, out=d)
        return s1, np.add.accumulate(d, axis=1)[:, -1]
    centre = values[window - 1 :]
    d = values[:m] - centre
    s1, s2 = d.copy(), d * d
    for offset in range(1, window):
        np.subtract(values[offset : offset + m], centre, out=d)
        s1 += d
        np.multiply(d, d, out=d)
        s2 += d
    return s1, s2


def rolling_std(values: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Return the standard deviation of each window (exactly 0 when its values are all equal).

    Examples
    --------
    >>> rolling_std(np.array([1.0, 3.0, 3.0, 3.0]), 2)
    array([1.41421356, 0.        , 0.        ])
    """
    if window <= ddof:
        raise ValueError(f"a standard deviation with ddof={ddof} needs a window above {ddof}, not {window}")
    s1, s2 = rolling_moments(values, window)
    return _std(s1, s2, window, ddof)


def rolling_zscore(values: np.ndarray, window: int, ddof: int, neutral: float) -> np.ndarray:
    """Return how many standard deviations each value lies from its window's mean (itself included).

    A window of equal values has no spread: its z-score is `neutral`.

    Examples
    --------
    >>> rolling_zscore(np.array([1.0, 1.0, 1.0, 4.0]), 2, ddof=0, neutral=0.0)
    array([0., 0., 1.])
    """
    s1, s2 = rolling_moments(values, window)
    # The newest value minus the mean: the mean is centre + s1 / window, and the centre is the newest.
    return ratio(-s1 / window, _std(s1, s2, window, ddof), neutral)


def _std(s1: np.ndarray, s2: np.ndarray, window: int, ddof: int) -> np.ndarray:
    # Rounding can leave a hair below zero; a negative variance is no variance.
    return np.sqrt(np.maximum(s2 - s1 * s1 / window, 0.0) / (window - ddof))


def ratio(numerator: np.ndarray, denominator: np.ndarray, neutral: float) -> np.ndarray:
    """Return ``numerator / denominator``, or `neutral` where the denominator is 0.

    Examples
    --------
    >>> ratio(np.array([1.0, 1.0, 1.0]), np.array([2.0, 0.0, np.nan]), 0.5)
    array([0.5, 0.5, nan])
    """
    if denominator.all():  # the usual case; NaN counts as nonzero and divides to NaN
        return numerator / denominator
    out = np.full(len(numerator), neutral)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)

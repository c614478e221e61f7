"""Cross-sectional features: where a symbol stands among its universe at a time, not alone.

Two features, off unless a pooled model is trained with ``--cross-sectional``: a symbol's
percentile rank, across the universe's symbols with a bar at time ``t``, of its momentum (the log
return over its last `MOMENTUM_BARS` bars) and of its volatility (the std of its last
`MOMENTUM_BARS` one-bar log returns). Each symbol's momentum and volatility come from its own bars
up to ``t``, and the rank at ``t`` reads only those values at ``t``, so the features are past-only.

One symbol's bars cannot compute them: whoever holds the universe (`labkit.research.pooled` when
training, the book engine when trading) computes them with `rank_columns` and hands each symbol's
bars over with these columns beside ``open ... volume``. The `Feature` definitions below only read
that column, so a model's features come from the same code path in training and in a book.

A rank is ``(r - 1) / (k - 1)`` where ``r`` is the symbol's rank (1 the lowest, ties averaged) among
the ``k`` symbols with a value at ``t``: 0 the lowest, 1 the highest, 0.5 when it is alone.

Examples
--------
>>> mom = np.array([[0.01, 0.03, np.nan], [0.02, 0.02, -0.01]])
>>> percentile_ranks(mom)
array([[0.  , 1.  ,  nan],
       [0.75, 0.75, 0.  ]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from labkit.features.definitions import FEATURES, Columns, Feature, log_returns
from labkit.features.windows import pad, rolling_std

# N: the window of the universe's momentum feature (ret_60 looks 60 bars back), else 60.
MOMENTUM_BARS = FEATURES["ret_60"].lookback - 1 if "ret_60" in FEATURES else 60
XS_MOMENTUM = f"xs_rank_ret_{MOMENTUM_BARS}"
XS_VOLATILITY = f"xs_rank_vol_{MOMENTUM_BARS}"
LOOKBACK = MOMENTUM_BARS + 1  # N returns need N + 1 closes


def _supplied(name: str) -> Callable[[Columns], np.ndarray]:
    def values(cols: Columns) -> np.ndarray:
        if name not in cols:
            raise ValueError(
                f"feature {name} is cross-sectional: it ranks a symbol among its universe, so it comes "
                "with the bars from a pooled training run or a book, never from one symbol's bars"
            )
        column = np.asarray(cols[name], dtype="float64")
        return column[min(LOOKBACK - 1, len(column)) :]

    return values


CROSS_SECTIONAL: dict[str, Feature] = {
    feature.name: feature
    for feature in (
        Feature(
            XS_MOMENTUM,
            LOOKBACK,
            f"percentile rank (0..1) of the {MOMENTUM_BARS}-bar log return across the universe",
            _supplied(XS_MOMENTUM),
            cross_sectional=True,
        ),
        Feature(
            XS_VOLATILITY,
            LOOKBACK,
            f"percentile rank (0..1) of the std of {MOMENTUM_BARS} log returns across the universe",
            _supplied(XS_VOLATILITY),
            cross_sectional=True,
        ),
    )
}
"""The cross-sectional features by name: supplied as columns of the bars, see `rank_columns`."""

NAMES: tuple[str, ...] = tuple(CROSS_SECTIONAL)


def momentum(close: np.ndarray, n: int = MOMENTUM_BARS) -> np.ndarray:
    """Return each bar's log return over its last `n` bars (NaN for the first `n`)."""
    close = np.asarray(close, dtype="float64")
    with np.errstate(all="ignore"):
        return pad(np.log(close[n:] / close[: max(len(close) - n, 0)]), len(close))


def volatility(close: np.ndarray, n: int = MOMENTUM_BARS) -> np.ndarray:
    """Return each bar's std (ddof 1) of its last `n` one-bar log returns (NaN for the first `n`)."""
    close = np.asarray(close, dtype="float64")
    if len(close) <= n:
        return np.full(len(close), np.nan)
    with np.errstate(all="ignore"):
        return pad(rolling_std(log_returns(close), n, ddof=1), len(close))


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Return each row's percentile ranks (0..1, ties averaged) among its finite values; NaN stays NaN."""
    frame = pd.DataFrame(np.where(np.isfinite(values), values, np.nan))
    rank = frame.rank(axis=1, method="average").to_numpy()
    k = np.isfinite(rank).sum(axis=1, keepdims=True).astype("float64")
    with np.errstate(all="ignore"):
        return np.where(k > 1, (rank - 1.0) / (k - 1.0), np.where(np.isfinite(rank), 0.5, np.nan))


def rank_columns(
    series: Sequence[tuple[np.ndarray, np.ndarray]], n: int = MOMENTUM_BARS
) -> list[dict[str, np.ndarray]]:
    """Return, for each symbol's ``(times, closes)``, its two cross-sectional columns on its own bars.

    The times (epoch ms, increasing) are laid on the union of every symbol's times; a symbol with
    no bar at a time is not ranked there. A rank at ``t`` reads each symbol's value at ``t``, which
    reads that symbol's last ``n + 1`` closes: give each symbol at least that many bars before the
    first time whose rank matters.
    """
    stamps = [np.asarray(t, dtype="int64") for t, _ in series]
    grid = np.unique(np.concatenate(stamps)) if stamps else np.empty(0, dtype="int64")
    shape = (len(grid), len(series))
    mom, vol = np.full(shape, np.nan), np.full(shape, np.nan)
    where = []
    for j, (times, close) in enumerate(series):
        rows = np.searchsorted(grid, np.asarray(times, dtype="int64"))
        where.append(rows)
        mom[rows, j] = momentum(close, n)
        vol[rows, j] = volatility(close, n)
    mom_rank, vol_rank = percentile_ranks(mom), percentile_ranks(vol)
    return [
        {XS_MOMENTUM: mom_rank[rows, j], XS_VOLATILITY: vol_rank[rows, j]} for j, rows in enumerate(where)
    ]


def with_ranks(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return `frames` (symbol -> bars) each with its cross-sectional columns beside its bars."""
    from labkit.data.bars import ts_ms

    series = [
        (np.asarray(ts_ms(bars), dtype="int64"), bars["close"].to_numpy(float)) for bars in frames.values()
    ]
    ranks = rank_columns(series)
    return {symbol: bars.assign(**cols) for (symbol, bars), cols in zip(frames.items(), ranks, strict=True)}

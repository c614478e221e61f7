"""The rows of a model pooled over a universe, and its walk-forward folds cut on time.

Each symbol's features are computed on its own bars and its labels on its own closes: no feature
or label reads another symbol, except the optional cross-sectional ranks (``--cross-sectional``,
`labkit.features.cross_section`), which rank each symbol's own past-only momentum and volatility
across the universe at the same bar time. The rows are then pooled, ordered by bar time (symbols in the
universe's order within a time), so one model learns from every symbol at once.

The folds are cut on time, for every symbol at once: a test fold is a span of bar times, and holds
every symbol's rows in it. A training row of any symbol is kept only when it opened before the span
and its label's last bar did too (purge), so no fold trains on what any symbol's test rows see.
Cutting each symbol's rows apart would let a fold train on one symbol's bars contemporaneous with
another's test bars; in a correlated market that is the test fold's own news.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from labkit.errors import ConfigError
from labkit.features.labels import Fold

if TYPE_CHECKING:
    import pandas as pd

    from labkit.features.featureset import FeatureSet


@dataclass(frozen=True)
class PooledRows:
    """The universe's usable rows, ordered by time: features, labels and where each row came from."""

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray  # each row's bar open time, epoch ms, non-decreasing
    label_end: np.ndarray  # the open time of the bar whose close the row's label reads
    symbol: np.ndarray  # each row's position in `symbols`
    position: np.ndarray  # each row's position in its symbol's bars
    symbols: tuple[str, ...]
    # Each row's label's average uniqueness among its own symbol's rows, scaled to a mean of 1
    # per symbol; and its label's span in bars, numbered across the symbols so that no two
    # symbols' spans share a bar (the bagged member's sequential bootstrap reads them).
    weight: np.ndarray | None = None
    spans: np.ndarray | None = None


def pool_rows(
    frames: Mapping[str, pd.DataFrame],
    features: FeatureSet,
    horizon: int,
    cost: float,
    labels: str = "sign",
    profit_take: float = 2.0,
    stop_loss: float = 2.0,
    atr_window: int = 14,
) -> PooledRows:
    """Return the rows of every symbol of `frames` with features and a label, ordered by time.

    `labels` and the barrier settings choose the label (`labkit.research.targets`); a row's
    ``label_end`` is the open time of the bar that decided it, which the folds purge by.
    """
    from labkit.data.bars import ts_ms
    from labkit.features.cross_section import with_ranks
    from labkit.research.targets import targets, uniqueness_weights

    if features.cross_sectional:
        frames = with_ranks(dict(frames))

    parts: list[tuple[np.ndarray, ...]] = []
    offset = 0
    for j, bars in enumerate(frames.values()):
        matrix = features.compute(bars)
        target = targets(bars, labels, horizon, cost, profit_take, stop_loss, atr_window)
        usable = np.flatnonzero(~np.isnan(matrix).any(axis=1) & ~np.isnan(target.y))
        times = np.asarray(ts_ms(bars), dtype="int64")
        end = target.end[usable].astype("int64")
        # A label ends at a bar of the symbol's own bars: after a gap that bar opens later than
        # its bars count in timeframes, and the purge follows the bar, not the clock.
        parts.append(
            (
                matrix[usable],
                target.y[usable],
                times[usable],
                times[end],
                np.full(len(usable), j),
                usable,
                uniqueness_weights(usable, end),
                usable + offset,
                end + offset,
            )
        )
        offset += len(bars)
    X, y, times, label_end, symbol, position, weight, start, stop = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    order = np.lexsort((symbol, times))
    return PooledRows(
        X[order],
        y[order],
        times[order],
        label_end[order],
        symbol[order].astype("int64"),
        position[order].astype("int64"),
        tuple(frames),
        weight[order],
        np.column_stack([start[order], stop[order]]).astype("int64"),
    )


def time_folds(times: np.ndarray, label_end: np.ndarray, folds: int, min_train: int) -> list[Fold]:
    """Return walk-forward folds over rows ordered by `times`, cut on time for every symbol at once.

    The distinct times after the first `min_train` are cut into `folds` equal, consecutive spans
    (the remainder goes to the first training window); fold ``i`` tests on every row opened in its
    span, a contiguous block of rows since they are ordered by time, and trains on the rows opened
    before it whose label ends before it too.

    Raises
    ------
    ConfigError
        Naming ``--since/--folds`` when there are too few distinct times for the folds, or a fold
        has nothing to train on.
    """
    distinct = np.unique(times)
    size = (len(distinct) - min_train) // folds
    if min_train < 1 or size < 1:
        raise ConfigError(
            f"--since/--folds: {len(distinct):,} bar times with features and labels; {folds} test folds "
            f"after {min_train:,} to train first need more; give an earlier --since or fewer --folds"
        )
    first = len(distinct) - folds * size
    out = []
    for i in range(folds):
        lo = int(distinct[first + i * size])
        stop = first + (i + 1) * size
        start_row = int(np.searchsorted(times, lo, side="left"))
        stop_row = (
            len(times) if stop == len(distinct) else int(np.searchsorted(times, distinct[stop], "left"))
        )
        before = np.arange(start_row)
        train = before[label_end[before] < lo]
        if not len(train):
            raise ConfigError(
                f"--since/--folds: fold {i} has no training row whose label ends before its test span "
                "(the bars before it are too few, or their gaps too long); give an earlier --since or "
                "fewer --folds"
            )
        out.append(Fold(i, train, slice(start_row, stop_row)))
    return out

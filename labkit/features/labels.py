"""Labels and walk-forward folds: the only code in labkit that looks forward in time.

A label says what happened after a bar, so it reads bars after it; nothing else may. The folds
keep that look-ahead out of training: a training row whose label reads into its fold's test block
is purged, and rows right after the test block are embargoed.

Examples
--------
>>> forward_labels(np.array([100.0, 101.0, 100.5, 100.4]), horizon=1, cost=0.002)
array([ 1.,  0.,  0., nan])
>>> [(f.index, len(f.train), f.test) for f in walk_forward_folds(20, folds=2, horizon=2, min_train=10)]
[(0, 8, slice(10, 15, None)), (1, 13, slice(15, 20, None))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


def forward_labels(close: np.ndarray, horizon: int, cost: float) -> np.ndarray:
    """Return 1.0 where the close `horizon` bars later beats the round-trip cost, else 0.0.

    Parameters
    ----------
    close
        The closes, oldest first.
    horizon
        Bars ahead: the label of bar ``t`` compares ``close[t + horizon]`` with ``close[t]``.
    cost
        The round-trip cost as a fraction of the price (e.g. ``2 * fee + 2 * slippage``): a move
        pays only when ``log(close[t + horizon] / close[t]) > log(1 + cost)``.

    Returns
    -------
    numpy.ndarray
        float64, one per close; NaN for the last `horizon` bars, whose future is not known yet.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be a whole number of bars >= 1, not {horizon!r}")
    if not (isinstance(cost, int | float) and math.isfinite(cost) and cost >= 0):
        raise ValueError(f"cost must be a finite fraction >= 0 (0.002 is 0.2%), not {cost!r}")
    close = np.asarray(close, dtype="float64")
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        move = np.log(close[horizon:] / close[:-horizon])
        out[:-horizon] = np.where(move > math.log1p(cost), 1.0, 0.0)
    return out


@dataclass(frozen=True, eq=False)
class Fold:
    """One walk-forward fold: row indices to train on, and the block of rows to test on."""

    index: int
    train: np.ndarray
    test: slice


def rows_needed(folds: int, horizon: int, min_train: int) -> int:
    """Return the fewest rows `walk_forward_folds` accepts for these settings.

    The first `min_train` rows train only, and each test block needs ``horizon + 1`` rows, so that
    every block holds a row whose label is known (the last `horizon` rows have none).

    Examples
    --------
    >>> rows_needed(folds=5, horizon=10, min_train=500)
    555
    """
    return min_train + folds * (horizon + 1)


def purge(candidates: np.ndarray, test: slice, horizon: int, ends: np.ndarray | None = None) -> np.ndarray:
    """Return the candidate training rows whose labels cannot see the test block.

    A row ``t`` is dropped when its label's span ``[t, end_t]`` overlaps the test block (purge:
    ``end_t >= test.start`` and ``t < test.stop``), or when it lies in the `horizon` rows right
    after the block (embargo: ``test.stop <= t < test.stop + horizon``), whose features and labels
    overlap the block's last labels. `ends` gives each row's label end (indexed by row); without
    it every label is taken to end `horizon` rows on (``end_t = t + horizon``), as forward labels do.
    A triple-barrier label that hit a barrier early ends sooner, and is kept.
    """
    start, stop = int(test.start), int(test.stop)
    rows = np.asarray(candidates, dtype="int64")
    end = rows + horizon if ends is None else np.asarray(ends)[rows]
    seen = ((end >= start) & (rows < stop)) | ((rows >= stop) & (rows < stop + horizon))
    return rows[~seen]


def walk_forward_folds(
    n: int, folds: int, horizon: int, min_train: int, ends: np.ndarray | None = None
) -> list[Fold]:
    """Return expanding-window walk-forward folds over `n` rows, purged for labels `horizon` ahead.

    The rows after the first `min_train` are cut into `folds` equal, consecutive test blocks (any
    remainder rows go to the first training window, so the last block ends at the last row). Fold
    ``i`` trains on every row before its test block except the `horizon` rows just before it, whose
    labels look into the block (`purge`). The embargo after the block is applied too, but in
    walk-forward training rows never follow the test block, so it binds only for schemes that train
    on later data.

    `ends` (one per row, the row index its label ends at) purges by each label's own end, as
    `purge` says; without it, labels end `horizon` rows on.

    Raises
    ------
    ValueError
        When a setting is out of range, or `n` is below `rows_needed` (the message says how many).
    """
    for name, value, low in (("folds", folds, 1), ("horizon", horizon, 1), ("min_train", min_train, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, not {value!r}")
    if min_train <= horizon:
        raise ValueError(
            f"min_train ({min_train}) must exceed horizon ({horizon}): the first fold's last {horizon} "
            "training rows are purged, and at least one must remain"
        )
    needed = rows_needed(folds, horizon, min_train)
    if n < needed:
        raise ValueError(
            f"{folds} folds with horizon {horizon} and min_train {min_train} need at least {needed} rows "
            f"({min_train} to train first, then {folds} test blocks of {horizon + 1} or more); got {n}"
        )
    size = (n - min_train) // folds
    first = n - folds * size
    out = []
    for i in range(folds):
        test = slice(first + i * size, first + (i + 1) * size)
        out.append(Fold(i, purge(np.arange(test.start), test, horizon, ends), test))
    return out


class TripleBarrier(NamedTuple):
    """Each bar's triple-barrier label and the bar that decided it (`triple_barrier_labels`)."""

    label: np.ndarray  # +1 profit barrier first, -1 stop first, 0 vertical barrier; NaN: not known
    end: np.ndarray  # the index of the bar that decided the label (float64; NaN where the label is)


def triple_barrier_labels(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    vol: np.ndarray,
    horizon: int,
    profit_take: float,
    stop_loss: float,
) -> TripleBarrier:
    """Return which barrier each bar's trade would reach first, and the bar that decided it.

    For bar ``t`` a long entry at ``close[t]`` is followed through bars ``t + 1 .. t + horizon``
    against an upper barrier ``close[t] + profit_take * vol[t]`` and a lower one
    ``close[t] - stop_loss * vol[t]``, where `vol` is the bar's ATR as risk sizing computes it
    (`labkit.features.definitions.atr` over ``risk.atr_window``), so the barriers sit where the
    engine's ``take_profit_atr`` and ``stop_atr`` exits would. The first bar that reaches one decides,
    resolved as the engine resolves its exits: a bar that reaches both counts as the stop (the
    worse case), unless it opened at or above the upper barrier (a gap through the target fills
    there). When neither is reached, the vertical barrier at ``t + horizon`` decides and the label is
    0 (no cost is netted: a trade that neither took profit nor stopped out is "no edge").

    The work is vectorised over the bars; the only loop is over the `horizon` offsets, and it
    carries on only with the bars still undecided, so wide barriers cost more than tight ones.

    Parameters
    ----------
    open, high, low, close
        The bars, oldest first.
    vol
        The volatility in price units, one per bar (NaN during its warm-up).
    horizon
        The vertical barrier, in bars.
    profit_take, stop_loss
        The barriers' distances from the close, in multiples of `vol` (> 0).

    Returns
    -------
    TripleBarrier
        ``label`` (+1, -1 or 0) and ``end`` (the deciding bar's index), both float64 and NaN for the
        last `horizon` bars (their future is not known yet) and where `vol` or the close is not a
        positive number. A binary model learns ``label == 1`` (profit barrier first) against the
        rest; ``labkit train --labels triple-barrier`` also counts a vertical barrier whose return
        beats the round-trip cost as 1 (`labkit.research.targets` says why).

    Examples
    --------
    >>> bars = np.array([100.0, 100.0, 100.0, 100.0])
    >>> triple_barrier_labels(bars, np.array([100.5, 103.0, 100.0, 100.0]), bars - 0.5, bars,
    ...                       np.ones(4), horizon=2, profit_take=2.0, stop_loss=2.0).label
    array([ 1.,  0., nan, nan])
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be a whole number of bars >= 1, not {horizon!r}")
    for name, value in (("profit_take", profit_take), ("stop_loss", stop_loss)):
        if isinstance(value, bool) or not (
            isinstance(value, int | float) and math.isfinite(value) and value > 0
        ):
            raise ValueError(f"{name} must be a finite multiple of vol > 0 (2.0 is two ATRs), not {value!r}")
    o, h, lo, c, v = (np.asarray(a, dtype="float64") for a in (open, high, low, close, vol))
    n = len(c)
    if not all(len(a) == n for a in (o, h, lo, v)):
        raise ValueError(
            f"open, high, low, close and vol must have one value per bar; got lengths "
            f"{[len(a) for a in (o, h, lo, c, v)]}"
        )
    label = np.full(n, np.nan)
    end = np.full(n, np.nan)
    known = n - horizon  # bars whose whole window is in the data
    if known <= 0:
        return TripleBarrier(label, end)
    entry, width = c[:known], v[:known]
    with np.errstate(invalid="ignore"):
        alive = np.flatnonzero((width > 0) & (entry > 0) & np.isfinite(width) & np.isfinite(entry))
    upper = entry + profit_take * width
    lower = entry - stop_loss * width
    for k in range(1, horizon + 1):
        if not len(alive):
            break
        bar = alive + k
        up, down = upper[alive], lower[alive]
        hit_up = h[bar] >= up
        hit_down = lo[bar] <= down
        profit = hit_up & (~hit_down | (o[bar] >= up))
        decided = hit_up | hit_down
        label[alive[decided]] = np.where(profit[decided], 1.0, -1.0)
        end[alive[decided]] = bar[decided]
        alive = alive[~decided]
    label[alive] = 0.0
    end[alive] = alive + horizon
    return TripleBarrier(label, end)


def average_uniqueness(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Return each label's average uniqueness over its span ``[start, end]`` (AFML 4.4).

    The concurrency ``c_u`` of bar ``u`` is the number of the given labels whose span holds it; a
    label's uniqueness is the mean of ``1 / c_u`` over its span: 1 for a label that shares no bar,
    1/2 for two labels over the same bars. Overlapping labels tell the same story several times, so
    a model weighting them by uniqueness counts it about once. Computed with cumulative sums.

    Examples
    --------
    >>> average_uniqueness(np.array([0, 2]), np.array([3, 5]))
    array([0.75, 0.75])
    """
    start = np.asarray(start, dtype="int64")
    end = np.asarray(end, dtype="int64")
    if start.shape != end.shape or start.ndim != 1:
        raise ValueError(f"start and end must be 1-D of one length, got {start.shape} and {end.shape}")
    if not len(start):
        return np.empty(0)
    if (end < start).any():
        raise ValueError("every label's end must be at or after its start")
    lo = int(start.min())
    s, e = start - lo, end - lo
    span = int(e.max()) + 2
    steps = np.bincount(s, minlength=span) - np.bincount(e + 1, minlength=span)
    concurrency = np.cumsum(steps)[:-1]
    inverse = np.where(concurrency > 0, 1.0 / np.maximum(concurrency, 1), 0.0)
    total = np.r_[0.0, np.cumsum(inverse)]
    return (total[e + 1] - total[s]) / (e - s + 1)

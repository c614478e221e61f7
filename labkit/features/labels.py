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


def purge(candidates: np.ndarray, test: slice, horizon: int) -> np.ndarray:
    """Return the candidate training rows whose labels cannot see the test block.

    A row ``t`` is dropped when its label window ``[t, t + horizon]`` overlaps the test block
    (purge: ``test.start - horizon <= t < test.stop``), or when it lies in the `horizon` rows right
    after the block (embargo: ``test.stop <= t < test.stop + horizon``), whose features and labels
    overlap the block's last labels.
    """
    start, stop = int(test.start), int(test.stop)
    rows = np.asarray(candidates, dtype="int64")
    seen = (rows + horizon >= start) & (rows < stop + horizon)
    return rows[~seen]


def walk_forward_folds(n: int, folds: int, horizon: int, min_train: int) -> list[Fold]:
    """Return expanding-window walk-forward folds over `n` rows, purged for labels `horizon` ahead.

    The rows after the first `min_train` are cut into `folds` equal, consecutive test blocks (any
    remainder rows go to the first training window, so the last block ends at the last row). Fold
    ``i`` trains on every row before its test block except the `horizon` rows just before it, whose
    labels look into the block (`purge`). The embargo after the block is applied too, but in
    walk-forward training rows never follow the test block, so it binds only for schemes that train
    on later data.

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
        out.append(Fold(i, purge(np.arange(test.start), test, horizon), test))
    return out

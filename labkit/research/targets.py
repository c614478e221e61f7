"""What a training run learns: each bar's 0/1 label, the bar its label ends at, and its weight.

Two kinds of label (`labkit train --labels`):

- ``sign``: 1 when the log return over the next ``horizon`` bars beats the round-trip cost
  (`labkit.features.labels.forward_labels`); every label ends ``horizon`` bars on.
- ``triple-barrier``: 1 when the price reaches ``close + profit_take x ATR`` before
  ``close - stop_loss x ATR`` within ``horizon`` bars (`labkit.features.labels.
  triple_barrier_labels`), 0 when the stop comes first or neither is reached; a label ends at the
  bar that decided it. The ATR is the one risk sizing uses (``risk.atr_window`` bars).

Each row is weighted by its label's average uniqueness among the rows kept (AFML 4.4), scaled
to a mean of 1 so the members' regularisation means what it meant unweighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

LABELS = ("sign", "triple-barrier")


class Targets(NamedTuple):
    """Each bar's label (NaN where not known) and the index of the bar its label ends at."""

    y: np.ndarray  # 1.0 / 0.0, NaN where the future is not known
    end: np.ndarray  # float64 bar index, NaN where y is


def targets(
    bars: pd.DataFrame,
    labels: str,
    horizon: int,
    cost: float,
    profit_take: float = 2.0,
    stop_loss: float = 2.0,
    atr_window: int = 14,
) -> Targets:
    """Return the 0/1 labels of `bars` and where each ends, by the kind `labels` names."""
    from labkit.features.labels import forward_labels, triple_barrier_labels

    close = bars["close"].to_numpy(dtype=float)
    if labels == "sign":
        y = forward_labels(close, horizon, cost)
        end = np.where(np.isnan(y), np.nan, np.arange(len(y), dtype=float) + horizon)
        return Targets(y, end)
    if labels != "triple-barrier":
        raise ValueError(f"labels must be one of {', '.join(LABELS)}, not {labels!r}")
    from labkit.features.definitions import atr

    high, low = bars["high"].to_numpy(dtype=float), bars["low"].to_numpy(dtype=float)
    vol = atr(high, low, close, atr_window)
    side = triple_barrier_labels(
        bars["open"].to_numpy(dtype=float), high, low, close, vol, horizon, profit_take, stop_loss
    )
    # The vertical barrier counts as a win when the return to it beats the round-trip cost, as a
    # sign label does: "neither barrier" as 0 would make label 1 mean "a barrier was hit", which the
    # volatility features predict on any market, a random walk included (AUC 0.6 on one).
    vertical = side.label == 0.0
    beat = forward_labels(close, horizon, cost) == 1.0
    y = np.where(np.isnan(side.label), np.nan, ((side.label == 1.0) | (vertical & beat)).astype(float))
    return Targets(y, side.end)


# What model.json says of the rows' weights, by kind of label.
WEIGHTS_TEXT = {
    "sign": "none: every sign label spans its horizon, so all are equally unique",
    "triple-barrier": "average uniqueness of each label over its span (AFML 4.4), mean 1",
}


def label_weights(labels: str, start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
    """Return the rows' fit weights: their uniqueness for triple-barrier labels, none for sign labels.

    A sign label spans exactly its horizon, so every row away from the window's ends overlaps the
    same number of others: the weights would be 1 but for a few edge rows, and weighting makes
    scikit-learn's histogram boosting bin its features the slow way (about 20x the fit).
    """
    return None if labels == "sign" else uniqueness_weights(start, end)


def uniqueness_weights(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Return each row's average uniqueness over its span, scaled to a mean of 1."""
    from labkit.features.labels import average_uniqueness

    u = average_uniqueness(start, end)
    return u / u.mean() if len(u) else u


def label_text(labels: str, horizon: int, cost: float, profit_take: float, stop_loss: float) -> str:
    """Return what label 1 means, as model.json says it."""
    if labels == "sign":
        return f"forward log return over {horizon} bars > log(1 + {cost:g})"
    return (
        f"the close + {profit_take:g} ATR is reached before the close - {stop_loss:g} ATR within "
        f"{horizon} bars (a bar reaching both counts as the stop)"
    )

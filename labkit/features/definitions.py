"""The named features: past-only functions of bars, each with the window it needs.

A feature's value at bar ``t`` is computed from bars ``t - lookback + 1 .. t`` alone (its
`lookback` counts bar ``t`` itself). Nothing carries over from earlier bars: averages are windowed
sums (`labkit.features.windows`), and the exponential averages of MACD are truncated to a fixed
window with weights normalised to sum to 1. So the value at ``t`` is the same whether it is computed
over a million bars or over the last `lookback` bars of a live session. A feature is NaN in its
warm-up (the first ``lookback - 1`` bars) and never after it: a division by a zero range, a zero
spread or a zero volume gives the documented neutral value instead.

A definition (`Feature.values`) takes a mapping of arrays, ``open, high, low, close, volume``
(float64) and ``ts`` (the bars' opens, int64 epoch milliseconds), and returns one value per bar
that has its full lookback, newest last: ``n - lookback + 1`` values for ``n`` bars. `Feature.compute`
pads them with the warm-up NaN to one value per bar, and checks the count, so a declared lookback
is always the one the formula really uses.

Examples
--------
>>> close = np.array([100.0, 101.0, 99.0, 99.0])
>>> FEATURES["ret_1"].compute({"close": close}).round(4)
array([  nan,  0.01, -0.02,  0.  ])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from labkit.features.windows import (
    pad,
    ratio,
    rolling_dot,
    rolling_max,
    rolling_min,
    rolling_std,
    rolling_sum,
    rolling_zscore,
    tail,
)
from labkit.timeutil import DAY_MS

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Feature:
    """A named, past-only feature.

    Attributes
    ----------
    name : the column name; it states the window (``vol_60``).
    lookback : bars needed for a value at ``t``, bar ``t`` included (the warm-up is ``lookback - 1``).
    about : one line for docs and notebooks.
    values : the vectorised definition: columns in, one value per bar with a full lookback out.
    version : the definition's version; bump it when the formula changes, so that a model trained on
        the old formula no longer matches the schema.
    cross_sectional : the value ranks a symbol among its universe (`labkit.features.cross_section`):
        it is read from a column the universe's holder supplies, not computed from one symbol's bars.
    """

    name: str
    lookback: int
    about: str
    values: Callable[[Columns], np.ndarray]
    version: str = "1"
    cross_sectional: bool = False

    def compute(self, cols: Columns) -> np.ndarray:
        """Return one value per bar of `cols`, NaN for the first ``lookback - 1``."""
        n = len(cols["close"])
        return pad(self.complete(cols), n)

    def complete(self, cols: Columns) -> np.ndarray:
        """Return the values of the bars with a full lookback (``n - lookback + 1``), newest last."""
        values = self.values(cols)
        expected = max(len(cols["close"]) - self.lookback + 1, 0)
        if len(values) != expected:
            raise RuntimeError(
                f"feature {self.name}: its formula gave {len(values)} values for {len(cols['close'])} bars, "
                f"not {expected}: its declared lookback ({self.lookback}) is not the one it uses"
            )
        return values


def _returns(k: int) -> Callable[[Columns], np.ndarray]:
    def values(cols: Columns) -> np.ndarray:
        close = cols["close"]
        return np.log(close[k:] / close[: max(len(close) - k, 0)])

    return values


def log_returns(close: np.ndarray) -> np.ndarray:
    """Return the one-bar log returns, ``log(close[t] / close[t-1])``, one fewer than the closes."""
    return np.log(close[1:] / close[:-1])


def _volatility(window: int) -> Callable[[Columns], np.ndarray]:
    def values(cols: Columns) -> np.ndarray:
        return rolling_std(log_returns(cols["close"]), window, ddof=1)

    return values


def _rsi(cols: Columns, window: int = 14) -> np.ndarray:
    close = cols["close"]
    change = close[1:] - close[:-1]
    gains = rolling_sum(np.maximum(change, 0.0), window)
    losses = rolling_sum(np.maximum(-change, 0.0), window)
    # Simple means of gains and losses over the window: their ratio needs only the sums.
    return ratio(gains, gains + losses, 0.5)


def ema_weights(span: int) -> np.ndarray:
    """Return exponential weights over exactly `span` bars (alpha ``2 / (span + 1)``), oldest first.

    The weights are normalised to sum to 1: the infinite tail of a classic EMA is dropped and the
    rest rescaled, so the average has a finite memory of `span` bars.

    Examples
    --------
    >>> ema_weights(3).round(3)
    array([0.143, 0.286, 0.571])
    """
    alpha = 2.0 / (span + 1)
    raw = (1.0 - alpha) ** np.arange(span - 1, -1, -1, dtype="float64")
    return raw / raw.sum()


_FAST, _SLOW, _SIGNAL = ema_weights(12), ema_weights(26), ema_weights(9)


def _macd(cols: Columns) -> np.ndarray:
    close = cols["close"]
    slow = rolling_dot(close, _SLOW)
    k = len(slow)
    return (tail(rolling_dot(close, _FAST), k) - slow) / tail(close, k)


def _macd_signal(cols: Columns) -> np.ndarray:
    return rolling_dot(_macd(cols), _SIGNAL)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return the true range of each bar after the first: its range stretched to the previous close."""
    prev, high, low = close[:-1], high[1:], low[1:]
    return np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Return the average true range in price units, one value per bar, NaN for the first `window`.

    The simple mean of the last `window` true ranges (a finite window, so a bar's value is the same
    over a million bars or its last ``window + 1``); what the engine sizes and stops by.

    Examples
    --------
    >>> atr(np.array([11.0, 12.0, 13.0]), np.array([9.0, 10.0, 9.0]), np.array([10.0, 11.0, 12.0]), 2)
    array([nan, nan,  3.])
    """
    n = len(close)
    if n <= window:
        return np.full(n, np.nan)
    return pad(rolling_sum(true_range(high, low, close), window) / window, n)


def _atr(cols: Columns, window: int = 14) -> np.ndarray:
    mean_range = rolling_sum(true_range(cols["high"], cols["low"], cols["close"]), window) / window
    return mean_range / tail(cols["close"], len(mean_range))


def _bollinger_pctb(cols: Columns, window: int = 20, width: float = 2.0) -> np.ndarray:
    # %B = (close - lower) / (upper - lower) with bands at mean -/+ width * std: 0.5 + z / (2 * width).
    z = rolling_zscore(cols["close"], window, ddof=0, neutral=0.0)
    return 0.5 + z / (2.0 * width)


def adx_lookback(window: int) -> int:
    """Return the bars `adx` needs for a value: ``2 * window`` (a previous bar, then two windows)."""
    return 2 * window


def _adx(high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    up = high[1:] - high[:-1]
    down = low[:-1] - low[1:]
    # +DM counts a bar's rise above the previous high when it beats the fall below the previous low.
    plus = rolling_sum(np.where(up > np.maximum(down, 0.0), up, 0.0), window)
    minus = rolling_sum(np.where(down > np.maximum(up, 0.0), down, 0.0), window)
    # Both DIs divide by the same true-range sum, so it cancels from DX: 100 |+DM - -DM| / (+DM + -DM).
    dx = 100.0 * ratio(np.abs(plus - minus), plus + minus, 0.0)
    return rolling_sum(dx, window) / window


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Return the average directional index of each bar: trend strength, 0 (none) to 100.

    The finite-window version: over `window` bars, ``+DI = 100 * sum(+DM) / sum(TR)`` and ``-DI``
    likewise, ``DX = 100 * |+DI - -DI| / (+DI + -DI)``, and ADX is the simple mean of DX over
    `window` bars. The true-range sum divides both DIs, so DX is computed as
    ``100 * |sum(+DM) - sum(-DM)| / (sum(+DM) + sum(-DM))``, 0 when both sums are 0 (no
    directional movement: no trend). `close` is accepted for the usual signature; DX does not need
    it. NaN for the first ``adx_lookback(window) - 1`` bars.

    Examples
    --------
    >>> rising = np.arange(1.0, 9.0)
    >>> adx(rising + 0.5, rising - 0.5, rising, 2)
    array([ nan,  nan,  nan, 100., 100., 100., 100., 100.])
    """
    high, low = np.asarray(high, dtype="float64"), np.asarray(low, dtype="float64")
    with np.errstate(all="ignore"):
        return pad(_adx(high, low, window), len(high))


def _volume_z(cols: Columns, window: int = 60) -> np.ndarray:
    return rolling_zscore(cols["volume"], window, ddof=1, neutral=0.0)


def _range_position(cols: Columns, window: int = 60) -> np.ndarray:
    low = rolling_min(cols["low"], window)
    close = tail(cols["close"], len(low))
    return ratio(close - low, rolling_max(cols["high"], window) - low, 0.5)


def _close_to_sma(window: int) -> Callable[[Columns], np.ndarray]:
    def values(cols: Columns) -> np.ndarray:
        mean = rolling_sum(cols["close"], window) / window
        return tail(cols["close"], len(mean)) / mean - 1.0

    return values


def _hl_range(cols: Columns) -> np.ndarray:
    return (cols["high"] - cols["low"]) / cols["close"]


def _day_phase(cols: Columns) -> np.ndarray:
    ms = np.asarray(cols["ts"], dtype="int64")
    return (ms % DAY_MS) * (2.0 * np.pi / DAY_MS)


def _week_phase(cols: Columns) -> np.ndarray:
    # 1970-01-01 was a Thursday: with Monday as 0, day 0 of the epoch is weekday 3.
    ms = np.asarray(cols["ts"], dtype="int64")
    return ((ms // DAY_MS + 3) % 7) * (2.0 * np.pi / 7.0)


_ALL = (
    Feature("ret_1", 2, "log return over 1 bar", _returns(1)),
    Feature("ret_5", 6, "log return over 5 bars", _returns(5)),
    Feature("ret_15", 16, "log return over 15 bars", _returns(15)),
    Feature("ret_60", 61, "log return over 60 bars", _returns(60)),
    Feature("vol_15", 16, "std of the last 15 one-bar log returns", _volatility(15)),
    Feature("vol_60", 61, "std of the last 60 one-bar log returns", _volatility(60)),
    Feature("rsi_14", 15, "RSI of 14 close changes (simple means), 0..1", _rsi),
    Feature("macd", 26, "12-bar minus 26-bar truncated EMA of closes, over the close", _macd),
    Feature("macd_signal", 34, "9-bar truncated EMA of macd", _macd_signal),
    Feature("atr_14", 15, "14-bar mean true range over the close", _atr),
    Feature("bb_pctb_20", 20, "close within its 20-bar, 2-std Bollinger band (%B)", _bollinger_pctb),
    Feature(
        "adx_14",
        adx_lookback(14),
        "ADX: trend strength 0..100 over 14 bars",
        lambda cols: _adx(cols["high"], cols["low"], 14),
    ),
    Feature("volume_z_60", 60, "z-score of volume against the last 60 bars", _volume_z),
    Feature("range_pos_60", 60, "close within the 60-bar low-high range, 0..1", _range_position),
    Feature("hl_range", 1, "the bar's high-low range over the close", _hl_range),
    Feature("close_sma_20", 20, "close over its 20-bar simple mean, minus 1", _close_to_sma(20)),
    Feature("close_sma_60", 60, "close over its 60-bar simple mean, minus 1", _close_to_sma(60)),
    Feature("tod_sin", 1, "time of day (UTC), sine", lambda c: np.sin(_day_phase(c))),
    Feature("tod_cos", 1, "time of day (UTC), cosine", lambda c: np.cos(_day_phase(c))),
    Feature("dow_sin", 1, "day of week (UTC, Monday 0), sine", lambda c: np.sin(_week_phase(c))),
    Feature("dow_cos", 1, "day of week (UTC, Monday 0), cosine", lambda c: np.cos(_week_phase(c))),
)

FEATURES: dict[str, Feature] = {feature.name: feature for feature in _ALL}
"""Every feature by name, in the default order."""

DEFAULT_NAMES: tuple[str, ...] = tuple(FEATURES)
"""The default feature set: all of them."""

"""Entry sizes and the exits the engine enforces: ATR-based levels kept in the book.

An entry is sized when it is decided (`entry_units`). When it fills from flat, `arm` sets its exit
levels; `enforce` then checks them on every bar a position is held through, the entry's own bar
included (its range comes after the fill at its open): first at the open (a gap through a level
fills at the open), then on the range (a level fills at its price; a bar that reaches both the stop
and the take-profit is assumed to have hit the stop first, the worse case).
"""

from __future__ import annotations

import math
from typing import Any

from labkit.engine.portfolio import Portfolio
from labkit.engine.settings import EngineSettings


def entry_units(
    s: EngineSettings,
    equity: float,
    cash: float,
    price: float,
    atr: float,
    confidence: float,
    scale: float = 1.0,
) -> float:
    """Return the units an entry decided at `price` buys, as `risk.sizing` says; NaN if it cannot.

    `scale` (a meta-label model's size factor, the ``meta_size`` fact) multiplies a risk-sized entry.
    """
    risk, broker = s.risk, s.broker
    per_unit = price * (1.0 + broker.slippage) * (1.0 + broker.fee)
    if risk.sizing != "risk":
        return cash * risk.position_frac / per_unit
    if not atr > 0 or risk.stop_atr is None:
        return math.nan
    units = risk.risk_per_trade * equity / (risk.stop_atr * atr)
    floor = s.confidence_floor
    if floor is not None and confidence == confidence and floor < 1:
        # Half the size at the entry threshold, all of it at certainty, linear between.
        units *= 0.5 + 0.5 * min(max((confidence - floor) / (1.0 - floor), 0.0), 1.0)
    if scale == scale:  # NaN: no meta estimate, the size stands
        units *= scale
    return min(units, risk.max_exposure * equity / price, cash / per_unit)


def arm(
    s: EngineSettings,
    port: Portfolio,
    fill: dict[str, Any],
    atr: float | None,
    seq: int,
    day: int,
) -> None:
    """Set the exit levels of a position just entered from flat, and count the risk it takes."""
    risk = s.risk
    port.entry_seq = seq
    if atr is None:
        return  # no ATR at the decision: only the time stop can apply
    price = fill["price"]
    if risk.stop_atr is not None:
        port.stop_price = fill["stop_price"] = price - risk.stop_atr * atr
        port.roll_day(day)  # the risk belongs to the day the entry filled on
        port.risk_today += fill["units"] * risk.stop_atr * atr
    if risk.take_profit_atr is not None:
        port.take_profit_price = fill["take_profit_price"] = price + risk.take_profit_atr * atr
    if risk.trailing_atr is not None:
        port.trailing_dist = risk.trailing_atr * atr
        # The entry bar's range is checked against this level; its high then moves the stop
        # for later bars (`enforce`), as every bar's does.
        port.trailing_price = fill["trailing_price"] = price - port.trailing_dist


def enforce(
    s: EngineSettings, port: Portfolio, open_: float, high: float, low: float, seq: int
) -> dict[str, Any] | None:
    """Sell at the first exit the bar reaches (the open first, then the range); None if none.

    Ratchets the trailing stop on the bar's high when the position stays open. On the bar an entry
    filled at, `seq` is the entry's own: the time stop cannot fire, and the open cannot be through
    a level set from the fill at that open (bar a slippage wider than the stop distance).
    """
    stop, why = port.stop_price, "stop_loss"
    trail = port.trailing_price
    if trail is not None and (stop is None or trail > stop):
        stop, why = trail, "trailing_stop"
    target = port.take_profit_price
    max_bars = s.risk.max_bars
    price: float | None = None
    if stop is not None and open_ <= stop:
        price = open_
    elif target is not None and open_ >= target:
        price, why = open_, "take_profit"
    elif max_bars is not None and port.entry_seq >= 0 and seq - port.entry_seq >= max_bars:
        price, why = open_, "time_stop"
    elif stop is not None and low <= stop:
        price = stop  # checked before the target: when a bar reaches both, the worse is assumed
    elif target is not None and high >= target:
        price, why = target, "take_profit"
    if price is None:
        if port.trailing_dist is not None and trail is not None and high - port.trailing_dist > trail:
            port.trailing_price = high - port.trailing_dist
        return None
    broker = s.broker
    return port.fill(-1, price, broker.fee, broker.slippage, s.risk.position_frac, seq, reason=why)

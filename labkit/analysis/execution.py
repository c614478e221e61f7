"""The same decisions under other execution models: how much of a verdict rests on the fill rules.

A session's journal records what it decided and how the paper broker filled it. `refill` keeps
every decision and fills them again under another model, with the paper broker's own arithmetic:

- ``optimistic``: the configured fee, no slippage;
- ``base``: the configured fee and slippage (what the session itself did);
- ``adversarial``: double fees, the slippage plus half a spread on each fill, and a one-bar delay
  (an order decided at bar t fills at the open of bar t+2, not t+1).

The verdict is judged on ``base``; the adversarial one is shown beside it, so a strategy whose edge
vanishes under slightly worse fills is seen for what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.engine.portfolio import EXIT_REASONS, Portfolio
from labkit.strategies.sides import BUY, SELL, SIDE_CODE

# An adversarial spread when the config has none to go by: 5 basis points, round trip 10.
DEFAULT_SPREAD = 0.0005


@dataclass(frozen=True)
class ExecutionModel:
    """How orders fill: fee and slippage fractions, a bid-ask spread, and a delay in bars."""

    name: str
    fee: float
    slippage: float
    spread: float = 0.0
    delay_bars: int = 0

    def describe(self) -> str:
        return (
            f"{self.name}: fee {self.fee:.4%}, slippage {self.slippage:.4%}, spread {self.spread:.4%}, "
            f"fills {1 + self.delay_bars} bar(s) after the decision"
        )


def execution_models(fee: float, slippage: float, spread: float | None = None) -> list[ExecutionModel]:
    """Return the optimistic, base and adversarial models for a configured fee and slippage."""
    return [
        ExecutionModel("optimistic", fee, 0.0),
        ExecutionModel("base", fee, slippage),
        ExecutionModel("adversarial", 2 * fee, slippage, DEFAULT_SPREAD if spread is None else spread, 1),
    ]


def refill(
    journal: pd.DataFrame,
    bars: pd.DataFrame,
    model: ExecutionModel,
    capital: float,
    position_frac: float = 1.0,
) -> pd.DataFrame:
    """Return `journal` (a `read_journal` frame) with its decisions filled again under `model`.

    Every order keeps its decision (actions, and orders a command placed, such as an emergency
    stop's exit); fills, cash, position and equity are recomputed from `bars`' opens and closes
    with the paper broker's arithmetic. An order that would fill after the last bar never fills.
    A risk-sized entry keeps the units its decision sized (fewer if the cash buys fewer). An exit
    the engine enforced (a stop, a take-profit, a time stop) fills again on its own bar at its own
    level, undelayed: it rested at the broker. Under a delay its entry may not have filled yet;
    the exit then finds no position, and the entry is held until the next exit signal.
    """
    out = journal.copy()
    if journal.empty:
        return out
    n = len(journal)
    seq0 = int(journal["seq"].iloc[0])
    opens = bars["open"].reindex(pd.DatetimeIndex(journal["ts"])).to_numpy(dtype=float)
    closes = journal["price"].to_numpy(dtype=float)
    pending: dict[int, list[_Order]] = {}
    for order in _orders(journal):
        at = order.seq - seq0 + (1 + model.delay_bars if order.level is None else 0)
        pending.setdefault(at, []).append(order)
    book = Portfolio.start(capital)
    fills: list[dict[str, Any] | None] = [None] * n
    cash, position, equity = np.empty(n), np.empty(n), np.empty(n)
    adverse = model.slippage + model.spread / 2.0
    for i in range(n):
        # Orders at the open first, then an exit resting at its level within the bar.
        for order in sorted(pending.pop(i, []), key=lambda o: o.level is not None):
            price = opens[i] if order.level is None else order.level
            fill = book.fill(
                order.side,
                price,
                model.fee,
                adverse,
                position_frac,
                order.seq,
                units=order.units,
                reason=order.reason,
            )
            if fill is not None:
                fills[i] = fill
        cash[i], position[i] = book.cash, book.position
        equity[i] = book.cash + book.position * closes[i]
    out["fill"], out["cash"], out["position"], out["equity"] = fills, cash, position, equity
    for key in ("side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl"):
        out[f"fill_{key}"] = [None if f is None else f.get(key) for f in fills]
    out.attrs["execution"] = model.describe()
    return out


@dataclass(frozen=True)
class _Order:
    seq: int
    side: int
    units: float | None = None  # a risk-sized entry's units; None sizes all in
    level: float | None = None  # an enforced exit's level; None fills at the open
    reason: str = "signal"


def _orders(journal: pd.DataFrame) -> list[_Order]:
    # Decisions that placed an order, orders a command placed and exits the engine enforced (their
    # fill names the reason), by seq and whether the engine enforced it: a bar that stopped out may
    # decide an entry too.
    orders: dict[tuple[int, bool], _Order] = {}
    # Python lists: zipping them is several times faster than iterating the frame's columns.
    traces = journal["gate_trace"].tolist() if "gate_trace" in journal.columns else [None] * len(journal)
    seqs, actions = journal["seq"].tolist(), journal["action"].tolist()
    for seq, action, trace in zip(seqs, actions, traces, strict=True):
        if action in (BUY, SELL):
            detail = (trace.get("detail") or {}) if isinstance(trace, Mapping) else {}
            units = detail.get("units") if action == BUY else None
            orders[int(seq), False] = _Order(
                int(seq), SIDE_CODE[action], None if units is None else float(units)
            )
    for fill in journal["fill"].tolist():
        if not isinstance(fill, Mapping) or fill.get("reason", "signal") == "signal":
            continue
        seq = int(fill["order_seq"])
        if fill["reason"] in EXIT_REASONS:
            # The level before slippage: a sell's slippage cost is units x level x slippage.
            level = float(fill["price"]) + float(fill["slippage_cost"]) / float(fill["units"])
            orders[seq, True] = _Order(seq, SIDE_CODE[fill["side"]], None, level, str(fill["reason"]))
        else:
            orders.setdefault(
                (seq, False), _Order(seq, SIDE_CODE[fill["side"]], None, None, str(fill["reason"]))
            )
    return [orders[key] for key in sorted(orders)]

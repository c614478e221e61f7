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

from labkit.portfolio import Portfolio
from labkit.strategies.base import BUY, SELL, SIDE_CODE

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
    """
    out = journal.copy()
    if journal.empty:
        return out
    n = len(journal)
    seq0 = int(journal["seq"].iloc[0])
    opens = bars["open"].reindex(pd.DatetimeIndex(journal["ts"])).to_numpy(dtype=float)
    closes = journal["price"].to_numpy(dtype=float)
    pending: dict[int, list[tuple[int, int]]] = {}
    for seq, side in _orders(journal):
        pending.setdefault(seq - seq0 + 1 + model.delay_bars, []).append((side, seq))
    book = Portfolio.start(capital)
    fills: list[dict[str, Any] | None] = [None] * n
    cash, position, equity = np.empty(n), np.empty(n), np.empty(n)
    adverse = model.slippage + model.spread / 2.0
    for i in range(n):
        for side, seq in pending.pop(i, []):
            fill = book.fill(side, opens[i], model.fee, adverse, position_frac, seq)
            if fill is not None:
                fills[i] = fill
        cash[i], position[i] = book.cash, book.position
        equity[i] = book.cash + book.position * closes[i]
    out["fill"], out["cash"], out["position"], out["equity"] = fills, cash, position, equity
    for key in ("side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl"):
        out[f"fill_{key}"] = [f.get(key) if isinstance(f, Mapping) else None for f in fills]
    out.attrs["execution"] = model.describe()
    return out


def _orders(journal: pd.DataFrame) -> list[tuple[int, int]]:
    # Decisions that placed an order, and orders a command placed (their fill names the reason).
    orders = {
        int(seq): SIDE_CODE[action]
        for seq, action in zip(journal["seq"], journal["action"], strict=True)
        if action in (BUY, SELL)
    }
    for fill in journal["fill"]:
        if isinstance(fill, Mapping) and fill.get("reason", "signal") != "signal":
            orders.setdefault(int(fill["order_seq"]), SIDE_CODE[fill["side"]])
    return sorted(orders.items())

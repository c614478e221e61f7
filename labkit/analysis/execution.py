"""The same decisions under other execution models: how much of a verdict rests on the fill rules.

A session's journal records what it decided and how the paper broker filled it. `refill` keeps
every decision and fills them again under another model, with the paper broker's own arithmetic:

- ``optimistic``: the configured fee, no slippage;
- ``base``: the configured fee and slippage (what the session itself did);
- ``adversarial``: double fees, the slippage plus half a spread on each fill, and a one-bar delay
  (an order decided at bar t fills at the open of bar t+2, not t+1).

Entries are sized as the session sizes them (its ``risk`` section, `session_sizing`): all in with
``position_frac`` of the cash, or by risk with the engine's own `labkit.engine.exits.entry_units`,
so that ``base`` reproduces the session's journal, fill for fill.

The verdict is judged on ``base``; the adversarial one is shown beside it, so a strategy whose edge
vanishes under slightly worse fills is seen for what it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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


# Sizes an entry from the book at its decision: (equity, cash, close, ATR, confidence) -> units.
EntrySizer = Callable[[float, float, float, float, float], float]


def session_sizing(saved: Mapping[str, Any]) -> dict[str, Any]:
    """Return how a session sizes its entries, from its saved config: ``risk`` and ``confidence_floor``.

    The keywords `refill`, `labkit.readiness.evidence.execution_check` and the gate ledger
    (`labkit.readiness.counterfactual.ledger`) take: the config's ``risk`` section, and a model's
    entry threshold, above which risk sizing scales entries up (None for other strategies).

    Examples
    --------
    >>> session_sizing({"session": {"strategy": "model"}, "strategies": {"model": {"entry": 0.6}},
    ...                 "risk": {"sizing": "all_in", "position_frac": 0.5}})
    {'risk': {'sizing': 'all_in', 'position_frac': 0.5}, 'confidence_floor': 0.6}
    """
    session = saved.get("session") or {}
    floor = None
    if session.get("strategy") == "model":
        entry = ((saved.get("strategies") or {}).get("model") or {}).get("entry")
        floor = None if entry is None else float(entry)
    return {"risk": dict(saved.get("risk") or {}), "confidence_floor": floor}


def position_frac(risk: Mapping[str, Any] | None) -> float:
    """Return the share of the cash an all-in entry spends (``risk.position_frac``, 1 by default)."""
    return float((risk or {}).get("position_frac", 1.0))


def entry_sizer(
    risk: Mapping[str, Any] | None, fee: float, slippage: float, confidence_floor: float | None = None
) -> EntrySizer | None:
    """Return the session's risk sizing as a function, or None when entries are sized all in.

    The function is the engine's (`labkit.engine.exits.entry_units`) under `risk` (a config's
    ``risk`` section) at `fee` and `slippage`: a journal reader sizes an entry exactly as the
    session did. All in needs none: the book spends ``position_frac`` of its cash at the fill.
    """
    if not risk or risk.get("sizing", "all_in") != "risk":
        return None
    # Imported here: the config models load pydantic, which a reader of all-in journals never needs.
    from labkit.engine.exits import entry_units
    from labkit.engine.settings import BrokerConfig, EngineSettings, RiskConfig

    known = {k: v for k, v in risk.items() if k in RiskConfig.model_fields}
    # Only the risk and broker configs and the floor size an entry; the market fields are unread.
    settings = EngineSettings(
        "",
        "refill",
        "",
        "1m",
        RiskConfig.model_validate(known),
        BrokerConfig(fee=fee, slippage=slippage),
        confidence_floor,
    )

    def size(equity: float, cash: float, price: float, atr: float, confidence: float) -> float:
        return entry_units(settings, equity, cash, price, atr, confidence)

    return size


def refill(
    journal: pd.DataFrame,
    bars: pd.DataFrame,
    model: ExecutionModel,
    capital: float,
    risk: Mapping[str, Any] | None = None,
    confidence_floor: float | None = None,
) -> pd.DataFrame:
    """Return `journal` (a `read_journal` frame) with its decisions filled again under `model`.

    Every order keeps its decision (actions, and orders a command placed, such as an emergency
    stop's exit); fills, cash, position and equity are recomputed from `bars`' opens and closes
    with the paper broker's arithmetic. An order that would fill after the last bar never fills.
    Entries are sized as the session sizes them: `risk` is its config's ``risk`` section and
    `confidence_floor` a model's entry threshold (`session_sizing` reads both from a saved config).
    All in spends ``position_frac`` of the cash at the fill; risk sizing sizes each entry from the
    refilled book at its decision (the engine's `entry_units`, with the ATR the decision recorded).
    Without `risk`, an entry buys the units its decision recorded, or all the cash. An exit the
    engine enforced (a stop, a take-profit, a time stop) fills again on its own bar at its own
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
    adverse = model.slippage + model.spread / 2.0
    sizer = entry_sizer(risk, model.fee, adverse, confidence_floor)
    frac = position_frac(risk)
    confidence = _confidences(journal) if sizer is not None else []
    pending: dict[int, list[_Order]] = {}
    for order in _orders(journal):
        at = order.seq - seq0 + (1 + model.delay_bars if order.level is None else 0)
        pending.setdefault(at, []).append(order)
    book = Portfolio.start(capital)
    fills: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    cash, position, equity = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        # Orders at the open first, then an exit resting at its level within the bar.
        for order in sorted(pending.pop(i, []), key=lambda o: o.level is not None):
            price = opens[i] if order.level is None else order.level
            units = order.units if risk is None else None
            if sizer is not None and order.side == 1 and order.level is None and order.reason == "signal":
                d = order.seq - seq0  # the decision's line: the book it sized from
                units = sizer(equity[d], cash[d], closes[d], order.atr, confidence[d])
            fill = book.fill(
                order.side, price, model.fee, adverse, frac, order.seq, units=units, reason=order.reason
            )
            if fill is not None:
                fills[i].append(fill)
        cash[i], position[i] = book.cash, book.position
        equity[i] = book.cash + book.position * closes[i]
    first = [f[0] if f else None for f in fills]
    second = [f[1] if len(f) > 1 else None for f in fills]
    out["fill"], out["cash"], out["position"], out["equity"] = first, cash, position, equity
    out["exit_fill"] = second  # the exit filled on the range of the bar its entry filled at
    for key in ("side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl"):
        out[f"fill_{key}"] = [None if f is None else f.get(key) for f in first]
        out[f"exit_fill_{key}"] = [None if f is None else f.get(key) for f in second]
    out.attrs["execution"] = model.describe()
    return out


def _confidences(journal: pd.DataFrame) -> list[float]:
    # Each decision's confidence as a float (NaN where the journal has none).
    if "confidence" not in journal.columns:
        return [math.nan] * len(journal)
    return [math.nan if c is None else float(c) for c in journal["confidence"].tolist()]


@dataclass(frozen=True)
class _Order:
    seq: int
    side: int
    units: float | None = None  # a risk-sized entry's units; None sizes all in
    level: float | None = None  # an enforced exit's level; None fills at the open
    reason: str = "signal"
    atr: float = math.nan  # the ATR an entry's decision recorded (risk sizing reads it)


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
            atr = detail.get("atr")
            orders[int(seq), False] = _Order(
                int(seq),
                SIDE_CODE[action],
                None if units is None else float(units),
                atr=math.nan if atr is None else float(atr),
            )
    for fill in _line_fills(journal):
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


def _line_fills(journal: pd.DataFrame) -> list[Any]:
    # Every line's fill at the open, then the exit filled on the range of an entry's own bar.
    fills = journal["fill"].tolist()
    if "exit_fill" in journal.columns:
        fills += journal["exit_fill"].tolist()
    return fills

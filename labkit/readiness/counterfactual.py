"""The counterfactual gate ledger: what each gate's blocked entries would have earned or lost.

Every blocked entry proposal (a BUY the chain refused) gets a would-have trade under the paper
broker's fill rules: it enters at the open of the bar after the proposal and exits at the open of
the bar after the strategy's next exit signal (its next SELL proposal, whatever became of it),
paying the fee on both fills and the slippage against it. Sized all in, like the session's own
entries, its notional is the equity at the proposal. A trade the journal ends before closing is
marked at the last close without an exit fee (as equity is) and counted as open.

Summed per stage and reason, this answers "is this gate paying for itself?": the losses it saved,
the profits it forwent, and the hit rate of the trades it refused.

`exit_ledger` asks the same of the exits the engine enforced (stop-loss, take-profit, trailing and
time stops): each such exit is compared with holding the position to the strategy's next exit
signal, filled at the open after it with the same fee and slippage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.trips import reason_code
from labkit.engine.portfolio import EXIT_REASONS
from labkit.strategies.sides import BUY, SELL

_COLUMNS = (
    "stage",
    "reason",
    "proposed_ts",
    "entry_ts",
    "exit_ts",
    "entry_price",
    "exit_price",
    "notional",
    "net_return",
    "net_pnl",
    "open",
)
_SUMMARY = (
    "stage",
    "reason",
    "blocks",
    "trades",
    "open",
    "net_pnl",
    "saved",
    "forgone",
    "hit_rate",
    "verdict",
)


def would_have_trades(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    fee: float | None = None,
    slippage: float | None = None,
) -> pd.DataFrame:
    """Return one would-have trade per blocked entry proposal of `journal` (a `read_journal` frame).

    `bars` (a bar frame covering the journal) gives the opens the fills use; without it, each fill
    uses the close of the bar before it (the price the journal records), which is labelled in the
    frame's ``attrs["fills"]``. `fee` and `slippage` default to what the journal's own fills paid.
    """
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in _COLUMNS})
    if journal.empty:
        out.attrs["fills"] = "none"
        return out
    fee = _rate(journal, "fee") if fee is None else fee
    slippage = _rate(journal, "slippage") if slippage is None else slippage
    ts = journal["ts"].reset_index(drop=True)
    proposed = journal["proposed"].to_numpy()
    stage, reason = (field.to_numpy() for field in _trace_fields(journal, "stage", "reason"))
    closes = journal["price"].to_numpy(dtype=float)
    equity = journal["equity"].to_numpy(dtype=float)
    opens = _next_opens(ts, closes, bars)
    blocked = np.flatnonzero((proposed == BUY) & (stage != "passed") & pd.notna(stage))
    exits = np.flatnonzero(proposed == SELL)
    rows = []
    for i in blocked:
        if i + 1 >= len(ts) or not math.isfinite(opens[i]):
            continue  # proposed on the last bar: like any order, it would never have filled
        later = exits[np.searchsorted(exits, i, side="right") :]
        signal = int(later[0]) if len(later) else None
        entry = opens[i] * (1.0 + slippage)
        cost = entry * (1.0 + fee)
        if signal is not None and signal + 1 < len(ts) and math.isfinite(opens[signal]):
            exit_price, exit_ts, still_open = opens[signal] * (1.0 - slippage), ts[signal + 1], False
            proceeds = exit_price * (1.0 - fee)
        else:
            exit_price, exit_ts, still_open = closes[-1], None, True
            proceeds = exit_price  # marked at the last close, no exit fee (as equity is)
        net_return = proceeds / cost - 1.0
        rows.append(
            {
                "stage": stage[i],
                "reason": reason_code(reason[i]),
                "proposed_ts": ts[i],
                "entry_ts": ts[i + 1],
                "exit_ts": exit_ts,
                "entry_price": entry,
                "exit_price": exit_price,
                "notional": equity[i],
                "net_return": net_return,
                "net_pnl": equity[i] * net_return,
                "open": still_open,
            }
        )
    if rows:
        out = pd.DataFrame(rows, columns=list(_COLUMNS))
    out.attrs["fills"] = "bar opens" if bars is not None else "the close before each fill (no opens given)"
    out.attrs["fee"], out.attrs["slippage"] = fee, slippage
    return out


def ledger(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    fee: float | None = None,
    slippage: float | None = None,
) -> pd.DataFrame:
    """Return the gate ledger of a journal: per stage and reason, what its blocked entries would have done.

    Columns: ``blocks`` (entry proposals blocked), ``trades`` (would-have trades with a fill),
    ``open`` (of which the journal ended first), ``net_pnl`` (their net PnL, in quote currency),
    ``saved`` (losses avoided, positive), ``forgone`` (profits missed, positive), ``hit_rate``
    (share of would-have trades that made money) and ``verdict``: ``pays`` when the losses saved
    outweigh the profits forgone, ``costs`` when not, ``untested`` with no trade to judge.

    Examples
    --------
    >>> j = pd.DataFrame({
    ...     "ts": pd.date_range("2026-01-05", periods=4, freq="min", tz="UTC"),
    ...     "proposed": ["BUY", "HOLD", "SELL", "HOLD"], "action": ["HOLD"] * 4,
    ...     "gate_trace": [{"stage": "turnover", "reason": "max_daily_trades"}] + [{"stage": "passed"}] * 3,
    ...     "price": [100.0, 101.0, 99.0, 98.0], "equity": [1000.0] * 4, "fill": [None] * 4})
    >>> table = ledger(j, fee=0.0, slippage=0.0)
    >>> table[["stage", "reason", "blocks", "net_pnl", "verdict"]].to_dict("records")
    [{'stage': 'turnover', 'reason': 'max_daily_trades', 'blocks': 1, 'net_pnl': -10.0, 'verdict': 'pays'}]
    """
    trades = would_have_trades(journal, bars, fee, slippage)
    blocks = _entry_blocks(journal)
    if blocks.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in _SUMMARY})
    rows = []
    for (stage, reason), count in blocks.items():
        mine = trades[(trades["stage"] == stage) & (trades["reason"] == reason)] if len(trades) else trades
        pnl = mine["net_pnl"].astype(float) if len(mine) else pd.Series(dtype=float)
        saved, forgone = float(-pnl[pnl < 0].sum()), float(pnl[pnl > 0].sum())
        rows.append(
            {
                "stage": stage,
                "reason": reason,
                "blocks": int(count),
                "trades": len(mine),
                "open": int(mine["open"].sum()) if len(mine) else 0,
                "net_pnl": round(float(pnl.sum()), 10),
                "saved": saved,
                "forgone": forgone,
                "hit_rate": float((pnl > 0).mean()) if len(pnl) else math.nan,
                "verdict": "untested" if not len(pnl) else ("pays" if saved > forgone else "costs"),
            }
        )
    table = pd.DataFrame(rows, columns=list(_SUMMARY))
    order = table.sort_values(["blocks", "stage", "reason"], ascending=[False, True, True])
    return order.reset_index(drop=True)


def _entry_blocks(journal: pd.DataFrame) -> pd.Series:
    if journal.empty:
        return pd.Series(dtype="int64")
    stage, reason = _trace_fields(journal, "stage", "reason")
    reason = reason.map(reason_code, na_action="ignore")
    mask = (journal["proposed"] == BUY) & stage.notna() & (stage != "passed")
    return pd.DataFrame({"stage": stage[mask], "reason": reason[mask]}).groupby(["stage", "reason"]).size()


def _trace_fields(journal: pd.DataFrame, *names: str) -> list[pd.Series]:
    # Each field of the decisions' gate traces (None without a trace), as `Series.map` would give
    # them; one pass over the traces as a list is several times faster.
    traces = journal["gate_trace"]
    found = [t if isinstance(t, Mapping) else None for t in traces.tolist()]
    return [pd.Series([None if t is None else t.get(n) for t in found], index=traces.index) for n in names]


def _next_opens(ts: pd.Series, closes: np.ndarray, bars: pd.DataFrame | None) -> np.ndarray:
    # The price an order decided at bar i fills at: the next bar's open (or, without bars, the
    # close of bar i, the last price the journal knows before that open).
    if bars is None:
        return closes.astype(float)
    opens = bars["open"].reindex(pd.DatetimeIndex(ts)).to_numpy(dtype=float)
    return np.append(opens[1:], math.nan)


def _rate(journal: pd.DataFrame, kind: str) -> float:
    # The fee or slippage rate the journal's own fills paid, as a fraction (0 with no fills).
    rates = []
    for fill in journal["fill"]:
        if not isinstance(fill, Mapping):
            continue
        notional = float(fill["units"]) * float(fill["price"])
        if notional <= 0:
            continue
        if kind == "fee":
            rates.append(float(fill["fee"]) / notional)
        else:
            slip = float(fill.get("slippage_cost") or 0.0)
            at_open = notional - slip if fill["side"] == BUY else notional + slip  # units x open
            rates.append(slip / at_open if at_open > 0 else 0.0)
    return float(np.median(rates)) if rates else 0.0


def ledger_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Return the ledger's totals: blocks, would-have net PnL, losses saved and profits forgone."""
    if table.empty:
        return {"blocks": 0, "net_pnl": 0.0, "saved": 0.0, "forgone": 0.0}
    return {
        "blocks": int(table["blocks"].sum()),
        "net_pnl": float(table["net_pnl"].sum()),
        "saved": float(table["saved"].sum()),
        "forgone": float(table["forgone"].sum()),
    }


_EXIT_SUMMARY = ("exit", "exits", "open", "effect", "saved", "forgone", "hit_rate", "verdict")


def exit_ledger(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    fee: float | None = None,
    slippage: float | None = None,
) -> pd.DataFrame:
    """Return, per exit reason the engine enforced, what holding on to the next exit signal would have done.

    Each enforced exit is set against the position held without it until the strategy's next
    ``SELL`` proposal (at or after the exit's bar), sold at the open after that proposal with the
    fee and slippage; with no such proposal before the journal ends, marked at the last close
    without a fee (``open``). Without the stop the position might have met another exit first: this
    is "the stop versus the signal alone". ``effect`` is the exit's proceeds minus the held
    position's (positive: the exit saved money); ``saved`` and ``forgone`` sum its positive and
    negative parts, ``hit_rate`` is the share of exits that saved money, and ``verdict`` says
    ``pays`` when saved outweighs forgone, else ``costs``.

    Examples
    --------
    >>> j = pd.DataFrame({
    ...     "ts": pd.date_range("2026-01-05", periods=4, freq="min", tz="UTC"),
    ...     "proposed": ["HOLD", "HOLD", "SELL", "HOLD"], "price": [100.0, 95.0, 90.0, 90.0],
    ...     "fill": [None, {"side": "SELL", "units": 1.0, "price": 98.0, "fee": 0.0,
    ...                     "slippage_cost": 0.0, "reason": "stop_loss"}, None, None]})
    >>> exit_ledger(j, fee=0.0, slippage=0.0)[["exit", "exits", "effect", "verdict"]].to_dict("records")
    [{'exit': 'stop_loss', 'exits': 1, 'effect': 8.0, 'verdict': 'pays'}]
    """
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in _EXIT_SUMMARY})
    if journal.empty or "fill" not in journal.columns:
        return empty
    fee = _rate(journal, "fee") if fee is None else fee
    slippage = _rate(journal, "slippage") if slippage is None else slippage
    ts = journal["ts"].reset_index(drop=True)
    closes = journal["price"].to_numpy(dtype=float)
    opens = _next_opens(ts, closes, bars)
    sells = np.flatnonzero(journal["proposed"].to_numpy() == SELL)
    rows = []
    for i, fill in enumerate(journal["fill"]):
        if not isinstance(fill, Mapping) or fill.get("reason") not in EXIT_REASONS:
            continue
        units = float(fill["units"])
        proceeds = units * float(fill["price"]) - float(fill["fee"])
        later = sells[np.searchsorted(sells, i, side="left") :]
        signal = int(later[0]) if len(later) else None
        if signal is not None and signal + 1 < len(ts) and math.isfinite(opens[signal]):
            held, still_open = units * opens[signal] * (1.0 - slippage) * (1.0 - fee), False
        else:
            held, still_open = units * closes[-1], True
        rows.append({"exit": fill["reason"], "effect": proceeds - held, "open": still_open})
    if not rows:
        return empty
    frame = pd.DataFrame(rows)
    out = []
    for reason in [r for r in EXIT_REASONS if r in set(frame["exit"])]:
        effect = frame.loc[frame["exit"] == reason, "effect"].astype(float)
        saved, forgone = float(effect[effect > 0].sum()), float(effect[effect < 0].abs().sum())
        out.append(
            {
                "exit": reason,
                "exits": len(effect),
                "open": int(frame.loc[frame["exit"] == reason, "open"].sum()),
                "effect": round(float(effect.sum()), 10),
                "saved": saved,
                "forgone": forgone,
                "hit_rate": float((effect > 0).mean()),
                "verdict": "pays" if saved > forgone else "costs",
            }
        )
    return pd.DataFrame(out, columns=list(_EXIT_SUMMARY))

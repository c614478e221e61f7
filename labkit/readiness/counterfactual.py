"""The counterfactual gate ledger: what each gate's refused entries would have earned or lost.

The ledger holds one would-have position at a time, as the session would have. It is opened by a
refused entry proposal (a BUY the chain blocked) made while the session was flat and no would-have
position was open: it enters at the open of the bar after the proposal and exits at the open of
the bar after the strategy's next exit signal (its next SELL proposal, whatever became of it).
Refusals while the session held a position, or while a would-have position was open, open nothing;
they are counted (``while_holding``, ``in_would_have``). A trade the journal ends before closing is
marked at the last close without an exit fee (as equity is) and counted as open.

It is sized as the session sizes its entries (its config's ``risk`` section, from the session's
cash and equity at the proposal: all in with ``position_frac``, or by risk with the engine's own
`labkit.engine.exits.entry_units` and the ATR of the bars), and priced with the paper broker's
arithmetic at the fee and slippage the caller passes: the session's configured ``broker``, never
what its fills happened to pay (a session that never filled paid nothing).

Summed per stage and reason, this answers "is this gate paying for itself?": the losses it saved,
the profits it forwent, and the hit rate of the trades it refused.

`exit_ledger` asks the same of the exits the engine enforced (stop-loss, take-profit, trailing and
time stops): each such exit is compared with holding the position to the strategy's next exit
signal, filled at the open after it with the same fee and slippage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.execution import EntrySizer, entry_sizer, position_frac
from labkit.analysis.trips import reason_code
from labkit.engine.portfolio import EXIT_REASONS, Portfolio
from labkit.strategies.sides import BUY, SELL

_COLUMNS = (
    "stage",
    "reason",
    "proposed_ts",
    "entry_ts",
    "exit_ts",
    "units",
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
    "in_would_have",
    "while_holding",
    "open",
    "net_pnl",
    "saved",
    "forgone",
    "hit_rate",
    "verdict",
)
# What became of each refused entry proposal.
_OPENED, _INSIDE, _HOLDING, _UNFILLED = "opened", "in_would_have", "while_holding", "unfilled"


@dataclass(frozen=True)
class _Sizing:
    # How would-have entries are sized: the engine's risk sizing (None: all in) with its ATR per
    # journal line, the share of the cash an all-in entry spends, and the words that say so.
    sizer: EntrySizer | None
    atr: np.ndarray
    frac: float
    words: str


def would_have_trades(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    *,
    fee: float,
    slippage: float,
    risk: Mapping[str, Any] | None = None,
    confidence_floor: float | None = None,
) -> pd.DataFrame:
    """Return the would-have trades of the entries `journal`'s gates refused, one position at a time.

    `journal` is a `read_journal` frame. `bars` (a bar frame covering the journal) gives the opens
    the fills use and the ATR risk sizing reads; without it, each fill uses the close of the bar
    before it (the price the journal records) and the ATR is taken over closes alone, as the
    frame's ``attrs["fills"]`` and ``attrs["sizing"]`` say. `fee` and `slippage` are the session's
    configured rates (its ``broker`` section); `risk` (its ``risk`` section) and
    `confidence_floor` (a model's entry threshold) size the entries as the session would have,
    all in with the whole cash without them (`labkit.analysis.execution.session_sizing` reads
    both from a saved config). ``notional`` is the cash an entry spends, its fee included.
    """
    trades, _ = _would_have(journal, bars, fee, slippage, risk, confidence_floor)
    return trades


def _would_have(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None,
    fee: float,
    slippage: float,
    risk: Mapping[str, Any] | None,
    floor: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    # The would-have trades, and every refused entry proposal with what became of it.
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in _COLUMNS})
    refusals = pd.DataFrame({c: pd.Series(dtype="object") for c in ("stage", "reason", "kind")})
    out.attrs.update(fee=fee, slippage=slippage, fills="none", sizing="none")
    if journal.empty:
        return out, refusals
    ts = journal["ts"].reset_index(drop=True)
    proposed = journal["proposed"].to_numpy()
    stage, reason = (field.to_numpy() for field in _trace_fields(journal, "stage", "reason"))
    closes = journal["price"].to_numpy(dtype=float)
    equity = journal["equity"].to_numpy(dtype=float)
    cash = _column(journal, "cash", equity)
    held = _column(journal, "position", np.zeros(len(journal)))
    confidence = _column(journal, "confidence", np.full(len(journal), math.nan))
    opens = _next_opens(ts, closes, bars)
    sizing = _sizing(journal, bars, risk, fee, slippage, floor)
    blocked = np.flatnonzero((proposed == BUY) & (stage != "passed") & pd.notna(stage))
    exits = np.flatnonzero(proposed == SELL)
    rows, kinds = [], []
    busy_until = -1  # the last decision made inside the open would-have position
    for i in blocked.tolist():
        if held[i] > 0:
            kinds.append(_HOLDING)
            continue
        if i <= busy_until:
            kinds.append(_INSIDE)
            continue
        later = exits[np.searchsorted(exits, i, side="right") :]
        signal = int(later[0]) if len(later) else None
        units = None
        if sizing.sizer is not None:
            units = sizing.sizer(equity[i], cash[i], closes[i], sizing.atr[i], confidence[i])
        trade = _trade(i, signal, ts, opens, closes, cash[i], units, sizing.frac, fee, slippage)
        if trade is None:
            kinds.append(_UNFILLED)  # on the last bar, or no size: like any such order, never filled
            continue
        kinds.append(_OPENED)
        busy_until = signal if signal is not None else len(ts)
        rows.append({"stage": stage[i], "reason": reason_code(reason[i]), **trade})
    if rows:
        out = pd.DataFrame(rows, columns=list(_COLUMNS))
    refusals = pd.DataFrame(
        {"stage": stage[blocked], "reason": [reason_code(r) for r in reason[blocked]], "kind": kinds}
    )
    fills = "bar opens" if bars is not None else "the close before each fill (no opens given)"
    out.attrs.update(fee=fee, slippage=slippage, fills=fills, sizing=sizing.words)
    return out, refusals


def _trade(
    i: int,
    signal: int | None,
    ts: pd.Series,
    opens: np.ndarray,
    closes: np.ndarray,
    cash: float,
    units: float | None,
    frac: float,
    fee: float,
    slippage: float,
) -> dict[str, Any] | None:
    # One would-have round trip through the paper broker's own book, from the session's cash at
    # the proposal; None when it could not have filled.
    if i + 1 >= len(ts) or not math.isfinite(opens[i]):
        return None
    book = Portfolio.start(cash)
    entry = book.fill(1, opens[i], fee, slippage, frac, i, units=units)
    if entry is None:
        return None
    cost = book.entry_cost
    sold = None
    if signal is not None and signal + 1 < len(ts) and math.isfinite(opens[signal]):
        sold = book.fill(-1, opens[signal], fee, slippage, frac, signal)
        exit_ts = ts[signal + 1]
    if sold is not None:
        exit_price, still_open, pnl = sold["price"], False, float(sold["pnl"])
    else:
        # Marked at the last close, no exit fee (as equity is).
        exit_price, exit_ts, still_open = closes[-1], None, True
        pnl = float(entry["units"]) * exit_price - cost
    return {
        "proposed_ts": ts[i],
        "entry_ts": ts[i + 1],
        "exit_ts": exit_ts,
        "units": float(entry["units"]),
        "entry_price": float(entry["price"]),
        "exit_price": float(exit_price),
        "notional": cost,
        "net_return": pnl / cost,
        "net_pnl": pnl,
        "open": still_open,
    }


def _sizing(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None,
    risk: Mapping[str, Any] | None,
    fee: float,
    slippage: float,
    floor: float | None,
) -> _Sizing:
    frac = position_frac(risk)
    sizer = entry_sizer(risk, fee, slippage, floor)
    if sizer is None:
        return _Sizing(None, np.empty(0), frac, f"all in: {frac:.0%} of the cash (risk.position_frac)")
    from labkit.features.definitions import atr

    window = int((risk or {}).get("atr_window", 14))
    if bars is not None:
        high, low, close = (bars[c].to_numpy(dtype=float) for c in ("high", "low", "close"))
        values = atr(high, low, close, window)
        times = pd.DatetimeIndex(journal["ts"])
        at = pd.Series(values, index=bars.index).reindex(times).to_numpy(dtype=float)
        basis = f"ATR({window}) of the bars"
    else:
        closes = journal["price"].to_numpy(dtype=float)
        at = atr(closes, closes, closes, window)
        basis = f"ATR({window}) of the closes alone (no bars given: no highs and lows)"
    return _Sizing(sizer, at, frac, f"by risk (risk.sizing: risk), the engine's entry size by {basis}")


def _column(journal: pd.DataFrame, name: str, default: np.ndarray) -> np.ndarray:
    # A numeric journal column as floats (None as NaN), or `default` when the journal lacks it.
    if name not in journal.columns:
        return default
    return pd.to_numeric(journal[name], errors="coerce").to_numpy(dtype=float)


def ledger(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    *,
    fee: float,
    slippage: float,
    risk: Mapping[str, Any] | None = None,
    confidence_floor: float | None = None,
) -> pd.DataFrame:
    """Return the gate ledger of a journal: per stage and reason, what its refused entries would have done.

    The would-have trades are `would_have_trades`' (the arguments are the same). Columns:
    ``blocks`` (entry proposals refused), ``trades`` (would-have positions they opened),
    ``in_would_have`` (refusals inside a would-have position already open), ``while_holding``
    (refusals while the session held a position), ``open`` (trades the journal ended first),
    ``net_pnl`` (their net PnL, in quote currency), ``saved`` (losses avoided, positive),
    ``forgone`` (profits missed, positive), ``hit_rate`` (share of would-have trades that made
    money) and ``verdict``: ``pays`` when the losses saved outweigh the profits forgone, ``costs``
    when not, ``untested`` with no trade to judge. The frame's ``attrs`` hold the fee, slippage,
    fills and sizing it was priced with.

    Examples
    --------
    >>> j = pd.DataFrame({
    ...     "ts": pd.date_range("2026-01-05", periods=4, freq="min", tz="UTC"),
    ...     "proposed": ["BUY", "HOLD", "SELL", "HOLD"], "action": ["HOLD"] * 4,
    ...     "gate_trace": [{"stage": "turnover", "reason": "max_daily_trades"}] + [{"stage": "passed"}] * 3,
    ...     "price": [100.0, 101.0, 99.0, 98.0], "equity": [1000.0] * 4, "fill": [None] * 4})
    >>> table = ledger(j, fee=0.0, slippage=0.0)
    >>> table[["stage", "reason", "blocks", "trades", "net_pnl"]].to_dict("records")
    [{'stage': 'turnover', 'reason': 'max_daily_trades', 'blocks': 1, 'trades': 1, 'net_pnl': -10.0}]
    >>> table["verdict"].tolist()
    ['pays']
    """
    trades, refusals = _would_have(journal, bars, fee, slippage, risk, confidence_floor)
    rows = [
        _ledger_row(stage, reason, mine["kind"], trades)
        for (stage, reason), mine in refusals.groupby(["stage", "reason"], sort=False, dropna=False)
    ]
    table = pd.DataFrame(rows, columns=list(_SUMMARY)) if rows else _empty(_SUMMARY)
    if rows:
        order = table.sort_values(["blocks", "stage", "reason"], ascending=[False, True, True])
        table = order.reset_index(drop=True)
    table.attrs.update(trades.attrs)
    return table


def _ledger_row(stage: str, reason: str, kinds: pd.Series, trades: pd.DataFrame) -> dict[str, Any]:
    # One stage and reason of the ledger: its refusals (`kinds`, what became of each) and trades.
    mine = trades[(trades["stage"] == stage) & (trades["reason"] == reason)] if len(trades) else trades
    pnl = mine["net_pnl"].astype(float) if len(mine) else pd.Series(dtype=float)
    saved, forgone = float(-pnl[pnl < 0].sum()), float(pnl[pnl > 0].sum())
    return {
        "stage": stage,
        "reason": reason,
        "blocks": len(kinds),
        "trades": len(mine),
        "in_would_have": int((kinds == _INSIDE).sum()),
        "while_holding": int((kinds == _HOLDING).sum()),
        "open": int(mine["open"].sum()) if len(mine) else 0,
        "net_pnl": round(float(pnl.sum()), 10),
        "saved": saved,
        "forgone": forgone,
        "hit_rate": float((pnl > 0).mean()) if len(pnl) else math.nan,
        "verdict": "untested" if not len(pnl) else ("pays" if saved > forgone else "costs"),
    }


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


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
    # The fee or slippage rate the journal's own fills paid, as a fraction (0 with no fills): every
    # fill, the exit filled on its entry's own bar (`exit_fill`) as much as those at an open.
    rates = []
    for _, fill in _fills(journal):
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
    """Return the ledger's totals: refusals, would-have trades, net PnL, losses saved and profits forgone.

    ``blocks`` counts the refused entry proposals; ``trades`` the would-have positions they opened;
    ``in_would_have`` the refusals inside one already open; ``while_holding`` those made while the
    session held a position.
    """
    counts = ("blocks", "trades", "in_would_have", "while_holding")
    money = ("net_pnl", "saved", "forgone")
    if table.empty:
        return {**dict.fromkeys(counts, 0), **dict.fromkeys(money, 0.0)}
    return {
        **{name: int(table[name].sum()) for name in counts},
        **{name: float(table[name].sum()) for name in money},
    }


def _fills(journal: pd.DataFrame) -> list[tuple[int, Mapping[str, Any]]]:
    # Every fill with its line, in the order they happened: a line's fill at the open, then the exit
    # filled on the range of the bar its entry filled at (`exit_fill`).
    second = journal["exit_fill"].tolist() if "exit_fill" in journal.columns else [None] * len(journal)
    return [
        (i, fill)
        for i, pair in enumerate(zip(journal["fill"].tolist(), second, strict=True))
        for fill in pair
        if isinstance(fill, Mapping)
    ]


def _enforced(journal: pd.DataFrame) -> list[tuple[int, Mapping[str, Any]]]:
    # The exits the engine enforced, with their lines, wherever they filled (`_fills`).
    return [(i, fill) for i, fill in _fills(journal) if fill.get("reason") in EXIT_REASONS]


_EXIT_SUMMARY = ("exit", "exits", "open", "effect", "saved", "forgone", "hit_rate", "verdict")


def exit_ledger(
    journal: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    fee: float | None = None,
    slippage: float | None = None,
) -> pd.DataFrame:
    """Return, per exit reason the engine enforced, what holding on to the next exit signal would have done.

    `fee` and `slippage` are the session's configured rates (its ``broker`` section), which reports
    pass; without them, the median rates the journal's own fills paid (an enforced exit is a fill,
    on its entry's own bar, ``exit_fill``, too). An exit enforced on its entry's bar is scored like
    any other.

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
    for i, fill in _enforced(journal):
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

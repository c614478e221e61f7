"""A book's journal read for a report: its bars, its symbols, and what each symbol did for it.

A book over a universe (`labkit.engine.book`) writes one line per (bar, symbol), in the universe's
order at each bar, every line carrying the book's cash and equity. So the book's equity at a bar is
the last line of that bar's time, and anything about trades is read one symbol at a time: a
symbol's lines are a single-symbol journal whose cash and equity happen to be shared. Telling a book
apart and pairing its trades (`is_book`, `universe`, `symbol_frames`, `book_trips`) live in
`labkit.analysis.book_journal`, where readiness reads them too.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from labkit.analysis.book_journal import book_trips as book_trips
from labkit.analysis.book_journal import is_book as is_book
from labkit.analysis.book_journal import symbol_frames, universe
from labkit.analysis.formatting import money, share
from labkit.analysis.trips import blocking_table, exit_reasons, reason_code, round_trips


def closes(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the symbols' closes, a row per bar time and a column per symbol, carried forward.

    A symbol without a bar at a time keeps its latest close, as the book marks it; before its
    first bar it has none (NaN).
    """
    frame = journal.pivot_table(index="ts", columns="symbol", values="price", aggfunc="last", dropna=False)
    return frame.reindex(columns=universe(journal)).sort_index().ffill()


def equal_weight_hold(journal: pd.DataFrame, capital: float) -> pd.Series:
    """Return the value, at each bar, of the capital split equally over the universe and held.

    Each symbol gets capital / N at its first close (the first bar's, unless it had no bar then),
    without fees or slippage, and is marked at its latest close after.
    """
    prices = closes(journal)
    first = prices.bfill().iloc[0]
    units = (capital / prices.shape[1]) / first
    return (prices.fillna(first) * units).sum(axis=1).rename("buy and hold")


def book_bars(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return the book as a journal of one line per bar: the last line of each time.

    Its equity and cash are the book's at the bar's end; its ``price`` is not any symbol's close but
    the equal-weight buy and hold of the universe (`equal_weight_hold`), so every figure that sets a
    run against holding "the market" holds the universe.
    """
    last = journal.groupby("ts", sort=True).tail(1).reset_index(drop=True)
    hold = equal_weight_hold(journal, capital)
    return last.assign(price=hold.reindex(pd.DatetimeIndex(last["ts"])).to_numpy(dtype=float))


def book_exit_reasons(journal: pd.DataFrame) -> list[str]:
    """Return why each closed trip of `book_trips` was exited, in the same order."""
    frames = []
    for s, f in symbol_frames(journal).items():
        trips = round_trips(f)
        reasons = exit_reasons(f)
        if len(trips) and len(reasons) == len(trips):
            frames.append(pd.DataFrame({"exit_ts": trips["exit_ts"], "exit": reasons, "symbol": s}))
    if not frames:
        return []
    return pd.concat(frames, ignore_index=True).sort_values("exit_ts", kind="stable")["exit"].tolist()


def _cash_flows(frame: pd.DataFrame) -> tuple[float, float, float]:
    # The cash a symbol's fills moved (fees included), the fees and the slippage they paid.
    from labkit.engine.journal import line_fills

    flows = fees = slips = 0.0
    second = frame["exit_fill"] if "exit_fill" in frame.columns else [None] * len(frame)
    for fill, exit_fill in zip(frame["fill"], second, strict=True):
        line = {"fill": fill if isinstance(fill, Mapping) else None}
        line["exit_fill"] = exit_fill if isinstance(exit_fill, Mapping) else None
        for one in line_fills(line):
            flows += float(one["cash_flow"])
            fees += float(one.get("fee") or 0.0)
            slips += float(one.get("slippage_cost") or 0.0)
    return flows, fees, slips


def attribution(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return what each symbol did for the book, unformatted, a row per symbol in the universe's order.

    ``net_pnl`` is the cash its fills moved (fees and slippage paid) plus its position still open,
    marked at its latest close, as the book's equity marks it; so the symbols' ``contribution_pct``
    (net P&L over the starting capital, in %) add up to the book's return. ``hit_rate`` is over its
    closed trips; ``blocks`` counts its lines a gate blocked, by reason code (``no_bar`` included:
    a time it had no bar).
    """
    rows = []
    for symbol, frame in symbol_frames(journal).items():
        trips = round_trips(frame)
        flows, fees, slips = _cash_flows(frame)
        prices = frame["price"].astype(float).dropna()
        held = float(frame["position"].iloc[-1]) * (float(prices.iloc[-1]) if len(prices) else 0.0)
        net = flows + held
        blocks = blocking_table(frame)
        rows.append(
            {
                "symbol": symbol,
                "trades": int(sum(1 for f in frame["fill"] if isinstance(f, Mapping) and f["side"] == "BUY")),
                "closed_trades": len(trips),
                "net_pnl": net,
                "hit_rate": float((trips["net_pnl"] > 0).mean()) if len(trips) else float("nan"),
                "contribution_pct": net / capital * 100.0,
                "fees": fees,
                "slippage": slips,
                "open_position": float(frame["position"].iloc[-1]),
                "blocks": {str(reason_code(r.reason)): int(r.count) for r in blocks.itertuples()},
            }
        )
    return pd.DataFrame(rows).set_index("symbol")


def attribution_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return `attribution` for a page: money in `currency`, shares in %, blocks as ``reason: n``."""
    return pd.DataFrame(
        {
            "entries": [f"{n:,}" for n in table["trades"]],
            "closed trades": [f"{n:,}" for n in table["closed_trades"]],
            "net P&L": [money(v, currency) for v in table["net_pnl"]],
            "hit rate": [share(v, 1) if v == v else "n/a" for v in table["hit_rate"]],
            "contribution": [f"{v:+.3f}%" for v in table["contribution_pct"]],
            "fees": [money(v, currency) for v in table["fees"]],
            "open at the end": ["yes" if p > 0 else "no" for p in table["open_position"]],
            "blocks by reason": [
                ", ".join(f"{r}: {n:,}" for r, n in sorted(b.items(), key=lambda kv: -kv[1])) or "none"
                for b in table["blocks"]
            ],
        },
        index=table.index,
    )


def exposure(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the book's gross exposure, its heat and the symbols it held, a row per bar time.

    ``gross`` is the sum over symbols of position x latest close, over the book's equity, both at
    the bar's end; ``heat`` what the book loses if every open position's stop is hit, over the same
    equity (the `portfolio_heat` gate's measure: units x (entry price - stop) from each entry's fill,
    the whole cost of a position without a stop); ``held`` counts the symbols with a position.
    """
    positions = journal.pivot_table(index="ts", columns="symbol", values="position", aggfunc="last")
    positions = positions.reindex(columns=universe(journal)).sort_index().ffill().fillna(0.0)
    value = (positions * closes(journal).fillna(0.0)).sum(axis=1)
    equity = journal.groupby("ts", sort=True)["equity"].last().astype(float)
    risk = stop_risk(journal).reindex(positions.index).ffill().fillna(0.0)
    return pd.DataFrame(
        {"gross": value / equity, "heat": risk.sum(axis=1) / equity, "held": (positions > 0).sum(axis=1)}
    )


def stop_risk(journal: pd.DataFrame) -> pd.DataFrame:
    """Return each symbol's open stop risk in quote, at the bar times its fills changed it.

    An entry's fill sets it to units x (fill price - stop price), or units x fill price when the
    entry had no stop; an exit's sets it to 0 (an exit on the entry's own bar, too).
    """
    columns = {}
    for symbol, frame in symbol_frames(journal).items():
        at: dict[pd.Timestamp, float] = {}
        for ts, fill, exit_fill in zip(
            frame["ts"], frame["fill"], frame.get("exit_fill", [None] * len(frame)), strict=True
        ):
            for one in (fill, exit_fill):
                if isinstance(one, Mapping) and one.get("side") == "BUY":
                    stop = one.get("stop_price")
                    at[ts] = one["units"] * (one["price"] - stop if stop is not None else one["price"])
                elif isinstance(one, Mapping):
                    at[ts] = 0.0
        columns[symbol] = pd.Series(at, dtype=float)
    return pd.DataFrame(columns).sort_index()


def return_correlation(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the Pearson correlation of the symbols' bar-to-bar close returns (a symbol by symbol grid)."""
    returns = closes(journal).pct_change(fill_method=None)
    return returns.replace([np.inf, -np.inf], np.nan).corr()


def open_symbols(journal: pd.DataFrame) -> list[str]:
    """Return the symbols the book still held at its last line."""
    return [s for s, f in symbol_frames(journal).items() if float(f["position"].iloc[-1]) > 0]

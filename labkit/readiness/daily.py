"""Daily shadow health of one UTC day of a session."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.calendar import MarketCalendar
from labkit.analysis.metrics import drawdowns, max_drawdown
from labkit.analysis.periods import coverage, day_bounds, heartbeat_gaps
from labkit.analysis.trips import (
    _between,
    _clean,
    _columns,
    _data_errors,
    _equity_before,
    blocking_table,
    journal_fills,
)
from labkit.config.schema import ReadinessConfig
from labkit.readiness.times import closed_trips, decided_times, without_no_bar
from labkit.readiness.weekly import decision_lag_ms, forward_mask
from labkit.strategies.sides import BUY, SELL


def daily_health(
    journal: pd.DataFrame,
    day: str,
    timeframe_ms: int,
    capital: float | None = None,
    calendar: MarketCalendar | None = None,
) -> dict[str, Any]:
    """Return the daily shadow health of one UTC day (``YYYY-MM-DD``) of a journal.

    ``expected`` is every bar the market's `calendar` (default 24/7) has in the whole day, whether
    or not the session ran all of it; ``decisions`` counts the bars decided among them. An
    equities weekend or holiday expects none. ``heartbeat_gaps`` counts decisions taken more than
    two bars after the previous one (clock-paced sessions; a fast replay has none). ``replays``
    counts the day's lines decided long after their bar closed (`labkit.readiness.weekly.forward_mask`
    with the default lag): the weekly verdict does not count them as evidence.
    ``data_errors`` counts ``stale_data`` and ``data_unavailable`` blocks (the warm-up's
    ``insufficient_data`` is not one), and ``data_error_share`` is their share of the bars
    expected. ``pnl`` is the day's change of marked equity (marked at bar closes, without the exit
    fee), from the last equity before the day (or `capital`, or the day's first equity);
    ``max_drawdown`` is measured from the peak within the day and ``session_drawdown`` from the
    session's running peak. Undefined figures are None.

    A book's journal (`labkit.engine.book`) is read per time (`labkit.readiness.times`): a decision
    is a time every symbol decided, replays and heartbeat gaps count times, PnL and drawdowns are the
    book's equity's. Actions, fills, blocks and closed trades are every symbol's (a symbol's
    ``no_bar`` line is not a block), and ``data_error_share`` is of every symbol's bars expected.
    """
    start, end = day_bounds(day)
    calendar = calendar or MarketCalendar()
    journal = _columns(journal)
    # A book is read per time (`labkit.readiness.times`): its lines count as one decision per time,
    # its equity is the book's at each close; actions, fills and blocks are every symbol's lines.
    lag = decision_lag_ms(ReadinessConfig(), timeframe_ms)
    read = decided_times(journal, forward_mask(journal, timeframe_ms, lag))
    times = read.times
    rows = _between(journal, start, end)
    day_times = _between(times, start, end)
    decisions, expected = coverage(times[["ts"]], start, end, timeframe_ms, calendar)
    gaps = (
        heartbeat_gaps(times, timeframe_ms).loc[day_times.index] if len(day_times) else pd.Series(dtype=float)
    )
    start_equity = _equity_before(times, start, capital)
    end_equity = float(day_times["equity"].iloc[-1]) if len(day_times) else start_equity
    fills = journal_fills(rows)  # an exit on its entry's own bar is a fill of its own
    closed = closed_trips(journal)
    closed = closed[(closed["exit_ts"] >= start) & (closed["exit_ts"] < end)] if len(closed) else closed
    data_errors = _data_errors(rows)
    # Lines decided long after their bar closed (a fast replay, a catch-up after downtime) are
    # counted here as decisions, and named: the weekly verdict counts them as missing.
    late = (
        ~read.forward[((times["ts"] >= start) & (times["ts"] < end)).to_numpy()]
        if len(times)
        else read.forward
    )
    cells = expected * read.symbols  # every symbol could have a data error at every bar
    blocks = without_no_bar(rows)
    return _clean(
        {
            "day": day,
            "first_bar": rows["ts"].iloc[0].isoformat() if len(rows) else None,
            "last_bar": rows["ts"].iloc[-1].isoformat() if len(rows) else None,
            "decisions": decisions,
            "expected": expected,
            "coverage": decisions / expected if expected else math.nan,
            "missing_bars": max(expected - decisions, 0),
            "replays": int(late.sum()),
            "heartbeat_gaps": int((gaps > 0).sum()),
            "max_gap_seconds": float(gaps.max()) if len(gaps) else 0.0,
            "data_errors": data_errors,
            "data_error_share": data_errors / cells if cells else math.nan,
            "actions": {
                side: int((rows["action"] == side).sum()) if len(rows) else 0 for side in (BUY, SELL)
            },
            "fills": {side: int((fills["fill_side"] == side).sum()) for side in (BUY, SELL)},
            "blocked": int((blocks["stage"].fillna("passed") != "passed").sum()) if len(blocks) else 0,
            "blocking_stages": (
                blocks.loc[blocks["stage"] != "passed", "stage"].value_counts().to_dict()
                if len(blocks)
                else {}
            ),
            "top_reasons": blocking_table(blocks, top=3).to_dict("records"),
            "trades_closed": len(closed),
            "start_equity": start_equity,
            "end_equity": end_equity,
            "pnl": end_equity - start_equity,
            "pnl_pct": (end_equity / start_equity - 1.0) if start_equity else math.nan,
            "realized_pnl": float(closed["net_pnl"].sum()) if len(closed) else 0.0,
            "fees": float(fills["fill_fee"].sum()) if len(fills) else 0.0,
            "slippage": float(fills["fill_slippage_cost"].sum()) if len(fills) else 0.0,
            "max_drawdown": max_drawdown(day_times["equity"], start_equity) if len(day_times) else math.nan,
            "session_drawdown": _session_drawdown(times, start, end, capital),
            "calendar": calendar.describe(),
        }
    )


def _session_drawdown(
    journal: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, capital: float | None
) -> float:
    # From the session's running peak, as the weekly drawdown gate measures it.
    upto = journal[journal["ts"] < end]
    in_day = (upto["ts"] >= start).to_numpy()
    if not in_day.any():
        return math.nan
    equity = upto["equity"].ffill().to_numpy(dtype=float)
    base = float(capital) if capital is not None else float(equity[0])
    return max(0.0, float(np.max(drawdowns(equity, base)[in_day])))

"""Daily shadow health of one UTC day of a session.
"""

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
    round_trips,
)
from labkit.config.schema import ReadinessConfig
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
    """
    start, end = day_bounds(day)
    calendar = calendar or MarketCalendar()
    journal = _columns(journal)
    rows = _between(journal, start, end)
    decisions, expected = coverage(journal, start, end, timeframe_ms, calendar)
    gaps = heartbeat_gaps(journal, timeframe_ms).loc[rows.index] if len(rows) else pd.Series(dtype=float)
    start_equity = _equity_before(journal, start, capital)
    end_equity = float(rows["equity"].iloc[-1]) if len(rows) else start_equity
    fills = journal_fills(rows)  # an exit on its entry's own bar is a fill of its own
    closed = round_trips(journal)
    closed = closed[(closed["exit_ts"] >= start) & (closed["exit_ts"] < end)] if len(closed) else closed
    data_errors = _data_errors(rows)
    # Lines decided long after their bar closed (a fast replay, a catch-up after downtime) are
    # counted here as decisions, and named: the weekly verdict counts them as missing.
    late = ~forward_mask(rows, timeframe_ms, decision_lag_ms(ReadinessConfig(), timeframe_ms))
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
            "data_error_share": data_errors / expected if expected else math.nan,
            "actions": {
                side: int((rows["action"] == side).sum()) if len(rows) else 0 for side in (BUY, SELL)
            },
            "fills": {side: int((fills["fill_side"] == side).sum()) for side in (BUY, SELL)},
            "blocked": int((rows["stage"].fillna("passed") != "passed").sum()) if len(rows) else 0,
            "blocking_stages": (
                rows.loc[rows["stage"] != "passed", "stage"].value_counts().to_dict() if len(rows) else {}
            ),
            "top_reasons": blocking_table(rows, top=3).to_dict("records"),
            "trades_closed": len(closed),
            "start_equity": start_equity,
            "end_equity": end_equity,
            "pnl": end_equity - start_equity,
            "pnl_pct": (end_equity / start_equity - 1.0) if start_equity else math.nan,
            "realized_pnl": float(closed["net_pnl"].sum()) if len(closed) else 0.0,
            "fees": float(fills["fill_fee"].sum()) if len(fills) else 0.0,
            "slippage": float(fills["fill_slippage_cost"].sum()) if len(fills) else 0.0,
            "max_drawdown": max_drawdown(rows["equity"], start_equity) if len(rows) else math.nan,
            "session_drawdown": _session_drawdown(journal, start, end, capital),
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

"""What weighs on a weekly verdict beyond its gates: luck across trials, and the fill rules.

- The deflated Sharpe ratio: the probability that the week's Sharpe ratio beats the best one the
  trials of the same source, symbol and timeframe would give by luck (the user's trial ledger,
  `labkit.analysis.trial_ledger`), so trying many variants is paid for. It is also the eighth
  gate (`labkit.readiness.weekly`).
- The minimum track record length: at this Sharpe ratio, about how many more days are needed
  before it is above zero with 95% confidence.
- The same decisions under the optimistic, base and adversarial execution models
  (`labkit.analysis.execution`): the verdict is judged on base; the adversarial one stands beside
  it, so an edge that vanishes under slightly worse fills is seen for what it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.calendar import MarketCalendar
from labkit.analysis.execution import execution_models, refill
from labkit.analysis.metrics import (
    deflated_sharpe_ratio,
    min_track_record_length,
    sharpe_ratio,
)
from labkit.analysis.periods import week_bounds
from labkit.analysis.trips import _equity_before, round_trips
from labkit.config.schema import ReadinessConfig
from labkit.readiness.times import decided_times
from labkit.readiness.weekly import weekly_readiness


def sharpe_evidence(
    journal: pd.DataFrame,
    week: str,
    timeframe_ms: int,
    calendar: MarketCalendar,
    trials: int,
    sharpe_variance: float,
    capital: float | None = None,
) -> dict[str, Any]:
    """Return the week's Sharpe ratio, its deflated Sharpe ratio and the track record it still needs.

    Returns are the bar-to-bar changes of marked equity within the week (a book's: of its equity at
    each decided time), the first measured from the equity before it. `trials` and
    `sharpe_variance` (per observation) come from the trial registry; with fewer than two trials
    the deflated ratio is the PSR against zero.
    """
    start, end = week_bounds(week)
    # A book's returns are its equity's from one decided time to the next, not line to line.
    journal = decided_times(journal, np.ones(len(journal), dtype=bool)).times
    rows = journal[(journal["ts"] >= start) & (journal["ts"] < end)] if len(journal) else journal
    base = _equity_before(journal, start, capital) if len(journal) else math.nan
    equity = rows["equity"].to_numpy(dtype=float) if len(rows) else np.empty(0)
    curve = np.concatenate([[base], equity])
    returns = np.diff(curve) / curve[:-1] if len(equity) else equity
    per_year = calendar.periods_per_year(timeframe_ms)
    variance = sharpe_variance if sharpe_variance == sharpe_variance else 0.0
    needed = min_track_record_length(returns)
    more = max(0.0, needed - len(returns)) if needed == needed else math.nan
    days = more / calendar.bars_per_day(timeframe_ms) if more == more and not math.isinf(more) else more
    return {
        "sharpe": sharpe_ratio(returns, per_year),
        "annualisation": calendar.annualisation(timeframe_ms),
        "trials": max(1, trials),
        "sharpe_variance": variance,
        "deflated_sharpe": deflated_sharpe_ratio(returns, max(1, trials), variance),
        "returns": len(returns),
        "more_days_needed": days,
        "track_record": _track_record_words(days, needed),
    }


def _track_record_words(days: float, needed: float) -> str:
    if needed != needed:
        return "no Sharpe ratio to judge: too few returns, or none that differ"
    if math.isinf(days):
        return "at this Sharpe ratio (not above zero), no track record is long enough"
    if days <= 0:
        return "the track record is already long enough for this Sharpe ratio"
    return f"at this Sharpe ratio, about {math.ceil(days)} more days are needed"


def execution_check(
    journal: pd.DataFrame,
    bars: pd.DataFrame,
    week: str,
    config: ReadinessConfig,
    timeframe_ms: int,
    capital: float,
    calendar: MarketCalendar,
    fee: float,
    slippage: float,
    risk: Mapping[str, Any] | None = None,
    confidence_floor: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Return the week's verdict under each execution model: outcome, failing gates, net PnL, trades.

    Each model refills the decisions with the session's own sizing: `risk` (its config's ``risk``
    section) and `confidence_floor` (a model's entry threshold), as
    `labkit.analysis.execution.session_sizing` reads them from a saved config. Without `risk`,
    entries keep the units their decisions recorded, or spend all the cash.
    """
    start, end = week_bounds(week)
    out = {}
    for model in execution_models(fee, slippage):
        refilled = refill(journal, bars, model, capital, risk, confidence_floor)
        verdict = weekly_readiness(refilled, week, config, timeframe_ms, capital, calendar)
        trips = round_trips(refilled)
        trips = trips[(trips["exit_ts"] >= start) & (trips["exit_ts"] < end)] if len(trips) else trips
        out[model.name] = {
            "model": model.describe(),
            "outcome": verdict.outcome,
            "failing": [g.name for g in verdict.gates if not g.passed],
            "trades": len(trips),
            "net_pnl": float(trips["net_pnl"].sum()) if len(trips) else 0.0,
            "mean_net_return": float(trips["net_return"].mean()) if len(trips) else math.nan,
        }
    return out

"""Readiness: what a session's journal says about it, per day and per week, and the saved verdicts.

Metrics (`metrics`), round trips and blocks (`trips`), the counterfactual gate ledger
(`counterfactual`), calendar periods (`periods`), a book's journal read per time (`times`), daily health
(`daily`), the weekly promotion gates (`weekly`) and saved verdicts (`verdicts`). The names below
are the ones notebooks use.
"""

from __future__ import annotations

from labkit.analysis.calendar import MarketCalendar, calendar_of, session_calendar
from labkit.analysis.metrics import bootstrap_mean_ci, max_drawdown, probabilistic_sharpe_ratio
from labkit.analysis.periods import coverage, day_bounds, iso_week, week_bounds
from labkit.analysis.trips import blocking_table, reason_code, round_trips
from labkit.readiness.counterfactual import ledger, ledger_summary, would_have_trades
from labkit.readiness.daily import daily_health
from labkit.readiness.verdicts import latest_verdict, save_verdict
from labkit.readiness.weekly import GATE_NAMES, GateResult, WeeklyReadiness, weekly_readiness

__all__ = [
    "MarketCalendar",
    "calendar_of",
    "session_calendar",
    "GATE_NAMES",
    "GateResult",
    "WeeklyReadiness",
    "blocking_table",
    "bootstrap_mean_ci",
    "coverage",
    "daily_health",
    "day_bounds",
    "iso_week",
    "latest_verdict",
    "ledger",
    "ledger_summary",
    "max_drawdown",
    "probabilistic_sharpe_ratio",
    "reason_code",
    "round_trips",
    "save_verdict",
    "week_bounds",
    "weekly_readiness",
    "would_have_trades",
]

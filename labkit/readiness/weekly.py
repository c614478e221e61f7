"""Weekly readiness: the seven promotion gates of an ISO week.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labkit.config import ReadinessConfig
from labkit.readiness.metrics import bootstrap_mean_ci, max_drawdown, probabilistic_sharpe_ratio
from labkit.readiness.periods import _DAY, coverage, week_bounds
from labkit.readiness.trips import (
    _between,
    _clean,
    _columns,
    _data_errors,
    _equity_before,
    blocking_table,
    round_trips,
)

GATE_NAMES = (
    "coverage",
    "activity",
    "positive_edge",
    "edge_stability",
    "drawdown",
    "cost_efficiency",
    "gate_health",
)


@dataclass(frozen=True)
class GateResult:
    """One promotion gate: whether it passed, the figures it judged and the thresholds it used."""

    name: str
    passed: bool
    figures: Mapping[str, float | int | str | None]
    thresholds: Mapping[str, float | int]
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (NaN becomes None)."""
        return _clean(
            {
                "name": self.name,
                "passed": self.passed,
                "figures": dict(self.figures),
                "thresholds": dict(self.thresholds),
                "explanation": self.explanation,
            }
        )


@dataclass(frozen=True)
class WeeklyReadiness:
    """The weekly promotion verdict: the seven promotion gates and what they were computed on."""

    week: str
    start: str
    end: str
    first_bar: str | None
    last_bar: str | None
    decisions: int
    expected: int
    trades: int
    models: tuple[str, ...]
    gates: tuple[GateResult, ...]
    per_day: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    def gate(self, name: str) -> GateResult:
        """Return the gate called `name`."""
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise KeyError(f"no readiness gate {name!r}; gates: {', '.join(GATE_NAMES)}")

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready data (NaN becomes None)."""
        return _clean(
            {
                "week": self.week,
                "passed": self.passed,
                "start": self.start,
                "end": self.end,
                "first_bar": self.first_bar,
                "last_bar": self.last_bar,
                "decisions": self.decisions,
                "expected": self.expected,
                "trades": self.trades,
                "models": list(self.models),
                "gates": [gate.to_dict() for gate in self.gates],
                "per_day": [dict(day) for day in self.per_day],
            }
        )


def weekly_readiness(
    journal: pd.DataFrame, week: str, config: ReadinessConfig, timeframe_ms: int, capital: float | None = None
) -> WeeklyReadiness:
    """Judge one ISO week (``YYYY-Www``) of a journal against the seven promotion gates.

    Trades belong to the week they close in. Each gate is computed even when it cannot pass (too
    few trades, no bars): its figures are then NaN and its explanation says why it failed.
    """
    start, end = week_bounds(week)
    journal = _columns(journal)
    rows = _between(journal, start, end)
    decisions, expected = coverage(journal, start, end, timeframe_ms)
    trips = round_trips(journal)
    trips = trips[(trips["exit_ts"] >= start) & (trips["exit_ts"] < end)] if len(trips) else trips
    returns = trips["net_return"].to_numpy(dtype=float)
    lo = max(start, journal["ts"].iloc[0]) if len(journal) else start
    hi = min(end, journal["ts"].iloc[-1] + pd.Timedelta(milliseconds=timeframe_ms)) if len(journal) else start
    gates = (
        _coverage_gate(decisions, expected, config),
        _activity_gate(len(trips), config),
        _edge_gate(returns, config),
        _stability_gate(trips, returns, lo, hi, config),
        _drawdown_gate(rows, _equity_before(journal, start, capital), config),
        _cost_gate(trips, config),
        _health_gate(rows, config),
    )
    per_day = []
    for offset in range(7):
        day_start = start + offset * _DAY
        made, bars = coverage(journal, day_start, day_start + _DAY, timeframe_ms)
        if bars or made:
            per_day.append(
                {
                    "day": day_start.date().isoformat(),
                    "decisions": made,
                    "expected": bars,
                    "coverage": made / bars if bars else math.nan,
                }
            )
    return WeeklyReadiness(
        week=week,
        start=start.isoformat(),
        end=end.isoformat(),
        first_bar=rows["ts"].iloc[0].isoformat() if len(rows) else None,
        last_bar=rows["ts"].iloc[-1].isoformat() if len(rows) else None,
        decisions=decisions,
        expected=expected,
        trades=len(trips),
        models=tuple(sorted({str(m) for m in rows["model"].dropna()})) if len(rows) else (),
        gates=gates,
        per_day=tuple(per_day),
    )


def _coverage_gate(decisions: int, expected: int, c: ReadinessConfig) -> GateResult:
    share = decisions / expected if expected else math.nan
    passed = bool(expected) and share >= c.min_coverage
    why = (
        f"{decisions} decisions for {expected} bars expected ({share:.1%}); needs >= {c.min_coverage:.0%}"
        if expected
        else "no bars expected: the session did not run this week"
    )
    return GateResult(
        "coverage",
        passed,
        {"coverage": share, "decisions": decisions, "expected": expected},
        {"min_coverage": c.min_coverage},
        why,
    )


def _activity_gate(trades: int, c: ReadinessConfig) -> GateResult:
    passed = trades >= c.min_trades
    why = f"{trades} closed trades; needs >= {c.min_trades} to judge the edge"
    return GateResult("activity", passed, {"trades": trades}, {"min_trades": c.min_trades}, why)


def _edge_gate(returns: np.ndarray, c: ReadinessConfig) -> GateResult:
    mean = float(returns.mean()) if len(returns) else math.nan
    low, high = bootstrap_mean_ci(returns, c.bootstrap_samples, c.bootstrap_seed)
    passed = mean > 0 and low > 0
    if len(returns) < 2:
        why = f"{len(returns)} closed trades: too few for a bootstrap interval of the mean return"
    else:
        why = (
            f"mean net return per trade {mean:.4%}, 95% interval [{low:.4%}, {high:.4%}]; "
            "needs mean > 0 and lower end > 0"
        )
    return GateResult(
        "positive_edge",
        passed,
        {"mean_return": mean, "ci_low": low, "ci_high": high, "trades": len(returns)},
        {"mean_return": 0.0, "ci_low": 0.0},
        why,
    )


def _stability_gate(
    trips: pd.DataFrame, returns: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp, c: ReadinessConfig
) -> GateResult:
    sign = float(np.sign(returns.mean())) if len(returns) else 0.0
    same = 0
    if sign and hi > lo:
        edges = [lo + (hi - lo) * i / c.subperiods for i in range(c.subperiods + 1)]
        for left, right in zip(edges[:-1], edges[1:], strict=True):
            part = trips["net_return"][(trips["exit_ts"] >= left) & (trips["exit_ts"] < right)]
            if len(part) and np.sign(part.mean()) == sign:
                same += 1
    psr = probabilistic_sharpe_ratio(returns)
    passed = same >= c.min_same_sign and psr >= c.min_psr
    word = {1.0: "positive", -1.0: "negative"}.get(sign, "no")
    why = (
        f"{word} edge overall, same sign in {same} of {c.subperiods} sub-periods (needs >= "
        f"{c.min_same_sign}); probabilistic Sharpe ratio "
        + (f"{psr:.3f}" if psr == psr else f"undefined with {len(returns)} trades")
        + f" (needs >= {c.min_psr})"
    )
    return GateResult(
        "edge_stability",
        passed,
        {"same_sign": same, "psr": psr, "subperiods": c.subperiods},
        {"min_same_sign": c.min_same_sign, "min_psr": c.min_psr},
        why,
    )


def _drawdown_gate(rows: pd.DataFrame, start_equity: float, c: ReadinessConfig) -> GateResult:
    dd = max_drawdown(rows["equity"], start_equity) if len(rows) else math.nan
    passed = dd <= c.max_drawdown
    why = (
        f"max drawdown {dd:.2%} of the peak; needs <= {c.max_drawdown:.0%}"
        if dd == dd
        else "no equity recorded this week"
    )
    return GateResult("drawdown", passed, {"max_drawdown": dd}, {"max_drawdown": c.max_drawdown}, why)


def _cost_gate(trips: pd.DataFrame, c: ReadinessConfig) -> GateResult:
    costs = float(trips["fees"].sum() + trips["slippage"].sum()) if len(trips) else 0.0
    gross = trips["gross_pnl"] if len(trips) else pd.Series(dtype=float)
    profit = float(gross[gross > 0].sum())
    share = costs / profit if profit > 0 else math.nan
    passed = profit > 0 and share <= c.max_cost_share
    why = (
        f"fees and slippage {costs:.2f} are {share:.1%} of the gross profit {profit:.2f} of the "
        f"winning trades; needs <= {c.max_cost_share:.0%}"
        if profit > 0
        else f"no gross profit to pay the costs ({costs:.2f}) from"
    )
    return GateResult(
        "cost_efficiency",
        passed,
        {"cost_share": share, "costs": costs, "gross_profit": profit},
        {"max_cost_share": c.max_cost_share},
        why,
    )


def _health_gate(rows: pd.DataFrame, c: ReadinessConfig) -> GateResult:
    total = len(rows)
    table = blocking_table(rows, top=1)
    top_share = float(table["share"].iloc[0]) if len(table) else (0.0 if total else math.nan)
    top_reason = f"{table['stage'].iloc[0]}/{table['reason'].iloc[0]}" if len(table) else None
    errors = _data_errors(rows)
    error_share = errors / total if total else math.nan
    passed = (
        bool(total)
        and top_share <= c.max_reason_share
        and (errors == 0 or error_share < c.max_data_error_share)
    )
    if not total:
        why = "no decisions this week"
    else:
        why = (
            f"top block {top_reason or 'none'} covers {top_share:.1%} of {total} decisions "
            f"(needs <= {c.max_reason_share:.0%}); data errors {error_share:.2%} "
            f"(needs < {c.max_data_error_share:.0%})"
        )
    return GateResult(
        "gate_health",
        passed,
        {
            "top_reason_share": top_share,
            "top_reason": top_reason,
            "data_error_share": error_share,
            "data_errors": errors,
        },
        {"max_reason_share": c.max_reason_share, "max_data_error_share": c.max_data_error_share},
        why,
    )

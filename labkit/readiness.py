"""Readiness metrics from a decision journal: round trips, daily shadow health, weekly promotion gates.

Everything here reads a journal frame (`labkit.journal.read_journal`) and returns plain figures, so
the report notebooks, `labkit transition` and the tests all judge a session the same way. The only
files touched are the weekly verdicts under ``data/sessions/<session>/readiness/``.

Bars expected
-------------
A period (a UTC day or an ISO week) expects one decision per bar open of the timeframe's grid inside
its *window*: from the later of the period's start and the session's first decided bar, to the
earlier of the period's end and the end of the session's last decided bar. A session that had not
started, or has not yet reached a bar, is not blamed for it; bars missing in between are. A session
that stopped for good inside the period is judged up to its last decision; a session that stopped
and came back shows the outage both as missing bars (when the source had no bars to catch up on) and
as heartbeat gaps (late decisions).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.config import ReadinessConfig
from labkit.errors import ConfigError
from labkit.state import read_json, write_json_atomic
from labkit.timeutil import iso_ms, now_ms

DATA_ERRORS = ("stale_data", "data_unavailable")
GATE_NAMES = (
    "coverage",
    "activity",
    "positive_edge",
    "edge_stability",
    "drawdown",
    "cost_efficiency",
    "gate_health",
)
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = pd.Timedelta(days=1)
_TRIP_COLUMNS = (
    "entry_ts",
    "exit_ts",
    "units",
    "entry_price",
    "exit_price",
    "entry_cost",
    "fees",
    "slippage",
    "gross_pnl",
    "net_pnl",
    "net_return",
)


def reason_code(reason: str | None) -> str | None:
    """Return a block reason without its detail suffix, so that counts group by cause.

    Examples
    --------
    >>> reason_code("insufficient_data:12")
    'insufficient_data'
    >>> reason_code("halted:daily_loss_limit")
    'halted'
    """
    if reason is None or (isinstance(reason, float) and math.isnan(reason)):
        return None
    return str(reason).split(":", 1)[0]


def round_trips(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the closed trades of a journal, one row per round trip, in exit order.

    A trip opens with the first BUY fill on a flat book (later BUYs add to it) and closes with the
    SELL fill that flattens it. ``entry_cost`` is the cash spent, fees included; ``net_pnl`` is the
    exit's net proceeds minus the entry cost; ``gross_pnl`` is the same trade without fees and
    slippage (``net_pnl + fees + slippage``); ``net_return`` is ``net_pnl / entry_cost``. A position
    still open at the end, or a SELL whose entry lies before the frame, is not a closed trade.
    """
    trips: list[dict[str, Any]] = []
    journal = _columns(journal)
    if journal.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _TRIP_COLUMNS})
    fills = journal[journal["fill_side"].isin(("BUY", "SELL"))]
    open_trip: dict[str, Any] | None = None
    for row in fills.itertuples(index=False):
        units, price = float(row.fill_units), float(row.fill_price)
        fee, slip = float(row.fill_fee or 0.0), float(row.fill_slippage_cost or 0.0)
        if row.fill_side == "BUY":
            if open_trip is None:
                open_trip = {
                    "entry_ts": row.ts,
                    "units": 0.0,
                    "notional": 0.0,
                    "entry_cost": 0.0,
                    "fees": 0.0,
                    "slippage": 0.0,
                }
            open_trip["units"] += units
            open_trip["notional"] += units * price
            open_trip["entry_cost"] += units * price + fee
            open_trip["fees"] += fee
            open_trip["slippage"] += slip
            continue
        if open_trip is None:
            continue
        net = units * price - fee - open_trip["entry_cost"]
        fees, slippage = open_trip["fees"] + fee, open_trip["slippage"] + slip
        trips.append(
            {
                "entry_ts": open_trip["entry_ts"],
                "exit_ts": row.ts,
                "units": units,
                "entry_price": open_trip["notional"] / open_trip["units"],
                "exit_price": price,
                "entry_cost": open_trip["entry_cost"],
                "fees": fees,
                "slippage": slippage,
                "gross_pnl": net + fees + slippage,
                "net_pnl": net,
                "net_return": net / open_trip["entry_cost"],
            }
        )
        open_trip = None
    if not trips:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _TRIP_COLUMNS})
    return pd.DataFrame(trips, columns=list(_TRIP_COLUMNS))


def blocking_table(journal: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Return blocked decisions by stage and reason code: ``count`` and ``share`` of all decisions.

    Reasons are grouped by `reason_code` (``insufficient_data:7`` counts as ``insufficient_data``).
    """
    columns = ["stage", "reason", "count", "share"]
    journal = _columns(journal)
    if journal.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    blocked = journal[journal["stage"].fillna("passed") != "passed"]
    table = (
        blocked.assign(reason=[reason_code(r) for r in blocked["reason"]])
        .groupby(["stage", "reason"], dropna=False)
        .size()
        .rename("count")
        .reset_index()
    )
    table["share"] = table["count"] / len(journal)
    table = table.sort_values(["count", "stage", "reason"], ascending=[False, True, True])
    return table.head(top).reset_index(drop=True) if top else table.reset_index(drop=True)


def max_drawdown(equity: Sequence[float] | pd.Series, start: float | None = None) -> float:
    """Return the largest fall from a running peak, as a fraction of the peak (NaN when empty).

    `start` is the equity before the first value (it can be the peak).

    Examples
    --------
    >>> max_drawdown([100.0, 120.0, 90.0, 130.0], start=100.0)
    0.25
    """
    values = np.asarray(equity, dtype=float)
    if start is not None:
        values = np.concatenate([[float(start)], values])
    if not len(values):
        return math.nan
    peak = np.maximum.accumulate(values)
    return float(np.max(1.0 - values / peak))


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Return a percentile bootstrap interval of the mean; NaNs when there are fewer than 2 values.

    The resampling is seeded, so the same values give the same interval.

    Examples
    --------
    >>> low, high = bootstrap_mean_ci([0.01, 0.02, -0.005, 0.015, 0.004], samples=1000, seed=0)
    >>> round(low, 4), round(high, 4)
    (0.001, 0.0158)
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // len(data))  # bound the index matrix to ~16 MB
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        means[start : start + size] = data[rng.integers(0, len(data), size=(size, len(data)))].mean(1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def probabilistic_sharpe_ratio(returns: Sequence[float] | np.ndarray, benchmark: float = 0.0) -> float:
    """Return the probability that the true Sharpe ratio of `returns` exceeds `benchmark`.

    Bailey & López de Prado (2012): ``PSR = Φ((SR - SR*) √(n-1) / √(1 - γ3 SR + (γ4 - 1)/4 SR²))``
    with the per-observation Sharpe ratio ``SR``, skewness ``γ3`` and (non-excess) kurtosis ``γ4``.
    NaN with fewer than 3 returns, no dispersion, or moments that make the variance non-positive.

    Examples
    --------
    >>> round(probabilistic_sharpe_ratio([0.01, 0.02, -0.005, 0.015, 0.004]), 4)
    0.9314
    """
    r = np.asarray(returns, dtype=float)
    n = len(r)
    if n < 3:
        return math.nan
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return math.nan
    sr = float(r.mean()) / sd
    z = (r - r.mean()) / r.std(ddof=0)
    skew, kurt = float(np.mean(z**3)), float(np.mean(z**4))
    variance = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not variance > 0:
        return math.nan
    stat = (sr - benchmark) * math.sqrt(n - 1) / math.sqrt(variance)
    return 0.5 * (1.0 + math.erf(stat / math.sqrt(2.0)))


def iso_week(ts: pd.Timestamp) -> str:
    """Return the ISO week of an instant, ``YYYY-Www``.

    Examples
    --------
    >>> iso_week(pd.Timestamp("2026-01-05T10:00Z"))
    '2026-W02'
    """
    year, week, _ = ts.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the half-open UTC range ``[Monday 00:00, next Monday 00:00)`` of an ISO week."""
    match = _WEEK.match(week)
    try:
        assert match is not None
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except (AssertionError, ValueError):
        raise ConfigError(f"week: {week!r} is not an ISO week; write YYYY-Www, e.g. 2026-W02") from None
    start = pd.Timestamp(monday.isoformat(), tz="UTC")
    return start, start + 7 * _DAY


def day_bounds(day: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the half-open UTC range of a day written ``YYYY-MM-DD``."""
    try:
        start = pd.Timestamp(date.fromisoformat(day).isoformat(), tz="UTC")
    except (TypeError, ValueError):
        raise ConfigError(f"date: {day!r} is not a day; write YYYY-MM-DD, e.g. 2026-01-05") from None
    return start, start + _DAY


def coverage(
    journal: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, timeframe_ms: int
) -> tuple[int, int]:
    """Return (decisions made, bars expected) in ``[start, end)``; see the module notes on windows."""
    if journal.empty:
        return 0, 0
    tf = pd.Timedelta(milliseconds=timeframe_ms)
    lo = max(start, journal["ts"].iloc[0])
    hi = min(end, journal["ts"].iloc[-1] + tf)
    if hi <= lo:
        return 0, 0
    lo_ms, hi_ms = _ms(lo), _ms(hi)
    expected = (hi_ms - 1) // timeframe_ms - (-(-lo_ms // timeframe_ms)) + 1
    in_range = journal["ts"][(journal["ts"] >= start) & (journal["ts"] < end)]
    return int(in_range.nunique()), int(max(expected, 0))


def heartbeat_gaps(journal: pd.DataFrame, timeframe_ms: int) -> pd.Series:
    """Return, per decision, the seconds since the previous decision was taken when that exceeds
    two bars (a stalled or restarted session), else 0."""
    if journal.empty:
        return pd.Series(dtype="float64")
    gaps = journal["decided_at"].diff().dt.total_seconds().fillna(0.0)
    return gaps.where(gaps > 2 * timeframe_ms / 1000.0, 0.0)


def daily_health(
    journal: pd.DataFrame, day: str, timeframe_ms: int, capital: float | None = None
) -> dict[str, Any]:
    """Return DESIGN.md's daily shadow health of one UTC day (``YYYY-MM-DD``) of a journal.

    ``decisions``/``expected``/``coverage`` follow the module's window rule: the day's bars from
    the later of midnight and the session's first bar to the earlier of the day's end and the end of
    the session's last decided bar. ``heartbeat_gaps`` counts decisions taken more than two bars
    after the previous one (clock-paced sessions; a fast replay has none). ``data_errors`` counts
    ``stale_data`` and ``data_unavailable`` blocks; the warm-up's ``insufficient_data`` is not one.
    ``pnl`` is the day's change of marked equity, from the last equity before the day (or
    `capital`, or the day's first equity); ``max_drawdown`` is measured from the peak within the day.
    Undefined figures are None.
    """
    start, end = day_bounds(day)
    journal = _columns(journal)
    rows = _between(journal, start, end)
    decisions, expected = coverage(journal, start, end, timeframe_ms)
    gaps = heartbeat_gaps(journal, timeframe_ms).loc[rows.index] if len(rows) else pd.Series(dtype=float)
    start_equity = _equity_before(journal, start, capital)
    end_equity = float(rows["equity"].iloc[-1]) if len(rows) else start_equity
    fills = rows[rows["fill_side"].notna()]
    closed = round_trips(journal)
    closed = closed[(closed["exit_ts"] >= start) & (closed["exit_ts"] < end)] if len(closed) else closed
    data_errors = _data_errors(rows)
    return _clean(
        {
            "day": day,
            "first_bar": rows["ts"].iloc[0].isoformat() if len(rows) else None,
            "last_bar": rows["ts"].iloc[-1].isoformat() if len(rows) else None,
            "decisions": decisions,
            "expected": expected,
            "coverage": decisions / expected if expected else math.nan,
            "missing_bars": max(expected - decisions, 0),
            "heartbeat_gaps": int((gaps > 0).sum()),
            "max_gap_seconds": float(gaps.max()) if len(gaps) else 0.0,
            "data_errors": data_errors,
            "data_error_share": data_errors / len(rows) if len(rows) else math.nan,
            "actions": {
                side: int((rows["action"] == side).sum()) if len(rows) else 0 for side in ("BUY", "SELL")
            },
            "fills": {side: int((fills["fill_side"] == side).sum()) for side in ("BUY", "SELL")},
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
        }
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
    """The weekly promotion verdict: the seven gates of DESIGN.md and what they were computed on."""

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


def save_verdict(home: Path, session: str, result: WeeklyReadiness) -> Path:
    """Write the verdict to ``data/sessions/<session>/readiness/weekly-<week>.json`` atomically."""
    from labkit.home import code_version

    path = _verdict_dir(home, session) / f"weekly-{result.week}.json"
    write_json_atomic(
        path,
        {
            "session": session,
            "saved_at": iso_ms(now_ms()),
            "code_version": code_version(),
            **result.to_dict(),
        },
    )
    return path


def latest_verdict(home: Path, session: str) -> dict[str, Any] | None:
    """Return the saved verdict of the latest ISO week, or None when there is none."""
    directory = _verdict_dir(home, session)
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("weekly-*.json"), reverse=True):
        verdict = read_json(path)
        if verdict is not None:
            return verdict
    return None


def _verdict_dir(home: Path, session: str) -> Path:
    from labkit.state import session_paths

    return session_paths(home, session).root / "readiness"


_NEEDED = {
    "ts": "datetime64[ns, UTC]",
    "decided_at": "datetime64[ns, UTC]",
    "action": "object",
    "stage": "object",
    "reason": "object",
    "equity": "float64",
    "price": "float64",
    "model": "object",
    "fill_side": "object",
    "fill_units": "float64",
    "fill_price": "float64",
    "fill_fee": "float64",
    "fill_slippage_cost": "float64",
    "fill_pnl": "float64",
}


def _columns(journal: pd.DataFrame) -> pd.DataFrame:
    # An empty journal (a session that decided nothing yet) lacks the flattened fill columns.
    missing = {
        name: pd.Series(dtype=dtype, index=journal.index)
        for name, dtype in _NEEDED.items()
        if name not in journal.columns
    }
    return journal.assign(**missing) if missing else journal


def _between(journal: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if journal.empty:
        return journal
    return journal[(journal["ts"] >= start) & (journal["ts"] < end)]


def _equity_before(journal: pd.DataFrame, start: pd.Timestamp, capital: float | None) -> float:
    before = journal["equity"][journal["ts"] < start] if len(journal) else journal.get("equity")
    if before is not None and len(before):
        return float(before.iloc[-1])
    if capital is not None:
        return float(capital)
    after = journal["equity"][journal["ts"] >= start] if len(journal) else None
    return float(after.iloc[0]) if after is not None and len(after) else math.nan


def _data_errors(rows: pd.DataFrame) -> int:
    if rows.empty:
        return 0
    return int(((rows["stage"] == "data") & rows["reason"].isin(DATA_ERRORS)).sum())


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value

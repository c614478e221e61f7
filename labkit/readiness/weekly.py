"""Weekly readiness: the eight promotion gates of an ISO week, judged on forward, out-of-sample evidence.

Each gate is judged on the whole ISO week of the market's calendar (`labkit.analysis.calendar`):
coverage counts every bar the calendar has in the week, edge stability cuts the week's trading time
into equal parts, drawdown is measured from the session's running peak (the whole journal up to
the week's end), cost efficiency compares costs with the gross PnL of every closed trade, gate
health counts blocks among entry proposals made when flat, and the deflated Sharpe ratio pays for
the trials of the market. A week in which the session decided nothing is empty: it gets no
verdict. Equity is marked to market at bar closes, without the exit fee.

Only *forward* decisions are evidence: those made within ``readiness.max_decision_lag`` of their
bar's close (`forward_mask`). A fast replay of a past week, or a catch-up after downtime, decides
bars long after they closed: those lines are counted as replays and left out of every gate but
drawdown (a loss is a loss). A week without forward decisions is refused as ``replay_only``; a
week that overlaps a model's training window plus its embargo is refused as ``in_sample``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labkit.analysis.calendar import MarketCalendar, bar_times
from labkit.analysis.formatting import money
from labkit.analysis.metrics import (
    bootstrap_mean_ci,
    deflated_sharpe_ratio,
    drawdowns,
    max_drawdown,
    probabilistic_sharpe_ratio,
)
from labkit.analysis.periods import _DAY, coverage, week_bounds
from labkit.analysis.trips import (
    _between,
    _clean,
    _columns,
    _data_errors,
    _equity_before,
    entry_blocks,
)
from labkit.data.bars import quote_currency
from labkit.readiness.times import DecidedTimes, closed_trips, decided_times

if TYPE_CHECKING:  # a report reads verdicts without loading every config (issue 17)
    from labkit.config.schema import ReadinessConfig

EQUITY_BASIS = "equity marked to market at bar closes, without the exit fee"
GATE_NAMES = (
    "coverage",
    "activity",
    "positive_edge",
    "edge_stability",
    "drawdown",
    "cost_efficiency",
    "gate_health",
    "deflated_sharpe",
)
# What disqualifies a week before its gates are read: evidence that is not evidence.
REFUSALS = ("replay_only", "in_sample", "config_changed")
# A decision stamped this much before its bar's close was not decided at the close either: a clock
# a little ahead is forgiven, a fast run over bars the synthetic market made up ahead is not.
_EARLY_MS = 2_000


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Return the gate `to_dict` wrote."""
        return cls(
            str(data["name"]),
            bool(data["passed"]),
            dict(data.get("figures", {})),
            dict(data.get("thresholds", {})),
            str(data.get("explanation", "")),
        )


@dataclass(frozen=True)
class WeeklyReadiness:
    """The weekly promotion verdict: the eight promotion gates and what they were computed on.

    `calendar` describes the market's calendar the week was counted in and `thresholds` the
    ``readiness`` settings the gates were judged with. `decisions` counts the forward decisions on
    the calendar's bars; `replays` the week's lines decided too late to be evidence. `refusals`
    (``replay_only``, ``in_sample``) disqualify the week whatever its gates say. `what_if` names
    the thresholds that differ from the session's own: such a verdict is a what-if, never READY.
    """

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
    calendar: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    # Shown beside the gates, not judged: the deflated Sharpe ratio and the track record still
    # needed (`labkit.readiness.evidence.sharpe_evidence`), and the verdict under each execution
    # model (`execution_check`).
    evidence: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    # What the verdict was computed from: short SHA-256 hashes of the session's files and models.
    provenance: Mapping[str, Any] = field(default_factory=dict)
    replays: int = 0
    refusals: tuple[Mapping[str, str], ...] = ()
    what_if: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the session decided nothing in the week: then there is no verdict."""
        return self.first_bar is None

    @property
    def passed(self) -> bool:
        return not self.empty and not self.refusals and all(gate.passed for gate in self.gates)

    @property
    def outcome(self) -> str:
        """Return ``READY``, ``NOT READY``, ``empty`` or ``what-if`` (judged with other thresholds)."""
        if self.empty:
            return "empty"
        if self.what_if:
            return "what-if"
        return "READY" if self.passed else "NOT READY"

    def why(self) -> str:
        """Return in words why the week is not READY ("" when it is): refusals first, then gates."""
        parts = [f"a what-if, judged with thresholds other than the session's: {'; '.join(self.what_if)}"]
        parts = parts if self.what_if else []
        parts += [str(r["explanation"]) for r in self.refusals]
        failing = [g.name for g in self.gates if not g.passed]
        if self.empty:
            return "the session decided nothing in the week"
        if failing:
            parts.append(f"failing gates: {', '.join(failing)}")
        return "; ".join(parts)

    @property
    def reasons(self) -> list[str]:
        """Return why the week is not READY: its refusals' codes, then its failing gates' names."""
        return [str(r["code"]) for r in self.refusals] + [g.name for g in self.gates if not g.passed]

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
                "outcome": self.outcome,
                "empty": self.empty,
                "start": self.start,
                "end": self.end,
                "first_bar": self.first_bar,
                "last_bar": self.last_bar,
                "decisions": self.decisions,
                "expected": self.expected,
                "trades": self.trades,
                "models": list(self.models),
                "calendar": dict(self.calendar),
                "equity": EQUITY_BASIS,
                "thresholds": dict(self.thresholds),
                "gates": [gate.to_dict() for gate in self.gates],
                "per_day": [dict(day) for day in self.per_day],
                "evidence": dict(self.evidence),
                "execution": dict(self.execution),
                "provenance": dict(self.provenance),
                "replays": self.replays,
                "refusals": [dict(r) for r in self.refusals],
                "what_if": list(self.what_if),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeeklyReadiness:
        """Return the verdict `to_dict` wrote (a saved verdict file, read back)."""
        return cls(
            week=str(data["week"]),
            start=str(data["start"]),
            end=str(data["end"]),
            first_bar=data.get("first_bar"),
            last_bar=data.get("last_bar"),
            decisions=int(data.get("decisions", 0)),
            expected=int(data.get("expected", 0)),
            trades=int(data.get("trades", 0)),
            models=tuple(data.get("models", ())),
            gates=tuple(GateResult.from_dict(g) for g in data.get("gates", ())),
            per_day=tuple(data.get("per_day", ())),
            calendar=dict(data.get("calendar", {})),
            thresholds=dict(data.get("thresholds", {})),
            evidence=dict(data.get("evidence") or {}),
            execution=dict(data.get("execution") or {}),
            provenance=dict(data.get("provenance") or {}),
            replays=int(data.get("replays") or 0),
            refusals=tuple(dict(r) for r in data.get("refusals") or ()),
            what_if=tuple(str(w) for w in data.get("what_if") or ()),
        )


def weekly_readiness(
    journal: pd.DataFrame,
    week: str,
    config: ReadinessConfig,
    timeframe_ms: int,
    capital: float | None = None,
    calendar: MarketCalendar | None = None,
    *,
    trials: int = 1,
    sharpe_variance: float = math.nan,
    in_sample: Sequence[InSample] = (),
    what_if: Sequence[str] = (),
    doubts: Sequence[Mapping[str, str]] = (),
) -> WeeklyReadiness:
    """Judge one ISO week (``YYYY-Www``) of a journal against the eight promotion gates.

    Parameters
    ----------
    journal
        The session's whole journal (`labkit.engine.journal.read_journal`); drawdown needs the bars
        before the week to know the session's peak.
    week
        The ISO week, ``YYYY-Www``.
    config
        The thresholds (the ``readiness`` section); the verdict records them.
    timeframe_ms
        The bar length.
    capital
        The starting equity, the first peak (default: the first equity recorded).
    calendar
        The market's calendar (default 24/7), which says what bars the week has.
    trials, sharpe_variance
        The trials of the market's family and the variance of their per-observation Sharpe ratios
        (`labkit.research.trials.trial_stats`), for the deflated Sharpe ratio.
    in_sample
        The spans a model that decided was trained on, embargo included: a week overlapping one
        is refused (``in_sample``).
    what_if
        The thresholds that differ from the session's own, as words: the verdict is a what-if.
    doubts
        Further refusals (``code``, ``explanation``) found in the session's files, such as a
        ``config.json`` edited after the session was created (``config_changed``).

    A book's journal (a line per time and symbol) is read per time (`labkit.readiness.times`):
    decisions are the times every symbol decided, drawdown and returns are the book's equity's, and
    trades are every symbol's round trips. Only forward decisions (`forward_mask`) are evidence;
    trades count when the lines recording their entry and exit fills were forward. Trades belong
    to the week they close in. Each gate is computed even when it cannot pass (too few trades, no
    bars): its figures are then NaN and its explanation says why it failed.
    """
    start, end = week_bounds(week)
    calendar = calendar or MarketCalendar()
    journal = _columns(journal)
    # A book's lines are read per time (`labkit.readiness.times`): a single symbol's are its times.
    read = decided_times(journal, forward_mask(journal, timeframe_ms, decision_lag_ms(config, timeframe_ms)))
    times, forward = read.times, read.forward
    rows_all = _between(journal, start, end)
    rows = _between(journal[read.line_forward], start, end)
    in_week = ((times["ts"] >= start) & (times["ts"] < end)).to_numpy() if len(times) else forward
    forward_in_week = int((forward & in_week).sum())
    # `coverage` reads the times only: slicing one column is cheaper than slicing them all.
    evidence = times.loc[forward, ["ts"]]
    decisions, expected = coverage(evidence, start, end, timeframe_ms, calendar)
    trips = _forward_trips(journal, read)
    trips = trips[(trips["exit_ts"] >= start) & (trips["exit_ts"] < end)] if len(trips) else trips
    returns = trips["net_return"].to_numpy(dtype=float)
    unit = quote_currency(str(journal["symbol"].iloc[-1])) if len(journal) and "symbol" in journal else ""
    edges = calendar.split(start, end, config.subperiods, timeframe_ms)
    gates = (
        _coverage_gate(decisions, expected, config),
        _activity_gate(len(trips), config),
        _edge_gate(returns, config),
        _stability_gate(trips, returns, edges, config),
        _drawdown_gate(times, start, end, capital, config, unit),
        _cost_gate(trips, rows, config, unit),
        # Every symbol could have a data error at every bar: a book's share is of its cells.
        _health_gate(rows, expected * read.symbols, config),
        _deflated_sharpe_gate(
            week_returns(times, forward, start, end, capital), trials, sharpe_variance, config
        ),
    )
    replays = int(in_week.sum()) - forward_in_week
    return WeeklyReadiness(
        week=week,
        start=start.isoformat(),
        end=end.isoformat(),
        first_bar=rows_all["ts"].iloc[0].isoformat() if len(rows_all) else None,
        last_bar=rows_all["ts"].iloc[-1].isoformat() if len(rows_all) else None,
        decisions=decisions,
        expected=expected,
        trades=len(trips),
        models=tuple(sorted({str(m) for m in rows_all["model"].dropna().unique()})) if len(rows_all) else (),
        gates=gates,
        per_day=tuple(_per_day(evidence, start, timeframe_ms, calendar)),
        calendar={**calendar.to_dict(), "annualisation": calendar.annualisation(timeframe_ms)},
        thresholds=config.model_dump(mode="json"),
        replays=replays,
        refusals=(*_refusals(forward_in_week, replays, start, end, in_sample), *(dict(d) for d in doubts)),
        what_if=tuple(what_if),
    )


# A model's in-sample span: its id, and its training window plus embargo as epoch ms [since, until).
InSample = tuple[str, int, int]


def decision_lag_ms(config: ReadinessConfig, timeframe_ms: int) -> int:
    """Return how late after its bar's close a decision may be and still be forward evidence.

    ``readiness.max_decision_lag`` (seconds) when set, else one bar length, at least 60 s.

    Examples
    --------
    >>> from labkit.config.schema import ReadinessConfig
    >>> decision_lag_ms(ReadinessConfig(), 1_000), decision_lag_ms(ReadinessConfig(), 300_000)
    (60000, 300000)
    """
    if config.max_decision_lag is not None:
        return int(config.max_decision_lag * 1000)
    return max(timeframe_ms, 60_000)


def forward_mask(journal: pd.DataFrame, timeframe_ms: int, lag_ms: int) -> np.ndarray:
    """Return, per journal line, whether it was decided as its bar closed: forward evidence.

    A line is forward when ``decided_at`` falls within `lag_ms` after its bar's close
    (``ts`` + `timeframe_ms`), allowing a clock two seconds fast. A fast replay of a past week
    decides every bar long after its close; a catch-up after downtime decides its backlog late;
    a replay of bars made up ahead of time decides them before they close: none is forward.
    A line without ``decided_at`` is not forward.
    """
    if journal.empty or "decided_at" not in journal.columns:
        return np.zeros(len(journal), dtype=bool)
    closes = bar_times(journal) + timeframe_ms
    decided = journal["decided_at"]
    known = decided.notna().to_numpy()
    stamps = np.zeros(len(journal), dtype="int64")
    if known.any():
        stamps[known] = bar_times(journal.loc[known, ["decided_at"]].rename(columns={"decided_at": "ts"}))
    late = stamps - closes
    return known & (late >= -_EARLY_MS) & (late <= lag_ms)


def week_returns(
    journal: pd.DataFrame, forward: np.ndarray, start: pd.Timestamp, end: pd.Timestamp, capital: float | None
) -> np.ndarray:
    """Return the bar-to-bar returns of marked equity at the week's forward lines.

    The first line's return is measured from the equity before the week (or `capital`); the returns
    of replayed lines are left out, not the equity they moved.
    """
    if journal.empty:
        return np.empty(0)
    inside = ((journal["ts"] >= start) & (journal["ts"] < end)).to_numpy()
    equity = journal["equity"].to_numpy(dtype=float)[inside]
    if not len(equity):
        return np.empty(0)
    curve = np.concatenate([[_equity_before(journal, start, capital)], equity])
    returns = np.diff(curve) / curve[:-1]
    return returns[np.asarray(forward, dtype=bool)[inside]]


def _forward_trips(journal: pd.DataFrame, read: DecidedTimes) -> pd.DataFrame:
    trips = closed_trips(journal)
    if not len(trips) or read.line_forward.all():
        return trips
    forward = read.forward_times()
    return trips[trips["entry_ts"].isin(forward) & trips["exit_ts"].isin(forward)]


def _refusals(
    forward: int, replays: int, start: pd.Timestamp, end: pd.Timestamp, in_sample: Sequence[InSample]
) -> list[dict[str, str]]:
    found = []
    if replays and not forward:
        found.append(
            {
                "code": "replay_only",
                "explanation": (
                    f"the week was a replay: all {replays} decisions were made long after their bars "
                    "closed (a fast run over past bars, or a catch-up), so they are a backtest, not a "
                    "paper record; paper evidence comes from a session deciding bars as they close"
                ),
            }
        )
    lo, hi = _ms_of(start), _ms_of(end)
    for model, since, until in in_sample:
        if since < hi and until > lo:
            found.append(
                {
                    "code": "in_sample",
                    "explanation": (
                        f"the week overlaps what model {model} was trained on "
                        f"({_day(since)} to {_day(until)}, the label horizon's embargo included): a "
                        "model graded on data it learnt from looks better than it is; judge a week "
                        "after that"
                    ),
                }
            )
    return found


def _ms_of(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _day(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%MZ")


def _per_day(
    journal: pd.DataFrame, start: pd.Timestamp, timeframe_ms: int, calendar: MarketCalendar
) -> list[dict[str, Any]]:
    days = []
    times = journal[["ts"]]  # all `coverage` reads (`_columns` made sure it is there)
    for offset in range(7):
        day_start = start + offset * _DAY
        made, bars = coverage(times, day_start, day_start + _DAY, timeframe_ms, calendar)
        if bars or made:
            days.append(
                {
                    "day": day_start.date().isoformat(),
                    "decisions": made,
                    "expected": bars,
                    "coverage": made / bars if bars else math.nan,
                }
            )
    return days


def _coverage_gate(decisions: int, expected: int, c: ReadinessConfig) -> GateResult:
    share = decisions / expected if expected else math.nan
    passed = bool(expected) and share >= c.min_coverage
    why = (
        f"{decisions} forward decisions for the {expected} bars the market had this week ({share:.1%}; "
        f"days the session did not run, and replays, count as missing); needs >= {c.min_coverage:.0%}"
        if expected
        else "the market's calendar has no bars this week"
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
    trips: pd.DataFrame, returns: np.ndarray, edges: list[pd.Timestamp], c: ReadinessConfig
) -> GateResult:
    sign = float(np.sign(returns.mean())) if len(returns) else 0.0
    same = 0
    if sign:
        for left, right in zip(edges[:-1], edges[1:], strict=True):
            part = trips["net_return"][(trips["exit_ts"] >= left) & (trips["exit_ts"] < right)]
            if len(part) and np.sign(part.mean()) == sign:
                same += 1
    psr = probabilistic_sharpe_ratio(returns)
    passed = same >= c.min_same_sign and psr >= c.min_psr
    word = {1.0: "positive", -1.0: "negative"}.get(sign, "no")
    why = (
        f"{word} edge overall, same sign in {same} of {c.subperiods} equal parts of the week's "
        f"trading time (needs >= {c.min_same_sign}); probabilistic Sharpe ratio of the trades "
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


def _drawdown_gate(
    journal: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    capital: float | None,
    c: ReadinessConfig,
    unit: str,
) -> GateResult:
    # The peak is the session's, not the week's: a week spent deep under an earlier high is judged
    # from that high, so the whole journal up to the week's end is read.
    upto = journal[journal["ts"] < end]
    in_week = (upto["ts"] >= start).to_numpy()
    equity = upto["equity"].ffill().to_numpy(dtype=float)
    if not in_week.any():
        dd, peak, own = math.nan, math.nan, math.nan
    else:
        base = float(capital) if capital is not None else float(equity[0])
        falls = drawdowns(equity, base)[in_week]
        at = int(np.argmax(falls))
        dd = max(0.0, float(falls[at]))
        peak = max(base, float(np.max(equity[: int(np.flatnonzero(in_week)[at]) + 1])))
        own = max_drawdown(equity[in_week], _equity_before(journal, start, capital))
    passed = dd <= c.max_drawdown
    why = (
        f"max drawdown {dd:.2%} from the session's running peak ({money(peak, unit)}); "
        f"needs <= {c.max_drawdown:.0%} (from the week's own peak alone: {own:.2%})"
        if dd == dd
        else "no equity recorded this week"
    )
    return GateResult(
        "drawdown",
        passed,
        {"max_drawdown": dd, "peak_equity": peak, "week_drawdown": own},
        {"max_drawdown": c.max_drawdown},
        why,
    )


def _cost_gate(trips: pd.DataFrame, rows: pd.DataFrame, c: ReadinessConfig, unit: str) -> GateResult:
    costs = float(trips["fees"].sum() + trips["slippage"].sum()) if len(trips) else 0.0
    gross = float(trips["gross_pnl"].sum()) if len(trips) else 0.0
    fills = rows[rows["fill_side"].notna()] if len(rows) else rows
    charged = float(
        fills["fill_fee"].fillna(0).abs().sum() + fills["fill_slippage_cost"].fillna(0).abs().sum()
    )
    costless = len(fills) > 0 and charged == 0.0
    share = costs / gross if gross > 0 else math.nan
    passed = not costless and gross > 0 and share <= c.max_cost_share
    if costless:
        why = (
            f"the week's {len(fills)} fills carry no fees or slippage: a costless record is not "
            "judged (shadow sessions recorded before their fills had costs are such records)"
        )
    elif gross > 0:
        why = (
            f"fees and slippage {money(costs, unit)} are {share:.1%} of the gross PnL "
            f"{money(gross, unit)} (before costs) of all {len(trips)} closed trades; "
            f"needs <= {c.max_cost_share:.0%}"
        )
    else:
        why = (
            f"no gross profit ({money(gross, unit)} before costs over {len(trips)} closed trades) to "
            f"pay the costs ({money(costs, unit)}) from"
        )
    return GateResult(
        "cost_efficiency",
        passed,
        {"cost_share": share, "costs": costs, "gross_pnl": gross, "costless": costless},
        {"max_cost_share": c.max_cost_share},
        why,
    )


def _health_gate(rows: pd.DataFrame, expected: int, c: ReadinessConfig) -> GateResult:
    entries, table = entry_blocks(rows)
    top_share = float(table["share"].iloc[0]) if len(table) else 0.0
    top_count = int(table["count"].iloc[0]) if len(table) else 0
    top_reason = f"{table['stage'].iloc[0]}/{table['reason'].iloc[0]}" if len(table) else None
    errors = _data_errors(rows)
    error_share = errors / expected if expected else (0.0 if not errors else math.inf)
    passed = (
        bool(len(rows))
        and top_share <= c.max_reason_share
        and (errors == 0 or error_share < c.max_data_error_share)
    )
    if not len(rows):
        why = "no forward decisions this week (replayed ones are not evidence)"
    else:
        blocks = (
            f"top block {top_reason} refused {top_count} of {entries} entry proposals made when flat "
            f"({top_share:.1%})"
            if entries
            else "no entry proposals made when flat this week"
        )
        why = (
            f"{blocks} (needs <= {c.max_reason_share:.0%}); data errors {errors} of {expected} bars "
            f"expected ({error_share:.2%}; needs < {c.max_data_error_share:.0%})"
        )
    return GateResult(
        "gate_health",
        passed,
        {
            "top_reason_share": top_share,
            "top_reason": top_reason,
            "top_reason_blocks": top_count,
            "entry_proposals": entries,
            "data_error_share": error_share,
            "data_errors": errors,
        },
        {"max_reason_share": c.max_reason_share, "max_data_error_share": c.max_data_error_share},
        why,
    )


def _deflated_sharpe_gate(
    returns: np.ndarray, trials: int, sharpe_variance: float, c: ReadinessConfig
) -> GateResult:
    trials = max(1, int(trials))
    variance = sharpe_variance if sharpe_variance == sharpe_variance else 0.0
    dsr = deflated_sharpe_ratio(returns, trials, variance) if len(returns) else math.nan
    passed = dsr == dsr and dsr >= c.min_deflated_sharpe
    if dsr != dsr:
        why = f"no deflated Sharpe ratio: {len(returns)} forward returns, too few or none that differ"
    else:
        luck = "against zero (one trial)" if trials == 1 else f"against the best of {trials} trials by luck"
        why = (
            f"deflated Sharpe ratio {dsr:.3f} of {len(returns)} bar returns, {luck}; "
            f"needs >= {c.min_deflated_sharpe}"
        )
    return GateResult(
        "deflated_sharpe",
        passed,
        {"deflated_sharpe": dsr, "trials": trials, "returns": len(returns)},
        {"min_deflated_sharpe": c.min_deflated_sharpe},
        why,
    )

"""What the report notebooks show: a session loaded for reporting, its header, tables and figures.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot state), so they render the same
under any backend and a cell shows each figure once, through `show`.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.errors import ConfigError
from labkit.journal import read_journal
from labkit.readiness import (
    WeeklyReadiness,
    blocking_table,
    iso_week,
    max_drawdown,
    reason_code,
    round_trips,
)
from labkit.state import read_json, session_paths
from labkit.timeutil import iso_ms, now_ms, timeframe_ms

_GREEN, _RED, _BLUE, _GREY = "#1a7f37", "#cf222e", "#0969da", "#6e7781"


@dataclass(frozen=True)
class SessionView:
    """A session read for a report: its saved config and its journal."""

    name: str
    home: Path
    config: Mapping[str, Any]
    journal: pd.DataFrame

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.config["session"]["timeframe"])

    @property
    def capital(self) -> float:
        return float(self.config["session"]["capital"])


def load_session(home: str | Path, session: str) -> SessionView:
    """Return the session `session` under `home` ("" means labkit's usual home)."""
    from labkit.home import resolve_home

    root = resolve_home(str(home) if str(home) else None)
    paths = session_paths(root, session)
    config = read_json(paths.config)
    if config is None:
        raise ConfigError(
            f"session: no session {session!r} under {paths.root.parent} "
            "(its config.json is missing); `labkit status` lists the sessions"
        )
    return SessionView(session, root, config, read_journal(paths.decisions))


def last_day(journal: pd.DataFrame) -> str:
    """Return the UTC day (``YYYY-MM-DD``) of the journal's last bar."""
    _require_rows(journal)
    return str(journal["ts"].iloc[-1].date().isoformat())


def last_week(journal: pd.DataFrame) -> str:
    """Return the ISO week (``YYYY-Www``) of the journal's last bar."""
    _require_rows(journal)
    return iso_week(journal["ts"].iloc[-1])


def report_header(
    kind: str, parameters: Mapping[str, Any], view: SessionView, rows: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return the table every report starts with: parameters, data range, model, code version."""
    from labkit.home import code_version

    frame = view.journal if rows is None else rows
    s = view.config.get("session", {})
    models = sorted({str(m) for m in frame["model"].dropna()}) if len(frame) else []
    items = {
        "report": kind,
        "parameters": ", ".join(f"{k}={v!r}" for k, v in parameters.items()),
        "session": f"{view.name} ({s.get('mode')}, {s.get('symbol')} {s.get('timeframe')}, "
        f"source {s.get('source')})",
        "data range": (
            f"{frame['ts'].iloc[0].isoformat()} to {frame['ts'].iloc[-1].isoformat()} "
            f"({len(frame)} bars decided)"
            if len(frame)
            else "no bars decided"
        ),
        "model": ", ".join(models) or "none",
        "code version": code_version(),
        "generated at": iso_ms(now_ms()),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def session_summary(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return the summary figures of a whole session as a one-column table."""
    trips = round_trips(journal)
    equity = float(journal["equity"].iloc[-1]) if len(journal) else capital
    wins = int((trips["net_pnl"] > 0).sum()) if len(trips) else 0
    fees = journal["fill_fee"].sum() if "fill_fee" in journal.columns else 0.0
    slip = journal["fill_slippage_cost"].sum() if "fill_slippage_cost" in journal.columns else 0.0
    items: dict[str, Any] = {
        "decisions": len(journal),
        "actions (BUY / SELL)": f"{int((journal['action'] == 'BUY').sum())} / "
        f"{int((journal['action'] == 'SELL').sum())}"
        if len(journal)
        else "0 / 0",
        "closed trades": len(trips),
        "win rate": f"{wins / len(trips):.1%}" if len(trips) else "n/a",
        "mean net return per trade": f"{trips['net_return'].mean():.4%}" if len(trips) else "n/a",
        "capital": f"{capital:,.2f}",
        "final equity": f"{equity:,.2f}",
        "net PnL": f"{equity - capital:,.2f} ({equity / capital - 1:.2%})",
        "realized PnL": f"{trips['net_pnl'].sum():,.2f}" if len(trips) else "0.00",
        "fees / slippage": f"{float(fees):,.2f} / {float(slip):,.2f}",
        "max drawdown": f"{max_drawdown(journal['equity'], capital):.2%}" if len(journal) else "n/a",
        "open position (units)": f"{float(journal['position'].iloc[-1]):g}" if len(journal) else "0",
    }
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


def health_table(health: Mapping[str, Any]) -> pd.DataFrame:
    """Return `labkit.readiness.daily_health`'s result as a readable one-column table."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2%}"

    items = {
        "day": health["day"],
        "decisions / bars expected": f"{health['decisions']} / {health['expected']} "
        f"({pct(health['coverage'])})",
        "missing bars": health["missing_bars"],
        "heartbeat gaps (> 2 bars)": f"{health['heartbeat_gaps']} (longest "
        f"{health['max_gap_seconds']:.0f} s)",
        "data errors": f"{health['data_errors']} ({pct(health['data_error_share'])})",
        "actions BUY / SELL": f"{health['actions']['BUY']} / {health['actions']['SELL']}",
        "blocked decisions": health["blocked"],
        "top blocking reasons": "; ".join(
            f"{r['stage']}/{r['reason']} {r['count']}" for r in health["top_reasons"]
        )
        or "none",
        "closed trades": health["trades_closed"],
        "paper PnL": (
            f"{health['pnl']:,.2f} ({pct(health['pnl_pct'])})" if health["pnl"] is not None else "n/a"
        ),
        "fees / slippage": f"{health['fees']:,.2f} / {health['slippage']:,.2f}",
        "max drawdown (within the day)": pct(health["max_drawdown"]),
    }
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


def gates_table(result: WeeklyReadiness) -> pd.DataFrame:
    """Return the weekly gates as a pass/fail table with their figures and thresholds."""

    def fmt(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())

    return pd.DataFrame(
        {
            "gate": [g.name for g in result.gates],
            "status": ["PASS" if g.passed else "FAIL" for g in result.gates],
            "figures": [fmt(g.figures) for g in result.gates],
            "thresholds": [fmt(g.thresholds) for g in result.gates],
            "explanation": [g.explanation for g in result.gates],
        }
    )


def verdict_html(result: WeeklyReadiness) -> str:
    """Return the weekly verdict as a large coloured HTML heading."""
    failed = [g.name for g in result.gates if not g.passed]
    colour = _GREEN if result.passed else _RED
    words = (
        "READY: all gates pass"
        if result.passed
        else f"NOT READY: {len(failed)} of {len(result.gates)} gates fail"
    )
    detail = "" if result.passed else f"<p>Failing: {html.escape(', '.join(failed))}</p>"
    return (
        f'<div style="border:3px solid {colour};padding:0.6em 1em;margin:0.5em 0">'
        f'<div style="font-size:2.4em;font-weight:bold;color:{colour}">{words}</div>'
        f"<p>Week {html.escape(result.week)}: {result.trades} closed trades, "
        f"{result.decisions} decisions for {result.expected} bars expected.</p>{detail}</div>"
    )


def equity_figure(journal: pd.DataFrame, start_equity: float | None = None, title: str = "Equity") -> Figure:
    """Return equity (top) and drawdown from the running peak (bottom) over time."""
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    if len(journal):
        equity = journal["equity"].to_numpy(dtype=float)
        base = equity[0] if start_equity is None else start_equity
        peak = np.maximum.accumulate(np.concatenate([[base], equity]))[1:]
        top.plot(journal["ts"], equity, color=_BLUE, lw=1)
        top.axhline(base, color=_GREY, lw=0.8, ls="--")
        bottom.fill_between(journal["ts"], -(1 - equity / peak) * 100, 0, color=_RED, alpha=0.4, lw=0)
    top.set(title=title, ylabel="equity")
    bottom.set(ylabel="drawdown %")
    _time_axis(bottom)
    return fig


def actions_figure(journal: pd.DataFrame, title: str = "Actions on price") -> Figure:
    """Return the close price with the BUY and SELL decisions marked where they were taken."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    if len(journal):
        ax.plot(journal["ts"], journal["price"], color=_GREY, lw=0.8, label="close")
        for side, marker, colour in (("BUY", "^", _GREEN), ("SELL", "v", _RED)):
            rows = journal[journal["action"] == side]
            ax.scatter(
                rows["ts"],
                rows["price"],
                marker=marker,
                color=colour,
                s=36,
                zorder=3,
                label=f"{side} ({len(rows)})",
            )
        ax.legend(loc="best")
    ax.set(title=title, ylabel="price")
    _time_axis(ax)
    return fig


def blocks_figure(journal: pd.DataFrame, title: str = "Decisions by blocking stage and reason") -> Figure:
    """Return a horizontal bar chart of decisions per stage/reason, passed ones included."""
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax = fig.subplots()
    if len(journal):
        labels = [
            f"{s}/{reason_code(r)}" if s != "passed" else "passed"
            for s, r in zip(journal["stage"].fillna("passed"), journal["reason"], strict=True)
        ]
        counts = pd.Series(labels).value_counts().sort_values()
        colours = [_GREEN if label == "passed" else _RED for label in counts.index]
        ax.barh(list(counts.index), counts.to_numpy(), color=colours)
        ax.set_xscale("log")
        ax.set_xlim(right=counts.max() * 4)  # room for the largest count's label
        for y, value in enumerate(counts.to_numpy()):
            ax.annotate(str(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.set(title=title, xlabel="decisions (log scale)")
    return fig


def coverage_figure(
    per_day: list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...], threshold: float
) -> Figure:
    """Return the coverage of each day as bars, with the threshold line."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.subplots()
    days = [d["day"] for d in per_day]
    values = [(d["coverage"] if d["coverage"] == d["coverage"] else 0.0) * 100 for d in per_day]
    ax.bar(days, values, color=[_GREEN if v >= threshold * 100 else _RED for v in values])
    ax.axhline(threshold * 100, color=_GREY, ls="--", lw=1)
    ax.set(title="Coverage per day", ylabel="decisions / bars expected %", ylim=(0, 105))
    return fig


def table(frame: pd.DataFrame | Any) -> None:
    """Display a table (a frame or a pandas Styler) in full: no truncated cells or rows."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None, "display.max_rows", 1000):
        display(frame)


def gates_styled(result: WeeklyReadiness) -> Any:
    """Return `gates_table` styled: PASS in green, FAIL in red, no index."""

    def colour(value: str) -> str:
        return f"color:{_GREEN if value == 'PASS' else _RED};font-weight:bold"

    return gates_table(result).style.map(colour, subset=["status"]).hide(axis="index")


def show(fig: Figure) -> None:
    """Display a figure as an embedded PNG in the notebook."""
    from IPython.display import Image, display

    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    display(Image(data=png(fig), format="png"), metadata={"alt": titles[0] if titles else "figure"})


def png(fig: Figure) -> bytes:
    """Return a figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def blocks_table(journal: pd.DataFrame) -> pd.DataFrame:
    """Return `labkit.readiness.blocking_table` with the share shown as a percentage."""
    table = blocking_table(journal)
    return table.assign(share=[f"{s:.2%}" for s in table["share"]])


def _time_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _require_rows(journal: pd.DataFrame) -> None:
    if journal.empty:
        raise ConfigError("session: the journal has no decisions yet; run the session first")

"""What the report notebooks show as tables: a session loaded for reporting, its header and summaries."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.errors import ConfigError
from labkit.journal import read_journal
from labkit.readiness.metrics import max_drawdown
from labkit.readiness.periods import iso_week
from labkit.readiness.trips import blocking_table, round_trips
from labkit.readiness.weekly import WeeklyReadiness
from labkit.reports.figures import GREEN, RED
from labkit.session.paths import existing_session
from labkit.session.state import read_saved_config
from labkit.timeutil import iso_ms, now_ms, timeframe_ms


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

    @property
    def currency(self) -> str:
        return quote_currency(self.config)

    @property
    def periods_per_year(self) -> float:
        """Bars in a year of the session's market calendar, for annualised figures."""
        from labkit.readiness.calendar import calendar_of

        return calendar_of(self.config, self.journal).periods_per_year(self.timeframe_ms)

    @property
    def annualisation(self) -> str:
        """Say how annualised figures count a year for this session (its calendar and timeframe)."""
        from labkit.readiness.calendar import calendar_of

        return calendar_of(self.config, self.journal).annualisation(self.timeframe_ms)

    def bars(self) -> pd.DataFrame:
        """Return the bars the session consumed (from its tape), for fills at their opens."""
        from labkit.session.paths import session_paths
        from labkit.session.tape import tape_bars

        return tape_bars(session_paths(self.home, self.name).tape)

    def gate_ledger(self) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the session, formatted for a report."""
        from labkit.readiness.counterfactual import ledger

        table = ledger(self.journal, self.bars())
        currency = quote_currency(self.config)
        return table.assign(
            net_pnl=[f"{v:,.2f} {currency}" for v in table["net_pnl"]],
            saved=[f"{v:,.2f} {currency}" for v in table["saved"]],
            forgone=[f"{v:,.2f} {currency}" for v in table["forgone"]],
            hit_rate=[_fmt_share(v) for v in table["hit_rate"]],
        ).set_index(["stage", "reason"])


def quote_currency(config: Mapping[str, Any]) -> str:
    """Return the currency money is counted in: the quote of the session's symbol (USDT of BTC/USDT)."""
    symbol = str(config.get("session", {}).get("symbol", ""))
    return symbol.split("/")[-1] if "/" in symbol else "USD"


def _fmt_share(value: float) -> str:
    return "n/a" if value != value else f"{value:.0%}"


def load_session(home: str | Path, session: str) -> SessionView:
    """Return the session `session` under `home` ("" means labkit's usual home)."""
    from labkit.home import resolve_home

    root = resolve_home(str(home) if str(home) else None)
    paths = existing_session(root, session)
    config = read_saved_config(paths)
    if config is None:
        raise paths.missing()
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
    colour = GREEN if result.passed else RED
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


def table(frame: pd.DataFrame | Any) -> None:
    """Display a table (a frame or a pandas Styler) in full: no truncated cells or rows."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None, "display.max_rows", 1000):
        display(frame)


def gates_styled(result: WeeklyReadiness) -> Any:
    """Return `gates_table` styled: PASS in green, FAIL in red, no index."""

    def colour(value: str) -> str:
        return f"color:{GREEN if value == 'PASS' else RED};font-weight:bold"

    return gates_table(result).style.map(colour, subset=["status"]).hide(axis="index")


def blocks_table(journal: pd.DataFrame) -> pd.DataFrame:
    """Return `labkit.readiness.blocking_table` with the share shown as a percentage."""
    table = blocking_table(journal)
    return table.assign(share=[f"{s:.2%}" for s in table["share"]])


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        # Money-sized figures read best with separators; ratios keep four significant digits.
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _require_rows(journal: pd.DataFrame) -> None:
    if journal.empty:
        raise ConfigError("session: the journal has no decisions yet; run the session first")


def monthly_returns(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return the return of each calendar month (UTC) in %, a row per year and a column per month.

    A month's return runs from the equity at the end of the month before (the starting capital for
    the first) to the equity at its last close; ``year`` is the year's compounded return.

    Examples
    --------
    >>> j = pd.DataFrame({"ts": pd.to_datetime(["2026-01-30", "2026-01-31", "2026-02-27"], utc=True),
    ...                   "equity": [100.0, 110.0, 99.0]})
    >>> monthly_returns(j, 100.0).to_dict("records")
    [{'Jan': 10.0, 'Feb': -10.0, 'year': -1.0}]
    """
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    if journal.empty:
        return pd.DataFrame(columns=[*months, "year"])
    ends = journal.set_index(pd.DatetimeIndex(journal["ts"]).tz_convert("UTC").tz_localize(None))["equity"]
    ends = ends.astype(float).groupby(pd.Grouper(freq="ME")).last().dropna()
    starts = ends.shift(1).fillna(capital)
    returns = (ends / starts - 1.0) * 100.0
    table = pd.DataFrame({"year": returns.index.year, "month": returns.index.month, "r": returns.to_numpy()})
    grid = table.pivot(index="year", columns="month", values="r").rename(columns=lambda m: months[m - 1])
    grid["year"] = [((1 + table[table["year"] == y]["r"] / 100).prod() - 1) * 100 for y in grid.index]
    return grid.round(2).rename_axis(index="year (UTC)", columns=None)


def trade_list(journal: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return every closed trade with its times (UTC), units, prices and money in `currency`."""
    trips = round_trips(journal)
    if trips.empty:
        return pd.DataFrame(
            columns=[
                "entry (UTC)",
                "exit (UTC)",
                "held",
                "units",
                "entry price",
                "exit price",
                "costs",
                "net PnL",
                "net return",
            ]
        )

    def money(value: float) -> str:
        return f"{value:,.2f} {currency}"

    held = (trips["exit_ts"] - trips["entry_ts"]).map(lambda d: str(d).replace("0 days ", ""))
    return pd.DataFrame(
        {
            # Plain lists throughout: the new index must not re-align any column.
            "entry (UTC)": trips["entry_ts"].dt.strftime("%Y-%m-%d %H:%M").tolist(),
            "exit (UTC)": trips["exit_ts"].dt.strftime("%Y-%m-%d %H:%M").tolist(),
            "held": held.tolist(),
            "units": [f"{u:.6g}" for u in trips["units"]],
            "entry price": [money(p) for p in trips["entry_price"]],
            "exit price": [money(p) for p in trips["exit_price"]],
            "costs": [money(f + s) for f, s in zip(trips["fees"], trips["slippage"], strict=True)],
            "net PnL": [money(p) for p in trips["net_pnl"]],
            "net return": [f"{r:+.3%}" for r in trips["net_return"]],
        },
        index=pd.RangeIndex(1, len(trips) + 1, name="trade"),
    )


def evidence_table(result: WeeklyReadiness) -> pd.DataFrame:
    """Return the deflated Sharpe ratio, its trial count and the track record still needed."""
    e = result.evidence
    if not e:
        return pd.DataFrame({"value": []})
    items = {
        "Sharpe ratio (annualised)": f"{_fmt(e.get('sharpe'))} ({e.get('annualisation')})",
        "deflated Sharpe ratio": f"{_fmt(e.get('deflated_sharpe'))} "
        f"(against the best of {e.get('trials')} trial(s) of this market, by luck)",
        "track record": str(e.get("track_record")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="evidence"))


def execution_table(result: WeeklyReadiness, currency: str) -> pd.DataFrame:
    """Return the week's verdict under each execution model, side by side (base is the verdict)."""
    rows = {
        name: {
            "verdict": data.get("outcome"),
            "failing gates": ", ".join(data.get("failing", [])) or "none",
            "closed trades": data.get("trades"),
            "net PnL": f"{data.get('net_pnl', 0.0):,.2f} {currency}",
            "mean net return per trade": _fmt_pct(data.get("mean_net_return")),
            "fills": data.get("model"),
        }
        for name, data in result.execution.items()
    }
    return pd.DataFrame(rows)


def _fmt_pct(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:+.3%}"

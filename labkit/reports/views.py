"""What the report notebooks show as tables: a session loaded for reporting, its header and summaries."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit._io import read_json
from labkit.analysis.metrics import max_drawdown
from labkit.analysis.periods import iso_week
from labkit.analysis.trips import blocking_table, exit_reasons, round_trips
from labkit.engine.journal import read_journal
from labkit.errors import ConfigError
from labkit.readiness.weekly import WeeklyReadiness
from labkit.reports.figures import GREEN, RED
from labkit.session.paths import existing_session
from labkit.session.state import read_saved_config
from labkit.timeutil import now_ms, timeframe_ms


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
        from labkit.analysis.calendar import calendar_of

        return calendar_of(self.config, self.journal).periods_per_year(self.timeframe_ms)

    @property
    def annualisation(self) -> str:
        """Say how annualised figures count a year for this session (its calendar and timeframe)."""
        from labkit.analysis.calendar import calendar_of

        return calendar_of(self.config, self.journal).annualisation(self.timeframe_ms)

    def bars(self) -> pd.DataFrame:
        """Return the bars the session consumed (from its tape), for fills at their opens."""
        from labkit.session.paths import session_paths
        from labkit.session.tape import tape_bars

        return tape_bars(session_paths(self.home, self.name).tape)

    def gate_ledger(self) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the session, formatted for a report."""
        from labkit.readiness.counterfactual import ledger

        return ledger_table(ledger(self.journal, self.bars()), quote_currency(self.config))

    def exit_ledger(self) -> pd.DataFrame:
        """Return the session's enforced exits against holding to the next exit signal, formatted."""
        from labkit.readiness.counterfactual import exit_ledger

        return exit_ledger_table(exit_ledger(self.journal, self.bars()), quote_currency(self.config))


def ledger_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return a gate ledger (`labkit.readiness.ledger`) with money in `currency` and shares in %."""
    return table.assign(
        net_pnl=[f"{v:,.2f} {currency}" for v in table["net_pnl"]],
        saved=[f"{v:,.2f} {currency}" for v in table["saved"]],
        forgone=[f"{v:,.2f} {currency}" for v in table["forgone"]],
        hit_rate=[_fmt_share(v) for v in table["hit_rate"]],
    ).set_index(["stage", "reason"])


def exit_ledger_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return an exit ledger (`labkit.readiness.counterfactual.exit_ledger`) with money in `currency`."""
    return table.assign(
        effect=[f"{v:,.2f} {currency}" for v in table["effect"]],
        saved=[f"{v:,.2f} {currency}" for v in table["saved"]],
        forgone=[f"{v:,.2f} {currency}" for v in table["forgone"]],
        hit_rate=[_fmt_share(v) for v in table["hit_rate"]],
    ).set_index("exit")


def quote_currency(config: Mapping[str, Any]) -> str:
    """Return the currency money is counted in: the quote of the session's symbol (USDT of BTC/USDT)."""
    from labkit.data.bars import quote_currency as of_symbol

    return of_symbol(str(config.get("session", {}).get("symbol", "")))


def _fmt_share(value: float) -> str:
    return "n/a" if value != value else f"{value:.0%}"


def money(value: float, currency: str = "") -> str:
    """Return an amount with two decimals, thousands separators and its currency.

    Examples
    --------
    >>> money(-1271.926, "USDT"), money(3.0)
    ('-1,271.93 USDT', '3.00')
    """
    return f"{value:,.2f} {currency}" if currency else f"{value:,.2f}"


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
    """Return the table every report starts with: parameters, data range, model, code version.

    The labkit home is left out of the parameters shown (a page names no local path), and times
    are UTC.
    """
    from labkit.home import code_version

    frame = view.journal if rows is None else rows
    s = view.config.get("session", {})
    models = sorted({str(m) for m in frame["model"].dropna()}) if len(frame) else []
    items = {
        "report": kind,
        "parameters": shown_parameters(parameters),
        "session": f"{view.name} ({s.get('mode')}, {s.get('symbol')} {s.get('timeframe')}, "
        f"source {s.get('source')})",
        "data range": data_range(frame),
        "model": ", ".join(models) or "none",
        "code version": code_version(),
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def shown_parameters(parameters: Mapping[str, Any]) -> str:
    """Return a report's parameters as ``name='value'`` pairs, without the home (a local path)."""
    return ", ".join(f"{k}={v!r}" for k, v in parameters.items() if k != "home") or "none"


def utc(ts: Any) -> str:
    """Return an instant as ``YYYY-MM-DD HH:MM UTC`` (seconds shown when it has any).

    Examples
    --------
    >>> utc(pd.Timestamp("2026-01-05T09:30:00Z")), utc(pd.Timestamp("2026-01-05 09:30:15", tz="UTC"))
    ('2026-01-05 09:30 UTC', '2026-01-05 09:30:15 UTC')
    """
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if stamp.second else "%Y-%m-%d %H:%M UTC")


def data_range(frame: pd.DataFrame) -> str:
    """Return the first and last bar decided (UTC) and how many bars were decided."""
    if not len(frame):
        return "no bars decided"
    return f"{utc(frame['ts'].iloc[0])} to {utc(frame['ts'].iloc[-1])} ({len(frame):,} bars decided)"


def session_summary(journal: pd.DataFrame, capital: float, currency: str = "") -> pd.DataFrame:
    """Return the summary figures of a whole session as a one-column table (money in `currency`)."""
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
        "capital": money(capital, currency),
        "final equity": money(equity, currency),
        "net PnL": f"{money(equity - capital, currency)} ({equity / capital - 1:.2%})",
        "realized PnL": money(float(trips["net_pnl"].sum()) if len(trips) else 0.0, currency),
        "fees / slippage": f"{money(float(fees), currency)} / {money(float(slip), currency)}",
        "max drawdown": f"{max_drawdown(journal['equity'], capital):.2%}" if len(journal) else "n/a",
        "open position (units)": f"{float(journal['position'].iloc[-1]):g}" if len(journal) else "0",
    }
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


def health_table(health: Mapping[str, Any], currency: str = "") -> pd.DataFrame:
    """Return `labkit.readiness.daily_health`'s result as a one-column table, money in `currency`."""

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
            f"{money(health['pnl'], currency)} ({pct(health['pnl_pct'])})"
            if health["pnl"] is not None
            else "n/a"
        ),
        "fees / slippage": f"{money(health['fees'], currency)} / {money(health['slippage'], currency)}",
        "max drawdown (within the day)": pct(health["max_drawdown"]),
    }
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


# Gate figures that are amounts of money (in the quote currency); the others are ratios and counts.
MONEY_FIGURES = frozenset({"costs", "gross_pnl", "peak_equity"})


def gates_table(result: WeeklyReadiness, currency: str = "") -> pd.DataFrame:
    """Return the weekly gates as a pass/fail table with their figures and thresholds.

    Figures that are money (`MONEY_FIGURES`: costs, gross PnL, peak equity) carry `currency`.
    """

    def fmt(values: Mapping[str, Any], money_too: bool = False) -> str:
        return ", ".join(
            f"{k}={_fmt_money(v, currency) if money_too and k in MONEY_FIGURES else _fmt(v)}"
            for k, v in values.items()
        )

    return pd.DataFrame(
        {
            "gate": [g.name for g in result.gates],
            "status": ["PASS" if g.passed else "FAIL" for g in result.gates],
            "figures": [fmt(g.figures, money_too=True) for g in result.gates],
            "thresholds": [fmt(g.thresholds) for g in result.gates],
            "explanation": [g.explanation for g in result.gates],
        }
    )


def _fmt_money(value: Any, currency: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return money(float(value), currency)
    return _fmt(value)


def per_day_table(result: WeeklyReadiness) -> pd.DataFrame:
    """Return the week's coverage per UTC day: decisions, bars the calendar expected, coverage in %."""
    days = list(result.per_day)
    return pd.DataFrame(
        {
            "decisions": [d.get("decisions") for d in days],
            "bars expected": [d.get("expected") for d in days],
            "coverage": [_fmt_share_1(d.get("coverage")) for d in days],
        },
        index=pd.Index([str(d.get("day")) for d in days], name="day (UTC)"),
    )


def _fmt_share_1(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"


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


def gates_styled(result: WeeklyReadiness, currency: str = "") -> Any:
    """Return `gates_table` styled: PASS in green, FAIL in red, no index; money in `currency`."""

    def colour(value: str) -> str:
        return f"color:{GREEN if value == 'PASS' else RED};font-weight:bold"

    return gates_table(result, currency).style.map(colour, subset=["status"]).hide(axis="index")


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


EXIT_ORDER = ("signal", "stop_loss", "take_profit", "trailing_stop", "time_stop", "emergency_stop")


def exits_table(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the closed trades by why they were exited: count, mean net return, share that won."""
    trips = round_trips(journal)
    reasons = exit_reasons(journal)
    columns = ["trades", "mean net return", "hit rate"]
    if trips.empty or len(reasons) != len(trips):
        return pd.DataFrame(columns=columns, index=pd.Index([], name="exit"))
    frame = trips.assign(exit=reasons)
    rows = {}
    for reason in sorted(set(reasons), key=lambda r: (EXIT_ORDER.index(r) if r in EXIT_ORDER else 99, r)):
        group = frame[frame["exit"] == reason]
        rows[reason] = [
            f"{len(group):,}",
            f"{group['net_return'].mean():+.3%}",
            f"{(group['net_pnl'] > 0).mean():.1%}",
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("exit")


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


# --- provenance and assumptions ------------------------------------------------------------------

FILL_MODEL = (
    "an order decided at a bar's close fills at the next bar's open; long only; all in: an entry "
    "spends {frac} of the cash, fee included (risk.position_frac), an exit sells the whole position"
)
RISK_FILL_MODEL = (
    "an order decided at a bar's close fills at the next bar's open; long only; sized by risk: an "
    "entry buys {risk} of equity / ({stop} x ATR({window})), capped at {exposure} of equity and by "
    "the cash{scaled} (risk.sizing: risk); an exit sells the whole position"
)


def sizing_text(risk: Mapping[str, Any], strategy: str = "") -> str:
    """Return how entries are sized, from a config's ``risk`` section."""
    if risk.get("sizing", "all_in") != "risk":
        return FILL_MODEL.format(frac=f"{float(risk.get('position_frac', 1.0)):.0%}")
    return RISK_FILL_MODEL.format(
        risk=f"{float(risk.get('risk_per_trade', 0.01)):.2%}",
        stop=f"{float(risk['stop_atr']):g}",
        window=int(risk.get("atr_window", 14)),
        exposure=f"{float(risk.get('max_exposure', 1.0)):.0%}",
        scaled=", scaled from 1/2 at the entry threshold to 1 at certainty by the model's probability"
        if strategy == "model"
        else "",
    )


def exits_text(risk: Mapping[str, Any]) -> str:
    """Return the exits the engine enforces, from a config's ``risk`` section."""
    parts = []
    if risk.get("stop_atr") is not None:
        parts.append(f"stop-loss {float(risk['stop_atr']):g} ATR below the entry fill")
    if risk.get("take_profit_atr") is not None:
        parts.append(f"take-profit {float(risk['take_profit_atr']):g} ATR above it")
    if risk.get("trailing_atr") is not None:
        parts.append(f"trailing stop {float(risk['trailing_atr']):g} ATR below the highest high since")
    if risk.get("max_bars") is not None:
        parts.append(f"time stop after {int(risk['max_bars'])} bars")
    if not parts:
        return "none: positions close only on the strategy's exit signal"
    return (
        "; ".join(parts)
        + f" (ATR over {int(risk.get('atr_window', 14))} bars); checked on each bar's open then its range, "
        "a gap fills at the open, a bar reaching the stop and the target is taken as the stop"
    )


def short_hash(data: bytes) -> str:
    """Return the first 12 hex digits of the SHA-256 of `data`.

    Examples
    --------
    >>> short_hash(b"sma_cross-10-30")
    '54c3a2120af6'
    """
    import hashlib

    return hashlib.sha256(data).hexdigest()[:12]


def file_hash(path: Path) -> str | None:
    """Return `short_hash` of a file's bytes, or None when it cannot be read."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()[:12]


def describe_code_version(version: str) -> str:
    """Say what a `labkit.home.code_version` string means: version, git commit, dirty or clean tree.

    Examples
    --------
    >>> describe_code_version("0.1.0+ge4fe642d7a09.dirty")
    'labkit 0.1.0, git commit e4fe642d7a09, dirty tree (uncommitted changes)'
    >>> describe_code_version("0.1.0")
    'labkit 0.1.0 (no git checkout: commit unknown)'
    """
    import re

    found = re.fullmatch(r"(?P<version>[^+]+)\+g(?P<commit>[0-9a-f]+)(?P<dirty>\.dirty)?", version)
    if found is None:
        return f"labkit {version} (no git checkout: commit unknown)"
    tree = "dirty tree (uncommitted changes)" if found["dirty"] else "clean tree"
    return f"labkit {found['version']}, git commit {found['commit']}, {tree}"


def provenance_table(view: SessionView, models: Any = (), verdict: str = "") -> pd.DataFrame:
    """Return what a weekly dossier was made from: code version, file hashes, models.

    Hashes are the first 12 hex digits of the SHA-256 of the session's ``config.json``,
    ``tape.jsonl`` and ``decisions.jsonl`` as they were when the page was made, and of each model
    id decided with (`models`; a model is named by its strategy and parameters). `verdict` is the
    saved verdict file (relative to the home): the code version it was computed with is shown too.
    Paths are relative to the home.
    """
    from labkit.home import code_version
    from labkit.session.paths import session_paths

    paths = session_paths(view.home, view.name)
    items: dict[str, str] = {"code (this page)": describe_code_version(code_version())}
    if verdict:
        saved = read_json(view.home / verdict)
        if saved is not None:
            when = saved.get("saved_at")
            items["code (the verdict)"] = describe_code_version(str(saved.get("code_version", "?"))) + (
                f"; saved {utc(when)}" if when else ""
            )
    for label, path in (
        ("config.json", paths.config),
        ("tape.jsonl", paths.tape),
        ("decisions.jsonl", paths.decisions),
    ):
        digest = file_hash(path)
        where = path.relative_to(view.home).as_posix()
        items[label] = f"sha256 {digest} ({where})" if digest else f"missing ({where})"
    for model in models:
        items[f"model {model}"] = f"sha256 {short_hash(str(model).encode())} (of the model id)"
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="provenance"))


def assumptions_table(view: SessionView, result: WeeklyReadiness | None = None) -> pd.DataFrame:
    """Return what a session's figures assume: fills, fees, slippage, calendar and annualisation.

    Fees and slippage are the ``broker`` section of the session's ``config.json``; the calendar and
    its annualisation are the saved verdict's (`result`), else the session's.
    """
    from labkit.readiness.weekly import EQUITY_BASIS

    broker = view.config.get("broker", {})
    risk = view.config.get("risk", {})
    if result is not None and result.calendar:
        calendar = str(result.calendar.get("description"))
        annualisation = str(result.calendar.get("annualisation"))
    else:
        calendar, annualisation = _calendar_words(view)
    mode = view.config.get("session", {}).get("mode")
    items = {
        "fills": sizing_text(risk, str(view.config.get("session", {}).get("strategy", ""))),
        "exits": exits_text(risk),
        "fees": f"{float(broker.get('fee', 0.0)):.3%} of each fill's notional (broker.fee in config.json)",
        "slippage": f"{float(broker.get('slippage', 0.0)):.3%} of the open, against the order "
        "(broker.slippage in config.json)",
        "mode": f"{mode}" + (": fills followed as paper would fill them" if mode == "shadow" else ""),
        "calendar": calendar,
        "annualisation": annualisation,
        "equity": EQUITY_BASIS,
        "money": f"in {view.currency}, the quote currency of {view.config.get('session', {}).get('symbol')}",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="assumption"))


def _calendar_words(view: SessionView) -> tuple[str, str]:
    from labkit.analysis.calendar import calendar_of

    market = calendar_of(view.config, view.journal)
    return market.describe(), market.annualisation(view.timeframe_ms)


# --- backtests ------------------------------------------------------------------------------------

# What every decision line holds that a backtest report reads (docs/journal.md).
_JOURNAL_FIELDS = (
    "seq",
    "ts",
    "symbol",
    "timeframe",
    "price",
    "proposed",
    "action",
    "gate_trace",
    "fill",
    "position",
    "cash",
    "equity",
    "model",
)
_JOURNAL_HINT = "give the JSONL file `labkit backtest --journal PATH` wrote (docs/journal.md)"


@dataclass(frozen=True)
class BacktestView:
    """A backtest journal read for a report (`load_backtest`): its last run and the market's calendar.

    `shown` is the journal's path as a page may show it: relative to the home when it lies under
    it, else its file name. `runs` counts the runs the file holds (``labkit backtest --append``
    adds one, its ``seq`` starting again at 0); `journal` is the last, from line `first_line`.
    `calendar_given` is False when no ``--calendar`` was given: a backtest journal does not record
    its market's calendar, so 24/7 is assumed.
    """

    path: Path
    shown: str
    journal: pd.DataFrame
    runs: int
    first_line: int
    calendar: Any  # labkit.analysis.calendar.MarketCalendar
    calendar_given: bool

    @property
    def symbol(self) -> str:
        return str(self.journal["symbol"].iloc[-1])

    @property
    def timeframe(self) -> str:
        return str(self.journal["timeframe"].iloc[-1])

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def currency(self) -> str:
        return quote_currency({"session": {"symbol": self.symbol}})

    @property
    def models(self) -> list[str]:
        return sorted({str(m) for m in self.journal["model"].dropna()})

    @property
    def capital(self) -> float:
        """The equity the run started with: the first line's, before any fill at its open."""
        first = self.journal.iloc[0]
        fill = first["fill"]
        if not isinstance(fill, Mapping):
            return float(first["equity"])
        units = float(fill["units"]) * (1.0 if fill["side"] == "BUY" else -1.0)
        return (
            float(first["cash"])
            - float(fill["cash_flow"])
            + (float(first["position"]) - units) * float(first["price"])
        )

    @property
    def periods_per_year(self) -> float:
        return float(self.calendar.periods_per_year(self.timeframe_ms))

    @property
    def annualisation(self) -> str:
        return str(self.calendar.annualisation(self.timeframe_ms))

    @property
    def period(self) -> str:
        """The UTC days the run decided, ``YYYY-MM-DD to YYYY-MM-DD``."""
        first, last = self.journal["ts"].iloc[0], self.journal["ts"].iloc[-1]
        return f"{first.date().isoformat()} to {last.date().isoformat()}"

    @property
    def title(self) -> str:
        """The default title: the model on the market, ``sma_cross-10-30 on BTC/USDT 1m``."""
        return f"{', '.join(self.models) or 'backtest'} on {self.symbol} {self.timeframe}"

    def gate_ledger(self) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the run, formatted for a report.

        A journal holds closes, not opens: would-have trades fill at the close before each open,
        with the fee and slippage rates the run's own fills paid.
        """
        from labkit.readiness.counterfactual import ledger

        return ledger_table(ledger(self.journal), self.currency)

    def exit_ledger(self) -> pd.DataFrame:
        """Return the run's enforced exits against holding to the next exit signal, formatted.

        Like the gate ledger, the held position sells at the close before the open after the signal.
        """
        from labkit.readiness.counterfactual import exit_ledger

        return exit_ledger_table(exit_ledger(self.journal), self.currency)


def load_backtest(journal: str | Path, home: str | Path = "", calendar: str = "") -> BacktestView:
    """Return the backtest journal at `journal` read for a report (its last run, if it holds several).

    A relative `journal` is taken from the home ("" means labkit's usual home). `calendar`
    (``24/7``, ``equities``, ``fx``) is the market's calendar for annualised figures; "" assumes
    24/7. Raise `ConfigError` naming ``--journal`` when the file is missing, empty or not a
    decision journal.
    """
    from labkit.analysis.calendar import MarketCalendar, bar_times, session_calendar
    from labkit.engine.journal import read_journal
    from labkit.home import resolve_home

    root = resolve_home(str(home) if str(home) else None)
    path = Path(journal).expanduser()
    path = path if path.is_absolute() else root / path
    starts, lines = _check_journal(path)
    frame = read_journal(path)
    try:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--journal: {path} has a ts that is not a time ({exc}); {_JOURNAL_HINT}") from None
    first = starts[-1]
    frame = frame.iloc[first:].reset_index(drop=True)
    if calendar:
        tf = timeframe_ms(str(frame["timeframe"].iloc[-1]))
        market = session_calendar("journal", calendar, bar_times(frame), tf)
    else:
        market = MarketCalendar(
            "24/7",
            basis="assumed: a backtest journal does not record its market's calendar; --calendar sets it",
        )
    try:
        shown = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path.name
    return BacktestView(path, shown, frame, len(starts), first + 1, market, bool(calendar))


def _check_journal(path: Path) -> tuple[list[int], int]:
    # Every complete line must be a decision line; return where each run starts (seq 0) and how
    # many lines there are. A torn last line (a crash mid-write) is skipped, as read_journal does.
    import orjson

    if not path.exists():
        raise ConfigError(f"--journal: {path} does not exist; {_JOURNAL_HINT}")
    if not path.is_file():
        raise ConfigError(f"--journal: {path} is not a file; {_JOURNAL_HINT}")
    starts: list[int] = []
    n = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ConfigError(
                    f"--journal: {path} line {n + 1} is not JSON, so the file is not a decision journal; "
                    f"{_JOURNAL_HINT}"
                ) from None
            missing = [f for f in _JOURNAL_FIELDS if f not in line] if isinstance(line, dict) else ["all"]
            if missing:
                raise ConfigError(
                    f"--journal: {path} line {n + 1} is not a decision line (no {', '.join(missing[:4])}); "
                    f"{_JOURNAL_HINT}"
                )
            if line["seq"] == 0 or not starts:
                starts.append(n)
            n += 1
    if not n:
        raise ConfigError(f"--journal: {path} is empty: it holds no decision; {_JOURNAL_HINT}")
    return starts, n


def backtest_header(bt: BacktestView, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """Return the table a backtest report starts with: parameters, data range, model, code version."""
    from labkit.home import code_version

    j = bt.journal
    modes = ", ".join(sorted({str(m) for m in j["mode"].dropna()})) if "mode" in j.columns else "?"
    runs = (
        f"; the file holds {bt.runs} runs (--append), this is the last, from line {bt.first_line:,}"
        if bt.runs > 1
        else ""
    )
    items = {
        "report": "backtest",
        "parameters": shown_parameters(parameters),
        "journal": f"{bt.shown} (sha256 {file_hash(bt.path)}){runs}",
        "market": f"{bt.symbol} {bt.timeframe} (mode {modes}); money in {bt.currency}",
        "data range": data_range(j),
        "model": ", ".join(bt.models) or "none",
        "calendar": bt.calendar.describe(),
        "code version": f"{code_version()} (this page)",
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def open_since(journal: pd.DataFrame) -> pd.Timestamp | None:
    """Return when the position still open at the journal's end was entered, or None when flat."""
    if journal.empty or not float(journal["position"].iloc[-1]) > 0:
        return None
    fills = journal[journal["fill_side"].isin(("BUY", "SELL"))]
    sells = fills.index[fills["fill_side"] == "SELL"]
    after = fills.loc[sells[-1] :] if len(sells) else fills
    buys = after[after["fill_side"] == "BUY"]
    return pd.Timestamp(buys["ts"].iloc[0]) if len(buys) else None


def guardrail_halt(journal: pd.DataFrame) -> dict[str, Any] | None:
    """Return when the guardrails began refusing every entry to the end of the journal, or None.

    The entry proposals that reached the guardrails (a BUY proposed that passed or that they
    refused) are read in order; a run of refusals after the last one they let through, to the end,
    is a halt: ``first_ts`` (its first refusal), ``bars`` (from it to the end), ``blocks`` (entries
    refused since) and ``reasons`` (by reason code), as ``labkit backtest --json`` reports it.
    """
    from labkit.analysis.trips import reason_code
    from labkit.timeutil import iso_s

    if journal.empty:
        return None
    stage = journal["stage"].fillna("passed")
    entries = journal[(journal["proposed"] == "BUY") & stage.isin(("guardrails", "passed"))]
    passed = (entries["stage"].fillna("passed") == "passed").to_numpy()
    let_through = [i for i, ok in enumerate(passed) if ok]
    tail = entries.iloc[let_through[-1] + 1 :] if let_through else entries
    if tail.empty:
        return None
    first = journal.index.get_loc(tail.index[0])
    reasons: dict[str, int] = {}
    for reason in tail["reason"]:
        code = str(reason_code(reason))
        reasons[code] = reasons.get(code, 0) + 1
    return {
        "first_ts": iso_s(int(tail["ts"].iloc[0].value // 1_000_000)),
        "bars": len(journal) - int(first),
        "blocks": len(tail),
        "reasons": reasons,
    }


def backtest_figures(bt: BacktestView) -> dict[str, Any]:
    """Return the run's figures with the names and definitions of ``labkit backtest --json``.

    The equity curve, round trips and blocks are read from the journal; annualised figures use the
    view's calendar. Every figure comes from `labkit.analysis.metrics` (through
    `labkit.research.backtest.summarize` and `trade_summary`, the backtest summary's own functions).
    """
    from labkit.research.backtest import summarize, trade_summary

    j = bt.journal
    times = pd.DatetimeIndex(j["ts"])
    equity = pd.Series(j["equity"].to_numpy(dtype="float64"), index=times, name="equity")
    figures = summarize(equity, bt.capital, bt.timeframe_ms, bt.periods_per_year)
    bars = pd.DataFrame({"close": j["price"].to_numpy(dtype="float64")}, index=times)
    figures.update(trade_summary(round_trips(j), bars, open_since(j)))
    sides = j["fill_side"]
    blocks = blocking_table(j)
    figures.update(
        annualisation=bt.annualisation,
        trades=int((sides == "BUY").sum()),
        fills=int(sides.isin(("BUY", "SELL")).sum()),
        closed_trades=int((sides == "SELL").sum()),
        open_position=float(j["position"].iloc[-1]),
        fees=float(pd.to_numeric(j["fill_fee"]).fillna(0.0).sum()),
        slippage=float(pd.to_numeric(j["fill_slippage_cost"]).fillna(0.0).sum()),
        strategy=", ".join(bt.models),
        blocked=int(blocks["count"].sum()) if len(blocks) else 0,
        blocks=[{"stage": r.stage, "reason": r.reason, "count": int(r.count)} for r in blocks.itertuples()],
        guardrail_halt=guardrail_halt(j),
    )
    return figures


def backtest_summary(bt: BacktestView, figures: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return the run's summary figures as a one-column table: money in the quote currency, times UTC."""
    from labkit.timeutil import human_duration

    f = backtest_figures(bt) if figures is None else figures
    cur = bt.currency

    def pct(key: str, digits: int = 2) -> str:
        value = f.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}%"

    def num(key: str) -> str:
        value = f.get(key)
        return "n/a" if value is None else f"{value:,.2f}"

    def span(key: str) -> str:
        value = f.get(key)
        return "n/a" if value is None else human_duration(pd.Timedelta(value).total_seconds())

    capital, final = bt.capital, float(f["final_equity"])
    expectancy = f.get("expectancy")
    halt = f.get("guardrail_halt")
    items = {
        "capital": money(capital, cur),
        "final equity": money(final, cur),
        "total return": f"{money(final - capital, cur)} ({pct('return_pct')})",
        "annual return": f"{pct('annual_return_pct')} (CAGR {pct('cagr_pct')})",
        "annual volatility": pct("annual_volatility_pct"),
        "Sharpe ratio": num("sharpe"),
        "Sortino ratio": num("sortino"),
        "Calmar ratio": num("calmar"),
        "annualisation": str(f.get("annualisation")),
        "max drawdown": pct("max_drawdown_pct"),
        "longest drawdown": f"{f.get('max_drawdown_bars', 0):,} bars ({span('max_drawdown_duration')})",
        "probabilistic Sharpe ratio": num("psr"),
        "entries / closed trades": f"{f['trades']:,} / {f['closed_trades']:,}"
        + (f" (a position of {f['open_position']:.6g} units still open)" if f["open_position"] else ""),
        "hit rate": pct("hit_rate_pct", 1),
        "profit factor": num("profit_factor"),
        "expectancy": "n/a" if expectancy is None else f"{money(expectancy, cur)} a trade",
        "average / best / worst trade": f"{pct('avg_trade_pct')} / {pct('best_trade_pct')} / "
        f"{pct('worst_trade_pct')}",
        "average / longest time in a trade": f"{span('avg_trade_duration')} / {span('max_trade_duration')}",
        "exposure": f"{pct('exposure_pct', 1)} of the bars in the market",
        "fees / slippage": f"{money(f['fees'], cur)} / {money(f['slippage'], cur)}",
        "buy and hold": f"return {pct('buy_hold_return_pct')}, max drawdown "
        f"{pct('buy_hold_max_drawdown_pct')} (same bars, no costs)",
        "blocked decisions": f"{f['blocked']:,} of {f['bars']:,}",
        "guardrail halt": "none"
        if not halt
        else f"every entry refused from {utc(halt['first_ts'])} to the end: {halt['bars']:,} bars "
        f"({halt['bars'] / max(1, f['bars']):.0%} of the run), {halt['blocks']:,} entries refused "
        f"({', '.join(halt['reasons'])})",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="figure"))


def backtest_assumptions(bt: BacktestView) -> pd.DataFrame:
    """Return what the run's figures assume: fills, the fees and slippage its fills paid, the calendar."""
    from labkit.readiness.weekly import EQUITY_BASIS

    fee, slippage, frac = paid_rates(bt.journal)
    paid = "read from the run's fills" if frac is not None else "no fill to read it from"
    enforced = sorted(set(exit_reasons(bt.journal)) - {"signal", "emergency_stop"})
    items = {
        "fills": _backtest_sizing(bt.journal, frac),
        "exits": (
            "enforced by the engine on each bar's open and range (a gap fills at the open, a bar "
            f"reaching the stop and the target is taken as the stop); fired: {', '.join(enforced)}"
            if enforced
            else "only the strategy's exit signals closed positions"
        ),
        "fees": f"{fee:.3%} of each fill's notional ({paid})",
        "slippage": f"{slippage:.3%} of the open, against the order ({paid})",
        "calendar": bt.calendar.describe(),
        "annualisation": bt.annualisation,
        "equity": EQUITY_BASIS,
        "money": f"in {bt.currency}, the quote currency of {bt.symbol}",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="assumption"))


def _backtest_sizing(journal: pd.DataFrame, frac: float | None) -> str:
    # A risk-sized entry records its units on the line that decided it; all in records none.
    sized = False
    if "gate_trace" in journal.columns:
        for trace, action in zip(journal["gate_trace"], journal["action"], strict=True):
            if action == "BUY" and isinstance(trace, Mapping) and "units" in (trace.get("detail") or {}):
                sized = True
                break
    if sized:
        return (
            "an order decided at a bar's close fills at the next bar's open; long only; sized by risk "
            "(risk.sizing: risk): units = risk_per_trade x equity / (stop_atr x ATR), capped by "
            "max_exposure and the cash; an exit sells the whole position"
        )
    return FILL_MODEL.format(frac="?" if frac is None else f"{frac:.0%}")


def paid_rates(journal: pd.DataFrame) -> tuple[float, float, float | None]:
    """Return the fee rate, the slippage rate and the share of cash an entry spent, from the fills.

    Each is the median over the journal's fills (the first two) or entries (the third): a fee as a
    fraction of the fill's notional, slippage as a fraction of the open, an entry's cost (fee
    included) as a share of the cash before it. Rates are 0 and the share None with no fill.
    """
    fees, slips, shares = [], [], []
    for fill, cash in zip(journal["fill"], journal["cash"], strict=True):
        if not isinstance(fill, Mapping):
            continue
        notional = float(fill["units"]) * float(fill["price"])
        if notional <= 0:
            continue
        slip = float(fill.get("slippage_cost") or 0.0)
        at_open = notional - slip if fill["side"] == "BUY" else notional + slip  # units x open
        fees.append(float(fill["fee"]) / notional)
        slips.append(slip / at_open if at_open > 0 else 0.0)
        if fill["side"] == "BUY":
            before = float(cash) - float(fill["cash_flow"])
            shares.append(-float(fill["cash_flow"]) / before if before > 0 else 0.0)

    def median(values: list[float]) -> float:
        return float(pd.Series(values).median()) if values else 0.0

    return median(fees), median(slips), median(shares) if shares else None


def rolling_window(timeframe_ms_: int, bars: int) -> int:
    """Return the bars of a rolling Sharpe window: a day of intraday bars, 63 daily bars (a quarter).

    It stays under half the run, so the curve has room to show.

    Examples
    --------
    >>> rolling_window(60_000, 10_080), rolling_window(86_400_000, 1_000), rolling_window(60_000, 600)
    (1440, 63, 60)
    """
    day = 86_400_000
    window = max(2, round(day / timeframe_ms_)) if timeframe_ms_ < day else 63
    return window if window * 2 <= bars else max(2, bars // 10)


def halt_html(figures: Mapping[str, Any]) -> str:
    """Return a red warning when the guardrails refused every entry to the end of the run, else ""."""
    halt = figures.get("guardrail_halt")
    if not halt:
        return ""
    share = halt["bars"] / max(1, int(figures.get("bars") or 0))
    since, why = html.escape(utc(halt["first_ts"])), html.escape(", ".join(halt["reasons"]))
    return (
        f'<div style="border:2px solid {RED};padding:0.4em 0.8em;margin:0.5em 0">'
        f'<b style="color:{RED}">The guardrails stopped all trading</b> from {since} to the end of the '
        f"run: {halt['bars']:,} bars ({share:.0%} of the run), {halt['blocks']:,} entries refused ({why}). "
        "The figures above include that idle stretch.</div>"
    )


# --- model drift (daily report) -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDrift:
    """How far one day's features and predicted probabilities moved from a model's training window.

    `table` has a row per series (the predicted probability first, then each feature, largest PSI
    first): PSI, its level in words (`labkit.features.drift.drift_level`), whether it is above
    `limit` (the session's ``gates.model.max_psi``) and the rows compared. It is empty when the
    session decided with no trained model that day; `message` says what the section shows.
    """

    models: tuple[str, ...]
    message: str
    table: pd.DataFrame
    limit: float

    def styled(self) -> Any:
        """Return `table` styled: ``drift`` in red, ``watch`` in orange, ``stable`` in green."""
        from labkit.reports.figures import ORANGE

        colours = {"drift": RED, "watch": ORANGE, "stable": GREEN}

        def colour(value: str) -> str:
            return f"color:{colours[value]};font-weight:bold" if value in colours else ""

        return self.table.style.map(colour, subset=["level"])


def model_limit(config: Mapping[str, Any]) -> float:
    """Return the drift limit of a session's config: ``gates.model.max_psi`` (0.25 when unset)."""
    from labkit.features.drift import PSI_DRIFT

    value = (config.get("gates", {}).get("model") or {}).get("max_psi")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else PSI_DRIFT


def _day_features(features: Any, bars: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    # The features of the day's bars; the bars before the day (when the tape has them) warm them up.
    if not len(bars):
        return pd.DataFrame(columns=list(features.names), dtype=float)
    upto = bars[bars.index < end]
    first = int(np.searchsorted(upto.index, start))
    frame = features.frame(upto.iloc[max(0, first - features.warmup + 1) :])
    return frame[frame.index >= start]


def model_drift(view: SessionView, rows: pd.DataFrame, day: str) -> ModelDrift:
    """Return the PSI of the day's features and predicted probabilities against each trained model
    the session decided with that day (`rows`: the day's journal lines).

    A model counts when the journal's ``model`` names a folder under ``data/models/``. Features are
    computed over the session's tape (bars before the day give the warm-up) for the day's bars;
    probabilities are the journal's ``confidence`` of the day's bars the model decided. Each is
    compared with model.json's ``drift`` and ``drift_probability`` profiles of the training window.
    """
    from labkit.analysis.periods import day_bounds
    from labkit.features.drift import FeatureProfile, drift_level, psi, psi_1d
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import load_model, models_dir
    from labkit.strategies.model import CLOCK_FEATURES

    limit = model_limit(view.config)
    named = [str(m) for m in rows["model"].dropna().unique()] if len(rows) else []
    trained = tuple(m for m in named if (models_dir(view.home) / m / "model.json").is_file())
    gate_on = "model" in (view.config.get("gates", {}).get("enabled") or [])
    if not trained:
        what = ", ".join(named) or "nothing"
        return ModelDrift(
            (),
            f"No model to drift: on {day} this session decided with {what}, not a model trained by "
            "labkit train, so there is no training window to compare the day with.",
            pd.DataFrame(),
            limit,
        )
    start, end = day_bounds(day)
    bars = view.bars()
    tables, notes = [], []
    for model_id in trained:
        try:
            meta = load_model(view.home, model_id).meta
        except ConfigError as exc:
            notes.append(f"{model_id} cannot be read ({exc}).")
            continue
        features = FeatureSet(list((meta.get("features") or {}).get("names") or []))
        profile = FeatureProfile.from_dict(meta["drift"])
        complete = _day_features(features, bars, start, end).dropna()
        scores = psi(profile, complete[list(profile.names)].to_numpy()) if len(complete) else {}
        decided = rows[(rows["model"] == model_id)]
        probability = pd.to_numeric(decided["confidence"], errors="coerce").dropna().to_numpy(dtype=float)
        entries: list[tuple[str, float, int, bool, str]] = []  # series, PSI, rows, gated, note
        if meta.get("drift_probability"):
            p_profile = FeatureProfile.from_dict(meta["drift_probability"])
            value = psi_1d(p_profile.edges[0], p_profile.proportions[0], probability)
            note = "against the training folds' probabilities; the gate reads the features"
            entries.append(("predicted probability", value, len(probability), True, note))
        market, clocks = [], []
        for name in profile.names:
            value = scores.get(name, float("nan"))
            one = bool(len(complete)) and complete[name].nunique() == 1
            if name in CLOCK_FEATURES:
                note = "a clock, not market state: the gate leaves it out" + (
                    "; one value all day" if one else ""
                )
                clocks.append((name, value, len(complete), False, note))
            else:
                market.append((name, value, len(complete), True, "one value all day" if one else ""))
        entries += sorted(market, key=lambda e: -e[1] if e[1] == e[1] else 1.0) + clocks

        def against(value: float, gated: bool) -> str:
            if not gated:
                return "not gated"
            return "n/a" if value != value else ("above" if value > limit else "within")

        table = pd.DataFrame(
            {
                "model": model_id,
                "series": [e[0] for e in entries],
                "PSI": ["n/a" if e[1] != e[1] else f"{e[1]:.4f}" for e in entries],
                "level": ["n/a" if e[1] != e[1] else drift_level(e[1]) for e in entries],
                f"against max_psi {limit:g}": [against(e[1], e[3]) for e in entries],
                "rows compared": [f"{e[2]:,}" for e in entries],
                "note": [e[4] for e in entries],
            }
        )
        tables.append(table)
    table = pd.concat(tables).set_index(["model", "series"]) if tables else pd.DataFrame()
    message = (
        f"The population stability index (PSI) of {day}'s bars against the training window of "
        f"{', '.join(trained)}: below 0.1 stable, 0.1 to 0.25 watch, above 0.25 drift. The limit is "
        f"gates.model.max_psi = {limit:g} from the session's config"
        + ("" if gate_on else " (the model gate is not enabled in this session: shown for reference)")
        + "."
        + (" " + " ".join(notes) if notes else "")
    )
    return ModelDrift(trained, message, table, limit)

"""What the report notebooks show as tables: a session loaded for reporting, its header and summaries."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labkit._io import read_json
from labkit.errors import ConfigError
from labkit.journal import read_journal
from labkit.readiness.metrics import max_drawdown
from labkit.readiness.periods import iso_week
from labkit.readiness.trips import blocking_table, round_trips
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

        return ledger_table(ledger(self.journal, self.bars()), quote_currency(self.config))


def ledger_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return a gate ledger (`labkit.readiness.ledger`) with money in `currency` and shares in %."""
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
    frac = float(view.config.get("risk", {}).get("position_frac", 1.0))
    if result is not None and result.calendar:
        calendar = str(result.calendar.get("description"))
        annualisation = str(result.calendar.get("annualisation"))
    else:
        calendar, annualisation = _calendar_words(view)
    mode = view.config.get("session", {}).get("mode")
    items = {
        "fills": FILL_MODEL.format(frac=f"{frac:.0%}"),
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
    from labkit.readiness.calendar import calendar_of

    market = calendar_of(view.config, view.journal)
    return market.describe(), market.annualisation(view.timeframe_ms)

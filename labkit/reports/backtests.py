"""A backtest journal read for a report (`load_backtest`), and the backtest report's tables: its
header, its figures (those of ``labkit backtest --json``), its summary and what it assumes."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit._io import file_hash
from labkit.analysis.formatting import duration, money, number, percent
from labkit.analysis.trips import blocking_table, exit_reasons, journal_fills
from labkit.errors import ConfigError
from labkit.reports.figures import RED
from labkit.reports.journals import exit_ledger_table, ledger_table
from labkit.reports.sessions import FILL_MODEL, quote_currency
from labkit.reports.tables import (
    TearsheetTables,
    data_range,
    extrapolation_note,
    shown_parameters,
    utc,
)
from labkit.timeutil import now_ms, timeframe_ms

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
_NOTHING_FIT = {"model": None, "model_in_sample": None, "in_sample_fraction": 0.0}


@dataclass(frozen=True)
class BacktestView(TearsheetTables):
    """A backtest journal read for a report (`load_backtest`): its last run and the market's calendar.

    `shown` is the journal's path as a page may show it: relative to the home when it lies under
    it, else its file name. `runs` counts the runs the file holds (``labkit backtest --append``
    adds one, its ``seq`` starting again at 0); `journal` is the last, from line `first_line`.
    `calendar_given` is False when no ``--calendar`` was given: then the calendar is the one the
    backtest recorded in the summary it keeps beside its journal (`labkit.research.backtest.save_summary`),
    or 24/7, said to be assumed, for a journal without one. `in_sample` holds the backtest's
    ``model``, ``model_in_sample`` and ``in_sample_fraction`` (`labkit.research.backtest.model_evidence`).
    """

    path: Path
    shown: str
    journal: pd.DataFrame
    runs: int
    first_line: int
    calendar: Any  # labkit.analysis.calendar.MarketCalendar
    calendar_given: bool
    in_sample: Mapping[str, Any] = field(default_factory=lambda: dict(_NOTHING_FIT))
    home: Path | None = None  # where the run's bars are reloaded from (`price_bars`)

    @property
    def symbols(self) -> list[str]:
        """The symbols the run decided, in the universe's order (one for a single symbol)."""
        from labkit.reports.books import universe

        return universe(self.journal)

    @property
    def symbol(self) -> str:
        """The market, or a book's first symbol (its chart's, and its quote currency's)."""
        return self.symbols[0] if self.is_book else str(self.journal["symbol"].iloc[-1])

    @property
    def market(self) -> str:
        """The symbol, or a book's symbols in words: ``a book of 3: BTC/USDT, ETH/USDT, SOL/USDT``."""
        if not self.is_book:
            return self.symbol
        return f"a book of {len(self.symbols)}: {', '.join(self.symbols)}"

    @property
    def bars(self) -> pd.DataFrame:
        """The run as one line per bar (`per_bar`): a book's last line at each time, its ``price``
        the universe's equal-weight buy and hold."""
        return self.per_bar

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
        return f"{', '.join(self.models) or 'backtest'} on {self.market} {self.timeframe}"

    def ledger_costs(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return what the run's ledgers are priced and sized with: fee, slippage, risk, floor, and bases.

        The fee and slippage are the run's configured ones, which ``labkit backtest --journal``
        records beside the journal (its summary's ``fee`` and ``slippage_rate``); for a journal
        without them, `config`'s ``broker`` section (the home's configuration, `home_config`), or
        labkit's defaults. ``basis`` says where the rates came from. The ``risk`` section and a
        model's entry threshold (``confidence_floor``) are the run's, recorded there too
        (`labkit.research.backtest.save_summary`); for a journal without them, `config`'s, or all
        in. ``sizing_basis`` says which.
        """
        config = config or {}
        recorded = self._recorded_run() or {}
        broker = config.get("broker") or {}
        if recorded.get("fee") is not None:
            fee, slippage = float(recorded["fee"]), float(recorded.get("slippage_rate") or 0.0)
            basis = "the run's broker config, recorded beside its journal"
        elif broker:
            fee, slippage = float(broker.get("fee", 0.001)), float(broker.get("slippage", 0.0))
            basis = "the home's broker config (none was recorded beside this journal)"
        else:
            fee, slippage, basis = 0.001, 0.0, "labkit's default broker config (none was recorded)"
        sizing, sizing_basis = self._sizing(recorded, config)
        return {"fee": fee, "slippage": slippage, **sizing, "basis": basis, "sizing_basis": sizing_basis}

    def _sizing(self, recorded: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        # How the run sized its entries, and where that was read: its record, else `config`'s.
        if isinstance(recorded.get("risk"), Mapping):
            floor = recorded.get("confidence_floor")
            sizing = {
                "risk": dict(recorded["risk"]),
                "confidence_floor": None if floor is None else float(floor),
            }
            return sizing, "the run's risk config, recorded beside its journal"
        from labkit.analysis.execution import session_sizing

        # A model's entry threshold scales risk sizes only when a model decided the run.
        strategy = "model" if any(m.startswith("model") for m in self.models) else "sma_cross"
        sizing = session_sizing({**config, "session": {"strategy": strategy}})
        if config.get("risk"):
            return sizing, "the home's risk config (none was recorded beside this journal)"
        return sizing, "labkit's default risk config (none was recorded beside this journal)"

    def _recorded_run(self) -> dict[str, Any] | None:
        # The summary kept beside the journal, when it is of this run (the same number of bars).
        from labkit.research.backtest import read_summary

        summary = read_summary(self.path)
        if not summary or summary.get("bars") not in _bar_counts(self.journal):
            return None
        return summary

    def price_bars(self, symbol: str = "") -> tuple[pd.DataFrame | None, str]:
        """Return the OHLC bars the run decided on, reloaded, and where they came from in words.

        A journal holds closes only; the summary beside it names the run's ``source``, ``symbol``,
        ``timeframe`` and ``seed``, and the bars of the journal's first..last time are read from
        there again: generated again, read from the bar file, or read from the cache a download
        filled (never fetched: a report does not touch the network). Without them (a journal older
        than that record, a source or file gone, bars that no longer match the journal's closes)
        the bars are None and the words say why. `symbol` picks one symbol of a book (its first
        by default).
        """
        recorded = self._recorded_run() or {}
        symbol = symbol or self.symbol
        journal = self.symbol_journal(symbol)
        source = recorded.get("source")
        if not source or self.home is None:
            return None, "no source was recorded beside this journal (a backtest older than that record)"
        symbol = symbol if self.is_book else str(recorded.get("symbol") or symbol)
        timeframe = str(recorded.get("timeframe") or self.timeframe)
        try:
            bars = _reload_bars(
                self.home,
                str(source),
                symbol,
                timeframe,
                int(recorded.get("seed") or 7),
                journal,
                list(recorded.get("symbols") or [symbol]),
            )
        except Exception as exc:  # noqa: BLE001 - any failure only costs the candles
            return None, f"the bars of {source} could not be read again ({type(exc).__name__}: {exc})"
        journal = journal[journal["price"].notna()]  # a book's symbol without a bar at a time
        times = pd.DatetimeIndex(journal["ts"])
        if len(bars) == 0 or not times.isin(bars.index).all():
            return None, f"{source} no longer holds every bar of {symbol} {timeframe} this journal decided on"
        closes = bars["close"].reindex(times).to_numpy(dtype=float)
        if not np.allclose(closes, journal["price"].to_numpy(dtype=float), rtol=1e-9, atol=0.0):
            return None, f"the bars {source} gives now differ from the closes this journal recorded"
        return bars, f"{symbol} {timeframe} bars read again from {source}"

    def ledger(self, config: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the run, unformatted (`ledger_costs` prices it).

        A journal holds closes, not opens: would-have trades fill at the close before each open.
        A book's is each symbol's ledger, a ``symbol`` column first, each sized against the book's
        cash and equity as if it were alone.
        The table's ``attrs`` say where the rates (``basis``) and the sizing (in ``sizing``) came from.
        """
        from labkit.readiness.counterfactual import ledger

        costs = self.ledger_costs(config)

        def one(journal: pd.DataFrame) -> pd.DataFrame:
            return ledger(
                journal,
                fee=costs["fee"],
                slippage=costs["slippage"],
                risk=costs["risk"],
                confidence_floor=costs["confidence_floor"],
            )

        table = one(self.journal) if not self.is_book else _per_symbol(self, one)
        table.attrs["basis"] = costs["basis"]
        table.attrs["sizing"] = f"{table.attrs['sizing']}; {costs['sizing_basis']}"
        return table

    def gate_ledger(self, config: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the run, formatted for a report."""
        return ledger_table(self.ledger(config), self.currency)

    def exit_ledger(self, config: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the run's enforced exits against holding to the next exit signal, formatted.

        Like the gate ledger, the held position sells at the close before the open after the
        signal, at the fee and slippage of `ledger_costs`.
        """
        from labkit.readiness.counterfactual import exit_ledger

        costs = self.ledger_costs(config)

        def one(journal: pd.DataFrame) -> pd.DataFrame:
            return exit_ledger(journal, fee=costs["fee"], slippage=costs["slippage"])

        table = one(self.journal) if not self.is_book else _per_symbol(self, one)
        return exit_ledger_table(table, self.currency)


def _per_symbol(bt: BacktestView, table: Any) -> pd.DataFrame:
    # A book's table made one symbol at a time, a ``symbol`` column first; the first's attrs.
    parts = [table(bt.symbol_journal(s)).assign(symbol=s) for s in bt.symbols]
    joined = pd.concat(parts, ignore_index=True)
    joined.attrs = dict(parts[0].attrs)
    return joined[["symbol", *[c for c in joined.columns if c != "symbol"]]]


def _reload_bars(
    home: Path,
    spec: str,
    symbol: str,
    timeframe: str,
    seed: int,
    journal: pd.DataFrame,
    universe: list[str],
) -> pd.DataFrame:
    # The bars of the journal's first..last time from `spec`, as the backtest read them (a book's
    # symbol as its universe gave it); a source read through the download cache from the cache alone.
    from labkit.config.loading import load_config
    from labkit.data.bars import slice_range
    from labkit.data.cache import CachedSource, cache_path, read_parquet
    from labkit.data.registry import open_source

    first = int(journal["ts"].iloc[0].value // 1_000_000)
    until = int(journal["ts"].iloc[-1].value // 1_000_000) + 1
    config = load_config(home)
    source = open_source(spec, home, seed, data=config.data, exchanges=config.exchanges)
    if isinstance(source, CachedSource):
        path = cache_path(home, source.spec, symbol, timeframe)
        if not path.exists():
            raise FileNotFoundError(f"no cached bars of {symbol} {timeframe}")
        return slice_range(read_parquet(path), first, until)
    return source.universe_bars(universe, timeframe, first, until)[symbol]


def home_config(home: str | Path = "") -> dict[str, Any]:
    """Return the configuration of `home` ("" means labkit's usual home) as data, for the ledgers.

    What ``labkit backtest`` runs with when no flag changes it: ``labkit.yaml`` and ``LABKIT_*``.
    """
    from labkit.config.loading import load_config
    from labkit.home import home_arg

    return load_config(home_arg(home)).model_dump(mode="json")


def load_backtest(journal: str | Path, home: str | Path = "", calendar: str = "") -> BacktestView:
    """Return the backtest journal at `journal` read for a report (its last run, if it holds several).

    A relative `journal` is taken from the home ("" means labkit's usual home). `calendar`
    (``24/7``, ``equities``, ``fx``) is the market's calendar for annualised figures; "" takes the
    one the backtest recorded beside its journal, as ``labkit backtest`` annualised, and assumes
    24/7 for a journal without it. Raise `ConfigError` naming ``--journal`` when the file is
    missing, empty or not a decision journal.
    """
    from labkit.analysis.calendar import MarketCalendar, bar_times, session_calendar
    from labkit.engine.journal import read_journal
    from labkit.home import as_path, home_arg

    root = home_arg(home)
    path = as_path(journal, "journal").expanduser()
    path = path if path.is_absolute() else root / path
    starts, lines = _check_journal(path)
    frame = read_journal(path)
    try:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--journal: {path} has a ts that is not a time ({exc}); {_JOURNAL_HINT}") from None
    first = starts[-1]
    frame = frame.iloc[first:].reset_index(drop=True)
    recorded = _recorded_summary(path, frame)
    if calendar:
        tf = timeframe_ms(str(frame["timeframe"].iloc[-1]))
        market = session_calendar("journal", calendar, bar_times(frame), tf)
    elif recorded is not None and isinstance(recorded.get("calendar"), Mapping):
        market = MarketCalendar.from_dict(recorded["calendar"])
        market = replace(market, basis=f"recorded by the backtest: {market.basis}")
    else:
        market = MarketCalendar(
            "24/7",
            basis="assumed: no calendar was recorded beside this backtest journal; --calendar sets it",
        )
    in_sample = _in_sample(recorded, frame, root)
    try:
        shown = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path.name
    return BacktestView(path, shown, frame, len(starts), first + 1, market, bool(calendar), in_sample, root)


def _recorded_summary(path: Path, frame: pd.DataFrame) -> dict[str, Any] | None:
    # The summary `labkit backtest --journal` kept, when it is of the run read: same bars, same span.
    from labkit.research.backtest import read_summary
    from labkit.timeutil import iso_s

    summary = read_summary(path)
    if summary is None or not len(frame):
        return None
    first, last = (int(frame["ts"].iloc[i].value // 1_000_000) for i in (0, -1))
    same_run = summary.get("bars") in _bar_counts(frame) and (
        summary.get("first_ts"),
        summary.get("last_ts"),
    ) == (iso_s(first), iso_s(last))
    return summary if same_run else None


def _bar_counts(frame: pd.DataFrame) -> set[int]:
    # What a summary of this run may count as its bars: its lines, or a book's bar times.
    return {len(frame), int(frame["ts"].nunique())}


def _in_sample(recorded: Mapping[str, Any] | None, frame: pd.DataFrame, home: Path) -> dict[str, Any]:
    # What the backtest said of its model, else the journal's model measured against the home's.
    keys = tuple(_NOTHING_FIT)
    if recorded is not None and all(key in recorded for key in keys):
        # A meta gate's model, when one judged the entries, is held to the same test (its keys ride along).
        meta = ("meta_model", "meta_model_in_sample", "meta_in_sample_fraction")
        return {key: recorded[key] for key in (*keys, *meta) if key in recorded}
    from labkit.models.artifacts import in_sample_span, model_trained_at
    from labkit.research.backtest import in_sample_fraction
    from labkit.timeutil import iso_s

    models = [str(m) for m in frame["model"].dropna()]
    model = models[-1] if models else ""
    if model_trained_at(home, model) is None:
        return dict(_NOTHING_FIT)
    span = in_sample_span(home, model)
    if span is None:
        return {"model": model, "model_in_sample": None, "in_sample_fraction": None}
    from labkit.analysis.calendar import bar_times

    times = bar_times(frame)
    return {
        "model": model,
        "model_in_sample": {"since": iso_s(span[0]), "until": iso_s(span[1])},
        "in_sample_fraction": in_sample_fraction(times, span),
    }


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
        "market": f"{bt.market} {bt.timeframe} (mode {modes}); money in {bt.currency}",
        "data range": data_range(bt.bars),
        "model": ", ".join(bt.models) or "none",
        "out of sample": out_of_sample(bt.in_sample),
        "calendar": bt.calendar.describe(),
        "code version": f"{code_version()} (this page)",
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def open_since(journal: pd.DataFrame) -> pd.Timestamp | None:
    """Return when the position still open at the journal's end was entered, or None when flat.

    Every fill counts, in order (`journal_fills`): an entry its own bar stopped out (``exit_fill``)
    was closed there, so it is never the open position.
    """
    if journal.empty or not float(journal["position"].iloc[-1]) > 0:
        return None
    fills = journal_fills(journal).reset_index(drop=True)
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

    j, per_bar = bt.journal, bt.bars
    times = pd.DatetimeIndex(per_bar["ts"])
    equity = pd.Series(per_bar["equity"].to_numpy(dtype="float64"), index=times, name="equity")
    figures = summarize(equity, bt.capital, bt.timeframe_ms, bt.periods_per_year)
    # A book's per-bar price is the universe's equal-weight buy and hold (`BacktestView.bars`).
    bars = pd.DataFrame({"close": per_bar["price"].to_numpy(dtype="float64")}, index=times)
    figures.update(trade_summary(bt.trips(), bars, _open_since(bt)))
    if bt.is_book:
        # The symbols' trades overlap: a book is in the market at a time when it holds any of them.
        from labkit.reports.books import exposure

        held = exposure(j)["held"]
        figures["exposure_pct"] = float((held > 0).mean() * 100.0) if len(held) else None
    fills = journal_fills(j)  # a line's exit on its entry's own bar is a fill of its own
    sides = fills["fill_side"]
    blocks = blocking_table(j)
    figures.update(
        annualisation=bt.annualisation,
        trades=int((sides == "BUY").sum()),
        fills=len(fills),
        closed_trades=int((sides == "SELL").sum()),
        open_position=float(j["position"].iloc[-1]) if not bt.is_book else float(len(_held(bt))),
        open_symbols=_held(bt),
        decisions=len(j),
        **({"buy_hold_of": "the universe in equal parts"} if bt.is_book else {}),
        fees=float(pd.to_numeric(fills["fill_fee"]).fillna(0.0).sum()),
        slippage=float(pd.to_numeric(fills["fill_slippage_cost"]).fillna(0.0).sum()),
        strategy=", ".join(bt.models),
        blocked=int(blocks["count"].sum()) if len(blocks) else 0,
        blocks=[{"stage": r.stage, "reason": r.reason, "count": int(r.count)} for r in blocks.itertuples()],
        guardrail_halt=_halt(bt),
        **bt.in_sample,
    )
    return figures


def _held(bt: BacktestView) -> list[str]:
    # The symbols still held at the end (a single symbol's too, when it is).
    from labkit.reports.books import open_symbols

    return open_symbols(bt.journal)


def _open_since(bt: BacktestView) -> pd.Timestamp | None:
    # When the book was first in the market without a break to the end: its earliest open entry.
    if not bt.is_book:
        return open_since(bt.journal)
    entries = [open_since(bt.symbol_journal(s)) for s in bt.symbols]
    found = [e for e in entries if e is not None]
    return min(found) if found else None


def _halt(bt: BacktestView) -> dict[str, Any] | None:
    # A book's halt counts the bar times it spans, not its lines (one per symbol at each).
    halt = guardrail_halt(bt.journal)
    if halt is None or not bt.is_book:
        return halt
    since = pd.Timestamp(halt["first_ts"])
    return {**halt, "bars": int((pd.DatetimeIndex(bt.bars["ts"]) >= since).sum())}


def out_of_sample(in_sample: Mapping[str, Any]) -> str:
    """Return, for the header, whether the model was judged on bars it was trained on."""
    model, fraction, span = (in_sample.get(k) for k in ("model", "in_sample_fraction", "model_in_sample"))
    if model is None:
        return "no trained model decided: nothing was fit to these bars"
    if fraction is None or not span:
        return f"unknown: model {model} does not record the bars it was trained on"
    seen = f"model {model} saw {utc(span['since'])} to {utc(span['until'])} (training and embargo)"
    if fraction == 0:
        return f"yes: every bar is after what {seen}"
    return f"NO: {fraction:.1%} of the bars are inside what {seen}"


def in_sample_html(in_sample: Mapping[str, Any]) -> str:
    """Return a red warning when the model was judged on bars it had seen in training, else ""."""
    from labkit.research.backtest import in_sample_warning

    text = in_sample_warning(dict(in_sample))
    if text is None:
        return ""
    fraction = in_sample.get("in_sample_fraction")
    head = "In sample" if fraction is not None else "Out of sample? Unknown"
    return (
        f'<div style="border:2px solid {RED};padding:0.4em 0.8em;margin:0.5em 0">'
        f'<b style="color:{RED}">{head}:</b> {html.escape(text[0].upper() + text[1:])}.</div>'
    )


def backtest_summary(bt: BacktestView, figures: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return the run's summary figures as a one-column table: money in the quote currency, times UTC."""
    f = backtest_figures(bt) if figures is None else figures
    cur = bt.currency

    def pct(key: str, digits: int = 2) -> str:
        return percent(f.get(key), digits)

    def num(key: str) -> str:
        return number(f.get(key))

    def span(key: str) -> str:
        return duration(f.get(key))

    capital, final = bt.capital, float(f["final_equity"])
    short = extrapolation_note(bt.bars)  # annual figures of under a month of bars say so
    expectancy = f.get("expectancy")
    halt = f.get("guardrail_halt")
    items = {
        "capital": money(capital, cur),
        "final equity": money(final, cur),
        "total return": f"{money(final - capital, cur)} ({pct('return_pct')})",
        "annual return": f"{pct('annual_return_pct')} (CAGR {pct('cagr_pct')}){short}",
        "annual volatility": pct("annual_volatility_pct") + short,
        "Sharpe ratio": num("sharpe") + short,
        "Sortino ratio": num("sortino") + short,
        "Calmar ratio": num("calmar") + short,
        "annualisation": str(f.get("annualisation")),
        "max drawdown": pct("max_drawdown_pct"),
        "longest drawdown": f"{f.get('max_drawdown_bars', 0):,} bars ({span('max_drawdown_duration')})",
        "probabilistic Sharpe ratio": num("psr"),
        "entries / closed trades": f"{f['trades']:,} / {f['closed_trades']:,}" + _still_open(bt, f),
        "hit rate": pct("hit_rate_pct", 1),
        "profit factor": num("profit_factor"),
        "expectancy": "n/a" if expectancy is None else f"{money(expectancy, cur)} a trade",
        "average / best / worst trade": f"{pct('avg_trade_pct')} / {pct('best_trade_pct')} / "
        f"{pct('worst_trade_pct')}",
        "average / longest time in a trade": f"{span('avg_trade_duration')} / {span('max_trade_duration')}",
        "exposure": f"{pct('exposure_pct', 1)} of the bars in the market",
        "fees / slippage": f"{money(f['fees'], cur)} / {money(f['slippage'], cur)}",
        "buy and hold": f"return {pct('buy_hold_return_pct')}, max drawdown "
        f"{pct('buy_hold_max_drawdown_pct')} "
        + (
            "(the universe in equal parts at the first closes, no costs)"
            if bt.is_book
            else "(same bars, no costs)"
        ),
        "blocked decisions": f"{f['blocked']:,} of {f.get('decisions', f['bars']):,}"
        + (f" ({f['bars']:,} bars x {len(bt.symbols)} symbols)" if bt.is_book else ""),
        "guardrail halt": "none"
        if not halt
        else f"every entry refused from {utc(halt['first_ts'])} to the end: {halt['bars']:,} bars "
        f"({halt['bars'] / max(1, f['bars']):.0%} of the run), {halt['blocks']:,} entries refused "
        f"({', '.join(halt['reasons'])})",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="figure"))


_SAME_BARS = "(same bars, no costs)"


def _still_open(bt: BacktestView, f: Mapping[str, Any]) -> str:
    # What was still held at the end: a single symbol's units, or a book's symbols.
    if not f["open_position"]:
        return ""
    if bt.is_book:
        return f" (still open in {', '.join(f.get('open_symbols') or [])})"
    return f" (a position of {f['open_position']:.6g} units still open)"


def backtest_assumptions(bt: BacktestView) -> pd.DataFrame:
    """Return what the run's figures assume: fills, the fees and slippage its fills paid, the calendar."""
    from labkit.readiness.weekly import EQUITY_BASIS

    fee, slippage, frac = paid_rates(bt.journal)
    paid = "read from the run's fills" if frac is not None else "no fill to read it from"
    enforced = sorted(set(exit_reasons(bt.journal)) - {"signal", "emergency_stop"})
    items = {
        "fills": _book_sizing(bt) if bt.is_book else _backtest_sizing(bt.journal, frac),
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
    if bt.is_book:
        items["book"] = (
            f"one book over {len(bt.symbols)} symbols ({', '.join(bt.symbols)}) sharing its cash; equity "
            "is the book's at each bar's end; all_in buys an equal slice (the smaller of the cash and "
            "equity / slots); buy and hold splits the capital equally at the first closes"
        )
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="assumption"))


def _book_sizing(bt: BacktestView) -> str:
    # A book records the units of every entry, all in or not: its recorded risk config says which,
    # else an entry's ATR (risk sizing needs one; an all-in slice of a run without ATR exits has none).
    risk = (bt._recorded_run() or {}).get("risk")
    if isinstance(risk, Mapping) and risk.get("sizing"):
        by_risk = risk["sizing"] == "risk"
    else:
        details = [
            t.get("detail") or {}
            for t, a in zip(bt.journal["gate_trace"], bt.journal["action"], strict=True)
            if a == "BUY" and isinstance(t, Mapping)
        ]
        by_risk = any(d.get("atr") is not None for d in details)
    if by_risk:
        return _backtest_sizing(bt.journal, None)
    return (
        "an order decided at a bar's close fills at the next bar's open; long only; all in, sliced for "
        "the book: an entry buys the smaller of the cash and equity / slots (portfolio.max_open_positions, "
        "else the number of symbols), fee included; an exit sells the whole position"
    )


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
    included) as a share of the cash before it. Every fill of a line counts, the exit filled on an
    entry's own bar (``exit_fill``) too. Rates are 0 and the share None with no fill.
    """
    from labkit.engine.journal import line_fills

    fees, slips, shares = [], [], []
    second = journal["exit_fill"] if "exit_fill" in journal.columns else [None] * len(journal)
    for fill, exit_fill, cash in zip(journal["fill"], second, journal["cash"], strict=True):
        line = line_fills({"fill": _mapping(fill), "exit_fill": _mapping(exit_fill)})
        # The line's cash is after all its fills: the cash before each is what they had not moved yet.
        before = float(cash) - sum(float(f["cash_flow"]) for f in line)
        for one in line:
            rates = _fill_rates(one)
            if rates is not None:
                fees.append(rates[0])
                slips.append(rates[1])
                if one["side"] == "BUY":
                    shares.append(-float(one["cash_flow"]) / before if before > 0 else 0.0)
            before += float(one["cash_flow"])

    def median(values: list[float]) -> float:
        return float(pd.Series(values).median()) if values else 0.0

    return median(fees), median(slips), median(shares) if shares else None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    # A journal frame's fill cell: the fill's dict, or None (or NaN) without one.
    return value if isinstance(value, Mapping) else None


def _fill_rates(fill: Mapping[str, Any]) -> tuple[float, float] | None:
    # A fill's fee as a fraction of its notional and its slippage as a fraction of units x open.
    notional = float(fill["units"]) * float(fill["price"])
    if notional <= 0:
        return None
    slip = float(fill.get("slippage_cost") or 0.0)
    at_open = notional - slip if fill["side"] == "BUY" else notional + slip  # units x open
    return float(fill["fee"]) / notional, slip / at_open if at_open > 0 else 0.0


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


# -- the conclusion -------------------------------------------------------------------------------


def backtest_conclusion(figures: Mapping[str, Any]) -> str:
    """Say in plain words what a backtest's figures show, and no more: its return after costs
    against buy and hold, its trades, whether its Sharpe ratio is shown above zero, and, when its
    model had seen the bars, why the figures prove little.

    `figures` holds the fields of ``labkit backtest --json`` (`backtest_figures`).

    Examples
    --------
    >>> backtest_conclusion({"return_pct": 0.0, "trades": 0})[:71]
    'After costs the run ended where it started. It never entered a trade, s'
    """
    from labkit.research.backtest import in_sample_warning

    sentences = [_return_sentence(figures), _trades_sentence(figures), _sharpe_sentence(figures)]
    warning = in_sample_warning(dict(figures))
    if warning is not None:
        head = "In sample" if figures.get("in_sample_fraction") is not None else "Out of sample? Unknown"
        sentences.append(f"{head}: {warning}.")
    return " ".join(s for s in sentences if s)


def _return_sentence(f: Mapping[str, Any]) -> str:
    r, hold = f.get("return_pct"), f.get("buy_hold_return_pct")
    if r is None or r != r:
        return "The run's return is unknown."
    moved = "ended where it started" if r == 0 else f"{'lost' if r < 0 else 'gained'} {percent(abs(r), 1)}"
    if hold is None or hold != hold:
        return f"After costs the run {moved}."
    if r == hold:
        verdict = "the same as holding the market"
    else:
        verdict = f"{'better' if r > hold else 'worse'} than holding the market"
    lead = f"After costs the run {moved}" if r == 0 else f"The run {moved} after costs"
    held = f.get("buy_hold_of") or "the same bars"  # a book's: the universe in equal parts
    return f"{lead}, against {percent(hold, 1)} for buy and hold of {held} (no costs): {verdict}."


def _trades_sentence(f: Mapping[str, Any]) -> str:
    entries, closed = int(f.get("trades") or 0), int(f.get("closed_trades") or 0)
    if entries == 0:
        return "It never entered a trade, so there is nothing to judge it by."
    said = f"{entries:,} entr{'y' if entries == 1 else 'ies'}, {closed:,} closed"
    if closed:
        said += f", hit rate {percent(f.get('hit_rate_pct'), 1)}"
        if closed < 10:
            said += " (too few trades to say much)"
    if f.get("open_position"):
        said += "; a position was still open at the end, marked at the last close"
    halt = f.get("guardrail_halt")
    if halt:
        said += f"; the guardrails refused every entry over the last {int(halt.get('bars') or 0):,} bars"
    return f"{said[0].upper()}{said[1:]}."


def _sharpe_sentence(f: Mapping[str, Any]) -> str:
    sharpe, psr = f.get("sharpe"), f.get("psr")
    if not int(f.get("trades") or 0):
        return ""
    if sharpe is None or sharpe != sharpe:
        return "It has no Sharpe ratio."
    if psr is None or psr != psr:
        return f"Its Sharpe ratio is {number(sharpe)}; how sure that is (PSR) is unknown."
    if psr >= 0.95:
        return f"Its Sharpe ratio is above zero with 95% confidence (PSR {number(psr)}), on these bars only."
    return f"Its Sharpe ratio is not shown to be above zero (PSR {number(psr)})."

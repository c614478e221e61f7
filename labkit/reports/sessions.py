"""A session read for a report (`load_session`), and the session report's tables: its header,
its summary and what its figures assume (the weekly and daily reports start from these too)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit.analysis.formatting import money, share, significant
from labkit.analysis.metrics import max_drawdown
from labkit.analysis.periods import iso_week
from labkit.analysis.trips import journal_fills, round_trips
from labkit.engine.journal import read_journal
from labkit.errors import ConfigError
from labkit.readiness.weekly import WeeklyReadiness
from labkit.reports.journals import exit_ledger_table, ledger_table
from labkit.reports.tables import (
    TearsheetTables,
    data_range,
    shown_parameters,
    utc,
)
from labkit.session.paths import existing_session, read_saved_config
from labkit.timeutil import now_ms, timeframe_ms

if TYPE_CHECKING:
    from labkit.analysis.calendar import MarketCalendar


@dataclass(frozen=True)
class SessionView(TearsheetTables):
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
    def market(self) -> MarketCalendar:
        """The market calendar the session recorded when it was created (`labkit.session.recorded`)."""
        from labkit.session.paths import session_paths
        from labkit.session.recorded import session_market

        return session_market(session_paths(self.home, self.name), self.config, self.journal)

    @property
    def periods_per_year(self) -> float:
        """Bars in a year of the session's market calendar, for annualised figures."""
        return self.market.periods_per_year(self.timeframe_ms)

    @property
    def annualisation(self) -> str:
        """Say how annualised figures count a year for this session (its calendar and timeframe)."""
        return self.market.annualisation(self.timeframe_ms)

    @property
    def symbols(self) -> list[str]:
        """The symbols the session decided, in the book's order (one for a single symbol)."""
        from labkit.reports.books import universe

        return universe(self.journal) if len(self.journal) else [str(self.config["session"].get("symbol"))]

    def bars(self, symbol: str = "") -> pd.DataFrame:
        """Return the bars the session consumed (from its tape), for fills at their opens.

        A book's tape names each bar's symbol: its bars are `symbol`'s (default: the first).
        """
        from labkit.session.paths import session_paths
        from labkit.session.tape import tape_bars

        tape = session_paths(self.home, self.name).tape
        return tape_bars(tape, (symbol or self.symbols[0]) if self.is_book else None)

    def _per_symbol(
        self, table: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], rows: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        # A book's table made one symbol at a time on its own bars, a ``symbol`` column first.
        journal = self.journal if rows is None else rows
        if not self.is_book:
            return table(journal, self.bars())
        from labkit.reports.books import symbol_frames

        frames = symbol_frames(journal)
        parts = [table(frames[s], self.bars(s)).assign(symbol=s) for s in self.symbols if s in frames]
        if not parts:
            return table(journal, self.bars())
        joined = pd.concat(parts, ignore_index=True)
        joined.attrs = dict(parts[0].attrs)
        return joined[["symbol", *[c for c in joined.columns if c != "symbol"]]]

    @property
    def costs(self) -> dict[str, float]:
        """The fee and slippage the session's ``broker`` config sets: what its ledgers are priced at."""
        broker = self.config.get("broker") or {}
        return {"fee": float(broker.get("fee", 0.001)), "slippage": float(broker.get("slippage", 0.0))}

    @property
    def ledger_inputs(self) -> dict[str, Any]:
        """The keywords of the gate ledger: the configured fee and slippage, and the session's sizing."""
        from labkit.analysis.execution import session_sizing

        return {**self.costs, **session_sizing(self.config)}

    def would_have_trades(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Return the would-have trades of the entries the session's gates refused (all, or `rows`).

        One would-have position at a time, sized as the session sizes (its ``risk`` config) and
        priced at its configured fee and slippage (`labkit.readiness.counterfactual`).
        """
        from labkit.readiness.counterfactual import would_have_trades

        return self._per_symbol(
            lambda journal, bars: would_have_trades(journal, bars, **self.ledger_inputs), rows
        )

    def ledger(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the session (all, or `rows`), unformatted."""
        from labkit.readiness.counterfactual import ledger

        # A book's is each symbol's ledger, each sized against the book's cash as if it were alone.
        return self._per_symbol(lambda journal, bars: ledger(journal, bars, **self.ledger_inputs), rows)

    def gate_ledger(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Return the counterfactual gate ledger of the session (all, or `rows`), formatted for a report."""
        return ledger_table(self.ledger(rows), quote_currency(self.config))

    def exit_ledger(self) -> pd.DataFrame:
        """Return the session's enforced exits against holding to the next exit signal, formatted."""
        from labkit.readiness.counterfactual import exit_ledger

        table = self._per_symbol(lambda journal, bars: exit_ledger(journal, bars, **self.costs))
        return exit_ledger_table(table, quote_currency(self.config))


def quote_currency(config: Mapping[str, Any]) -> str:
    """Return the currency money is counted in: the quote of the session's symbol (USDT of BTC/USDT)."""
    from labkit.data.bars import quote_currency as of_symbol

    return of_symbol(str(config.get("session", {}).get("symbol", "")))


def load_session(home: str | Path, session: str) -> SessionView:
    """Return the session `session` under `home` ("" means labkit's usual home)."""
    from labkit.home import home_arg

    root = home_arg(home)
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


def _require_rows(journal: pd.DataFrame) -> None:
    if journal.empty:
        raise ConfigError("session: the journal has no decisions yet; run the session first")


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
        "session": f"{view.name} ({s.get('mode')}, {_market(view)} {s.get('timeframe')}, "
        f"source {s.get('source')})",
        "data range": data_range(frame),
        "model": ", ".join(models) or "none",
        "code version": code_version(),
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def _market(view: SessionView) -> str:
    # The symbol, or a book's symbols in words: ``a book of 3: BTC/USDT, ETH/USDT, SOL/USDT``.
    symbols = view.symbols
    return f"a book of {len(symbols)}: {', '.join(symbols)}" if view.is_book else symbols[0]


def session_summary(journal: pd.DataFrame, capital: float, currency: str = "") -> pd.DataFrame:
    """Return the summary figures of a whole session as a one-column table (money in `currency`).

    A book's (`labkit.reports.books`): decisions count its lines (a line per time and symbol),
    closed trades are every symbol's, the drawdown is its equity's at each time, and the open
    position names the symbols still held.
    """
    from labkit.reports.books import book_bars, book_trips, is_book, open_symbols

    book = is_book(journal)
    trips = book_trips(journal) if book else round_trips(journal)
    per_bar = book_bars(journal, capital) if book else journal
    equity = float(journal["equity"].iloc[-1]) if len(journal) else capital
    wins = int((trips["net_pnl"] > 0).sum()) if len(trips) else 0
    fills = journal_fills(journal)  # an exit on its entry's own bar is a fill of its own
    fees, slip = fills["fill_fee"].sum(), fills["fill_slippage_cost"].sum()
    items: dict[str, Any] = {
        "decisions": len(journal),
        "actions (BUY / SELL)": f"{int((journal['action'] == 'BUY').sum())} / "
        f"{int((journal['action'] == 'SELL').sum())}"
        if len(journal)
        else "0 / 0",
        "closed trades": len(trips),
        "win rate": share(wins / len(trips)) if len(trips) else "n/a",
        "mean net return per trade": share(trips["net_return"].mean(), 4) if len(trips) else "n/a",
        "capital": money(capital, currency),
        "final equity": money(equity, currency),
        "net PnL": f"{money(equity - capital, currency)} ({share(equity / capital - 1, 2)})",
        "realized PnL": money(float(trips["net_pnl"].sum()) if len(trips) else 0.0, currency),
        "fees / slippage": f"{money(float(fees), currency)} / {money(float(slip), currency)}",
        "max drawdown": share(max_drawdown(per_bar["equity"], capital), 2) if len(journal) else "n/a",
        "open position (units)": significant(float(journal["position"].iloc[-1]), 6) if len(journal) else "0",
    }
    if book:
        items["decisions"] = (
            f"{len(journal):,} ({len(per_bar):,} bars x {journal['symbol'].nunique()} symbols)"
        )
        del items["open position (units)"]
        items["open positions"] = ", ".join(open_symbols(journal)) or "none"
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


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
        stop=significant(float(risk["stop_atr"]), 6),
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
        parts.append(f"stop-loss {significant(float(risk['stop_atr']), 6)} ATR below the entry fill")
    if risk.get("take_profit_atr") is not None:
        parts.append(f"take-profit {significant(float(risk['take_profit_atr']), 6)} ATR above it")
    if risk.get("trailing_atr") is not None:
        trailing = significant(float(risk["trailing_atr"]), 6)
        parts.append(f"trailing stop {trailing} ATR below the highest high since")
    if risk.get("max_bars") is not None:
        parts.append(f"time stop after {int(risk['max_bars'])} bars")
    if not parts:
        return "none: positions close only on the strategy's exit signal"
    return (
        "; ".join(parts)
        + f" (ATR over {int(risk.get('atr_window', 14))} bars); checked on each bar's open then its range, "
        "a gap fills at the open, a bar reaching the stop and the target is taken as the stop"
    )


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
    market = view.market
    return market.describe(), market.annualisation(view.timeframe_ms)

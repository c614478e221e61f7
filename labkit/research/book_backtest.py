"""Backtests of a book: one cash balance over a universe of symbols, summarised as a whole and per symbol.

The book's figures are those of a single-symbol backtest (`labkit.research.backtest.summarize`)
over the book's equity, one value per universe time (every time any symbol has a bar). ``symbols``
says where the result came from, symbol by symbol: its entries and closed trades, its net pnl
(closed trades' pnl plus the open position marked at its last close, less what it cost; the
symbols' net pnl add up to the book's), its share of the starting capital, its fees, what the gates
refused it and how many bars it had.

Per-symbol refusals and closed trades are the engine's own counts (`BookEngine.blocks`,
`BookEngine.closed_pnl`), the same with or without a journal; its tests check them against the
journal's lines. Refusals are counted as the single-symbol summary counts them, by reason code; a
symbol's ``no_bar`` lines (the book decided at a time it had no bar) are no refusal.

A book is a trial of its own family, (source, the symbol list joined by commas, timeframe): its
identity holds the single-symbol identity's fields with the symbol list, the portfolio gates and
the ``portfolio`` limits, which change what a book decides.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labkit.analysis import metrics
from labkit.analysis.calendar import session_calendar
from labkit.analysis.trips import reason_code
from labkit.config.ranges import replay_range
from labkit.data.universe import Universe, align, parse_symbols
from labkit.errors import ConfigError
from labkit.timeutil import timeframe_ms

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig
    from labkit.engine.book import BookEngine
    from labkit.engine.portfolio import Portfolio


@dataclass(frozen=True)
class BookResult:
    summary: dict[str, Any]
    equity: pd.Series  # the book's equity at each universe time's close
    bars: dict[str, pd.DataFrame]  # each symbol's bars, as run


def book_symbols(config: LabkitConfig, symbols: str | None, universe: str | None) -> list[str]:
    """Return the symbols of ``--symbols A,B,C`` or of ``--universe NAME``, checked for the source.

    Raises ConfigError naming the flag: a blank or a repeat, an unknown universe (with the known
    ones), a symbol that names no market, or one the synthetic source cannot make.
    """
    from labkit.data.synthetic import check_pair
    from labkit.home import SYMBOL_RULE, is_symbol

    flag = "--symbols"
    if universe is not None:
        flag = "--universe"
        if universe not in config.universes:
            known = ", ".join(config.universes) or "none (add universes: NAME: [A, B] to labkit.yaml)"
            raise ConfigError(f"--universe: {universe!r} is not a universe of labkit.yaml; known: {known}")
        chosen = parse_symbols(list(config.universes[universe]), flag)
    else:
        chosen = parse_symbols(symbols or "", flag)
    for symbol in chosen:
        if not is_symbol(symbol) or not symbol.isprintable() or len(symbol) > 64:
            raise ConfigError(f"{flag}: {symbol!r}: {SYMBOL_RULE}")
        if config.session.source == "synthetic":
            try:
                check_pair(symbol)
            except ConfigError as exc:
                raise ConfigError(f"{flag}: {str(exc).split(': ', 1)[-1]}") from None
    return chosen


def load_universe(
    config: LabkitConfig, symbols: Sequence[str], home: Path, now: int
) -> dict[str, pd.DataFrame]:
    """Return each symbol's bars over the backtest's range, in the book's order.

    The synthetic source makes the universe as one correlated market; every other source reads each
    symbol as a single-symbol backtest does, through its cache. ``max_bars`` keeps each symbol's
    last bars. Raises ConfigError naming ``session.since`` when a symbol has no bar in the range.
    """
    from labkit.data.registry import open_source

    s = config.session
    since, until = replay_range(config, now) if (s.since or s.max_bars) else (0, 2**62)
    source = open_source(s.source, home, s.seed, data=config.data, exchanges=config.exchanges)
    frames = source.universe_bars(list(symbols), s.timeframe, since, until)
    out = {}
    for symbol in symbols:
        bars = frames[symbol]
        if s.max_bars:
            bars = bars.iloc[-s.max_bars :]
        if not len(bars):
            raise ConfigError(f"session.since: no bars of {symbol} {s.timeframe} in the requested range")
        out[symbol] = bars
    return out


def run_book_backtest(
    config: LabkitConfig,
    bars: Mapping[str, pd.DataFrame],
    journal: Path | None = None,
    home: Path | None = None,
) -> BookResult:
    """Replay `bars` (symbol -> bars, in the book's order) through one book and summarise it.

    `journal`, when given, receives the book's decisions (appended when it exists) and the summary
    file beside it (`labkit.research.backtest.save_summary`). The trial is left to the caller
    (`record_book_trial`).
    """
    from labkit.config.assembly import build_book_engine
    from labkit.engine.journal import JournalWriter

    universe = align(bars)
    symbols = list(universe.symbols)
    writer = JournalWriter(journal) if journal is not None else None
    try:
        engine = build_book_engine(config, symbols, "backtest", journal=writer, home=home)
        engine.process(universe)
    finally:
        if writer is not None:
            writer.close()
    summary = _book_summary(config, engine, universe)
    # Every symbol's strategy is bound to the same model (pooled) or none: the first one says which,
    # and how much of the book's bars its training window covers.
    from labkit.research.backtest import model_evidence

    summary.update(model_evidence(next(iter(engine.strategies.values())), home, universe.times))
    if journal is not None:
        from labkit.research.backtest import save_summary

        s, settings = config.session, engine.settings.engine
        recorded = {
            "risk": settings.risk.model_dump(mode="json"),
            "confidence_floor": settings.confidence_floor,
            # Where the bars came from, so they can be loaded again (a journal has closes only).
            "source": s.source,
            "symbols": symbols,
            "timeframe": s.timeframe,
            "seed": s.seed,
        }
        save_summary(journal, summary, recorded)
    return BookResult(summary, _equity(engine.equity, universe), dict(bars))


def _equity(values: np.ndarray, universe: Universe) -> pd.Series:
    index = pd.DatetimeIndex(pd.to_datetime(universe.times, unit="ms", utc=True), name="ts")
    return pd.Series(np.asarray(values, dtype="float64"), index=index, name="equity")


def _book_summary(config: LabkitConfig, engine: BookEngine, universe: Universe) -> dict[str, Any]:
    from labkit.research.backtest import summarize

    s = config.session
    tf_ms = timeframe_ms(s.timeframe)
    calendar = session_calendar(s.source, s.calendar, universe.times, tf_ms, s.exchange)
    equity = _equity(engine.equity, universe)
    summary = summarize(equity, s.capital, tf_ms, calendar.periods_per_year(tf_ms))
    summary["annualisation"] = calendar.annualisation(tf_ms)
    summary["calendar"] = calendar.to_dict()
    legs = engine.book.legs
    models = sorted({strategy.model_id for strategy in engine.strategies.values()})
    book_blocks: Counter[tuple[str, str]] = Counter()
    per_symbol = {}
    for symbol in universe.symbols:
        mine: Counter[str] = Counter()
        for (stage, reason), n in engine.blocks[symbol].items():
            code = reason_code(reason) or ""
            book_blocks[(stage, code)] += n
            mine[code] += n
        per_symbol[symbol] = _symbol_figures(
            symbol, legs[symbol], universe, engine.closed_pnl[symbol], mine, s.capital
        )
    summary.update(
        trades=sum(leg.entries for leg in legs.values()),
        fills=sum(leg.entries + leg.exits for leg in legs.values()),
        closed_trades=sum(leg.exits for leg in legs.values()),
        open_positions=sum(1 for leg in legs.values() if leg.position > 0),
        fees=sum(leg.fees_paid for leg in legs.values()),
        slippage=sum(leg.slippage_paid for leg in legs.values()),
        strategy=models[0] if len(models) == 1 else ",".join(models),
        gates=list(config.gates.enabled),
        fee=config.broker.fee,
        slippage_rate=config.broker.slippage,
        blocked=sum(book_blocks.values()),
        blocks=[
            {"stage": stage, "reason": reason, "count": n}
            for (stage, reason), n in sorted(book_blocks.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        universe=list(universe.symbols),
        symbols_traded=sum(1 for leg in legs.values() if leg.entries),
        portfolio=config.portfolio.model_dump(mode="json"),
        symbols=per_symbol,
    )
    return summary


def _symbol_figures(
    symbol: str, leg: Portfolio, universe: Universe, closed: list[float], blocks: Counter[str], capital: float
) -> dict[str, Any]:
    from labkit.research.backtest import _pct

    j = universe.symbols.index(symbol)
    present = universe.present[:, j]
    net = float(leg.realized_pnl)
    if leg.position > 0:
        last_close = float(universe.columns["close"][present, j][-1])
        net += leg.position * last_close - leg.entry_cost
    hit_rate = sum(1 for pnl in closed if pnl > 0) / len(closed) if closed else float("nan")
    return {
        "trades": leg.entries,
        "closed_trades": leg.exits,
        "net_pnl": net,
        "hit_rate_pct": _pct(hit_rate),
        "contribution_pct": net / capital * 100.0,
        "fees": leg.fees_paid,
        "blocks": dict(sorted(blocks.items(), key=lambda kv: (-kv[1], kv[0]))),
        "bars": int(present.sum()),
    }


def record_book_trial(config: LabkitConfig, result: BookResult) -> dict[str, Any]:
    """Record the book's trial and return ``trials`` and ``deflated_sharpe`` for its summary."""
    from labkit.analysis.formatting import finite
    from labkit.analysis.trial_ledger import append_trial, book_trial_line, trial_stats

    summary, s = result.summary, config.session
    symbols = list(summary["universe"])
    append_trial(book_trial_line(config, symbols, "backtest", summary, book_data(result)))
    stats = trial_stats(s.source, ",".join(symbols), s.timeframe)
    returns = metrics.equity_returns(result.equity.to_numpy(dtype="float64"), s.capital)
    dsr = metrics.deflated_sharpe_ratio(returns, stats.trials, stats.sharpe_variance)
    return {"trials": stats.trials, "deflated_sharpe": finite(dsr)}


def book_data(result: BookResult) -> dict[str, Any]:
    """Return which bars a book run was measured on, for its trial line (one hash over every symbol's)."""
    from labkit.research.trials import data_hash

    summary = result.summary
    digest = hashlib.sha256("".join(data_hash(bars) for bars in result.bars.values()).encode())
    return {
        "first_ts": summary.get("first_ts"),
        "last_ts": summary.get("last_ts"),
        "bars": summary["bars"],
        "hash": digest.hexdigest()[:16],
    }

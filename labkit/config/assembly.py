"""Wiring: turn a validated config into the engine's parts (strategy, gate chain, settings)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.config.schema import LabkitConfig, gate_configs, strategy_config
from labkit.engine.book import Book, BookEngine, BookSettings
from labkit.engine.core import Engine
from labkit.engine.journal import JournalWriter
from labkit.engine.observer import Observer
from labkit.engine.portfolio import Portfolio
from labkit.engine.settings import EngineSettings
from labkit.gates.base import Gate
from labkit.gates.registry import build_chain
from labkit.strategies.base import Strategy, StrategyContext
from labkit.strategies.registry import make_strategy
from labkit.timeutil import now_ms

log = logging.getLogger(__name__)


def build_gates(config: LabkitConfig, book: bool = False) -> list[Gate]:
    """Return the enabled gates in chain order, each with its own config.

    The portfolio gates (`Gate.book_only`) judge a book over a universe: one symbol alone runs
    without them, exactly as before they existed.
    """
    chain = build_chain(config.gates.enabled, gate_configs(config))
    # An opt-in gate (the `meta` gate) runs only when its key is set; left unset, it is not there.
    chain = [gate for gate in chain if gate.opt_in is None or getattr(gate.config, gate.opt_in) is not None]
    return chain if book else [gate for gate in chain if not gate.book_only]


def build_strategy(config: LabkitConfig, home: Path | None = None, strict: bool = True) -> Strategy:
    """Return the session's strategy with its parameters (``strategies.<name>``), bound to `home`.

    `strict` (backtests) makes a model that cannot be loaded the user's error; a session instead
    keeps running and its `model` gate records why it holds.
    """
    strategy = make_strategy(config.session.strategy, strategy_config(config))
    s = config.session
    strategy.bind(StrategyContext(home, s.symbol, s.timeframe, strict))
    meta = config.gates.meta  # type: ignore[attr-defined]
    if meta.model is not None and "meta" in config.gates.enabled:
        from labkit.strategies.meta_labeled import MetaLabeled

        # The meta model judges the primary's entries: it wraps the primary, which still decides.
        wrapped = MetaLabeled(strategy, meta.model, meta.min_probability)
        wrapped.bind(StrategyContext(home, s.symbol, s.timeframe, strict))
        return wrapped
    return strategy


def with_meta(gates: list[Gate], strategy: Strategy) -> list[Gate]:
    """Return `gates` with the `meta` gate only when `strategy` gives it a meta probability to judge.

    A meta-labeled strategy brings the gate in at its place in the chain (order 45), even when the
    config left ``gates.meta.model`` unset (the train report's out-of-sample runs), and names its
    model in the gate's refusals.
    """
    from labkit.gates.meta import MetaConfig, MetaGate
    from labkit.strategies.meta_labeled import MetaLabeled

    if not isinstance(strategy, MetaLabeled):
        return [gate for gate in gates if not isinstance(gate, MetaGate)]
    gate = next((g for g in gates if isinstance(g, MetaGate)), None)
    if gate is None:
        gate = MetaGate(MetaConfig(min_probability=strategy.min_probability))
        gates = sorted([*gates, gate], key=lambda g: g.order)
    gate.model_id = strategy.meta_id
    return gates


def engine_settings(config: LabkitConfig, mode: str) -> EngineSettings:
    """Return the engine settings for `mode`: the session's market, ``risk`` and ``broker``.

    Every mode fills with the broker's fees and slippage: shadow follows each decision as the paper
    broker would fill it, so its record says what the decisions would have cost.
    """
    s = config.session
    # A strategy with an entry threshold on a calibrated probability (a model) scales risk sizes above it.
    floor = getattr(strategy_config(config), "entry", None) if s.strategy == "model" else None
    return EngineSettings(s.name, mode, s.symbol, s.timeframe, config.risk, config.broker, floor)


def build_engine(
    config: LabkitConfig,
    mode: str,
    portfolio: Portfolio | None = None,
    journal: JournalWriter | None = None,
    clock: Callable[[], int] = now_ms,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    home: Path | None = None,
    strict: bool = True,
    strategy: Strategy | None = None,
    observer: Observer | None = None,
) -> Engine:
    """Return an engine for `mode` (backtest, shadow or paper), fills with the broker's costs in each."""
    strategy = strategy if strategy is not None else build_strategy(config, home, strict)
    gates = with_meta(build_gates(config), strategy)
    for gate in gates:
        log.info("gate %s", gate.describe())
    return Engine(
        engine_settings(config, mode),
        strategy,
        gates,
        portfolio or Portfolio.start(config.session.capital),
        journal,
        clock,
        on_event,
        observer,
    )


def build_book_engine(
    config: LabkitConfig,
    symbols: list[str],
    mode: str,
    journal: JournalWriter | None = None,
    clock: Callable[[], int] = now_ms,
    home: Path | None = None,
    strict: bool = True,
    observer: Observer | None = None,
    book: Book | None = None,
) -> BookEngine:
    """Return an engine over the universe `symbols`: one book, each symbol its own strategy and gates.

    Each symbol's strategy is bound to that symbol (a model for it); the gate chain is built once
    per symbol, so no gate's per-run facts cross from one symbol to another.
    """
    strategies: dict[str, Strategy] = {}
    gates: dict[str, list[Gate]] = {}
    for symbol in symbols:
        one = config.model_copy(update={"session": config.session.model_copy(update={"symbol": symbol})})
        strategies[symbol] = build_strategy(one, home, strict)
        gates[symbol] = build_gates(one, book=True)
    settings = BookSettings(engine_settings(config, mode), config.portfolio)
    book = book if book is not None else Book.start(config.session.capital, symbols)
    engine = BookEngine(settings, strategies, gates, book, journal, clock, observer)
    if strict:
        engine.check_universe()  # a session (not strict) is refused at its start instead
    return engine

"""Wiring: turn a validated config into the engine's parts (strategy, gate chain, settings)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from labkit.config import GatesConfig, LabkitConfig
from labkit.engine import Engine, EngineSettings
from labkit.gates import (
    ConfidenceGate,
    DataGate,
    Gate,
    GuardrailsGate,
    HaltGate,
    RiskBudgetGate,
    TurnoverGate,
)
from labkit.journal import JournalWriter
from labkit.portfolio import Portfolio
from labkit.signals import make_strategy
from labkit.timeutil import now_ms, timeframe_ms

log = logging.getLogger(__name__)


def build_gates(config: GatesConfig) -> list[Gate]:
    """Return the enabled gates in DESIGN.md's order, each with its own config."""
    makers: dict[str, Callable[[], Gate]] = {
        "halt": lambda: HaltGate(config.halt),
        "data": lambda: DataGate(config.data),
        "confidence": lambda: ConfidenceGate(config.confidence),
        "turnover": lambda: TurnoverGate(config.turnover),
        "risk_budget": lambda: RiskBudgetGate(config.risk_budget),
        "guardrails": lambda: GuardrailsGate(config.guardrails),
    }
    return [makers[name]() for name in config.enabled]


def engine_settings(config: LabkitConfig, mode: str) -> EngineSettings:
    """Return the engine settings for `mode`: shadow fills are followed without costs."""
    s = config.session
    costless = mode == "shadow"
    return EngineSettings(
        session=s.name,
        mode=mode,
        symbol=s.symbol,
        timeframe=s.timeframe,
        timeframe_ms=timeframe_ms(s.timeframe),
        fee=0.0 if costless else config.broker.fee,
        slippage=0.0 if costless else config.broker.slippage,
        position_frac=config.risk.position_frac,
    )


def build_engine(
    config: LabkitConfig,
    mode: str,
    portfolio: Portfolio | None = None,
    journal: JournalWriter | None = None,
    clock: Callable[[], int] = now_ms,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Engine:
    """Return an engine for `mode` (backtest, shadow or paper); shadow fills carry no costs."""
    s = config.session
    settings = engine_settings(config, mode)
    gates = build_gates(config.gates)
    for gate in gates:
        log.info("gate %s", gate.describe())
    return Engine(
        settings,
        make_strategy(s.strategy, s.fast, s.slow),
        gates,
        portfolio or Portfolio.start(s.capital),
        journal,
        clock,
        on_event,
    )

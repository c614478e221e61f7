"""The decision gates, one per module, run in DESIGN.md's order by `run_gates`."""

from __future__ import annotations

from labkit.gates.base import BUY, HOLD, SELL, Block, DecisionContext, Gate, run_gates
from labkit.gates.confidence import ConfidenceConfig, ConfidenceGate
from labkit.gates.data import DataGate, DataGateConfig
from labkit.gates.guardrails import GuardrailsConfig, GuardrailsGate
from labkit.gates.halt import HaltConfig, HaltGate
from labkit.gates.risk_budget import RiskBudgetConfig, RiskBudgetGate
from labkit.gates.turnover import TurnoverConfig, TurnoverGate

# DESIGN.md's order. `model` and `scalping` join when the ML signal lands.
GATE_ORDER = ("halt", "data", "confidence", "turnover", "risk_budget", "guardrails")

__all__ = [
    "BUY",
    "HOLD",
    "SELL",
    "GATE_ORDER",
    "Block",
    "DecisionContext",
    "Gate",
    "run_gates",
    "ConfidenceConfig",
    "ConfidenceGate",
    "DataGate",
    "DataGateConfig",
    "GuardrailsConfig",
    "GuardrailsGate",
    "HaltConfig",
    "HaltGate",
    "RiskBudgetConfig",
    "RiskBudgetGate",
    "TurnoverConfig",
    "TurnoverGate",
]

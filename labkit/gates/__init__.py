"""The decision gates: one module per gate, found by `labkit.gates.registry`, run by `run_gates`."""

from __future__ import annotations

from labkit.gates.base import BUY, HOLD, SELL, Block, DecisionContext, Gate, GateConfig, run_gates

__all__ = ["BUY", "HOLD", "SELL", "Block", "DecisionContext", "Gate", "GateConfig", "run_gates"]

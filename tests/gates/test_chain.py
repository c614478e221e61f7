"""The gate contract: the engine asks every gate about every proposal it declares in `applies_to`.

Issue 7 found a HOLD-applying gate asked about 0 of 151 HOLD bars: the engine skipped the chain on
HOLDs. These tests run the chain through the engine, with gates of their own.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from labkit.engine.core import Engine
from labkit.engine.portfolio import Portfolio
from labkit.engine.settings import BrokerConfig, EngineSettings
from labkit.gates.base import BUY, HOLD, SELL, BarFacts, Block, DecisionContext, Gate, run_gates
from labkit.gates.data import DataGate, DataGateConfig
from labkit.gates.registry import build_chain, chain_order, default_enabled, registered_gates
from labkit.strategies.sma_cross import SmaCross
from tests import stubs


class _Recorder(Gate):
    """Records what it was asked; blocks every `block_every`-th question."""

    name = "recorder"
    order = 90

    def __init__(self, applies_to: frozenset[str], block_every: int = 0) -> None:
        super().__init__()
        self.applies_to = applies_to  # type: ignore[misc]
        self.block_every = block_every
        self.asked: list[tuple[int, str]] = []

    def check(self, ctx: DecisionContext) -> Block | None:
        self.asked.append((ctx.ts, ctx.proposed))
        if self.block_every and len(self.asked) % self.block_every == 0:
            return Block(self.name, "recorded", {"n": len(self.asked)})
        return None

    def describe(self) -> str:
        return "recorder"


def _engine(gates: list[Gate]) -> Engine:
    settings = EngineSettings("t", "backtest", "X/Y", "1m", broker=BrokerConfig(fee=0.001))
    return Engine(settings, SmaCross(fast=3, slow=8), gates, Portfolio.start(10_000.0))


def _lines(engine: Engine, bars, tmp_path):
    from labkit.engine.journal import JournalWriter, iter_lines

    engine.journal = JournalWriter(tmp_path / "j.jsonl")
    engine.process(bars)
    engine.journal.close()
    return list(iter_lines(tmp_path / "j.jsonl"))


def test_engine_when_gate_applies_to_hold_asks_it_about_every_hold(tmp_path):
    # Arrange
    gate = _Recorder(frozenset({BUY, SELL, HOLD}))
    engine = _engine([DataGate(), gate])
    bars = stubs.bars(n=200)
    # Act
    lines = _lines(engine, bars, tmp_path)
    # Assert: every decision the data gate let through reached the recorder, HOLDs included
    reached = [line for line in lines if line["gate_trace"]["stage"] != "data"]
    holds = [line for line in reached if line["proposed"] == HOLD]
    assert len(holds) > 100
    assert len(gate.asked) == len(reached)
    assert sum(1 for _, side in gate.asked if side == HOLD) == len(holds)


def test_engine_when_gate_blocks_holds_the_journal_shows_its_blocks(tmp_path):
    # Arrange
    gate = _Recorder(frozenset({HOLD}), block_every=3)
    # Act
    lines = _lines(_engine([DataGate(), gate]), stubs.bars(n=120), tmp_path)
    # Assert
    blocked = [line for line in lines if line["gate_trace"]["stage"] == "recorder"]
    assert len(blocked) == len(gate.asked) // 3 > 0
    assert all(line["proposed"] == HOLD and line["rejection_reason"] == "recorded" for line in blocked)


def test_engine_when_gate_declares_entries_only_never_asks_it_about_holds(tmp_path):
    # Arrange
    gate = _Recorder(frozenset({BUY}))
    # Act
    lines = _lines(_engine([DataGate(), gate]), stubs.bars(n=200), tmp_path)
    # Assert
    buys = [line for line in lines if line["proposed"] == BUY and line["gate_trace"]["stage"] != "data"]
    assert buys and {side for _, side in gate.asked} == {BUY}
    assert len(gate.asked) == len(buys)


def test_engine_when_first_gate_blocks_asks_no_later_gate(tmp_path):
    # Arrange: the data gate blocks every warm-up bar, so the recorder behind it hears none of them
    gate = _Recorder(frozenset({BUY, SELL, HOLD}))
    # Act
    lines = _lines(_engine([DataGate(), gate]), stubs.bars(n=20), tmp_path)
    # Assert
    warm = [line for line in lines if line["gate_trace"]["stage"] == "data"]
    assert len(warm) == 8 and len(gate.asked) == 20 - 8


def _random_facts(rng: random.Random, n: int) -> tuple[BarFacts, int | None]:
    tf = rng.choice([1_000, 60_000, 3_600_000])
    start = stubs.T0 + rng.randrange(0, 10_000) * tf
    ts = start + tf * np.arange(n, dtype="int64")
    now = None if rng.random() < 0.4 else int(ts[rng.randrange(n)] + tf * rng.uniform(0.5, 6.0))
    offset = rng.randrange(0, 40)
    facts = BarFacts(
        ts=ts,
        close_ts=ts + tf,
        now=ts + tf if now is None else np.full(n, now, dtype="int64"),
        bars_available=np.arange(offset + 1, offset + n + 1),
        timeframe_ms=tf,
        bars_needed=rng.randrange(1, 60),
        source_ok=rng.random() > 0.1,
    )
    return facts, now


@pytest.mark.parametrize("seed", range(25))
def test_data_gate_when_judging_bars_at_once_answers_as_check_does(seed):
    # Arrange
    rng = random.Random(seed)
    gate = DataGate(DataGateConfig(stale_after_bars=rng.choice([0.5, 1.0, 2.0, 3.5])))
    facts, _ = _random_facts(rng, rng.randrange(1, 50))
    # Act
    batch = gate.check_bars(facts)
    # Assert
    for i in range(len(facts.ts)):
        ctx = stubs.decision_context(
            ts=int(facts.ts[i]),
            close_ts=int(facts.close_ts[i]),
            now=int(facts.now[i]),
            timeframe_ms=facts.timeframe_ms,
            bars_available=int(facts.bars_available[i]),
            bars_needed=facts.bars_needed,
            source_ok=facts.source_ok,
            proposed=HOLD,
        )
        assert batch[i] == gate.check(ctx), i


def test_run_gates_when_an_answer_is_known_uses_it_instead_of_asking():
    # Arrange
    gate = _Recorder(frozenset({BUY}))
    known = {"recorder": Block("recorder", "already_answered", {})}
    # Act
    result = run_gates([gate], stubs.decision_context(), known)
    # Assert
    assert result == Block("recorder", "already_answered", {}) and gate.asked == []


def test_registry_when_built_runs_gates_in_chain_order_whatever_the_config_order():
    # Arrange / Act
    chain = build_chain(["guardrails", "data", "halt"], {})
    # Assert
    assert [g.name for g in chain] == ["halt", "data", "guardrails"]
    assert default_enabled() == tuple(registered_gates())
    assert [registered_gates()[n].order for n in default_enabled()] == sorted(
        registered_gates()[n].order for n in default_enabled()
    )


@pytest.mark.parametrize(
    ("names", "message"),
    [(["halt"], "the data gate cannot be disabled"), (["data", "vibes"], "unknown gate 'vibes'")],
)
def test_registry_when_chain_is_bad_refuses_with_the_reason(names, message):
    with pytest.raises(ValueError, match=message):
        chain_order(names)


def test_registry_when_listing_builtins_gives_each_its_reasons_config_and_summary():
    # Every gate tells users what it blocks and with which codes (docs and `labkit gates` read these).
    for name, gate in registered_gates().items():
        assert gate.name == name and gate.reasons and gate.summary()
        assert gate().describe().startswith(name)


def test_engine_when_signal_is_unsure_the_confidence_gate_blocks_its_entries(tmp_path):
    # Arrange: sma_cross with every proposal's confidence halved (0.5 < the default 0.55)
    from labkit.gates.confidence import ConfidenceGate

    class Unsure(SmaCross):
        def propose(self, bars):
            signals = super().propose(bars)
            return type(signals)(signals.side, signals.confidence * 0.5, signals.expected_edge)

    engine = _engine([DataGate(), ConfidenceGate()])
    engine.strategy = Unsure(fast=3, slow=8)
    # Act
    lines = _lines(engine, stubs.bars(n=200), tmp_path)
    # Assert
    buys = [line for line in lines if line["proposed"] == BUY]
    assert buys and all(line["rejection_reason"] == "low_confidence" for line in buys)
    assert not any(line["action"] == BUY for line in lines)

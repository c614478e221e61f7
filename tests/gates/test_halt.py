from __future__ import annotations

import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.halt import HaltGate
from tests import stubs


@pytest.mark.parametrize(
    ("halted", "halt_reason", "proposed", "expected"),
    [
        (False, None, "BUY", None),
        (True, "emergency_stop", "BUY", Block("halt", "emergency_stop", {"halt_reason": "emergency_stop"})),
        (
            True,
            "drawdown_limit",
            "BUY",
            Block("halt", "halted:drawdown_limit", {"halt_reason": "drawdown_limit"}),
        ),
    ],
)
def test_halt_when_session_halted_blocks_entries(halted, halt_reason, proposed, expected):
    # Arrange
    gate = HaltGate()
    ctx = stubs.decision_context(halted=halted, halt_reason=halt_reason, proposed=proposed)
    # Act
    result = run_gates([gate], ctx)
    # Assert
    assert result == expected


def test_halt_when_exit_proposed_does_not_apply():
    # An emergency stop must still let the position be closed.
    assert "SELL" not in HaltGate.applies_to


def test_halt_when_reduce_only_blocks_entries_with_its_reason():
    result = run_gates([HaltGate()], stubs.decision_context(reduce_only=True))
    assert result == Block("halt", "reduce_only", {})


@pytest.mark.parametrize(
    ("halted", "reduce_only", "halt_reason"),
    [(False, False, None), (False, True, None), (True, False, None), (True, True, "drawdown_limit")],
)
def test_halt_when_judging_bars_at_once_answers_as_check_does(halted, reduce_only, halt_reason):
    # Arrange: the book's standing orders hold for the whole run (commands apply between runs)
    import numpy as np

    from labkit.gates.base import BarFacts

    ts = np.arange(3, dtype="int64") * 60_000
    facts = BarFacts(
        ts=ts,
        close_ts=ts + 60_000,
        now=ts + 60_000,
        bars_available=np.arange(1, 4),
        timeframe_ms=60_000,
        bars_needed=1,
        source_ok=True,
        halted=halted,
        reduce_only=reduce_only,
        halt_reason=halt_reason,
    )
    ctx = stubs.decision_context(halted=halted, reduce_only=reduce_only, halt_reason=halt_reason)
    # Act
    result = HaltGate().check_bars(facts)
    # Assert
    assert result == [HaltGate().check(ctx)] * 3

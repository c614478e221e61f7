"""What every gate shares: the read-only context it judges, the Block it may return, the chain."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

BUY, SELL, HOLD = "BUY", "SELL", "HOLD"


@dataclass(frozen=True, slots=True)
class Block:
    """A gate's refusal: the stage that blocked, a reason code and the numbers behind it."""

    stage: str
    reason: str
    detail: Mapping[str, float | int | str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """Everything a gate may look at for one bar. Gates read it and never the clock."""

    ts: int  # bar open, epoch ms
    close_ts: int  # bar close, epoch ms
    now: int  # the decision's time as the engine sees it (bar close in replays)
    timeframe_ms: int
    price: float  # the bar's close
    proposed: str  # BUY, SELL or HOLD
    confidence: float
    expected_edge: float  # fraction per round trip; NaN when the strategy gives no estimate
    bars_available: int
    bars_needed: int
    source_ok: bool
    position: float
    cash: float
    equity: float
    peak_equity: float
    day_start_equity: float
    trades_today: int
    loss_streak: int
    halted: bool
    reduce_only: bool
    halt_reason: str | None
    fee: float
    slippage: float

    @property
    def is_entry(self) -> bool:
        return self.proposed == BUY

    @property
    def drawdown(self) -> float:
        return 0.0 if self.peak_equity <= 0 else max(0.0, 1.0 - self.equity / self.peak_equity)


class Gate(ABC):
    """One stage of the decision chain.

    ``applies_to`` names the proposals the gate judges. Exits are judged only by `data`: a gate
    that keeps a losing position open is a risk, not a protection.
    """

    name: ClassVar[str]
    applies_to: ClassVar[frozenset[str]] = frozenset({BUY})

    @abstractmethod
    def check(self, ctx: DecisionContext) -> Block | None:
        """Return a Block when this gate refuses the proposal, else None."""

    @abstractmethod
    def describe(self) -> str:
        """Return one line for the session's start-up log."""


def run_gates(gates: Sequence[Gate], ctx: DecisionContext) -> Block | None:
    """Run the chain in order and return the first Block, or None when every gate passes."""
    for gate in gates:
        if ctx.proposed in gate.applies_to:
            block = gate.check(ctx)
            if block is not None:
                return block
    return None

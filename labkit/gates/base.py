"""What every gate shares: the read-only context it judges, the Block it may return, the chain."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from labkit._plugins import summary_line
from labkit.strategies.sides import BUY, HOLD, SELL

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "BUY",
    "HOLD",
    "SELL",
    "BarFacts",
    "Block",
    "BookFacts",
    "DecisionContext",
    "Gate",
    "GateConfig",
    "run_gates",
]


@dataclass(frozen=True, slots=True)
class Block:
    """A gate's refusal: the stage that blocked, a reason code and the numbers behind it."""

    stage: str
    reason: str
    detail: Mapping[str, float | int | str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BookFacts:
    """The book around an entry of one symbol in a universe: what is open, its stop risk, its limits.

    `heat` is what the open positions (and entries waiting for their open) of the other symbols lose
    if every stop is hit, in quote, and `entry_risk` the new entry's; a position without a stop risks
    all of it. `correlations` holds each open symbol's return correlation with this one when
    `max_correlation` is set.
    """

    symbol: str
    open_positions: int
    heat: float
    entry_risk: float
    correlations: Mapping[str, float] = field(default_factory=dict)
    max_open_positions: int | None = None
    max_heat: float | None = None
    max_correlation: float | None = None
    correlated_scale: float = 0.5


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
    # The strategy's per-bar facts at this bar (Signals.facts), e.g. a model's status or ADX.
    facts: Mapping[str, float] = field(default_factory=dict)
    # The sized entry (units at the close, as `risk.sizing` sizes it; NaN when it cannot be sized)
    # and the risk the day's entries already took, in quote (units x stop distance).
    entry_units: float = math.nan
    risk_today: float = 0.0
    # What an entry and its exit cost together, as a fraction of the price (the broker's
    # `round_trip_cost`, labkit.engine.settings); NaN when the caller did not say.
    round_trip_cost: float = math.nan
    # An entry in a book over a universe (None alone): the portfolio gates judge it.
    book: BookFacts | None = None

    @property
    def is_entry(self) -> bool:
        return self.proposed == BUY

    @property
    def drawdown(self) -> float:
        # labkit's drawdown definition (readiness.metrics.drawdowns) at this one bar.
        return 0.0 if self.peak_equity <= 0 else max(0.0, 1.0 - self.equity / self.peak_equity)


@dataclass(frozen=True, slots=True)
class BarFacts:
    """What is known of a run of bars before any of them is decided, one array entry per bar.

    A gate whose verdict depends on these facts alone may judge all the bars at once
    (`Gate.check_bars`) instead of being asked bar by bar.
    """

    ts: np.ndarray  # bar opens, epoch ms
    close_ts: np.ndarray
    now: np.ndarray  # the decision times (bar closes in replays)
    bars_available: np.ndarray
    timeframe_ms: int
    bars_needed: int
    source_ok: bool
    signals: Mapping[str, np.ndarray] = field(default_factory=dict)  # Signals.facts for these bars
    proposed: np.ndarray | None = None  # the strategy's side codes (1 BUY, 0 HOLD, -1 SELL) for these bars
    # The book's standing orders, which only a command changes (between runs, never within one).
    halted: bool = False
    reduce_only: bool = False
    halt_reason: str | None = None


class GateConfig(BaseModel):
    """A gate's thresholds; subclasses add fields (frozen, unknown keys, inf and NaN refused)."""

    # A threshold of inf or NaN passes every comparison or none: the gate would silently do nothing.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Gate(ABC):
    """One stage of the decision chain. Subclass it in a module of `labkit.gates` or in a plug-in.

    ``name`` is the stage written in the journal and the key of its config (``gates.<name>``);
    ``order`` places it in the chain (halt 10, data 20, model 30, confidence 40, scalping 50,
    turnover 60, risk_budget 70, guardrails 80); ``reasons`` lists the reason codes it may return.
    ``applies_to`` names the proposals the gate judges, and the engine asks it about every one of
    them. Exits are judged only by `data`: a gate that keeps a losing position open is a risk, not a
    protection.
    """

    name: ClassVar[str]
    order: ClassVar[int] = 100
    reasons: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[GateConfig]] = GateConfig
    applies_to: ClassVar[frozenset[str]] = frozenset({BUY})
    # A gate that judges a book over a universe (``ctx.book``): a single symbol's chain leaves it out.
    book_only: ClassVar[bool] = False
    # A gate that joins the chain only when this key of its config is set (the `meta` gate's model):
    # left unset, runs and their trial identities are what they were without the gate.
    opt_in: ClassVar[str | None] = None

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def check(self, ctx: DecisionContext) -> Block | None:
        """Return a Block when this gate refuses the proposal, else None."""

    @abstractmethod
    def describe(self) -> str:
        """Return one line for the session's start-up log, with this instance's thresholds."""

    def prepare(
        self, window: pd.DataFrame, facts: Mapping[str, np.ndarray], first: int = 0
    ) -> dict[str, np.ndarray]:
        """Return per-bar facts this gate derives from the bars themselves, one value per row of `window`.

        `window` holds the history the engine kept and, from row `first` on, the bars about to be
        decided (rows before `first` may be left NaN); `facts` are the strategy's
        (`Signals.facts`). What a gate returns joins them: `check` sees it in ``ctx.facts`` and
        `check_bars` in ``facts.signals``. Most gates need none.
        """
        return {}

    def check_bars(self, facts: BarFacts) -> list[Block | None] | None:
        """Judge many bars at once from `facts` alone, or return None to be asked bar by bar.

        Only a gate whose verdict reads nothing but those facts may answer, and each answer must
        equal what `check` returns for that bar's context. The engine asks this once per run of
        bars and uses the answers for every decision the gate applies to.
        """
        return None

    @classmethod
    def summary(cls) -> str:
        """Return the first line of the class docstring: what the gate blocks, in general."""
        return summary_line(cls)


def run_gates(
    gates: Sequence[Gate], ctx: DecisionContext, known: Mapping[str, Block | None] | None = None
) -> Block | None:
    """Run the chain in order and return the first Block, or None when every gate passes.

    Every gate that applies to the proposal is asked, in order, until one blocks; `known` holds
    answers a gate already gave for this bar through `Gate.check_bars`.
    """
    for gate in gates:
        if ctx.proposed in gate.applies_to:
            block = known[gate.name] if known is not None and gate.name in known else gate.check(ctx)
            if block is not None:
                return block
    return None

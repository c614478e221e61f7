"""What every strategy shares: the side vocabulary, per-bar proposals and the strategy base class.

A strategy sees only bars up to and including the one it proposes for. Its `propose` works on a
whole window at once (fast for replays) and gives bar t the same numbers whether the window is a
year of history or just its own lookback (what a live session passes); the engine relies on that
for paper/backtest parity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from labkit._plugins import summary_line

# The side vocabulary lives in `labkit.strategies.sides`; strategies (plug-ins too) import it here.
from labkit.strategies.sides import BUY as BUY
from labkit.strategies.sides import BUY_CODE as BUY_CODE
from labkit.strategies.sides import HOLD as HOLD
from labkit.strategies.sides import HOLD_CODE as HOLD_CODE
from labkit.strategies.sides import SELL as SELL
from labkit.strategies.sides import SELL_CODE as SELL_CODE
from labkit.strategies.sides import SIDE_CODE as SIDE_CODE
from labkit.strategies.sides import SIDE_NAME as SIDE_NAME

# The side vocabulary, named here too for strategies written against this module.

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd



@dataclass(frozen=True)
class Signals:
    """Per-bar proposals: `side` in {1 BUY, 0 HOLD, -1 SELL}; NaN confidence/edge = no estimate."""

    side: np.ndarray  # int8
    confidence: np.ndarray  # float64 in [0, 1]
    expected_edge: np.ndarray  # float64, fraction per round trip
    # Per-bar facts the gates may read beside the proposal (a model's status, ADX...), by name.
    facts: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyContext:
    """Where a strategy runs: the labkit home (models live under it) and the market it trades.

    `strict` says a missing or broken model is the user's error (a backtest exits 2) rather than
    something to record bar by bar (a session keeps running, and its journal says why it holds).
    """

    home: Path | None
    symbol: str
    timeframe: str
    strict: bool = True


class StrategyConfig(BaseModel):
    """A strategy's parameters; subclasses add fields (frozen, unknown keys, inf and NaN refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Strategy(ABC):
    """Turns bars into proposals. Subclass it in a module of `labkit.strategies` or in a plug-in.

    ``name`` is what ``--strategy`` and ``session.strategy`` say; ``Config`` holds the parameters
    (set under ``strategies.<name>`` in labkit.yaml). An instance sets ``model_id`` (what decided,
    written on every journal line) and ``warmup`` (bars needed before its first proposal).
    """

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    model_id: str
    warmup: int
    # Bars of history a live engine keeps and passes back (at least `warmup`): more when a
    # strategy looks further back than its first proposal needs, e.g. for drift.
    memory: int = 0

    def __init__(self, config: StrategyConfig | None = None, **params: Any) -> None:
        self.config = config if config is not None else self.Config(**params)

    def bind(self, context: StrategyContext) -> None:  # noqa: B027 - optional: most strategies need no context
        """Learn where the strategy runs before the first bar (a model strategy loads its model)."""

    @property
    def history(self) -> int:
        """Bars of history the engine keeps for the next call: `memory`, at least `warmup`."""
        return max(self.warmup, self.memory)

    @abstractmethod
    def propose(self, bars: pd.DataFrame) -> Signals:
        """Return one proposal per row of `bars`, using only rows at or before each one."""

    @classmethod
    def describe(cls) -> str:
        """Return the first line of the class docstring: what the strategy does."""
        return summary_line(cls)

    def params(self) -> dict[str, Any]:
        """Return the parameters as plain data (they identify a session's strategy)."""
        return self.config.model_dump(mode="json")

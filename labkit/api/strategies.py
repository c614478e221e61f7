"""What `labkit.backtest` accepts as a strategy, made into one the engine runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labkit.errors import ConfigError
from labkit.strategies.base import Signals, Strategy, StrategyContext

SideFunction = Callable[..., Any]


class FunctionStrategy(Strategy):
    """A plain function of bars returning one side per bar (1 buy, 0 hold, -1 sell), as a strategy.

    A proposal has confidence 1 and no edge estimate, like a rule's. `params` are passed to the
    function as keywords; they name the strategy in the journal and the trial ledger.
    """

    name = "function"

    def __init__(self, function: SideFunction, **params: Any) -> None:
        super().__init__()
        self.function, self.keywords = function, params
        label = getattr(function, "__name__", type(function).__name__)
        args = ",".join(f"{key}={value}" for key, value in sorted(params.items()))
        self.model_id = f"function:{label}({args})" if args else f"function:{label}"
        self.warmup = 0

    def propose(self, bars: pd.DataFrame) -> Signals:
        side = checked_sides(self.function(bars, **self.keywords), len(bars), self.model_id)
        confidence = np.where(side != 0, 1.0, np.nan)
        return Signals(side, confidence, np.full(len(side), np.nan))


def checked_sides(values: Any, rows: int, what: str) -> np.ndarray:
    """Return `values` as int8 sides, one per bar; NaN holds. ConfigError for any other shape or value."""
    raw = values.to_numpy() if isinstance(values, pd.Series | pd.DataFrame) else np.asarray(values)
    if raw.shape != (rows,):
        raise ConfigError(
            f"strategy {what}: returned shape {raw.shape} for {rows} bars; return one side per bar "
            "(a list, array or Series of 1 buy, 0 hold, -1 sell)"
        )
    numbers = pd.to_numeric(pd.Series(raw), errors="coerce").fillna(0).to_numpy(dtype="float64")
    if not np.isin(numbers, (-1.0, 0.0, 1.0)).all():
        bad = numbers[~np.isin(numbers, (-1.0, 0.0, 1.0))][0]
        raise ConfigError(f"strategy {what}: returned side {bad:g}; a side is 1 (buy), 0 (hold) or -1 (sell)")
    return numbers.astype("int8")


def notebook_strategy(strategy: Strategy | type[Strategy] | SideFunction, params: dict[str, Any]) -> Strategy:
    """Return the engine's strategy for a `Strategy` instance or class, or a function of bars.

    A class defined in a notebook cell may leave out ``model_id`` (its ``name``, else the class
    name) and ``warmup`` (0).
    """
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        strategy = strategy(**params)
    elif isinstance(strategy, Strategy):
        if params:
            raise ConfigError(
                f"strategy: parameters {', '.join(sorted(params))} given with a strategy instance; "
                "give them to its constructor instead"
            )
    elif callable(strategy):
        return FunctionStrategy(strategy, **params)
    else:
        raise ConfigError(
            f"strategy: {strategy!r} is not a strategy; give a registered name (e.g. 'sma_cross'), "
            "a labkit.Strategy, or a function of bars returning sides"
        )
    if not hasattr(strategy, "model_id"):
        strategy.model_id = str(getattr(strategy, "name", type(strategy).__name__))
    if not hasattr(strategy, "warmup"):
        strategy.warmup = 0
    return strategy


def bind(strategy: Strategy, context: StrategyContext) -> Strategy:
    """Return `strategy` bound to where it runs (a model strategy loads its model)."""
    strategy.bind(context)
    return strategy

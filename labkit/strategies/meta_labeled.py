"""The primary strategy behind a meta-label model: what ``--meta ID|latest`` trades.

Not a registered strategy (the class has no ``name``): it wraps the one the session names.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.strategies.base import Signals, Strategy, StrategyContext
from labkit.strategies.sides import BUY_CODE

if TYPE_CHECKING:
    import pandas as pd

    from labkit.models.ensemble import Ensemble


class MetaLabeled(Strategy):
    """The primary strategy with a meta-label model's probability that each of its entries pays.

    Not a strategy of its own (it has no ``name`` to register): the primary still proposes every
    side, and the journal names the primary as what decided. At each bar where the primary proposes
    BUY, the meta model (``labkit train --meta STRATEGY``) reads the bar's features and the
    primary's side and confidence and gives ``meta_probability``, the chance the entry reaches its
    profit barrier before its stop or time limit; the `meta` gate refuses entries below
    ``gates.meta.min_probability``. Under ``risk.sizing: risk`` the fact ``meta_size`` scales the
    entry: half the size at the threshold, all of it at certainty, linear between (the confidence
    rule of a model strategy, fed with the meta probability; AFML ch. 10 sizes by the probability
    too, but 2p - 1 would size an entry at p = 0.5 to nothing).

    It is a wrapper of the strategy, not work done in `Gate.prepare`, because the probability is a
    function of the primary's proposal (its side and confidence), which only the strategy has: a
    gate's ``prepare`` sees the strategy's facts, not its proposals.

    ``probability`` (one per bar of the bars later passed whole, as a replay passes them) replaces
    the model: `labkit train --meta` replays each fold's out-of-sample probabilities through the
    engine this way, for the comparison its train report shows.
    """

    def __init__(
        self,
        primary: Strategy,
        reference: str,
        min_probability: float = 0.5,
        probability: np.ndarray | None = None,
    ) -> None:
        from labkit.features.featureset import FeatureSet

        self.primary = primary
        self.name = primary.name  # type: ignore[misc]  # the primary's: no name of its own to register
        self.config = primary.config
        self.reference = reference
        self.min_probability = float(min_probability)
        self.meta_id = reference
        self.model_id = primary.model_id
        self.features = FeatureSet()
        self.ensemble: Ensemble | None = None
        self.given = probability
        self.warmup = primary.warmup
        # The features of a live bar need their own lookback beside the primary's history.
        self.memory = max(primary.history, self.features.warmup + 1)

    def bind(self, context: StrategyContext) -> None:
        """Load the meta model trained for this primary, symbol and timeframe (``latest``: the newest)."""
        if self.given is not None:
            return
        from labkit.home import resolve_home
        from labkit.research.meta import load_meta_model

        home = context.home if context.home is not None else resolve_home(None)
        loaded = load_meta_model(
            home, self.reference, self.primary.model_id, context.symbol, context.timeframe
        )
        self.meta_id = loaded.model_id
        self.ensemble = loaded.ensemble
        self.model_id = self.primary.model_id  # a model primary resolves its own id when bound

    def params(self) -> dict[str, Any]:
        return self.primary.params()

    def propose(self, bars: pd.DataFrame) -> Signals:
        from labkit.research.meta import meta_rows, meta_size

        signals = self.primary.propose(bars)
        n = len(bars)
        probability = np.full(n, math.nan)
        buys = np.flatnonzero(signals.side == BUY_CODE)
        if self.given is not None:
            probability[buys] = self.given[-n:][buys]
        elif len(buys) and self.ensemble is not None:
            # Features only where they are read: the bars of entries, each from its own lookback.
            matrix = self.features.compute(bars)
            rows = meta_rows(matrix[buys], signals.side[buys], signals.confidence[buys])
            ok = ~np.isnan(rows).any(axis=1)
            if ok.any():
                probability[buys[ok]] = self.ensemble.predict_proba(rows[ok])
        facts = {
            **signals.facts,
            "meta_probability": probability,
            "meta_size": meta_size(probability, self.min_probability),
        }
        return Signals(signals.side, signals.confidence, signals.expected_edge, facts)

"""The primary strategy behind a meta-label model: what ``--meta ID|latest`` trades.

Not a registered strategy (the class has no ``name``): it wraps the one the session names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.errors import ConfigError
from labkit.strategies.base import Signals, Strategy, StrategyContext
from labkit.strategies.sides import BUY_CODE

if TYPE_CHECKING:
    import pandas as pd

    from labkit.models.artifacts import LoadedModel
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


KIND = "meta"  # the id prefix of a meta model: meta-<12 hex>


def meta_rows(features: np.ndarray, side: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Return a sample's columns: the features, then the primary's side and confidence.

    A primary with no confidence estimate (NaN) is taken as sure (1), as a rule's cross is.
    """
    conf = np.where(np.isnan(confidence), 1.0, confidence)
    return np.column_stack([features, np.asarray(side, dtype="float64"), conf])


def meta_size(probability: np.ndarray, floor: float) -> np.ndarray:
    """Return each entry's size factor: 0.5 at `floor`, 1 at certainty, linear between (NaN: no estimate).

    Examples
    --------
    >>> meta_size(np.array([0.5, 0.75, 1.0, np.nan]), 0.5)
    array([0.5 , 0.75, 1.  ,  nan])
    """
    span = max(1.0 - floor, 1e-12)
    return 0.5 + 0.5 * np.clip((probability - floor) / span, 0.0, 1.0)


def meta_models(
    home: Path, primary: str | None, symbol: str | None, timeframe: str | None
) -> list[tuple[str, str]]:
    """Return (trained_at, id) of each meta model of `primary` on `symbol` `timeframe`, oldest first."""
    from labkit._io import read_json
    from labkit.models.artifacts import models_dir

    root = models_dir(home)
    found = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            doc = read_json(folder / "model.json")
            if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("model_id") != folder.name:
                continue
            record = doc.get("meta") or {}
            if primary is not None and record.get("primary") != primary:
                continue
            if (
                symbol is not None
                and doc.get("symbol") != symbol
                or timeframe is not None
                and doc.get("timeframe") != timeframe
            ):
                continue
            found.append((str(doc.get("trained_at") or doc.get("created_at")), folder.name))
    return sorted(found)


def load_meta_model(home: Path, reference: str, primary: str, symbol: str, timeframe: str) -> LoadedModel:
    """Load the meta model `reference` (an id, or latest: the newest for `primary`, `symbol`, `timeframe`).

    Raises ConfigError naming ``--meta`` when there is none, it is not a meta model, it was trained
    for another primary or market, or on features this labkit no longer computes.
    """
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import load_model

    if reference == "latest":
        found = meta_models(home, primary, symbol, timeframe)
        if not found:
            raise ConfigError(
                f"--meta latest: no meta model of {primary} for {symbol} {timeframe}; train one first "
                f"(labkit train --meta STRATEGY)"
            )
        reference = found[-1][1]
    try:
        loaded = load_model(home, reference, symbol, timeframe)
    except ConfigError as exc:
        raise ConfigError(f"--meta: {exc}") from None
    record = loaded.meta.get("meta") or {}
    if loaded.meta.get("kind") != KIND:
        raise ConfigError(
            f"--meta {reference}: not a meta model (train one with labkit train --meta STRATEGY)"
        )
    if record.get("primary") != primary:
        raise ConfigError(
            f"--meta {reference}: trained for the primary {record.get('primary')}, not {primary}; "
            "give that strategy and its parameters, or train a meta model of this one"
        )
    if (loaded.meta.get("features") or {}).get("version") != FeatureSet().schema.version:
        raise ConfigError(
            f"--meta {reference}: trained on other features than this labkit computes; train it again"
        )
    return loaded

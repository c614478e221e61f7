"""`model`: trade a trained model's calibrated probability of an up move over its horizon.

BUY when the probability reaches ``entry``, SELL when it falls to ``exit``; ``confidence`` is that
probability. The model is loaded when the strategy is bound to its home, market and timeframe
(``--model ID`` or ``latest``, the newest for them). Beside each proposal it reports what the
`model` and `scalping` gates judge: the model's status, the drift of the live features from the
training window over a rolling window of bars (with the threshold the model was calibrated with,
when it has one), and the horizon the model was trained for.

Batch and bar by bar give the same numbers: features are finite-window functions of past bars,
and what a live session computed for a bar is kept by bar time, so only new bars are computed.

A model trained with cross-sectional features (``labkit train --cross-sectional``) reads them from
columns of the bars it is given: a book over the universe supplies them (`labkit.engine.book`). One
symbol alone has no universe to rank it in, so such a model refuses to trade it.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, model_validator

from labkit.data.bars import ts_ms
from labkit.errors import ConfigError
from labkit.strategies.base import Signals, Strategy, StrategyConfig, StrategyContext
from labkit.strategies.sides import BUY_CODE, SELL_CODE

if TYPE_CHECKING:
    import pandas as pd

    from labkit.features.drift import DriftCalibration, FeatureProfile
    from labkit.features.featureset import FeatureSet
    from labkit.models.ensemble import Ensemble

log = logging.getLogger(__name__)

# The `model_status` fact: what the `model` gate reads (labkit.gates.model).
MODEL_OK, MODEL_UNAVAILABLE, FEATURE_MISMATCH = 0.0, 1.0, 2.0


def sides(probability: np.ndarray, entry: float, exit: float) -> np.ndarray:
    """Return the proposals of probabilities: BUY at `entry` or above, SELL at `exit` or below (NaN holds)."""
    side = np.zeros(len(probability), dtype="int8")
    with np.errstate(invalid="ignore"):
        side[probability >= entry] = BUY_CODE
        side[probability <= exit] = SELL_CODE
    return side


class ModelStrategyConfig(StrategyConfig):
    model: str = Field(
        "latest",
        pattern=r"^(latest|[a-z]+-[0-9a-f]{12})$",
        description="a model id (labkit models) or latest, the newest for the symbol and timeframe",
    )
    entry: float = Field(
        0.6, gt=0.5, le=1.0, description="BUY when the probability of an up move reaches this"
    )
    exit: float = Field(0.5, ge=0.0, lt=1.0, description="SELL when the probability falls to this")
    drift_window: int = Field(
        1440,
        ge=50,
        le=100_000,
        description="bars of the rolling window of live features compared with the training window "
        "(PSI) for a model without a calibrated threshold; a calibrated model uses the window it was "
        "calibrated on (gates.model.drift_window when it was trained)",
    )

    @model_validator(mode="after")
    def _exit_below_entry(self) -> ModelStrategyConfig:
        if self.exit >= self.entry:
            raise ValueError(f"exit ({self.exit}) must be below entry ({self.entry})")
        return self


class ModelStrategy(Strategy):
    """Buy when a trained model's calibrated probability of an up move reaches the entry threshold."""

    name = "model"
    Config = ModelStrategyConfig
    config: ModelStrategyConfig

    def __init__(self, config: ModelStrategyConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        from labkit.features.featureset import FeatureSet

        self.model_id = f"model-{self.config.model}"  # until bound: the reference, not yet an id
        self.features: FeatureSet = FeatureSet()
        self.warmup = self.features.warmup
        self.memory = self.warmup + self.config.drift_window
        self.status = MODEL_UNAVAILABLE
        self.ensemble: Ensemble | None = None
        self.horizon = math.nan
        self.profile: FeatureProfile | None = None
        self.calibration: DriftCalibration | None = None
        self.drift_window = self.config.drift_window
        # The last `history` bars decided: their times, features and probabilities.
        self._times = np.empty(0, dtype="int64")
        self._matrix = np.empty((0, 0))
        self._probability = np.empty(0)
        # The rolling PSI of the last `history` bars decided, by bar time: a live session computes
        # only the new bars' windows.
        self._drift_times = np.empty(0, dtype="int64")
        self._drift_values = np.empty(0)
        # The features ranked across a universe this model reads: the book engine supplies them.
        self.cross_sectional: tuple[str, ...] = ()
        self.universe: tuple[str, ...] = ()
        self._strict = True

    def bind(self, context: StrategyContext) -> None:
        from labkit.features.drift import DriftCalibration, FeatureProfile
        from labkit.features.featureset import FeatureSet
        from labkit.home import resolve_home
        from labkit.models.artifacts import load_model

        home = context.home if context.home is not None else resolve_home(None)
        self._strict = context.strict
        try:
            loaded = load_model(home, self.config.model, context.symbol, context.timeframe)
        except ConfigError as exc:
            if context.strict:
                raise
            log.warning(  # the reason, not a traceback: the user's to repair, not labkit's
                "model %s for %s %s cannot be loaded (%s): every bar holds with model_unavailable",
                self.config.model,
                context.symbol,
                context.timeframe,
                exc,
            )
            return
        self.model_id = loaded.model_id
        self.features = FeatureSet(list(loaded.schema["names"]))
        self.cross_sectional = self.features.cross_sectional
        self.universe = tuple(loaded.meta.get("symbols") or ())  # what a pooled model was trained over
        self.warmup = self.features.warmup
        self.memory = self.warmup + self.config.drift_window
        self.horizon = float(loaded.meta["horizon"])
        keep, differences = loaded.ensemble.usable(self.features.schema.to_dict())
        for sentence in differences:  # once per session: bind runs when the engine is built
            log.warning("model %s: a member is skipped: %s", loaded.model_id, sentence)
        if not keep:
            message = (
                f"--model {loaded.model_id}: no member reads the features this labkit computes "
                f"({'; '.join(differences)}); train it again with labkit train"
            )
            if context.strict:
                raise ConfigError(message)
            log.warning("%s: every bar holds with feature_mismatch", message)
            self.status = FEATURE_MISMATCH
            return
        self.ensemble = loaded.ensemble.without(
            [i for i in range(len(loaded.ensemble.members)) if i not in keep]
        )
        drift = loaded.meta.get("drift")
        self.profile = FeatureProfile.from_dict(drift) if drift else None
        calibration = loaded.meta.get("drift_calibration")
        self.calibration = DriftCalibration.from_dict(calibration) if calibration else None
        # The threshold holds for windows as long as those it was calibrated on.
        self.drift_window = self.calibration.window if self.calibration else self.config.drift_window
        self.memory = self.warmup + self.drift_window
        self.status = MODEL_OK

    def params(self) -> dict[str, Any]:
        return {**super().params(), "model_id": self.model_id}

    def propose(self, bars: pd.DataFrame) -> Signals:
        n = len(bars)
        if self.ensemble is None:
            facts = {"model_status": np.full(n, self.status), "horizon": np.full(n, self.horizon)}
            return Signals(np.zeros(n, dtype="int8"), np.full(n, math.nan), np.full(n, math.nan), facts)
        if self.cross_sectional and not set(self.cross_sectional) <= set(bars.columns):
            return self._without_universe(n)
        times = ts_ms(bars)
        matrix, probability = self._rows_for(bars, times)
        side = sides(probability, self.config.entry, self.config.exit)
        facts = {
            "model_status": np.full(n, MODEL_OK),
            "horizon": np.full(n, self.horizon),
            "drift_psi": self._drift_at(times, matrix),
        }
        if self.calibration is not None:  # the gate's threshold: without it, gates.model.max_psi
            facts["drift_limit"] = np.full(n, self.calibration.threshold)
            facts["drift_quantile"] = np.full(n, self.calibration.quantile)
            facts["drift_windows"] = np.full(n, float(self.calibration.windows))
        return Signals(side, probability, np.full(n, math.nan), facts)

    def _without_universe(self, n: int) -> Signals:
        # Bars without the ranks come from a single-symbol run: the user's error in a backtest; a
        # session holds every bar (model_unavailable) and says why once.
        message = (
            f"--model {self.model_id} was trained with cross-sectional features "
            f"({', '.join(self.cross_sectional)}), which rank a symbol among its universe: cross-sectional "
            "features need a universe; trade it as a book (--symbols A,B,C or --universe NAME)"
        )
        if self._strict:
            raise ConfigError(message)
        log.warning("%s: every bar holds with model_unavailable", message)
        self.ensemble, self.status = None, MODEL_UNAVAILABLE
        facts = {"model_status": np.full(n, self.status), "horizon": np.full(n, self.horizon)}
        return Signals(np.zeros(n, dtype="int8"), np.full(n, math.nan), np.full(n, math.nan), facts)

    def _rows_for(self, bars: pd.DataFrame, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Features and probabilities of every bar, computing only bars not seen before: a live
        # session passes its history again with each new bar.
        assert self.ensemble is not None
        n, k = len(bars), len(self.features.names)
        probability = np.full(n, math.nan)
        hit = np.zeros(n, dtype=bool)
        if len(self._times):
            where = np.minimum(np.searchsorted(self._times, times), len(self._times) - 1)
            hit = self._times[where] == times
        fresh = ~hit
        if not hit.any():  # a replay: every bar is new, so the batch of features is the matrix
            matrix = self.features.compute_columns(self.features.columns(bars))
        else:
            matrix = np.full((n, k), math.nan)
            matrix[hit], probability[hit] = self._matrix[where[hit]], self._probability[where[hit]]
        if fresh.any() and hit.any():
            first = int(np.argmax(fresh))
            start = max(0, first - self.warmup + 1)  # the features of `first` need its lookback
            computed = self.features.compute_columns(self.features.columns(bars, last=n - start))[
                first - start :
            ]
            matrix[first:] = np.where(fresh[first:, None], computed, matrix[first:])
        if fresh.any():
            todo = np.flatnonzero(fresh & ~np.isnan(matrix).any(axis=1))
            if len(todo) == 1:
                probability[todo[0]] = self.ensemble.predict_one(matrix[todo[0]])
            elif len(todo) and todo[-1] - todo[0] + 1 == len(todo):  # one run of rows: no copy
                run = slice(int(todo[0]), int(todo[-1]) + 1)
                probability[run] = self.ensemble.predict_proba(matrix[run])
            elif len(todo):
                probability[todo] = self.ensemble.predict_proba(matrix[todo])
            keep = slice(max(0, n - self.history), n)  # what the next call passes back
            self._times, self._matrix = times[keep].copy(), matrix[keep].copy()
            self._probability = probability[keep].copy()
        return matrix, probability

    def _drift_at(self, times: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        # The largest PSI of a market feature over the `drift_window` bars ending at each bar,
        # against the training window (labkit.features.drift.rolling_psi). Bars seen before keep
        # their value; the new ones are computed from the rows their windows need, so a session fed
        # bar by bar gets what a backtest computes at once. NaN until a full window is known.
        out = np.full(len(times), math.nan)
        if self.profile is None or not len(times):
            return out
        from labkit.features.drift import rolling_psi

        hit = np.zeros(len(times), dtype=bool)
        if len(self._drift_times):
            where = np.minimum(np.searchsorted(self._drift_times, times), len(self._drift_times) - 1)
            hit = self._drift_times[where] == times
            out[hit] = self._drift_values[where[hit]]
        if hit.all():
            return out
        first = int(np.argmax(~hit))
        start = max(0, first - self.drift_window + 1)
        fresh = rolling_psi(self.profile, matrix[start:], self.drift_window)[first - start :]
        out[first:] = np.where(hit[first:], out[first:], fresh)
        keep = slice(max(0, len(times) - self.history), len(times))
        self._drift_times, self._drift_values = times[keep].copy(), out[keep].copy()
        return out

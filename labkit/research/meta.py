"""`labkit train --meta STRATEGY`: a meta-label model of a primary strategy's entries (AFML ch. 3.6).

The primary (a registered strategy with its parameters) is run over the training bars; each BUY it
proposes is a sample. Its label is 1 when that entry, taken at the close of the bar it was proposed
at, reaches its profit barrier (``profit_take`` ATRs above) before its stop (``stop_loss`` ATRs
below) or the time limit (``horizon`` bars), as `labkit.features.labels.triple_barrier_labels`
decides it; else 0. The engine fills at the next open: the close is what the decision saw, and the
barriers are those the engine's ATR exits would set from it. A sample's features are the usual
feature set at the entry bar plus the primary's side and confidence there.

The samples are cut into purged walk-forward folds by time, each training sample purged when its
label ends at or after its fold's first test sample. Each fold's out-of-sample probabilities are
replayed through the engine twice, net of costs: the primary alone and the primary behind the
`meta` gate; model.json keeps both, for the train report. The saved model is fit on every sample
(one seed: the samples are a few hundred entries, not bars).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from labkit.errors import ConfigError
from labkit.strategies.meta_labeled import KIND, meta_rows

if TYPE_CHECKING:
    import pandas as pd

    from labkit.config.schema import LabkitConfig
    from labkit.strategies.base import Strategy

# The out-of-sample rows beside a model, which its train report reads: the tested entries here.
OUT_OF_SAMPLE = "out_of_sample.parquet"
COLUMNS = ("primary_side", "primary_confidence")  # what a sample adds to the feature set
MIN_FIRST = 30  # samples the first fold trains on at least
MIN_TEST = 10  # samples a test fold holds at least


@dataclass(frozen=True)
class MetaPlan:
    """What one `labkit train --meta` run does: the primary, its barriers, the folds and the members."""

    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    horizon: int = 15
    profit_take: float = 2.0
    stop_loss: float = 2.0
    folds: int = 5
    model: str = "ensemble"
    min_probability: float = 0.5
    member_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[str, ...]:
        from labkit.research.training import KINDS

        return KINDS if self.model == "ensemble" else (self.model,)


@dataclass
class MetaResult:
    """What a meta run produced: the saved model's id and the figures `--json` prints."""

    model_id: str
    meta: dict[str, Any]
    folds: list[dict[str, Any]]
    samples: int
    positive_share: float
    auc_mean: float
    oos: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        from labkit.analysis.formatting import finite

        return {
            "model_id": self.model_id,
            "meta": self.meta,
            "samples": self.samples,
            "positive_share": finite(self.positive_share),
            "auc_mean": finite(self.auc_mean),
            "folds": self.folds,
            "oos": self.oos,
        }


def primary_strategy(config: LabkitConfig, home: Path | None, plan: MetaPlan) -> Strategy:
    """Return the primary of `plan`, with its parameters, bound to the session's market."""
    from labkit.strategies.base import StrategyContext
    from labkit.strategies.registry import make_strategy, registered_strategies

    if plan.strategy not in registered_strategies():
        allowed = ", ".join(registered_strategies())
        raise ConfigError(f"--meta: unknown strategy {plan.strategy!r}; allowed: {allowed}")
    strategy = make_strategy(plan.strategy, dict(plan.params))
    s = config.session
    strategy.bind(StrategyContext(home, s.symbol, s.timeframe, True))
    return strategy


def samples(
    config: LabkitConfig, bars: pd.DataFrame, primary: Strategy, plan: MetaPlan
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the primary's entries with known labels: their bar indices, rows, labels and label ends."""
    from labkit.data.bars import bar_columns
    from labkit.features.definitions import atr
    from labkit.features.featureset import FeatureSet
    from labkit.features.labels import triple_barrier_labels
    from labkit.strategies.sides import BUY_CODE

    signals = primary.propose(bars)
    cols = bar_columns(bars)
    vol = atr(cols["high"], cols["low"], cols["close"], config.risk.atr_window)
    barrier = triple_barrier_labels(
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        vol,
        plan.horizon,
        plan.profit_take,
        plan.stop_loss,
    )
    matrix = FeatureSet().compute(bars)
    entries = np.flatnonzero(signals.side == BUY_CODE)
    rows = meta_rows(matrix[entries], signals.side[entries], signals.confidence[entries])
    known = ~np.isnan(rows).any(axis=1) & ~np.isnan(barrier.label[entries])
    entries, rows = entries[known], rows[known]
    return (
        entries,
        rows,
        (barrier.label[entries] == 1).astype("float64"),
        barrier.end[entries].astype("int64"),
    )


def train_meta(
    config: LabkitConfig,
    home: Path,
    bars: pd.DataFrame,
    plan: MetaPlan,
    progress: Callable[[int], object] | None = None,
) -> MetaResult:
    """Train, judge out of sample and save a meta model of `plan`'s primary over `bars`.

    Raises ConfigError naming ``--since``/``--folds`` when the primary's entries are too few for
    the folds, or a fold's training samples are of one label.
    """
    from labkit.features.featureset import FeatureSet
    from labkit.features.labels import walk_forward_folds
    from labkit.models.artifacts import save_model
    from labkit.research.trials import data_hash

    primary = primary_strategy(config, home, plan)
    entries, X, y, ends = samples(config, bars, primary, plan)
    first = max(MIN_FIRST, len(y) // (plan.folds + 1))
    if len(y) < first + plan.folds * MIN_TEST:
        raise ConfigError(
            f"--since/--folds: {plan.strategy} proposed {len(y)} entries with known outcomes over "
            f"{len(bars):,} bars; {plan.folds} folds need at least {MIN_FIRST + plan.folds * MIN_TEST} "
            "(give an earlier --since or fewer --folds)"
        )
    # A label ends at a bar; as a sample index, at the last entry at or before that bar, so a
    # training sample is purged when its outcome was still open at its fold's first test entry.
    end_rows = np.searchsorted(entries, ends, side="right") - 1
    folds = walk_forward_folds(len(y), plan.folds, 1, first, ends=end_rows)
    probability = np.full(len(y), math.nan)
    table = []
    for fold in folds:
        train = fold.train
        if len(np.unique(y[train])) < 2:
            raise ConfigError(
                f"--since/--profit-take/--stop-loss: fold {fold.index} trains on {len(train)} entries of "
                f"{plan.strategy} and all have label {int(y[train][0]) if len(train) else 0}; give more bars "
                "or other barriers"
            )
        ensemble = _fit(X[train], y[train], plan, None)
        test = np.arange(len(y))[fold.test]
        probability[test] = ensemble.predict_proba(X[test])
        row = {"fold": fold.index, "train_bars": len(train), "test_bars": len(test)}
        table.append({**row, **_scores(y[test], probability[test])})
        if progress is not None:
            progress(1)
    tested = ~np.isnan(probability)
    ensemble = _fit(X, y, plan, (probability[tested], y[tested]))
    if progress is not None:
        progress(1)
    oos = compare_out_of_sample(config, bars, plan, entries, folds, probability)
    for row, block in zip(table, oos.pop("per_block"), strict=True):
        row.update(block)  # the gated run's trades and net return on the fold's block
    names = [*FeatureSet().names, *COLUMNS]
    record = {
        "primary": primary.model_id,
        "strategy": plan.strategy,
        "params": primary.params(),
        "columns": list(COLUMNS),
        "barriers": {
            "horizon": plan.horizon,
            "profit_take": plan.profit_take,
            "stop_loss": plan.stop_loss,
            "vol": f"ATR({config.risk.atr_window})",
            "entry": "the close of the entry bar",
        },
    }
    aucs = [row["auc"] for row in table if row["auc"] is not None]
    auc_mean = float(np.mean(aucs)) if aucs else math.nan
    meta = {
        "kind": KIND,
        "symbol": config.session.symbol,
        "timeframe": config.session.timeframe,
        "source": config.session.source,
        "horizon": plan.horizon,
        "meta": record,
        "params": {
            "folds": plan.folds,
            "seeds": 1,
            "model": plan.model,
            "min_probability": plan.min_probability,
            "label": f"profit barrier ({plan.profit_take:g} ATR) before the stop ({plan.stop_loss:g} ATR) "
            f"or {plan.horizon} bars",
            "round_trip_cost": config.broker.round_trip_cost,
            "columns": names,
        },
        "folds": table,
        "auc_mean": auc_mean,
        "oos_meta": oos,
        "window": {
            "since": bars.index[0].isoformat(),
            "until": bars.index[-1].isoformat(),
            "bars": len(bars),
            "rows": len(y),
        },
        "data_hash": data_hash(bars),
    }
    files = {OUT_OF_SAMPLE: _out_of_sample(bars, entries, y, probability)}
    model_id = save_model(home, ensemble, meta, files=files)
    return MetaResult(model_id, record, table, len(y), float(np.mean(y)), auc_mean, oos)


def _out_of_sample(
    bars: pd.DataFrame, entries: np.ndarray, y: np.ndarray, probability: np.ndarray
) -> Callable[[BinaryIO], object]:
    # The tested entries' labels and out-of-sample probabilities, by entry bar, for the train report.
    import pandas as pd

    tested = ~np.isnan(probability)
    frame = pd.DataFrame(
        {"label": y[tested], "probability": probability[tested]}, index=bars.index[entries[tested]]
    )
    frame.index.name = "ts"
    return lambda handle: frame.to_parquet(handle)


def _fit(X: np.ndarray, y: np.ndarray, plan: MetaPlan, oof: tuple[np.ndarray, np.ndarray] | None) -> Any:
    # Every member kind on the samples, equal weights; the saved model's calibration comes from
    # the folds' out-of-sample probabilities (a fold's own model is used uncalibrated).
    from labkit.features.featureset import FeatureSet
    from labkit.models.ensemble import Calibrator, Ensemble
    from labkit.models.members import make_member

    members = []
    for kind in plan.kinds:
        member = make_member(kind, 0, plan.member_params.get(kind))
        member.fit(X, y)
        members.append(member)
    calibrator = Calibrator.identity()
    if oof is not None and len(np.unique(oof[1])) == 2:
        calibrator = Calibrator.fit(oof[0], oof[1])
    weights = np.full(len(members), 1.0 / len(members))
    schema = FeatureSet().schema.to_dict()
    return Ensemble(members, weights, calibrator, schema)


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    # The scores a signal model's fold has (the train report reads both alike); one seed: no spread.
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from labkit.analysis.formatting import finite
    from labkit.models.ensemble import log_loss

    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan
    up = float(np.mean(y))
    return {
        "auc": finite(auc),
        "log_loss": finite(log_loss(y, p)),
        "brier": finite(float(brier_score_loss(y, p))),
        "accuracy": finite(float(np.mean((p >= 0.5) == (y == 1)))),
        "majority_accuracy": finite(max(up, 1.0 - up)),
        "positive_share": finite(up),
        "auc_seed_std": None,
    }


def compare_out_of_sample(
    config: LabkitConfig,
    bars: pd.DataFrame,
    plan: MetaPlan,
    entries: np.ndarray,
    folds: list[Any],
    probability: np.ndarray,
) -> dict[str, Any]:
    """Return the primary alone against the primary behind the `meta` gate on the folds' test blocks.

    Each block (from its first test entry's bar to the bar before the next block's, the last to the
    end) is replayed through the engine with the config's gates and costs, after the primary's
    warm-up; the gated run reads the fold's out-of-sample probabilities. Entries, net return (the
    blocks chained) and hit rate (the share of closed round trips that made money, net of costs).
    """
    from labkit.config.schema import strategy_config
    from labkit.research.backtest import run_backtest
    from labkit.strategies.meta_labeled import MetaLabeled
    from labkit.strategies.registry import make_strategy

    per_bar = np.full(len(bars), math.nan)
    tested = ~np.isnan(probability)
    per_bar[entries[tested]] = probability[tested]
    starts = [int(entries[fold.test.start]) for fold in folds]
    stops = [*starts[1:], len(bars)]
    as_primary = config.model_copy(
        update={
            "session": config.session.model_copy(update={"strategy": plan.strategy}),
            "strategies": config.strategies.model_copy(
                update={
                    plan.strategy: strategy_config(config, plan.strategy).model_copy(update=dict(plan.params))
                }
            ),
        }
    )
    out: dict[str, Any] = {"blocks": len(folds), "per_block": []}
    for label, gated in (("primary", False), ("meta", True)):
        trades = closed = wins = 0
        growth = 1.0
        for lo, hi in zip(starts, stops, strict=True):
            primary = make_strategy(plan.strategy, dict(plan.params))
            start = max(0, lo - primary.history + 1)
            strategy: Strategy = primary
            if gated:
                strategy = MetaLabeled(primary, "out-of-sample", plan.min_probability, per_bar[start:hi])
            result = run_backtest(as_primary, bars.iloc[start:hi], strategy=strategy, trial=False)
            trades += int(result.summary["trades"])
            if result.trips is not None:
                closed += len(result.trips)
                wins += int((result.trips["net_pnl"] > 0).sum())
            growth *= 1.0 + float(result.summary["return_pct"]) / 100.0
            if gated:
                block = {"net_return_pct": result.summary["return_pct"], "trades": result.summary["trades"]}
                out["per_block"].append(block)
        out[label] = {
            "trades": trades,
            "return_pct": (growth - 1.0) * 100.0,
            "hit_rate": wins / closed if closed else None,
        }
    return out

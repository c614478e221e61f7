"""`labkit train`: fit the ensemble with purged walk-forward folds, over several seeds, and save it.

For each seed and each fold, every member learns from the bars before the fold (less those whose
labels reach into it: each label's span ends at the bar that decided it, ``horizon`` bars on for
sign labels, earlier for a triple-barrier label that hit a barrier) and predicts the fold. Each
training row is weighted by its label's average uniqueness (`labkit.research.targets`). A fold is
judged by the ensemble as it stood then: weights and calibration come from the out-of-fold
predictions of the folds before it only (the first fold uses equal weights and no calibration),
so no figure of a fold has seen that fold's labels. Each fold's probabilities are also traded
through the engine, with the session's gates and costs, for its net result. The final model is fit
on the whole window; its weights and calibration come from all the out-of-fold predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from labkit.analysis.formatting import finite
from labkit.errors import ConfigError
from labkit.home import git_commit
from labkit.strategies.base import Signals, Strategy

if TYPE_CHECKING:
    import pandas as pd

    from labkit.config.schema import LabkitConfig
    from labkit.models.members import Member

KINDS = ("xgboost", "logistic", "forest")  # the ensemble; "bagged" trains alone only
# Members whose fit does not depend on the seed (lbfgs is deterministic): fit once per fold.
SEED_FREE = frozenset({"logistic"})
# Rows the first fold trains on at least, besides the folds themselves: a model needs examples.
MIN_TRAIN = 500
# What a test fold holds at least: below this an AUC is noise (a 29-row fold read "AUC 0.82").
MIN_TEST_ROWS = 500
MIN_TEST_CLASS = 50  # rows of either label
# The walk-forward probabilities saved beside a model, which its train report reads.
OUT_OF_SAMPLE = "out_of_sample.parquet"


@dataclass(frozen=True)
class TrainPlan:
    """What one `labkit train` run does: the label horizon, the folds, the seeds and the members."""

    horizon: int = 15
    folds: int = 5
    seeds: int = 3
    model: str = "ensemble"  # or one member kind, or "bagged"
    entry: float = 0.6
    exit: float = 0.5
    # Parameters of each member kind over its defaults (smaller trees for quick checks).
    member_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # A pooled model also ranks each symbol's momentum and volatility across the universe.
    cross_sectional: bool = False
    # What label 1 means (`labkit.research.targets`): the sign of the return net of costs, or the
    # profit barrier (close + profit_take x ATR) reached before the stop (close - stop_loss x ATR).
    labels: str = "sign"
    profit_take: float = 2.0
    stop_loss: float = 2.0

    @property
    def barriers(self) -> dict[str, Any]:
        """The barrier multiples, for a triple-barrier plan only ({} for sign labels)."""
        if self.labels != "triple-barrier":
            return {}
        return {"profit_take": self.profit_take, "stop_loss": self.stop_loss}

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS if self.model == "ensemble" else (self.model,)


@dataclass
class TrainResult:
    """What a run produced: the saved model's id and the figures `labkit train --json` prints."""

    model_id: str
    folds: list[dict[str, Any]]
    auc_mean: float  # the mean of the folds' AUCs
    auc_std: float  # their standard deviation across the folds
    auc_seed_std: float  # the spread of the whole run's AUC across the seeds, apart
    seeds: int
    horizon: int
    features: list[str]
    bars: int
    rows: int
    oos: dict[str, Any] = field(default_factory=dict)
    symbols: list[str] | None = None  # a model pooled over a universe: its symbols
    labels: str = "sign"
    barriers: dict[str, Any] = field(default_factory=dict)  # triple-barrier: the ATR multiples

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            **({} if self.symbols is None else {"symbols": self.symbols}),
            "labels": self.labels,
            **self.barriers,
            "folds": self.folds,
            "auc_mean": finite(self.auc_mean),
            "auc_std": finite(self.auc_std),
            "auc_seed_std": finite(self.auc_seed_std),
            "seeds": self.seeds,
            "horizon": self.horizon,
            "features": self.features,
            "bars": self.bars,
            "rows": self.rows,
            "oos": self.oos,
        }


class FoldStrategy(Strategy):
    """Trade given probabilities (one per bar): how a fold's out-of-sample predictions would have done."""

    name = "model"

    def __init__(self, probability: np.ndarray, plan: TrainPlan, model_id: str) -> None:
        super().__init__()
        self.probability, self.plan = probability, plan
        self.model_id, self.warmup = model_id, 1

    def propose(self, bars: pd.DataFrame) -> Signals:
        from labkit.strategies.model import sides

        p = self.probability[-len(bars) :]
        side = sides(p, self.plan.entry, self.plan.exit)
        facts = {"model_status": np.zeros(len(bars)), "horizon": np.full(len(bars), float(self.plan.horizon))}
        return Signals(side, p.copy(), np.full(len(bars), math.nan), facts)


def rows_needed(plan: TrainPlan, warmup: int) -> int:
    """Return the bars a run needs: the features' warm-up, the first training rows, the folds, the horizon.

    Each test fold holds at least `MIN_TEST_ROWS` rows (and ``horizon + 1``, so one label is known).
    """
    from labkit.features.labels import rows_needed as label_rows

    block = max(plan.horizon, MIN_TEST_ROWS - 1)  # label_rows counts blocks of horizon + 1 rows
    return warmup - 1 + label_rows(plan.folds, block, MIN_TRAIN) + plan.horizon


def train_model(
    config: LabkitConfig,
    home: Path,
    bars: pd.DataFrame,
    plan: TrainPlan,
    progress: Callable[[int], object] | None = None,
) -> TrainResult:
    """Train, judge and save a model of `bars`; record the run as a trial; return its figures.

    Raises ConfigError naming ``--since`` when the bars are too few for the folds and horizon.
    """
    from labkit.config.schema import gate_configs
    from labkit.features.featureset import FeatureSet
    from labkit.features.labels import walk_forward_folds
    from labkit.gates.model import calibrate_drift
    from labkit.models.artifacts import save_model
    from labkit.research.targets import label_weights, targets
    from labkit.research.trials import data_hash, record_trial

    features = FeatureSet()
    need = rows_needed(plan, features.warmup)
    if len(bars) < need:
        raise ConfigError(
            f"--since/--folds: {len(bars):,} bars of {config.session.symbol} {config.session.timeframe}; "
            f"{plan.folds} test folds of at least {MIN_TEST_ROWS} rows each, after {MIN_TRAIN} to train "
            f"first, with horizon {plan.horizon}, need at least {need:,} bars; give an earlier --since "
            "or fewer --folds"
        )
    cost = config.broker.round_trip_cost
    matrix = features.compute(bars)
    atr_window = config.risk.atr_window
    target = targets(bars, plan.labels, plan.horizon, cost, plan.profit_take, plan.stop_loss, atr_window)
    usable = np.flatnonzero(~np.isnan(matrix).any(axis=1) & ~np.isnan(target.y))
    X, y = matrix[usable], target.y[usable]
    end = target.end[usable].astype("int64")
    # Each row's label end as a row: the first usable row at or after the bar it ends at.
    row_end = np.searchsorted(usable, end, side="left")
    # The first fold trains on a block as long as a test fold (K + 1 blocks in all), and on at least
    # MIN_TRAIN rows: a few hundred bars of one quiet stretch may hold a single label.
    first = max(MIN_TRAIN, len(usable) // (plan.folds + 1))
    folds = walk_forward_folds(len(usable), plan.folds, plan.horizon, first, ends=row_end)
    samples = _Samples(label_weights(plan.labels, usable, end), np.column_stack([usable, end]))
    fit = _fit_walk(X, y, folds, plan, features, progress, cost, samples)
    oos_summary = _trade_folds(config, bars, usable, folds, fit.walk.probability, plan, fit.folds_out)
    meta = {
        "symbol": config.session.symbol,
        **_meta(config, plan, fit, features, cost),
        "window": {
            "since": bars.index[0].isoformat(),
            "until": bars.index[-1].isoformat(),
            "bars": len(bars),
            "rows": len(usable),
        },
        "data_hash": data_hash(bars),
        # The threshold the model gate holds its live drift to (labkit.gates.model).
        "drift_calibration": calibrate_drift(gate_configs(config)["model"], fit.X, features.names),
    }
    # The out-of-sample file is written into the model's staging folder, before it is renamed into
    # place; the trial is recorded once the model is there, and a failed record withdraws it. A
    # full disk at any step leaves no model listed, none without its file or its trial.
    model_id = save_model(
        home,
        fit.ensemble,
        meta,
        files={OUT_OF_SAMPLE: _out_of_sample(bars.index[usable], y, fit.walk.probability)},
        on_installed=lambda saved: record_trial(
            config,
            bars,
            {**oos_summary, "strategy": saved},
            kind="train",
            plan=trial_plan(plan, bars, atr_window),
        ),
    )
    return fit.result(model_id, plan, features, len(bars), len(usable), oos_summary)


def train_pooled(
    config: LabkitConfig,
    home: Path,
    frames: Mapping[str, pd.DataFrame],
    plan: TrainPlan,
    progress: Callable[[int], object] | None = None,
) -> TrainResult:
    """Train, judge and save one model pooled over the universe `frames` (symbol -> bars).

    Each symbol's features and labels come from its own bars; the rows are pooled and the folds cut
    on time for every symbol at once (`labkit.research.pooled`). model.json records ``symbols``,
    and ``symbol`` is their comma-joined list, the universe's family as a book's trials name it.
    Each fold is traded as one sleeve per symbol, of equal capital. Raises ConfigError naming
    ``--since`` or ``--folds`` when the rows are too few.

    With ``plan.cross_sectional`` each row also holds the symbol's cross-sectional ranks
    (`labkit.features.cross_section`), and the schema in model.json says ``cross_sectional: true``.
    """
    import pandas as pd

    from labkit.config.schema import gate_configs
    from labkit.gates.model import calibrate_drift
    from labkit.models.artifacts import save_model
    from labkit.research.pooled import pool_rows, time_folds
    from labkit.research.trials import record_trial

    features = pooled_features(plan)
    cost = config.broker.round_trip_cost
    symbols = list(frames)
    atr_window = config.risk.atr_window
    rows = pool_rows(
        frames, features, plan.horizon, cost, plan.labels, plan.profit_take, plan.stop_loss, atr_window
    )
    distinct = len(np.unique(rows.times))
    # As one symbol's run: the first fold trains on a span as long as a test fold's, and on at
    # least MIN_TRAIN rows (of all the symbols together).
    first = max(-(-MIN_TRAIN // len(symbols)), distinct // (plan.folds + 1), plan.horizon + 1)
    folds = time_folds(rows.times, rows.label_end, plan.folds, first)
    weight = rows.weight if plan.labels != "sign" else None  # as `label_weights` says for one symbol
    fit = _fit_walk(rows.X, rows.y, folds, plan, features, progress, cost, _Samples(weight, rows.spans))
    oos_summary = _trade_pooled_folds(config, frames, rows, folds, fit.walk.probability, plan, fit.folds_out)
    everything = pd.concat(list(frames.values()))
    family = ",".join(symbols)
    as_family = config.model_copy(update={"session": config.session.model_copy(update={"symbol": family})})
    since = min(bars.index[0] for bars in frames.values())
    until = max(bars.index[-1] for bars in frames.values())
    meta = {
        "symbol": family,
        "symbols": symbols,
        **_meta(config, plan, fit, features, cost),
        "window": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "bars": len(everything),
            "rows": len(rows.y),
        },
        "data_hash": _universe_hash(frames),
        # Each symbol's windows: the threshold the model gate holds each symbol's live drift to.
        "drift_calibration": calibrate_drift(
            gate_configs(config)["model"], rows.X, features.names, rows.symbol
        ),
    }
    trial = {**trial_plan(plan, everything.sort_index(), atr_window), "symbols": symbols}
    times = pd.to_datetime(rows.times, unit="ms", utc=True)
    files = {OUT_OF_SAMPLE: _out_of_sample(times, rows.y, fit.walk.probability, rows.symbol, symbols)}
    model_id = save_model(
        home,
        fit.ensemble,
        meta,
        files=files,
        on_installed=lambda saved: record_trial(
            as_family, everything, {**oos_summary, "strategy": saved}, kind="train", plan=trial
        ),
    )
    return fit.result(model_id, plan, features, len(everything), len(rows.y), oos_summary, symbols)


def pooled_features(plan: TrainPlan) -> Any:
    """Return the feature set a pooled run trains on: every feature, and the ranks when asked."""
    from labkit.features.cross_section import NAMES
    from labkit.features.featureset import FeatureSet

    return FeatureSet([*FeatureSet().names, *NAMES]) if plan.cross_sectional else FeatureSet()


@dataclass(frozen=True)
class _Samples:
    """What each row's fit takes besides its features and label: its weight and its label's span."""

    weight: np.ndarray | None = None  # average uniqueness, mean 1
    spans: np.ndarray | None = None  # (n, 2) [start, end] in bars

    def take(self, rows: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            None if self.weight is None else self.weight[rows],
            None if self.spans is None else self.spans[rows],
        )


@dataclass
class _Fit:
    """The walk through the folds over every seed, and the final model: what both kinds of run share."""

    walk: _Walk
    per_seed: list[list[dict[str, Any]]]
    ensemble: Any
    losses: list[float]
    folds_out: list[dict[str, Any]]
    schema: dict[str, Any]
    X: np.ndarray

    def result(
        self,
        model_id: str,
        plan: TrainPlan,
        features: Any,
        bars: int,
        rows: int,
        oos: dict[str, Any],
        symbols: list[str] | None = None,
    ) -> TrainResult:
        auc_mean, auc_std, auc_seed_std = _auc_spreads(self.per_seed, self.folds_out)
        return TrainResult(
            model_id,
            self.folds_out,
            auc_mean,
            auc_std,
            auc_seed_std,
            plan.seeds,
            plan.horizon,
            list(features.names),
            bars,
            rows,
            oos,
            symbols,
            plan.labels,
            plan.barriers,
        )


def _fit_walk(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[Any],
    plan: TrainPlan,
    features: Any,
    progress: Callable[[int], object] | None,
    cost: float,
    samples: _Samples | None = None,
) -> _Fit:
    # Every seed through the folds, then the final model; refused first when a fold cannot say
    # anything (too few test rows, or a training block of one label).
    samples = samples or _Samples()
    _check_test_folds(y, folds, plan)
    _check_labels(y, folds, plan, cost)
    per_seed: list[list[dict[str, Any]]] = []
    walk = _Walk(np.full(len(y), math.nan), {}, {})
    fitted: dict[tuple[str, int], Member] = {}  # seed-free members, fit once per fold
    for seed in range(plan.seeds):
        fold_rows, seed_walk = _walk(X, y, folds, plan, seed, features.names, progress, fitted, samples)
        per_seed.append(fold_rows)
        if seed == 0:
            walk = seed_walk
    tested = np.concatenate([np.arange(len(y))[f.test] for f in folds])
    schema = features.schema.to_dict()
    ensemble, losses = _final(X, y, walk.oof, tested, plan, schema, progress, samples)
    return _Fit(walk, per_seed, ensemble, losses, _fold_table(per_seed), schema, X)


def _meta(config: LabkitConfig, plan: TrainPlan, fit: _Fit, features: Any, cost: float) -> dict[str, Any]:
    # What model.json says of any run besides its market and window.
    from labkit.features.drift import profile
    from labkit.research.targets import WEIGHTS_TEXT, label_text

    auc_mean, auc_std, auc_seed_std = _auc_spreads(fit.per_seed, fit.folds_out)
    return {
        "timeframe": config.session.timeframe,
        "source": config.session.source,
        "features": fit.schema,
        "horizon": plan.horizon,
        "params": {
            "folds": plan.folds,
            "seeds": plan.seeds,
            "model": plan.model,
            "labels": plan.labels,
            **plan.barriers,
            **({"atr_window": config.risk.atr_window} if plan.barriers else {}),
            "label": label_text(plan.labels, plan.horizon, cost, plan.profit_take, plan.stop_loss),
            "sample_weight": WEIGHTS_TEXT[plan.labels],
            "round_trip_cost": cost,
            "entry": plan.entry,
            "exit": plan.exit,
            "oof_log_loss": dict(zip(plan.kinds, fit.losses, strict=True)),
            "members": {kind: dict(plan.member_params.get(kind, {})) for kind in plan.kinds},
        },
        "folds": fit.folds_out,
        "auc_mean": auc_mean,
        "auc_std": auc_std,
        "auc_seed_std": auc_seed_std,
        "importance": {
            "permutation_auc_drop": fit.walk.importance,
            "gain": _gain(fit.ensemble, features.names),
        },
        "drift": profile(fit.X, features.names).to_dict(),
        # Live probabilities come from the final model: its scores over the training window are
        # the baseline they are compared with (the folds' were made by other models).
        "drift_probability": _probability_profile(fit.ensemble.predict_proba(fit.X)),
        "git_sha": git_commit(),
    }


def trial_plan(plan: TrainPlan, bars: pd.DataFrame, atr_window: int = 14) -> dict[str, Any]:
    """Return the training plan a ``train`` trial's identity holds.

    Another horizon, fold count, seed count, model kind, member settings, threshold, training
    window or the cross-sectional ranks is another try; sign labels follow the horizon and the
    costs, which the identity holds. Triple-barrier labels add their kind, the barrier multiples
    and the ATR window they are measured in (`atr_window`, ``risk.atr_window``).
    """
    members = {kind: dict(plan.member_params.get(kind, {})) for kind in plan.kinds}
    window = {"since": bars.index[0].isoformat(), "until": bars.index[-1].isoformat()}
    fields = {"horizon": plan.horizon, "folds": plan.folds, "seeds": plan.seeds, "model": plan.model}
    if plan.cross_sectional:  # only when set: the identities of earlier trials stay as they were
        fields["cross_sectional"] = True
    if plan.labels != "sign":  # likewise: sign-label identities stay as they were
        fields.update({"labels": plan.labels, **plan.barriers, "atr_window": atr_window})
    return {**fields, "entry": plan.entry, "exit": plan.exit, "members": members, "window": window}


def _check_test_folds(y: np.ndarray, folds: Sequence[Any], plan: TrainPlan) -> None:
    # A fold's AUC is only as good as its rows: a few dozen, or a handful of one label, and any
    # figure is luck. Refused before anything is fit, naming the fold and what it holds.
    for fold in folds:
        tested = y[fold.test]
        up = int(np.sum(tested == 1.0))
        down = len(tested) - up
        if len(tested) < MIN_TEST_ROWS or min(up, down) < MIN_TEST_CLASS:
            raise ConfigError(
                f"--folds/--since: fold {fold.index} tests on {len(tested):,} rows: {up:,} with label 1 "
                f"and {down:,} with label 0 ({_meaning(plan)} or not); each test fold "
                f"needs at least {MIN_TEST_ROWS} rows and at least {MIN_TEST_CLASS} of either label; give "
                "more bars (an earlier --since), fewer --folds, or a label that is less rare "
                f"({_remedy(plan)})"
            )


def _meaning(plan: TrainPlan) -> str:
    if plan.labels == "triple-barrier":
        return "the profit barrier was reached before the stop"
    return "the move beat the round-trip cost"


def _remedy(plan: TrainPlan) -> str:
    if plan.labels == "triple-barrier":
        return "another --horizon, --profit-take or --stop-loss"
    return "another --horizon, or lower --fee/--slippage"


def _auc_spreads(
    per_seed: list[list[dict[str, Any]]], table: list[dict[str, Any]]
) -> tuple[float, float, float]:
    # The model's AUC is the mean of its folds' (each already the mean over the seeds) ± their
    # spread across the folds: how much the edge moves from one stretch of the market to the next.
    # The spread across seeds, how much the fit's randomness moves it, is reported apart.
    folds = np.array([math.nan if row["auc"] is None else row["auc"] for row in table], dtype=float)
    folds = folds[~np.isnan(folds)]
    auc_mean = float(np.mean(folds)) if len(folds) else math.nan
    auc_std = float(np.std(folds, ddof=1)) if len(folds) > 1 else math.nan
    by_seed = np.array([np.nanmean([row["auc"] for row in rows]) for rows in per_seed])
    auc_seed_std = float(np.std(by_seed, ddof=1)) if len(by_seed) > 1 else 0.0
    return auc_mean, auc_std, auc_seed_std


def _check_labels(y: np.ndarray, folds: Sequence[Any], plan: TrainPlan, cost: float) -> None:
    # A fold whose training labels are all one class has nothing to learn: say why, and what helps.
    for fold in folds:
        share = float(np.mean(y[fold.train])) if len(fold.train) else math.nan
        if not 0.0 < share < 1.0:
            word = "none" if share == 0.0 else "every one"
            if plan.labels == "triple-barrier":
                raise ConfigError(
                    f"--horizon: fold {fold.index} trains on {len(fold.train):,} bars and in {word} of "
                    f"them was the profit barrier reached first within {plan.horizon} bars; give more "
                    "bars (--since), another --horizon, --profit-take or --stop-loss"
                )
            raise ConfigError(
                f"--horizon: fold {fold.index} trains on {len(fold.train):,} bars and in {word} of them "
                f"did the return over {plan.horizon} bars beat the round-trip cost ({cost:.4%}); "
                "give more bars (--since), a longer --horizon, or lower --fee/--slippage"
            )


@dataclass
class _Walk:
    """One seed's walk through the folds: what the saved model and the reports are built from."""

    probability: np.ndarray  # each tested row's probability as its fold's ensemble gave it
    oof: dict[int, np.ndarray]  # each member's out-of-fold probability, by member position
    importance: dict[str, float]  # the last fold's AUC drop when a feature is shuffled


def _walk(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[Any],
    plan: TrainPlan,
    seed: int,
    names: Sequence[str],
    progress: Callable[[int], object] | None,
    fitted: dict[tuple[str, int], Member],
    samples: _Samples,
) -> tuple[list[dict[str, Any]], _Walk]:
    # One seed through every fold: each member fit on the fold's training rows, judged on its test
    # rows with weights and calibration learnt from the folds before it.
    from labkit.models.ensemble import Calibrator, log_loss, weights_from_log_loss

    oof = {m: np.full(len(y), math.nan) for m in range(len(plan.kinds))}
    walked = np.full(len(y), math.nan)
    rows, importance = [], {}
    for fold in folds:
        members = []
        for m, kind in enumerate(plan.kinds):
            member = fitted.get((kind, fold.index))
            if member is None:
                member = _fit(
                    kind,
                    seed,
                    X[fold.train],
                    y[fold.train],
                    plan.member_params.get(kind),
                    samples.take(fold.train),
                )
                if kind in SEED_FREE:
                    fitted[kind, fold.index] = member
            members.append(member)
            oof[m][fold.test] = members[-1].predict_proba(X[fold.test])
            if progress is not None:
                progress(1)
        seen = np.flatnonzero(~np.isnan(oof[0]))
        before = seen[seen < fold.test.start]
        weights = np.full(len(oof), 1.0 / len(oof))
        calibrator = Calibrator.identity()
        if len(before) and len(np.unique(y[before])) == 2:
            weights = weights_from_log_loss([log_loss(y[before], oof[m][before]) for m in oof])
            calibrator = Calibrator.fit(_blend(oof, weights, before), y[before])
        test = np.arange(len(y))[fold.test]
        walked[test] = calibrator.apply(_blend(oof, weights, test))
        row = {"fold": fold.index, **_scores(y[test], walked[test])}
        rows.append({**row, "train_bars": len(fold.train), "test_bars": len(test)})
        if seed == 0 and fold is folds[-1]:
            importance = _permutation(members, weights, calibrator, X[test], y[test], names, row["auc"])
    return rows, _Walk(walked, oof, importance)


def _permutation(
    members: Sequence[Member],
    weights: np.ndarray,
    calibrator: Any,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    auc: float,
) -> dict[str, float]:
    # How much the fold's AUC falls when one feature's values are shuffled among its test rows: a
    # feature the model leans on out of sample loses it AUC; one it ignores loses none.
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2 or auc != auc:
        return {}
    rng = np.random.default_rng(0)
    out = {}
    for j, name in enumerate(names):
        shuffled = X.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        p = calibrator.apply(
            np.sum([w * m.predict_proba(shuffled) for m, w in zip(members, weights, strict=True)], axis=0)
        )
        out[name] = float(auc - roc_auc_score(y, p))
    return out


def _gain(ensemble: Any, names: Sequence[str]) -> dict[str, float]:
    # XGBoost's total gain per feature in the final model, as shares of the whole.
    for member in ensemble.members:
        booster = getattr(member, "booster_", None)
        if member.kind == "xgboost" and booster is not None:
            scores = booster.get_score(importance_type="total_gain")
            total = sum(scores.values()) or 1.0
            return {name: float(scores.get(f"f{j}", 0.0)) / total for j, name in enumerate(names)}
    return {}


def _probability_profile(probability: np.ndarray) -> dict[str, Any]:
    from labkit.features.drift import profile

    tested = probability[~np.isnan(probability)]
    return profile(tested.reshape(-1, 1), ["probability"]).to_dict()


def _out_of_sample(
    times: Any,
    y: np.ndarray,
    probability: np.ndarray,
    symbol: np.ndarray | None = None,
    symbols: Sequence[str] = (),
) -> Callable[[BinaryIO], object]:
    # The walk-forward probabilities beside the model, for its report (calibration and equity): a
    # writer of the parquet file, called inside the model's staging folder. A pooled model's rows
    # also say which symbol each is (its times repeat, one row per symbol).
    import pandas as pd

    tested = ~np.isnan(probability)
    frame = pd.DataFrame({"label": y[tested], "probability": probability[tested]}, index=times[tested])
    if symbol is not None:
        frame["symbol"] = np.asarray(symbols, dtype=object)[symbol[tested]]
    frame.index.name = "ts"
    return lambda handle: frame.to_parquet(handle)


def _universe_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    import hashlib

    from labkit.research.trials import data_hash

    text = "".join(f"{symbol}:{data_hash(bars)};" for symbol, bars in frames.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fit(
    kind: str,
    seed: int,
    X: np.ndarray,
    y: np.ndarray,
    params: Mapping[str, Any] | None,
    samples: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> Member:
    from labkit.models.members import make_member

    member = make_member(kind, seed, params)
    weight, spans = samples
    member.fit(X, y, sample_weight=weight, spans=spans)
    return member


def _final(
    X: np.ndarray,
    y: np.ndarray,
    oof: Mapping[int, np.ndarray],
    tested: np.ndarray,
    plan: TrainPlan,
    schema: Mapping[str, Any],
    progress: Callable[[int], object] | None,
    samples: _Samples,
) -> tuple[Any, list[float]]:
    # The model saved: every member fit on the whole window; weights and calibration from all the
    # out-of-fold predictions of the first seed.
    from labkit.models.ensemble import Calibrator, Ensemble, log_loss, weights_from_log_loss

    losses = [log_loss(y[tested], oof[m][tested]) for m in range(len(plan.kinds))]
    weights = weights_from_log_loss(losses)
    calibrator = Calibrator.fit(_blend(oof, weights, tested), y[tested])
    members = []
    for kind in plan.kinds:
        members.append(_fit(kind, 0, X, y, plan.member_params.get(kind), samples.take(slice(None))))
        if progress is not None:
            progress(1)
    ensemble = Ensemble(members, weights, calibrator, [dict(schema)] * len(members), losses)
    return ensemble, losses


def _blend(oof: Mapping[int, np.ndarray], weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.sum([w * oof[m][rows] for m, w in zip(sorted(oof), weights, strict=True)], axis=0)


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from labkit.models.ensemble import log_loss

    up = float(np.mean(y)) if len(y) else math.nan
    return {
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan,
        "log_loss": log_loss(y, p),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "majority_accuracy": max(up, 1.0 - up),
        "positive_share": up,
    }


def _fold_table(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    # One row per fold: each score's mean over the seeds, and the AUC's spread across them.
    table = []
    for i, first in enumerate(per_seed[0]):
        runs = [rows[i] for rows in per_seed]
        row: dict[str, Any] = {
            "fold": first["fold"],
            "train_bars": first["train_bars"],
            "test_bars": first["test_bars"],
        }
        for key in ("auc", "log_loss", "brier", "accuracy", "majority_accuracy"):
            row[key] = finite(float(np.nanmean([r[key] for r in runs])))
        spread = float(np.nanstd([r["auc"] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
        row["auc_seed_std"] = finite(spread)
        table.append(row)
    return table


def _trade_folds(
    config: LabkitConfig,
    bars: pd.DataFrame,
    usable: np.ndarray,
    folds: Sequence[Any],
    walked: np.ndarray,
    plan: TrainPlan,
    table: list[dict[str, Any]],
) -> dict[str, Any]:
    # Each fold's out-of-sample probabilities traded through the engine with the config's gates and
    # costs; the folds' bars together make the run recorded as the trial.
    import pandas as pd

    from labkit.analysis.calendar import session_calendar
    from labkit.data.bars import ts_ms
    from labkit.research.backtest import run_backtest, summarize
    from labkit.timeutil import timeframe_ms

    probability = np.full(len(bars), math.nan)
    probability[usable] = walked
    curves = []
    for fold, row in zip(folds, table, strict=True):
        span = usable[np.arange(len(usable))[fold.test]]
        lo, hi = int(span[0]), int(span[-1]) + 1
        strategy = FoldStrategy(probability[lo:hi], plan, f"oos-fold-{fold.index}")
        result = run_backtest(config, bars.iloc[lo:hi], strategy=strategy, trial=False)
        row["net_return_pct"] = finite(result.summary["return_pct"])
        row["trades"] = result.summary["trades"]
        curves.append(result.equity / config.session.capital)
    # The folds chained: each starts where the last ended, so the trial's Sharpe is over all of them.
    growth = np.cumprod(np.r_[1.0, [c.iloc[-1] for c in curves[:-1]]])
    chained = pd.concat([c * g for c, g in zip(curves, growth, strict=True)]) * config.session.capital
    tf = timeframe_ms(config.session.timeframe)
    s = config.session
    calendar = session_calendar(s.source, s.calendar, ts_ms(bars), tf, s.exchange)
    return summarize(chained, config.session.capital, tf, calendar.periods_per_year(tf))


def _trade_pooled_folds(
    config: LabkitConfig,
    frames: Mapping[str, pd.DataFrame],
    rows: Any,
    folds: Sequence[Any],
    walked: np.ndarray,
    plan: TrainPlan,
    table: list[dict[str, Any]],
) -> dict[str, Any]:
    # Each fold's out-of-sample probabilities traded symbol by symbol, each symbol a sleeve of an
    # equal share of the capital: the fold's result is the sleeves' sum. The folds chained make
    # the trial, as for one symbol.
    import pandas as pd

    from labkit.analysis.calendar import session_calendar
    from labkit.data.bars import ts_ms
    from labkit.research.backtest import run_backtest, summarize
    from labkit.timeutil import timeframe_ms

    symbols = list(frames)
    capital = config.session.capital
    sleeve = config.model_copy(
        update={"session": config.session.model_copy(update={"capital": capital / len(symbols)})}
    )
    curves = []
    for fold, row in zip(folds, table, strict=True):
        test = np.arange(len(rows.y))[fold.test]
        equities, trades = [], 0
        for j, symbol in enumerate(symbols):
            mine = test[rows.symbol[test] == j]
            if not len(mine):
                continue
            bars = frames[symbol]
            lo, hi = int(rows.position[mine[0]]), int(rows.position[mine[-1]]) + 1
            probability = np.full(hi - lo, math.nan)
            probability[rows.position[mine] - lo] = walked[mine]
            one = sleeve.model_copy(update={"session": sleeve.session.model_copy(update={"symbol": symbol})})
            strategy = FoldStrategy(probability, plan, f"oos-fold-{fold.index}")
            result = run_backtest(one, bars.iloc[lo:hi], strategy=strategy, trial=False)
            trades += int(result.summary["trades"])
            equities.append(result.equity)
        # A sleeve's equity holds between its bars, and its capital before its first one.
        joined = pd.concat(equities, axis=1).sort_index().ffill().fillna(capital / len(symbols))
        # Sleeves of symbols with no row in the fold sit in cash.
        book = joined.sum(axis=1) + (len(symbols) - len(equities)) * capital / len(symbols)
        row["net_return_pct"] = finite(float(book.iloc[-1] / capital - 1.0) * 100.0)
        row["trades"] = trades
        curves.append(book / capital)
    growth = np.cumprod(np.r_[1.0, [c.iloc[-1] for c in curves[:-1]]])
    chained = pd.concat([c * g for c, g in zip(curves, growth, strict=True)]) * capital
    tf = timeframe_ms(config.session.timeframe)
    s = config.session
    calendar = session_calendar(s.source, s.calendar, ts_ms(chained.to_frame()), tf, s.exchange)
    return summarize(chained, capital, tf, calendar.periods_per_year(tf))

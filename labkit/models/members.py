"""The ensemble members: XGBoost, a logistic regression, scikit-learn's histogram boosting, a bag.

Each kind is one class with the same small interface (`Member`): ``fit``, ``predict_proba`` for
many rows, ``predict_proba_fast`` for the one row a live bar asks about, ``save`` and
`load_member`. A member's probability is that of class 1 (the label the training code sets, e.g.
"the price is higher `horizon` bars later").

``fit`` takes each row's sample weight (its label's average uniqueness, `labkit.features.labels.
average_uniqueness`) and its label's span in bars: XGBoost, the logistic regression and the
forest weigh rows by it; the bag (`BaggedMember`) draws its rows by the sequential bootstrap over
the spans instead.

The fast path returns the batch path's number exactly, not a close one: a live session and a
backtest of the same bars must take the same decisions. Each member computes both from the same
fitted numbers in the same order of operations, and checks it on probe rows whenever it is fitted
or loaded (`_trees` explains the trees). If the check ever failed, the member logs it and answers
single rows through the batch path: slower, never different.

Files: XGBoost in its own binary format (``xgboost.ubj``), scikit-learn objects through skops
(``<kind>.skops``); never pickle (`_skops` says why).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labkit._io import write_atomic
from labkit.errors import ConfigError, DataError, NotFittedError
from labkit.models import _skops
from labkit.models._trees import CompiledTrees, compile_sklearn, compile_xgboost

log = logging.getLogger(__name__)

KINDS = ("xgboost", "logistic", "forest")  # the ensemble's members
ALL_KINDS = (*KINDS, "bagged")  # and the kinds trained alone only (`labkit train --model`)
# Threads of a fit: OMP_NUM_THREADS when set (a test worker or a sweep worker sets 1: several
# OpenMP pools on two cores spin against each other and a fit runs 20 times slower), else 2, the
# cores the machines labkit targets have.
_OMP = os.environ.get("OMP_NUM_THREADS", "").strip()
THREADS = max(1, int(_OMP)) if _OMP.isdigit() else 2
_CHUNK = 65_536  # rows per block in batch predictions: the block stays in cache across trees


@runtime_checkable
class Member(Protocol):
    """What the ensemble needs from a member, whatever its kind."""

    @property
    def kind(self) -> str: ...  # "xgboost", "logistic", "forest" or "bagged"

    params: dict[str, Any]  # the hyperparameters, seed included: plain JSON
    schema: dict[str, Any]  # the feature schema it was trained on ({} until the ensemble sets it)
    n_features: int | None  # None until fitted or loaded

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        spans: np.ndarray | None = None,
    ) -> None: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def predict_proba_fast(self, row: np.ndarray) -> float: ...

    def save(self, folder: Path) -> list[str]: ...


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed of the fit")


class XGBoostParams(_Params):
    # Shallow, slow-learning trees on row and column subsamples: financial labels are mostly noise,
    # and a deep or fast booster learns the noise.
    n_estimators: int = Field(150, ge=1, le=5_000)
    max_depth: int = Field(4, ge=1, le=10)
    learning_rate: float = Field(0.05, gt=0, le=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(5.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)


class LogisticParams(_Params):
    C: float = Field(1.0, gt=0, description="inverse L2 strength on standardised features")
    max_iter: int = Field(1_000, ge=1, le=100_000)


class ForestParams(_Params):
    # scikit-learn's histogram gradient boosting: early stopping off, so a fit depends only on the
    # data and the seed (which drives the feature subsampling).
    # 100 rounds at 0.075 learn as much as 150 at 0.05 and predict a third faster (a replay
    # predicts every bar).
    max_iter: int = Field(100, ge=1, le=5_000)
    learning_rate: float = Field(0.075, gt=0, le=1)
    max_depth: int = Field(3, ge=1, le=10)
    max_leaf_nodes: int = Field(8, ge=2, le=1_024)
    min_samples_leaf: int = Field(100, ge=1)
    l2_regularization: float = Field(1.0, ge=0)
    max_features: float = Field(0.8, gt=0, le=1)


class BaggedParams(_Params):
    # A bag of shallow trees, each fit on rows drawn by the sequential bootstrap: the draws prefer
    # rows whose labels overlap less, so no tree learns the same stretch many times over. Each tree
    # draws at most `max_draws` rows from as many candidates (a random subset when there are more),
    # which bounds the bootstrap's cost (quadratic in the candidates) on long windows.
    n_estimators: int = Field(24, ge=1, le=1_000)
    max_depth: int = Field(3, ge=1, le=20)
    min_samples_leaf: int = Field(50, ge=1)
    max_features: float = Field(0.8, gt=0, le=1)
    max_draws: int = Field(2_000, ge=10, le=100_000)


class _Member:
    kind: ClassVar[str]
    Params: ClassVar[type[_Params]]
    files: ClassVar[tuple[str, ...]]

    def __init__(self, params: _Params) -> None:
        self.config = params
        self.params: dict[str, Any] = params.model_dump(mode="json")
        self.schema: dict[str, Any] = {}
        self.n_features: int | None = None
        self._fast: Callable[[np.ndarray], float] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # -- the interface -------------------------------------------------------------------------

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        spans: np.ndarray | None = None,
    ) -> None:
        """Fit on the rows `X` (n, k) and their 0/1 labels `y` (n,).

        `sample_weight` (n,), positive, weighs each row (None: all alike); `spans` (n, 2) gives
        each row's label span ``[start, end]`` in bars, which only the bagged member reads.
        """
        X, y = _training_data(X, y, self.kind)
        weight = _weights(sample_weight, len(y), self.kind)
        self._fit(X, y, weight, _spans(spans, len(y), self.kind))
        self._verify_fast()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the probability of class 1 for each row of `X` (a 1-D float64 array)."""
        X = self._rows(X)
        if not len(X):
            return np.empty(0)
        return self._batch(X)

    def predict_proba_fast(self, row: np.ndarray) -> float:
        """Return the probability of class 1 for one row, exactly as `predict_proba` gives it."""
        if self.n_features is None:
            raise NotFittedError(f"{self.kind} member: fit or load it before predicting")
        if not isinstance(row, np.ndarray):
            row = np.asarray(row, dtype=np.float64)
        if row.shape != (self.n_features,):
            row = self._rows(np.asarray(row, dtype=np.float64).reshape(1, -1))[0]
        elif row.dtype != np.float64:
            row = row.astype(np.float64)
        if np.isinf(row).any():
            raise DataError(f"{self.kind} member: a feature is infinite; features must be finite or NaN")
        if self._fast is None:
            return float(self._batch(row[None, :])[0])
        return self._fast(row)

    def save(self, folder: Path) -> list[str]:
        """Write the fitted model into `folder` (atomic, 0600) and return the file names written."""
        if self.n_features is None:
            raise NotFittedError(f"{self.kind} member: fit it before saving")
        data = self._dump()
        (name,) = self.files
        write_atomic(folder / name, data)
        return [name]

    @property
    def fast(self) -> bool:
        """True when single rows take the compiled path (False: the batch path, one row at a time)."""
        return self._fast is not None

    # -- what each kind provides ---------------------------------------------------------------

    def _fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, spans: np.ndarray | None) -> None:
        raise NotImplementedError

    def _batch(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _dump(self) -> bytes:
        raise NotImplementedError

    def _load(self, data: bytes, where: str) -> None:
        raise NotImplementedError

    def _probes(self) -> np.ndarray:
        assert self.n_features is not None
        return np.random.default_rng(0).normal(size=(64, self.n_features))

    # -- shared --------------------------------------------------------------------------------

    def _rows(self, X: np.ndarray) -> np.ndarray:
        if self.n_features is None:
            raise NotFittedError(f"{self.kind} member: fit or load it before predicting")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(f"{self.kind} member: expected rows x features (2-D), got {X.ndim}-D")
        if X.shape[1] != self.n_features:
            raise ConfigError(
                f"{self.kind} member: trained on {self.n_features} features, given {X.shape[1]}; "
                "compute the features of the model's schema"
            )
        if np.isinf(X).any():
            raise DataError(f"{self.kind} member: a feature is infinite; features must be finite or NaN")
        return X

    def _verify_fast(self) -> None:
        # Exactness is checked, not assumed: a library upgrade that changed how it sums or splits
        # would make live decisions differ from backtests without anyone noticing.
        if self._fast is None:
            return
        probes = self._probes()
        expected = self._batch(probes)
        got = np.array([self._fast(row) for row in probes])
        if not np.array_equal(expected, got, equal_nan=True):
            gaps = np.abs(expected - got)
            worst = float(np.nanmax(gaps)) if np.isfinite(gaps).any() else math.nan
            log.warning(
                "%s member: the compiled single-row path differs from the batch path by up to %.3g; "
                "single rows use the batch path (slower, same numbers)",
                self.kind,
                worst,
            )
            self._fast = None


class XGBoostMember(_Member):
    """Gradient-boosted trees by XGBoost (``hist``), two threads."""

    kind = "xgboost"
    Params = XGBoostParams
    files = ("xgboost.ubj",)
    config: XGBoostParams

    def _fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, spans: np.ndarray | None) -> None:
        import xgboost as xgb

        c = self.config
        params = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "nthread": THREADS,
            "seed": c.seed,
            "max_depth": c.max_depth,
            "eta": c.learning_rate,
            "subsample": c.subsample,
            "colsample_bytree": c.colsample_bytree,
            "min_child_weight": c.min_child_weight,
            "lambda": c.reg_lambda,
            "verbosity": 0,
        }
        train = xgb.DMatrix(X, label=y, weight=weight, nthread=THREADS)
        self._use(xgb.train(params, train, num_boost_round=c.n_estimators), "fit")

    def _use(self, booster: Any, where: str) -> None:
        config = json.loads(booster.save_config())
        objective = config["learner"]["objective"]["name"]
        if objective != "binary:logistic":
            raise ConfigError(f"{where}: an XGBoost member predicts binary:logistic, not {objective}")
        # The trees' sum starts at 0 in both paths and the intercept (the label rate XGBoost starts
        # from) is added in float64: no guessing how XGBoost rounds its own starting margin.
        base = float(str(config["learner"]["learner_model_param"]["base_score"]).strip("[]"))
        if not 0 < base < 1:
            raise ConfigError(f"{where}: XGBoost base_score {base} is not a probability")
        self.booster_ = booster
        self.base_margin_ = math.log(base / (1 - base))
        self.n_features = int(booster.num_features())
        trees = compile_xgboost(bytes(booster.save_raw("json")))
        self._trees = trees
        self._fast = None if trees is None else self._one

    def _batch(self, X: np.ndarray) -> np.ndarray:
        margin = self.booster_.inplace_predict(
            X, predict_type="margin", base_margin=np.zeros(len(X), dtype=np.float32)
        )
        return _scipy_expit()(self.base_margin_ + np.asarray(margin, dtype=np.float64).reshape(-1))

    def _one(self, row: np.ndarray) -> float:
        assert self._trees is not None
        return float(_expit(self.base_margin_ + self._trees.raw_one(row)))

    def _probes(self) -> np.ndarray:
        assert self.n_features is not None
        return _tree_probes(self._trees, self.n_features)

    def _dump(self) -> bytes:
        return bytes(self.booster_.save_raw("ubj"))

    def _load(self, data: bytes, where: str) -> None:
        import xgboost as xgb

        booster = xgb.Booster(params={"nthread": THREADS})
        try:
            booster.load_model(bytearray(data))
        except xgb.core.XGBoostError as exc:
            raise ConfigError(f"{where}: not a readable XGBoost model ({str(exc)[:200]})") from None
        self._use(booster, where)


class LogisticMember(_Member):
    """A logistic regression on standardised features (a scikit-learn pipeline)."""

    kind = "logistic"
    Params = LogisticParams
    files = ("logistic.skops",)
    config: LogisticParams

    def _fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, spans: np.ndarray | None) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        missing = int(np.isnan(X).any(axis=1).sum())
        if missing:
            raise DataError(
                f"logistic member: {missing} training rows have a NaN feature; drop the warm-up rows "
                "before fitting (the tree members accept NaN, a logistic regression cannot)"
            )
        c = self.config
        pipeline = Pipeline(
            [("scale", StandardScaler()), ("logistic", LogisticRegression(C=c.C, max_iter=c.max_iter))]
        )
        # The weights go to the regression only: the scaler standardises on every row alike.
        pipeline.fit(X, y, logistic__sample_weight=weight)
        self._use(pipeline, "fit")

    def _use(self, pipeline: Any, where: str) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        steps = getattr(pipeline, "steps", None) if isinstance(pipeline, Pipeline) else None
        if (
            not steps
            or len(steps) != 2
            or not isinstance(steps[0][1], StandardScaler)
            or not isinstance(steps[1][1], LogisticRegression)
        ):
            raise ConfigError(f"{where}: not a StandardScaler + LogisticRegression pipeline")
        scaler, model = steps[0][1], steps[1][1]
        if list(model.classes_) != [0, 1]:
            raise ConfigError(f"{where}: classes {list(model.classes_)}, expected [0, 1]")
        self.pipeline_ = pipeline
        # The pipeline's own arithmetic, done by labkit in one fixed order: standardise, multiply,
        # add the terms left to right, then the intercept. The same for one row as for a million.
        self._mean = np.asarray(scaler.mean_, dtype=np.float64)
        self._scale = np.asarray(scaler.scale_, dtype=np.float64)
        self._coef = np.asarray(model.coef_, dtype=np.float64).reshape(-1)
        self._intercept = float(model.intercept_[0])
        self.n_features = len(self._coef)
        self._fast = self._one

    def _batch(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        for start in range(0, len(X), _CHUNK):
            terms = (X[start : start + _CHUNK] - self._mean) / self._scale * self._coef
            out[start : start + _CHUNK] = np.cumsum(terms, axis=1)[:, -1] + self._intercept
        return _scipy_expit()(out)

    def _one(self, row: np.ndarray) -> float:
        terms = (row - self._mean) / self._scale * self._coef
        return float(_expit(float(np.cumsum(terms)[-1]) + self._intercept))

    def _dump(self) -> bytes:
        return _skops.dumps(self.pipeline_)

    def _load(self, data: bytes, where: str) -> None:
        self._use(_skops.loads(data, self.kind, where), where)


class ForestMember(_Member):
    """scikit-learn's ``HistGradientBoostingClassifier``: shallow trees, early stopping off."""

    kind = "forest"
    Params = ForestParams
    files = ("forest.skops",)
    config: ForestParams

    def _fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, spans: np.ndarray | None) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        c = self.config
        model = HistGradientBoostingClassifier(
            max_iter=c.max_iter,
            learning_rate=c.learning_rate,
            max_depth=c.max_depth,
            max_leaf_nodes=c.max_leaf_nodes,
            min_samples_leaf=c.min_samples_leaf,
            l2_regularization=c.l2_regularization,
            max_features=c.max_features,
            early_stopping=False,
            random_state=c.seed,
        )
        model.fit(X, y, sample_weight=weight)
        self._use(model, "fit")

    def _use(self, model: Any, where: str) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not isinstance(model, HistGradientBoostingClassifier):
            raise ConfigError(f"{where}: not a HistGradientBoostingClassifier")
        if list(model.classes_) != [0, 1]:
            raise ConfigError(f"{where}: classes {list(model.classes_)}, expected [0, 1]")
        self.model_ = model
        self.n_features = int(model.n_features_in_)
        try:  # scikit-learn's private tree arrays; if they move, single rows use the batch path
            trees = compile_sklearn(
                [iteration[0] for iteration in model._predictors], float(model._baseline_prediction.item())
            )
        except (AttributeError, KeyError, ValueError, TypeError, IndexError):
            trees = None
        self._trees = trees
        self._fast = None if trees is None else self._one

    def _batch(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        for start in range(0, len(X), _CHUNK):
            out[start : start + _CHUNK] = self.model_.decision_function(X[start : start + _CHUNK])
        return _scipy_expit()(out)

    def _one(self, row: np.ndarray) -> float:
        assert self._trees is not None
        return float(_expit(self._trees.raw_one(row)))

    def _probes(self) -> np.ndarray:
        assert self.n_features is not None
        return _tree_probes(self._trees, self.n_features)

    def _dump(self) -> bytes:
        return _skops.dumps(self.model_)

    def _load(self, data: bytes, where: str) -> None:
        self._use(_skops.loads(data, self.kind, where), where)


class BaggedMember(_Member):
    """A bag of shallow scikit-learn trees, each fit on rows drawn by the sequential bootstrap.

    Its probability is the trees' mean probability of class 1. The trees take no sample weights:
    the bootstrap already draws by uniqueness, and weighting again would count it twice. Single
    rows go through the batch path (no compiled trees), the same numbers by construction.
    """

    kind = "bagged"
    Params = BaggedParams
    files = ("bagged.skops",)
    config: BaggedParams

    def _fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, spans: np.ndarray | None) -> None:
        from sklearn.tree import DecisionTreeClassifier

        from labkit.models.bootstrap import sequential_bootstrap

        c = self.config
        if spans is None:  # no spans known: each row its own bar, an ordinary bootstrap but seeded
            spans = np.repeat(np.arange(len(y), dtype=np.int64)[:, None], 2, axis=1)
        trees = []
        for b in range(c.n_estimators):
            rng = np.random.default_rng([c.seed, b])
            pool = np.arange(len(y))
            if len(pool) > c.max_draws:
                pool = np.sort(rng.choice(pool, c.max_draws, replace=False))
            rows = pool[sequential_bootstrap(spans[pool, 0], spans[pool, 1], len(pool), rng)]
            tree = DecisionTreeClassifier(
                max_depth=c.max_depth,
                min_samples_leaf=c.min_samples_leaf,
                max_features=c.max_features,
                random_state=int(rng.integers(2**31 - 1)),
            )
            trees.append(tree.fit(X[rows], y[rows]))
        self._use(trees, "fit")

    def _use(self, trees: Any, where: str) -> None:
        from sklearn.tree import DecisionTreeClassifier

        if (
            not isinstance(trees, list)
            or not trees
            or not all(isinstance(t, DecisionTreeClassifier) for t in trees)
        ):
            raise ConfigError(f"{where}: not a list of DecisionTreeClassifier")
        widths = {int(t.n_features_in_) for t in trees}
        if len(widths) != 1 or any(not set(t.classes_.tolist()) <= {0, 1} for t in trees):
            raise ConfigError(f"{where}: the trees disagree on their features or have classes other than 0/1")
        self.trees_ = trees
        # A tree whose draw held one class only answers that class with certainty.
        self._column = [list(t.classes_).index(1) if 1 in t.classes_ else None for t in trees]
        self.n_features = widths.pop()
        self._fast = None

    def _batch(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros(len(X))
        for tree, column in zip(self.trees_, self._column, strict=True):
            if column is not None:
                out += tree.predict_proba(X)[:, column]
        return out / len(self.trees_)

    def _dump(self) -> bytes:
        return _skops.dumps(self.trees_)

    def _load(self, data: bytes, where: str) -> None:
        self._use(_skops.loads(data, self.kind, where), where)


_CLASSES: dict[str, type[_Member]] = {
    c.kind: c for c in (XGBoostMember, LogisticMember, ForestMember, BaggedMember)
}


def make_member(kind: str, seed: int, params: Mapping[str, Any] | None = None) -> Member:
    """Return an unfitted member of `kind` ("xgboost", "logistic", "forest" or "bagged").

    Parameters
    ----------
    kind
        The member kind.
    seed
        The random seed of its fit.
    params
        Hyperparameters overriding the defaults (`XGBoostParams`, `LogisticParams`, `ForestParams`,
        `BaggedParams`).

    Raises
    ------
    ConfigError
        For an unknown kind, an unknown or invalid parameter (naming it and what is allowed).
    """
    cls = _CLASSES.get(kind)
    if cls is None:
        raise ConfigError(f"member kind {kind!r} is unknown; choose one of {', '.join(ALL_KINDS)}")
    given = dict(params or {})
    if "seed" in given and given["seed"] != seed:
        raise ConfigError(f"{kind} member: params say seed {given['seed']!r} but the seed given is {seed}")
    try:
        config = cls.Params(**{**given, "seed": seed})
    except ValidationError as exc:
        raise ConfigError(_explain(kind, cls.Params, exc)) from None
    return cls(config)


def load_member(
    folder: Path,
    kind: str,
    files: Sequence[str],
    params: Mapping[str, Any] | None = None,
    sha256: Mapping[str, str] | None = None,
) -> Member:
    """Load a member `save` wrote into `folder`.

    Each file is read once; when `sha256` gives its digest (model.json does), the bytes are checked
    against it before anything is built from them.

    Raises
    ------
    ConfigError
        For a missing file, a digest that differs ("tampered"), a file that is not what its kind
        writes, or a skops file naming a type outside the member's allowlist.
    """
    given = dict(params or {})
    member = make_member(kind, int(given.pop("seed", 0)), given)
    assert isinstance(member, _Member)
    if list(files) != list(member.files):
        raise ConfigError(f"{folder}: a {kind} member is stored as {list(member.files)}, not {list(files)}")
    (name,) = member.files
    path = folder / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; the model folder is incomplete, train the model again") from None
    if sha256 is not None:
        expected = sha256.get(name)
        found = hashlib.sha256(data).hexdigest()
        if found != expected:
            raise ConfigError(
                f"{path}: tampered or corrupted (sha256 {found[:12]}..., model.json says "
                f"{str(expected)[:12]}...); do not use this model: train it again"
            )
    member._load(data, str(path))
    member._verify_fast()
    return member


def _training_data(X: np.ndarray, y: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise DataError(f"{kind} member: fit needs X (n, k) and y (n,), got {X.shape} and {y.shape}")
    if np.isinf(X).any():
        raise DataError(f"{kind} member: a training feature is infinite; features must be finite or NaN")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1} or len(labels) < 2:
        raise DataError(f"{kind} member: labels must be 0 and 1, both present; got {sorted(labels)[:5]}")
    return X, y.astype(np.int64)


def _weights(weight: np.ndarray | None, n: int, kind: str) -> np.ndarray | None:
    if weight is None:
        return None
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape != (n,) or not (np.isfinite(weight).all() and (weight > 0).all()):
        raise DataError(f"{kind} member: sample_weight must be {n} finite numbers > 0, one per row")
    return weight


def _spans(spans: np.ndarray | None, n: int, kind: str) -> np.ndarray | None:
    if spans is None:
        return None
    spans = np.asarray(spans)
    if (
        spans.shape != (n, 2)
        or not np.issubdtype(spans.dtype, np.integer)
        or (spans[:, 1] < spans[:, 0]).any()
    ):
        raise DataError(f"{kind} member: spans must be {n} rows of whole-bar [start, end] with end >= start")
    return spans.astype(np.int64)


def _tree_probes(trees: CompiledTrees | None, n_features: int) -> np.ndarray:
    if trees is None:
        return np.random.default_rng(0).normal(size=(64, n_features))
    return trees.probe_rows(n_features)


@functools.cache
def _scipy_expit() -> Callable[[Any], Any]:
    from scipy.special import expit  # scipy costs 0.2 s to import: only once a model predicts

    return expit


def _expit(x: float) -> float:
    # scipy's expit, the function the batch path applies (as scikit-learn does), on one number.
    return float(_scipy_expit()(x))


def _explain(kind: str, params: type[_Params], exc: ValidationError) -> str:
    allowed = ", ".join(name for name in params.model_fields if name != "seed")
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown parameter (a {kind} member takes {allowed})")
        else:
            parts.append(f"{key}: {error['msg']} (got {error.get('input')!r})")
    return f"{kind} member: " + "; ".join(parts)

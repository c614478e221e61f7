"""The ensemble: members weighted by their out-of-fold log loss, averaged, then calibrated.

``p = calibrator(w_1 p_1 + w_2 p_2 + ...)``, over the members with a positive weight. The sum is
taken in member order, the same for one row as for many, and the calibrator is a piecewise-linear
curve applied with ``np.interp``: `Ensemble.predict_one` returns `Ensemble.predict_proba`'s number
exactly, in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.errors import ConfigError
from labkit.models.members import Member

COIN_FLIP = math.log(2)  # the log loss of always answering 0.5
TEMPERATURE = 0.01  # nats: a member 0.01 worse than the best gets 1/e of its weight


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    """Return the mean binary log loss (nats) of probabilities `p` for 0/1 labels `y`."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def weights_from_log_loss(losses: Sequence[float], temperature: float = TEMPERATURE) -> np.ndarray:
    """Return member weights (summing to 1) from each member's out-of-fold log loss.

    ``w_i ∝ exp(-(loss_i - best) / temperature)``, a softmax of the losses: the best member gets
    the most, and one `temperature` (0.01 nats by default) worse costs a factor e. A member no
    better than a coin flip (``loss >= ln 2``, what always answering 0.5 scores) gets 0, unless
    every member is that bad; then all share by the same rule. A NaN or infinite loss gets 0.

    Raises
    ------
    ConfigError
        When no loss is given, none is finite, one is negative, or `temperature` is not positive.

    Examples
    --------
    >>> weights_from_log_loss([0.690, 0.685, 0.70]).round(3)
    array([0.378, 0.622, 0.   ])
    """
    loss = np.asarray(losses, dtype=np.float64)
    if not len(loss) or not np.isfinite(loss).any():
        raise ConfigError(f"ensemble weights: no finite out-of-fold log loss among {list(losses)}")
    if (loss[np.isfinite(loss)] < 0).any():
        raise ConfigError(f"ensemble weights: a log loss cannot be negative: {list(losses)}")
    if not temperature > 0:
        raise ConfigError(f"ensemble weights: temperature must be > 0, got {temperature}")
    usable = np.isfinite(loss)
    better = usable & (loss < COIN_FLIP)
    if better.any():
        usable = better
    best = loss[usable].min()
    weights = np.where(usable, np.exp(-(np.where(usable, loss, best) - best) / temperature), 0.0)
    return weights / weights.sum()


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from the ensemble's average to a probability: ``np.interp(p, x, y)``.

    Fitted by isotonic regression on out-of-fold averages and their labels, and kept as its
    points: plain numbers in model.json, not a pickled object. Outside ``[x[0], x[-1]]`` it is
    flat (the end values), as scikit-learn's ``out_of_bounds="clip"``.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    method: str = "isotonic"
    rows: int = 0  # how many out-of-fold rows it was fitted on
    _x: np.ndarray = field(init=False, repr=False, compare=False)
    _y: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)
        if len(x) < 1 or len(x) != len(y):
            raise ConfigError(f"calibrator: x and y need the same length >= 1, got {len(x)} and {len(y)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ConfigError("calibrator: its points must be finite numbers")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
            raise ConfigError("calibrator: x and y must both be non-decreasing (the map is monotone)")
        if y[0] < 0 or y[-1] > 1:
            raise ConfigError(f"calibrator: values must lie in [0, 1], got {y[0]} .. {y[-1]}")
        object.__setattr__(self, "_x", x)
        object.__setattr__(self, "_y", y)

    @classmethod
    def identity(cls) -> Calibrator:
        """Return the calibrator that changes nothing (for a model trained without calibration)."""
        return cls((0.0, 1.0), (0.0, 1.0), method="identity")

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit an isotonic map from out-of-fold averaged probabilities `p` to 0/1 labels `y`.

        The fitted values are kept within ``[1/(n+2), 1 - 1/(n+2)]`` for ``n`` rows: a region
        where every out-of-fold label was 0 does not prove a probability of exactly 0.
        """
        from sklearn.isotonic import IsotonicRegression

        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        keep = np.isfinite(p)
        p, y = p[keep], y[keep]
        if len(p) < 2 or len(np.unique(y)) < 2:
            raise ConfigError(
                f"calibrator: needs out-of-fold rows of both labels, got {len(p)} rows with labels "
                f"{sorted(set(y.tolist()))[:3]}"
            )
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(p, y)
        bound = 1.0 / (len(p) + 2)
        values = np.clip(np.asarray(iso.y_thresholds_, dtype=np.float64), bound, 1 - bound)
        return cls(
            tuple(float(v) for v in iso.X_thresholds_),
            tuple(float(v) for v in values),
            method="isotonic",
            rows=len(p),
        )

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Return the calibrated probabilities of the averages `p`."""
        return np.interp(p, self._x, self._y)

    def apply_one(self, p: float) -> float:
        """Return the calibrated probability of one average, exactly as `apply` gives it."""
        return float(np.interp(p, self._x, self._y))

    def to_json(self) -> dict[str, Any]:
        """Return the calibrator as plain JSON (what model.json stores)."""
        return {"method": self.method, "rows": self.rows, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibrator:
        """Rebuild a calibrator from `to_json`'s output.

        Raises
        ------
        ConfigError
            When a field is missing or the points are not a monotone map into [0, 1].
        """
        try:
            method = str(data["method"])
            x = tuple(float(v) for v in data["x"])
            y = tuple(float(v) for v in data["y"])
            rows = int(data.get("rows", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"calibrator: unreadable ({exc!r}); expected method, x and y") from None
        if method not in ("isotonic", "identity"):
            raise ConfigError(f"calibrator: method {method!r} is unknown (isotonic or identity)")
        return cls(x, y, method=method, rows=rows)


class Ensemble:
    """Members, their weights, a calibrator and the feature schema they were trained on.

    Parameters
    ----------
    members
        Fitted members, all on the same number of features.
    weights
        One per member, non-negative, summing to 1 (e.g. `weights_from_log_loss`).
    calibrator
        Maps the weighted average to a probability.
    schema
        The feature schema (``{"names": [...], "lookbacks": [...], "version": ...}``), or a list
        of one per member (the ensemble's is then the first). Given one schema, a member that
        carries its own (``member.schema``) keeps it. `member_schemas` holds the result.
    losses
        Each member's out-of-fold log loss, kept for the record (model.json).
    """

    def __init__(
        self,
        members: Sequence[Member],
        weights: Sequence[float] | np.ndarray,
        calibrator: Calibrator,
        schema: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        losses: Sequence[float] | None = None,
    ) -> None:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if not members:
            raise ConfigError("ensemble: needs at least one member")
        if len(w) != len(members):
            raise ConfigError(f"ensemble: {len(members)} members but {len(w)} weights")
        if not np.isfinite(w).all() or (w < 0).any() or not abs(w.sum() - 1) < 1e-9:
            raise ConfigError(f"ensemble: weights must be >= 0 and sum to 1, got {w.tolist()}")
        if losses is not None and len(losses) != len(members):
            raise ConfigError(f"ensemble: {len(members)} members but {len(losses)} losses")
        counts = {m.n_features for m in members}
        if len(counts) != 1 or None in counts:
            raise ConfigError(f"ensemble: members must be fitted on the same features, got counts {counts}")
        self.members: list[Member] = list(members)
        self.weights: np.ndarray = w
        self.calibrator = calibrator
        if isinstance(schema, Mapping):
            self.schema: dict[str, Any] = dict(schema)
            schemas = [dict(m.schema) if m.schema else dict(schema) for m in members]
        else:
            schemas = [dict(one) for one in schema]
            if len(schemas) != len(members):
                raise ConfigError(f"ensemble: {len(members)} members but {len(schemas)} schemas")
            self.schema = schemas[0]
        self.member_schemas: list[dict[str, Any]] = schemas
        self.losses: list[float] | None = None if losses is None else [float(v) for v in losses]
        self.n_features: int = int(next(iter(counts)))  # type: ignore[arg-type]
        # Members with no weight are skipped: they cannot change the average.
        self._active = [(m, float(v)) for m, v in zip(self.members, w, strict=True) if v > 0]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{m.kind}:{w:.3f}" for m, w in zip(self.members, self.weights, strict=True))
        return f"Ensemble({kinds}; calibrator {self.calibrator.method})"

    def average(self, X: np.ndarray) -> np.ndarray:
        """Return the weighted average of the members' probabilities, before calibration."""
        X = np.asarray(X, dtype=np.float64)
        total = np.zeros(len(X))
        for member, weight in self._active:
            total = total + weight * member.predict_proba(X)
        return total

    def average_one(self, row: np.ndarray) -> float:
        """Return `average` of one row, exactly (the same sum in the same order)."""
        total = 0.0
        for member, weight in self._active:
            total = total + weight * member.predict_proba_fast(row)
        return total

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the calibrated probability of class 1 for each row of `X`."""
        return self.calibrator.apply(self.average(X))

    def predict_one(self, row: np.ndarray) -> float:
        """Return the calibrated probability of one row (1-D), exactly as `predict_proba` gives it."""
        return self.calibrator.apply_one(self.average_one(row))

    def usable(self, schema: Mapping[str, Any]) -> tuple[list[int], list[str]]:
        """Return the indices of members trained on `schema`, and one sentence per other member.

        Examples
        --------
        A member trained on another version of the features is left out, and said why:
        ``([0, 2], ["member 1 (logistic): features version abc123 at training, def456 now"])``.
        """
        keep, why = [], []
        for i, (member, trained) in enumerate(zip(self.members, self.member_schemas, strict=True)):
            differences = schema_differences(trained, schema)
            if differences:
                why.append(f"member {i} ({member.kind}): " + "; ".join(differences))
            else:
                keep.append(i)
        return keep, why

    def without(self, indices: Iterable[int]) -> Ensemble:
        """Return the ensemble without the members at `indices`, the other weights rescaled to 1.

        The calibrator stays: it was fitted on the full average, so a reduced ensemble is an
        approximation, which is why `usable` says which members were dropped and why.

        Raises
        ------
        ConfigError
            When no member with a positive weight would be left.
        """
        drop = set(indices)
        if bad := sorted(i for i in drop if not 0 <= i < len(self.members)):
            raise ConfigError(f"ensemble: no member at {bad}; it has {len(self.members)}")
        kept = [i for i in range(len(self.members)) if i not in drop]
        w = self.weights[kept]
        if not kept or w.sum() <= 0:
            raise ConfigError(
                "ensemble: no member with a positive weight is left; train the model again on the "
                "current features"
            )
        losses = None if self.losses is None else [self.losses[i] for i in kept]
        smaller = Ensemble(
            [self.members[i] for i in kept],
            w / w.sum(),
            self.calibrator,
            [self.member_schemas[i] for i in kept],
            losses,
        )
        smaller.schema = self.schema
        return smaller


def schema_differences(trained: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """Return short sentences naming how the schema `given` differs from `trained` (none: equal)."""
    if dict(trained) == dict(given):
        return []
    out = []
    for key in sorted(set(trained) | set(given)):
        was, now = trained.get(key), given.get(key)
        if was == now:
            continue
        if key == "names" and isinstance(was, list) and isinstance(now, list):
            missing = [n for n in was if n not in now]
            extra = [n for n in now if n not in was]
            if missing or extra:
                out.append(
                    "feature names differ"
                    + (f"; missing now: {', '.join(map(str, missing[:5]))}" if missing else "")
                    + (f"; new: {', '.join(map(str, extra[:5]))}" if extra else "")
                )
            else:
                out.append("the same features in another order")
        else:
            out.append(f"features {key} {_short(was)} at training, {_short(now)} now")
    return out


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""Drift: how far recent features (or predicted probabilities) have moved from the training window.

The population stability index (PSI) compares two distributions over the same bins:
``sum((actual - expected) * ln(actual / expected))`` over the bins, with the proportions of the
training rows as `expected` and of the recent rows as `actual`. The bins are the deciles of the
training rows. Read it as: below 0.1 stable, 0.1 to 0.25 worth watching, above 0.25 a shift.

A bin that one side leaves empty would make the logarithm infinite, so every proportion is floored
at `EPSILON` (1e-4) first: a bin seen in training but never since then adds a large but finite term.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> train = rng.normal(size=(5000, 1))
>>> prof = profile(train, ["x"])
>>> psi(prof, rng.normal(size=(2000, 1)))["x"] < 0.1, psi(prof, rng.normal(1.0, size=(2000, 1)))["x"] > 0.25
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EPSILON = 1e-4
"""The floor of a bin's proportion, so that an empty bin gives a finite PSI."""

PSI_WATCH = 0.1
"""A PSI above this is worth watching."""

PSI_DRIFT = 0.25
"""A PSI above this is a shift: the model sees data unlike its training window."""

_DECILES = np.linspace(0.1, 0.9, 9)


@dataclass(frozen=True)
class FeatureProfile:
    """Each feature's decile bin edges and the share of training rows in each bin.

    ``edges[i]`` holds the inner edges of feature ``names[i]`` (up to 9, increasing, repeated
    quantiles merged); its bins are ``(-inf, e0], (e0, e1], ..., (e_last, inf)``, and
    ``proportions[i]`` has one share per bin.
    """

    names: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    proportions: tuple[tuple[float, ...], ...]
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as plain JSON data."""
        return {
            "names": list(self.names),
            "edges": [list(e) for e in self.edges],
            "proportions": [list(p) for p in self.proportions],
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """Return the profile `to_dict` wrote; raise ValueError saying what is wrong with `data`."""
        try:
            names = tuple(str(n) for n in data["names"])
            edges = tuple(tuple(float(e) for e in row) for row in data["edges"])
            proportions = tuple(tuple(float(p) for p in row) for row in data["proportions"])
            rows = int(data.get("rows", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"feature profile: needs names, edges and proportions lists ({exc})") from None
        if not len(names) == len(edges) == len(proportions):
            raise ValueError(
                f"feature profile: {len(names)} names, {len(edges)} edge lists and {len(proportions)} "
                "proportion lists; they go together"
            )
        for name, e, p in zip(names, edges, proportions, strict=True):
            if len(p) != len(e) + 1:
                raise ValueError(
                    f"feature profile: {name} has {len(e)} edges, so needs {len(e) + 1} proportions"
                )
        return cls(names, edges, proportions, rows)


def _matrix(matrix: np.ndarray) -> np.ndarray:
    values = np.asarray(matrix, dtype="float64")
    return values.reshape(-1, 1) if values.ndim == 1 else values


def _complete_rows(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values).any(axis=1)]


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # searchsorted "left" counts the edges strictly below a value: bin k is (edge[k-1], edge[k]].
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def profile(matrix: np.ndarray, names: Sequence[str]) -> FeatureProfile:
    """Return the decile profile of each column of the training `matrix` (rows with a NaN ignored).

    A 1-D array is one column, e.g. a model's predicted probabilities.
    """
    values = _matrix(matrix)
    names = tuple(names)
    if values.shape[1] != len(names):
        raise ValueError(f"the matrix has {values.shape[1]} columns but {len(names)} names")
    values = _complete_rows(values)
    if len(values) == 0:
        raise ValueError("no training row without NaN to profile (is the window shorter than the warm-up?)")
    edges, proportions = [], []
    for j in range(values.shape[1]):
        inner = np.unique(np.quantile(values[:, j], _DECILES))
        edges.append(tuple(inner.tolist()))
        proportions.append(tuple(_shares(inner, values[:, j]).tolist()))
    return FeatureProfile(names, tuple(edges), tuple(proportions), len(values))


def psi_1d(expected_edges: Sequence[float], expected_props: Sequence[float], values: np.ndarray) -> float:
    """Return the PSI of `values` against bins and their expected proportions (NaN values ignored).

    NaN when no value is left to compare.

    Examples
    --------
    >>> psi_1d([0.0], [0.5, 0.5], np.array([-1.0, 1.0]))
    0.0
    """
    edges = np.asarray(expected_edges, dtype="float64")
    expected = np.maximum(np.asarray(expected_props, dtype="float64"), EPSILON)
    if len(expected) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges make {len(edges) + 1} bins, not {len(expected)}")
    values = np.asarray(values, dtype="float64")
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan")
    actual = np.maximum(_shares(edges, values), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi(profile: FeatureProfile, matrix: np.ndarray) -> dict[str, float]:
    """Return the PSI of each column of the recent `matrix` against `profile` (rows with a NaN ignored)."""
    values = _matrix(matrix)
    if values.shape[1] != len(profile.names):
        raise ValueError(f"the matrix has {values.shape[1]} columns but the profile has {len(profile.names)}")
    values = _complete_rows(values)
    columns = zip(profile.names, profile.edges, profile.proportions, strict=True)
    return {name: psi_1d(edges, props, values[:, j]) for j, (name, edges, props) in enumerate(columns)}


def drift_level(value: float) -> str:
    """Return ``"stable"``, ``"watch"`` (above `PSI_WATCH`) or ``"drift"`` (above `PSI_DRIFT`).

    Examples
    --------
    >>> drift_level(0.05), drift_level(0.15), drift_level(0.3)
    ('stable', 'watch', 'drift')
    """
    if value > PSI_DRIFT:
        return "drift"
    return "watch" if value > PSI_WATCH else "stable"


CLOCK_FEATURES = frozenset({"tod_sin", "tod_cos", "dow_sin", "dow_cos"})
"""Features that tell the time: left out of the gated drift, since any window shorter than their
period (a day, a week) "drifts" from a training window that covered whole days."""


def rolling_psi(
    profile: FeatureProfile, matrix: np.ndarray, window: int, skip: frozenset[str] = CLOCK_FEATURES
) -> np.ndarray:
    """Return, for each row, the largest PSI of a feature over the `window` rows ending there.

    Features named in `skip` are left out. A row's value depends only on the rows of its window, so
    a matrix cut anywhere gives the same values for the rows whose windows it holds whole: what
    lets a live session and a backtest agree. NaN while the window is not `window` rows without NaN.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> prof = profile(rng.normal(size=(5000, 1)), ["x"])
    >>> later = np.concatenate([rng.normal(size=300), rng.normal(2.0, size=300)]).reshape(-1, 1)
    >>> values = rolling_psi(prof, later, 200)
    >>> bool(np.isnan(values[198])), bool(values[299] < 0.25), bool(values[-1] > 0.25)
    (True, True, True)
    """
    if window < 1:
        raise ValueError(f"window: {window} rows; give at least 1")
    values = _matrix(matrix)
    if values.shape[1] != len(profile.names):
        raise ValueError(f"the matrix has {values.shape[1]} columns but the profile has {len(profile.names)}")
    n = len(values)
    out = np.full(n, np.nan)
    if n < window:
        return out
    complete = ~np.isnan(values).any(axis=1)
    seen = np.concatenate([[0], np.cumsum(complete)])
    whole = (seen[window:] - seen[:-window]) == window  # windows ending at rows window-1 .. n-1
    if not whole.any():
        return out
    best = np.full(n - window + 1, -np.inf)
    columns = zip(profile.names, profile.edges, profile.proportions, strict=True)
    for j, (name, edges, props) in enumerate(columns):
        if name in skip:
            continue
        expected = np.maximum(np.asarray(props, dtype="float64"), EPSILON)
        column = np.where(complete, values[:, j], 0.0)
        bins = np.searchsorted(np.asarray(edges, dtype="float64"), column, side="left")
        # Counts per bin over every window at once: differences of running counts.
        running = np.zeros((n + 1, len(expected)), dtype="int64")
        running[np.arange(1, n + 1), bins] = 1  # one bin per row
        np.cumsum(running, axis=0, out=running)
        actual = np.maximum((running[window:] - running[:-window]) / window, EPSILON)
        best = np.maximum(best, np.sum((actual - expected) * np.log(actual / expected), axis=1))
    best[~whole | np.isinf(best)] = np.nan
    out[window - 1 :] = best
    return out


@dataclass(frozen=True)
class DriftCalibration:
    """The drift threshold a model was calibrated with on its own training rows.

    `threshold` is the `quantile` of the rolling PSI (`rolling_psi`) of `windows` training windows
    of `window` rows, one every `stride` rows: how far a window of the training data itself strays
    from the whole. A live window above it strays more than all but ``1 - quantile`` of them.
    """

    window: int
    quantile: float
    threshold: float
    windows: int
    stride: int

    def to_dict(self) -> dict[str, Any]:
        """Return the calibration as plain JSON data (model.json's ``drift_calibration``)."""
        return {
            "window": self.window,
            "quantile": self.quantile,
            "threshold": self.threshold,
            "windows": self.windows,
            "stride": self.stride,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftCalibration:
        """Return the calibration `to_dict` wrote; raise ValueError saying what is wrong with `data`."""
        try:
            found = cls(
                int(data["window"]),
                float(data["quantile"]),
                float(data["threshold"]),
                int(data["windows"]),
                int(data.get("stride", data["window"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"drift calibration: needs window, quantile, threshold and windows ({exc})"
            ) from None
        if found.window < 1 or found.windows < 1 or not 0 < found.quantile <= 1 or not found.threshold >= 0:
            raise ValueError(
                f"drift calibration: window {found.window}, quantile {found.quantile}, threshold "
                f"{found.threshold}, windows {found.windows}: needs a window and windows of at least 1, "
                "a quantile above 0 and at most 1, and a threshold of 0 or more"
            )
        return found

    def describe(self) -> str:
        """Return where the threshold came from, e.g. ``calibrated q0.99 on 37 training windows``."""
        return f"calibrated q{self.quantile:g} on {self.windows} training windows"


def calibrate(
    profile: FeatureProfile,
    matrix: np.ndarray | Sequence[np.ndarray],
    window: int,
    quantile: float,
    stride: int | None = None,
    skip: frozenset[str] = CLOCK_FEATURES,
) -> DriftCalibration | None:
    """Return the drift threshold of `matrix` (the training rows `profile` was made of).

    A sequence of matrices is one set of training rows in parts, each with its own windows: a
    model pooled over a universe calibrates on each symbol's rows, as each symbol is judged live.

    The windows end every `stride` rows (default a quarter of `window`, so each overlaps the next by
    three quarters: more windows than a day's worth alone, on few training days). The quantile is an
    order statistic: of 100 windows, q0.99 is the 99th smallest PSI. None when the rows hold no
    whole window (the model then falls back to ``gates.model.max_psi``).
    """
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile: {quantile}; give a share above 0 and at most 1, e.g. 0.99")
    stride = max(1, window // 4) if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride: {stride} rows; give at least 1")
    parts = [matrix] if isinstance(matrix, np.ndarray) else list(matrix)
    scores = np.concatenate(
        [rolling_psi(profile, part, window, skip)[window - 1 :: stride] for part in parts]
    )
    scores = scores[~np.isnan(scores)]
    if not len(scores):
        return None
    threshold = float(np.quantile(scores, quantile, method="inverted_cdf"))
    return DriftCalibration(window, quantile, threshold, len(scores), stride)

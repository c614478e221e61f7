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

"""A feature set: named features in a fixed order, computed over history or for the newest bar.

Both speeds use the same definitions. `FeatureSet.compute` runs each feature over the whole series
(research, training, backtests); `FeatureSet.compute_last` runs each over its own last `lookback`
bars only (a live session, one bar at a time). Since every feature is a function of its window
alone, row ``t`` of the first equals the second given the bars up to ``t``.

Examples
--------
>>> fs = FeatureSet(["ret_1", "hl_range"])
>>> fs.names, fs.warmup, fs.schema.version
(('ret_1', 'hl_range'), 2, '59798401372f')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from labkit.data.bars import bar_columns
from labkit.features.cross_section import CROSS_SECTIONAL
from labkit.features.definitions import DEFAULT_NAMES, FEATURES, Columns, Feature
from labkit.features.schema import FeatureSchema

# Every feature a set may name: the per-symbol ones, and the cross-sectional ones a universe supplies.
_KNOWN: dict[str, Feature] = {**FEATURES, **CROSS_SECTIONAL}


class FeatureSet:
    """Named features in a fixed order; `names` None means every feature (`DEFAULT_NAMES`).

    Raises
    ------
    ValueError
        When a name is unknown (the message lists the known ones), repeated, or none is given.
    """

    def __init__(self, names: Sequence[str] | None = None) -> None:
        if isinstance(names, str):
            raise ValueError(f"give feature names as a list, not the string {names!r}")
        chosen = DEFAULT_NAMES if names is None else tuple(names)
        unknown = [name for name in chosen if name not in _KNOWN]
        if unknown:
            raise ValueError(
                f"unknown feature(s) {', '.join(map(repr, unknown))}; known features: {', '.join(_KNOWN)}"
            )
        repeated = sorted({name for name in chosen if chosen.count(name) > 1})
        if repeated:
            raise ValueError(f"feature(s) named more than once: {', '.join(repeated)}")
        if not chosen:
            raise ValueError(f"a feature set needs a feature; known features: {', '.join(FEATURES)}")
        self._features = tuple(_KNOWN[name] for name in chosen)
        self._schema = FeatureSchema.of(self._features)
        self._warmup = max(f.lookback for f in self._features)

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, in column order."""
        return self._schema.names

    @property
    def features(self) -> tuple[Feature, ...]:
        """The features, in column order."""
        return self._features

    @property
    def schema(self) -> FeatureSchema:
        """The names, lookbacks and version a model records."""
        return self._schema

    @property
    def cross_sectional(self) -> tuple[str, ...]:
        """The names of the cross-sectional features: columns the bars must carry (none for most sets)."""
        return tuple(f.name for f in self._features if f.cross_sectional)

    @property
    def warmup(self) -> int:
        """The longest lookback: the bars needed before the first row without NaN."""
        return self._warmup

    def __len__(self) -> int:
        return len(self._features)

    def __repr__(self) -> str:
        return f"FeatureSet({list(self.names)!r})"

    def compute(self, bars: pd.DataFrame) -> np.ndarray:
        """Return the features of every bar, shape ``(len(bars), len(self))``.

        A column is NaN for the first ``lookback - 1`` rows of its feature, and never after.
        """
        return self.compute_columns(self.columns(bars))

    def columns(self, bars: pd.DataFrame, last: int | None = None) -> dict[str, np.ndarray]:
        """Return `bar_columns` of `bars`, with the cross-sectional columns the set reads (`last` rows).

        A missing cross-sectional column is left out: computing its feature then says why.
        """
        cols = bar_columns(bars, last=last)
        start = 0 if last is None else max(len(bars) - last, 0)
        for name in self.cross_sectional:
            if name in bars.columns:
                cols[name] = bars[name].to_numpy(dtype="float64")[start:]
        return cols

    def compute_columns(self, cols: Columns) -> np.ndarray:
        """Return `compute` of bars given as arrays (``open ... volume`` float64, ``ts`` int64 ms)."""
        n = len(cols["close"])
        # Filled a column at a time, which is contiguous in Fortran order; returned in row order.
        out = np.empty((n, len(self._features)), order="F")
        with np.errstate(all="ignore"):
            for j, feature in enumerate(self._features):
                values = feature.complete(cols)
                out[: n - len(values), j] = np.nan
                out[n - len(values) :, j] = values
        return np.ascontiguousarray(out)

    def compute_last(self, bars: pd.DataFrame) -> np.ndarray:
        """Return the features of the last bar, from only the trailing `warmup` bars; shape ``(len(self),)``.

        A feature with fewer bars than its lookback is NaN, as in `compute`.
        """
        if len(bars) == 0:
            raise ValueError("compute_last needs at least one bar; got none")
        return self.compute_last_columns(self.columns(bars, last=self.warmup))

    def compute_last_columns(self, cols: Columns) -> np.ndarray:
        """Return `compute_last` of bars given as arrays (only the last `warmup` are read)."""
        n = len(cols["close"])
        out = np.full(len(self._features), np.nan)
        with np.errstate(all="ignore"):
            for j, feature in enumerate(self._features):
                if feature.lookback <= n:
                    # Exactly its own lookback: the formula yields the one value of the newest bar.
                    out[j] = feature.values(_Newest(cols, feature.lookback))[-1]
        return out

    def frame(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Return `compute` as a frame with the feature names as columns and the bars' index."""
        return pd.DataFrame(self.compute(bars), index=bars.index, columns=list(self.names))

    def missing(self, bars: pd.DataFrame | int) -> int:
        """Return how many more bars are needed before the first complete row (0 when none)."""
        have = bars if isinstance(bars, int) else len(bars)
        return max(0, self.warmup - have)


class _Newest(Mapping[str, np.ndarray]):
    # The newest `lookback` bars of each column, sliced when a formula reads the column: cheaper
    # than slicing all six columns for each feature.
    __slots__ = ("_cols", "_start")

    def __init__(self, cols: Columns, lookback: int) -> None:
        self._cols = cols
        self._start = len(cols["close"]) - lookback

    def __getitem__(self, key: str) -> np.ndarray:
        return self._cols[key][self._start :]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __len__(self) -> int:
        return len(self._cols)


def default_feature_set() -> FeatureSet:
    """Return the feature set of every feature, in the default order."""
    return FeatureSet()

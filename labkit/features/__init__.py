"""Features: named, past-only functions of bars, each with its lookback, and the labels training learns.

`definitions` holds the features, `featureset` computes a chosen set over history or for the newest
bar, `cross_section` ranks a symbol among its universe (optional, for pooled models), `schema`
records what a model was trained on, `labels` is the only code that looks forward, and
`drift` measures how far recent features moved from the training window.
"""

from __future__ import annotations

from labkit.features.definitions import DEFAULT_NAMES, FEATURES, Feature, adx
from labkit.features.drift import FeatureProfile, profile, psi, psi_1d
from labkit.features.featureset import FeatureSet, default_feature_set
from labkit.features.labels import Fold, forward_labels, rows_needed, walk_forward_folds
from labkit.features.schema import FeatureSchema

__all__ = [
    "DEFAULT_NAMES",
    "FEATURES",
    "Feature",
    "FeatureProfile",
    "FeatureSchema",
    "FeatureSet",
    "Fold",
    "adx",
    "default_feature_set",
    "forward_labels",
    "profile",
    "psi",
    "psi_1d",
    "rows_needed",
    "walk_forward_folds",
]

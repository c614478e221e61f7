"""Boosted trees compiled to flat numpy arrays: one row's raw score in microseconds, bit for bit.

A live session asks for one row per bar. XGBoost's own single-row call costs ~0.2 ms and
scikit-learn's ~0.1 ms before any tree is walked, which is the whole latency budget of a bar. Here
every tree of a model sits in a few flat arrays and one row walks all of them at once: each step
of the loop moves every tree one level down, so a row costs `depth` numpy steps whatever the
number of trees.

The result must be the library's own number, not a close one: the split test is the library's
(XGBoost goes left when ``x < t`` on float32 values, scikit-learn when ``x <= t`` on float64), a
missing value takes the node's default branch, and the leaf values are summed one tree after the
other in the library's precision and order. The members check this on probe rows each time they
compile, and fall back to the library when a row would differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CompiledTrees:
    """All trees of a model as flat arrays; node ``i`` of tree ``t`` is at ``roots[t] + i``.

    A leaf's children are itself, so a row can take `depth` steps from every root without asking
    which trees already reached a leaf.
    """

    feature: np.ndarray  # intp: the feature a node splits on (0 at leaves)
    threshold: np.ndarray  # float32 (XGBoost) or float64 (scikit-learn)
    children: np.ndarray  # intp, 2 per node: [2i] when the test fails, [2i + 1] when it holds
    missing_left: np.ndarray  # bool: where a NaN goes
    value: np.ndarray  # leaf values (0 at inner nodes), in the precision the library sums in
    roots: np.ndarray  # intp, one per tree, in the order the library adds them
    depth: int  # the deepest leaf, in steps from its root
    strict: bool  # True: left when x < t (XGBoost); False: left when x <= t (scikit-learn)
    start: float  # the sum's first term: scikit-learn's baseline, 0 for XGBoost's leaves

    def raw_one(self, row: np.ndarray) -> float:
        """Return the library's raw score of one row (a 1-D float64 array of the features)."""
        x = row.astype(self.threshold.dtype, copy=False)
        feature, threshold, children = self.feature, self.threshold, self.children
        nodes = self.roots
        if np.isnan(x).any():
            missing_left = self.missing_left
            for _ in range(self.depth):
                v = x[feature[nodes]]
                left = v < threshold[nodes] if self.strict else v <= threshold[nodes]
                left = np.where(np.isnan(v), missing_left[nodes], left)
                nodes = children[2 * nodes + left]
        elif self.strict:
            for _ in range(self.depth):
                nodes = children[2 * nodes + (x[feature[nodes]] < threshold[nodes])]
        else:
            for _ in range(self.depth):
                nodes = children[2 * nodes + (x[feature[nodes]] <= threshold[nodes])]
        # cumsum adds left to right in the array's own precision, as the libraries do; sum() would
        # pair the terms up and round differently.
        terms = np.concatenate((np.array([self.start], dtype=self.value.dtype), self.value[nodes]))
        return float(np.cumsum(terms)[-1])

    def probe_rows(self, n_features: int, n: int = 256, seed: int = 0) -> np.ndarray:
        """Return rows that sit on, just below and just above the split thresholds, with some NaN.

        Ties and float32 rounding are where a re-implementation of a tree goes wrong; these rows
        hit them on purpose.
        """
        rng = np.random.default_rng(seed)
        inner = self.children[0::2] != np.arange(len(self.feature))
        out = rng.normal(size=(n, n_features))
        for j in range(n_features):
            t = self.threshold[inner & (self.feature == j)]
            if not len(t):
                continue
            below = np.nextafter(t, np.array(-np.inf, dtype=t.dtype))
            above = np.nextafter(t, np.array(np.inf, dtype=t.dtype))
            candidates = np.concatenate((t, below, above)).astype(np.float64)
            # float64 neighbours too: XGBoost rounds them to float32 before it compares.
            candidates = np.concatenate((candidates, np.nextafter(candidates, np.inf)))
            out[:, j] = rng.choice(candidates, size=n)
        out[rng.random(out.shape) < 0.1] = np.nan
        return out


def _depth(children: np.ndarray, roots: np.ndarray) -> int:
    leaf = children[0::2] == np.arange(len(children) // 2)
    level, depth = roots, 0
    while True:
        inner = level[~leaf[level]]
        if not len(inner):
            return depth
        level = np.concatenate((children[2 * inner], children[2 * inner + 1]))
        depth += 1


def _interleave(fail: np.ndarray, hold: np.ndarray) -> np.ndarray:
    out = np.empty(2 * len(fail), dtype=np.intp)
    out[0::2], out[1::2] = fail, hold
    return out


def compile_sklearn(predictors: Sequence[Any], baseline: float) -> CompiledTrees | None:
    """Compile a fitted ``HistGradientBoostingClassifier``'s trees (binary: one per iteration).

    Return None when a tree uses a categorical split, which the flat arrays do not model.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "t", "fail", "hold", "m", "v")}
    roots, offset = [], 0
    for predictor in predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            return None
        n = len(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(n)
        roots.append(offset)
        parts["f"].append(np.where(leaf, 0, nodes["feature_idx"]))
        parts["t"].append(nodes["num_threshold"].astype(np.float64))
        # scikit-learn goes left when x <= t: "holds" is left.
        parts["fail"].append(np.where(leaf, own, nodes["right"].astype(np.intp)) + offset)
        parts["hold"].append(np.where(leaf, own, nodes["left"].astype(np.intp)) + offset)
        parts["m"].append(nodes["missing_go_to_left"].astype(bool))
        parts["v"].append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
        offset += n
    return _assemble(parts, roots, strict=False, start=float(baseline))


def compile_xgboost(model_json: bytes) -> CompiledTrees | None:
    """Compile a binary:logistic XGBoost booster from its JSON model (``save_raw("json")``).

    Return None for what the flat arrays do not model: categorical splits, several outputs, or a
    booster that is not a tree booster.
    """
    # Floats are kept as text and rounded to float32 once, as XGBoost does: text -> float64 ->
    # float32 could round twice.
    doc = json.loads(model_json, parse_float=str)
    booster = doc["learner"]["gradient_booster"]
    if booster.get("name") != "gbtree":
        return None
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "t", "fail", "hold", "m", "v")}
    roots, offset = [], 0
    trees = booster["model"]["trees"]
    tree_info = booster["model"].get("tree_info", [0] * len(trees))
    if any(int(group) != 0 for group in tree_info):
        return None
    for tree in trees:
        if any(int(kind) != 0 for kind in tree.get("split_type", [])):
            return None
        left = np.asarray(tree["left_children"], dtype=np.intp)
        right = np.asarray(tree["right_children"], dtype=np.intp)
        n = len(left)
        leaf = left == -1
        own = np.arange(n)
        conditions = _float32(tree["split_conditions"])
        roots.append(offset)
        parts["f"].append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.intp)))
        parts["t"].append(np.where(leaf, np.float32(0), conditions).astype(np.float32))
        # XGBoost goes left when x < t: "holds" is left. A leaf keeps its value in split_conditions.
        parts["fail"].append(np.where(leaf, own, right) + offset)
        parts["hold"].append(np.where(leaf, own, left) + offset)
        parts["m"].append(np.asarray(tree["default_left"], dtype=bool))
        parts["v"].append(np.where(leaf, conditions, np.float32(0)).astype(np.float32))
        offset += n
    return _assemble(parts, roots, strict=True, start=0.0)


def _assemble(
    parts: dict[str, list[np.ndarray]], roots: list[int], strict: bool, start: float
) -> CompiledTrees:
    children = _interleave(np.concatenate(parts["fail"]), np.concatenate(parts["hold"]))
    root_array = np.asarray(roots, dtype=np.intp)
    return CompiledTrees(
        feature=np.concatenate(parts["f"]).astype(np.intp),
        threshold=np.concatenate(parts["t"]),
        children=children,
        missing_left=np.concatenate(parts["m"]),
        value=np.concatenate(parts["v"]),
        roots=root_array,
        depth=_depth(children, root_array),
        strict=strict,
        start=start,
    )


def _float32(texts: Sequence[str]) -> np.ndarray:
    # Decimal text to the nearest float32, correctly rounded. Going through float64 is right
    # except when the float64 lands on a float32 midpoint; those few are settled exactly.
    wide = np.asarray([float(t) for t in texts], dtype=np.float64)
    out = wide.astype(np.float32)
    down = np.nextafter(out, np.float32(-np.inf)).astype(np.float64)
    up = np.nextafter(out, np.float32(np.inf)).astype(np.float64)
    mid_down = (out.astype(np.float64) + down) / 2
    mid_up = (out.astype(np.float64) + up) / 2
    near = (np.abs(wide - mid_down) <= np.abs(wide) * 2.0**-50) | (
        np.abs(wide - mid_up) <= np.abs(wide) * 2.0**-50
    )
    for i in np.flatnonzero(near):
        exact = Fraction(texts[int(i)])
        options = [out[i], np.float32(down[i]), np.float32(up[i])]
        # The nearest; on a tie, the one with an even last bit (round half to even).
        out[i] = min(options, key=lambda c: (abs(Fraction(float(c)) - exact), int(c.view(np.uint32)) & 1))
    return out

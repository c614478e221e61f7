"""The probability of backtest overfitting (PBO), by combinatorially symmetric cross-validation.

After Bailey, Borwein, López de Prado and Zhu, "The Probability of Backtest Overfitting" (Journal
of Computational Finance, 2017; SSRN 2326253, 2015). A grid of ``N`` configurations backtested over
the same bars is a performance matrix: ``T`` per-bar returns for each configuration. The question
is whether picking the configuration that did best is a method or luck.

Definitions (every Sharpe ratio here is labkit's: the mean over the standard deviation with
``ddof=1``, a zero risk-free rate, per bar unless annualised by ``√periods_per_year``):

- **Blocks.** Each configuration's returns are cut into ``B`` equal consecutive blocks (64 for
  ``labkit sweep``), each kept as three moments: the count ``n``, the ``sum`` and the sum of squares
  ``sumsq``. The Sharpe ratio of any union of blocks then follows exactly from the pooled moments:
  ``mean = Σsum / Σn``, ``variance = (Σsumsq - (Σsum)² / Σn) / (Σn - 1)`` (`pooled_sharpe`).
- **Partitions.** The ``B`` blocks are grouped into ``S`` partitions of ``B / S`` consecutive blocks
  (``S`` even, 16 by default: four blocks each out of 64).
- **Combinations.** Each of the ``C(S, S/2)`` ways (12,870 for ``S = 16``) of choosing ``S/2``
  partitions as the in-sample set ``J``, the other half ``J̄`` out of sample. Every partition is in
  sample in half of them, and each combination's complement is a combination too (symmetric).
- For each combination, ``n*`` is the configuration with the highest in-sample Sharpe ratio (the
  first of equals), and ``r`` the rank of its out-of-sample Sharpe ratio among the ``N``
  out-of-sample Sharpe ratios, in ascending order (1 the worst, ``N`` the best; equal ratios share
  their average rank). A configuration without a Sharpe ratio in a set of partitions (fewer than two
  returns, or returns that never differ) ranks below every other there.
- Its relative rank ``ω̄ = r / (N + 1)`` and its logit ``λ = ln(ω̄ / (1 - ω̄))``: ``λ > 0`` when the
  in-sample winner is above the out-of-sample median, ``λ ≤ 0`` at or below it.
- **PBO** is the share of combinations with ``λ ≤ 0``: the chance that the configuration that looks
  best in sample is at or below the median out of sample. Pure noise gives about 0.5 or more; a
  configuration truly better than the rest gives about 0.
- **Performance degradation**: the slope (and intercept) of the least-squares line of the chosen
  configuration's out-of-sample Sharpe ratio on its in-sample one, over the combinations. A slope
  near 0 or below says in-sample excellence does not carry over.
- **Probability of loss**: the share of combinations whose chosen configuration has an
  out-of-sample Sharpe ratio below 0 (no ratio, a flat stretch, is not a loss).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

# Partitions allowed: C(20, 10) = 184,756 combinations; C(22, 11) would be 705,432.
MAX_PARTITIONS = 20
# Below this share of the sum of squares, the variance left is rounding: returns that never differ.
_FLAT = 1e-10
# Combination rows x configurations computed at once (bounds memory at a few tens of MB).
_CHUNK_CELLS = 1_000_000


@dataclass(frozen=True, eq=False)
class Overfitting:
    """The probability of backtest overfitting of N configurations, and what it was computed from.

    Arrays hold one value per combination of partitions, in `itertools.combinations` order.
    Sharpe ratios are per bar, or annualised when `pbo_from_blocks` was given ``periods_per_year``.
    """

    pbo: float  # share of combinations with logit <= 0
    logits: np.ndarray  # λ = ln(ω̄ / (1 - ω̄)) of the in-sample best's out-of-sample relative rank
    combinations: int  # C(S, S/2)
    configurations: int  # N
    partitions: int  # S
    in_sample_sharpe: np.ndarray  # of the configuration chosen in sample
    out_of_sample_sharpe: np.ndarray  # of the same configuration out of sample (NaN: none)
    chosen: np.ndarray  # the index (0 to N - 1) of the configuration chosen in sample
    degradation_slope: float  # least-squares slope of out-of-sample on in-sample Sharpe
    degradation_intercept: float
    probability_of_loss: float  # share of combinations with out-of-sample Sharpe < 0

    @property
    def median_logit(self) -> float:
        """The median of the logits: above 0 when the in-sample winner usually beats the median."""
        return float(np.median(self.logits))


def pooled_sharpe(n: np.ndarray, total: np.ndarray, sumsq: np.ndarray) -> np.ndarray:
    """Return the per-observation Sharpe ratio of returns given by their moments, element-wise.

    ``mean / std`` with ``mean = total / n`` and ``std² = (sumsq - total² / n) / (n - 1)`` (``ddof=1``),
    exactly `labkit.analysis.metrics.sharpe_ratio` of the returns themselves. NaN with fewer than two
    returns or none that differ (the variance left is below 1e-10 of the sum of squares: rounding).

    Examples
    --------
    >>> r = np.array([0.01, -0.01, 0.02, 0.0])
    >>> round(float(pooled_sharpe(np.array(4.0), r.sum(), (r * r).sum())), 6)
    0.387298
    >>> float(pooled_sharpe(np.array(3.0), np.array(0.03), np.array(0.0003)))
    nan
    """
    n, total, sumsq = (np.asarray(a, dtype=float) for a in (n, total, sumsq))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        squares = sumsq - total * mean  # Σ(x - mean)²
        sharpe = mean / np.sqrt(squares / (n - 1.0))
        spread = (n >= 2.0) & (squares > _FLAT * sumsq) & (squares > 0.0)
    return np.where(spread, sharpe, np.nan)


def blocks_from_returns(returns: np.ndarray, blocks: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return one run's per-bar returns cut into `blocks` consecutive blocks: ``(n, sum, sumsq)``.

    The blocks are as equal as the count allows (`numpy.array_split`: the first ``T % blocks`` hold
    one return more); NaN returns are left out of their block (``n`` counts the others), as
    `labkit.analysis.metrics` ignores them. Fewer returns than blocks leave blocks empty.

    Examples
    --------
    >>> n, s, ss = blocks_from_returns(np.array([0.01, -0.01, 0.02, np.nan, 0.03]), blocks=2)
    >>> n.tolist(), s.round(4).tolist(), ss.round(6).tolist()
    ([3.0, 1.0], [0.02, 0.03], [0.0006, 0.0009])
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"returns: one run's returns, a 1-D array (got shape {r.shape})")
    if blocks < 1:
        raise ValueError(f"blocks: at least 1 (got {blocks})")
    n, total, sumsq = np.zeros(blocks), np.zeros(blocks), np.zeros(blocks)
    for i, part in enumerate(np.array_split(r, blocks)):
        kept = part[~np.isnan(part)]
        n[i], total[i], sumsq[i] = len(kept), kept.sum(), (kept * kept).sum()
    return n, total, sumsq


def pbo_from_returns(
    returns: np.ndarray, partitions: int = 16, *, periods_per_year: float = 1.0
) -> Overfitting:
    """Return the PBO of the configurations whose per-bar returns are the columns of `returns`.

    `returns` is the T x N performance matrix (T bars, N configurations, the same bars for all).
    Each column is cut into `partitions` blocks (`blocks_from_returns`), one block per partition,
    then `pbo_from_blocks`. Raise ValueError with fewer than 2 columns or fewer rows than partitions.
    """
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"returns: a T x N matrix, bars by configurations (got shape {matrix.shape})")
    if matrix.shape[0] < partitions:
        raise ValueError(f"returns: {matrix.shape[0]} bars cannot fill {partitions} partitions")
    cut = [blocks_from_returns(matrix[:, j], partitions) for j in range(matrix.shape[1])]
    n, total, sumsq = (np.array([c[k] for c in cut]).reshape(-1, partitions) for k in range(3))
    return pbo_from_blocks(n, total, sumsq, partitions, periods_per_year=periods_per_year)


def pbo_from_blocks(
    n: np.ndarray,
    total: np.ndarray,
    sumsq: np.ndarray,
    partitions: int = 16,
    *,
    periods_per_year: float = 1.0,
) -> Overfitting:
    """Return the probability of backtest overfitting of N configurations given by block moments.

    `n`, `total` and `sumsq` are (N, B) arrays: for each configuration (a row), the count, sum and
    sum of squares of its per-bar returns in each of B consecutive blocks, the same bars for every
    configuration. `partitions` (S) must be even, at most `MAX_PARTITIONS`, and divide B.
    `periods_per_year` only annualises the Sharpe ratios returned; ranks and PBO do not depend on it.
    The definitions are the module's. Raise ValueError with fewer than 2 configurations, arrays of
    different or wrong shapes, negative counts or non-finite moments, or partitions that do not fit.
    """
    n, total, sumsq = _matrices(n, total, sumsq)
    configs, blocks = n.shape
    if configs < 2:
        raise ValueError(f"PBO needs at least 2 configurations to choose from (got {configs})")
    _check_partitions(partitions, blocks)
    per = blocks // partitions
    moments = [m.reshape(configs, partitions, per).sum(axis=2) for m in (n, total, sumsq)]  # (N, S)

    combos = np.array(list(itertools.combinations(range(partitions), partitions // 2)), dtype=np.int64)
    count = len(combos)
    member = np.zeros((count, partitions))
    member[np.arange(count)[:, None], combos] = 1.0
    # Combinations come in lexicographic order, so the complement of row i is row C - 1 - i: each
    # half's Sharpe ratios serve once in sample and once out of sample.
    if not np.array_equal(member + member[::-1], np.ones_like(member)):  # pragma: no cover - itertools' order
        raise AssertionError("combinations are not in lexicographic order")

    logits = np.empty(count)
    below_median = np.zeros(count, dtype=bool)
    chosen = np.empty(count, dtype=np.int64)
    in_sharpe, out_sharpe = np.empty(count), np.empty(count)
    half = count // 2
    step = max(1, _CHUNK_CELLS // configs)
    for start in range(0, half, step):
        rows = np.arange(start, min(start + step, half))
        mirror = count - 1 - rows
        first = pooled_sharpe(*(member[rows] @ m.T for m in moments))  # (rows, N)
        second = pooled_sharpe(*(member[mirror] @ m.T for m in moments))
        for where, inside, outside in ((rows, first, second), (mirror, second, first)):
            pick, lam, low, sr_in, sr_out = _choose_and_rank(inside, outside)
            chosen[where], logits[where], below_median[where] = pick, lam, low
            in_sharpe[where], out_sharpe[where] = sr_in, sr_out

    scale = math.sqrt(periods_per_year)
    in_sharpe, out_sharpe = in_sharpe * scale, out_sharpe * scale
    slope, intercept = _line(in_sharpe, out_sharpe)
    return Overfitting(
        pbo=float(below_median.mean()),
        logits=logits,
        combinations=count,
        configurations=configs,
        partitions=partitions,
        in_sample_sharpe=in_sharpe,
        out_of_sample_sharpe=out_sharpe,
        chosen=chosen,
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=float(np.mean(out_sharpe < 0.0)),  # NaN compares False: not a loss
    )


def _choose_and_rank(
    inside: np.ndarray, outside: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # inside, outside: (rows, N) Sharpe ratios. No ratio ranks below every ratio.
    configs = inside.shape[1]
    key_in = np.where(np.isnan(inside), -np.inf, inside)
    key_out = np.where(np.isnan(outside), -np.inf, outside)
    rows = np.arange(inside.shape[0])
    pick = np.argmax(key_in, axis=1)  # the first of equals
    picked = key_out[rows, pick][:, None]
    below = (key_out < picked).sum(axis=1)
    equal = (key_out == picked).sum(axis=1)  # itself included
    twice_rank = 2 * below + equal + 1  # 2r, the average rank of the equals, kept in integers
    omega = twice_rank / (2.0 * (configs + 1))
    logit = np.log(omega / (1.0 - omega))
    return pick, logit, twice_rank <= configs + 1, inside[rows, pick], outside[rows, pick]


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    # Least squares y = a + b x over the finite pairs; NaNs when x does not vary.
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return math.nan, math.nan
    xs, ys = x[keep], y[keep]
    dx = xs - xs.mean()
    spread = float(dx @ dx)
    if not spread > 0:
        return math.nan, math.nan
    slope = float(dx @ (ys - ys.mean())) / spread
    return slope, float(ys.mean() - slope * xs.mean())


def _matrices(
    n: np.ndarray, total: np.ndarray, sumsq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = (np.asarray(n, dtype=float), np.asarray(total, dtype=float), np.asarray(sumsq, dtype=float))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"n, sum, sumsq: the same (N, B) shape each (got {[a.shape for a in arrays]})")
    shape = arrays[0].shape
    if len(shape) != 2:
        raise ValueError(f"n, sum, sumsq: (N configurations, B blocks) arrays (got shape {shape})")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("n, sum, sumsq: every moment must be finite")
    if (arrays[0] < 0).any() or (arrays[2] < 0).any():
        raise ValueError("n, sumsq: counts and sums of squares cannot be negative")
    return arrays


def _check_partitions(partitions: int, blocks: int) -> None:
    if isinstance(partitions, bool) or not isinstance(partitions, int | np.integer):
        raise ValueError(f"partitions: an even whole number (got {partitions!r})")
    if partitions < 2 or partitions % 2:
        raise ValueError(f"partitions: an even number of at least 2 (got {partitions})")
    if partitions > MAX_PARTITIONS:
        raise ValueError(
            f"partitions: at most {MAX_PARTITIONS} (got {partitions}: "
            f"{math.comb(partitions, partitions // 2):,} combinations)"
        )
    if blocks % partitions:
        raise ValueError(f"partitions: {partitions} must divide the {blocks} blocks into equal partitions")

"""labkit.analysis.overfitting: the probability of backtest overfitting (Bailey, Borwein, López de
Prado and Zhu, 2015) by combinatorially symmetric cross-validation, on noise and on a planted edge.

For configurations of pure noise, the one chosen in sample is a function of the in-sample bars
only, and the out-of-sample ranks of N exchangeable configurations are uniform: each combination
has a chance of exactly 1/2 (N even) to put the chosen one at or below the median, so the PBO's
expectation over datasets is 0.5.
"""

from __future__ import annotations

import doctest
import itertools
import math
import time

import numpy as np
import pytest

from labkit.analysis import metrics, overfitting
from labkit.analysis.overfitting import (
    blocks_from_returns,
    pbo_from_blocks,
    pbo_from_returns,
    pooled_sharpe,
)


def _noise(seed: int, bars: int = 6_400, configs: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, (bars, configs))


def _blocks(matrix: np.ndarray, blocks: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cut = [blocks_from_returns(matrix[:, j], blocks) for j in range(matrix.shape[1])]
    n, total, sumsq = (np.array([c[k] for c in cut]) for k in range(3))
    return n, total, sumsq


def test_module_when_doctested_passes():
    # Arrange / Act
    result = doctest.testmod(overfitting)
    # Assert
    assert result.failed == 0 and result.attempted > 0


def test_pbo_when_configurations_are_pure_noise_is_near_one_half_or_above():
    # Arrange: 50 configurations of iid normal returns over 6,400 bars, a fixed seed
    returns = _noise(seed=0)
    # Act
    result = pbo_from_returns(returns)
    # Assert: why 0.35 and not 0.5: one dataset's PBO is itself a draw. Its 12,870 combinations
    # reuse the same bars, so they move together, and across noise datasets of this size the PBO
    # spreads with a standard deviation of about 0.18 around 0.5 (a quarter of datasets fall below
    # 0.33). This seed gives 0.374; the bound says "no better than chance", not "exactly 0.5",
    # and a planted edge (below) gives ~0. The mean over many datasets is checked next.
    assert result.pbo >= 0.35
    assert result.combinations == 12_870 and result.configurations == 50 and result.partitions == 16
    assert result.degradation_slope < 0  # in-sample luck is paid back out of sample


def test_pbo_when_averaged_over_noise_datasets_is_one_half():
    # Arrange: the expectation is exactly 0.5 for any number of partitions (N even; see the module
    # docstring). Single datasets spread by ~0.2, so the mean needs many of them: 400 small ones
    # (320 bars, 20 configurations, 8 partitions: 70 combinations each) put its standard error
    # near 0.011; these seeds give 0.515.
    seeds = range(1_000, 1_400)
    # Act
    values = [pbo_from_returns(_noise(seed, bars=320, configs=20), partitions=8).pbo for seed in seeds]
    # Assert
    assert abs(float(np.mean(values)) - 0.5) < 0.04


def test_pbo_when_one_configuration_is_truly_better_is_near_zero():
    # Arrange: 49 noise configurations and one whose mean return is shifted by 0.3 standard
    # deviations a bar: over a partition's 400 bars its Sharpe (~0.3 a bar) is many standard
    # errors (0.05) above the best noise (~0.13)
    returns = _noise(seed=3)
    returns[:, 17] += 0.003
    # Act
    result = pbo_from_returns(returns)
    # Assert
    assert result.pbo < 0.2
    assert result.pbo == 0.0 and (result.chosen == 17).all()
    assert np.allclose(result.logits, math.log(50 / 1))  # rank N of N: ω = 50/51
    assert result.probability_of_loss == 0.0


def test_pbo_when_sixteen_partitions_counts_every_combination_and_is_fast_for_200_configurations():
    # Arrange: 200 configurations, each 6,400 bars in 64 blocks
    n, total, sumsq = _blocks(_noise(seed=5, configs=200))
    # Act
    start = time.perf_counter()
    result = pbo_from_blocks(n, total, sumsq, partitions=16)
    seconds = time.perf_counter() - start
    # Assert
    assert result.combinations == math.comb(16, 8) == 12_870
    assert len(result.logits) == len(result.chosen) == len(result.in_sample_sharpe) == 12_870
    assert seconds < 1.0, f"{seconds:.2f} s"


@pytest.mark.parametrize("partitions", [2, 4, 8, 16])
def test_pbo_when_partitions_vary_counts_c_of_s_half_combinations(partitions):
    # Arrange
    n, total, sumsq = _blocks(_noise(seed=6, bars=640, configs=5))
    # Act
    result = pbo_from_blocks(n, total, sumsq, partitions)
    # Assert
    assert result.combinations == math.comb(partitions, partitions // 2)


def test_pooled_sharpe_when_moments_are_summed_equals_numpy_sharpe_of_the_returns():
    # Arrange: fat tails and a drift, blocks of uneven length (6,401 bars in 64 blocks)
    r = np.random.default_rng(8).standard_t(4, 6_401) * 0.01 + 0.0004
    n, total, sumsq = blocks_from_returns(r, 64)
    expected = float(np.mean(r) / np.std(r, ddof=1))
    # Act
    pooled = float(pooled_sharpe(n.sum(), total.sum(), sumsq.sum()))
    # Assert
    assert pooled == pytest.approx(expected, abs=1e-12, rel=1e-12)
    assert pooled == pytest.approx(metrics.sharpe_ratio(r), abs=1e-12, rel=1e-12)


def test_pbo_when_computed_gives_the_exact_sharpe_of_the_concatenated_partitions():
    # Arrange: 4 partitions of 2 blocks each, 7 configurations
    returns = np.random.default_rng(9).normal(0.0002, 0.01, (800, 7))
    n, total, sumsq = _blocks(returns, blocks=8)
    parts = np.array_split(np.arange(800), 4)
    # Act
    result = pbo_from_blocks(n, total, sumsq, partitions=4, periods_per_year=252)
    # Assert: each combination's chosen configuration, its Sharpe in and out of sample, from the bars
    for i, inside in enumerate(itertools.combinations(range(4), 2)):
        rows_in = np.concatenate([parts[p] for p in inside])
        rows_out = np.concatenate([parts[p] for p in range(4) if p not in inside])
        sharpe_in = [metrics.sharpe_ratio(returns[rows_in, j], 252) for j in range(7)]
        chosen = int(np.argmax(sharpe_in))
        assert result.chosen[i] == chosen
        assert result.in_sample_sharpe[i] == pytest.approx(sharpe_in[chosen], abs=1e-12)
        assert result.out_of_sample_sharpe[i] == pytest.approx(
            metrics.sharpe_ratio(returns[rows_out, chosen], 252), abs=1e-12
        )


def test_pbo_when_every_configuration_is_the_same_ties_at_the_median_and_counts_as_overfit():
    # Arrange: three identical configurations: the first is chosen, all three tie out of sample
    column = np.random.default_rng(10).normal(0.0, 0.01, 640)
    returns = np.column_stack([column] * 3)
    # Act
    result = pbo_from_returns(returns)
    # Assert: average rank (1 + 2 + 3) / 3 = 2 = (N + 1) / 2, so ω = 1/2 and λ = 0
    assert (result.chosen == 0).all()
    assert np.allclose(result.logits, 0.0) and result.pbo == 1.0


def test_pbo_when_a_configuration_never_varies_ranks_it_lowest():
    # Arrange: a flat configuration (never trades: every return 0) beside a noisy one
    noisy = np.random.default_rng(11).normal(0.0, 0.01, 640)
    returns = np.column_stack([np.zeros(640), noisy])
    # Act
    result = pbo_from_returns(returns)
    # Assert: the noisy one is always chosen and always ranks above the flat one (rank 2 of 2)
    assert (result.chosen == 1).all()
    assert np.allclose(result.logits, math.log(2.0)) and result.pbo == 0.0


def test_pooled_sharpe_when_returns_never_differ_is_nan():
    # Arrange: constant non-zero returns leave only rounding in sumsq - sum²/n
    r = np.full(1_000, 0.0013)
    # Act
    sharpe = pooled_sharpe(np.array(1_000.0), r.sum(), (r * r).sum())
    # Assert
    assert math.isnan(float(sharpe))


def test_blocks_from_returns_when_fewer_returns_than_blocks_leaves_blocks_empty():
    # Arrange / Act
    n, total, sumsq = blocks_from_returns(np.array([0.01, 0.02, 0.03]), blocks=5)
    # Assert
    assert n.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert total.sum() == pytest.approx(0.06) and sumsq.sum() == pytest.approx(0.0014)


@pytest.mark.parametrize(
    ("shape", "partitions", "message"),
    [
        ((1, 64), 16, "at least 2 configurations"),
        ((0, 64), 16, "at least 2 configurations"),
        ((5, 64), 15, "even number"),
        ((5, 64), 0, "even number"),
        ((5, 60), 16, "must divide the 60 blocks"),
        ((5, 64), 32, "at most 20"),
        ((5, 64), 2.0, "whole number"),
    ],
)
def test_pbo_from_blocks_when_inputs_do_not_fit_raises_value_error(shape, partitions, message):
    # Arrange
    n = np.full(shape, 100.0)
    total, sumsq = np.zeros(shape), np.ones(shape)
    # Act / Assert
    with pytest.raises(ValueError, match=message):
        pbo_from_blocks(n, total, sumsq, partitions)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ((np.ones((3, 16)), np.ones((3, 16)), np.ones((3, 8))), "the same"),
        ((np.ones(16), np.ones(16), np.ones(16)), r"\(N configurations, B blocks\)"),
        ((np.ones((3, 16)), np.full((3, 16), np.nan), np.ones((3, 16))), "finite"),
        ((-np.ones((3, 16)), np.ones((3, 16)), np.ones((3, 16))), "cannot be negative"),
    ],
)
def test_pbo_from_blocks_when_moments_are_malformed_raises_value_error(arrays, message):
    with pytest.raises(ValueError, match=message):
        pbo_from_blocks(*arrays, partitions=4)


def test_pbo_from_returns_when_one_column_raises_value_error_naming_the_need_for_two():
    with pytest.raises(ValueError, match="PBO needs at least 2 configurations"):
        pbo_from_returns(np.zeros((640, 1)))


def test_pbo_from_returns_when_fewer_bars_than_partitions_raises_value_error():
    with pytest.raises(ValueError, match="cannot fill 16 partitions"):
        pbo_from_returns(np.zeros((10, 3)))

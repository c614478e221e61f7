from __future__ import annotations

import numpy as np
import pytest

from labkit.features.labels import forward_labels, purge, rows_needed, walk_forward_folds


def test_forward_labels_when_computed_leaves_the_last_horizon_rows_nan():
    # Act
    result = forward_labels(np.linspace(100.0, 120.0, 50), horizon=7, cost=0.0)
    # Assert
    assert np.isnan(result[-7:]).all() and np.isfinite(result[:-7]).all()
    assert result.dtype == np.float64


def test_forward_labels_when_moves_straddle_the_cost_marks_only_those_beating_it():
    # Arrange: cost 1%: +2% and +1.1% pay; +0.9%, 0% and -3% do not.
    close = np.array([100.0, 102.0, 103.122, 104.050098, 104.050098, 100.92859506, 101.0])
    # Act
    result = forward_labels(close, horizon=1, cost=0.01)
    # Assert
    np.testing.assert_array_equal(result, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, np.nan])


def test_forward_labels_when_horizon_two_compares_two_bars_ahead():
    # Arrange
    close = np.array([100.0, 90.0, 103.0, 104.0, 99.0])
    # Act
    result = forward_labels(close, horizon=2, cost=0.02)
    # Assert: 103/100 > 1.02; 104/90 > 1.02; 99/103 < 1.
    np.testing.assert_array_equal(result, [1.0, 1.0, 0.0, np.nan, np.nan])


def test_forward_labels_when_fewer_bars_than_horizon_are_all_nan():
    assert np.isnan(forward_labels(np.array([1.0, 2.0]), horizon=5, cost=0.0)).all()


@pytest.mark.parametrize(("horizon", "cost"), [(0, 0.0), (1.5, 0.0), (1, -0.1), (1, float("nan"))])
def test_forward_labels_when_settings_are_bad_raises(horizon, cost):
    with pytest.raises(ValueError):
        forward_labels(np.ones(10), horizon=horizon, cost=cost)


@pytest.mark.parametrize(
    ("n", "folds", "horizon", "min_train"), [(1_000, 5, 10, 300), (557, 5, 10, 500), (103, 3, 1, 50)]
)
def test_walk_forward_folds_when_made_never_train_on_a_label_that_sees_the_test_block(
    n, folds, horizon, min_train
):
    # Act
    result = walk_forward_folds(n, folds, horizon, min_train)
    # Assert
    assert [f.index for f in result] == list(range(folds))
    sizes = {f.test.stop - f.test.start for f in result}
    assert len(sizes) == 1 and sizes.pop() >= horizon + 1
    assert result[0].test.start >= min_train and result[-1].test.stop == n
    for fold, after in zip(result, result[1:], strict=False):
        assert fold.test.stop == after.test.start  # consecutive blocks
    for fold in result:
        start = fold.test.start
        assert fold.train.max() < start  # trained only before the block
        # Each training row's label window [t, t + horizon] ends before the block starts.
        assert (fold.train + horizon < start).all()
        assert fold.train.tolist() == list(range(start - horizon))  # everything else is kept


def test_walk_forward_folds_when_n_too_small_raises_naming_the_rows_needed():
    # Arrange
    needed = rows_needed(folds=5, horizon=10, min_train=500)
    # Act / Assert
    walk_forward_folds(needed, 5, 10, 500)
    with pytest.raises(ValueError, match=f"need at least {needed} rows .*; got {needed - 1}"):
        walk_forward_folds(needed - 1, 5, 10, 500)


@pytest.mark.parametrize(
    ("folds", "horizon", "min_train", "message"),
    [(0, 1, 10, "folds must be"), (2, 0, 10, "horizon must be"), (2, 10, 10, "must exceed horizon")],
)
def test_walk_forward_folds_when_settings_are_bad_raises(folds, horizon, min_train, message):
    with pytest.raises(ValueError, match=message):
        walk_forward_folds(1_000, folds, horizon, min_train)


def test_purge_when_candidates_follow_the_block_embargoes_the_horizon_after_it():
    # Arrange: a scheme that trains on both sides of the block [50, 60).
    candidates = np.arange(100)
    # Act
    result = purge(candidates, slice(50, 60), horizon=5)
    # Assert
    assert result.tolist() == list(range(45)) + list(range(65, 100))

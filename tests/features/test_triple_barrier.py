"""Triple-barrier labels, their uniqueness weights, and purging by each label's own end."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.features.labels import average_uniqueness, purge, triple_barrier_labels, walk_forward_folds


def _bars(high, low, open_=None):
    # Closes all 100 and vol 1: with multiples 2 the barriers sit at 102 and 98 for every bar.
    high, low = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
    close = np.full(len(high), 100.0)
    opens = close.copy() if open_ is None else np.asarray(open_, dtype=float)
    return opens, high, low, close, np.ones(len(high))


def _label(high, low, open_=None, horizon=3):
    return triple_barrier_labels(*_bars(high, low, open_), horizon=horizon, profit_take=2.0, stop_loss=2.0)


def test_triple_barrier_when_the_upper_barrier_is_reached_first_labels_profit_and_ends_there():
    # Act: bar 2 reaches 102 before bar 3 reaches 98.
    result = _label([100, 101, 102.5, 100, 100, 100], [100, 99, 99, 97, 100, 100])
    # Assert
    assert result.label[0] == 1.0 and result.end[0] == 2.0


def test_triple_barrier_when_the_lower_barrier_is_reached_first_labels_stop_and_ends_there():
    result = _label([100, 101, 101, 103, 100, 100], [100, 97.5, 99, 99, 100, 100])
    assert result.label[0] == -1.0 and result.end[0] == 1.0


def test_triple_barrier_when_one_bar_reaches_both_counts_the_stop_as_the_engine_does():
    # Arrange: bar 1 spans 97..103 and opens inside the barriers.
    result = _label([100, 103, 100, 100, 100], [100, 97, 100, 100, 100])
    assert result.label[0] == -1.0 and result.end[0] == 1.0


def test_triple_barrier_when_a_bar_gaps_above_the_target_and_then_falls_counts_the_profit():
    # The engine fills a gap through the take-profit at the open, before it looks at the range.
    result = _label([100, 104, 100, 100, 100], [100, 97, 100, 100, 100], open_=[100, 103, 100, 100, 100])
    assert result.label[0] == 1.0


def test_triple_barrier_when_no_barrier_is_reached_labels_zero_at_the_vertical_barrier():
    result = _label([100, 101, 101.9, 101, 100, 100], [100, 99, 98.1, 99, 100, 100])
    assert result.label[0] == 0.0 and result.end[0] == 3.0


def test_triple_barrier_when_the_future_or_vol_is_unknown_is_nan():
    # Arrange
    opens, high, low, close, vol = _bars([100] * 8, [100] * 8)
    vol[1] = np.nan
    # Act
    result = triple_barrier_labels(opens, high, low, close, vol, horizon=3, profit_take=1.0, stop_loss=1.0)
    # Assert
    assert np.isnan(result.label[[1, 5, 6, 7]]).all() and np.isnan(result.end[[1, 5, 6, 7]]).all()
    assert (result.label[[0, 2, 3, 4]] == 0.0).all()


def test_triple_barrier_when_bars_after_the_horizon_change_no_label_changes():
    # Arrange: a random walk, then the same with every bar after t + horizon replaced.
    rng = np.random.default_rng(7)
    n, horizon = 400, 10
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    high, low = close * 1.004, close * 0.996
    vol = np.full(n, 0.8)
    base = triple_barrier_labels(close, high, low, close, vol, horizon, 1.5, 1.0)
    for t in (0, 57, 200, 388):
        changed = [a.copy() for a in (close, high, low, close)]
        for a in changed:
            a[t + horizon + 1 :] = rng.uniform(50, 150, n - t - horizon - 1)
        # Act
        result = triple_barrier_labels(*changed, vol, horizon, 1.5, 1.0)
        # Assert
        assert result.label[t] == base.label[t] and result.end[t] == base.end[t]
        assert t < result.end[t] <= t + horizon
    assert {-1.0, 0.0, 1.0} <= set(base.label[~np.isnan(base.label)].tolist())


def test_triple_barrier_when_a_million_bars_are_labelled_takes_under_three_seconds():
    import time

    rng = np.random.default_rng(1)
    n = 1_000_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    high, low = close * 1.0005, close * 0.9995
    vol = np.full(n, 0.1)
    started = time.perf_counter()
    result = triple_barrier_labels(close, high, low, close, vol, 60, 2.0, 2.0)
    assert time.perf_counter() - started < 3.0 and np.isfinite(result.label[:-60]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon"),
        ({"profit_take": 0.0}, "profit_take"),
        ({"stop_loss": float("nan")}, "stop_loss"),
    ],
)
def test_triple_barrier_when_settings_are_bad_raises_naming_them(kwargs, message):
    settings = {"horizon": 3, "profit_take": 2.0, "stop_loss": 2.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        triple_barrier_labels(*_bars([100] * 5, [100] * 5), **settings)


def test_average_uniqueness_when_two_labels_share_half_their_span_weighs_each_three_quarters():
    # Arrange: [0, 3] and [2, 5] share bars 2 and 3; a third label [8, 9] shares nothing.
    # Act
    result = average_uniqueness(np.array([0, 2, 8]), np.array([3, 5, 9]))
    # Assert: (1 + 1 + 1/2 + 1/2) / 4 each for the pair.
    np.testing.assert_allclose(result, [0.75, 0.75, 1.0])


def test_average_uniqueness_when_labels_cover_the_same_bars_splits_them():
    np.testing.assert_allclose(average_uniqueness(np.array([4, 4, 4]), np.array([6, 6, 6])), [1 / 3] * 3)


def test_purge_when_a_label_ends_before_the_test_block_keeps_it_though_it_started_within_horizon():
    # Arrange: horizon 5, test block from row 20; row 17's label hit a barrier at row 18.
    ends = np.arange(30) + 5
    ends[17] = 18
    # Act
    kept = purge(np.arange(20), slice(20, 25), horizon=5, ends=ends)
    # Assert
    assert 17 in kept and 16 not in kept and 18 not in kept
    assert kept.tolist() == [*range(15), 17]


def test_walk_forward_folds_when_ends_are_horizon_on_match_the_folds_without_them():
    # Sign labels end `horizon` rows on: purging by their end changes nothing.
    plain = walk_forward_folds(1_000, 4, 10, 300)
    by_end = walk_forward_folds(1_000, 4, 10, 300, ends=np.arange(1_000) + 10)
    for a, b in zip(plain, by_end, strict=True):
        assert a.test == b.test and a.train.tolist() == b.train.tolist()

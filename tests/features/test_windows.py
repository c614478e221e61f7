"""Both ways of reducing windows (shifted slices, gathered rows) give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.features import windows
from labkit.features.windows import rolling_dot, rolling_max, rolling_moments, rolling_std, rolling_sum

ROLLING = {
    "sum": lambda x, w: rolling_sum(x, w),
    "dot": lambda x, w: rolling_dot(x, np.linspace(0.5, 1.5, w) / w),
    "max": lambda x, w: rolling_max(x, w),
    "moments": lambda x, w: np.concatenate(rolling_moments(x, w)),
    "std": lambda x, w: rolling_std(x, w, ddof=1),
}


@pytest.mark.parametrize(
    ("kind", "window"),
    # A sample standard deviation needs two values.
    [(k, w) for k in sorted(ROLLING) for w in (1, 2, 14, 60) if (k, w) != ("std", 1)],
)
def test_rolling_when_series_is_long_matches_each_window_alone_bit_for_bit(kind, window):
    # Arrange: long enough that the series takes the shifted-slice path, each window the gathered one.
    values = np.random.default_rng(window).lognormal(0.0, 1.0, 5_000)
    assert len(values) * window > windows._GATHER_LIMIT or window == 1
    # Act
    series = ROLLING[kind](values, window)
    alone = [ROLLING[kind](values[t - window + 1 : t + 1], window) for t in range(window - 1, 5_000, 97)]
    # Assert
    step = len(series) // (len(values) - window + 1)  # moments returns two halves
    for i, t in enumerate(range(window - 1, 5_000, 97)):
        expected = series[t - window + 1 :: len(values) - window + 1][:step]
        assert alone[i].tolist() == expected.tolist()


def test_rolling_when_input_shorter_than_window_gives_nothing():
    assert rolling_sum(np.ones(3), 5).shape == (0,) and rolling_max(np.ones(3), 5).shape == (0,)


def test_rolling_when_window_is_zero_raises():
    with pytest.raises(ValueError, match="at least 1 bar"):
        rolling_sum(np.ones(3), 0)
    with pytest.raises(ValueError, match="needs a window above 1"):
        rolling_std(np.ones(3), 1, ddof=1)

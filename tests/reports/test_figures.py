"""Report figures: a long curve is drawn from few points without losing a peak or a trough."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.reports import figures


def test_envelope_when_the_curve_is_long_keeps_every_extreme_and_both_ends():
    # Arrange: a random walk with one deep, one-bar trough planted inside a column
    rng = np.random.default_rng(7)
    y = np.cumsum(rng.normal(size=1_000_003))
    y[612_345] = y.min() - 50.0
    x = np.arange(len(y), dtype=float)
    # Act
    ex, ey = figures.envelope(x, y, width=1500)
    # Assert
    assert len(ey) <= 4 * 1500 and np.all(np.diff(ex) > 0)
    assert ey.min() == y.min() and ey.max() == y.max() and 612_345.0 in ex
    assert (ex[0], ex[-1]) == (0.0, len(y) - 1.0) and (ey[0], ey[-1]) == (y[0], y[-1])
    column = len(y) // 1500 + 1  # every column's lowest point survives, not only the curve's
    for start in range(0, len(y), column * 97):
        chunk = slice(start, min(start + column, len(y)))
        assert y[chunk].min() in ey[(ex >= chunk.start) & (ex < chunk.stop)]


def test_envelope_when_the_curve_is_short_or_has_gaps_draws_it_as_it_is():
    # Arrange
    x = np.arange(5000, dtype=float)
    y = np.where(x < 3000, np.nan, x)  # a rolling figure is NaN until its window fills
    # Act
    short = figures.envelope(x[:100], y[:100])
    long_x, long_y = figures.envelope(np.arange(50_000.0), np.tile(y, 10), width=1000)
    # Assert
    assert np.array_equal(short[0], x[:100]) and np.isnan(short[1]).all()
    assert np.nanmax(long_y) == 4999 and np.nanmin(long_y) == 3000


def test_times_when_given_utc_timestamps_are_matplotlib_days_since_the_epoch():
    # Arrange
    ts = pd.Series(pd.to_datetime(["1970-01-02T00:00:00Z", "2026-01-05T12:00:00Z"], utc=True))
    # Act
    days = figures.times(ts)
    # Assert
    assert days.tolist() == [1.0, (pd.Timestamp("2026-01-05T12:00Z") - pd.Timestamp("1970-01-01T00:00Z")).days + 0.5]

"""Bars for the feature tests: the fixture CSV, and random bars with flat stretches and zero volume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.data.bars import make_bars, validate_bars
from labkit.data.files import read_bar_file
from tests import stubs

# Stretches longer than the longest lookback (61), so every window inside them is entirely flat.
FLAT = slice(500, 700)
SILENT = slice(800, 900)


def random_bars(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """Return valid bars: a random walk with a flat stretch (FLAT), a silent one (SILENT) and gaps."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    close[FLAT] = close[FLAT.start - 1]
    open_ = np.concatenate([[close[0]], close[:-1]])
    # Some bars gap: they open away from the previous close, as after a weekend.
    gaps = rng.random(n) < 0.02
    open_[gaps] *= np.exp(rng.normal(0.0, 0.01, gaps.sum()))
    open_[FLAT] = close[FLAT]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    high[FLAT] = low[FLAT] = close[FLAT]
    volume = rng.gamma(2.0, 50.0, n)
    volume[rng.random(n) < 0.05] = 0.0
    volume[SILENT] = 0.0
    step = np.where(rng.random(n) < 0.01, 3_600_000, 60_000)  # a few hour-long holes in time
    times = stubs.T0 + np.concatenate([[0], np.cumsum(step[1:])])
    bars = make_bars(times, {"open": open_, "high": high, "low": low, "close": close, "volume": volume})
    return validate_bars(bars)


@pytest.fixture(scope="session")
def synthetic() -> pd.DataFrame:
    return random_bars()


@pytest.fixture(scope="session")
def fixture_bars() -> pd.DataFrame:
    return read_bar_file(stubs.FIXTURE_CSV)

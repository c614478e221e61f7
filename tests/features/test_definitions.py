from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.data.bars import make_bars, validate_bars
from labkit.features.definitions import FEATURES, adx, adx_lookback, ema_weights
from labkit.features.featureset import FeatureSet, bar_columns
from tests import stubs
from tests.features.conftest import random_bars

# --- reference formulas, written the plain pandas way, on the fixture CSV ---


def _close(bars: pd.DataFrame) -> pd.Series:
    return bars["close"]


def _true_range(bars: pd.DataFrame) -> pd.Series:
    prev = bars["close"].shift(1)
    return pd.concat(
        [bars["high"] - bars["low"], (bars["high"] - prev).abs(), (bars["low"] - prev).abs()], axis=1
    ).max(axis=1, skipna=False)


def _rsi(bars: pd.DataFrame) -> pd.Series:
    change = _close(bars).diff()
    gain, loss = change.clip(lower=0).rolling(14).mean(), (-change).clip(lower=0).rolling(14).mean()
    return gain / (gain + loss)


def _pctb(bars: pd.DataFrame) -> pd.Series:
    mean, std = _close(bars).rolling(20).mean(), _close(bars).rolling(20).std(ddof=0)
    lower, upper = mean - 2 * std, mean + 2 * std
    return (_close(bars) - lower) / (upper - lower)


def _adx_via_di(bars: pd.DataFrame, window: int = 14) -> pd.Series:
    # The textbook route through +DI and -DI (the true range does not cancel here).
    up, down = bars["high"].diff(), -bars["low"].diff()
    plus = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    minus = down.where((down > up) & (down > 0), 0.0).where(down.notna())
    tr = _true_range(bars).rolling(window).sum()
    plus_di, minus_di = 100 * plus.rolling(window).sum() / tr, 100 * minus.rolling(window).sum() / tr
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    return dx.rolling(window).mean()


def _weighted(values: pd.Series, span: int) -> pd.Series:
    return values.rolling(span).apply(lambda w: float(w @ ema_weights(span)), raw=True)


def _macd(bars: pd.DataFrame) -> pd.Series:
    return (_weighted(_close(bars), 12) - _weighted(_close(bars), 26)) / _close(bars)


REFERENCES = {
    "ret_1": lambda b: np.log(_close(b) / _close(b).shift(1)),
    "ret_15": lambda b: np.log(_close(b) / _close(b).shift(15)),
    "ret_60": lambda b: np.log(_close(b) / _close(b).shift(60)),
    "vol_15": lambda b: np.log(_close(b)).diff().rolling(15).std(ddof=1),
    "vol_60": lambda b: np.log(_close(b)).diff().rolling(60).std(ddof=1),
    "rsi_14": _rsi,
    "macd": _macd,
    "macd_signal": lambda b: _weighted(_macd(b), 9),
    "atr_14": lambda b: _true_range(b).rolling(14).mean() / _close(b),
    "bb_pctb_20": _pctb,
    "adx_14": _adx_via_di,
    "volume_z_60": lambda b: (b["volume"] - b["volume"].rolling(60).mean()) / b["volume"].rolling(60).std(),
    "range_pos_60": lambda b: (
        (_close(b) - b["low"].rolling(60).min()) / (b["high"].rolling(60).max() - b["low"].rolling(60).min())
    ),
    "hl_range": lambda b: (b["high"] - b["low"]) / _close(b),
    "close_sma_20": lambda b: _close(b) / _close(b).rolling(20).mean() - 1,
    "close_sma_60": lambda b: _close(b) / _close(b).rolling(60).mean() - 1,
    "tod_sin": lambda b: pd.Series(np.sin(2 * np.pi * (b.index.hour * 60 + b.index.minute) / 1440), b.index),
    "dow_cos": lambda b: pd.Series(np.cos(2 * np.pi * b.index.day_of_week / 7), b.index),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_feature_when_computed_on_fixture_matches_the_plain_pandas_formula(name, fixture_bars):
    # Arrange
    expected = REFERENCES[name](fixture_bars).to_numpy(dtype="float64")
    # Act
    result = FEATURES[name].compute(bar_columns(fixture_bars))
    # Assert
    np.testing.assert_allclose(result, expected, rtol=1e-7, atol=1e-10)
    assert np.isnan(result).sum() == FEATURES[name].lookback - 1


def test_features_when_listed_cover_about_twenty_with_the_documented_lookbacks():
    expected = {
        "ret_1": 2, "ret_5": 6, "ret_15": 16, "ret_60": 61, "vol_15": 16, "vol_60": 61, "rsi_14": 15,
        "macd": 26, "macd_signal": 34, "atr_14": 15, "bb_pctb_20": 20, "adx_14": 28, "volume_z_60": 60,
        "range_pos_60": 60, "hl_range": 1, "close_sma_20": 20, "close_sma_60": 60,
        "tod_sin": 1, "tod_cos": 1, "dow_sin": 1, "dow_cos": 1,
    }  # fmt: skip
    assert {name: f.lookback for name, f in FEATURES.items()} == expected
    assert all(f.about and "\n" not in f.about for f in FEATURES.values())


# --- past only: no value depends on a later bar, nor on how much history came before ---


@st.composite
def _paths(draw: st.DrawFn, size: int) -> tuple[np.ndarray, ...]:
    moves = draw(st.lists(st.floats(-0.05, 0.05), min_size=size, max_size=size))
    # Zero moves and zero wicks are likely, so flat stretches and zero ranges are tried too.
    flat = st.one_of(st.just(0.0), st.floats(0.0, 0.03))
    wicks = draw(st.lists(st.tuples(flat, flat, flat), min_size=size, max_size=size))
    volumes = draw(st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e6)), min_size=size, max_size=size))
    start = draw(st.floats(0.01, 1e5))
    close = start * np.exp(np.cumsum(moves))
    gap, up, down = (np.array([w[k] for w in wicks]) for k in range(3))
    open_ = close * np.exp(-np.asarray(moves)) * (1 + gap)
    high = np.maximum(open_, close) * (1 + up)
    low = np.minimum(open_, close) * (1 - down)
    return open_, high, low, close, np.asarray(volumes)


def _bars(parts: tuple[np.ndarray, ...]) -> pd.DataFrame:
    o, h, low, c, v = parts
    times = stubs.T0 + stubs.MINUTE * np.arange(len(c), dtype="int64")
    return validate_bars(make_bars(times, {"open": o, "high": h, "low": low, "close": c, "volume": v}))


@st.composite
def _past_and_two_futures(draw: st.DrawFn) -> tuple[tuple[np.ndarray, ...], ...]:
    past, future = draw(st.integers(1, 100)), draw(st.integers(1, 40))
    return draw(_paths(past)), draw(_paths(future)), draw(_paths(future))


@settings(max_examples=50, deadline=None, database=None)
@given(_past_and_two_futures())
def test_compute_when_bars_after_t_change_never_changes_features_up_to_t(paths):
    # Arrange
    past, future, other = paths
    t = len(past[0])
    one = _bars(tuple(np.concatenate([p, f]) for p, f in zip(past, future, strict=True)))
    two = _bars(tuple(np.concatenate([p, f]) for p, f in zip(past, other, strict=True)))
    fs = FeatureSet()
    # Act
    first, second = fs.compute(one), fs.compute(two)
    # Assert
    np.testing.assert_array_equal(first[:t], second[:t])
    np.testing.assert_allclose(fs.compute_last(one.iloc[:t]), first[t - 1], rtol=1e-9, atol=1e-9)


def test_compute_when_older_history_changes_keeps_every_value_after_the_lookback_bit_for_bit():
    # The house rule: a bar's value never depends on how much history came before its window.
    # Arrange: the same 3,000 bars, once alone and once after 5,000 bars at a very different level.
    bars = random_bars()
    older = random_bars(n=5_000, seed=9)
    older[["open", "high", "low", "close"]] *= 1e6
    older.index = older.index - (older.index[-1] - bars.index[0]) - pd.Timedelta(minutes=1)
    fs = FeatureSet()
    # Act
    alone = fs.compute(bars)
    after = fs.compute(pd.concat([older, bars]))[len(older) :]
    # Assert
    np.testing.assert_array_equal(alone[fs.warmup - 1 :], after[fs.warmup - 1 :])


def test_feature_when_fed_exactly_its_lookback_gives_one_value_and_one_fewer_bar_gives_none(synthetic):
    for feature in FEATURES.values():
        window = {c: synthetic[c].to_numpy()[-feature.lookback :] for c in synthetic}
        window["ts"] = np.arange(feature.lookback, dtype="int64") * stubs.MINUTE
        shorter = {c: v[1:] for c, v in window.items()}
        assert len(feature.complete(window)) == 1, feature.name
        assert len(feature.complete(shorter)) == 0, feature.name


def test_feature_when_its_formula_reads_more_bars_than_declared_raises():
    # Arrange
    wrong = FEATURES["ret_5"].__class__("ret_5", 3, "declared too short", FEATURES["ret_5"].values)
    # Act / Assert
    with pytest.raises(RuntimeError, match="declared lookback"):
        wrong.compute({"close": np.arange(1.0, 11.0)})


# --- adx, which the scalping gate calls with its own window ---


@pytest.mark.parametrize("window", [2, 7, 14, 30])
def test_adx_when_any_window_stays_in_0_to_100_and_warms_up_for_2_windows(window, synthetic):
    # Act
    result = adx(
        synthetic["high"].to_numpy(), synthetic["low"].to_numpy(), synthetic["close"].to_numpy(), window
    )
    # Assert
    assert adx_lookback(window) == 2 * window
    assert np.isnan(result[: 2 * window - 1]).all()
    assert ((result[2 * window - 1 :] >= 0) & (result[2 * window - 1 :] <= 100)).all()


def test_adx_when_trend_is_steady_is_high_and_when_prices_zigzag_is_low():
    # Arrange
    rising = np.linspace(100.0, 130.0, 60)
    zigzag = 100.0 + np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    # Act
    trend = adx(rising + 0.2, rising - 0.2, rising, 14)[-1]
    chop = adx(zigzag + 0.2, zigzag - 0.2, zigzag, 14)[-1]
    # Assert
    assert trend == 100.0 and chop < 10.0


def test_ema_weights_when_made_sum_to_one_and_weigh_the_newest_bar_most():
    for span in (9, 12, 26):
        weights = ema_weights(span)
        assert len(weights) == span and abs(weights.sum() - 1.0) < 1e-15
        assert (np.diff(weights) > 0).all()


@pytest.mark.parametrize("module", ["windows", "definitions", "featureset", "schema", "labels", "drift"])
def test_features_modules_when_doctested_examples_hold(module):
    result = doctest.testmod(importlib.import_module(f"labkit.features.{module}"))
    assert result.failed == 0 and result.attempted > 0

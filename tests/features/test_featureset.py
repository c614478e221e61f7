from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.data.bars import empty_bars
from labkit.features.definitions import DEFAULT_NAMES, FEATURES
from labkit.features.featureset import FeatureSet, bar_columns, default_feature_set
from tests import stubs
from tests.features.conftest import FLAT, SILENT, random_bars

# --- one definition, two speeds: the newest bar alone gives the row the whole history gives ---


def _assert_last_matches_batch(bars: pd.DataFrame, rows: range | list[int]) -> None:
    fs = FeatureSet()
    batch = fs.compute(bars)
    for t in rows:
        last = fs.compute_last(bars.iloc[: t + 1])
        np.testing.assert_allclose(last, batch[t], rtol=1e-9, atol=1e-9, err_msg=f"row {t}")


def test_compute_last_when_random_bars_with_flat_and_silent_stretches_matches_compute(synthetic):
    # Every row: the warm-up, the flat and silent stretches and their edges, the gaps in time.
    _assert_last_matches_batch(synthetic, range(len(synthetic)))


def test_compute_last_when_fixture_csv_matches_compute(fixture_bars):
    _assert_last_matches_batch(fixture_bars, range(len(fixture_bars)))


def test_compute_last_when_history_is_long_reads_only_the_trailing_warmup_bars(synthetic):
    # Arrange: bars far back are replaced by absurd values; the newest warm-up window is kept.
    fs = FeatureSet()
    wild = synthetic.copy()
    head = slice(0, len(wild) - fs.warmup)
    wild.iloc[head, :4] = 1e9
    wild.iloc[head, 4] = 0.0
    # Act
    result = fs.compute_last(wild)
    # Assert
    np.testing.assert_array_equal(result, fs.compute_last(synthetic))


def test_compute_last_when_no_bars_raises():
    with pytest.raises(ValueError, match="at least one bar"):
        FeatureSet().compute_last(empty_bars())


def test_compute_when_no_bars_gives_no_rows():
    assert FeatureSet().compute(empty_bars()).shape == (0, 21)


def test_compute_last_when_fewer_bars_than_a_lookback_gives_nan_for_that_feature():
    # Arrange
    fs = FeatureSet(["ret_1", "ret_5", "hl_range"])
    # Act
    result = fs.compute_last(stubs.bars(n=3))
    # Assert
    assert np.isfinite(result[0]) and np.isnan(result[1]) and np.isfinite(result[2])


# --- warm-up: NaN exactly there, never after, also on flat prices and zero volume ---


def test_compute_when_random_bars_is_nan_exactly_in_each_features_warmup(synthetic):
    # Arrange
    fs = FeatureSet()
    # Act
    result = fs.compute(synthetic)
    # Assert
    for j, feature in enumerate(fs.features):
        nan_rows = np.flatnonzero(np.isnan(result[:, j]))
        assert nan_rows.tolist() == list(range(feature.lookback - 1)), feature.name
    assert np.isfinite(result[fs.warmup - 1 :]).all()


def test_compute_when_prices_flat_and_volume_zero_gives_the_neutral_values():
    # Arrange
    bars = stubs.bars(np.full(200, 50.0), opens=np.full(200, 50.0))
    bars["high"] = bars["low"] = 50.0
    bars["volume"] = 0.0
    fs = FeatureSet()
    # Act
    rows = fs.frame(bars).iloc[fs.warmup - 1 :]
    # Assert
    assert np.isfinite(rows.to_numpy()).all()
    neutral = {"rsi_14": 0.5, "bb_pctb_20": 0.5, "range_pos_60": 0.5, "volume_z_60": 0.0, "adx_14": 0.0}
    zero = ["ret_1", "ret_5", "ret_15", "ret_60", "vol_15", "vol_60", "atr_14", "hl_range"]
    for name, value in {**neutral, **dict.fromkeys(zero, 0.0)}.items():
        assert (rows[name] == value).all(), name
    for name in ("macd", "macd_signal", "close_sma_20", "close_sma_60"):  # weights summing to 1 +- rounding
        assert np.abs(rows[name]).max() < 1e-12, name


def test_compute_when_flat_and_silent_stretches_gives_neutral_values_inside_them(synthetic):
    # Arrange
    frame = FeatureSet().frame(synthetic)
    flat = frame.iloc[FLAT.start + 61 : FLAT.stop]
    silent = frame.iloc[SILENT.start + 60 : SILENT.stop]
    # Act / Assert
    assert (flat[["rsi_14", "bb_pctb_20", "range_pos_60"]] == 0.5).all().all()
    assert (flat[["vol_60", "atr_14", "adx_14", "hl_range", "ret_60"]] == 0.0).all().all()
    assert (silent["volume_z_60"] == 0.0).all()


def test_missing_when_bars_arrive_counts_down_to_zero():
    # Arrange
    fs = FeatureSet()
    bars = stubs.bars(n=fs.warmup + 5)
    # Act
    result = [fs.missing(bars.iloc[:k]) for k in range(len(bars) + 1)]
    # Assert
    assert result[0] == fs.warmup == 61
    assert result == [max(fs.warmup - k, 0) for k in range(len(bars) + 1)]
    assert np.isfinite(fs.compute(bars.iloc[: fs.warmup])[-1]).all()
    assert np.isnan(fs.compute(bars.iloc[: fs.warmup - 1])[-1]).any()


# --- the set itself ---


def test_featureset_when_default_has_every_feature_in_order():
    # Act
    fs = default_feature_set()
    # Assert
    assert fs.names == DEFAULT_NAMES == tuple(FEATURES)
    assert len(fs) == 21
    assert fs.schema.lookbacks == tuple(FEATURES[n].lookback for n in fs.names)
    assert fs.warmup == max(fs.schema.lookbacks)


def test_featureset_when_a_name_is_unknown_raises_naming_it_and_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown feature\(s\) 'ret_2'.*known features: ret_1, ret_5"):
        FeatureSet(["ret_1", "ret_2"])


@pytest.mark.parametrize(
    ("names", "message"),
    [(["ret_1", "ret_1"], "more than once: ret_1"), ([], "needs a feature"), ("ret_1", "as a list")],
)
def test_featureset_when_names_are_bad_raises(names, message):
    with pytest.raises(ValueError, match=message):
        FeatureSet(names)


def test_frame_when_computed_has_the_names_as_columns_and_the_bars_index(fixture_bars):
    # Arrange
    fs = FeatureSet(["rsi_14", "ret_1"])
    # Act
    result = fs.frame(fixture_bars)
    # Assert
    assert list(result.columns) == ["rsi_14", "ret_1"]
    assert result.index.equals(fixture_bars.index)
    np.testing.assert_array_equal(result.to_numpy(), fs.compute(fixture_bars))


def test_compute_when_a_subset_is_chosen_equals_those_columns_of_the_default(fixture_bars):
    # Arrange
    every = FeatureSet()
    some = FeatureSet(["adx_14", "ret_1", "vol_60"])
    # Act
    result = some.compute(fixture_bars)
    # Assert
    columns = [every.names.index(n) for n in some.names]
    np.testing.assert_array_equal(result, every.compute(fixture_bars)[:, columns])


def test_compute_when_columns_are_reordered_or_extra_gives_the_same_features(fixture_bars):
    # Arrange
    shuffled = fixture_bars[["volume", "close", "low", "high", "open"]].assign(note="x")
    fs = FeatureSet()
    # Act
    result = fs.compute(shuffled)
    # Assert
    np.testing.assert_array_equal(result, fs.compute(fixture_bars))
    np.testing.assert_array_equal(fs.compute_last(shuffled), fs.compute_last(fixture_bars))


def test_bar_columns_when_read_gives_epoch_milliseconds_and_float_prices(fixture_bars):
    # Act
    cols = bar_columns(fixture_bars, last=3)
    # Assert
    assert cols["ts"].dtype == np.int64 and cols["close"].dtype == np.float64
    assert cols["ts"].tolist() == [stubs.T0 + m * stubs.MINUTE for m in (597, 598, 599)]


def test_compute_when_times_of_day_and_week_known_gives_their_phases():
    # Arrange: Monday 2026-01-05 06:00 UTC, and Sunday 2026-01-11 18:00 UTC.
    times = [stubs.T0 + 6 * 3_600_000, stubs.T0 + 6 * 86_400_000 + 18 * 3_600_000]
    bars = pd.concat([stubs.bars(n=1, start=t) for t in times])
    fs = FeatureSet(["tod_sin", "tod_cos", "dow_sin", "dow_cos"])
    # Act
    result = fs.compute(bars)
    # Assert
    expected = [[1.0, 0.0, 0.0, 1.0], [-1.0, 0.0, np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)]]
    np.testing.assert_allclose(result, expected, atol=1e-12)


def test_compute_when_many_bars_has_one_row_each():
    # Arrange
    bars = random_bars(n=5_000, seed=3)
    # Act
    result = FeatureSet().compute(bars)
    # Assert
    assert result.shape == (5_000, 21) and result.dtype == np.float64 and result.flags.c_contiguous

"""Drift calibrated on the training data: a rolling PSI whole or in pieces, a threshold that is the
quantile it says, rarely crossed by more of the same market and crossed by a regime it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.features.drift import DriftCalibration, calibrate, profile, psi, rolling_psi

NAMES = ["a", "b", "tod_sin"]  # tod_sin is a clock: left out of the gated drift


def _market(rng, rows, scale=1.0):
    # Three columns of a stationary market; `scale` multiplies the two market columns' spread.
    values = rng.normal(size=(rows, 3))
    values[:, :2] *= scale
    return values


def test_rolling_psi_is_the_psi_of_each_window_and_the_same_whole_or_in_pieces():
    # Arrange
    rng = np.random.default_rng(1)
    prof = profile(_market(rng, 3000), NAMES)
    later = _market(rng, 400)
    later[150, 0] = np.nan  # a row without a feature: no full window through it
    window = 50
    # Act
    whole = rolling_psi(prof, later, window)
    pieces = [rolling_psi(prof, later[start:], window)[end - start] for start, end in ((0, 120), (300, 399))]
    # Assert
    for end in (window - 1, 120, 399):
        scores = psi(prof, later[end - window + 1 : end + 1])
        assert whole[end] == pytest.approx(max(scores["a"], scores["b"]))
    assert np.isnan(whole[: window - 1]).all()
    assert np.isnan(whole[150 : 150 + window]).all() and not np.isnan(whole[150 + window])
    assert pieces == [pytest.approx(whole[120]), pytest.approx(whole[399])]


def test_calibrate_when_100_windows_takes_the_99th_smallest_psi_as_q99():
    # Arrange
    rng = np.random.default_rng(2)
    train = _market(rng, 5049)
    prof = profile(train, NAMES)
    # Act
    found = calibrate(prof, train, 50, 0.99, stride=50)
    # Assert
    assert found is not None and found.windows == 100
    ends = np.arange(49, 5049, 50)
    scores = sorted(max(psi(prof, train[e - 49 : e + 1])[n] for n in ("a", "b")) for e in ends)
    assert found.threshold == pytest.approx(scores[98])
    assert found.threshold < scores[99]
    assert DriftCalibration.from_dict(found.to_dict()) == found
    assert found.describe() == "calibrated q0.99 on 100 training windows"


def test_calibrate_when_training_is_stationary_sets_a_low_threshold_rarely_crossed_by_the_same_market():
    # Arrange
    rng = np.random.default_rng(3)
    train = _market(rng, 20_000)
    prof = profile(train, NAMES)
    # Act
    found = calibrate(prof, train, 500, 0.99)
    same = rolling_psi(prof, _market(rng, 10_000), 500)[499:]
    # Assert
    assert found is not None and found.threshold < 0.1
    assert np.mean(same > found.threshold) < 0.02


def test_calibrate_when_volatility_is_five_times_the_training_refuses_every_window_of_it():
    # Arrange
    rng = np.random.default_rng(4)
    train = _market(rng, 20_000)
    prof = profile(train, NAMES)
    found = calibrate(prof, train, 500, 0.99)
    # Act
    wild = rolling_psi(prof, _market(rng, 2000, scale=5.0), 500)[499:]
    # Assert
    assert found is not None and (wild > found.threshold).all()


def test_calibrate_when_rows_hold_no_whole_window_returns_none():
    rng = np.random.default_rng(5)
    train = _market(rng, 100)
    assert calibrate(profile(train, NAMES), train, 200, 0.99) is None


@pytest.mark.parametrize(
    ("data", "field"),
    [({"window": 10, "quantile": 0.99}, "threshold"), ({"window": 0, "quantile": 0.99, "threshold": 1, "windows": 3}, "window")],
)  # fmt: skip
def test_drift_calibration_from_dict_when_broken_names_what_is_wrong(data, field):
    with pytest.raises(ValueError, match=field):
        DriftCalibration.from_dict(data)


def test_calibrate_when_given_parts_rolls_each_part_alone_as_each_symbol_is_judged():
    # Arrange: two symbols' rows, one calm and one wild; no window may join the two
    rng = np.random.default_rng(6)
    calm, wild = _market(rng, 1000), _market(rng, 1000, scale=5.0)
    prof = profile(np.concatenate([calm, wild]), NAMES)
    # Act
    found = calibrate(prof, [calm, wild], 100, 1.0, stride=100)
    # Assert
    alone = [calibrate(prof, part, 100, 1.0, stride=100) for part in (calm, wild)]
    assert found is not None and all(a is not None for a in alone)
    assert found.windows == 20 and found.threshold == max(a.threshold for a in alone)

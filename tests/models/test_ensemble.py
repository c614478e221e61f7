from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labkit.errors import ConfigError
from labkit.models.ensemble import Calibrator, Ensemble, log_loss, weights_from_log_loss
from labkit.models.members import make_member
from tests.models.conftest import FEATURES, SCHEMA, planted


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([0.68, 0.68], [0.5, 0.5]),
        ([0.68, 0.69], [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))]),
        ([0.68, math.log(2)], [1.0, 0.0]),  # exactly a coin flip: no weight
        ([0.68, math.log(2) - 1e-12], [1 / (1 + math.exp(-(math.log(2) - 1e-12 - 0.68) / 0.01)), None]),
        ([0.70, 0.71], [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))]),  # all bad: shared
        ([0.68, math.nan], [1.0, 0.0]),
    ],
)
def test_weights_from_log_loss_when_given_losses_follows_the_rule(losses, expected):
    # Act
    result = weights_from_log_loss(losses)
    # Assert
    assert result.sum() == pytest.approx(1.0, abs=1e-15)
    assert result[0] == pytest.approx(expected[0], rel=1e-12)
    if expected[1] is not None:
        assert result[1] == pytest.approx(expected[1], rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("losses", [[], [math.nan], [-0.1, 0.6]])
def test_weights_from_log_loss_when_losses_unusable_raises(losses):
    with pytest.raises(ConfigError, match="ensemble weights"):
        weights_from_log_loss(losses)


def test_ensemble_weights_when_a_member_is_useless_give_it_less(members):
    # Arrange: the same kind of member, fitted on labels unrelated to the rows
    X, y = planted(2_000, seed=0)
    noise = make_member("logistic", 0)
    noise.fit(X, np.random.default_rng(9).integers(0, 2, len(y)))
    useful = members["logistic"]
    test_X, test_y = planted(1_000, seed=4)
    losses = [log_loss(test_y, useful.predict_proba(test_X)), log_loss(test_y, noise.predict_proba(test_X))]
    # Act
    weights = weights_from_log_loss(losses)
    # Assert
    assert weights[0] > weights[1]
    assert weights[1] < 0.01


def test_calibrator_when_fitted_is_monotone_and_within_the_open_unit_interval():
    # Arrange
    rng = np.random.default_rng(0)
    p = rng.random(5_000)
    y = (rng.random(5_000) < p**2).astype(int)  # the averages overstate: calibration bends them
    # Act
    calibrator = Calibrator.fit(p, y)
    grid = calibrator.apply(np.linspace(-0.5, 1.5, 2_001))
    # Assert
    assert (np.diff(grid) >= 0).all()
    assert grid.min() >= 1 / 5_002 and grid.max() <= 1 - 1 / 5_002
    assert calibrator.apply_one(0.5) == pytest.approx(0.25, abs=0.06)


def test_calibrator_when_applied_one_by_one_equals_the_batch_exactly():
    # Arrange
    rng = np.random.default_rng(1)
    calibrator = Calibrator.fit(rng.random(2_000), rng.integers(0, 2, 2_000))
    p = np.concatenate([rng.random(1_000), [-1.0, 0.0, 1.0, 2.0], np.asarray(calibrator.x)])
    # Act
    one_by_one = np.array([calibrator.apply_one(v) for v in p])
    # Assert
    np.testing.assert_array_equal(one_by_one, calibrator.apply(p))


def test_calibrator_when_round_tripped_through_json_is_equal():
    # Arrange
    rng = np.random.default_rng(2)
    calibrator = Calibrator.fit(rng.random(500), rng.integers(0, 2, 500))
    # Act
    again = Calibrator.from_json(json.loads(json.dumps(calibrator.to_json())))
    # Assert
    assert again == calibrator


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "isotonic", "x": [0.0, 1.0], "y": [0.6, 0.4]}, "non-decreasing"),
        ({"method": "isotonic", "x": [0.0, 1.0], "y": [0.1]}, "same length"),
        ({"method": "isotonic", "x": [0.0, 1.0], "y": [0.1, 1.5]}, r"\[0, 1\]"),
        ({"method": "platt", "x": [0.0], "y": [0.5]}, "unknown"),
        ({"x": [0.0], "y": [0.5]}, "unreadable"),
    ],
)
def test_calibrator_when_points_are_not_a_monotone_map_refuses(data, message):
    with pytest.raises(ConfigError, match=message):
        Calibrator.from_json(data)


def test_ensemble_predict_one_when_compared_on_1000_rows_equals_predict_proba_exactly(ensemble):
    # Arrange
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1_000, FEATURES))
    # Act
    one_by_one = np.array([ensemble.predict_one(row) for row in X])
    # Assert
    np.testing.assert_array_equal(one_by_one, ensemble.predict_proba(X))


def test_ensemble_when_predicting_is_the_calibrated_weighted_average(ensemble):
    # Arrange
    X, _ = planted(100, seed=6)
    average = sum(w * m.predict_proba(X) for w, m in zip(ensemble.weights, ensemble.members, strict=True))
    # Act
    result = ensemble.predict_proba(X)
    # Assert
    np.testing.assert_allclose(result, ensemble.calibrator.apply(average), rtol=0, atol=1e-15)


def test_ensemble_usable_when_a_member_was_trained_on_other_features_names_the_difference(members):
    # Arrange
    other = {**SCHEMA, "version": "fff000fff000"}
    ensemble = Ensemble(
        list(members.values()), [0.5, 0.25, 0.25], Calibrator.identity(), [SCHEMA, other, SCHEMA]
    )
    # Act
    keep, why = ensemble.usable(SCHEMA)
    # Assert
    assert keep == [0, 2]
    assert why == ["member 1 (logistic): features version fff000fff000 at training, abc123def456 now"]


def test_ensemble_usable_when_feature_names_differ_says_which(ensemble):
    # Arrange
    now = {**SCHEMA, "names": ["ret_1", "ret_5", "vol_20", "rsi_14", "macd"]}
    # Act
    keep, why = ensemble.usable(now)
    # Assert
    assert keep == []
    assert len(why) == 3 and "missing now: noise; new: macd" in why[0]


def test_ensemble_without_when_a_member_is_dropped_rescales_the_others(members):
    # Arrange
    ensemble = Ensemble(
        list(members.values()), [0.5, 0.3, 0.2], Calibrator.identity(), SCHEMA, [0.6, 0.62, 0.63]
    )
    # Act
    smaller = ensemble.without([0])
    # Assert
    np.testing.assert_allclose(smaller.weights, [0.6, 0.4])
    assert [m.kind for m in smaller.members] == ["logistic", "forest"]
    assert smaller.losses == [0.62, 0.63]


def test_ensemble_without_when_no_weighted_member_is_left_refuses(members):
    # Arrange
    ensemble = Ensemble(list(members.values()), [1.0, 0.0, 0.0], Calibrator.identity(), SCHEMA)
    # Act / Assert
    with pytest.raises(ConfigError, match="no member with a positive weight"):
        ensemble.without([0])


@pytest.mark.parametrize(
    ("weights", "message"),
    [([0.5, 0.5], "3 members but 2 weights"), ([0.5, 0.6, -0.1], "sum to 1"), ([0.2, 0.2, 0.2], "sum to 1")],
)
def test_ensemble_when_weights_are_wrong_refuses(members, weights, message):
    with pytest.raises(ConfigError, match=message):
        Ensemble(list(members.values()), weights, Calibrator.identity(), SCHEMA)

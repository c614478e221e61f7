from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.features.drift import (
    EPSILON,
    FeatureProfile,
    drift_level,
    profile,
    psi,
    psi_1d,
)


def _normal(mean: float, rows: int, seed: int, columns: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, size=(rows, columns))


def test_psi_when_recent_rows_share_the_training_distribution_is_near_zero():
    # Arrange
    prof = profile(_normal(0.0, 20_000, seed=1), ["a", "b"])
    # Act
    result = psi(prof, _normal(0.0, 20_000, seed=2))
    # Assert
    assert set(result) == {"a", "b"} and all(v < 0.02 for v in result.values())


def test_psi_when_recent_rows_shift_by_one_std_is_above_the_drift_threshold():
    # Arrange
    prof = profile(_normal(0.0, 20_000, seed=1), ["a", "b"])
    # Act
    result = psi(prof, _normal(1.0, 5_000, seed=2))
    # Assert
    assert all(v > 0.25 for v in result.values())
    assert {drift_level(v) for v in result.values()} == {"drift"}


def test_profile_when_built_has_deciles_and_ignores_rows_with_nan():
    # Arrange
    train = _normal(0.0, 10_000, seed=3)
    train[:61, 1] = np.nan  # a warm-up
    # Act
    prof = profile(train, ["a", "b"])
    # Assert
    assert prof.rows == 10_000 - 61
    assert all(len(e) == 9 for e in prof.edges)
    for props in prof.proportions:
        assert len(props) == 10 and abs(sum(props) - 1.0) < 1e-12
        np.testing.assert_allclose(props, 0.1, atol=0.002)


def test_profile_when_saved_as_json_and_read_back_gives_the_same_psi():
    # Arrange
    prof = profile(_normal(0.0, 5_000, seed=4), ["a", "b"])
    recent = _normal(0.3, 1_000, seed=5)
    # Act
    again = FeatureProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    # Assert
    assert again == prof and psi(again, recent) == psi(prof, recent)


def test_psi_1d_when_a_training_bin_is_empty_now_is_large_but_finite():
    # Act
    result = psi_1d([0.0], [0.5, 0.5], np.full(100, 1.0))
    # Assert: one bin at 0.5 -> EPSILON, the other 0.5 -> 1.
    expected = (EPSILON - 0.5) * np.log(EPSILON / 0.5) + (1.0 - 0.5) * np.log(1.0 / 0.5)
    assert result == pytest.approx(expected) and np.isfinite(result)


def test_psi_1d_when_no_values_is_nan():
    assert np.isnan(psi_1d([0.0], [0.5, 0.5], np.array([np.nan])))


def test_profile_when_given_predicted_probabilities_profiles_one_column():
    # Arrange
    rng = np.random.default_rng(6)
    probs = rng.beta(2, 2, 5_000)
    # Act
    prof = profile(probs, ["p_up"])
    # Assert
    assert psi(prof, rng.beta(2, 2, 5_000))["p_up"] < 0.02
    assert psi(prof, rng.beta(5, 2, 5_000))["p_up"] > 0.25


def test_profile_when_a_feature_takes_few_values_merges_repeated_edges():
    # Arrange: a day of week takes 7 values; a constant column takes 1.
    rng = np.random.default_rng(7)
    matrix = np.column_stack([rng.integers(0, 7, 7_000), np.zeros(7_000)]).astype(float)
    # Act
    prof = profile(matrix, ["dow", "flat"])
    # Assert
    assert len(prof.edges[0]) == len(set(prof.edges[0])) <= 7 and prof.edges[1] == (0.0,)
    assert psi(prof, matrix)["dow"] == pytest.approx(0.0, abs=1e-12) and psi(prof, matrix)["flat"] == 0.0


@pytest.mark.parametrize(
    ("value", "level"), [(0.0, "stable"), (0.1, "stable"), (0.11, "watch"), (0.25, "watch"), (0.26, "drift")]
)
def test_drift_level_when_read_uses_the_documented_thresholds(value, level):
    assert drift_level(value) == level


def test_psi_when_matrix_has_other_columns_than_the_profile_raises():
    prof = profile(_normal(0.0, 100, seed=8), ["a", "b"])
    with pytest.raises(ValueError, match="3 columns but the profile has 2"):
        psi(prof, _normal(0.0, 100, seed=9, columns=3))

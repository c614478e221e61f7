from __future__ import annotations

import collections
import hashlib
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from labkit.errors import ConfigError, DataError, NotFittedError
from labkit.models import _skops
from labkit.models._trees import _float32
from labkit.models.members import KINDS, load_member, make_member
from tests.models.conftest import FEATURES, fitted, planted

FILES = {"xgboost": ["xgboost.ubj"], "logistic": ["logistic.skops"], "forest": ["forest.skops"]}


def _rows(kind: str, n: int = 1_000, seed: int = 7) -> np.ndarray:
    # Random rows, some with NaN for the trees (they route NaN; the logistic member answers NaN).
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.5, size=(n, FEATURES))
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def test_make_member_when_kind_unknown_lists_the_kinds():
    # Act
    with pytest.raises(ConfigError) as caught:
        make_member("svm", 0)
    # Assert
    assert "'svm'" in str(caught.value) and "xgboost, logistic, forest" in str(caught.value)


def test_make_member_when_param_unknown_names_it_and_the_allowed_ones():
    # Act
    with pytest.raises(ConfigError) as caught:
        make_member("xgboost", 0, {"max_dept": 3})
    # Assert
    assert "max_dept: unknown parameter" in str(caught.value)
    assert "max_depth" in str(caught.value)


def test_make_member_when_param_out_of_range_names_key_and_value():
    # Act
    with pytest.raises(ConfigError) as caught:
        make_member("forest", 0, {"learning_rate": -1})
    # Assert
    assert "learning_rate" in str(caught.value) and "-1" in str(caught.value)


def test_make_member_when_made_keeps_params_and_seed_as_plain_json():
    # Act
    member = make_member("logistic", 42, {"C": 0.5})
    # Assert
    assert member.kind == "logistic"
    assert member.params == {"seed": 42, "C": 0.5, "max_iter": 1000}


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_fitted_predicts_probabilities_better_than_a_coin_flip(kind, members):
    # Arrange
    X, y = planted(1_000, seed=3)
    # Act
    p = members[kind].predict_proba(X)
    # Assert
    assert p.shape == (1_000,) and p.dtype == np.float64
    assert ((p > 0) & (p < 1)).all()
    assert _log_loss(y, p) < math.log(2) - 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_member_fast_path_when_compared_on_1000_rows_equals_batch_exactly(kind, members):
    # Arrange
    member = members[kind]
    X = _rows(kind)
    # Act
    batch = member.predict_proba(X)
    one_by_one = np.array([member.predict_proba_fast(row) for row in X])
    # Assert
    assert member.fast  # the compiled path, not the batch fallback
    np.testing.assert_array_equal(one_by_one, batch)


@pytest.mark.parametrize("kind", ["xgboost", "forest"])
def test_member_fast_path_when_rows_sit_on_split_thresholds_equals_batch(kind, members):
    # Ties (x == threshold) and float32 rounding are where a re-implemented tree goes wrong.
    member = members[kind]
    probes = member._trees.probe_rows(FEATURES, n=1_000, seed=11)
    # Act
    batch = member.predict_proba(probes)
    one_by_one = np.array([member.predict_proba_fast(row) for row in probes])
    # Assert
    np.testing.assert_array_equal(one_by_one, batch)


def test_logistic_member_when_compared_with_the_sklearn_pipeline_agrees_within_1e_12(members):
    # Arrange
    member = members["logistic"]
    X, _ = planted(1_000, seed=5)
    # Act
    ours = member.predict_proba(X)
    sklearn = member.pipeline_.predict_proba(X)[:, 1]
    # Assert
    assert np.max(np.abs(ours - sklearn)) <= 1e-12


@pytest.mark.parametrize("kind", ["xgboost", "forest"])
def test_tree_member_when_compared_with_its_library_agrees_within_1e_6(kind, members):
    # Arrange
    member = members[kind]
    X = _rows(kind)
    # Act
    ours = member.predict_proba(X)
    if kind == "forest":
        theirs = member.model_.predict_proba(X)[:, 1]
    else:
        theirs = member.booster_.inplace_predict(X).astype(np.float64)
    # Assert: XGBoost's own probability is a float32; ours adds its intercept in float64
    assert np.max(np.abs(ours - theirs)) <= 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_saved_and_loaded_predicts_identically(kind, members, tmp_path):
    # Arrange
    member = members[kind]
    X = _rows(kind)
    # Act
    files = member.save(tmp_path)
    sha = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in files}
    loaded = load_member(tmp_path, kind, files, member.params, sha)
    # Assert
    assert files == FILES[kind]
    assert loaded.params == member.params and loaded.fast
    np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))
    assert loaded.predict_proba_fast(X[0]) == member.predict_proba_fast(X[0])


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_saved_writes_private_files(kind, members, tmp_path):
    # Act
    (name,) = members[kind].save(tmp_path)
    # Assert
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_refit_with_the_same_seed_writes_the_same_bytes(kind, members, tmp_path):
    # Same data, same seed, same file: the model id depends on it.
    # Act
    again = fitted(kind)
    (name,) = again.save(tmp_path / "again")
    members[kind].save(tmp_path / "first")
    # Assert
    assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()


@pytest.mark.heavy
def test_skops_members_when_saved_by_another_process_write_the_same_bytes(members, tmp_path):
    # skops names arrays by memory address; another process has other addresses.
    code = (
        "import sys; from pathlib import Path; from tests.models.conftest import fitted\n"
        "for kind in ('logistic', 'forest'):\n"
        "    fitted(kind).save(Path(sys.argv[1]))\n"
    )
    root = Path(__file__).resolve().parents[2]
    # Act
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "other")],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    # Assert
    assert done.returncode == 0, done.stderr
    for kind in ("logistic", "forest"):
        (name,) = members[kind].save(tmp_path / "here")
        assert (tmp_path / "other" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), kind


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_row_has_the_wrong_length_names_both_counts(kind, members):
    # Act
    with pytest.raises(ConfigError) as caught:
        members[kind].predict_proba_fast(np.zeros(FEATURES + 1))
    # Assert
    assert f"trained on {FEATURES} features, given {FEATURES + 1}" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_a_feature_is_infinite_raises_data_error(kind, members):
    # Arrange
    row = np.zeros(FEATURES)
    row[2] = np.inf
    # Act / Assert
    with pytest.raises(DataError, match="infinite"):
        members[kind].predict_proba_fast(row)
    with pytest.raises(DataError, match="infinite"):
        members[kind].predict_proba(row[None, :])


@pytest.mark.parametrize("kind", KINDS)
def test_member_when_not_fitted_raises_not_fitted(kind):
    # Act / Assert
    with pytest.raises(NotFittedError):
        make_member(kind, 0).predict_proba_fast(np.zeros(FEATURES))


def test_member_when_labels_have_one_class_raises_data_error():
    # Arrange
    X, _ = planted(100)
    # Act / Assert
    with pytest.raises(DataError, match="both present"):
        make_member("forest", 0).fit(X, np.ones(100, dtype=int))


def test_logistic_member_when_training_rows_have_nan_asks_to_drop_the_warm_up():
    # Arrange
    X, y = planted(200, nan_share=0.05)
    # Act / Assert
    with pytest.raises(DataError, match="warm-up"):
        make_member("logistic", 0).fit(X, y)


def test_member_when_compiled_path_would_differ_falls_back_to_the_batch_path(monkeypatch, caplog):
    # The safety net: a library whose sums changed must not make live rows differ from backtests.
    from labkit.models import _trees

    real = _trees.CompiledTrees.raw_one
    monkeypatch.setattr(_trees.CompiledTrees, "raw_one", lambda self, row: real(self, row) + 1e-9)
    # Act
    member = fitted("forest")
    X = _rows("forest", n=50)
    # Assert
    assert not member.fast
    assert "differs from the batch path" in caplog.text
    np.testing.assert_array_equal([member.predict_proba_fast(r) for r in X], member.predict_proba(X))


def test_load_member_when_file_missing_names_it(members, tmp_path):
    # Act
    with pytest.raises(ConfigError) as caught:
        load_member(tmp_path, "xgboost", ["xgboost.ubj"])
    # Assert
    assert "xgboost.ubj: missing" in str(caught.value)


def test_load_member_when_bytes_differ_from_the_digest_says_tampered(members, tmp_path):
    # Arrange
    (name,) = members["logistic"].save(tmp_path)
    # Act
    with pytest.raises(ConfigError) as caught:
        load_member(tmp_path, "logistic", [name], sha256={name: "0" * 64})
    # Assert
    assert "logistic.skops: tampered" in str(caught.value)


@pytest.mark.parametrize(
    ("obj", "named"),
    [
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        ("svc", "sklearn.svm._classes.SVC"),
    ],
)
def test_load_member_when_skops_file_holds_a_type_outside_the_allowlist_refuses(obj, named, tmp_path):
    # SVC is trusted by skops' own defaults; labkit trusts only what its members use.
    if obj == "svc":
        from sklearn.svm import SVC

        X, y = planted(100)
        obj = SVC().fit(X, y)
    import skops.io

    (tmp_path / "forest.skops").write_bytes(skops.io.dumps(obj))
    # Act
    with pytest.raises(ConfigError) as caught:
        load_member(tmp_path, "forest", ["forest.skops"])
    # Assert
    assert "forest.skops" in str(caught.value) and named in str(caught.value)


def test_load_member_when_loading_skops_passes_an_explicit_trusted_list(members, tmp_path, monkeypatch):
    # Arrange
    import skops.io

    seen = []
    real = skops.io.loads

    def spy(data, trusted=None):
        seen.append(trusted)
        return real(data, trusted=trusted)

    monkeypatch.setattr(skops.io, "loads", spy)
    (name,) = members["forest"].save(tmp_path)
    # Act
    load_member(tmp_path, "forest", [name])
    # Assert
    assert seen == [sorted(_skops.ALLOWED_TYPES["forest"])]


def test_load_member_when_the_file_is_not_a_zip_says_so(tmp_path):
    # Arrange
    (tmp_path / "logistic.skops").write_bytes(b"not a zip")
    # Act / Assert
    with pytest.raises(ConfigError, match="not a readable skops file"):
        load_member(tmp_path, "logistic", ["logistic.skops"])


def test_float32_when_text_is_just_above_a_midpoint_rounds_up_not_twice():
    # 1 + 2^-24 + 2^-60: float64 rounds it to the midpoint 1 + 2^-24, then float32 to 1.0 (even);
    # the nearest float32 is the one above 1.
    digits = _decimal(Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**60))
    # Act
    result = _float32([digits])
    # Assert
    assert result[0] == np.nextafter(np.float32(1), np.float32(2))


def test_float32_when_text_is_a_float32s_shortest_text_gives_that_float32():
    # Arrange
    values = np.random.default_rng(0).normal(size=2_000).astype(np.float32)
    # Act
    result = _float32([str(v) for v in values])  # numpy prints a float32's shortest text
    # Assert
    np.testing.assert_array_equal(result, values)


def _decimal(value: Fraction) -> str:
    # The exact decimal expansion of a dyadic fraction.
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    digits = str((value * 10**places).numerator).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"

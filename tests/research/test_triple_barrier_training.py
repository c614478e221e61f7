"""`labkit train --labels triple-barrier`, uniqueness weights and `--model bagged`: honest on a random walk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.cli import main
from labkit.models.bootstrap import sequential_bootstrap
from labkit.models.members import make_member
from tests.research.test_training import market


def _walk_file(tmp_path, n=4_000, seed=5):
    bars = market(n, momentum=0.0, seed=seed)
    path = tmp_path / "walk.csv"
    bars.rename_axis("timestamp").to_csv(path)
    return ["--source", f"csv:{path}", "--symbol", "WALK/USD", "--timeframe", "1m"], bars


def _train(tmp_path, source, *flags):
    return main(
        ["--home", str(tmp_path), "train", *source, "--since", "2026-01-05", "--until", "2026-01-09",
         "--fee", "0", "--slippage", "0", "--horizon", "10", "--folds", "2", "--seeds", "3", *flags]
    )  # fmt: skip


def test_cli_train_triple_barrier_on_a_random_walk_finds_nothing_and_records_its_barriers(tmp_path, capsys):
    # Arrange
    source, _ = _walk_file(tmp_path)
    # Act
    code = _train(tmp_path, source, "--labels", "triple-barrier", "--profit-take", "1.5", "--model",
                  "logistic", "--json")  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    # Assert
    assert code == 0
    assert abs(printed["auc_mean"] - 0.5) <= 0.05
    assert printed["labels"] == "triple-barrier"
    assert (printed["profit_take"], printed["stop_loss"]) == (1.5, 2.0)
    saved = json.loads((tmp_path / "data" / "models" / printed["model_id"] / "model.json").read_text())
    params = saved["params"]
    assert (params["labels"], params["profit_take"], params["stop_loss"]) == ("triple-barrier", 1.5, 2.0)
    assert "ATR" in params["label"]
    from labkit.research.trials import read_trials

    (trial,) = list(read_trials())
    assert trial["plan"]["labels"] == "triple-barrier" and trial["plan"]["profit_take"] == 1.5


def test_cli_train_with_sign_labels_says_so_and_keeps_its_trial_plan(tmp_path, capsys):
    source, _ = _walk_file(tmp_path)
    code = _train(tmp_path, source, "--model", "logistic", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["labels"] == "sign" and "profit_take" not in printed
    from labkit.research.trials import read_trials

    (trial,) = list(read_trials())
    assert "labels" not in trial["plan"]  # earlier sign-label trials keep their identity


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--labels", "triple-barrier", "--profit-take", "0"], "--profit-take: "),
        (["--labels", "triple-barrier", "--stop-loss", "-1"], "--stop-loss: "),
        (["--stop-loss", "3"], "--profit-take/--stop-loss: "),
    ],
)
def test_cli_train_when_a_barrier_is_bad_exits_2_naming_the_flag(tmp_path, capsys, flags, message):
    source, _ = _walk_file(tmp_path, n=200)
    code = _train(tmp_path, source, *flags)
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "data" / "models").exists()


def test_cli_train_model_bagged_trains_and_loads_back_with_the_same_probabilities(tmp_path, capsys):
    # Arrange
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import load_model

    source, bars = _walk_file(tmp_path)
    # Act
    code = _train(tmp_path, source, "--labels", "triple-barrier", "--model", "bagged", "--json")
    printed = json.loads(capsys.readouterr().out)
    loaded = load_model(tmp_path, printed["model_id"])
    # Assert
    assert code == 0 and abs(printed["auc_mean"] - 0.5) <= 0.05
    assert [m.kind for m in loaded.ensemble.members] == ["bagged"]
    X = FeatureSet().compute(bars)[-300:]
    p = loaded.ensemble.predict_proba(X)
    assert ((p >= 0) & (p <= 1)).all() and np.unique(p).size > 1
    assert loaded.ensemble.predict_one(X[-1]) == p[-1]


@pytest.mark.parametrize("kind", ["xgboost", "logistic", "forest"])
def test_member_fit_when_rows_are_weighted_leans_toward_the_heavier_rows(kind):
    # Arrange: features carry nothing; the label-1 rows weigh 5 times the others.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000, 3))
    y = (rng.random(1_000) < 0.5).astype(int)
    weight = np.where(y == 1, 5.0, 1.0)
    plain, weighted = make_member(kind, 0), make_member(kind, 0)
    # Act
    plain.fit(X, y)
    weighted.fit(X, y, sample_weight=weight)
    # Assert
    assert weighted.predict_proba(X).mean() > plain.predict_proba(X).mean() + 0.15


def test_sequential_bootstrap_when_rows_overlap_prefers_the_row_that_overlaps_nothing():
    # Arrange: ten rows over the same bars, and one row alone.
    start = np.r_[np.zeros(10, dtype=int), 20]
    end = np.r_[np.full(10, 9), 20]
    # Act
    draws = np.concatenate(
        [sequential_bootstrap(start, end, 11, np.random.default_rng(s)) for s in range(200)]
    )
    # Assert: a uniform bootstrap draws it 1/11 of the time.
    assert np.mean(draws == 10) > 0.15


def test_bagged_member_when_fit_twice_with_a_seed_gives_the_same_probabilities():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    spans = np.column_stack([np.arange(600), np.arange(600) + 10])
    members = [make_member("bagged", 3, {"n_estimators": 5}) for _ in range(2)]
    for member in members:
        member.fit(X, y, spans=spans)
    np.testing.assert_array_equal(members[0].predict_proba(X), members[1].predict_proba(X))
    assert members[0].predict_proba_fast(X[7]) == members[0].predict_proba(X)[7]


def test_pool_rows_with_triple_barrier_labels_end_each_row_where_its_barrier_decided_it():
    # Arrange
    from labkit.data.bars import ts_ms
    from labkit.features.featureset import FeatureSet
    from labkit.research.pooled import pool_rows

    frames = {"A/USD": market(1_500, 0.0, seed=1), "B/USD": market(1_500, 0.0, seed=2)}
    # Act
    rows = pool_rows(frames, FeatureSet(), 20, 0.0, "triple-barrier", 1.0, 1.0)
    # Assert: a label ends no later than its horizon, and most end earlier (tight barriers).
    times = np.asarray(ts_ms(frames["A/USD"]), dtype="int64")
    step = int(times[1] - times[0])
    assert (rows.label_end > rows.times).all() and (rows.label_end <= rows.times + 20 * step).all()
    assert np.mean(rows.label_end < rows.times + 20 * step) > 0.5
    for j in range(2):
        mine = rows.symbol == j
        assert rows.weight[mine].mean() == pytest.approx(1.0)
    a, b = rows.spans[rows.symbol == 0], rows.spans[rows.symbol == 1]
    assert a[:, 1].max() < b[:, 0].min()  # no two symbols' spans share a bar

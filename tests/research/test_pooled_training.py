"""`labkit train --symbols`: one model pooled over a universe, its folds cut on time for every symbol."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.cli import main
from labkit.errors import ConfigError
from labkit.features.featureset import FeatureSet
from labkit.models.artifacts import in_sample_span
from labkit.research.pooled import pool_rows, time_folds
from labkit.research.training import TrainPlan, train_pooled
from labkit.research.trials import read_trials

from .test_training import SMALL, _config, market

MINUTE = 60_000
UNIVERSE = "BTC/USDT,ETH/USDT,SOL/USDT"


def _universe(draw: st.DrawFn, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    # Symbols that start and end at different times and miss bars here and there, pooled by time
    # as pool_rows pools them: each row's time and its label's last bar, in its own symbol's bars.
    times, ends, which = [], [], []
    for j in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, 50))
        n = draw(st.integers(horizon + 60, 300))
        seed = draw(st.integers(0, 2**16))
        keep = np.random.default_rng(seed).random(n + horizon) > draw(st.floats(0.0, 0.3))
        bars = (start + np.flatnonzero(keep)) * MINUTE
        if len(bars) <= horizon + 1:
            continue
        times.append(bars[:-horizon])
        ends.append(bars[horizon:])
        which.append(np.full(len(bars) - horizon, j))
    t, e, s = np.concatenate(times), np.concatenate(ends), np.concatenate(which)
    order = np.lexsort((s, t))
    return t[order], e[order]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), horizon=st.integers(1, 20), folds=st.integers(2, 5))
def test_time_folds_when_symbols_are_pooled_never_train_on_what_any_symbols_test_rows_see(
    data, horizon, folds
):
    # Arrange
    times, label_end = _universe(data.draw, horizon)
    distinct = len(np.unique(times))
    min_train = data.draw(st.integers(horizon + 1, max(horizon + 1, distinct // 3)))
    if distinct - min_train < folds:
        return
    # Act
    try:
        cut = time_folds(times, label_end, folds, min_train)
    except ConfigError as refused:
        # Only when the first fold (the one with the least before it) has nothing to train on.
        first = np.unique(times)[distinct - folds * ((distinct - min_train) // folds)]
        assert str(refused).startswith("--since/--folds: fold 0 has no training row")
        assert not np.any(label_end < first)
        return
    # Assert
    assert [f.test.stop for f in cut[:-1]] == [f.test.start for f in cut[1:]] and cut[-1].test.stop == len(
        times
    )
    for fold in cut:
        lo, hi = times[fold.test.start], times[fold.test.stop - 1]
        inside = np.flatnonzero((times >= lo) & (times <= hi))
        # Every symbol's rows of the span are in the test fold, and only those.
        assert np.array_equal(inside, np.arange(fold.test.start, fold.test.stop))
        train = fold.train
        assert len(train)
        # No training row of any symbol opens in or after the span, nor within the horizon before it
        # (its label would read a bar of the span): purged, on time, for every symbol at once.
        assert np.all(times[train] + horizon * MINUTE < lo)
        assert np.all(label_end[train] < lo)
        # And nothing usable is left out: every row whose label ends before the span trains.
        assert np.array_equal(train, np.flatnonzero(label_end < lo))


def test_pool_rows_when_symbols_differ_computes_each_symbols_features_on_its_own_bars():
    # Arrange: two markets over the same minutes, very different
    frames = {"A/USD": market(800, momentum=0.5, seed=1), "B/USD": market(800, momentum=0.0, seed=2) * 3}
    features = FeatureSet()
    # Act
    rows = pool_rows(frames, features, horizon=5, cost=0.0)
    # Assert
    assert np.all(np.diff(rows.times) >= 0)
    for j, bars in enumerate(frames.values()):
        mine = rows.symbol == j
        own = features.compute(bars)[rows.position[mine]]
        np.testing.assert_array_equal(rows.X[mine], own)
        close = bars["close"].to_numpy()
        up = np.log(close[rows.position[mine] + 5] / close[rows.position[mine]]) > 0
        np.testing.assert_array_equal(rows.y[mine], up.astype(float))


def _frames(n: int, momentum: float) -> dict[str, pd.DataFrame]:
    return {symbol: market(n, momentum, seed=10 + i) for i, symbol in enumerate(("A/USD", "B/USD", "C/USD"))}


def test_train_pooled_when_three_symbols_records_them_in_the_model_and_the_trial(tmp_path):
    # Arrange
    frames = _frames(1_500, momentum=0.4)
    plan = TrainPlan(horizon=1, folds=2, seeds=3, member_params=SMALL)
    # Act
    result = train_pooled(_config(), tmp_path, frames, plan)
    # Assert
    assert result.to_dict()["symbols"] == ["A/USD", "B/USD", "C/USD"]
    meta = json.loads((tmp_path / "data" / "models" / result.model_id / "model.json").read_text())
    assert meta["symbols"] == ["A/USD", "B/USD", "C/USD"] and meta["symbol"] == "A/USD,B/USD,C/USD"
    assert meta["window"]["bars"] == 4_500 and meta["window"]["rows"] == result.rows
    # The bars it has seen, for a backtest's in-sample check: every symbol's window, and the horizon.
    last = frames["A/USD"].index[-1].value // 1_000_000
    assert in_sample_span(tmp_path, result.model_id) == (
        frames["A/USD"].index[0].value // 1_000_000,
        last + 2 * MINUTE,
    )
    assert result.auc_mean > 0.6  # the planted momentum is found in every symbol's rows
    assert all(row["test_bars"] >= 500 and "net_return_pct" in row for row in result.folds)
    oos = pd.read_parquet(tmp_path / "data" / "models" / result.model_id / "out_of_sample.parquet")
    assert set(oos["symbol"]) == {"A/USD", "B/USD", "C/USD"}
    trials = list(read_trials())
    assert [(t["kind"], t["symbol"], t["model"]) for t in trials] == [
        ("train", "A/USD,B/USD,C/USD", result.model_id)
    ]


def test_train_pooled_when_every_symbol_is_a_random_walk_finds_nothing(tmp_path):
    # Arrange
    frames = _frames(3_000, momentum=0.0)
    plan = TrainPlan(horizon=1, folds=2, seeds=3, member_params=SMALL)
    # Act
    result = train_pooled(_config(), tmp_path, frames, plan)
    # Assert
    assert abs(result.auc_mean - 0.5) <= 0.03


def _cli(capsys: pytest.CaptureFixture[str], home: str, *args: str) -> tuple[int, str, str]:
    code = main(["--home", home, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_train_symbols_then_book_backtest_names_the_pooled_model_for_every_symbol(tmp_path, capsys):
    # Arrange
    home = str(tmp_path)
    market_flags = ["--source", "synthetic", "--timeframe", "1m"]
    code, out, err = _cli(
        capsys, home, "train", *market_flags, "--symbols", UNIVERSE, "--since", "2026-01-05",
        "--until", "2026-01-06", "--horizon", "5", "--folds", "2", "--seeds", "3", "--model", "logistic",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    trained = json.loads(out)
    journal = tmp_path / "book.jsonl"
    # Act
    code_bt, out_bt, err_bt = _cli(
        capsys, home, "backtest", *market_flags, "--symbols", UNIVERSE, "--since", "2026-01-07",
        "--until", "2026-01-07T06:00", "--strategy", "model", "--model", "latest", "--journal",
        str(journal), "--json",
    )  # fmt: skip
    code_ls, out_ls, _ = _cli(capsys, home, "models")
    # The same book on the pooled model's own training bars: it says so.
    code_in, out_in, err_in = _cli(
        capsys, home, "backtest", *market_flags, "--symbols", UNIVERSE, "--since", "2026-01-05T06:00",
        "--until", "2026-01-05T09:00", "--strategy", "model", "--model", trained["model_id"], "--json",
    )  # fmt: skip
    # Assert
    assert code_in == 0, err_in
    assert json.loads(out_in)["in_sample_fraction"] == 1.0 and "warning" in err_in
    assert json.loads(out_bt)["in_sample_fraction"] == 0.0
    assert code_bt == 0, err_bt
    assert trained["symbols"] == UNIVERSE.split(",")
    assert f"--model latest: {trained['model_id']}" in err_bt
    assert json.loads(out_bt)["strategy"] == trained["model_id"]
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert {(line["symbol"], line["model"]) for line in lines} == {
        (symbol, trained["model_id"]) for symbol in UNIVERSE.split(",")
    }
    assert code_ls == 0 and f"{trained['model_id']}  pooled over {UNIVERSE} 1m" in out_ls


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--symbols", "BTC/USDT,ETH/USDT,BTC/USDT"], "--symbols"),
        (["--symbols", "BTC/USDT,ETH/USDT", "--symbol", "BTC/USDT"], "--symbols: give it or --symbol"),
        (["--universe", "nope"], "--universe: 'nope' is not a universe"),
    ],
)
def test_cli_train_when_the_universe_is_bad_exits_2_naming_the_flag(tmp_path, capsys, flags, message):
    # Act
    code, _, err = _cli(capsys, str(tmp_path), "train", "--source", "synthetic", "--timeframe", "1m", *flags)
    # Assert
    assert code == 2 and message in err
    assert not (tmp_path / "data" / "models").exists()

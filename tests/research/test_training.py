"""`labkit train`: honest on purpose. A planted edge is found out of sample, a random walk yields nothing.

The bars are made here: a market whose next return follows the last one (the planted feature is
`ret_1`), and a pure random walk. Training uses small members so the default run stays fast; the
full-size run of the same checks is marked slow.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.errors import ConfigError
from labkit.research.training import TrainPlan, train_model
from labkit.research.trials import read_trials

SMALL = {
    "xgboost": {"n_estimators": 40, "max_depth": 3},
    "forest": {"max_iter": 40, "max_depth": 3},
    "logistic": {},
}


def market(n: int, momentum: float, seed: int = 3) -> pd.DataFrame:
    """Minute bars whose log returns follow r[t] = momentum * r[t-1] + noise (0: a random walk)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.001, n)
    r = np.empty(n)
    r[0] = noise[0]
    for t in range(1, n):
        r[t] = momentum * r[t - 1] + noise[t]
    close = 100.0 * np.exp(np.cumsum(r))
    opens = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.0005, n)) * close
    index = pd.date_range("2026-01-05", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + spread,
            "low": np.minimum(opens, close) - spread,
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        },
        index=index,
    )


def _config(fee: float = 0.0):
    return load_config(
        None, {"session.symbol": "TEST/USD", "broker.fee": fee, "broker.slippage": 0.0}, environ={}
    )


def test_train_when_the_next_return_follows_the_last_finds_it_out_of_sample(tmp_path):
    # Arrange: a strong one-bar momentum, labels one bar ahead, no costs
    bars = market(6_000, momentum=0.5)
    plan = TrainPlan(horizon=1, folds=3, seeds=3, member_params=SMALL)
    # Act
    result = train_model(_config(), tmp_path, bars, plan)
    # Assert
    assert result.auc_mean > 0.6
    assert all(row["auc"] > 0.6 for row in result.folds)
    assert result.seeds == 3 and result.horizon == 1 and "ret_1" in result.features
    assert (tmp_path / "data" / "models" / result.model_id / "model.json").is_file()


def test_train_when_scored_reports_auc_as_mean_and_std_across_folds_and_the_seeds_apart(tmp_path):
    # Arrange: "AUC 0.82 ± 0.00" was a spread over seeds; the spread that matters is across folds
    bars = market(4_000, momentum=0.3)
    plan = TrainPlan(horizon=2, folds=3, seeds=3, member_params=SMALL)
    # Act
    result = train_model(_config(), tmp_path, bars, plan)
    # Assert
    fold_aucs = [row["auc"] for row in result.folds]
    assert result.auc_mean == pytest.approx(np.mean(fold_aucs), rel=1e-9)
    assert result.auc_std == pytest.approx(np.std(fold_aucs, ddof=1), rel=1e-9)
    assert result.auc_seed_std >= 0.0 and all("auc_seed_std" in row for row in result.folds)
    printed = result.to_dict()
    assert {"auc_mean", "auc_std", "auc_seed_std"} <= set(printed)
    meta = json.loads((tmp_path / "data" / "models" / result.model_id / "model.json").read_text())
    assert meta["auc_std"] == pytest.approx(result.auc_std) and "auc_seed_std" in meta


def test_train_when_test_folds_would_hold_under_500_rows_refuses_naming_folds_and_since(tmp_path):
    # Arrange: enough bars to train first, but three test folds of ~100 rows (29-row folds passed)
    bars = market(900, momentum=0.3)
    # Act
    with pytest.raises(ConfigError) as caught:
        train_model(_config(), tmp_path, bars, TrainPlan(horizon=1, folds=3, seeds=3, member_params=SMALL))
    # Assert
    message = str(caught.value)
    assert "--folds" in message and "--since" in message and "500 rows" in message
    assert "900 bars" in message
    assert not (tmp_path / "data" / "models").exists()


def test_train_when_a_test_fold_holds_under_50_of_a_class_refuses_naming_the_fold_and_its_counts(tmp_path):
    # Arrange: costs so high that a move beats them in about 1 bar of 100: test folds of ~1,300 rows
    # hold a dozen positive labels, too few for an AUC to mean anything
    bars = market(4_000, momentum=0.0)
    plan = TrainPlan(horizon=1, folds=2, seeds=3, member_params=SMALL)
    # Act
    with pytest.raises(ConfigError) as caught:
        train_model(_config(fee=0.0012), tmp_path, bars, plan)
    # Assert
    message = str(caught.value)
    assert message.startswith("--folds/--since: fold 0 tests on ")
    assert re.search(r"fold 0 tests on [\d,]+ rows: \d+ with label 1 and [\d,]+ with label 0", message)
    assert "at least 50 of either" in message
    assert not (tmp_path / "data" / "models").exists()


@pytest.mark.heavy
def test_train_when_the_market_is_a_random_walk_finds_nothing(tmp_path):
    # Arrange
    bars = market(12_000, momentum=0.0)
    plan = TrainPlan(horizon=1, folds=4, seeds=3, member_params=SMALL)
    # Act
    result = train_model(_config(), tmp_path, bars, plan)
    # Assert
    assert abs(result.auc_mean - 0.5) <= 0.03


def test_train_when_folds_are_scored_purges_the_horizon_and_records_a_trial(tmp_path):
    # Arrange
    bars = market(4_000, momentum=0.3)
    plan = TrainPlan(horizon=15, folds=3, seeds=3, member_params=SMALL)
    # Act
    result = train_model(_config(), tmp_path, bars, plan)
    # Assert
    folds = result.folds
    assert [f["fold"] for f in folds] == [0, 1, 2]
    for earlier, later in zip(folds, folds[1:], strict=False):
        assert later["train_bars"] > earlier["train_bars"]  # walk forward: each trains on more
    for row in folds:
        assert {"auc", "log_loss", "brier", "accuracy", "majority_accuracy", "net_return_pct"} <= set(row)
        assert 0.5 <= row["majority_accuracy"] <= 1.0
    trials = list(read_trials())
    assert len(trials) == 1 and trials[0]["kind"] == "train" and trials[0]["model"] == result.model_id
    assert trials[0]["plan"]["folds"] == 3 and trials[0]["plan"]["window"]["since"].startswith("2026-01-05")


def test_train_when_bars_are_too_few_refuses_naming_how_many_are_needed(tmp_path):
    # Arrange
    bars = market(300, momentum=0.0)
    # Act
    with pytest.raises(
        ConfigError, match=r"--since/--folds: 300 bars of TEST/USD 1m; .* need at least [\d,]+ bars"
    ):
        train_model(_config(), tmp_path, bars, TrainPlan(horizon=15, folds=5, seeds=3))
    # Assert
    assert not (tmp_path / "data" / "models").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seeds", "2"], "--seeds: at least 3"),
        (["--folds", "1"], "--folds: walk-forward test folds, 2 to 50"),
        (["--horizon", "0"], "--horizon: bars the label looks ahead"),
        (["--max-bars", "200"], "need at least"),
    ],
)
def test_cli_train_when_input_is_bad_exits_2_naming_the_flag(tmp_path, capsys, flags, message):
    # Act
    code = main(
        [
            "--home",
            str(tmp_path),
            "train",
            "--source",
            "synthetic",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1m",
            *flags,
        ]
    )
    # Assert
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "data" / "models").exists()


@pytest.mark.heavy
def test_cli_train_then_backtest_with_the_model_names_it_on_every_line(tmp_path, capsys):
    # Arrange
    home = str(tmp_path)
    args = ["--symbol", "BTC/USDT", "--timeframe", "1m", "--source", "synthetic"]
    code = main(
        [
            "--home",
            home,
            "train",
            *args,
            "--since",
            "2026-01-05",
            "--until",
            "2026-01-07",
            "--horizon",
            "5",
            "--folds",
            "2",
            "--json",
        ]
    )
    trained = json.loads(capsys.readouterr().out)
    # Act
    journal = tmp_path / "bt.jsonl"
    code_bt = main(
        [
            "--home",
            home,
            "backtest",
            *args,
            "--since",
            "2026-01-07",
            "--until",
            "2026-01-08",
            "--strategy",
            "model",
            "--model",
            "latest",
            "--journal",
            str(journal),
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    # Assert
    assert code == 0 and code_bt == 0
    assert {"model_id", "folds", "auc_mean", "auc_std", "seeds", "horizon", "features"} <= set(trained)
    assert summary["strategy"] == trained["model_id"]
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {line["model"] for line in lines} == {trained["model_id"]}
    assert any(line["confidence"] is not None for line in lines)
    main(["--home", home, "models", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert [m["id"] for m in listed] == [trained["model_id"]]


def test_cli_backtest_when_no_model_was_trained_exits_2_and_says_to_train(tmp_path, capsys):
    # Act
    code = main(["--home", str(tmp_path), "backtest", "--strategy", "model", "--max-bars", "500"])
    # Assert
    assert code == 2 and "labkit train" in capsys.readouterr().err


@pytest.mark.heavy
@pytest.mark.slow
def test_session_trading_a_random_walk_model_when_judged_weekly_is_not_ready(tmp_path, capsys):
    # Arrange: three weeks of a random walk in a bar file; a model trained on the first two
    from labkit.engine.journal import read_journal
    from labkit.readiness.weekly import weekly_readiness

    bars = market(3 * 7 * 1440, momentum=0.0, seed=11).set_axis(
        pd.date_range("2025-12-22", periods=3 * 7 * 1440, freq="1min", tz="UTC")
    )
    path = tmp_path / "walk.csv"
    bars.rename_axis("timestamp").to_csv(path)
    home = ["--home", str(tmp_path)]
    source = ["--source", f"csv:{path}", "--symbol", "WALK/USD", "--timeframe", "1m"]
    settings = {"session.source": f"csv:{path}", "session.symbol": "WALK/USD"}
    plan = TrainPlan(horizon=15, folds=2, seeds=3, member_params=SMALL)
    train_model(load_config(None, settings, environ={}), tmp_path, bars.loc[:"2026-01-04"], plan)
    # Act: a paper session trades the third week
    code = main([*home, "run", *source, "--session", "walk", "--mode", "paper", "--pace", "fast", "--since",
                 "2026-01-05", "--until", "2026-01-12", "--strategy", "model", "--model", "latest"])  # fmt: skip
    # Assert
    assert code == 0, capsys.readouterr().err
    journal = read_journal(tmp_path / "data" / "sessions" / "walk" / "decisions.jsonl")
    verdict = weekly_readiness(journal, "2026-W02", _config().readiness, 60_000)
    assert not verdict.passed
    failed = {gate.name for gate in verdict.gates if not gate.passed}
    assert failed & {"activity", "positive_edge", "edge_stability", "cost_efficiency"}


def _quick_plan() -> TrainPlan:
    # One deterministic member, one seed, two folds: the fewest fits a whole run can make.
    return TrainPlan(horizon=1, folds=2, seeds=1, model="logistic")


def _full_disk(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_train_when_the_disk_fills_writing_out_of_sample_lists_no_model_and_records_no_trial(
    tmp_path, monkeypatch
):
    # Arrange: the out-of-sample parquet is the last file a model writes; the disk is full by then
    from labkit.models.artifacts import list_models, models_dir

    bars = market(2_000, momentum=0.3)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _full_disk)
    # Act
    with pytest.raises(OSError, match="No space left on device") as caught:
        train_model(_config(), tmp_path, bars, _quick_plan())
    # Assert: no model half installed, no trial of a model that is not there, nothing left behind
    assert "out_of_sample.parquet" in str(caught.value.filename)
    assert list_models(tmp_path) == []
    assert list(models_dir(tmp_path).iterdir()) == []
    assert list(read_trials()) == []


def test_train_when_recording_the_trial_fails_withdraws_the_model_it_just_installed(tmp_path, monkeypatch):
    # Arrange: the model is in place, then the trial ledger's disk is full
    from labkit.models.artifacts import list_models
    from labkit.research import trials

    bars = market(2_000, momentum=0.3)
    monkeypatch.setattr(trials, "append_trial", _full_disk)
    # Act
    with pytest.raises(OSError, match="No space left on device"):
        train_model(_config(), tmp_path, bars, _quick_plan())
    # Assert: a model without its trial is not listed
    assert list_models(tmp_path) == []


def test_train_when_done_installs_the_model_with_its_out_of_sample_file_then_records_the_trial(
    tmp_path, monkeypatch
):
    # Arrange: watch the models folder at the moment the trial is recorded
    from labkit.models.artifacts import models_dir
    from labkit.research import trials

    seen: list[list[str]] = []
    append = trials.append_trial

    def watching(record):
        seen.append(sorted(p.name for p in models_dir(tmp_path).glob("*/*") if p.is_file()))
        return append(record)

    monkeypatch.setattr(trials, "append_trial", watching)
    # Act
    result = train_model(_config(), tmp_path, market(2_000, momentum=0.3), _quick_plan())
    # Assert
    assert seen == [["model.json", "out_of_sample.parquet"]]
    folder = models_dir(tmp_path) / result.model_id
    assert pd.read_parquet(folder / "out_of_sample.parquet").columns.tolist() == ["label", "probability"]
    assert [t["model"] for t in read_trials()] == [result.model_id]

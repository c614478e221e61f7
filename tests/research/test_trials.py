"""Trials: every backtest, training run, sweep run and session run appends one line to the user's
trial ledger; the deflated Sharpe ratio counts the distinct variants of a market, each once."""

from __future__ import annotations

import doctest
import json
import math
import stat
from pathlib import Path

import numpy as np
import pytest

import labkit.research.trials
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.engine.journal import read_journal
from labkit.errors import DataError
from labkit.research.backtest import run_backtest
from labkit.research.trials import (
    append_trial,
    config_hash,
    read_trials,
    trial_identity,
    trial_stats,
    trials_path,
)
from labkit.timeutil import parse_instant

BACKTEST = ["backtest", "--since", "2026-01-05", "--until", "2026-01-05T12:00", "--json"]
MARKET = ("synthetic", "BTC/USDT", "1m")


def _backtest(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["--home", str(home), *BACKTEST, *args]) == 0
    return json.loads(capsys.readouterr().out)


def _trial(
    symbol: str = "BTC/USDT",
    timeframe: str = "1m",
    sharpe: float | None = 1.0,
    ppy: float = 4.0,
    identity: str | None = None,
    source: str = "synthetic",
) -> dict:
    return {
        "schema": 2,
        "identity": identity or f"id-{sharpe}",
        "source": source,
        "symbol": symbol,
        "timeframe": timeframe,
        "sharpe": sharpe,
        "periods_per_year": ppy,
    }


# -- every trial counted, once ------------------------------------------------------------------


def test_backtest_when_only_the_capital_differs_six_times_is_one_trial(tmp_path, capsys):
    # Act: capital sizes the same decisions; it cannot make a new variant
    runs = [_backtest(tmp_path, capsys, "--capital", str(10_000 + k)) for k in range(6)]
    # Assert
    stats = trial_stats(*MARKET)
    assert (stats.trials, stats.runs) == (1, 6)
    assert [run["trials"] for run in runs] == [1] * 6
    assert len({t["identity"] for t in read_trials(*MARKET)}) == 1


def test_backtest_when_run_twice_with_other_parameters_records_two_trials(tmp_path, capsys):
    # Act
    first = _backtest(tmp_path, capsys, "--fast", "10", "--slow", "30")
    second = _backtest(tmp_path, capsys, "--fast", "5", "--slow", "20")
    # Assert
    trials = list(read_trials(*MARKET))
    assert trial_stats(*MARKET).trials == 2
    assert [t["params"] for t in trials] == [{"fast": 10, "slow": 30}, {"fast": 5, "slow": 20}]
    assert trials[0]["identity"] != trials[1]["identity"]
    assert trials[0]["data"] == trials[1]["data"]  # the same bars: range and hash
    assert trials[0]["data"]["first_ts"] == "2026-01-05T00:00:00Z" and trials[0]["data"]["bars"] == 720
    assert [t["sharpe"] for t in trials] == [first["sharpe"], second["sharpe"]]
    assert trials[0]["returns"] == 720 and trials[0]["periods_per_year"] == 525_600
    assert (first["trials"], second["trials"]) == (1, 2)
    # Alone, a backtest's deflated Sharpe is its PSR; the second one pays for the first
    assert first["deflated_sharpe"] == pytest.approx(first["psr"])
    assert second["deflated_sharpe"] <= second["psr"]


def test_backtest_when_repeated_on_the_same_or_other_bars_is_the_same_trial(tmp_path, capsys):
    # Act
    first = _backtest(tmp_path, capsys)
    again = _backtest(tmp_path, capsys)
    longer = _backtest(tmp_path, capsys, "--until", "2026-01-05T13:00")
    # Assert: the same variant on more bars tried nothing new; its latest run stands for it
    stats = trial_stats(*MARKET)
    assert (stats.trials, stats.runs) == (1, 3)
    assert again == first and longer["trials"] == 1


def test_backtest_when_another_market_was_tried_does_not_count_it(tmp_path, capsys):
    # Arrange
    _backtest(tmp_path, capsys)
    # Act
    other = _backtest(tmp_path, capsys, "--symbol", "ETH/USDT")
    # Assert
    assert other["trials"] == 1
    assert trial_stats(*MARKET).trials == 1
    assert trial_stats("synthetic", "BTC/USDT", "5m").trials == 0
    assert trial_stats("ccxt:binance", "BTC/USDT", "1m").trials == 0  # the source is in the family


def _saved_model(home: Path, until: str) -> str:
    # A one-member model on the features labkit computes; `until` makes each one another model.
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import save_model
    from labkit.models.ensemble import Calibrator, Ensemble
    from labkit.models.members import make_member

    features = FeatureSet()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, len(features.names)))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(np.int64)
    member = make_member("logistic", 0)
    member.fit(X, y)
    ensemble = Ensemble(
        [member], [1.0], Calibrator.fit(member.predict_proba(X), y), features.schema.to_dict()
    )
    window = {"since": "2025-12-01T00:00:00Z", "until": until, "bars": 400}
    meta = {"symbol": "BTC/USDT", "timeframe": "1m", "source": "synthetic", "horizon": 5, "window": window}
    return save_model(home, ensemble, meta)


def test_model_backtests_when_latest_resolves_to_other_models_in_two_homes_are_two_trials(tmp_path, capsys):
    # Arrange: two homes, each with its own model; both backtests ask for "latest"
    homes = [tmp_path / "a", tmp_path / "b"]
    models = [
        _saved_model(home, until) for home, until in zip(homes, ("2025-12-20", "2025-12-21"), strict=True)
    ]
    # Act
    runs = [_backtest(home, capsys, "--strategy", "model", "--model", "latest") for home in homes]
    # Assert: one ledger for both homes, each resolved model its own trial
    trials = list(read_trials(*MARKET))
    assert [t["model"] for t in trials] == models
    assert [run["trials"] for run in runs] == [1, 2]
    assert trial_stats(*MARKET).trials == 2


def test_run_backtest_when_called_from_a_notebook_records_a_trial(tmp_path):
    # Arrange
    config = load_config(None, {}, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T06:00"))
    # Act
    summary = run_backtest(config, bars).summary
    run_backtest(config, bars, trial=False)  # a caller that records the trial itself
    # Assert
    trials = list(read_trials(*MARKET))
    assert len(trials) == 1 and trials[0]["kind"] == "backtest"
    assert trials[0]["sharpe"] == summary["sharpe"] and trials[0]["returns"] == 360


def test_fast_session_when_run_records_a_trial_and_its_resume_adds_none(tmp_path):
    from labkit.session.runner import run_session

    # Arrange
    def config(until: str):
        settings = {"session.name": "s", "session.pace": "fast", "session.since": "2026-01-05"}
        return load_config(None, {**settings, "session.until": until}, environ={})

    # Act: a replay, then the same session resumed over more bars
    run_session(config("2026-01-05T03:00"), tmp_path, progress=False)
    run_session(config("2026-01-05T06:00"), tmp_path, progress=False)
    # Assert
    trials = list(read_trials(*MARKET))
    assert [t["kind"] for t in trials] == ["session", "session"]
    assert [t["returns"] for t in trials] == [180, 360]  # the session's equity so far
    assert all(isinstance(t["sharpe"], float) for t in trials)
    journal = read_journal(tmp_path / "data/sessions/s/decisions.jsonl")
    assert trials[-1]["trades"] == int((journal["fill_side"] == "BUY").sum()) > 0  # entries, counted
    stats = trial_stats(*MARKET)
    assert (stats.trials, stats.runs) == (1, 2)


def test_fast_session_when_it_trades_what_a_backtest_tried_is_the_same_trial(tmp_path, capsys):
    from labkit.session.runner import run_session

    # Arrange
    _backtest(tmp_path, capsys)
    settings = {"session.name": "s", "session.pace": "fast", "session.since": "2026-01-05"}
    # Act: another name, mode, pace and capital: the same decisions
    config = load_config(
        None, {**settings, "session.until": "2026-01-05T02:00", "session.capital": 500.0}, environ={}
    )
    run_session(config, tmp_path, progress=False)
    # Assert
    assert trial_stats(*MARKET).trials == 1


# -- where the ledger lives ---------------------------------------------------------------------


def test_trials_path_when_environment_says_takes_labkit_trials_then_xdg_data_home_then_home(tmp_path):
    # Act / Assert
    assert (
        trials_path({"LABKIT_TRIALS": str(tmp_path / "t.jsonl"), "XDG_DATA_HOME": "/x"})
        == tmp_path / "t.jsonl"
    )
    assert trials_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "labkit" / "trials.jsonl"
    assert trials_path({"XDG_DATA_HOME": "relative", "HOME": str(tmp_path)}) == (
        tmp_path / ".local" / "share" / "labkit" / "trials.jsonl"
    )
    assert trials_path({"HOME": str(tmp_path)}) == tmp_path / ".local" / "share" / "labkit" / "trials.jsonl"


def test_backtest_when_xdg_data_home_is_set_writes_the_ledger_there(tmp_path, capsys, monkeypatch):
    # Arrange
    monkeypatch.delenv("LABKIT_TRIALS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    # Act
    _backtest(tmp_path / "home", capsys)
    # Assert
    ledger = tmp_path / "share" / "labkit" / "trials.jsonl"
    assert len(ledger.read_text().splitlines()) == 1
    assert not (tmp_path / "home" / "data" / "trials.jsonl").exists()
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700


def test_trials_path_when_a_test_runs_is_never_the_users_ledger():
    assert trials_path() != trials_path({"HOME": str(Path.home())})
    assert trials_path().name == "trials.jsonl" and "pytest" in str(trials_path())


def test_trials_file_when_written_is_private_and_leaves_an_existing_folder_as_it_was(
    tmp_path, capsys, monkeypatch
):
    # Arrange: LABKIT_TRIALS in a shared folder that exists already
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("LABKIT_TRIALS", str(shared / "trials.jsonl"))
    # Act
    _backtest(tmp_path / "home", capsys)
    # Assert
    assert stat.S_IMODE((shared / "trials.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_trials_when_last_line_is_torn_skips_it_then_cuts_it_before_the_next(caplog):
    # Arrange: two trials, then a crash in the middle of the third
    append_trial(_trial(sharpe=1.0))
    append_trial(_trial(sharpe=2.0))
    with open(trials_path(), "ab") as handle:
        handle.write(b'{"schema": 2, "symbol": "BTC/US')
    # Act / Assert: the torn line is not a trial
    assert trial_stats(*MARKET).trials == 2
    append_trial(_trial(sharpe=3.0))
    lines = trials_path().read_text().splitlines()
    assert [json.loads(line)["sharpe"] for line in lines] == [1.0, 2.0, 3.0]
    assert "cut a torn last line" in caplog.text


def test_trials_when_a_complete_line_is_not_json_names_the_file_and_line():
    # Arrange
    append_trial(_trial())
    with open(trials_path(), "ab") as handle:
        handle.write(b"not a trial\n")
    # Act / Assert
    with pytest.raises(DataError, match=r"trials.jsonl: line 2 is not a trial"):
        trial_stats(*MARKET)


# -- the statistics -------------------------------------------------------------------------------


def test_trial_stats_when_sharpes_differ_gives_variance_per_observation():
    # Arrange: annual Sharpe ratios 1, 2 and 3 with 4 periods a year are 0.5, 1 and 1.5 per period
    for sharpe in (1.0, 2.0, 3.0):
        append_trial(_trial(sharpe=sharpe))
    append_trial(_trial(sharpe=None))  # a trial without a Sharpe ratio still counts
    append_trial(_trial(symbol="ETH/USDT", sharpe=40.0))
    append_trial(_trial(source="csv:eth.csv", sharpe=50.0))
    # Act
    result = trial_stats(*MARKET)
    # Assert
    assert result.trials == 4
    assert result.sharpe_variance == pytest.approx(0.25)


def test_trial_stats_when_an_identity_is_rerun_takes_its_latest_sharpe():
    # Arrange
    append_trial(_trial(sharpe=9.0, identity="a"))
    append_trial(_trial(sharpe=1.0, identity="a"))
    append_trial(_trial(sharpe=2.0, identity="b"))
    # Act
    result = trial_stats(*MARKET)
    # Assert
    assert (result.trials, result.runs) == (2, 3)
    assert result.sharpe_variance == pytest.approx(0.125)  # of 0.5 and 1.0


def test_trial_stats_when_no_file_or_one_trial_has_no_variance():
    assert trial_stats(*MARKET).trials == 0
    append_trial(_trial())
    result = trial_stats(*MARKET)
    assert result.trials == 1 and math.isnan(result.sharpe_variance)


# -- the identity ---------------------------------------------------------------------------------


def _identity(overrides: dict, model: str = "sma_cross-10-30", plan: dict | None = None) -> str:
    return trial_identity(load_config(None, overrides, environ={}), model, plan)


def test_trial_identity_when_only_capital_names_paths_pace_mode_range_or_seed_differ_is_the_same():
    # Arrange
    base = _identity({})
    same = [
        {"session.capital": 123.0},
        {"session.name": "other", "session.pace": "fast", "session.mode": "shadow"},
        {"session.since": "2026-01-01", "session.until": "2026-01-02", "session.seed": 9},
        {"session.max_bars": 100, "session.interval": 5.0},
        {"exchanges": {"binance": {"apiKey": "k"}}},
    ]
    only_data = {"gates.enabled": ["data"]}
    # Act / Assert
    assert [_identity(overrides) for overrides in same] == [base] * len(same)
    # A gate that is not enabled decides nothing
    assert _identity({**only_data, "gates.turnover.max_daily": 3}) == _identity(only_data)


def test_trial_identity_when_what_decides_differs_is_another():
    # Arrange
    others = [
        _identity({"strategies.sma_cross.fast": 5}),
        _identity({"broker.fee": 0.002}),
        _identity({"broker.slippage": 0.001}),
        _identity({"risk.position_frac": 0.5}),
        _identity({"gates.enabled": ["data"]}),
        _identity({"session.symbol": "ETH/USDT"}),
        _identity({"session.timeframe": "5m"}),
        _identity({}, model="sma_cross-10-31"),
        _identity({}, plan={"horizon": 15, "folds": 4}),
        _identity({}, plan={"horizon": 15, "folds": 5}),
    ]
    # Act / Assert
    assert len({_identity({}), *others}) == len(others) + 1


def test_trial_identity_when_a_model_is_asked_as_latest_or_by_id_is_its_resolved_id():
    # Arrange
    latest = {"session.strategy": "model", "strategies.model.model": "latest"}
    by_id = {"session.strategy": "model", "strategies.model.model": "ens-0123456789ab"}
    # Act / Assert
    assert _identity(latest, "ens-0123456789ab") == _identity(by_id, "ens-0123456789ab")
    assert _identity(latest, "ens-0123456789ab") != _identity(latest, "ens-ba9876543210")


def test_config_hash_when_only_names_pace_or_credentials_differ_is_the_same():
    # Arrange
    base = load_config(None, {}, environ={})
    renamed = load_config(
        None,
        {"session.name": "other", "session.pace": "fast", "exchanges": {"binance": {"apiKey": "k"}}},
        environ={},
    )
    tuned = load_config(None, {"strategies.sma_cross.fast": 5}, environ={})
    costlier = load_config(None, {"broker.fee": 0.002}, environ={})
    # Act / Assert
    assert config_hash(base) == config_hash(renamed)
    assert len({config_hash(base), config_hash(tuned), config_hash(costlier)}) == 3


def test_trials_docstring_examples_when_run_print_what_they_show():
    result = doctest.testmod(labkit.research.trials)
    assert result.failed == 0 and result.attempted >= 1


def test_readiness_doc_when_read_names_every_trial_field(tmp_path, capsys):
    # Arrange
    doc = (Path(__file__).resolve().parents[2] / "docs" / "readiness.md").read_text(encoding="utf-8")
    _backtest(tmp_path, capsys)
    # Act
    trial = next(read_trials())
    # Assert
    assert [f for f in [*trial, *trial["data"]] if f"`{f}`" not in doc] == []

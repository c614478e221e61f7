"""Trials: every backtest appends one line to data/trials.jsonl; the deflated Sharpe ratio counts them."""

from __future__ import annotations

import doctest
import json
import math
import stat
from pathlib import Path

import pytest

import labkit.research.trials
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.errors import DataError
from labkit.research.trials import append_trial, config_hash, read_trials, trial_stats, trials_path

BACKTEST = ["backtest", "--since", "2026-01-05", "--until", "2026-01-05T12:00", "--json"]


def _backtest(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["--home", str(home), *BACKTEST, *args]) == 0
    return json.loads(capsys.readouterr().out)


def _trial(
    symbol: str = "BTC/USDT", timeframe: str = "1m", sharpe: float | None = 1.0, ppy: float = 4.0
) -> dict:
    return {"schema": 1, "symbol": symbol, "timeframe": timeframe, "sharpe": sharpe, "periods_per_year": ppy}


def test_backtest_when_run_twice_with_other_parameters_records_two_trials(tmp_path, capsys):
    # Act
    first = _backtest(tmp_path, capsys, "--fast", "10", "--slow", "30")
    second = _backtest(tmp_path, capsys, "--fast", "5", "--slow", "20")
    # Assert
    trials = list(read_trials(tmp_path, "BTC/USDT", "1m"))
    assert trial_stats(tmp_path, "BTC/USDT", "1m").trials == 2
    assert [t["params"] for t in trials] == [{"fast": 10, "slow": 30}, {"fast": 5, "slow": 20}]
    assert trials[0]["config_hash"] != trials[1]["config_hash"]
    assert trials[0]["data"] == trials[1]["data"]  # the same bars: range and hash
    assert trials[0]["data"]["first_ts"] == "2026-01-05T00:00:00Z" and trials[0]["data"]["bars"] == 720
    assert [t["sharpe"] for t in trials] == [first["sharpe"], second["sharpe"]]
    assert trials[0]["returns"] == 720 and trials[0]["periods_per_year"] == 525_600
    assert (first["trials"], second["trials"]) == (1, 2)
    # Alone, a backtest's deflated Sharpe is its PSR; the second one pays for the first
    assert first["deflated_sharpe"] == pytest.approx(first["psr"])
    assert second["deflated_sharpe"] <= second["psr"]


def test_backtest_when_repeated_on_the_same_data_records_the_run_and_counts_one_trial(tmp_path, capsys):
    # Act
    first = _backtest(tmp_path, capsys)
    again = _backtest(tmp_path, capsys)
    # Assert: the same config on the same bars tried nothing new
    stats = trial_stats(tmp_path, "BTC/USDT", "1m")
    assert (stats.trials, stats.runs) == (1, 2)
    assert again == first
    # The same config on other bars is another trial
    _backtest(tmp_path, capsys, "--until", "2026-01-05T13:00")
    assert trial_stats(tmp_path, "BTC/USDT", "1m").trials == 2


def test_backtest_when_another_market_was_tried_does_not_count_it(tmp_path, capsys):
    # Arrange
    _backtest(tmp_path, capsys)
    # Act
    other = _backtest(tmp_path, capsys, "--symbol", "ETH/USDT")
    # Assert
    assert other["trials"] == 1
    assert trial_stats(tmp_path, "BTC/USDT", "1m").trials == 1
    assert trial_stats(tmp_path, "BTC/USDT", "5m").trials == 0


def test_trials_file_when_written_is_private(tmp_path, capsys):
    # Act
    _backtest(tmp_path, capsys)
    # Assert
    path = trials_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_trials_when_last_line_is_torn_skips_it_then_cuts_it_before_the_next(tmp_path, caplog):
    # Arrange: two trials, then a crash in the middle of the third
    append_trial(tmp_path, _trial(sharpe=1.0))
    append_trial(tmp_path, _trial(sharpe=2.0))
    with open(trials_path(tmp_path), "ab") as handle:
        handle.write(b'{"schema": 1, "symbol": "BTC/US')
    # Act / Assert: the torn line is not a trial
    assert trial_stats(tmp_path, "BTC/USDT", "1m").trials == 2
    append_trial(tmp_path, _trial(sharpe=3.0))
    lines = trials_path(tmp_path).read_text().splitlines()
    assert [json.loads(line)["sharpe"] for line in lines] == [1.0, 2.0, 3.0]
    assert "cut a torn last line" in caplog.text


def test_trials_when_a_complete_line_is_not_json_names_the_file_and_line(tmp_path):
    # Arrange
    append_trial(tmp_path, _trial())
    with open(trials_path(tmp_path), "ab") as handle:
        handle.write(b"not a trial\n")
    # Act / Assert
    with pytest.raises(DataError, match=r"trials.jsonl: line 2 is not a trial"):
        trial_stats(tmp_path, "BTC/USDT", "1m")


def test_trial_stats_when_sharpes_differ_gives_variance_per_observation(tmp_path):
    # Arrange: annual Sharpe ratios 1, 2 and 3 with 4 periods a year are 0.5, 1 and 1.5 per period
    for sharpe in (1.0, 2.0, 3.0):
        append_trial(tmp_path, _trial(sharpe=sharpe))
    append_trial(tmp_path, _trial(sharpe=None))  # a trial without a Sharpe ratio still counts
    append_trial(tmp_path, _trial(symbol="ETH/USDT", sharpe=40.0))
    # Act
    result = trial_stats(tmp_path, "BTC/USDT", "1m")
    # Assert
    assert result.trials == 4
    assert result.sharpe_variance == pytest.approx(0.25)


def test_trial_stats_when_no_file_or_one_trial_has_no_variance(tmp_path):
    assert trial_stats(tmp_path, "BTC/USDT", "1m").trials == 0
    append_trial(tmp_path, _trial())
    result = trial_stats(tmp_path, "BTC/USDT", "1m")
    assert result.trials == 1 and math.isnan(result.sharpe_variance)


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


def test_metrics_doc_when_read_names_every_trial_field(tmp_path, capsys):
    # Arrange
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    _backtest(tmp_path, capsys)
    # Act
    trial = next(read_trials(tmp_path))
    # Assert
    assert [f for f in [*trial, *trial["data"]] if f"`{f}`" not in doc] == []

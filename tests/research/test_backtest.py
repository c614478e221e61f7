"""A backtest annualises over the calendar of the market it ran on, the named exchange included, and
says how much of it a model it traded was trained on."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from labkit.analysis.calendar import MarketCalendar, exchange_calendar
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.research.backtest import run_backtest
from labkit.research.training import TrainPlan, train_model
from labkit.timeutil import parse_instant


@pytest.mark.parametrize(("exchange", "minutes"), [("XNYS", 390), ("XLON", 510)])
def test_backtest_when_equities_on_a_named_exchange_annualises_over_its_sessions(exchange, minutes):
    # Arrange: yfinance bars are equities, and the exchange decides how long a session is (a bar
    # file's own hours would decide it for a file; yfinance's are the exchange's)
    bars = synthetic_bars("SPY", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-06"))
    overrides = {"session.source": "yfinance", "session.exchange": exchange}
    config = load_config(None, overrides, environ={})
    # Act
    summary = run_backtest(config, bars).summary
    # Assert: 252 sessions of the exchange's regular hours, in 1-minute bars
    assert summary["periods_per_year"] == 252 * minutes


TRAINED_SINCE, TRAINED_UNTIL = "2026-01-05", "2026-01-07"  # 1m bars: the last opens 01-06 23:59
HORIZON = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    # A small model of synthetic BTC/USDT 1m, trained on two days with labels 5 bars ahead.
    home = tmp_path_factory.mktemp("model-home")
    config = load_config(None, {}, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant(TRAINED_SINCE), parse_instant(TRAINED_UNTIL))
    plan = TrainPlan(horizon=HORIZON, folds=2, seeds=3, model="logistic")
    return home, train_model(config, home, bars, plan).model_id


def _model_backtest(home: Path, model_id: str, since: str, until: str) -> dict:
    overrides = {"session.strategy": "model", "strategies.model.model": model_id}
    config = load_config(None, overrides, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant(since), parse_instant(until))
    return run_backtest(config, bars, home=home).summary


def test_backtest_when_a_model_is_judged_on_its_training_window_says_it_is_all_in_sample(trained):
    # Arrange
    home, model_id = trained
    # Act
    summary = _model_backtest(home, model_id, "2026-01-06", "2026-01-07")
    # Assert
    assert summary["in_sample_fraction"] == 1.0
    assert summary["model"] == model_id == summary["strategy"]
    assert summary["model_in_sample"] == {
        "since": "2026-01-05T00:00:00Z",
        "until": f"2026-01-07T00:{HORIZON:02d}:00Z",  # the last bar's close and 5 bars of labels
    }


def test_backtest_when_a_model_runs_after_its_training_window_and_embargo_is_out_of_sample(trained):
    # Arrange: the first 5 bars after the window are the embargo; from 00:05 on, nothing was seen
    home, model_id = trained
    # Act
    straddling = _model_backtest(home, model_id, "2026-01-07", "2026-01-07T01:40")
    after = _model_backtest(home, model_id, f"2026-01-07T00:{HORIZON:02d}", "2026-01-08")
    # Assert
    assert straddling["in_sample_fraction"] == pytest.approx(HORIZON / 100)
    assert after["in_sample_fraction"] == 0.0


def test_backtest_when_latest_is_asked_resolves_the_most_recently_trained(trained, tmp_path):
    # Arrange: the home's model is trained again with identical content after another one
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained[0], home)
    config = load_config(None, {}, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-02"), parse_instant("2026-01-04"))
    plan = TrainPlan(horizon=HORIZON, folds=2, seeds=3, model="logistic")
    other = train_model(config, home, bars, plan).model_id
    assert _model_backtest(home, "latest", "2026-01-08", "2026-01-08T01:00")["model"] == other
    again = synthetic_bars("BTC/USDT", "1m", parse_instant(TRAINED_SINCE), parse_instant(TRAINED_UNTIL))
    assert train_model(config, home, again, plan).model_id == trained[1]
    # Act
    summary = _model_backtest(home, "latest", "2026-01-08", "2026-01-08T01:00")
    # Assert
    assert summary["model"] == trained[1] != other


def test_backtest_when_no_model_decides_has_nothing_in_sample():
    # Arrange
    config = load_config(None, {}, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T06:00"))
    # Act
    summary = run_backtest(config, bars).summary
    # Assert: sma_cross was fit to no bars
    assert summary["in_sample_fraction"] == 0.0
    assert summary["model"] is None and summary["model_in_sample"] is None


def test_backtest_when_run_records_the_calendar_it_annualised_over():
    # Arrange
    bars = synthetic_bars("SPY", "1d", parse_instant("2025-01-06"), parse_instant("2026-01-05"))
    config = load_config(None, {"session.source": "yfinance", "session.timeframe": "1d"}, environ={})
    # Act
    summary = run_backtest(config, bars).summary
    # Assert
    assert summary["calendar"]["kind"] == "equities" and summary["periods_per_year"] == 252
    assert MarketCalendar.from_dict(summary["calendar"]).describe() == exchange_calendar().describe()


def _cli_backtest(home: Path, model: str, since: str, until: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    window = ["--since", since, "--until", until, "--strategy", "model", "--model", model]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(home), "backtest", *window, *extra])
    return code, out.getvalue(), err.getvalue()


def test_cli_backtest_when_the_model_was_trained_on_the_bars_warns_in_plain_words(trained):
    # Arrange
    home, model_id = trained
    # Act
    code, out, err = _cli_backtest(home, model_id, "2026-01-06", "2026-01-07", "--json")
    # Assert: the figures still print; stderr says why they prove little and what to do instead
    assert code == 0 and json.loads(out)["in_sample_fraction"] == 1.0
    assert f"warning: 100% of these bars were already seen by model {model_id}" in err
    assert "no evidence that it works; backtest it on bars from 2026-01-07T00:05:00Z on" in err


def test_cli_backtest_when_the_model_runs_after_its_training_is_silent_about_it(trained):
    # Arrange
    home, model_id = trained
    # Act
    code, out, err = _cli_backtest(home, model_id, "2026-01-07T00:05", "2026-01-07T03:00")
    # Assert
    assert code == 0 and "already seen" not in err and "warning" not in err
    assert out.startswith(f"{model_id} on BTC/USDT 1m")


def test_cli_backtest_when_latest_is_asked_prints_the_id_it_resolved_to(trained):
    # Arrange
    home, model_id = trained
    # Act
    code, out, err = _cli_backtest(home, "latest", "2026-01-07T00:05", "2026-01-07T03:00", "--json")
    # Assert
    assert code == 0 and json.loads(out)["model"] == model_id
    assert f"--model latest: {model_id}, the most recently trained for BTC/USDT 1m" in err


def test_cli_run_when_latest_is_asked_prints_the_id_it_resolved_to(trained, tmp_path):
    # Arrange: a short paper session of the model, replayed fast after its training
    home, model_id = trained
    args = ["--session", "latest-model", "--mode", "paper", "--pace", "fast", "--strategy", "model"]
    window = ["--since", "2026-01-07T00:05", "--until", "2026-01-07T00:35", "--model", "latest"]
    out, err = io.StringIO(), io.StringIO()
    # Act
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(home), "run", *args, *window])
    # Assert
    assert code == 0, err.getvalue()
    assert (
        f"labkit run: --model latest: {model_id}, the most recently trained for BTC/USDT 1m" in err.getvalue()
    )

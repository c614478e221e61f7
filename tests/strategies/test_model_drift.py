"""The model strategy's drift: a rolling window held to the threshold its model was calibrated with,
the same whole or bar by bar, refusing a regime the training never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.engine.journal import JournalWriter
from labkit.research.training import TrainPlan, train_model
from labkit.timeutil import parse_instant

SMALL = {"xgboost": {"n_estimators": 20, "max_depth": 2}, "forest": {"max_iter": 20, "max_depth": 2}}
MARKET = {"session.symbol": "BTC/USDT", "session.timeframe": "1m", "session.source": "synthetic"}
WINDOW = 120


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-03"), parse_instant("2026-01-05"))
    config = load_config(None, {**MARKET, "broker.fee": 0.0, "gates.model.drift_window": WINDOW}, environ={})
    result = train_model(config, home, bars, TrainPlan(horizon=5, folds=2, seeds=1, member_params=SMALL))
    return home, result.model_id


def _wild(bars, scale):
    # The same bars with `scale` times the volatility: each price's log distance from the first close.
    out = bars.copy()
    first = np.log(bars["close"].iloc[0])
    for column in ("open", "high", "low", "close"):
        out[column] = np.exp(first + scale * (np.log(bars[column]) - first))
    return out


def _engine(home, model_id, journal):
    settings = {**MARKET, "session.strategy": "model", "strategies.model.model": model_id}
    config = load_config(None, {**settings, "strategies.model.entry": 0.51}, environ={})
    return build_engine(config, "paper", journal=JournalWriter(journal), home=home, strict=False)


def _lines(path):
    out = []
    for raw in path.read_text().splitlines():
        line = json.loads(raw)
        line.pop("decided_at"), line.pop("correlation_id")
        out.append(line)
    return out


def test_model_json_records_the_drift_threshold_calibrated_on_the_training_windows(trained):
    home, model_id = trained
    meta = json.loads((home / "data" / "models" / model_id / "model.json").read_text())
    calibration = meta["drift_calibration"]
    assert calibration["window"] == WINDOW and calibration["quantile"] == 0.99
    assert calibration["windows"] > 20 and calibration["threshold"] > 0


def test_model_drift_whole_or_bar_by_bar_refuses_the_same_entries_of_a_regime_never_seen(trained, tmp_path):
    # Arrange: five hours of the market as trained, then five hours at five times its volatility
    home, model_id = trained
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T10:00"))
    bars = bars.iloc[:300].combine_first(_wild(bars, 5.0).iloc[300:])[bars.columns]
    whole = _engine(home, model_id, tmp_path / "whole.jsonl")
    stepped = _engine(home, model_id, tmp_path / "stepped.jsonl")
    # Act
    whole.process(bars)
    whole.journal.close()
    for i in range(len(bars)):
        stepped.process(bars.iloc[i : i + 1])
    stepped.journal.close()
    # Assert
    lines = _lines(tmp_path / "whole.jsonl")
    assert lines == _lines(tmp_path / "stepped.jsonl")
    drift = [line for line in lines if line["gate_trace"]["reason"] == "model_drift"]
    buys = [line for line in lines if line["proposed"] == "BUY"]

    def refused(after: bool) -> float:
        asked = [line for line in buys if (line["ts"] >= "2026-01-05T05:00") == after]
        return sum(line in drift for line in asked) / len(asked)

    # (the first hours already differ from the weekend the model was trained on: refused in part)
    assert refused(True) > 0.8 and refused(True) > refused(False) + 0.2
    detail = drift[-1]["gate_trace"]["detail"]
    assert detail["psi"] > detail["limit"]
    assert detail["source"].startswith("calibrated q0.99 on ") and detail["source"].endswith(
        " training windows"
    )


def test_model_drift_when_the_model_has_no_calibration_falls_back_to_max_psi(trained, tmp_path):
    # Arrange: a model saved before labkit calibrated drift reads as one without the record
    home, model_id = trained
    engine = _engine(home, model_id, tmp_path / "old.jsonl")
    strategy = engine.strategy
    strategy.calibration = None
    bars = _wild(
        synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T06:00")), 5.0
    )
    # Act
    facts = strategy.propose(bars).facts
    engine.journal.close()
    # Assert
    assert "drift_limit" not in facts and np.nanmax(facts["drift_psi"]) > 0.25
    gate = next(g for g in engine.gates if g.name == "model")
    assert gate.limit((None, None, None)) == (0.25, "fixed max_psi (the model has no calibrated threshold)")

"""The `model` strategy: the same decisions whole or bar by bar, a paper session that replays
identically, and a missing or foreign model recorded on every bar instead of a crash."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from labkit.cli import main
from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.engine.journal import JournalWriter
from labkit.research.training import TrainPlan, train_model
from labkit.timeutil import parse_instant

SMALL = {"xgboost": {"n_estimators": 20, "max_depth": 2}, "forest": {"max_iter": 20, "max_depth": 2}}
MARKET = {"session.symbol": "BTC/USDT", "session.timeframe": "1m", "session.source": "synthetic"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-03"), parse_instant("2026-01-05"))
    config = load_config(None, {**MARKET, "broker.fee": 0.0}, environ={})  # labels: up or down
    result = train_model(config, home, bars, TrainPlan(horizon=5, folds=2, seeds=3, member_params=SMALL))
    return home, result.model_id


def _lines(path):
    out = []
    for raw in path.read_text().splitlines():
        line = json.loads(raw)
        line.pop("decided_at"), line.pop("correlation_id")
        out.append(line)
    return out


def _engine(home, model_id, journal, **overrides):
    settings = {**MARKET, "session.strategy": "model", "strategies.model.model": model_id, **overrides}
    config = load_config(None, settings, environ={})
    return build_engine(config, "paper", journal=JournalWriter(journal), home=home, strict=False)


def test_model_strategy_when_deciding_whole_or_bar_by_bar_takes_identical_decisions(trained, tmp_path):
    # Arrange: a low entry threshold so that entries, exits and gates all happen
    home, model_id = trained
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T12:00"))
    whole = _engine(home, model_id, tmp_path / "whole.jsonl", **{"strategies.model.entry": 0.51})
    stepped = _engine(home, model_id, tmp_path / "stepped.jsonl", **{"strategies.model.entry": 0.51})
    # Act
    whole.process(bars)
    whole.journal.close()
    for i in range(len(bars)):
        stepped.process(bars.iloc[i : i + 1])
    stepped.journal.close()
    # Assert
    a, b = _lines(tmp_path / "whole.jsonl"), _lines(tmp_path / "stepped.jsonl")
    assert a == b
    assert {line["model"] for line in a} == {model_id}
    assert any(line["action"] == "BUY" for line in a) and any(line["fill"] for line in a)
    decided = [line for line in a if line["confidence"] is not None]
    assert decided and all(0.0 <= line["confidence"] <= 1.0 for line in decided)


def test_model_strategy_when_no_model_exists_holds_every_bar_with_model_unavailable(tmp_path, caplog):
    # Arrange
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T02:00"))
    # Act
    with caplog.at_level(logging.WARNING):
        engine = _engine(tmp_path, "latest", tmp_path / "d.jsonl")
        engine.process(bars)
        engine.journal.close()
    # Assert
    lines = _lines(tmp_path / "d.jsonl")
    after_warmup = [line for line in lines if line["gate_trace"]["stage"] != "data"]
    assert after_warmup and {line["gate_trace"]["reason"] for line in after_warmup} == {"model_unavailable"}
    assert {line["action"] for line in lines} == {"HOLD"}
    assert "cannot be loaded" in caplog.text


def test_paper_session_with_a_model_when_replayed_takes_identical_decisions(trained, capsys):
    # Arrange
    home, model_id = trained
    common = ["--home", str(home)]
    code = main([*common, "run", "--session", "m", "--mode", "paper", "--pace", "fast", "--since", "2026-01-05",
                 "--until", "2026-01-05T06:00", "--strategy", "model", "--model", model_id])  # fmt: skip
    # Act
    replay = main([*common, "replay", "--session", "m"])
    # Assert
    assert code == 0 and replay == 0, capsys.readouterr().err
    lines = [json.loads(raw) for raw in (home / "data/sessions/m/decisions.jsonl").read_text().splitlines()]
    assert {line["model"] for line in lines} == {model_id}
    assert np.isfinite([line["confidence"] for line in lines if line["confidence"] is not None]).all()


def test_model_strategy_when_the_features_changed_since_training_holds_with_feature_mismatch(
    trained, tmp_path, monkeypatch, caplog
):
    # Arrange: this labkit's features read another version than the model was trained on
    from labkit.features.featureset import FeatureSet

    home, model_id = trained
    real = FeatureSet.schema.fget

    def changed(self):
        schema = real(self)
        return type(schema)(schema.names, schema.lookbacks, "0" * 12)

    monkeypatch.setattr(FeatureSet, "schema", property(changed))
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-05T02:00"))
    # Act
    with caplog.at_level(logging.WARNING):
        engine = _engine(home, model_id, tmp_path / "d.jsonl")
        engine.process(bars)
        engine.journal.close()
    # Assert
    lines = _lines(tmp_path / "d.jsonl")
    judged = [line for line in lines if line["gate_trace"]["stage"] != "data"]
    assert judged and {line["gate_trace"]["reason"] for line in judged} == {"feature_mismatch"}
    skipped = [r for r in caplog.records if "member is skipped" in r.getMessage()]
    assert len(skipped) == 3  # one line per member, once per session


def test_model_strategy_when_live_features_drift_refuses_entries_with_model_drift(trained, tmp_path):
    # Arrange: the same market with ten times the volatility: every volatility feature moves
    home, model_id = trained
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-07"))
    mid = bars["close"].iloc[0]
    wild = bars.copy()
    for column in ("open", "high", "low", "close"):
        wild[column] = mid + (bars[column] - mid) * 10.0
    engine = _engine(
        home,
        model_id,
        tmp_path / "d.jsonl",
        **{"strategies.model.entry": 0.51, "strategies.model.drift_window": 600},
    )
    # Act
    engine.process(wild)
    engine.journal.close()
    # Assert
    lines = _lines(tmp_path / "d.jsonl")
    drift = [line for line in lines if line["gate_trace"]["reason"] == "model_drift"]
    assert drift and all(line["proposed"] == "BUY" for line in drift)
    assert all(line["gate_trace"]["detail"]["psi"] > 0.25 for line in drift)
    assert all(line["ts"] >= "2026-01-06" for line in drift)  # measured once a full day had passed

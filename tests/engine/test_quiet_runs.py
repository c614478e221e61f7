"""Quiet runs: a replay that marks the bars where nothing happens at once decides exactly as one that
steps every bar: the same journal bytes, book, equity curve, fills and verdicts (issue 17)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.engine.core import Engine
from labkit.engine.journal import JournalWriter
from labkit.engine.observer import Observer
from labkit.engine.settings import BrokerConfig
from labkit.strategies.base import Signals, Strategy
from labkit.timeutil import parse_instant

UNTIL = parse_instant("2026-01-05")
CASES = {
    "every gate": {},
    "gates off": {"gates.enabled": ["data"]},
    "guardrails halt": {"gates.guardrails.max_drawdown": 0.01, "gates.guardrails.daily_loss_limit": 0.002},
    "costs": {"broker.fee": 0.0005, "broker.slippage": 0.0003, "strategies.sma_cross.fast": 3},
    "part of the cash": {"risk.position_frac": 0.4, "gates.enabled": ["data"]},
}


class _Heard(Observer):
    def __init__(self) -> None:
        self.fills: list[tuple[int, dict]] = []
        self.verdicts: list[tuple[int, str, object]] = []

    def on_fill(self, ts, fill):
        self.fills.append((ts, dict(fill)))

    def on_verdict(self, ts, proposed, block):
        self.verdicts.append((ts, proposed, block))


class _Restless(Strategy):
    """Proposes an exit on most bars and an entry now and then, each with a confidence, like a model."""

    name = "restless"
    model_id = "restless"
    warmup = 5

    def propose(self, bars):
        rng = np.random.default_rng(len(bars))
        draw = rng.random(len(bars))
        side = np.where(draw < 0.03, 1, np.where(draw < 0.6, -1, 0)).astype("int8")
        return Signals(side, rng.uniform(0.5, 1.0, len(bars)), np.full(len(bars), np.nan))


def _run(tmp_path, name, overrides, skip_quiet, chunks=None, bars_count=6000, strategy=None):
    bars = synthetic_bars("BTC/USDT", "1m", UNTIL - bars_count * 60_000, UNTIL)
    path = tmp_path / f"{name}.jsonl"
    heard = _Heard()
    config = load_config(None, overrides, environ={})
    engine = build_engine(config, "backtest", journal=JournalWriter(path), observer=heard, strategy=strategy)
    engine.skip_quiet = skip_quiet
    start = 0
    for size in chunks or [len(bars)]:
        engine.process(bars.iloc[start : start + size])
        start += size
    assert engine.journal is not None
    engine.journal.close()
    text = re.sub(rb'"(decided_at|correlation_id)":"[^"]*"', b"", path.read_bytes())
    return text, engine.portfolio.to_dict(), engine.equity_curve(), heard


@pytest.mark.parametrize("case", list(CASES))
def test_engine_when_marking_quiet_runs_at_once_decides_as_stepping_every_bar(tmp_path, case):
    # Arrange
    overrides = CASES[case]
    # Act
    stepped = _run(tmp_path, "stepped", overrides, skip_quiet=False)
    skipped = _run(tmp_path, "skipped", overrides, skip_quiet=True)
    # Assert
    assert skipped[0] == stepped[0]
    assert skipped[1] == stepped[1]
    np.testing.assert_array_equal(skipped[2], stepped[2])
    assert skipped[3].fills == stepped[3].fills
    assert skipped[3].verdicts == stepped[3].verdicts


@pytest.mark.parametrize("chunks", [None, [1, 1, 700, 3, 5295]])
@pytest.mark.parametrize("case", ["every gate", "gates off"])
def test_engine_when_exits_are_proposed_while_flat_marks_them_as_quiet_bars(tmp_path, case, chunks):
    # Arrange: exits on most bars, entries now and then (the model strategy's pattern)
    overrides = CASES[case]
    # Act
    stepped = _run(tmp_path, "stepped", overrides, skip_quiet=False, chunks=chunks, strategy=_Restless())
    skipped = _run(tmp_path, "skipped", overrides, skip_quiet=True, chunks=chunks, strategy=_Restless())
    # Assert
    assert skipped[0] == stepped[0]
    assert skipped[1] == stepped[1]
    np.testing.assert_array_equal(skipped[2], stepped[2])
    assert skipped[3].fills == stepped[3].fills and len(stepped[3].fills) > 20
    assert skipped[3].verdicts == stepped[3].verdicts


@pytest.mark.parametrize("chunks", [[1] * 50 + [5950], [37, 1, 1, 2000, 3961], [3000, 3000]])
def test_engine_when_quiet_runs_span_calls_decides_as_one_replay(tmp_path, chunks):
    # Arrange: a day turns and orders wait across the calls' edges
    overrides = CASES["every gate"]
    # Act
    whole = _run(tmp_path, "whole", overrides, skip_quiet=False)
    parts = _run(tmp_path, "parts", overrides, skip_quiet=True, chunks=chunks)
    # Assert
    assert parts[0] == whole[0]
    assert parts[1] == whole[1]
    np.testing.assert_array_equal(parts[2], whole[2])


@pytest.mark.parametrize(
    ("overrides", "now"),
    [
        ({"risk.stop_atr": 2.0}, None),  # exit levels are checked on every bar's range
        ({"risk.max_bars": 30}, None),  # and so is the time stop
        ({"risk.sizing": "risk", "risk.stop_atr": 1.5}, None),
        ({}, UNTIL + 10 * 60_000),  # a catch-up says how late each decision is
    ],
)
def test_engine_when_exits_or_a_late_decision_apply_steps_every_bar(monkeypatch, overrides, now):
    # Arrange
    bars = synthetic_bars("BTC/USDT", "1m", UNTIL - 500 * 60_000, UNTIL)
    engine = build_engine(load_config(None, overrides, environ={}), "backtest")

    def never(*args):
        raise AssertionError("quiet runs were skipped")

    monkeypatch.setattr(Engine, "_steps", never)
    # Act
    engine.process(bars, now=now)
    # Assert
    assert engine.portfolio.last_seq == len(bars) - 1


def test_observer_when_fills_happen_hears_each_on_the_bar_it_filled(tmp_path):
    # Arrange
    from labkit.engine.journal import iter_lines

    text, _, _, heard = _run(tmp_path, "j", CASES["gates off"], skip_quiet=True)
    # Act
    lines = [line for line in iter_lines(tmp_path / "j.jsonl") if line["fill"] is not None]
    # Assert
    assert [(parse_instant(line["ts"]), line["fill"]) for line in lines] == heard.fills
    assert len(heard.fills) > 10


def test_observer_when_gates_refuse_hears_each_block_and_every_entry_let_through(tmp_path):
    # Arrange
    from labkit.engine.journal import iter_lines

    _, _, _, heard = _run(tmp_path, "j", CASES["guardrails halt"], skip_quiet=True)
    # Act
    lines = list(iter_lines(tmp_path / "j.jsonl"))
    judged = [
        (parse_instant(line["ts"]), line["proposed"], line["gate_trace"]["stage"])
        for line in lines
        if line["proposed"] == "BUY" or line["gate_trace"]["stage"] != "passed"
    ]
    # Assert
    assert [(ts, proposed, "passed" if b is None else b.stage) for ts, proposed, b in heard.verdicts] == judged
    assert {"guardrails", "data"} <= {stage for _, _, stage in judged}


def test_round_trip_cost_when_the_turnover_gate_weighs_an_edge_is_the_brokers(tmp_path):
    # Arrange: a strategy whose every entry promises less than twice the round trip
    from labkit.engine.journal import iter_lines

    class Thin(Strategy):
        name = "thin"
        model_id = "thin"
        warmup = 1

        def propose(self, bars):
            n = len(bars)
            return Signals(np.ones(n, dtype="int8"), np.full(n, 0.9), np.full(n, 0.001))

    config = load_config(None, {"broker.fee": 0.0004, "broker.slippage": 0.0002}, environ={})
    bars = synthetic_bars("BTC/USDT", "1m", UNTIL - 5 * 60_000, UNTIL)
    engine = build_engine(config, "backtest", journal=JournalWriter(tmp_path / "j.jsonl"), strategy=Thin())
    # Act
    engine.process(bars)
    engine.journal.close()  # type: ignore[union-attr]
    # Assert
    trace = list(iter_lines(tmp_path / "j.jsonl"))[-1]["gate_trace"]
    assert (trace["stage"], trace["reason"]) == ("turnover", "edge_below_cost")
    assert trace["detail"]["cost"] == BrokerConfig(fee=0.0004, slippage=0.0002).round_trip_cost
    assert trace["detail"]["cost"] == pytest.approx(0.0012)

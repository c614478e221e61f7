"""Meta-labels (`labkit train --meta`, the `meta` gate): a planted edge is found, a random walk gains nothing.

The planted market alternates calm and volatile regimes of 600 minute bars. In a calm one the
price follows a slow clean wave on narrow bars, so sma_cross's cross up rides the rise; in a
volatile one a quick jump is followed by a long slide on wide bars, so the cross up buys the top.
The primary wins only in calm regimes; the meta model reads the regime from the features.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.engine.journal import JournalWriter, read_journal
from labkit.readiness.counterfactual import ledger
from labkit.research.backtest import run_backtest
from labkit.research.meta import MetaPlan, train_meta

BLOCK = 600
PLAN = MetaPlan("sma_cross", {"fast": 10, "slow": 30}, horizon=60, folds=3, model="logistic")


def regimes(blocks: int, seed: int = 5) -> pd.DataFrame:
    """Minute bars alternating calm (even blocks) and volatile (odd blocks) regimes of `BLOCK` bars."""
    rng = np.random.default_rng(seed)
    parts, widths, level = [], [], 0.0
    t = np.arange(BLOCK)
    for b in range(blocks):
        if b % 2 == 0:
            path = 0.03 * np.sin(2 * np.pi * t / 200 - np.pi / 2) + rng.normal(0, 0.0003, BLOCK)
            width = 0.0004
        else:
            phase = t % 50
            slide = np.where(phase < 10, phase * 0.005, 0.05 - (phase - 10) * 0.0015)
            path = slide + rng.normal(0, 0.001, BLOCK)
            width = 0.004
        path = path - path[0] + level
        level = path[-1]
        parts.append(path)
        widths.append(np.full(BLOCK, width))
    return _bars(np.concatenate(parts), np.concatenate(widths), rng)


def random_walk(n: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return _bars(np.cumsum(rng.normal(0, 0.001, n)), np.full(n, 0.0005), rng)


def _bars(log_price: np.ndarray, width: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(log_price)
    close = 100.0 * np.exp(log_price)
    opens = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) * (1 + width * rng.uniform(0.5, 1.0, n)),
            "low": np.minimum(opens, close) * (1 - width * rng.uniform(0.5, 1.0, n)),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        },
        index=pd.date_range("2026-01-05", periods=n, freq="1min", tz="UTC"),
    )


def _config(**more):
    settings = {"session.symbol": "TEST/USD", "broker.fee": 0.0005, "broker.slippage": 0.0, **more}
    return load_config(None, settings, environ={})


def _sharpe(equity: pd.Series) -> float:
    r = equity.pct_change().dropna()
    return float(r.mean() / r.std()) if r.std() > 0 else 0.0


def test_meta_model_when_the_primary_wins_only_when_calm_beats_it_out_of_sample(tmp_path):
    # Arrange
    bars = regimes(30)
    # Act
    result = train_meta(_config(), tmp_path, bars, PLAN)
    # Assert: the folds' test blocks, net of costs: gated, fewer losing trades and a better return
    primary, gated = result.oos["primary"], result.oos["meta"]
    assert result.auc_mean > 0.7
    assert gated["return_pct"] > primary["return_pct"] + 20
    assert gated["hit_rate"] > primary["hit_rate"]
    saved = json.loads((tmp_path / "data" / "models" / result.model_id / "model.json").read_text())
    assert saved["meta"]["primary"] == "sma_cross-10-30" and saved["meta"]["strategy"] == "sma_cross"
    assert saved["meta"]["params"] == {"fast": 10, "slow": 30}
    assert saved["meta"]["barriers"]["horizon"] == 60 and result.model_id.startswith("meta-")


def test_meta_gate_on_later_bars_refuses_entries_that_would_have_lost(tmp_path):
    # Arrange: trained on the first 20 regimes, traded on the 10 after them
    bars = regimes(30)
    train, later = bars.iloc[: 20 * BLOCK], bars.iloc[20 * BLOCK - 200 :]
    model_id = train_meta(_config(), tmp_path, train, PLAN).model_id
    config = _config(**{"session.strategy": "sma_cross", "gates.meta.model": model_id})
    path = tmp_path / "journal.jsonl"
    # Act
    journal = JournalWriter(path)
    try:
        result = run_backtest(config, later, journal, home=tmp_path, trial=False)
    finally:
        journal.close()
    table = ledger(read_journal(path), later, fee=0.0005, slippage=0.0)
    # Assert: its refusals would have lost money, and it let the calm regimes' entries through
    meta = table[table["stage"] == "meta"].iloc[0]
    assert meta["reason"] == "meta_label_low" and meta["trades"] >= 5
    assert meta["net_pnl"] < 0 and meta["verdict"] == "pays"
    assert result.summary["meta_model"] == model_id and result.summary["trades"] > 0
    lines = read_journal(path)
    assert set(lines["model"]) == {"sma_cross-10-30"}  # what decided is the primary


def test_meta_gate_on_a_random_walk_does_not_raise_the_sharpe(tmp_path):
    # Arrange
    bars = random_walk(30 * BLOCK)
    train, later = bars.iloc[: 20 * BLOCK], bars.iloc[20 * BLOCK - 200 :]
    plan = MetaPlan("sma_cross", {"fast": 10, "slow": 30}, horizon=60, folds=3, model="logistic")
    model_id = train_meta(_config(), tmp_path, train, plan).model_id
    alone = _config(**{"session.strategy": "sma_cross"})
    gated = _config(**{"session.strategy": "sma_cross", "gates.meta.model": model_id})
    # Act
    before = run_backtest(alone, later, home=tmp_path, trial=False)
    after = run_backtest(gated, later, home=tmp_path, trial=False)
    # Assert: no edge made of noise: the gated run's per-bar Sharpe ratio is not above the primary's
    # (or zero) by more than noise, and its probabilistic Sharpe ratio sees no edge
    assert after.summary["meta_model"] == model_id
    assert _sharpe(after.equity) < max(_sharpe(before.equity), 0.0) + 0.01
    assert after.summary["psr"] < 0.5


def test_meta_gate_without_a_model_leaves_the_run_and_its_trial_identity_as_they_were(tmp_path):
    # Arrange
    from labkit.analysis.trial_ledger import config_hash, trial_identity
    from labkit.config.assembly import build_gates

    config = _config(**{"session.strategy": "sma_cross"})
    without = config.model_copy(
        update={
            "gates": config.gates.model_copy(
                update={"enabled": tuple(g for g in config.gates.enabled if g != "meta")}
            )
        }
    )
    # Act
    chain = [gate.name for gate in build_gates(config)]
    # Assert
    assert "meta" not in chain
    assert trial_identity(config, "sma_cross-10-30") == trial_identity(without, "sma_cross-10-30")
    assert config_hash(config) == config_hash(without)
    gated = config.model_copy(
        update={
            "gates": config.gates.model_copy(
                update={"meta": config.gates.meta.model_copy(update={"model": "latest"})}
            )
        }
    )
    assert trial_identity(gated, "sma_cross-10-30") != trial_identity(config, "sma_cross-10-30")


def test_cli_train_meta_then_backtest_meta_latest_refuses_some_entries_and_passes_others(tmp_path, capsys):
    # Arrange
    home = ["--home", str(tmp_path)]
    market = ["--source", "synthetic", "--symbol", "BTC/USDT", "--timeframe", "1m"]
    code = main([*home, "train", "--meta", "sma_cross", *market, "--since", "2026-01-01", "--until",
                 "2026-01-08", "--folds", "3", "--model", "logistic", "--json"])  # fmt: skip
    trained = json.loads(capsys.readouterr().out)
    journal = tmp_path / "bt.jsonl"
    # Act
    code2 = main([*home, "backtest", "--strategy", "sma_cross", "--meta", "latest", *market, "--since",
                  "2026-01-08", "--until", "2026-01-10", "--journal", str(journal), "--json"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    # Assert
    assert code == 0 and code2 == 0
    assert trained["meta"]["primary"] == "sma_cross-10-30" and set(trained["oos"]) >= {"primary", "meta"}
    assert summary["meta_model"] == trained["model_id"]
    refused = [b["count"] for b in summary["blocks"] if b["stage"] == "meta"]
    assert refused and refused[0] > 0
    lines = read_journal(journal)
    passed = lines[(lines["proposed"] == "BUY") & (lines["action"] == "BUY")]
    assert len(passed) > 0
    assert summary["meta_in_sample_fraction"] < 0.01  # only the labels' look-ahead past its window
    # The meta model judged on its own training bars: the backtest says its gate proves nothing.
    code3 = main([*home, "backtest", "--strategy", "sma_cross", "--meta", trained["model_id"], *market,
                  "--since", "2026-01-03", "--until", "2026-01-04", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code3 == 0 and json.loads(out)["meta_in_sample_fraction"] == 1.0
    assert "already seen by model" in err and "(the meta gate's)" in err


def test_cli_bad_meta_exits_2_naming_the_flag(tmp_path, capsys):
    # Arrange
    home = ["--home", str(tmp_path)]
    market = ["--source", "synthetic", "--symbol", "BTC/USDT", "--timeframe", "1m", "--max-bars", "500"]
    # Act
    unknown_strategy = main([*home, "train", "--meta", "nope", *market])
    err1 = capsys.readouterr().err
    unknown_model = main(
        [*home, "backtest", "--strategy", "sma_cross", "--meta", "meta-000000000000", *market]
    )
    err2 = capsys.readouterr().err
    no_model = main([*home, "backtest", "--strategy", "sma_cross", "--meta", "latest", *market])
    err3 = capsys.readouterr().err
    book = main([*home, "backtest", "--symbols", "A/USD,B/USD", "--strategy", "sma_cross", "--meta", "latest",
                 "--source", "synthetic", "--timeframe", "1m", "--max-bars", "500"])  # fmt: skip
    err4 = capsys.readouterr().err
    # Assert
    assert (unknown_strategy, unknown_model, no_model, book) == (2, 2, 2, 2)
    assert "--meta" in err4 and "--symbol" in err4
    assert "--meta" in err1 and "sma_cross" in err1
    assert "--meta" in err2 and "--meta" in err3


def test_meta_probability_under_risk_sizing_scales_the_entry(tmp_path):
    # Arrange: the same primary behind meta probabilities of 0.75 and of 1 at every bar
    from labkit.strategies.meta_labeled import MetaLabeled, meta_size
    from labkit.strategies.registry import make_strategy

    bars = regimes(4)
    config = _config(**{"session.strategy": "sma_cross", "risk.sizing": "risk", "risk.stop_atr": 50.0})
    units = {}
    for p in (0.75, 1.0):
        strategy = MetaLabeled(make_strategy("sma_cross"), "given", 0.5, np.full(len(bars), p))
        # Act
        result = run_backtest(config, bars, strategy=strategy, trial=False)
        units[p] = result.trips["units"].iloc[0]
    # Assert: three quarters of the size at p = 0.75 (0.5 at the threshold, 1 at certainty)
    assert meta_size(np.array([0.5, 0.75, 1.0]), 0.5).tolist() == [0.5, 0.75, 1.0]
    assert units[0.75] / units[1.0] == pytest.approx(0.75)


def test_train_report_of_a_meta_model_compares_the_primary_alone_and_gated_out_of_sample(tmp_path):
    # Arrange
    from labkit.reports import research

    model_id = train_meta(_config(), tmp_path, regimes(30), PLAN).model_id
    # Act
    record = research.load_model_record(tmp_path, model_id)
    table = research.meta_comparison(record)
    # Assert
    assert research.is_meta(record) and len(record.oos) > 0
    assert list(table.index) == ["sma_cross-10-30 alone", "sma_cross-10-30 behind the meta gate"]
    assert list(table.columns) == ["entries", "net return (costs in)", "hit rate"]
    assert "the gate improved on the primary out of sample" in research.meta_conclusion(record)
    assert not research.walk_forward_table(record).empty

"""Refilling a session's decisions under other execution models."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.analysis.execution import ExecutionModel, execution_models, refill
from labkit.analysis.trips import round_trips
from labkit.engine.journal import JournalWriter, read_journal
from labkit.session.tape import tape_bars
from tests import stubs

COSTS = {"broker.fee": 0.001, "broker.slippage": 0.0005}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    home = tmp_path_factory.mktemp("exec")
    stubs.replayed_session(home, "x", "2026-01-05", "2026-01-05T12:00", **COSTS)
    paths = home / "data/sessions/x"
    return read_journal(paths / "decisions.jsonl"), tape_bars(paths / "tape.jsonl")


def test_refill_when_base_model_reproduces_the_session_fill_for_fill(session):
    # The definition: under the session's own costs, refilling changes nothing.
    journal, bars = session
    base = refill(journal, bars, ExecutionModel("base", 0.001, 0.0005), 10_000.0)
    pd.testing.assert_series_equal(
        base["equity"], journal["equity"].astype(float), rtol=1e-12, check_names=False
    )
    fills = journal["fill"].map(lambda f: f if isinstance(f, dict) else None)
    assert [f and {k: f[k] for k in ("side", "units", "price", "fee")} for f in base["fill"]] == [
        f and {k: f[k] for k in ("side", "units", "price", "fee")} for f in fills
    ]


def test_refill_when_adversarial_fills_a_bar_later_and_pays_more(session):
    journal, bars = session
    models = {m.name: m for m in execution_models(0.001, 0.0005)}
    base = round_trips(refill(journal, bars, models["base"], 10_000.0))
    worse = round_trips(refill(journal, bars, models["adversarial"], 10_000.0))
    better = round_trips(refill(journal, bars, models["optimistic"], 10_000.0))
    minute = pd.Timedelta(minutes=1)
    assert len(base) == len(worse) == len(better) > 3
    assert ((worse["entry_ts"] - base["entry_ts"]) == minute).all()  # one bar later
    assert (
        worse["fees"] / (worse["units"] * worse["entry_price"] + worse["units"] * worse["exit_price"])
    ).mean() == (pytest.approx(0.002, rel=0.01))
    assert better["slippage"].sum() == 0.0 and base["slippage"].sum() > 0.0
    assert better["net_pnl"].sum() > base["net_pnl"].sum()


def test_refill_when_an_emergency_stop_placed_the_exit_keeps_that_order(tmp_path):
    # Arrange: a session stopped while it holds a position, then emergency-stopped and resumed
    from labkit import operations as ops

    fast = {**COSTS, "strategies.sma_cross.fast": 2, "strategies.sma_cross.slow": 5}
    stubs.replayed_session(tmp_path, "probe", "2026-01-05", "2026-01-05T03:00", **fast)
    probe = read_journal(tmp_path / "data/sessions/probe/decisions.jsonl")
    holding = probe[(probe["position"] > 0) & (probe["action"] == "HOLD")]["ts"].iloc[5]
    until = (holding + pd.Timedelta(minutes=1)).isoformat()
    stubs.replayed_session(tmp_path, "e", "2026-01-05", until, **fast)
    assert ops.emergency_stop("e", tmp_path) == "applied"
    stubs.replayed_session(tmp_path, "e", "2026-01-05", "2026-01-05T03:00", **fast)
    journal = read_journal(tmp_path / "data/sessions/e/decisions.jsonl")
    bars = tape_bars(tmp_path / "data/sessions/e/tape.jsonl")
    # Act
    base = refill(journal, bars, ExecutionModel("base", 0.001, 0.0005), 10_000.0)
    # Assert: the flattening exit is refilled too, and the book ends as the session's did
    assert [f["reason"] for f in journal["fill"] if isinstance(f, dict) and f["reason"] != "signal"] == [
        "emergency_stop"
    ]
    assert base["position"].iloc[-1] == 0.0
    assert base["equity"].iloc[-1] == pytest.approx(journal["equity"].iloc[-1], rel=1e-12)


def test_refill_when_exits_and_risk_sizing_are_on_base_model_reproduces_the_session(tmp_path):
    # Arrange: risk-sized entries, and exits the engine enforced at their levels
    exits = {
        **COSTS,
        "risk.sizing": "risk",
        "risk.stop_atr": 1.5,
        "risk.take_profit_atr": 4.0,
        "risk.trailing_atr": 3.0,
        "risk.max_bars": 60,
        "strategies.sma_cross.fast": 5,
        "strategies.sma_cross.slow": 20,
    }
    stubs.replayed_session(tmp_path, "x", "2026-01-05", "2026-01-05T08:00", **exits)
    paths = tmp_path / "data/sessions/x"
    journal, bars = read_journal(paths / "decisions.jsonl"), tape_bars(paths / "tape.jsonl")
    reasons = {f["reason"] for f in journal["fill"] if isinstance(f, dict)}
    assert reasons & {"stop_loss", "take_profit", "trailing_stop", "time_stop"}
    # Act
    base = refill(journal, bars, ExecutionModel("base", 0.001, 0.0005), 10_000.0)
    # Assert
    pd.testing.assert_series_equal(
        base["equity"], journal["equity"].astype(float), rtol=1e-12, check_names=False
    )
    fills = journal["fill"].map(lambda f: f if isinstance(f, dict) else None)
    # An exit's level is recovered from its fill (price plus slippage per unit): equal to an ulp.
    got = [f and (f["side"], f["reason"], f["units"], f["price"], f["fee"]) for f in base["fill"]]
    want = [f and (f["side"], f["reason"], f["units"], f["price"], f["fee"]) for f in fills]
    assert [g and g[:2] for g in got] == [w and w[:2] for w in want]
    assert [x for g in got if g for x in g[2:]] == pytest.approx(
        [x for w in want if w for x in w[2:]], rel=1e-12
    )


def _backtest(tmp_path, **settings):
    # A real backtest of the fixture's 600 minutes with its journal, under `settings`.
    from labkit.config.loading import load_config
    from labkit.data.files import read_bar_file
    from labkit.research.backtest import run_backtest

    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(None, {**COSTS, **settings}, environ={})
    path = tmp_path / "bt.jsonl"
    writer = JournalWriter(path)
    run_backtest(config, bars, writer)
    writer.close()
    return read_journal(path), bars, config


def _same_book(refilled, journal):
    pd.testing.assert_series_equal(
        refilled["equity"], journal["equity"].astype(float), rtol=1e-9, check_names=False
    )
    pd.testing.assert_series_equal(
        refilled["cash"], journal["cash"].astype(float), rtol=1e-9, check_names=False
    )
    fills = journal["fill"].map(lambda f: f if isinstance(f, dict) else None)
    got = [f and (f["side"], f["units"], f["price"], f["fee"]) for f in refilled["fill"]]
    want = [f and (f["side"], f["units"], f["price"], f["fee"]) for f in fills]
    assert [g and g[0] for g in got] == [w and w[0] for w in want]
    assert [x for g in got if g for x in g[1:]] == pytest.approx(
        [x for w in want if w for x in w[1:]], rel=1e-9
    )


@pytest.mark.parametrize(
    "sizing",
    [
        {"risk.position_frac": 0.5},
        {"risk.sizing": "risk", "risk.stop_atr": 2.0, "risk.risk_per_trade": 0.002, "risk.max_exposure": 0.6},
    ],
    ids=["all_in_half", "risk"],
)
def test_refill_when_base_model_sizes_as_the_session_reproduces_its_book(tmp_path, sizing):
    # Arrange: a backtest that spends half its cash per entry, or sizes each entry by its stop
    journal, bars, config = _backtest(
        tmp_path, **{"strategies.sma_cross.fast": 5, "strategies.sma_cross.slow": 20, **sizing}
    )
    assert (journal["fill_side"] == "SELL").sum() >= 3
    # Act
    base = refill(
        journal, bars, ExecutionModel("base", 0.001, 0.0005), 10_000.0, risk=config.risk.model_dump()
    )
    # Assert: equity, cash and every fill to 1e-9
    _same_book(base, journal)


def test_execution_check_when_given_the_session_risk_judges_base_on_the_session_own_trades(tmp_path):
    # Arrange: half the cash per entry; the base model must net what the session netted
    from labkit.analysis.calendar import MarketCalendar
    from labkit.analysis.periods import iso_week
    from labkit.config.schema import ReadinessConfig
    from labkit.readiness.evidence import execution_check

    journal, bars, config = _backtest(
        tmp_path,
        **{"risk.position_frac": 0.5, "strategies.sma_cross.fast": 5, "strategies.sma_cross.slow": 20},
    )
    week = iso_week(journal["ts"].iloc[0])
    # Act
    checked = execution_check(
        journal,
        bars,
        week,
        ReadinessConfig(),
        60_000,
        10_000.0,
        MarketCalendar(),
        0.001,
        0.0005,
        risk=config.risk.model_dump(),
    )
    # Assert
    assert checked["base"]["net_pnl"] == pytest.approx(float(round_trips(journal)["net_pnl"].sum()), rel=1e-9)

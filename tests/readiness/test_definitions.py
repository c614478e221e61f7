"""Issue 9: the cases that let weak evidence pass readiness, each judged as readiness now defines it.

An audit found that the arithmetic was right but the definitions let short, costless or stale
evidence through: coverage counted only the span a session ran, gate health counted HOLD bars,
shadow fills were costless, drawdown reset its peak each week, costs were compared with the
winners' profit only, empty weeks wrote verdicts, and `transition` trusted any saved verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from labkit.config import ReadinessConfig
from labkit.journal import read_journal
from labkit.readiness.calendar import calendar_of
from labkit.readiness.weekly import weekly_readiness
from labkit.session.paths import session_paths
from labkit.session.state import read_saved_config
from tests import stubs
from tests.readiness.test_readiness import HOUR_MS, MINUTE_MS, WEEK, journal, trips_with_returns

CONFIG = ReadinessConfig()


def _session(home: Path, name: str, since: str, until: str, **overrides: Any) -> pd.DataFrame:
    stubs.replayed_session(home, name, since, until, **overrides)
    return read_journal(session_paths(home, name).decisions)


def _judge(home: Path, name: str, week: str = WEEK):
    paths = session_paths(home, name)
    config = read_saved_config(paths) or {}
    frame = read_journal(paths.decisions)
    s = config["session"]
    return weekly_readiness(frame, week, CONFIG, MINUTE_MS, s["capital"], calendar_of(config, frame))


# --- coverage: the whole week of the market's calendar ---------------------------------------------


def test_coverage_when_session_ran_two_and_a_quarter_days_is_not_ready():
    # Arrange: 2.25 days of minutes with a steady, well-paid edge; the old rule called this 100%
    fills = trips_with_returns([0.010, 0.012, 0.008, 0.011] * 5, n=3240)
    frame = journal(n=3240, tf_ms=MINUTE_MS, fills={i: (s, u, p, 0.05, 0.0) for i, (s, u, p, _, _) in fills.items()})
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS, capital=1000.0)
    # Assert
    gate = result.gate("coverage")
    assert (gate.figures["decisions"], gate.figures["expected"]) == (3240, 10_080)
    assert gate.figures["coverage"] == pytest.approx(3240 / 10_080) and not gate.passed
    assert result.outcome == "NOT READY"
    assert "days the session did not run count as missing" in gate.explanation


# --- gate health: blocks among entry proposals -------------------------------------------------------


def test_gate_health_when_risk_budget_blocked_143_of_143_entries_fails():
    # Arrange: 143 entry proposals among 7,150 decisions, all refused by the risk budget. Counted
    # over every decision (HOLD bars included) that was 2.0% and passed.
    frame = journal(n=7150, tf_ms=MINUTE_MS)
    entries = np.arange(143) * 50 + 25
    frame.loc[entries, "proposed"] = "BUY"
    frame.loc[entries, ["stage", "reason"]] = ["risk_budget", "risk_budget_exhausted"]
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS).gate("gate_health")
    # Assert
    assert not gate.passed
    assert gate.figures["top_reason"] == "risk_budget/risk_budget_exhausted"
    assert (gate.figures["top_reason_blocks"], gate.figures["entry_proposals"]) == (143, 143)
    assert gate.figures["top_reason_share"] == 1.0
    assert "refused 143 of 143 entry proposals (100.0%)" in gate.explanation


def test_gate_health_when_data_errors_counts_them_against_the_bars_expected():
    # Arrange: the session ran a day; its 100 stale bars are 1% of the week's 10,080
    frame = journal(n=1440, tf_ms=MINUTE_MS)
    frame.loc[np.arange(100) * 10, ["stage", "reason"]] = ["data", "stale_data"]
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS).gate("gate_health")
    # Assert
    assert gate.figures["data_error_share"] == pytest.approx(100 / 10_080)


# --- shadow fills with the paper costs ------------------------------------------------------------


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("twins")
    costs = {"broker.fee": 0.001, "broker.slippage": 0.0005}
    for mode in ("shadow", "paper"):
        _session(home, mode, "2026-01-05", "2026-01-08", **{"session.mode": mode}, **costs)
    return home


def test_shadow_and_paper_when_same_bars_show_the_same_costs_and_drawdown(twins):
    # Arrange: shadow used to follow its fills without costs (drawdown 9.7% where paper read 13.6%)
    shadow, paper = (read_journal(session_paths(twins, m).decisions) for m in ("shadow", "paper"))
    columns = ["ts", "action", "fill_units", "fill_price", "fill_fee", "fill_slippage_cost", "equity"]
    # Act
    judged = {m: _judge(twins, m) for m in ("shadow", "paper")}
    # Assert
    assert set(shadow["mode"]) == {"shadow"} and set(paper["mode"]) == {"paper"}
    pd.testing.assert_frame_equal(shadow[columns], paper[columns])
    assert shadow["fill_fee"].sum() > 0 and shadow["fill_slippage_cost"].sum() > 0
    for gate in ("drawdown", "cost_efficiency"):
        assert judged["shadow"].gate(gate).figures == judged["paper"].gate(gate).figures, gate
    assert judged["shadow"].gate("cost_efficiency").figures["costs"] > 0


def test_cost_efficiency_when_fills_carry_no_costs_is_not_judged():
    # Arrange: a shadow record written before shadow fills had costs: every fill free
    frame = journal(fills=trips_with_returns([0.010, 0.012, 0.008, 0.011] * 5))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("cost_efficiency")
    # Assert
    assert not gate.passed and gate.figures["costless"] is True
    assert "a costless record is not judged" in gate.explanation


# --- drawdown from the session's running peak -------------------------------------------------------


def test_drawdown_when_week_sits_under_the_sessions_earlier_peak_measures_from_that_peak():
    # Arrange: the session peaks at 1,000 in W02 and ends it at 842.70; in W03 it slides to 750,
    # 11% under the week's own high but 25% under the session's
    equity = np.full(336, 1000.0)
    equity[167] = 842.70
    equity[168:] = np.linspace(842.70, 750.0, 168)
    frame = journal(n=336, equity=equity)
    # Act
    gate = weekly_readiness(frame, "2026-W03", CONFIG, HOUR_MS, capital=1000.0).gate("drawdown")
    # Assert
    assert gate.figures["max_drawdown"] == pytest.approx(0.25)
    assert gate.figures["week_drawdown"] == pytest.approx(1 - 750.0 / 842.70)
    assert gate.figures["peak_equity"] == 1000.0 and not gate.passed


# --- cost efficiency against the gross PnL of all closed trades -----------------------------------


def test_cost_efficiency_when_losers_eat_the_winners_gross_compares_costs_with_all_trades():
    # Arrange: winners gross +100, a loser gross -80, costs 15. Against the winners alone that
    # was 15% and passed; against the gross PnL of all trades (20) it is 75%.
    frame = journal(
        n=12,
        fills={
            1: ("BUY", 1.0, 100.0, 2.5, 0.0),
            2: ("SELL", 1.0, 200.0, 2.5, 0.0),
            4: ("BUY", 1.0, 100.0, 2.5, 0.0),
            5: ("SELL", 1.0, 20.0, 2.5, 0.0),
            7: ("BUY", 1.0, 100.0, 1.25, 0.0),
            8: ("SELL", 1.0, 100.0, 3.75, 0.0),
        },
    )
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("cost_efficiency")
    # Assert
    assert gate.figures["gross_pnl"] == pytest.approx(20.0)
    assert gate.figures["costs"] == pytest.approx(15.0)
    assert gate.figures["cost_share"] == pytest.approx(0.75) and not gate.passed

from __future__ import annotations

import doctest
import importlib
import json
import math
import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import labkit.readiness
from labkit.analysis.metrics import bootstrap_mean_ci, max_drawdown, probabilistic_sharpe_ratio
from labkit.analysis.trips import round_trips
from labkit.config.schema import ReadinessConfig
from labkit.engine.journal import read_journal
from labkit.readiness.daily import daily_health
from labkit.readiness.verdicts import latest_verdict, save_verdict
from labkit.readiness.weekly import weekly_readiness
from labkit.session.paths import session_paths
from tests import stubs

WEEK = "2026-W02"
MONDAY = pd.Timestamp("2026-01-05", tz="UTC")
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
CONFIG = ReadinessConfig()


def journal(
    n: int = 168,
    tf_ms: int = HOUR_MS,
    equity: Any = 1000.0,
    fills: dict[int, tuple[str, float, float, float, float]] | None = None,
    blocks: dict[int, tuple[str, str]] | None = None,
    drop: tuple[int, ...] = (),
) -> pd.DataFrame:
    """A hand-made journal: `n` bars from Monday 2026-01-05, fills {i: (side, units, price, fee,
    slippage)} and blocks {i: (stage, reason)}."""
    ts = MONDAY + pd.to_timedelta(np.arange(n) * tf_ms, unit="ms")
    frame = pd.DataFrame(
        {
            "seq": np.arange(n),
            "ts": ts,
            "decided_at": ts + pd.Timedelta(milliseconds=tf_ms),
            "symbol": "BTC/USDT",
            "price": 100.0,
            "action": "HOLD",
            "stage": "passed",
            "reason": [None] * n,
            "equity": equity,
            "model": "m-1",
            "fill_side": [None] * n,
            "fill_units": np.nan,
            "fill_price": np.nan,
            "fill_fee": np.nan,
            "fill_slippage_cost": np.nan,
            "fill_pnl": np.nan,
        }
    )
    for i, (side, units, price, fee, slip) in (fills or {}).items():
        frame.loc[i, ["fill_side", "fill_units", "fill_price", "fill_fee", "fill_slippage_cost"]] = [
            side,
            units,
            price,
            fee,
            slip,
        ]
        frame.loc[i - 1, "action"] = side
    for i, (stage, reason) in (blocks or {}).items():
        frame.loc[i, ["stage", "reason"]] = [stage, reason]
    frame["proposed"] = frame["action"]
    return frame.drop(index=list(drop)).reset_index(drop=True)


def trips_with_returns(
    returns: list[float], n: int = 168
) -> dict[int, tuple[str, float, float, float, float]]:
    """Cost-free round trips of 1 unit at 100, spread evenly over `n` bars, with these net returns."""
    step = n // len(returns)
    fills = {}
    for k, ret in enumerate(returns):
        fills[k * step + 1] = ("BUY", 1.0, 100.0, 0.0, 0.0)
        fills[k * step + 2] = ("SELL", 1.0, 100.0 * (1 + ret), 0.0, 0.0)
    return fills


@pytest.fixture(scope="module")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    return stubs.replayed_session(home, "golden", "2026-01-05T12:00", "2026-01-07T06:00",
                                  **{"broker.slippage": 0.0005})


@pytest.fixture(scope="module")
def session_journal(session_home: Path) -> pd.DataFrame:
    return read_journal(session_paths(session_home, "golden").decisions)


def test_readiness_docstring_examples_when_run_print_what_they_show():
    # Arrange / Act
    results = [doctest.testmod(importlib.import_module(f"labkit.readiness.{m.name}"))
               for m in pkgutil.iter_modules(labkit.readiness.__path__)]
    # Assert
    assert sum(r.failed for r in results) == 0 and sum(r.attempted for r in results) >= 5


# --- round trips ---------------------------------------------------------------------------------


def test_round_trips_when_hand_made_fills_returns_closed_trades_only():
    # Arrange: a trip, a trip entered in two BUYs, then a position left open
    frame = journal(
        n=12,
        fills={
            1: ("BUY", 2.0, 100.0, 0.2, 0.1),
            3: ("SELL", 2.0, 110.0, 0.22, 0.11),
            5: ("BUY", 1.0, 100.0, 0.1, 0.0),
            6: ("BUY", 1.0, 120.0, 0.12, 0.0),
            8: ("SELL", 2.0, 90.0, 0.18, 0.0),
            10: ("BUY", 1.0, 50.0, 0.05, 0.0),
        },
    )
    expected = pd.DataFrame(
        {
            "entry_ts": [MONDAY + pd.Timedelta(hours=1), MONDAY + pd.Timedelta(hours=5)],
            "exit_ts": [MONDAY + pd.Timedelta(hours=3), MONDAY + pd.Timedelta(hours=8)],
            "units": [2.0, 2.0],
            "entry_price": [100.0, 110.0],
            "exit_price": [110.0, 90.0],
            "entry_cost": [200.2, 220.22],
            "fees": [0.42, 0.40],
            "slippage": [0.21, 0.0],
            "gross_pnl": [20.21, -40.0],
            "net_pnl": [19.58, -40.40],
            "net_return": [19.58 / 200.2, -40.40 / 220.22],
        }
    )
    # Act
    result = round_trips(frame)
    # Assert
    pd.testing.assert_frame_equal(result, expected, check_exact=False, rtol=1e-12, check_index_type=False)


def test_round_trips_when_no_fills_returns_empty_frame():
    # Arrange
    frame = journal(n=5)
    # Act
    result = round_trips(frame)
    # Assert
    assert result.empty and "net_return" in result.columns


def test_round_trips_when_real_session_matches_journal_pnl(session_journal):
    # Arrange
    sells = session_journal[session_journal["fill_side"] == "SELL"]
    # Act
    result = round_trips(session_journal)
    # Assert
    np.testing.assert_allclose(result["net_pnl"], sells["fill_pnl"], rtol=0, atol=1e-9)


# --- helpers: drawdown, bootstrap, PSR -----------------------------------------------------------


def test_max_drawdown_when_start_is_peak_measures_from_it():
    # Arrange / Act
    result = max_drawdown([95.0, 99.0, 90.0], start=100.0)
    # Assert
    assert result == pytest.approx(0.10)


def test_bootstrap_mean_ci_when_same_seed_is_deterministic():
    # Arrange
    values = np.random.default_rng(3).normal(0.001, 0.01, 40)
    # Act
    first, second = bootstrap_mean_ci(values, 2000, seed=0), bootstrap_mean_ci(values, 2000, seed=0)
    other = bootstrap_mean_ci(values, 2000, seed=1)
    # Assert
    assert first == second
    assert first != other
    assert first[0] < values.mean() < first[1]


def test_bootstrap_mean_ci_when_one_value_returns_nan():
    # Arrange / Act
    low, high = bootstrap_mean_ci([0.01])
    # Assert
    assert math.isnan(low) and math.isnan(high)


def test_probabilistic_sharpe_ratio_when_known_sample_returns_golden_value():
    # Arrange
    returns = [0.01, 0.02, -0.005, 0.015, 0.004]
    # Act
    result = probabilistic_sharpe_ratio(returns)
    # Assert
    assert result == pytest.approx(0.931425, abs=1e-6)
    assert probabilistic_sharpe_ratio(returns) == result


@pytest.mark.parametrize("returns", [[0.01, 0.02], [0.01, 0.01, 0.01]])
def test_probabilistic_sharpe_ratio_when_too_few_or_flat_returns_nan(returns):
    # Arrange / Act
    result = probabilistic_sharpe_ratio(returns)
    # Assert
    assert math.isnan(result)


# --- weekly gates --------------------------------------------------------------------------------


@pytest.mark.parametrize(("dropped", "passed"), [(8, True), (9, False)])
def test_weekly_coverage_when_around_threshold_passes_or_fails(dropped, passed):
    # Arrange: the week's 168 hourly bars, `dropped` of them missing in the middle
    frame = journal(n=168, drop=tuple(range(10, 10 + dropped)))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("coverage")
    # Assert
    assert gate.passed is passed
    assert gate.figures["expected"] == 168
    assert gate.figures["coverage"] == pytest.approx((168 - dropped) / 168)


@pytest.mark.parametrize(("trades", "passed"), [(19, False), (20, True)])
def test_weekly_activity_when_around_min_trades_passes_or_fails(trades, passed):
    # Arrange
    frame = journal(fills=trips_with_returns([0.01] * trades))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("activity")
    # Assert
    assert gate.passed is passed
    assert gate.figures["trades"] == trades


@pytest.mark.parametrize(
    ("returns", "passed"),
    [
        ([0.010, 0.012, 0.008, 0.011] * 5, True),  # steady positive edge
        ([0.05, -0.045] * 10, False),  # positive mean, interval crosses zero
        ([-0.010, 0.008] * 10, False),  # negative mean
    ],
)
def test_weekly_positive_edge_when_mean_and_interval_judged(returns, passed):
    # Arrange
    frame = journal(fills=trips_with_returns(returns))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("positive_edge")
    # Assert
    assert gate.passed is passed
    assert gate.figures["mean_return"] == pytest.approx(np.mean(returns))


def test_weekly_edge_stability_when_steady_edge_passes():
    # Arrange
    returns = [0.010, 0.012, 0.008, 0.011] * 5
    frame = journal(fills=trips_with_returns(returns))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("edge_stability")
    # Assert
    assert gate.passed
    assert gate.figures["same_sign"] == 4
    assert gate.figures["psr"] > 0.95


def test_weekly_edge_stability_when_edge_only_in_first_half_fails():
    # Arrange: winners in the first half of the week, losers in the second
    returns = [0.03] * 10 + [-0.005] * 10
    frame = journal(fills=trips_with_returns(returns))
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("edge_stability")
    # Assert
    assert not gate.passed
    assert gate.figures["same_sign"] == 2


@pytest.mark.parametrize(("low", "passed"), [(90.1, True), (89.9, False)])
def test_weekly_drawdown_when_around_limit_passes_or_fails(low, passed):
    # Arrange
    equity = np.full(168, 100.0)
    equity[50:] = low
    frame = journal(equity=equity)
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS, capital=100.0).gate("drawdown")
    # Assert
    assert gate.passed is passed
    assert gate.figures["max_drawdown"] == pytest.approx(1 - low / 100)


@pytest.mark.parametrize(("fee", "passed"), [(24.5, True), (25.5, False)])
def test_weekly_cost_efficiency_when_around_limit_passes_or_fails(fee, passed):
    # Arrange: gross profit 100 on one winner; costs = 2 * fee
    frame = journal(fills={1: ("BUY", 1.0, 100.0, fee, 0.0), 2: ("SELL", 1.0, 200.0, fee, 0.0)})
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("cost_efficiency")
    # Assert
    assert gate.passed is passed
    assert gate.figures["gross_pnl"] == pytest.approx(100.0)
    assert gate.figures["cost_share"] == pytest.approx(2 * fee / 100.0)


def test_weekly_cost_efficiency_when_no_gross_profit_fails():
    # Arrange: two losing trades that paid fees
    fills = trips_with_returns([-0.01, -0.02])
    frame = journal(fills={i: (s, u, p, 0.01, 0.0) for i, (s, u, p, _, _) in fills.items()})
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS).gate("cost_efficiency")
    # Assert
    assert not gate.passed
    assert gate.figures["cost_share"] is None or math.isnan(gate.figures["cost_share"])
    assert "no gross profit" in gate.explanation


@pytest.mark.parametrize(
    ("blocked", "errors", "passed"),
    [
        (90, 0, True),  # one reason on 90 of 100 entry proposals: at the limit
        (91, 0, False),  # just over
        (0, 0, True),
        (0, 100, True),  # 100 data errors in the week's 10,080 bars = 0.99%
        (0, 101, False),  # 101 = 1.002%, not under 1%
    ],
)
def test_weekly_gate_health_when_around_limits_passes_or_fails(blocked, errors, passed):
    # Arrange: 100 entry proposals among the week's minutes, `blocked` of them refused
    frame = journal(n=10_080, tf_ms=MINUTE_MS)
    entries = np.arange(100) * 60 + 30
    frame.loc[entries, "proposed"] = "BUY"
    frame.loc[entries[:blocked], ["stage", "reason"]] = ["risk_budget", "risk_budget_exhausted"]
    frame.loc[10_079 - np.arange(errors), ["stage", "reason"]] = ["data", "stale_data"]
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS).gate("gate_health")
    # Assert
    assert gate.passed is passed


def test_weekly_readiness_when_session_is_starved_fails_gate_health_without_crashing():
    # Arrange: every decision waits for data, entry proposals included
    frame = journal(blocks={i: ("data", "insufficient_data:0") for i in range(168)})
    frame.loc[::8, "proposed"] = "BUY"
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    # Assert
    health = result.gate("gate_health")
    assert not health.passed
    assert health.figures["top_reason"] == "data/insufficient_data"
    assert health.figures["top_reason_share"] == 1.0
    assert not result.passed
    assert data["gates"][2]["figures"]["mean_return"] is None
    assert "too few" in result.gate("positive_edge").explanation


def test_weekly_readiness_when_week_has_no_decisions_is_empty_and_passes_nothing():
    # Arrange
    frame = journal(n=24)
    # Act
    result = weekly_readiness(frame, "2026-W05", CONFIG, HOUR_MS)
    # Assert
    assert result.empty and not result.passed and result.outcome == "empty"
    assert [g.passed for g in result.gates if g.name != "gate_health"] == [False] * 7
    assert result.decisions == 0 and result.expected == 168
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["empty"] is True


def test_weekly_readiness_when_all_gates_pass_passes():
    # Arrange
    returns = [0.010, 0.012, 0.008, 0.011] * 5
    fills = trips_with_returns(returns)
    growth = 1.0 + 0.001 + 0.0005 * np.sin(np.arange(168))  # steady: its Sharpe is no luck
    frame = journal(
        equity=1000.0 * np.cumprod(growth),
        fills={i: (s, u, p, 0.05, 0.0) for i, (s, u, p, _, _) in fills.items()},
    )
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS, capital=1000.0)
    # Assert
    assert [g.name for g in result.gates if not g.passed] == []
    assert result.passed and result.outcome == "READY" and result.replays == 0


# --- daily health: golden numbers on a real synthetic session ------------------------------------


def test_daily_health_when_full_day_of_real_session_matches_golden_numbers(session_journal):
    # Arrange
    expected = {
        "day": "2026-01-06",
        "first_bar": "2026-01-06T00:00:00+00:00",
        "last_bar": "2026-01-06T23:59:00+00:00",
        "decisions": 1440,
        "expected": 1440,
        "coverage": 1.0,
        "missing_bars": 0,
        "replays": 1440,  # a fast replay: every line decided long after its bar closed
        "heartbeat_gaps": 0,
        "max_gap_seconds": 0.0,
        "data_errors": 0,
        "data_error_share": 0.0,
        "actions": {"BUY": 6, "SELL": 7},
        "fills": {"BUY": 6, "SELL": 7},
        "blocked": 15,
        "blocking_stages": {"guardrails": 15},
        "top_reasons": [
            {"stage": "guardrails", "reason": "loss_streak", "count": 15, "share": 15 / 1440},
        ],
        "trades_closed": 7,
        "start_equity": 10054.138070502644,
        "end_equity": 9747.234273585555,
        "pnl": -306.9037969170895,
        "pnl_pct": -0.030525122567940488,
        "realized_pnl": -310.53727567428905,
        "fees": 129.2506462911864,
        "slippage": 64.62780842377526,
        "max_drawdown": 0.04984330547771254,
        "session_drawdown": 0.04984330547771254,  # the session peaked at the start of the day
        "calendar": "24/7: every day, 24 hours UTC; a year is 365 days (the default)",
    }
    # Act
    result = daily_health(session_journal, "2026-01-06", MINUTE_MS, capital=10_000.0)
    # Assert
    _assert_close(result, expected)


@pytest.mark.parametrize(
    ("day", "decided", "top"),
    [
        ("2026-01-05", 720, ("data", "insufficient_data", 30)),  # session starts at noon
        ("2026-01-07", 360, None),  # session ends at 06:00; nothing blocked that morning
    ],
)
def test_daily_health_when_partial_day_expects_the_whole_day_of_bars(session_journal, day, decided, top):
    # Arrange / Act
    result = daily_health(session_journal, day, MINUTE_MS, capital=10_000.0)
    # Assert: the hours the session did not run are missing bars of a 24/7 market
    assert (result["decisions"], result["expected"]) == (decided, 1440)
    assert result["missing_bars"] == 1440 - decided
    reasons = [(r["stage"], r["reason"], r["count"]) for r in result["top_reasons"]]
    assert reasons[:1] == ([top] if top else [])


def test_daily_health_when_bars_missing_late_and_stale_counts_them(session_journal):
    # Arrange: drop 10 bars, stall the clock 10 minutes once, mark 3 bars stale
    frame = session_journal.copy()
    day = frame[frame["ts"].dt.strftime("%Y-%m-%d") == "2026-01-06"].index
    frame = frame.drop(index=day[100:110])
    frame.loc[day[500] :, "decided_at"] += pd.Timedelta(minutes=10)
    frame.loc[day[600:603], ["stage", "reason"]] = ["data", "stale_data"]
    # Act
    result = daily_health(frame, "2026-01-06", MINUTE_MS, capital=10_000.0)
    # Assert
    assert (result["decisions"], result["expected"], result["missing_bars"]) == (1430, 1440, 10)
    assert result["heartbeat_gaps"] == 1
    assert result["max_gap_seconds"] == pytest.approx(600, abs=1)
    assert result["data_errors"] == 3


def test_daily_health_when_day_outside_session_returns_none_figures(session_journal):
    # Arrange / Act
    result = daily_health(session_journal, "2026-02-01", MINUTE_MS)
    # Assert
    assert (result["decisions"], result["expected"], result["coverage"]) == (0, 1440, 0.0)
    assert result["pnl"] == 0.0 and result["max_drawdown"] is None
    json.dumps(result, allow_nan=False)


def test_daily_health_and_weekly_when_journal_is_empty_return_honest_nones(tmp_path):
    # Arrange: a session that has not decided a bar yet
    frame = read_journal(tmp_path / "decisions.jsonl")
    # Act
    health = daily_health(frame, "2026-01-05", MINUTE_MS)
    weekly = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS)
    # Assert
    assert (health["decisions"], health["pnl"], health["max_drawdown"]) == (0, None, None)
    assert not weekly.passed and round_trips(frame).empty
    json.dumps(weekly.to_dict(), allow_nan=False)


# --- verdicts on disk ----------------------------------------------------------------------------


def test_latest_verdict_when_two_weeks_saved_returns_later_week(tmp_path):
    # Arrange
    frame = journal(n=24 * 14)
    for week in ("2026-W03", "2026-W02"):
        save_verdict(tmp_path, "s1", weekly_readiness(frame, week, CONFIG, HOUR_MS))
    # Act
    result = latest_verdict(tmp_path, "s1")
    # Assert
    assert result is not None
    assert result["week"] == "2026-W03" and result["session"] == "s1"
    assert (tmp_path / "data/sessions/s1/readiness/weekly-2026-W02.json").exists()


def test_latest_verdict_when_none_saved_returns_none(tmp_path):
    # Arrange / Act
    result = latest_verdict(tmp_path, "nothing")
    # Assert
    assert result is None


def _assert_close(result: dict[str, Any], expected: dict[str, Any]) -> None:
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert result[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        elif key == "top_reasons":
            for got, want in zip(result[key], value, strict=True):
                assert got == pytest.approx(want), key
        else:
            assert result[key] == value, key

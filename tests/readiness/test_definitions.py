"""Issue 9: the cases that let weak evidence pass readiness, each judged as readiness now defines it.

An audit found that the arithmetic was right but the definitions let short, costless or stale
evidence through: coverage counted only the span a session ran, gate health counted HOLD bars,
shadow fills were costless, drawdown reset its peak each week, costs were compared with the
winners' profit only, empty weeks wrote verdicts, and `transition` trusted any saved verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from labkit import operations as ops
from labkit.analysis.calendar import calendar_of
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.config.schema import ReadinessConfig
from labkit.engine.journal import read_journal
from labkit.errors import CheckFailedError, ConfigError
from labkit.readiness import verdicts
from labkit.readiness.verdicts import promotion_check, save_verdict, verdict_path
from labkit.readiness.weekly import weekly_readiness
from labkit.session.paths import session_paths
from labkit.session.state import load_state, read_saved_config
from labkit.timeutil import DAY_MS, iso_ms, now_ms, parse_instant
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


def test_transition_when_shadow_session_ran_two_and_a_quarter_days_refuses_on_coverage(tmp_path, capsys):
    # Arrange: the session of the audit, its verdict saved as `labkit report weekly` saves it
    _session(tmp_path, "short", "2026-01-05", "2026-01-07T06:00", **{"session.mode": "shadow"})
    result = _judge(tmp_path, "short")
    save_verdict(tmp_path, "short", result)
    # Act
    code = main(["--home", str(tmp_path), "transition", "--to", "paper", "--session", "short"])
    # Assert
    assert result.gate("coverage").figures["coverage"] == pytest.approx(3240 / 10_080)
    assert code == 1 and "the weekly readiness for 2026-W02 fails: coverage" in capsys.readouterr().err
    assert load_state(session_paths(tmp_path, "short"))["mode"] == "shadow"


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
    assert "from the session's running peak (1,000.00 USDT)" in gate.explanation


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
    assert "fees and slippage 15.00 USDT are 75.0% of the gross PnL 20.00 USDT" in gate.explanation


# --- empty periods get no verdict ------------------------------------------------------------------


def test_save_verdict_when_week_is_empty_refuses(tmp_path):
    # Arrange
    result = weekly_readiness(journal(n=24), "2026-W05", CONFIG, HOUR_MS)
    # Act
    with pytest.raises(ConfigError) as caught:
        save_verdict(tmp_path, "s1", result)
    # Assert
    assert "decided nothing in 2026-W05; an empty week gets no verdict" in str(caught.value)
    assert not verdict_path(tmp_path, "s1", "2026-W05").exists()


@pytest.fixture(scope="module")
def rendered_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labkit.reports.render import render_report

    home = stubs.replayed_session(tmp_path_factory.mktemp("reports"), "r", "2026-01-05", "2026-01-05T06:00")
    config = load_config(None, {}, environ={})
    render_report("weekly", "r", home, config)  # no --week: the session's last decided week
    render_report("weekly", "r", home, config, week="2026-W10")  # a week it did not run
    return home


@pytest.mark.slow
def test_render_weekly_when_no_week_given_judges_the_last_decided_week(rendered_home):
    # Arrange
    sidecar = json.loads((rendered_home / "reports/r/weekly-2026-W02.json").read_text())
    # Act
    verdict = json.loads(verdict_path(rendered_home, "r", "2026-W02").read_text())
    # Assert
    assert sidecar["period"] == "2026-W02" and sidecar["outcome"] == "NOT READY"
    assert sidecar["parameters"]["verdict"] == "data/sessions/r/readiness/weekly-2026-W02.json"
    assert "thresholds" not in sidecar["parameters"]
    assert verdict["thresholds"] == CONFIG.model_dump(mode="json") and verdict["code_version"]
    assert verdict["calendar"]["kind"] == "24/7"


@pytest.mark.slow
def test_render_weekly_when_week_is_empty_saves_no_verdict_and_lists_it_empty(rendered_home):
    # Arrange
    page = (rendered_home / "reports/r/weekly-2026-W10.html").read_text(encoding="utf-8")
    sidecar = json.loads((rendered_home / "reports/r/weekly-2026-W10.json").read_text())
    # Act
    index = (rendered_home / "reports/index.html").read_text(encoding="utf-8")
    # Assert
    assert not verdict_path(rendered_home, "r", "2026-W10").exists()
    assert sidecar["outcome"] == "empty" and sidecar["parameters"]["verdict"] == ""
    assert "No verdict: the session decided nothing in 2026-W10" in page
    assert '<td class="empty">empty</td>' in index and '<td class="notready">NOT READY</td>' in index


# --- transition checks the verdict it relies on ------------------------------------------------------


def _passing(home: Path, session: str, week: str = WEEK, **changes: Any) -> None:
    # A verdict as `labkit report weekly` saves a passing one; each test spoils one property.
    verdict = {
        "session": session,
        "saved_at": iso_ms(now_ms()),
        "code_version": "test",
        "week": week,
        "passed": True,
        "outcome": "READY",
        "empty": False,
        "decisions": 10_000,
        "expected": 10_080,
        "thresholds": CONFIG.model_dump(mode="json"),
        "gates": [{"name": "coverage", "passed": True}],
        **changes,
    }
    path = verdict_path(home, session, week)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict))


@pytest.fixture
def shadow_home(tmp_path: Path) -> Path:
    stubs.replayed_session(tmp_path, "s", "2026-01-05", "2026-01-05T06:00", **{"session.mode": "shadow"})
    return tmp_path


def _transition(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--home", str(home), "transition", "--to", "paper", "--session", "s"])
    return code, capsys.readouterr().err


def test_transition_when_latest_complete_week_passes_fresh_and_strict_promotes(shadow_home, capsys):
    # Arrange
    _passing(shadow_home, "s")
    # Act
    code, _ = _transition(shadow_home, capsys)
    # Assert
    state = load_state(session_paths(shadow_home, "s"))
    assert code == 0 and state["mode"] == "paper"
    assert state["transitions"][-1]["verdict"]["week"] == WEEK
    assert state["transitions"][-1]["verdict"]["refused"] is None


def test_transition_when_verdict_is_nine_days_old_refuses_naming_its_age(shadow_home, capsys):
    # Arrange
    _passing(shadow_home, "s", saved_at=iso_ms(now_ms() - 9 * DAY_MS))
    # Act
    code, err = _transition(shadow_home, capsys)
    # Assert
    assert code == 1 and "was saved 9 d ago" in err and "it must be at most 8 days old" in err
    assert load_state(session_paths(shadow_home, "s"))["mode"] == "shadow"


def test_transition_when_verdict_used_looser_thresholds_refuses_naming_each(shadow_home, capsys):
    # Arrange: a report run with min_trades 7 and a 30% drawdown limit: a promotable verdict once
    looser = {**CONFIG.model_dump(mode="json"), "min_trades": 7, "max_drawdown": 0.3, "min_psr": 0.99}
    _passing(shadow_home, "s", thresholds=looser)
    # Act
    code, err = _transition(shadow_home, capsys)
    # Assert
    assert code == 1
    assert "computed with thresholds looser than the session's readiness config: min_trades 7 < 20, " \
        "max_drawdown 0.3 > 0.1" in err
    assert "min_psr" not in err  # stricter is fine


def test_transition_when_verdict_is_not_for_the_latest_complete_week_refuses(tmp_path, capsys):
    # Arrange: the session ran into 2026-W03; only its W02 verdict is saved
    stubs.replayed_session(tmp_path, "s", "2026-01-11T18:00", "2026-01-12T06:00", **{"session.mode": "shadow"})
    _passing(tmp_path, "s", week="2026-W02")
    # Act
    code, err = _transition(tmp_path, capsys)
    # Assert
    assert code == 1
    assert "no weekly readiness verdict for 2026-W03, the session's latest complete ISO week" in err
    assert "the latest saved verdict is for 2026-W02, not that week" in err


def test_transition_when_verdict_is_of_an_empty_week_refuses(shadow_home, capsys, monkeypatch):
    # Arrange: the session ran in W02, paused through W03 and runs again in W04 (now). An older
    # labkit, asked for `--week last`, saved a verdict of the empty W03.
    stubs.replayed_session(shadow_home, "s", "2026-01-19", "2026-01-19T02:00", **{"session.mode": "shadow"})
    frame = read_journal(session_paths(shadow_home, "s").decisions)
    empty = weekly_readiness(frame, "2026-W03", CONFIG, MINUTE_MS)
    path = verdict_path(shadow_home, "s", "2026-W03")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"session": "s", "saved_at": "2026-01-19T03:00:00.000Z", **empty.to_dict()}))
    monkeypatch.setattr(verdicts, "now_ms", lambda: parse_instant("2026-01-20T12:00"))
    # Act
    code, err = _transition(shadow_home, capsys)
    # Assert
    assert empty.empty and empty.decisions == 0
    assert code == 1 and "the verdict for 2026-W03 is of an empty week" in err


def test_promotion_check_when_session_has_no_complete_week_says_so(shadow_home):
    # Arrange: it is still the session's first week
    now = parse_instant("2026-01-06T00:00")
    # Act
    result = promotion_check(shadow_home, "s", CONFIG, now)
    # Assert
    assert not result.allowed and result.week is None
    assert result.refusals == (
        "the session has no complete ISO week yet: it began in 2026-W02, which ends 2026-01-12T00:00Z",
    )


def test_ops_transition_when_session_config_is_stricter_than_the_verdict_refuses(tmp_path):
    # Arrange: the session itself asks for 30 trades; the verdict was judged on 20
    stubs.replayed_session(tmp_path, "s", "2026-01-05", "2026-01-05T06:00",
                           **{"session.mode": "shadow", "readiness.min_trades": 30})
    _passing(tmp_path, "s")
    # Act
    with pytest.raises(CheckFailedError) as caught:
        ops.transition("paper", "s", tmp_path)
    # Assert
    assert "min_trades 20 < 30" in str(caught.value)

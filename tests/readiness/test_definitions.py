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
from labkit.readiness.verdicts import judge_week, promotion_check, save_verdict, verdict_path
from labkit.readiness.weekly import weekly_readiness
from labkit.session.paths import session_paths
from labkit.session.state import load_state, read_saved_config
from labkit.timeutil import iso_ms, now_ms, parse_instant
from tests import stubs
from tests.readiness.test_readiness import HOUR_MS, MINUTE_MS, WEEK, journal, trips_with_returns

CONFIG = ReadinessConfig()


def _session(home: Path, name: str, since: str, until: str, **overrides: Any) -> pd.DataFrame:
    stubs.replayed_session(home, name, since, until, **overrides)
    return read_journal(session_paths(home, name).decisions)


def _judge(home: Path, name: str, week: str = WEEK):
    # These sessions are replays made in a moment; the definitions judged here (coverage, costs,
    # drawdown) are those of a live session, so their lines are read as decided at each close.
    paths = session_paths(home, name)
    config = read_saved_config(paths) or {}
    frame = read_journal(paths.decisions)
    frame = frame.assign(decided_at=frame["ts"] + pd.Timedelta(minutes=1))
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
    assert "days the session did not run, and replays, count as missing" in gate.explanation


def test_transition_when_shadow_session_ran_two_and_a_quarter_days_refuses_on_coverage(
    tmp_path, capsys, monkeypatch
):
    # Arrange: the session of the audit, decided live (hourly bars), then stopped
    stubs.forward_session(tmp_path, "short", "2026-01-05", "2026-01-07T06:00",
                          **{"session.mode": "shadow", "session.timeframe": "1h"})
    monkeypatch.setattr(verdicts, "now_ms", lambda: parse_instant("2026-01-13"))
    # Act
    code = main(["--home", str(tmp_path), "transition", "--to", "paper", "--session", "short"])
    # Assert
    result = judge_week(tmp_path, "short", WEEK)
    assert result.gate("coverage").figures["coverage"] == pytest.approx(54 / 168) and result.replays == 0
    assert code == 1 and "is NOT READY: coverage" in capsys.readouterr().err
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
    assert "refused 143 of 143 entry proposals made when flat (100.0%)" in gate.explanation


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
    # A verdict file as `labkit report weekly` saves a passing one, or as a hand could write it.
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


@pytest.fixture
def sine_home(tmp_path: Path) -> Path:
    # A shadow session decided live through 2026-W02 on a market sma_cross trades well: READY.
    spec = stubs.sine_bar_file(tmp_path / "sine.csv")
    stubs.forward_session(tmp_path, "s", "2026-01-04", "2026-01-12", **stubs.SINE_SESSION, **{"session.source": spec})
    return tmp_path


def _transition(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--home", str(home), "transition", "--to", "paper", "--session", "s"])
    return code, capsys.readouterr().err


def _now(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setattr(verdicts, "now_ms", lambda: parse_instant(when))


def test_transition_when_latest_complete_week_is_ready_on_forward_evidence_promotes(sine_home, capsys, monkeypatch):
    # Arrange
    _now(monkeypatch, "2026-01-13")
    # Act
    code, _ = _transition(sine_home, capsys)
    # Assert
    state = load_state(session_paths(sine_home, "s"))
    assert code == 0 and state["mode"] == "paper"
    recorded = state["transitions"][-1]["verdict"]
    assert (recorded["week"], recorded["outcome"], recorded["refused"]) == (WEEK, "READY", None)
    assert recorded["thresholds"] == CONFIG.model_dump(mode="json")


def test_transition_when_the_same_week_was_replayed_fast_refuses_replay_only(tmp_path, capsys, monkeypatch):
    # Arrange: the READY market and strategy, but the week replayed in a second (--pace fast)
    spec = stubs.sine_bar_file(tmp_path / "sine.csv")
    stubs.replayed_session(tmp_path, "s", "2026-01-04", "2026-01-12", **stubs.SINE_SESSION, **{"session.source": spec})
    _now(monkeypatch, "2026-01-13")
    # Act
    code, err = _transition(tmp_path, capsys)
    result = judge_week(tmp_path, "s", WEEK)
    # Assert
    assert code == 1 and "replay_only" in err and "paper evidence comes from a session deciding bars" in err
    assert result.outcome == "NOT READY" and result.decisions == 0 and result.replays == 168
    assert load_state(session_paths(tmp_path, "s"))["mode"] == "shadow"


def test_transition_when_verdict_file_was_edited_to_pass_recomputes_and_refuses(shadow_home, capsys, monkeypatch):
    # Arrange: the week's verdict fails; a hand writes "passed": true into its file
    _passing(shadow_home, "s")
    _now(monkeypatch, "2026-01-13")
    # Act
    code, err = _transition(shadow_home, capsys)
    # Assert
    assert code == 1 and "recomputed from the journal" in err
    assert load_state(session_paths(shadow_home, "s"))["mode"] == "shadow"


def test_transition_when_the_week_ended_nine_days_ago_refuses_naming_its_age(sine_home, capsys, monkeypatch):
    # Arrange: the session stopped after 2026-W02; it is now 9 days after that week
    _now(monkeypatch, "2026-01-21T01:00")
    # Act
    code, err = _transition(sine_home, capsys)
    # Assert
    assert code == 1 and "2026-W02 ended 9 d ago" in err and "at most 8 days ago" in err
    assert load_state(session_paths(sine_home, "s"))["mode"] == "shadow"


def test_report_weekly_when_thresholds_are_loosened_is_a_what_if_that_never_promotes(shadow_home, monkeypatch):
    # Arrange: a week that fails, judged again with loosened thresholds from the environment
    looser = CONFIG.model_copy(update={"min_trades": 1, "min_coverage": 0.0})
    # Act
    result = judge_week(shadow_home, "s", WEEK, looser)
    path = save_verdict(shadow_home, "s", result)
    # Assert
    assert result.outcome == "what-if" and any(w.startswith("min_trades 1") for w in result.what_if)
    assert path.name == "weekly-2026-W02.what-if.json" and not verdict_path(shadow_home, "s", WEEK).exists()
    assert verdicts.latest_verdict(shadow_home, "s") is None


def test_transition_when_verdict_is_of_an_empty_week_refuses(shadow_home, capsys, monkeypatch):
    # Arrange: the session ran in W02, paused through W03 and runs again in W04 (now). An older
    # labkit, asked for `--week last`, saved a verdict of the empty W03.
    stubs.replayed_session(shadow_home, "s", "2026-01-19", "2026-01-19T02:00", **{"session.mode": "shadow"})
    frame = read_journal(session_paths(shadow_home, "s").decisions)
    empty = weekly_readiness(frame, "2026-W03", CONFIG, MINUTE_MS)
    path = verdict_path(shadow_home, "s", "2026-W03")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"session": "s", "saved_at": "2026-01-19T03:00:00.000Z", **empty.to_dict()}))
    _now(monkeypatch, "2026-01-20T12:00")
    # Act
    code, err = _transition(shadow_home, capsys)
    # Assert
    assert empty.empty and empty.decisions == 0
    assert code == 1 and "the session decided nothing in 2026-W03" in err


def test_promotion_check_when_session_has_no_complete_week_says_so(shadow_home):
    # Arrange: it is still the session's first week
    now = parse_instant("2026-01-06T00:00")
    # Act
    result = promotion_check(shadow_home, "s", now)
    # Assert
    assert not result.allowed and result.week is None
    assert result.refusals == (
        "the session has no complete ISO week yet: it began in 2026-W02, which ends 2026-01-12T00:00Z",
    )


def test_ops_transition_when_the_session_recorded_stricter_thresholds_judges_with_them(tmp_path, monkeypatch):
    # Arrange: the session itself asks for 30 trades; the READY week closed 24; the config now says 20
    spec = stubs.sine_bar_file(tmp_path / "sine.csv")
    stubs.forward_session(tmp_path, "s", "2026-01-04", "2026-01-12",
                          **stubs.SINE_SESSION, **{"session.source": spec, "readiness.min_trades": 30})
    _now(monkeypatch, "2026-01-13")
    # Act
    with pytest.raises(CheckFailedError) as caught:
        ops.transition("paper", "s", tmp_path)
    # Assert
    assert "is NOT READY: activity" in str(caught.value)



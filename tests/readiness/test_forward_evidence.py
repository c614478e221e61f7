"""Issue 18: a verdict built only from forward, out-of-sample decisions on the market's own calendar.

Each case is one the truth audit passed as evidence: a fast replay of a past week, a model graded on
the week it was trained on, a calendar inferred from the session's own hours, and a Sharpe ratio
that only looks good because many variants were tried.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labkit.config.schema import ReadinessConfig
from labkit.readiness.verdicts import judge_week
from labkit.readiness.weekly import decision_lag_ms, forward_mask, weekly_readiness
from labkit.session.paths import session_paths
from labkit.session.recorded import read_recorded, recorded_path
from tests import stubs
from tests.readiness.test_readiness import HOUR_MS, MONDAY, WEEK, journal

CONFIG = ReadinessConfig()


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


# --- forward decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late", "forward"),
    [
        (pd.Timedelta(0), True),  # decided as the bar closed
        (pd.Timedelta(minutes=59), True),  # within one bar
        (pd.Timedelta(minutes=61), False),  # a catch-up after downtime
        (pd.Timedelta(days=300), False),  # a fast replay of a past week
        (pd.Timedelta(seconds=-1), True),  # a clock a second fast
        (pd.Timedelta(hours=-5), False),  # bars the synthetic market made up ahead, replayed
    ],
)
def test_forward_mask_when_decided_at_some_lag_after_the_close_judges_it(late, forward):
    # Arrange: hourly bars; decided_at is the close plus `late`
    frame = journal(n=3)
    frame["decided_at"] = frame["ts"] + pd.Timedelta(hours=1) + late
    # Act
    mask = forward_mask(frame, HOUR_MS, decision_lag_ms(CONFIG, HOUR_MS))
    # Assert
    assert mask.tolist() == [forward] * 3


def test_decision_lag_when_configured_overrides_one_bar():
    # Arrange
    config = ReadinessConfig(max_decision_lag=5)
    # Act / Assert
    assert decision_lag_ms(config, HOUR_MS) == 5_000
    assert decision_lag_ms(CONFIG, 1_000) == 60_000  # at least a minute, however short the bar


def test_weekly_when_half_the_week_was_caught_up_late_counts_it_as_missing_and_says_so():
    # Arrange: the session was down Thursday to Sunday and caught those 84 bars up on Monday
    frame = journal()
    late = frame["ts"] >= MONDAY + pd.Timedelta(days=3, hours=12)
    frame.loc[late, "decided_at"] = MONDAY + pd.Timedelta(days=8)
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS)
    # Assert
    assert (result.decisions, result.replays, result.expected) == (84, 84, 168)
    assert not result.gate("coverage").passed and not result.refusals


def test_weekly_when_every_decision_is_a_replay_is_not_ready_replay_only():
    # Arrange: a whole week decided in one go, months later
    frame = journal()
    frame["decided_at"] = pd.Timestamp("2026-06-01", tz="UTC")
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS)
    # Assert
    assert result.outcome == "NOT READY" and result.reasons[0] == "replay_only"
    assert "paper evidence comes from a session deciding bars as they close" in result.why()
    assert result.decisions == 0 and result.replays == 168


def test_weekly_when_replayed_trades_are_left_out_of_activity_and_edge():
    # Arrange: 20 well-paid trades, all decided long after the fact; the same journal decided live
    from tests.readiness.test_readiness import trips_with_returns

    fills = trips_with_returns([0.010, 0.012, 0.008, 0.011] * 5)
    live = journal(fills={i: (s, u, p, 0.05, 0.0) for i, (s, u, p, _, _) in fills.items()})
    replayed = live.assign(decided_at=pd.Timestamp("2026-06-01", tz="UTC"))
    # Act
    judged = {name: weekly_readiness(f, WEEK, CONFIG, HOUR_MS, 1000.0) for name, f in
              (("live", live), ("replayed", replayed))}
    # Assert
    assert judged["live"].trades == 20 and judged["live"].gate("activity").passed
    assert judged["replayed"].trades == 0 and not judged["replayed"].gate("activity").passed


# --- out of sample -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_days", "refused"),
    [((-30, 1), True), ((-30, 0), False), ((6.9, 30), True), ((7, 30), False)],
)
def test_weekly_when_a_model_span_overlaps_the_week_is_not_ready_in_sample(span_days, refused):
    # Arrange: a model trained on [Monday + a days, Monday + b days), embargo included
    frame = journal()
    since, until = (_ms(MONDAY + pd.Timedelta(days=d)) for d in span_days)
    # Act
    result = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS, in_sample=[("ens-1", since, until)])
    # Assert
    assert ("in_sample" in result.reasons) is refused
    if refused:
        assert "model ens-1" in result.why() and "trained on" in result.why()


def test_judge_week_when_the_session_recorded_its_model_span_refuses_the_week_inside_it(tmp_path):
    # Arrange: a session whose record says its model was trained on data through Wednesday
    stubs.forward_session(tmp_path, "m", "2026-01-05", "2026-01-12", **{"session.timeframe": "1h"})
    path = recorded_path(session_paths(tmp_path, "m"))
    record = json.loads(path.read_text())
    record["models"] = {"ens-abc": [_ms(MONDAY - pd.Timedelta(days=60)), _ms(MONDAY + pd.Timedelta(days=2))]}
    path.write_text(json.dumps(record))
    # Act
    result = judge_week(tmp_path, "m", WEEK)
    # Assert
    assert result.outcome == "NOT READY" and result.reasons[0] == "in_sample"
    assert result.replays == 0 and result.decisions == 168


# --- the calendar, recorded ----------------------------------------------------------------------


def test_session_run_eight_hours_a_weekday_on_a_24_7_market_covers_at_most_30_percent(tmp_path):
    # Arrange: the audit's session, run 08:00-16:00 Monday to Friday on the synthetic (24/7) market,
    # resumed each morning; the old rule inferred "equities 08:00-16:00" and read 100%
    for day in range(5, 10):
        stubs.forward_session(tmp_path, "office", f"2026-01-{day:02d}T08:00", f"2026-01-{day:02d}T16:00",
                              **{"session.timeframe": "1h", "session.mode": "shadow"})
    # Act
    result = judge_week(tmp_path, "office", WEEK)
    # Assert
    assert result.calendar["kind"] == "24/7" and "synthetic source" in result.calendar["basis"]
    assert result.gate("coverage").figures["coverage"] <= 0.30
    assert result.replays > 0  # each morning's catch-up of the night is a replay, not evidence


def test_bar_file_session_records_the_calendar_of_the_whole_file_not_of_its_own_hours(tmp_path):
    # Arrange: a 24/7 file of hourly bars; the session decides only Monday to Friday 08:00-16:00
    times = pd.date_range("2025-12-29", "2026-01-19", freq="h", inclusive="left", tz="UTC")
    closes = 100 + np.sin(np.arange(len(times)) / 5.0)
    spec = tmp_path / "all-week.csv"
    pd.DataFrame({"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": closes, "high": closes + 0.5,
                  "low": closes - 0.5, "close": closes, "volume": 1.0}).to_csv(spec, index=False)
    for day in range(5, 10):
        stubs.forward_session(tmp_path, "f", f"2026-01-{day:02d}T08:00", f"2026-01-{day:02d}T16:00",
                              **{"session.source": f"csv:{spec}", "session.timeframe": "1h"})
    # Act
    recorded = read_recorded(session_paths(tmp_path, "f"))
    result = judge_week(tmp_path, "f", WEEK)
    # Assert
    assert recorded["calendar"]["kind"] == "24/7"
    assert result.expected == 168 and result.gate("coverage").figures["coverage"] <= 0.30


# --- the deflated Sharpe ratio gate --------------------------------------------------------------


def test_deflated_sharpe_gate_when_many_trials_were_tried_fails_what_one_trial_passes():
    # Arrange: a week whose bar returns have a modest Sharpe ratio
    growth = 1.0 + 0.0004 + 0.002 * np.sin(np.arange(168) * 2.1)
    frame = journal(equity=1000.0 * np.cumprod(growth))
    # Act
    alone = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS, 1000.0).gate("deflated_sharpe")
    many = weekly_readiness(frame, WEEK, CONFIG, HOUR_MS, 1000.0, trials=200, sharpe_variance=0.01)
    # Assert
    assert alone.passed and alone.figures["trials"] == 1
    assert not many.gate("deflated_sharpe").passed and many.gate("deflated_sharpe").figures["trials"] == 200
    assert many.gate("deflated_sharpe").figures["deflated_sharpe"] < alone.figures["deflated_sharpe"]


# --- what the session recorded, tampered with ---------------------------------------------------


def test_transition_when_config_json_was_edited_to_loosen_thresholds_refuses_config_changed(tmp_path, monkeypatch):
    # Arrange: the READY week, but its session asked for 30 trades; a hand lowers that to 20
    from labkit.operations import transition
    from labkit.readiness import verdicts

    spec = stubs.sine_bar_file(tmp_path / "sine.csv")
    stubs.forward_session(tmp_path, "s", "2026-01-04", "2026-01-12",
                          **stubs.SINE_SESSION, **{"session.source": spec, "readiness.min_trades": 30})
    config = session_paths(tmp_path, "s").config
    saved = json.loads(config.read_text())
    saved["readiness"]["min_trades"] = 20
    config.write_text(json.dumps(saved))
    monkeypatch.setattr(verdicts, "now_ms", lambda: pd.Timestamp("2026-01-13", tz="UTC").value // 1_000_000)
    # Act
    result = judge_week(tmp_path, "s", WEEK)
    with pytest.raises(Exception) as refused:
        transition("paper", "s", tmp_path)
    # Assert
    assert result.gate("activity").passed and result.reasons == ["config_changed"]
    assert "config.json was changed after the session was created" in str(refused.value)


def test_judge_week_when_recorded_json_claims_another_calendar_for_a_24_7_source_ignores_it(tmp_path):
    # Arrange: a session on the synthetic (24/7) market ran 8 hours; its record is edited to fx
    stubs.forward_session(tmp_path, "s", "2026-01-05T08:00", "2026-01-05T16:00", **{"session.timeframe": "1h"})
    path = recorded_path(session_paths(tmp_path, "s"))
    record = json.loads(path.read_text())
    record["calendar"] = {"kind": "equities", "hours": "08:00-16:00", "tz": "UTC", "basis": "edited"}
    path.write_text(json.dumps(record))
    # Act
    result = judge_week(tmp_path, "s", WEEK)
    # Assert
    assert result.calendar["kind"] == "24/7" and result.expected == 168

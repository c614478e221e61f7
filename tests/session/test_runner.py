from __future__ import annotations

import json
import threading
import time

import pytest

from labkit.config.loading import load_config
from labkit.session.runner import run_session
from labkit.session.status import session_status
from labkit.timeutil import parse_instant


def _config(**session):
    return load_config(None, {f"session.{k}": v for k, v in session.items()}, environ={})


@pytest.mark.slow
def test_run_session_when_following_the_clock_decides_each_closed_bar_once(tmp_path):
    # Arrange: 1-second synthetic bars made as time passes
    config = _config(name="live", timeframe="1s", pace="clock", max_bars=3, interval=1)
    started = time.time()
    # Act
    result = run_session(config, tmp_path)
    # Assert
    lines = [
        json.loads(x) for x in (tmp_path / "data/sessions/live/decisions.jsonl").read_text().splitlines()
    ]
    stamps = [parse_instant(line["ts"]) for line in lines]
    assert result.decided == 3 and [line["seq"] for line in lines] == [0, 1, 2]
    assert stamps == sorted(set(stamps)) and stamps[2] - stamps[0] == 2_000
    # warmed up on history before the first live bar: no insufficient_data lines
    assert all(line["gate_trace"]["stage"] != "data" for line in lines)
    for line in lines:  # each bar was decided after it closed, never while forming
        assert parse_instant(line["decided_at"]) >= parse_instant(line["ts"]) + 1_000
    assert time.time() - started < 8
    assert session_status(tmp_path, "live")["status_word"] == "stopped"


def _wait_for_first_decision(journal, worker: threading.Thread, timeout: float = 60.0) -> None:
    # state.json is written when the session is created, before its first bar closes: waiting for
    # it let the stop land before any decision under load. A whole journal line is a decision.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.is_alive():
        if journal.exists() and journal.read_bytes().count(b"\n") >= 1:
            return
        time.sleep(0.02)
    raise AssertionError(f"no decision in {journal} (session thread alive: {worker.is_alive()})")


def test_run_session_when_stop_is_set_saves_state_and_says_stopped(tmp_path):
    # Arrange: a clock session with no end, stopped from another thread (what a notebook does)
    config = _config(name="bg", timeframe="1s", pace="clock", interval=1)
    stop = threading.Event()
    worker = threading.Thread(target=run_session, args=(config, tmp_path), kwargs={"stop": stop})
    # Act
    worker.start()
    _wait_for_first_decision(tmp_path / "data/sessions/bg/decisions.jsonl", worker)
    stop.set()
    worker.join(timeout=10)
    # Assert
    assert not worker.is_alive()
    status = session_status(tmp_path, "bg")
    assert status["status_word"] == "stopped" and status["decisions"] >= 1


def test_run_session_when_replaying_writes_heartbeat_fields(tmp_path):
    run_session(_config(name="s", pace="fast", since="2026-01-05", until="2026-01-05T01:00"), tmp_path)
    beat = json.loads((tmp_path / "data/sessions/s/heartbeat.json").read_text())
    assert set(beat) == {
        "pid",
        "session",
        "mode",
        "symbol",
        "started_at",
        "last_beat",
        "last_decision_ts",
        "total_decisions_session",
        "status",
    }
    assert (beat["status"], beat["total_decisions_session"], beat["last_decision_ts"]) == (
        "stopped",
        60,
        "2026-01-05T00:59:00Z",
    )
    config = json.loads((tmp_path / "data/sessions/s/config.json").read_text())
    assert config["session"]["name"] == "s" and config["broker"]["fee"] == 0.001


def test_run_session_when_a_stop_fills_on_its_entry_bar_logs_that_fill_too(tmp_path):
    # Arrange: stops a tenth of an ATR below each entry, which the entry's own bar reaches
    settings = {"session.name": "s", "session.pace": "fast", "session.since": "2026-01-05"}
    settings |= {"session.until": "2026-01-05T04:00", "risk.stop_atr": 0.1, "gates.enabled": ["data"]}
    # Act
    run_session(load_config(None, settings, environ={}), tmp_path)
    # Assert: every fill of the journal, `exit_fill` included, has its "filled" line in the log
    root = tmp_path / "data/sessions/s"
    lines = [json.loads(x) for x in (root / "decisions.jsonl").read_text().splitlines()]
    logged = [json.loads(x) for x in (root / "logs/session.jsonl").read_text().splitlines()]
    filled = [(e["seq"], e["message"]) for e in logged if e["message"].startswith("filled ")]
    stops = [(line["seq"], line["exit_fill"]) for line in lines if "exit_fill" in line]
    assert stops  # the case
    assert len(filled) == sum(1 for line in lines for key in ("fill", "exit_fill") if line.get(key))
    for seq, stop in stops:
        said = [message for at, message in filled if at == seq]
        assert said[0].startswith("filled BUY ") and said[1].startswith(f"filled SELL {stop['units']:.8g} ")
        assert said[1].endswith("stop_loss)")

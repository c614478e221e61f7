from __future__ import annotations

import json

import pytest

from labkit import operations as ops
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.engine.journal import iter_lines
from labkit.engine.portfolio import Portfolio
from labkit.session.paths import session_paths
from labkit.session.runner import run_session
from labkit.session.state import load_state
from tests import stubs

SINCE, UNTIL = "2026-01-05", "2026-01-05T06:00"


def _replay(home, name="s", until=UNTIL, **overrides):
    return stubs.replayed_session(home, name, SINCE, until, **overrides)


def _state(home, name="s"):
    return load_state(session_paths(home, name))


def test_portfolio_when_journal_folded_equals_the_engine_book(tmp_path):
    # Arrange: the engine's own book after a replay
    _replay(tmp_path, **{"broker.slippage": 0.0005})
    saved = Portfolio.from_dict(_state(tmp_path)["portfolio"])
    # Act: rebuild the book from the journal alone
    folded = Portfolio.start(10_000.0)
    for line in iter_lines(session_paths(tmp_path, "s").decisions):
        folded.replay_line(line)
    # Assert
    for name in ("cash", "position", "avg_price", "entry_cost", "peak_equity", "last_equity", "day",
                 "day_start_equity", "trades_today", "loss_streak", "pending_side", "pending_seq", "last_seq",
                 "last_ts", "entries", "exits", "fees_paid", "slippage_paid", "realized_pnl"):
        assert getattr(folded, name) == getattr(saved, name), name


@pytest.mark.parametrize("offset", ["consistent", "stale"])
def test_recovery_when_state_lags_the_journal_folds_instead_of_deciding_again(tmp_path, offset):
    # Arrange: a finished session whose state.json is put back 200 decisions (a crash before the save);
    # "stale" keeps the journal offset of the newer state, which must not make recovery skip lines
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    whole = list(iter_lines(paths.decisions))
    port = Portfolio.start(10_000.0)
    for line in whole[:-200]:
        port.replay_line(line)
    state = _state(tmp_path)
    state["portfolio"] = port.to_dict()
    if offset == "consistent":
        state["journal_offset"] = 0
    paths.state.write_text(json.dumps(state))
    # Act: run further
    _replay(tmp_path, until="2026-01-05T07:00")
    # Assert: no bar decided twice, nothing lost
    lines = list(iter_lines(paths.decisions))
    assert [line["seq"] for line in lines] == list(range(420))
    assert len({line["ts"] for line in lines}) == 420


def test_emergency_stop_when_session_idle_halts_and_survives_restart(tmp_path):
    # Arrange
    _replay(tmp_path)
    # Act
    how = ops.emergency_stop("s", tmp_path)
    _replay(tmp_path, until="2026-01-05T09:00")
    # Assert
    assert how == "applied"
    state = _state(tmp_path)["portfolio"]
    assert state["halted"] and state["halt_reason"] == "emergency_stop"
    later = [line for line in iter_lines(session_paths(tmp_path, "s").decisions) if line["seq"] >= 360]
    assert not any(line["action"] == "BUY" for line in later)
    assert any(line["rejection_reason"] == "emergency_stop" for line in later)


def test_emergency_stop_when_position_open_flattens_at_next_open(tmp_path):
    # Arrange: stop a session on a bar where it holds a position
    lines = list(iter_lines(session_paths(_replay(tmp_path / "probe"), "s").decisions))
    holding = next(line for line in lines if line["position"] > 0 and line["action"] == "HOLD" and line["seq"] > 40)
    _replay(tmp_path, until=_after(holding["ts"]))
    assert _state(tmp_path)["portfolio"]["position"] > 0
    # Act
    ops.emergency_stop("s", tmp_path)
    _replay(tmp_path, until=_after(holding["ts"], minutes=3))
    # Assert
    new = list(iter_lines(session_paths(tmp_path, "s").decisions))[holding["seq"] + 1 :]
    fill = new[0]["fill"]
    assert fill["side"] == "SELL" and fill["reason"] == "emergency_stop" and new[0]["position"] == 0.0


def _after(ts: str, minutes: int = 1) -> str:
    import pandas as pd

    return (pd.Timestamp(ts) + pd.Timedelta(minutes=minutes)).isoformat()


def test_reduce_only_when_on_refuses_entries_and_resume_lifts_it(tmp_path):
    _replay(tmp_path)
    assert ops.reduce_only("s", tmp_path) == "applied"
    _replay(tmp_path, until="2026-01-05T12:00")
    blocked = [line for line in iter_lines(session_paths(tmp_path, "s").decisions)
               if line["seq"] >= 360 and line["proposed"] == "BUY"]
    assert blocked and all(line["rejection_reason"] == "reduce_only" for line in blocked)
    ops.resume("s", tmp_path)
    assert not _state(tmp_path)["portfolio"]["reduce_only"]


def test_transition_when_the_week_was_a_fast_replay_refuses_with_exit_1(tmp_path, capsys):
    _replay(tmp_path, **{"session.mode": "shadow"})
    code = main(["--home", str(tmp_path), "transition", "--to", "paper", "--session", "s"])
    err = capsys.readouterr().err
    assert code == 1
    assert "the weekly readiness for 2026-W02, recomputed from the journal" in err and "replay_only" in err
    assert _state(tmp_path)["mode"] == "shadow"


def test_transition_when_verdict_fails_names_failing_gates_and_force_is_recorded(tmp_path, capsys):
    # Arrange: a session whose week fails (a replay, a few hours of it)
    _replay(tmp_path, **{"session.mode": "shadow"})
    # Act
    refused = main(["--home", str(tmp_path), "transition", "--to", "paper", "--session", "s"])
    err = capsys.readouterr().err
    forced = main(["--home", str(tmp_path), "transition", "--to", "paper", "--session", "s", "--force"])
    # Assert
    assert refused == 1 and "is NOT READY: replay_only" in err and "coverage, activity" in err
    assert forced == 0
    state = _state(tmp_path)
    assert state["mode"] == "paper"
    [record] = state["transitions"]
    assert (record["from"], record["to"], record["forced"], record["verdict"]["passed"]) == ("shadow", "paper", True, False)
    assert "NOT READY: replay_only" in record["verdict"]["refused"]  # what --force overrode


def test_transition_when_session_moves_to_shadow_later_fills_carry_the_paper_costs(tmp_path):
    # Issue 9: shadow fills used to be costless; they pay the broker's fee as paper does.
    _replay(tmp_path)
    assert ops.transition("shadow", "s", tmp_path) == "applied"
    code = main(["--home", str(tmp_path), "run", "--session", "s", "--pace", "fast", "--since", SINCE,
                 "--until", "2026-01-06T06:00"])  # past midnight, where the losing streak resets
    later = [line for line in iter_lines(session_paths(tmp_path, "s").decisions) if line["seq"] >= 360]
    fills = [line["fill"] for line in later if line["fill"]]
    assert code == 0 and {line["mode"] for line in later} == {"shadow"}
    assert fills and all(fill["fee"] == pytest.approx(0.001 * fill["units"] * fill["price"]) for fill in fills)


def test_run_when_mode_flag_clashes_with_session_mode_refuses(tmp_path, capsys):
    _replay(tmp_path, **{"session.mode": "shadow"})
    code = main(["--home", str(tmp_path), "run", "--session", "s", "--mode", "paper", "--pace", "fast",
                 "--since", SINCE, "--until", UNTIL])
    assert code == 2 and "runs in shadow mode; `labkit transition --to paper" in capsys.readouterr().err


def test_session_log_when_run_writes_json_lines_with_correlation_ids(tmp_path):
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    records = [json.loads(x) for x in (paths.root / "logs" / "session.jsonl").read_text().splitlines()]
    decided = [r for r in records if r["message"].startswith("decided ")]
    journal = {line["correlation_id"]: line for line in iter_lines(paths.decisions)}
    assert decided and all(journal[r["correlation_id"]]["action"] != "HOLD" for r in decided)
    assert {"ts", "level", "logger", "message"} <= set(records[0])


def test_session_log_when_secrets_configured_never_shows_them(tmp_path):
    import logging

    (tmp_path / "labkit.yaml").write_text("exchanges:\n  binance:\n    apiKey: abcdefSECRET1234\n")
    config = load_config(tmp_path, {"session.name": "k", "session.pace": "fast", "session.since": SINCE,
                                    "session.until": "2026-01-05T00:40"}, environ={})
    from labkit.session.logs import session_log

    with session_log(tmp_path, ["abcdefSECRET1234"]):
        logging.getLogger("labkit.test").warning("connecting with abcdefSECRET1234 and token=zzzz9999")
    run_session(config, tmp_path, progress=False)
    text = (tmp_path / "logs" / "session.jsonl").read_text()
    saved = session_paths(tmp_path, "k").config.read_text()
    assert "abcdefSECRET1234" not in text and "****1234" in text and "zzzz9999" not in text
    assert "abcdefSECRET1234" not in saved and "****1234" in saved


def test_replay_when_tape_untouched_exits_0_and_when_journal_edited_names_seq_and_field(tmp_path, capsys):
    # Arrange: a session with commands in the middle of its tape
    _replay(tmp_path, **{"broker.slippage": 0.0005})
    ops.reduce_only("s", tmp_path)
    _replay(tmp_path, until="2026-01-05T09:00")
    ops.transition("shadow", "s", tmp_path)
    _replay(tmp_path, until="2026-01-05T12:00", **{"session.mode": "shadow"})
    # Act / Assert
    assert main(["--home", str(tmp_path), "replay", "--session", "s"]) == 0
    assert "720 decisions replayed, all identical" in capsys.readouterr().out
    path = session_paths(tmp_path, "s").decisions
    lines = path.read_text().splitlines()
    line = json.loads(lines[500])
    line["equity"] += 0.01
    lines[500] = json.dumps(line)
    path.write_text("\n".join(lines) + "\n")
    assert main(["--home", str(tmp_path), "replay", "--session", "s"]) == 1
    assert "decisions differ at seq 500, field 'equity'" in capsys.readouterr().out


def test_emergency_stop_when_an_entry_is_pending_cancels_it():
    from labkit.session.control import apply_command
    from labkit.session.state import SessionState

    port = Portfolio.start(1_000.0)
    port.pending_side, port.pending_seq = 1, 41
    apply_command(SessionState(port), {"command": "emergency_stop"}, "paper")
    assert (port.pending_side, port.halted, port.halt_reason) == (0, True, "emergency_stop")


# --- commands that never go stale (issue 19) -------------------------------------------------------

DEAD_PID = 4_194_304 + 17  # above Linux's largest pid: never a live process


def _wait_for_text(path, text: str, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} never appeared in {path}")


def _seqs(home, name="s"):
    return [line["seq"] for line in iter_lines(session_paths(home, name).decisions)]


def _send_while_locked(home, send):
    """Send a command from a thread while the run lock is held, as a finishing run holds it; free it."""
    import threading

    from labkit.session.lock import hold_lock

    paths = session_paths(home, "s")
    outcome: dict[str, object] = {}
    with hold_lock(paths):
        sender = threading.Thread(target=lambda: outcome.update(how=send()))
        sender.start()
        _wait_for_text(paths.control, '"command"')
    sender.join(timeout=30)
    assert not sender.is_alive()
    return outcome["how"]


def test_stop_when_the_lock_is_held_by_a_finishing_run_does_not_stop_the_next_run(tmp_path):
    # Arrange: a stopped session whose lock something else holds for a moment
    _replay(tmp_path)
    # Act: `labkit stop` meanwhile, then the next run (a restart, a timer)
    how = _send_while_locked(tmp_path, lambda: ops.stop("s", tmp_path, wait=20))
    _replay(tmp_path, until="2026-01-05T07:00")
    # Assert: nothing was running, so the stop was a no-op; the next run decides all its bars
    assert how == "not running"
    assert _seqs(tmp_path) == list(range(420))


def test_emergency_stop_when_the_lock_is_held_briefly_is_applied_to_the_state_once_it_frees(tmp_path):
    _replay(tmp_path)
    how = _send_while_locked(tmp_path, lambda: ops.emergency_stop("s", tmp_path, wait=20))
    assert how == "applied"
    assert _state(tmp_path)["portfolio"]["halted"] is True


def test_stop_when_a_session_runs_waits_for_its_acknowledgement_and_it_stops(tmp_path):
    import threading

    from labkit.timeutil import parse_instant

    # Arrange: a clock-paced run on a simulated clock that pauses after its fifth bar
    config = load_config(None, {"session.name": "s", "session.pace": "clock", "session.since": SINCE,
                                "session.until": "2026-01-05T01:00"}, environ={})
    paused, go = threading.Event(), threading.Event()

    class PausingClock(stubs.SimulatedTime):
        def wait(self, timeout=None):
            if self.ms >= parse_instant(SINCE) + 5 * 60_000 and not go.is_set():
                paused.set()
                go.wait(30)
            return super().wait(timeout)

    clock = PausingClock(parse_instant(SINCE), 60_000)
    runner = threading.Thread(target=lambda: run_session(config, tmp_path, stop=clock, clock=clock.now, progress=False))
    runner.start()
    assert paused.wait(30)
    outcome: dict[str, str] = {}
    sender = threading.Thread(target=lambda: outcome.update(how=ops.stop("s", tmp_path, wait=30)))
    sender.start()
    # Act: the run goes on once the stop is in the log, and meets it between bars
    _wait_for_text(session_paths(tmp_path, "s").control, '"command":"stop"')
    go.set()
    sender.join(timeout=30)
    runner.join(timeout=30)
    # Assert
    assert outcome["how"] == "stopped" and not runner.is_alive()
    assert 5 <= len(_seqs(tmp_path)) < 60
    acks = [json.loads(x) for x in session_paths(tmp_path, "s").control.read_text().splitlines() if '"ack"' in x]
    assert [ack.get("cancelled") for ack in acks] == [None]


def test_stop_when_left_queued_as_the_run_ends_is_cancelled_and_the_log_says_so(tmp_path, monkeypatch):
    from labkit.session import runner
    from labkit.session.control import append_command

    # Arrange: a stop that lands after the run's last look at its commands
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    poll = runner._SessionRun._poll_commands

    def poll_then_a_stop_lands(self, *args, **kwargs):
        poll(self, *args, **kwargs)
        if self.portfolio.last_seq == 419:
            append_command(paths, "stop")

    monkeypatch.setattr(runner._SessionRun, "_poll_commands", poll_then_a_stop_lands)
    _replay(tmp_path, until="2026-01-05T07:00")
    monkeypatch.undo()
    # Act: the next run
    _replay(tmp_path, until="2026-01-05T08:00")
    # Assert: the stop was cancelled as the run ended, said in its log, and stopped nothing later
    assert _seqs(tmp_path) == list(range(480))
    acks = [json.loads(x) for x in paths.control.read_text().splitlines() if '"ack"' in x]
    assert len(acks) == 1 and "the run ended" in acks[0]["cancelled"]
    log = (paths.root / "logs" / "session.jsonl").read_text()
    assert "stop" in log and "cancelled" in log


def test_stop_when_its_sender_died_before_a_run_started_stops_nothing(tmp_path):
    # Arrange: a stop queued by a `labkit stop` that was killed before anyone applied it
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    with open(paths.control, "ab") as handle:
        handle.write(json.dumps({"command": "stop", "id": "orphan", "pid": DEAD_PID}).encode() + b"\n")
    # Act
    _replay(tmp_path, until="2026-01-05T07:00")
    # Assert
    assert _seqs(tmp_path) == list(range(420))
    assert '"cancelled"' in paths.control.read_text()


def test_command_when_its_id_repeats_is_applied_once_with_a_warning(tmp_path, caplog):
    from labkit.session.control import restore_applied
    from labkit.session.state import SessionState

    # Arrange: the same transition line twice (a copy, a retried write)
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    line = json.dumps({"command": "transition", "to": "shadow", "id": "same-id"}).encode() + b"\n"
    with open(paths.control, "ab") as handle:
        handle.write(line + line)
    # Act: applied while no run runs; then the line comes a third time, after its acknowledgement
    ops.resume("s", tmp_path)
    with open(paths.control, "ab") as handle:
        handle.write(line)
    ops.resume("s", tmp_path)
    # Assert: one transition, and a warning naming the id
    assert len(_state(tmp_path)["transitions"]) == 1
    repeats = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "same-id" in r.getMessage()]
    assert len(repeats) == 2 and all("ignored" in message for message in repeats)
    # and a state rebuilt from the log restores the transition once
    rebuilt = SessionState.from_saved(None, 10_000.0)
    assert restore_applied(paths, rebuilt, "paper") == "shadow" and len(rebuilt.transitions) == 1


def test_run_when_the_lock_is_held_names_the_live_holder_not_a_dead_heartbeat_pid(tmp_path, capsys):
    import os
    import sys

    from labkit.session.lock import hold_lock

    # Arrange: the heartbeat of a run that died names its pid; this process holds the lock now
    _replay(tmp_path)
    paths = session_paths(tmp_path, "s")
    beat = json.loads(paths.heartbeat.read_text())
    paths.heartbeat.write_text(json.dumps({**beat, "pid": DEAD_PID, "status": "running"}))
    # Act
    with hold_lock(paths):
        code = main(["--home", str(tmp_path), "run", "--session", "s", "--pace", "fast", "--since", SINCE,
                     "--until", "2026-01-05T07:00"])
    # Assert
    err = capsys.readouterr().err
    assert code == 3 and "already running" in err and str(DEAD_PID) not in err
    if sys.platform.startswith("linux"):
        assert f"pid {os.getpid()}" in err
    else:
        assert "held by another process" in err

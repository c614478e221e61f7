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


@pytest.mark.parametrize("flag", ["--print-systemd", "--print-cron"])
def test_schedule_when_printed_keeps_session_running_and_reports_on_time(tmp_path, capsys, flag):
    assert main(["--home", str(tmp_path), "schedule", flag, "--session", "s"]) == 0
    out = capsys.readouterr().out
    assert "run --session s --pace clock" in out
    assert "report daily --session s --date yesterday" in out and "report weekly --session s --week last" in out
    if flag == "--print-systemd":
        assert "Restart=on-failure" in out and "loginctl enable-linger" in out and "OnCalendar=*-*-* 00:15:00 UTC" in out
    else:
        assert "flock -n" in out and "15 0 * * *" in out and "30 0 * * 1" in out


def test_emergency_stop_when_an_entry_is_pending_cancels_it():
    from labkit.session.control import apply_command
    from labkit.session.state import SessionState

    port = Portfolio.start(1_000.0)
    port.pending_side, port.pending_seq = 1, 41
    apply_command(SessionState(port), {"command": "emergency_stop"}, "paper")
    assert (port.pending_side, port.halted, port.halt_reason) == (0, True, "emergency_stop")

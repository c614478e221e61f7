"""Nothing lost, nothing applied twice: issue 8's reproduced cases, each as a regression test.

Commands torn by a full disk, a journal shorter than the state, a lost state.json, a command that
failed, malformed control lines, half-created sessions, bad bar files, signals during start-up.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from labkit import _io
from labkit import operations as ops
from labkit.cli import main
from labkit.session.control import read_control
from labkit.session.paths import session_paths
from labkit.session.state import load_state
from tests import stubs

SINCE, UNTIL = "2026-01-05", "2026-01-05T04:00"
RUN = ["run", "--pace", "fast", "--since", SINCE, "--until", UNTIL, "--session", "s"]


def _run(home: Path, *extra: str) -> int:
    return main(["--home", str(home), *RUN, *extra])


def _paths(home: Path, name: str = "s"):
    return session_paths(home, name)


def _seqs(home: Path, name: str = "s") -> list[int]:
    return [json.loads(line)["seq"] for line in _paths(home, name).decisions.read_text().splitlines()]


def _control_lines(home: Path) -> list[dict]:
    raw = _paths(home).control.read_bytes().splitlines()
    return [json.loads(line) for line in raw if line.startswith(b'{"') and line.endswith(b"}")]


def _session_log(home: Path) -> str:
    return (_paths(home).logs / "session.jsonl").read_text()


# --- commands that cannot vanish ------------------------------------------------------------------


def test_emergency_stop_when_control_log_ends_torn_still_halts_the_session(tmp_path, capsys):
    # Arrange: a full disk left half a line at the end of control.jsonl
    assert _run(tmp_path) == 0
    with open(_paths(tmp_path).control, "ab") as handle:
        handle.write(b'{"command":"res')
    # Act
    code = main(["--home", str(tmp_path), "emergency-stop", "--session", "s"])
    # Assert: applied, really halted, and the fragment stands apart
    assert code == 0 and "applied" in capsys.readouterr().out
    assert load_state(_paths(tmp_path))["portfolio"]["halted"] is True
    raw = _paths(tmp_path).control.read_bytes()
    assert b'{"command":"res\n{"command":"emergency_stop"' in raw


def test_command_when_disk_fills_mid_write_fails_loudly_and_leaves_nothing_to_apply(
    tmp_path, monkeypatch, capsys
):
    # Arrange: the disk takes a few bytes of the line, then is full
    assert _run(tmp_path) == 0
    real_write = os.write

    def full_disk(fd, data):
        if len(data) > 10:
            real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, "No space left on device", str(_paths(tmp_path).control))
        return real_write(fd, data)

    monkeypatch.setattr(_io.os, "write", full_disk)
    # Act
    code = main(["--home", str(tmp_path), "stop", "--session", "s"])
    monkeypatch.undo()
    # Assert: a clear failure, and the torn start of the line is never applied as a stop; the next
    # command ends the fragment's line, which is then quarantined
    assert code == 2 and "No space left on device" in capsys.readouterr().err
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    assert _seqs(tmp_path) == list(range(300))
    assert ops.resume("s", tmp_path) == "applied"
    assert any("quarantined" in line for line in _control_lines(tmp_path))
    assert _run(tmp_path, "--until", "2026-01-05T06:00") == 0
    assert _seqs(tmp_path) == list(range(360))


def test_command_when_applying_it_fails_is_cancelled_not_left_queued(tmp_path, monkeypatch):
    # Arrange: the stop is written, then saving the state it changes fails
    assert _run(tmp_path) == 0
    import labkit.session.control as control

    def broken_save(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", "state.json")

    monkeypatch.setattr(control, "save_state", broken_save)
    # Act
    with pytest.raises(OSError):
        ops.stop("s", tmp_path)
    monkeypatch.undo()
    # Assert: the next run decides its bars; the stop that failed stops nothing
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    assert _seqs(tmp_path) == list(range(300))
    assert any("cancelled" in line for line in _control_lines(tmp_path))


def test_stop_when_state_json_is_lost_is_not_applied_again(tmp_path):
    # Arrange: a stop applied while idle, an emergency stop too, then state.json lost
    assert _run(tmp_path) == 0
    assert ops.emergency_stop("s", tmp_path) == "applied"
    assert ops.stop("s", tmp_path) == "not running"
    _paths(tmp_path).state.unlink()
    # Act
    code = _run(tmp_path, "--until", "2026-01-05T05:00")
    # Assert: the old stop stops nothing, the halt survives, the book is rebuilt from the journal
    state = load_state(_paths(tmp_path))
    assert code == 0 and _seqs(tmp_path) == list(range(300))
    assert state["portfolio"]["halted"] is True and state["portfolio"]["last_seq"] == 299
    assert "rebuilt from the journal" in _session_log(tmp_path)


def test_stop_when_control_log_is_lost_applies_only_new_commands(tmp_path):
    # Arrange: commands applied, then control.jsonl lost (state.json still says how far it read)
    assert _run(tmp_path) == 0
    assert ops.reduce_only("s", tmp_path) == "applied"
    _paths(tmp_path).control.unlink()
    # Act: a new command lands in a new, shorter log
    assert ops.resume("s", tmp_path) == "applied"
    # Assert
    assert load_state(_paths(tmp_path))["portfolio"]["reduce_only"] is False


@pytest.mark.parametrize(
    ("garbage", "why"),
    [
        (b"[1,2]", "not an object"),
        (b'{"command":"transition"}', "needs `to`"),
        (b'{"command":"launch_rockets"}', "command"),
        (b'{"command":"transition","to":"live"}', "to"),
        (b'{"command":"reduce_only","on":"maybe"}', "on"),
        (b"\xff\xfe garbage", "not JSON"),
        (b'"stop"', "not an object"),
        (b"null", "not an object"),
        (b"{}", "command"),
    ],
)
def test_run_when_control_line_is_malformed_quarantines_it_once_and_goes_on(tmp_path, garbage, why):
    # Arrange
    assert _run(tmp_path) == 0
    with open(_paths(tmp_path).control, "ab") as handle:
        handle.write(garbage + b"\n")
    # Act: two runs after it
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    assert _run(tmp_path, "--until", "2026-01-05T06:00") == 0
    # Assert: decided on, warned about once with its line number, recorded as quarantined
    assert _seqs(tmp_path) == list(range(360))
    warnings = [json.loads(x) for x in _session_log(tmp_path).splitlines() if "quarantined" in x]
    assert len(warnings) == 1 and "line 1" in warnings[0]["message"] and why in warnings[0]["message"]
    assert [line["quarantined"] for line in _control_lines(tmp_path) if "quarantined" in line] == [1]
    assert read_control(_paths(tmp_path), 0).bad == []


def test_command_when_session_runs_is_confirmed_by_the_running_session(tmp_path):
    # Arrange: a live session on 1-second bars
    proc = stubs.start_labkit(tmp_path, "run", "--session", "s", "--timeframe", "1s", "--interval", "1")
    try:
        deadline = time.monotonic() + 30
        decisions = _paths(tmp_path).decisions
        while time.monotonic() < deadline and not (decisions.exists() and decisions.stat().st_size):
            time.sleep(0.1)  # the journal exists from the start; wait for its first decision
        # Act
        how = ops.emergency_stop("s", tmp_path)
        # Assert
        assert how == "applied by the running session"
        ack = [line for line in _control_lines(tmp_path) if "ack" in line]
        assert len(ack) == 1 and ack[0]["after_seq"] >= 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


# --- a journal that cannot fall behind ------------------------------------------------------------


def test_run_when_journal_is_shorter_than_the_state_refuses_naming_both_seqs(tmp_path, capsys):
    # Arrange: decisions.jsonl cut to half, state.json intact
    assert _run(tmp_path) == 0
    journal = _paths(tmp_path).decisions
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:120]))
    before = journal.read_bytes()
    # Act
    code = _run(tmp_path, "--until", "2026-01-05T05:00")
    # Assert: refused, with both seqs and a way out; nothing appended
    err = capsys.readouterr().err
    assert code == 2
    assert "ends at seq 119" in err and "at seq 239" in err and "--session NEW" in err
    assert journal.read_bytes() == before


def test_replay_and_verify_when_journal_has_a_hole_fail_naming_it(tmp_path, capsys):
    # Arrange: one decision cut out of the middle
    assert _run(tmp_path) == 0
    journal = _paths(tmp_path).decisions
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:50] + lines[51:]))
    # Act
    replay = main(["--home", str(tmp_path), "replay", "--session", "s"])
    replay_out = capsys.readouterr().out
    checks = {c.name: c for c in ops.verify("s", tmp_path)}
    # Assert
    assert replay == 1 and "seq 50" in replay_out
    assert not checks["journal_whole"].ok and "seq 51 where 50 was due" in checks["journal_whole"].detail


def test_run_when_journal_holds_a_garbage_line_refuses_naming_the_line(tmp_path, capsys):
    assert _run(tmp_path) == 0
    with open(_paths(tmp_path).decisions, "ab") as handle:
        handle.write(b"this is not a decision\n")
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 2
    assert "decisions.jsonl line 241: not a decision line" in capsys.readouterr().err


def test_checkpoint_when_taken_makes_the_journal_durable_before_the_state(tmp_path, monkeypatch):
    # Arrange: record the order of fsyncs and state writes
    import labkit.session.runner as runner

    events: list[str] = []
    real_fsync, real_save = os.fsync, runner.save_state
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (events.append(f"fsync:{os.readlink(f'/proc/self/fd/{fd}')}"), real_fsync(fd))[1],
    )
    monkeypatch.setattr(runner, "save_state", lambda *a, **k: (events.append("state"), real_save(*a, **k))[1])
    # Act
    assert _run(tmp_path) == 0
    # Assert: once there is a journal, every state save comes after an fsync of it since the save
    # before (the save that creates the session precedes any journal)
    journal_syncs = [i for i, e in enumerate(events) if e.endswith("decisions.jsonl")]
    saves = [i for i, e in enumerate(events) if e == "state" and i > journal_syncs[0]]
    assert len(saves) >= 2
    previous = journal_syncs[0]
    for save in saves:
        assert any(previous <= j < save for j in journal_syncs), events[previous : save + 1]
        previous = save


# --- sessions born whole --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "timestamp,open,high,low,close,volume\n",  # header only
        "timestamp,open,high,low,close,volume\n2026-01-05T00:00:00Z,1,0.5,1,1,1\n",  # high below open
        "",  # empty
        "ts;open;high\n1;2;3\n",  # wrong columns
    ],
)
def test_run_when_bar_file_is_bad_creates_nothing(tmp_path, capsys, content):
    # Arrange
    (tmp_path / "bars.csv").write_text(content)
    # Act
    code = main(
        [
            "--home",
            str(tmp_path),
            "run",
            "--pace",
            "fast",
            "--source",
            "csv:bars.csv",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--session",
            "bad",
        ]
    )
    # Assert
    assert code == 2 and "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "data" / "sessions" / "bad").exists()
    assert (
        list((tmp_path / "data" / "sessions").glob(".*")) == []
        if (tmp_path / "data" / "sessions").exists()
        else True
    )


def test_status_when_a_session_is_half_created_lists_it_broken_beside_the_others(tmp_path, capsys):
    # Arrange: a healthy session, and one killed right after its config.json was written
    assert _run(tmp_path) == 0
    half = _paths(tmp_path, "half")
    half.root.mkdir(parents=True)
    half.config.write_text(_paths(tmp_path).config.read_text())
    # Act
    code = main(["--home", str(tmp_path), "status"])
    out = capsys.readouterr().out
    verify = main(["--home", str(tmp_path), "verify", "--session", "half"])
    verify_out = capsys.readouterr().out
    # Assert
    assert code == 0
    assert "half: broken" in out and "state.json is missing" in out and "s: stopped" in out
    assert verify == 1 and "is broken" in verify_out and "to repair" in verify_out


def test_status_when_state_json_is_corrupt_names_the_field(tmp_path, capsys):
    assert _run(tmp_path) == 0
    state = json.loads(_paths(tmp_path).state.read_text())
    state["portfolio"]["cash"] = "lots"
    _paths(tmp_path).state.write_text(json.dumps(state))
    assert main(["--home", str(tmp_path), "status", "--session", "s"]) == 0
    assert "broken" in capsys.readouterr().out
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 2
    err = capsys.readouterr().err
    assert "state.json: portfolio.cash" in err and "'lots'" in err and "move it aside" in err


def test_run_when_a_kill_left_temporary_files_cleans_them(tmp_path):
    assert _run(tmp_path) == 0
    leftover = _paths(tmp_path).root / ".state.json.abc123.tmp"
    leftover.write_text("{half")
    staging = _paths(tmp_path).root.parent / ".s.new-999999999-abcdef"
    staging.mkdir()
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    assert not leftover.exists() and not staging.exists()


def test_status_when_a_running_heartbeat_is_old_says_stale(tmp_path, capsys):
    # Arrange: this very process "runs" the session, but its last beat is an hour old
    assert _run(tmp_path) == 0
    beat = json.loads(_paths(tmp_path).heartbeat.read_text())
    beat.update(status="running", pid=os.getpid(), last_beat="2026-01-01T00:00:00.000Z")
    _paths(tmp_path).heartbeat.write_text(json.dumps(beat))
    # Act / Assert
    assert ops.status("s", tmp_path)["status_word"] == "stale"


def test_session_files_when_written_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        assert _run(tmp_path) == 0
    finally:
        os.umask(previous)
    root = _paths(tmp_path).root
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "logs").stat().st_mode) == 0o700
    names = (
        "config.json",
        "state.json",
        "heartbeat.json",
        "decisions.jsonl",
        "tape.jsonl",
        "run.lock",
        "logs/session.jsonl",
    )
    for name in names:
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name


def test_recovery_when_state_lags_warns_in_the_session_log_too(tmp_path):
    assert _run(tmp_path) == 0
    state = json.loads(_paths(tmp_path).state.read_text())
    lines = _paths(tmp_path).decisions.read_text().splitlines()
    from labkit.engine.portfolio import Portfolio

    book = Portfolio.start(10_000.0)
    for line in lines[:100]:
        book.replay_line(json.loads(line))
    state["portfolio"], state["journal_offset"] = book.to_dict(), 0
    _paths(tmp_path).state.write_text(json.dumps(state))
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    assert "decisions behind the journal" in _session_log(tmp_path)


@pytest.mark.slow
def test_run_when_signalled_during_start_up_stops_cleanly_and_creates_nothing(tmp_path):
    # Arrange: an exchange that is down, so start-up sits in its retries
    from tests.data.fake_binance import FakeBinance

    fake = FakeBinance().start()
    fake.down = True
    (tmp_path / "labkit.yaml").write_text(json.dumps({"exchanges": {"binance": fake.ccxt_config()}}))
    try:
        proc = stubs.start_labkit(
            tmp_path,
            "run",
            "--source",
            "ccxt:binance",
            "--pace",
            "fast",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--session",
            "sig",
        )
        time.sleep(2.5)
        # Act
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        fake.close()
    # Assert
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (tmp_path / "data" / "sessions" / "sig").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "cannot be read as JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"session": "x"}', "must be a JSON object"),
        ('{"session": {"timeframe": "1x"}}', "session.timeframe"),
        ('{"gates": {"enabled": ["halt"]}}', "gates.enabled"),
    ],
)
def test_replay_when_config_json_is_corrupt_names_the_file_and_the_problem(
    tmp_path, capsys, content, expected
):
    assert _run(tmp_path) == 0
    _paths(tmp_path).config.write_text(content)
    code = main(["--home", str(tmp_path), "replay", "--session", "s"])
    err = capsys.readouterr().err
    assert code == 2 and "config.json" in err and expected in err and "Traceback" not in err

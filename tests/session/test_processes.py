"""Real `labkit run` processes on a fast clock: what operators do to a session that runs for days."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from labkit import operations as ops
from labkit._io import read_json
from labkit.engine.journal import iter_lines
from labkit.errors import CheckFailedError
from labkit.session.paths import session_paths
from tests import stubs

pytestmark = pytest.mark.slow
# fast 1 / slow 2 proposes on every turn of the close: a live session trades within seconds.
LIVE = ["--timeframe", "1s", "--interval", "1", "--fast", "1", "--slow", "2"]
BUSY = "gates:\n  turnover:\n    max_daily: 100000\n  guardrails:\n    max_loss_streak: 100000\n"


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap():
    yield
    while _STARTED:  # no run outlives its test, and no pipe is left open
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _start(home: Path, name: str, *args: str) -> subprocess.Popen[str]:
    proc = stubs.start_labkit(home, "run", "--session", name, *args)
    _STARTED.append(proc)
    return proc


def _stderr(proc: subprocess.Popen[str]) -> str:
    return proc.communicate(timeout=20)[1]


def _wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def _decisions(home: Path, name: str) -> list[dict]:
    path = session_paths(home, name).decisions
    return list(iter_lines(path)) if path.exists() else []


def _state(home: Path, name: str) -> dict:
    return read_json(session_paths(home, name).state) or {}


def _assert_gapless(lines: list[dict]) -> None:
    assert [line["seq"] for line in lines] == list(range(len(lines)))
    times = [line["ts"] for line in lines]
    assert times == sorted(set(times)), "a bar was decided twice or out of order"


@pytest.mark.heavy
def test_session_when_operated_while_running_obeys_every_command(tmp_path):
    # Arrange: a clock-paced paper session on 1-second bars, allowed to trade all day
    (tmp_path / "labkit.yaml").write_text(BUSY)
    proc = _start(tmp_path, "ops", *LIVE)
    try:
        _wait_for(lambda: len(_decisions(tmp_path, "ops")) >= 3)
        # Act / Assert: status and verify while it runs, from this process (another directory)
        status = ops.status("ops", tmp_path)
        assert status["status_word"] == "running" and status["pid"] == proc.pid
        assert all(check.ok for check in ops.verify("ops", tmp_path)), ops.verify("ops", tmp_path)
        # emergency stop once it holds a position: flattened at the next open, entries refused
        _wait_for(lambda: _state(tmp_path, "ops").get("portfolio", {}).get("position", 0) > 0, timeout=40)
        assert ops.emergency_stop("ops", tmp_path) == "applied by the running session"
        halted_at = _wait_for(lambda: _state(tmp_path, "ops")["portfolio"]["halted"]
                              and _state(tmp_path, "ops")["portfolio"]["last_seq"])
        _wait_for(lambda: any(line["rejection_reason"] == "emergency_stop" for line in _decisions(tmp_path, "ops")),
                  timeout=40)
        # flattened by the next open (by the stop itself, or by an exit the signal had just decided)
        after = _decisions(tmp_path, "ops")[halted_at + 1 :]
        assert after[0]["position"] == 0.0 and (after[0]["fill"] or {"side": "SELL"})["side"] == "SELL"
        assert not any(line["action"] == "BUY" for line in after)
        assert [c.name for c in ops.verify("ops", tmp_path) if not c.ok] == ["not_halted"]
        ops.resume("ops", tmp_path)
        _wait_for(lambda: not _state(tmp_path, "ops")["portfolio"]["halted"])
        # graceful stop
        assert ops.stop("ops", tmp_path) == "stopped"
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    lines = _decisions(tmp_path, "ops")
    _assert_gapless(lines)
    assert read_json(session_paths(tmp_path, "ops").heartbeat)["status"] == "stopped"
    assert stubs.run_labkit(tmp_path, "replay", "--session", "ops").returncode == 0


def test_session_when_killed_hard_resumes_without_losing_or_repeating_a_bar(tmp_path):
    # Arrange
    proc = _start(tmp_path, "crash", *LIVE)
    _wait_for(lambda: len(_decisions(tmp_path, "crash")) >= 4)
    # Act: kill -9, then a torn half line as if the kill hit a write
    proc.kill()
    proc.wait(timeout=10)
    assert ops.status("crash", tmp_path)["status_word"] == "dead"  # not "running": its process is gone
    with open(session_paths(tmp_path, "crash").decisions, "ab") as handle:
        handle.write(b'{"schema":1,"session":"crash","seq":')
    again = _start(tmp_path, "crash", *LIVE)  # the dead process's lock is free: this run takes over
    try:
        before = len(_decisions(tmp_path, "crash"))
        _wait_for(lambda: len(_decisions(tmp_path, "crash")) >= before + 3)
        ops.stop("crash", tmp_path)
        assert again.wait(timeout=20) == 0
    finally:
        again.kill()
        err = _stderr(again)
    # Assert
    lines = _decisions(tmp_path, "crash")
    _assert_gapless(lines)
    assert "torn last line" in err
    state = _state(tmp_path, "crash")["portfolio"]
    assert state["last_seq"] == lines[-1]["seq"] and state["cash"] == lines[-1]["cash"]


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGSTOP suspends a POSIX process; Windows has no equivalent")
def test_stop_when_the_running_session_cannot_answer_is_cancelled_and_stops_nothing_later(tmp_path):
    # Arrange: a live session, suspended (as a stuck or swapped-out process is) while it holds the lock
    proc = _start(tmp_path, "mute", *LIVE)
    _wait_for(lambda: len(_decisions(tmp_path, "mute")) >= 2)
    proc.send_signal(signal.SIGSTOP)
    try:
        # Act
        with pytest.raises(CheckFailedError, match="did not acknowledge the stop") as refused:
            ops.stop("mute", tmp_path, wait=1.0)
    finally:
        proc.send_signal(signal.SIGCONT)
    # Assert: it names the live holder, and the cancelled stop does not end the run once it resumes
    assert f"pid {proc.pid}" in str(refused.value)
    before = len(_decisions(tmp_path, "mute"))
    _wait_for(lambda: len(_decisions(tmp_path, "mute")) >= before + 3)
    assert proc.poll() is None
    assert ops.stop("mute", tmp_path) == "stopped"
    assert proc.wait(timeout=20) == 0
    _assert_gapless(_decisions(tmp_path, "mute"))


@pytest.mark.heavy
def test_session_when_twenty_start_at_once_exactly_one_runs(tmp_path):
    # Arrange / Act: twenty starts of one session at the same moment
    procs = [_start(tmp_path, "race", *LIVE) for _ in range(20)]
    try:
        codes = _wait_for(lambda: [p.poll() for p in procs] if sum(p.poll() is None for p in procs) == 1 else None,
                          timeout=90, every=0.2)
        running = [p for p, code in zip(procs, codes, strict=True) if code is None]
        # Assert: one runs, nineteen were refused with exit 3 naming the holder
        assert sorted(c for c in codes if c is not None) == [3] * 19
        [winner] = running
        assert all("already running" in _stderr(p) for p in procs if p is not winner)
        _wait_for(lambda: len(_decisions(tmp_path, "race")) >= 2)
        assert [c.name for c in ops.verify("race", tmp_path) if not c.ok] == []
        ops.stop("race", tmp_path)
        assert winner.wait(timeout=20) == 0
    finally:
        for p in procs:
            p.kill()
            p.communicate(timeout=10)
    _assert_gapless(_decisions(tmp_path, "race"))


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM is a POSIX signal; Windows stops through `labkit stop`")
def test_session_when_sent_sigterm_stops_gracefully(tmp_path):
    proc = _start(tmp_path, "term", *LIVE)
    _wait_for(lambda: len(_decisions(tmp_path, "term")) >= 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    beat = read_json(session_paths(tmp_path, "term").heartbeat)
    assert beat["status"] == "stopped"
    assert _state(tmp_path, "term")["portfolio"]["last_seq"] == _decisions(tmp_path, "term")[-1]["seq"]


@pytest.mark.heavy
def test_session_when_killed_at_random_moments_matches_an_uninterrupted_run(tmp_path):
    # Arrange: the same replayed range, once without interruption
    args = ["--pace", "fast", "--since", "2026-01-05", "--until", "2026-02-05"]
    calm = tmp_path / "calm"
    assert stubs.run_labkit(calm, "run", "--session", "k", *args).returncode == 0
    expected = [_no_clock(line) for line in _decisions(calm, "k")]
    total = session_paths(calm, "k").decisions.stat().st_size
    journal = session_paths(tmp_path, "k").decisions
    rng = random.Random(20261124)
    # Act: kill -9 at random points of the run, restart each time, then let it finish
    kills = 0
    for _ in range(5):
        proc = _start(tmp_path, "k", *args)
        target = rng.uniform(0.05, 0.95) * total
        _wait_for(lambda p=proc, t=target: p.poll() is not None or (journal.exists() and journal.stat().st_size >= t),
                  timeout=60, every=0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
    final = _start(tmp_path, "k", *args)
    assert final.wait(timeout=120) == 0, _stderr(final)
    # Assert
    lines = _decisions(tmp_path, "k")
    _assert_gapless(lines)
    assert kills >= 2
    assert [_no_clock(line) for line in lines] == expected
    replay = stubs.run_labkit(tmp_path, "replay", "--session", "k")
    assert replay.returncode == 0, replay.stdout


def _no_clock(line: dict) -> dict:
    return {k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")}


def test_ops_start_when_called_from_a_notebook_returns_at_once(tmp_path):
    started = time.monotonic()
    proc = ops.start("nb", tmp_path, timeframe="1s", interval=1, max_bars=3)
    assert time.monotonic() - started < 2.0
    assert proc.wait(timeout=40) == 0
    assert len(_decisions(tmp_path, "nb")) == 3
    assert json.loads(json.dumps(ops.status("nb", tmp_path)))["decisions"] == 3

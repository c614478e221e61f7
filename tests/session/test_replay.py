"""Replay compares with the state, and agrees after a kill at any moment: issue 19, points 3 and 6.

A journal cut short, emptied, or ahead of ``state.json``, or a tape that ends before the journal,
fails naming both seqs instead of replaying as "all identical". A session killed (or out of disk)
after its tape's first flush but before its first decision resumes, and its replay agrees.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import operations as ops
from labkit.cli import main
from labkit.session.paths import session_paths
from labkit.session.tape import TapeWriter

SINCE, UNTIL = "2026-01-05", "2026-01-05T04:00"  # 240 one-minute bars: seqs 0 to 239
RUN = ["run", "--pace", "fast", "--since", SINCE, "--until", UNTIL, "--session", "s"]


def _run(home: Path, *extra: str) -> int:
    return main(["--home", str(home), *RUN, *extra])


def _replay(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--home", str(home), "replay", "--session", "s"])
    return code, capsys.readouterr().out


def _journal(home: Path) -> Path:
    return session_paths(home, "s").decisions


def _keep_lines(path: Path, keep: int) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:keep]))


# --- the journal against the state ----------------------------------------------------------------


def test_replay_when_journal_is_cut_100_lines_short_fails_naming_both_seqs(tmp_path, capsys):
    # Arrange: the journal's last 100 decisions gone, state.json intact
    assert _run(tmp_path) == 0
    _keep_lines(_journal(tmp_path), 140)
    # Act
    code, out = _replay(tmp_path, capsys)
    # Assert
    assert code == 1, out
    assert "all identical" not in out
    assert "seq 139" in out and "seq 239" in out and "state.json" in out


def test_replay_when_journal_is_emptied_fails_naming_the_state_seq(tmp_path, capsys):
    assert _run(tmp_path) == 0
    _journal(tmp_path).write_bytes(b"")
    code, out = _replay(tmp_path, capsys)
    assert code == 1, out
    assert "all identical" not in out and "no decision" in out and "seq 239" in out


def test_replay_when_journal_is_ahead_of_a_stopped_state_fails_and_says_run_folds_them(tmp_path, capsys):
    # Arrange: the state of 04:00 put back after a run to 05:00 (as a kill before the save leaves it)
    assert _run(tmp_path) == 0
    state = session_paths(tmp_path, "s").state
    earlier = state.read_bytes()
    assert _run(tmp_path, "--until", "2026-01-05T05:00") == 0
    state.write_bytes(earlier)
    # Act
    code, out = _replay(tmp_path, capsys)
    # Assert
    assert code == 1, out
    assert "seq 299" in out and "seq 239" in out and "labkit run" in out


def test_replay_when_the_tape_ends_before_the_journal_fails_naming_both_seqs(tmp_path, capsys):
    # Arrange: the tape's last 40 bars (and its final commit) lost
    assert _run(tmp_path) == 0
    tape = session_paths(tmp_path, "s").tape
    bars = [row for row in tape.read_bytes().splitlines(keepends=True) if b'"kind":"bar"' in row]
    tape.write_bytes(b"".join(bars[:200]))
    # Act
    code, out = _replay(tmp_path, capsys)
    # Assert
    assert code == 1, out
    assert "all identical" not in out and "tape" in out and "seq 199" in out and "seq 239" in out


def test_replay_when_journal_matches_the_state_says_all_identical(tmp_path, capsys):
    assert _run(tmp_path) == 0
    code, out = _replay(tmp_path, capsys)
    assert code == 0 and "240 decisions replayed, all identical" in out


def test_verify_when_journal_is_cut_short_fails_journal_matches_state_naming_both_seqs(tmp_path):
    assert _run(tmp_path) == 0
    whole = {c.name: c for c in ops.verify("s", tmp_path)}
    _keep_lines(_journal(tmp_path), 140)
    cut = {c.name: c for c in ops.verify("s", tmp_path)}
    assert whole["journal_matches_state"].ok, whole["journal_matches_state"].detail
    assert not cut["journal_matches_state"].ok
    assert (
        "seq 139" in cut["journal_matches_state"].detail and "seq 239" in cut["journal_matches_state"].detail
    )


def test_verify_when_journal_is_emptied_fails_journal_matches_state(tmp_path):
    assert _run(tmp_path) == 0
    _journal(tmp_path).write_bytes(b"")
    check = {c.name: c for c in ops.verify("s", tmp_path)}["journal_matches_state"]
    assert not check.ok and "seq 239" in check.detail


# --- the early-kill window ------------------------------------------------------------------------


@pytest.mark.parametrize("flushed", [0, 1, 100, 239])
def test_replay_when_disk_filled_after_the_tapes_first_flush_agrees_after_resume(
    tmp_path, capsys, monkeypatch, flushed
):
    # Arrange: a new session's disk fills after `flushed` bars reached its tape, before any decision
    real = TapeWriter.bars

    def full_disk(self: TapeWriter, bars, kind, now=None):
        real(self, bars.iloc[:flushed], kind, now)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(TapeWriter, "bars", full_disk)
    assert _run(tmp_path) != 0
    monkeypatch.setattr(TapeWriter, "bars", real)
    # Act: room again; the session resumes and finishes, then is replayed
    assert _run(tmp_path) == 0
    code, out = _replay(tmp_path, capsys)
    # Assert
    assert code == 0, out
    assert "240 decisions replayed, all identical" in out


_KILLED_AFTER_TAPE_FLUSH = """
import os, sys
from labkit.cli import main
from labkit.session.tape import TapeWriter

real = TapeWriter.bars

def killed(self, bars, kind, now=None):
    real(self, bars.iloc[:100], kind, now)  # the first buffer of bars is on disk
    os._exit(9)  # SIGKILL: nothing else runs

TapeWriter.bars = killed
main(sys.argv[1:])
"""


def test_replay_when_killed_after_the_tapes_first_flush_agrees_after_resume(tmp_path, capsys):
    # Arrange: a new fast session killed between its tape's first flush and its first decision
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_TAPE_FLUSH, "--home", str(tmp_path), *RUN],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr
    assert _journal(tmp_path).read_bytes() == b""
    # Act
    assert _run(tmp_path) == 0
    code, out = _replay(tmp_path, capsys)
    # Assert
    assert code == 0, out
    assert "240 decisions replayed, all identical" in out

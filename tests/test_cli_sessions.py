"""What the session and data commands tell a person: status and verify in readable ages, quiet
logs, long ranges announced (and confirmed on a terminal), journals never overwritten, gaps located."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from labkit.cli import common as cli_common
from labkit.cli import main
from labkit.data.cache import cache_path, write_parquet
from labkit.session.status import status_line
from labkit.timeutil import iso_ms, now_ms
from tests import stubs

RUN = ["run", "--mode", "paper", "--pace", "fast", "--since", "2026-01-05", "--until", "2026-01-05T02:00"]
# 59 days of 1-second bars: 5,097,600, above the confirmation threshold
HUGE = ["--timeframe", "1s", "--since", "2026-01-01", "--until", "2026-03-01"]


def _session(home: Path, name: str = "s1") -> Path:
    stubs.replayed_session(home, name, "2026-01-05", "2026-01-05T02:00")
    return home / "data" / "sessions" / name


def _beat(directory: Path, **fields: object) -> None:
    path = directory / "heartbeat.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def _status(home: Path, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert main(["--home", str(home), "status", "--session", "s1", *extra]) == 0
    return capsys.readouterr().out


def test_status_when_stopped_shows_no_pid_and_ages_in_human_units(tmp_path, capsys):
    # Arrange: a finished session whose last beat was three minutes ago
    directory = _session(tmp_path)
    _beat(directory, last_beat=iso_ms(now_ms() - 185_000))
    # Act
    out = _status(tmp_path, capsys)
    # Assert
    assert "stopped" in out and "pid" not in out
    assert "last beat 3 min ago" in out
    assert "last bar 2026-01-05T01:59:00Z (" in out and " d ago)" in out


def test_status_when_running_shows_the_pid(tmp_path, capsys):
    directory = _session(tmp_path)
    _beat(directory, status="running", pid=os.getpid(), last_beat=iso_ms(now_ms() - 12_000))
    out = _status(tmp_path, capsys)
    assert "running" in out and f"pid {os.getpid()}" in out and "last beat 12 s ago" in out


def test_status_when_json_keeps_the_recorded_fields(tmp_path, capsys):
    directory = _session(tmp_path)
    beat = iso_ms(now_ms() - 185_000)
    _beat(directory, last_beat=beat)
    status = json.loads(_status(tmp_path, capsys, "--json"))
    assert status["last_beat"] == beat and status["pid"] == os.getpid()
    assert status["last_decision_ts"] == "2026-01-05T01:59:00Z"


@pytest.mark.parametrize(
    ("word", "shown"), [("running", True), ("halted", True), ("dead", True), ("stopped", False)]
)
def test_status_line_when_formatted_shows_the_pid_only_while_a_process_may_live(word, shown):
    status = {"session": "s", "status_word": word, "pid": 4242, "last_beat": stubs.T0, "last_decision_ts": None}
    line = status_line(status, now=stubs.T0 + 4 * 86_400_000)
    assert ("pid 4242" in line) is shown
    assert "last beat 4 d ago" in line and "last bar -" in line


def test_verify_when_session_is_stopped_says_so_first_and_lists_the_checks(tmp_path, capsys):
    # Arrange
    directory = _session(tmp_path)
    _beat(directory, last_beat=iso_ms(now_ms() - 3 * 3_600_000 - 5_000))
    capsys.readouterr()
    # Act
    code = main(["--home", str(tmp_path), "verify", "--session", "s1"])
    # Assert
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0] == "session s1 is stopped (last beat 3 h ago); verify checks a running session"
    assert "FAIL heartbeat_fresh: last beat 3 h ago (limit 21 s)" in lines
    assert lines[-1].endswith("checks failed")


def test_verify_when_json_reports_the_status_word(tmp_path, capsys):
    _session(tmp_path)
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "verify", "--session", "s1", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "stopped" and report["ok"] is False


@pytest.mark.parametrize("quiet", [["-q", *RUN], [*RUN, "-q"], [*RUN, "--quiet"]])
def test_run_when_quiet_prints_no_info_logs(tmp_path, quiet):
    # Act: a real process, so its stderr is exactly what a terminal would show
    done = stubs.run_labkit(tmp_path, *quiet, "--session", "q")
    # Assert
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr
    assert "decided 120 bars" in done.stdout


def test_run_when_not_quiet_logs_its_start_at_info(tmp_path):
    done = stubs.run_labkit(tmp_path, *RUN, "--session", "loud")
    assert done.returncode == 0, done.stderr
    assert "INFO labkit.session.runner: session loud starts" in done.stderr


def test_run_when_quiet_in_process_keeps_info_off_stderr_and_in_the_session_log(tmp_path, capsys):
    assert main(["--home", str(tmp_path), *RUN, "--session", "q", "--quiet"]) == 0
    assert "INFO" not in capsys.readouterr().err
    assert "starts" in (tmp_path / "data/sessions/q/logs/session.jsonl").read_text()


def _terminal(monkeypatch: pytest.MonkeyPatch, answer: str | None) -> None:
    monkeypatch.setattr(cli_common, "_interactive", lambda: True)
    if answer is None:
        monkeypatch.setattr("sys.stdin", None)  # reading would fail: nothing may be asked
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))


@pytest.mark.parametrize("command", [["backtest"], ["run", "--pace", "fast", "--session", "huge"]])
def test_huge_range_when_refused_on_a_terminal_exits_2_before_loading_a_bar(tmp_path, capsys, monkeypatch, command):
    # Arrange: on a terminal, answering no; opening the source would be a failure
    from labkit.data.synthetic import SyntheticSource

    _terminal(monkeypatch, "n\n")

    def no_bars(*args: object, **kwargs: object) -> None:
        raise AssertionError("bars were loaded before the question was answered")

    monkeypatch.setattr(SyntheticSource, "bars", no_bars)
    # Act
    code = main(["--home", str(tmp_path), *command, *HUGE])
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "about to run 5,097,600 bars of BTC/USDT 1s from synthetic" in err
    assert "continue? [y/N]" in err and "--yes" in err
    assert not (tmp_path / "data" / "sessions").exists()


def test_huge_range_when_yes_given_announces_without_asking(tmp_path, capsys, monkeypatch):
    # Arrange: a lower threshold keeps the run small; stdin must not be read
    _terminal(monkeypatch, None)
    monkeypatch.setattr(cli_common, "CONFIRM_BARS", 100)
    # Act
    code = main(["--home", str(tmp_path), *RUN, "--session", "y", "--yes"])
    # Assert
    assert code == 0
    assert "about to run 120 bars" in capsys.readouterr().err


def test_huge_range_when_confirmed_on_a_terminal_runs(tmp_path, capsys, monkeypatch):
    _terminal(monkeypatch, "y\n")
    monkeypatch.setattr(cli_common, "CONFIRM_BARS", 100)
    assert main(["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", "2026-01-05T02:00"]) == 0
    assert "120 bars" in capsys.readouterr().out


def test_huge_range_when_not_on_a_terminal_announces_and_proceeds(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_common, "CONFIRM_BARS", 100)
    code = main(["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", "2026-01-05T02:00"])
    err = capsys.readouterr().err
    assert code == 0
    assert "about to run 120 bars" in err and "continue?" not in err


def test_huge_range_when_a_resumed_run_has_decided_most_counts_only_the_rest(tmp_path, capsys, monkeypatch):
    # Arrange: 120 bars decided; the range grows by 60
    _session(tmp_path)
    monkeypatch.setattr(cli_common, "CONFIRM_BARS", 10)
    # Act
    code = main(["--home", str(tmp_path), *RUN, "--until", "2026-01-05T03:00", "--session", "s1"])
    # Assert
    assert code == 0
    assert "about to run 60 bars" in capsys.readouterr().err


def test_backtest_when_on_a_terminal_shows_progress_and_the_same_result(tmp_path, capsys, monkeypatch):
    # Arrange: more bars than the engine's slice, so the progress bar moves more than once
    args = ["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", "2026-03-01", "--json"]
    assert main(args) == 0
    plain = capsys.readouterr()
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    # Act
    assert main(args) == 0
    shown = capsys.readouterr()
    # Assert
    assert "79200/79200" in shown.err and "79200/79200" not in plain.err
    assert json.loads(shown.out) == json.loads(plain.out)


def test_backtest_when_journal_exists_refuses_without_append(tmp_path, capsys):
    # Arrange
    journal = tmp_path / "bt.jsonl"
    args = ["--home", str(tmp_path), "backtest", "--max-bars", "50", "--until", "2026-01-06", "--journal", str(journal)]
    assert main(args) == 0
    before = journal.read_text()
    # Act
    code = main(args)
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert f"--journal: {journal} exists" in err and "--append" in err
    assert journal.read_text() == before


def test_backtest_when_journal_exists_and_append_given_adds_to_it(tmp_path, capsys):
    journal = tmp_path / "bt.jsonl"
    args = ["--home", str(tmp_path), "backtest", "--max-bars", "50", "--until", "2026-01-06", "--journal", str(journal)]
    assert main(args) == 0
    assert main([*args, "--append"]) == 0
    assert len(journal.read_text().splitlines()) == 100


def test_backtest_when_append_has_no_journal_exits_2(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "backtest", "--max-bars", "50", "--append"]) == 2
    assert "--append:" in capsys.readouterr().err


def _cache_with_gaps(home: Path, gaps: int) -> None:
    # One hour of minute bars, with `gaps` holes of 5 bars each, 10 bars apart
    bars = stubs.bars(n=60)
    holes = [i for g in range(gaps) for i in range(10 + 10 * g, 15 + 10 * g)]
    write_parquet(bars.drop(bars.index[holes]), cache_path(home, "ccxt:binance", "BTC/USDT", "1m"))


def test_data_info_when_gaps_exist_names_the_first_three_and_counts_the_rest(tmp_path, capsys):
    # Arrange
    _cache_with_gaps(tmp_path, gaps=5)
    # Act
    assert main(["--home", str(tmp_path), "data", "info"]) == 0
    # Assert
    out = capsys.readouterr().out
    assert "25 missing in 5 gap(s)" in out
    assert (
        "  gaps: 2026-01-05T00:10:00Z +5 bars, 2026-01-05T00:20:00Z +5 bars, 2026-01-05T00:30:00Z +5 bars, "
        "and 2 more"
    ) in out


def test_data_info_when_json_lists_every_gap(tmp_path, capsys):
    _cache_with_gaps(tmp_path, gaps=5)
    assert main(["--home", str(tmp_path), "data", "info", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert len(entry["gaps"]) == 5
    assert entry["gaps"][-1] == ["2026-01-05T00:50:00Z", "2026-01-05T00:55:00Z"]


def test_huge_range_when_the_source_is_a_file_counts_the_bars_it_holds(tmp_path, capsys, monkeypatch):
    # Arrange: a range reaching back decades, over a file of 600 bars; nothing may be asked
    _terminal(monkeypatch, None)
    monkeypatch.setattr(cli_common, "CONFIRM_BARS", 100)
    source = f"csv:{stubs.FIXTURE_CSV}"
    # Act
    code = main(["--home", str(tmp_path), "backtest", "--source", source, "--since", "2000-01-01", "--yes"])
    # Assert
    assert code == 0
    assert "about to run 600 bars" in capsys.readouterr().err


def test_huge_range_when_a_file_session_replays_asks_nothing(tmp_path, capsys, monkeypatch):
    _terminal(monkeypatch, None)
    source = f"csv:{stubs.FIXTURE_CSV}"
    assert main(["--home", str(tmp_path), *RUN, "--source", source, "--since", "2000-01-01"]) == 0
    assert "about to run" not in capsys.readouterr().err


# --- verify and replay on damaged files: named refusals, never a traceback (issue 19, 11a/11b) ----


def _append(path: Path, garbage: bytes) -> int:
    # Return the number the appended line gets.
    lines = path.read_bytes().count(b"\n")
    with open(path, "ab") as handle:
        handle.write(garbage)
    return lines + 1


@pytest.mark.parametrize("command", ["verify", "replay"])
@pytest.mark.parametrize("garbage", [b"this is not a decision\n", b'{"seq": 120, "ts": \n', b"[1, 2]\n"])
def test_verify_and_replay_when_the_last_journal_line_is_garbage_refuse_naming_the_line(
    tmp_path, capsys, command, garbage
):
    # Arrange: a garbage line after the session's 120 decisions
    directory = _session(tmp_path)
    number = _append(directory / "decisions.jsonl", garbage)
    capsys.readouterr()
    # Act
    code = main(["--home", str(tmp_path), command, "--session", "s1"])
    # Assert: exit 2 naming the file, the line and the repair
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"decisions.jsonl line {number}" in err and "backup" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not a tape line\n",
        b"[1, 2]\n",
        b'{"kind": "bar", "ts": 1767571200000}\n',  # a bar without its prices
        b'{"kind": "bar", "ts": "noon", "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "now": null}\n',
        b'{"kind": "tick"}\n',
    ],
)
def test_replay_when_a_tape_line_is_garbage_refuses_naming_the_line(tmp_path, capsys, garbage):
    # Arrange: a garbage line in the middle of the tape
    directory = _session(tmp_path)
    tape = directory / "tape.jsonl"
    rows = tape.read_bytes().splitlines(keepends=True)
    tape.write_bytes(b"".join(rows[:50]) + garbage + b"".join(rows[50:]))
    capsys.readouterr()
    # Act
    code = main(["--home", str(tmp_path), "replay", "--session", "s1"])
    # Assert
    err = capsys.readouterr().err
    assert code == 2, err
    assert "tape.jsonl line 51" in err and "backup" in err and "Traceback" not in err


@pytest.mark.parametrize("pace", ["1s", "5m", "1h"])
def test_run_when_pace_is_a_bar_length_points_to_timeframe_and_creates_nothing(tmp_path, capsys, pace):
    # Act
    code = main(["--home", str(tmp_path), "run", "--pace", pace, "--session", "x"])
    # Assert
    err = capsys.readouterr().err
    assert (
        code == 2
        and f"--pace: {pace!r} is a bar length, not a pace; for {pace} bars use --timeframe {pace}" in err
    )
    assert not (tmp_path / "data" / "sessions" / "x").exists()

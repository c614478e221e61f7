from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from labkit.cli import main
from tests import stubs

RUN = ["run", "--mode", "paper", "--pace", "fast", "--since", "2026-01-05", "--until", "2026-01-05T12:00"]


def _run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--mode", "live"], "session.mode (--mode): live trading does not exist"),
        (["run", "--mode", "paperish"], "session.mode (--mode): Input should be 'shadow' or 'paper'"),
        (["run", "--capital", "-5"], "session.capital (--capital): Input should be greater than 0"),
        (["run", "--interval", "0"], "session.interval (--interval): Input should be greater than 0"),
        (
            ["run", "--source", "bloomberg"],
            "session.source (--source): 'bloomberg' is not a source; allowed:",
        ),
        (
            ["run", "--pace", "fast", "--since", "last tuesday"],
            "session.since (--since): 'last tuesday' is not a time",
        ),
        (["run", "--timeframe", "7x"], "session.timeframe (--timeframe): '7x' is not a timeframe"),
        (["run", "--session", "../escape"], "session.name (--session): use letters, digits"),
        (["run", "--pace", "fast"], "session.since (--since): a fast-paced run needs --since or --max-bars"),
        (["backtest", "--source", "csv:missing.csv"], "missing.csv: no such file"),
        (["backtest", "--strategy", "model"], "model latest: no model for BTC/USDT 1m under"),
    ],
)
def test_cli_when_input_is_bad_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    # Act
    code = _run(tmp_path, *args)
    # Assert
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_when_flag_value_is_not_a_number_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _run(tmp_path, "run", "--capital", "lots")
    assert exc.value.code == 2
    assert "--capital: invalid float value: 'lots'" in capsys.readouterr().err


def test_backtest_when_json_prints_design_fields(tmp_path, capsys):
    code = _run(
        tmp_path, "backtest", "--since", "2026-01-05", "--until", "2026-01-06", "--json", "--gates", "off"
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {
        "trades",
        "final_equity",
        "return_pct",
        "max_drawdown_pct",
        "sharpe",
        "first_ts",
        "last_ts",
        "bars",
    } <= set(result)
    assert (result["bars"], result["first_ts"], result["last_ts"]) == (
        1440,
        "2026-01-05T00:00:00Z",
        "2026-01-05T23:59:00Z",
    )


def test_backtest_when_journal_asked_writes_one_line_per_bar(tmp_path, capsys):
    journal = tmp_path / "bt.jsonl"
    assert (
        _run(tmp_path, "backtest", "--max-bars", "500", "--until", "2026-01-06", "--journal", str(journal))
        == 0
    )
    assert len(journal.read_text().splitlines()) == 500


def test_run_when_resumed_after_finishing_decides_nothing_more(tmp_path, capsys):
    # Arrange
    assert _run(tmp_path, *RUN, "--session", "s1") == 0
    first = (tmp_path / "data/sessions/s1/decisions.jsonl").read_text()
    # Act
    code = _run(tmp_path, *RUN, "--session", "s1", "--until", "2026-01-05T13:00")
    # Assert: 60 more bars, seq continuing without a gap
    lines = (tmp_path / "data/sessions/s1/decisions.jsonl").read_text().splitlines()
    assert code == 0 and lines[: len(first.splitlines())] == first.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(780))


def test_run_when_session_started_with_other_symbol_refuses(tmp_path, capsys):
    assert _run(tmp_path, *RUN, "--session", "s1") == 0
    assert _run(tmp_path, *RUN, "--session", "s1", "--symbol", "ETH/USDT") == 2
    assert "was started with symbol 'BTC/USDT'" in capsys.readouterr().err


def test_run_when_session_is_locked_exits_3_naming_the_pid(tmp_path, capsys):
    # Arrange: another process holds the lock (its pid is in the heartbeat)
    assert _run(tmp_path, *RUN, "--session", "busy") == 0
    session = tmp_path / "data/sessions/busy"
    beat = json.loads((session / "heartbeat.json").read_text())
    with FileLock(session / "run.lock"):
        # Act
        code = _run(tmp_path, *RUN, "--session", "busy")
    # Assert
    assert code == 3
    assert f"already running (pid {beat['pid']})" in capsys.readouterr().err


def test_status_when_state_is_corrupt_falls_back_to_heartbeat(tmp_path, capsys):
    assert _run(tmp_path, *RUN, "--session", "s1") == 0
    (tmp_path / "data/sessions/s1/state.json").write_text("{not json")
    capsys.readouterr()
    assert _run(tmp_path, "status", "--session", "s1", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["source_of_truth"] == "heartbeat" and status["decisions"] == 720


def test_status_when_session_unknown_exits_2(tmp_path, capsys):
    assert _run(tmp_path, "status", "--session", "nope") == 2
    assert "no session 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_status_when_called_from_another_directory_reads_the_home(tmp_path):
    # Arrange: a session in a home; the command runs from elsewhere, finding the home through LABKIT_HOME
    home = tmp_path / "home"
    assert _run(home, *RUN, "--session", "far") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "LABKIT_HOME": str(home)}
    # Act
    proc = stubs.run_labkit(
        None,
        "status",
        "--json",
        cwd=elsewhere,
        env=env,
        timeout=60,
    )
    # Assert
    assert proc.returncode == 0, proc.stderr
    [status] = json.loads(proc.stdout)
    assert (status["session"], status["decisions"], status["status_word"]) == ("far", 720, "stopped")
    assert status["last_decision_ts"] == "2026-01-05T11:59:00Z"


def test_help_when_asked_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("run", "backtest", "status", "report", "gates", "strategies", "sources"))


def test_run_when_calendar_given_is_kept_by_the_session_and_its_resume(tmp_path):
    import json as _json

    args = ["--home", str(tmp_path), "run", "--pace", "fast", "--since", "2026-01-05", "--session", "c"]
    assert main([*args, "--until", "2026-01-05T01:00", "--calendar", "fx"]) == 0
    assert main([*args, "--until", "2026-01-05T02:00"]) == 0
    saved = _json.loads((tmp_path / "data/sessions/c/config.json").read_text())
    assert saved["session"]["calendar"] == "fx"
    with pytest.raises(SystemExit) as refused:
        main([*args, "--until", "2026-01-05T03:00", "--calendar", "bogus"])
    assert refused.value.code == 2


def test_backtest_when_calendar_given_annualises_by_it(tmp_path, capsys):
    # The same bars and trades: only the year's length changes, by sqrt(260 / 365) for the Sharpe ratio.
    import json as _json

    args = ["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", "2026-01-06", "--json"]
    assert main(args) == 0
    crypto = _json.loads(capsys.readouterr().out)
    assert main([*args, "--calendar", "fx"]) == 0
    fx = _json.loads(capsys.readouterr().out)
    assert "fx: 260 days" in fx["annualisation"] and "365 days" in crypto["annualisation"]
    assert fx["sharpe"] == pytest.approx(crypto["sharpe"] * (260 / 365) ** 0.5, rel=1e-9)
    assert fx["final_equity"] == crypto["final_equity"]

"""The command line's parsing: common flags anywhere, errors from the command they concern, one
placeholder per kind of value, help that loads plug-in lists only when shown."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict

import pytest

from labkit.cli import main
from labkit.cli.parser import build_parser
from tests import stubs


def _subparsers(
    parser: argparse.ArgumentParser, prefix: str = "labkit"
) -> dict[str, argparse.ArgumentParser]:
    found = {prefix: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(_subparsers(child, f"{prefix} {name}"))
    return found


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*args, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_common_flags_when_given_after_the_command_are_honoured(tmp_path, capsys):
    # Arrange: --home only after the command
    home = tmp_path / "home"
    # Act
    code = main(["status", "--home", str(home), "-q"])
    # Assert
    assert code == 0
    assert f"no sessions under {home / 'data' / 'sessions'}" in capsys.readouterr().out


def test_common_flags_when_given_on_both_sides_the_one_after_the_command_wins(tmp_path, capsys):
    before, after = tmp_path / "before", tmp_path / "after"
    assert main(["--home", str(before), "-v", "status", "--home", str(after), "--quiet"]) == 0
    assert str(after / "data" / "sessions") in capsys.readouterr().out


def test_common_flags_when_given_before_the_command_still_work(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "-q", "status"]) == 0
    assert str(tmp_path / "data" / "sessions") in capsys.readouterr().out


def test_common_flags_when_given_after_a_data_action_are_honoured(tmp_path, capsys):
    assert main(["data", "info", "--home", str(tmp_path), "-q"]) == 0
    assert "nothing cached" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "usage", "hint"),
    [
        (["status", "--sesion", "x"], "usage: labkit status", "did you mean --session?"),
        (["backtest", "--timefrme", "1m"], "usage: labkit backtest", "did you mean --timeframe?"),
        (["data", "info", "--symbl", "X"], "usage: labkit data info", "did you mean --symbol?"),
    ],
)
def test_flag_typo_when_after_a_command_shows_that_commands_usage_and_exits_2(capsys, args, usage, hint):
    # Act
    with pytest.raises(SystemExit) as exc:
        main(args)
    # Assert
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert usage in err and hint in err


def test_unknown_command_when_close_to_one_suggests_it_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stauts"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "did you mean 'status'?" in err


def test_metavars_when_compared_across_commands_name_each_kind_of_value_once():
    # Arrange
    seen: dict[str, set[str]] = defaultdict(set)
    # Act
    for parser in _subparsers(build_parser()).values():
        for action in parser._actions:
            if action.metavar is not None:
                for flag in action.option_strings:
                    seen[flag].add(str(action.metavar))
    # Assert: one placeholder per flag everywhere, and the agreed names
    assert {flag: names for flag, names in seen.items() if len(names) > 1} == {}
    expected = {
        "--session": "NAME",
        "--source": "SPEC",
        "--symbol": "SYMBOL",
        "--timeframe": "TF",
        "--since": "T",
        "--until": "T",
        "--max-bars": "N",
        "--seed": "N",
        "--fast": "N",
        "--slow": "N",
        "--capital": "CASH",
        "--fee": "FRACTION",
        "--slippage": "FRACTION",
        "--strategy": "NAME",
        "--journal": "PATH",
        "--home": "DIR",
    }
    assert {flag: seen[flag] for flag in expected} == {flag: {name} for flag, name in expected.items()}


@pytest.mark.parametrize("command", [["backtest"], ["run"]])
def test_source_help_when_shown_lists_every_kind(capsys, command):
    out = _help(capsys, *command)
    assert all(kind in out for kind in ("synthetic", "csv:PATH", "parquet:PATH", "ccxt:EXCHANGE", "yfinance"))


def test_source_help_when_a_plugin_registers_a_kind_lists_it_too(capsys, monkeypatch):
    # Arrange: a registry holding one more kind than labkit's own
    import labkit.data.registry as registry

    kinds = registry.source_kinds()
    monkeypatch.setattr(registry, "source_kinds", lambda: [*kinds, "ramp"])
    # Act
    out = _help(capsys, "backtest")
    # Assert
    assert "yfinance, ramp" in out


def test_help_when_top_level_loads_no_pandas_and_points_at_the_docs():
    # Arrange
    code = (
        "import sys\nfrom labkit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('pandas' in sys.modules)"
    )
    # Act
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # Assert
    assert done.returncode == 0, done.stderr
    *help_lines, loaded = done.stdout.strip().splitlines()
    assert loaded == "False"
    text = " ".join(" ".join(help_lines).split())
    assert "docs/journal.md, docs/gates.md, docs/config.md and docs/OPERATIONS.md" in text


def test_help_when_shown_for_any_command_never_names_a_file_users_do_not_have(capsys):
    for name in _subparsers(build_parser()):
        out = _help(capsys, *name.split()[1:])
        assert "DESIGN" not in out, name


def test_backtest_help_when_run_as_a_process_lists_the_exchange_kinds(tmp_path):
    done = stubs.run_labkit(tmp_path, "backtest", "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ccxt:EXCHANGE" in done.stdout and "yfinance" in done.stdout


@pytest.mark.parametrize("flag", ["--symbols=BTC/USDT,ETH/USDT", "--universe=majors"])
def test_a_universe_on_a_one_symbol_command_is_refused_pointing_at_the_book_backtest(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--home",
                str(tmp_path),
                "data",
                "fetch",
                "--source",
                "synthetic",
                "--symbol",
                "BTC/USDT",
                "--timeframe",
                "1m",
                flag,
            ]
        )
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "labkit backtest " + flag.split("=")[0] in err and "takes one --symbol" in err
    assert not (tmp_path / "data").exists()  # nothing written

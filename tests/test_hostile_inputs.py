"""Hostile input, refused: every bad flag, variable, session name, home or bar file ends in exit 2 with
one message naming the flag, key or file, never a traceback, and nothing written anywhere.

Each case runs the real command line in-process. "Nothing written" is checked on the whole temporary
directory around the home (and the working directory inside it), so a file that escapes the home
through a session name like ``../x`` is caught too.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from labkit.cli import main

# Every run below replays an hour fast: should a hostile value ever be accepted, the test fails
# quickly instead of following the clock for ever.
RUN = ["run", "--pace", "fast", "--since", "2026-01-05", "--until", "2026-01-05T01:00", "--session", "t"]
BACKTEST = ["backtest", "--max-bars", "200"]
FETCH = ["data", "fetch", "--source", "ccxt:binance", "--symbol", "BTC/USDT", "--timeframe", "1m"]
GOOD_CSV = "timestamp,open,high,low,close,volume\n2026-01-05T00:00:00Z,10,11,9,10.5,100\n"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _main(args: Sequence[str]) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:  # argparse's own refusals (not a number, unknown choice) exit here
        return int(exc.code or 0)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A working directory beside the home: a relative path must not land there either.
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return home


def _refused(home: Path, capsys: pytest.CaptureFixture[str], args: Sequence[str], *expected: str) -> str:
    root = home.parent
    before = _tree(root)
    code = _main(["--home", str(home), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    for text in expected:
        assert text in err
    assert "Traceback" not in err
    assert _tree(root) == before, "a refused command wrote a file"
    return err


# --- numbers: finite and in range -----------------------------------------------------------------

_NUMBER_FLAGS: list[tuple[str, str, str]] = [
    # (flag, value, what the message must say besides the flag)
    *[("--capital", v, "finite") for v in ("inf", "-inf", "nan", "NaN", "1e400", "-1e400", "Infinity")],
    ("--capital", "-5", "greater than 0"),
    ("--capital", "0", "greater than 0"),
    ("--capital", "1e16", "less than or equal to"),
    ("--max-bars", "0", "greater than 0"),
    ("--max-bars", "-1", "greater than 0"),
    ("--max-bars", str(10**12), "less than or equal to 100000000"),
    ("--max-bars", "100000001", "less than or equal to 100000000"),
    ("--max-bars", "1.5", "invalid int value"),
    ("--max-bars", "1e3", "invalid int value"),
    ("--max-bars", "", "invalid int value"),
    ("--seed", "-1", "greater than or equal to 0"),
    ("--seed", str(2**64), "less than or equal to 4294967295"),
    ("--seed", str(2**32), "less than or equal to 4294967295"),
    ("--seed", "seven", "invalid int value"),
    ("--fast", "0", "greater than or equal to 1"),
    ("--fast", "-1", "greater than or equal to 1"),
    ("--fast", "100001", "less than or equal to 100000"),
    ("--slow", str(10**9), "less than or equal to 100000"),
    ("--slow", "1", "greater than or equal to 2"),
    ("--slow", "5", "must be greater than fast"),
]


@pytest.mark.parametrize("command", [RUN, BACKTEST], ids=["run", "backtest"])
@pytest.mark.parametrize(("flag", "value", "why"), _NUMBER_FLAGS)
def test_number_flag_when_not_finite_or_out_of_range_is_refused_naming_it(
    home, capsys, command, flag, value, why
):
    # flag=value: a value starting with "-" (-inf, -1m) would otherwise be taken for a flag
    _refused(home, capsys, [*command, f"{flag}={value}"], flag, why)


@pytest.mark.parametrize(
    ("flag", "value", "why"),
    [
        *[("--interval", v, "finite") for v in ("inf", "nan", "1e400")],
        ("--interval", "0", "greater than 0"),
        ("--interval", "-1", "greater than 0"),
        ("--interval", "0.0001", "at least 0.5 seconds"),
        ("--interval", "0.49", "at least 0.5 seconds"),
        ("--interval", "86401", "less than or equal to 86400"),
        ("--interval", "1e9", "less than or equal to 86400"),
    ],
)
def test_run_interval_when_it_would_burn_cpu_or_never_beat_is_refused(home, capsys, flag, value, why):
    _refused(home, capsys, [*RUN, f"{flag}={value}"], flag, why)


@pytest.mark.parametrize(
    ("flag", "value", "why"),
    [
        *[(f, v, "finite") for f in ("--fee", "--slippage") for v in ("nan", "inf", "-inf")],
        ("--fee", "-0.1", "greater than or equal to 0"),
        ("--fee", "0.5", "less than 0.5"),
        ("--slippage", "-0.1", "greater than or equal to 0"),
        ("--slippage", "1", "less than 0.5"),
    ],
)
def test_backtest_costs_when_not_finite_or_out_of_range_are_refused(home, capsys, flag, value, why):
    _refused(home, capsys, [*BACKTEST, f"{flag}={value}"], flag, why)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1e400", "soon"])
def test_verify_max_age_when_not_a_positive_finite_number_is_refused_naming_the_flag(home, capsys, value):
    _refused(home, capsys, ["verify", "--max-age", value], "--max-age", repr(value))


@pytest.mark.parametrize(
    ("variable", "value", "key", "why"),
    [
        *[
            ("LABKIT_GATES__TURNOVER__MIN_RATIO", v, "gates.turnover.min_ratio", "finite")
            for v in ("inf", ".inf", "nan", ".nan", "-inf", "1e400")
        ],
        ("LABKIT_GATES__TURNOVER__MIN_RATIO", "-1", "gates.turnover.min_ratio", "greater than or equal"),
        ("LABKIT_GATES__TURNOVER__MAX_DAILY", "0", "gates.turnover.max_daily", "greater than or equal"),
        ("LABKIT_GATES__TURNOVER__MAX_DAILY", "inf", "gates.turnover.max_daily", "valid integer"),
        ("LABKIT_GATES__DATA__STALE_AFTER_BARS", "nan", "gates.data.stale_after_bars", "finite"),
        ("LABKIT_GATES__DATA__STALE_AFTER_BARS", "0", "gates.data.stale_after_bars", "greater than 0"),
        ("LABKIT_GATES__GUARDRAILS__DAILY_LOSS_LIMIT", ".nan", "gates.guardrails.daily_loss_limit", "finite"),
        ("LABKIT_GATES__GUARDRAILS__MAX_DRAWDOWN", "1", "gates.guardrails.max_drawdown", "less than 1"),
        ("LABKIT_GATES__RISK_BUDGET__MIN_NOTIONAL", "inf", "gates.risk_budget.min_notional", "finite"),
        ("LABKIT_GATES__CONFIDENCE__MIN_CONFIDENCE", "nan", "gates.confidence.min_confidence", "finite"),
        ("LABKIT_STRATEGIES__SMA_CROSS__FAST", "inf", "strategies.sma_cross.fast", "valid integer"),
        ("LABKIT_STRATEGIES__SMA_CROSS__SLOW", "10000000", "strategies.sma_cross.slow", "less than or equal"),
        ("LABKIT_READINESS__MIN_PSR", "nan", "readiness.min_psr", "finite"),
        ("LABKIT_READINESS__MAX_COST_SHARE", "inf", "readiness.max_cost_share", "finite"),
        ("LABKIT_READINESS__BOOTSTRAP_SAMPLES", str(10**12), "readiness.bootstrap_samples", "less than"),
        ("LABKIT_READINESS__BOOTSTRAP_SEED", "-1", "readiness.bootstrap_seed", "greater than or equal"),
        ("LABKIT_DATA__BACKOFF_BASE", "inf", "data.backoff_base", "finite"),
        ("LABKIT_DATA__BACKOFF_CAP", "1e9", "data.backoff_cap", "less than or equal to 3600"),
        ("LABKIT_DATA__BREAKER_COOLDOWN", ".nan", "data.breaker_cooldown", "finite"),
        ("LABKIT_SESSION__CAPITAL", "inf", "session.capital", "finite"),
        ("LABKIT_SESSION__INTERVAL", ".nan", "session.interval", "finite"),
        ("LABKIT_BROKER__FEE", "inf", "broker.fee", "finite"),
        ("LABKIT_RISK__POSITION_FRAC", "nan", "risk.position_frac", "finite"),
        ("LABKIT_REPORTS__CELL_TIMEOUT", str(10**9), "reports.cell_timeout", "less than or equal"),
        ("LABKIT_PAPER_MIN_RATIO", "inf", "gates.turnover.min_ratio", "finite"),
        ("LABKIT_SESSION__SINCE", "0001-01-01", "session.since", "outside 1970-01-01 .. 2200-01-01"),
    ],
)
def test_setting_from_the_environment_when_not_finite_or_out_of_range_names_its_key(
    home, capsys, monkeypatch, variable, value, key, why
):
    monkeypatch.setenv(variable, value)
    _refused(home, capsys, BACKTEST, key, why)


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("broker:\n  fee: .nan\n", "broker.fee"),
        ("session:\n  capital: .inf\n", "session.capital"),
        ("gates:\n  turnover:\n    min_ratio: .inf\n", "gates.turnover.min_ratio"),
        ("readiness:\n  min_coverage: .nan\n", "readiness.min_coverage"),
    ],
)
def test_setting_from_the_file_when_not_finite_names_its_key(home, capsys, yaml, key):
    (home / "labkit.yaml").write_text(yaml)
    _refused(home, capsys, BACKTEST, key, "finite number")


# --- times: bounded, unambiguous, ASCII ------------------------------------------------------------

_BAD_INSTANTS: list[tuple[str, str]] = [
    ("-1", "before 1970-01-01"),
    ("-1767571200000", "before 1970-01-01"),
    ("12345678901234567890", "outside 1970-01-01 .. 2200-01-01"),
    ("7" * 5000, "outside 1970-01-01 .. 2200-01-01"),
    ("0001-01-01", "outside 1970-01-01 .. 2200-01-01"),
    ("1969-12-31", "outside 1970-01-01 .. 2200-01-01"),
    ("9999-12-31", "outside 1970-01-01 .. 2200-01-01"),
    ("2200-01-01T00:00:01Z", "outside 1970-01-01 .. 2200-01-01"),
    ("2199-12-31T23:00-05:00", "outside 1970-01-01 .. 2200-01-01"),
    ("1e12", "is not a time"),
    ("", "is not a time"),
    ("   ", "is not a time"),
    ("2026-02-30", "is not a time"),
    ("2026-13-01", "is not a time"),
    ("2026-01-05T25:00", "is not a time"),
    ("\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0665", "only ASCII digits"),  # Arabic-Indic digits
    ("\uff11\uff17\uff16\uff17\uff15\uff17\uff11\uff12\uff10\uff10\uff10\uff10\uff10", "only ASCII"),
    ("1767571200", "looks like epoch seconds"),
    ("05/01/2026", "ambiguous"),
    ("now", "is not a time"),
    ("2026-01-05\n2026-01-06", "is not a time"),
    ("nan", "is not a time"),
]


@pytest.mark.parametrize("flag", ["--since", "--until"])
@pytest.mark.parametrize(("value", "why"), _BAD_INSTANTS)
def test_backtest_instant_when_unbounded_or_unreadable_is_refused_with_an_example(
    home, capsys, flag, value, why
):
    err = _refused(home, capsys, [*BACKTEST, f"{flag}={value}"], f"session.{flag[2:]} ({flag})", why)
    assert "2026-01-05" in err  # an example of what works


@pytest.mark.parametrize(("value", "why"), _BAD_INSTANTS[:8])
@pytest.mark.parametrize("command", [RUN, FETCH], ids=["run", "data-fetch"])
def test_other_commands_when_an_instant_is_unbounded_refuse_it_too(home, capsys, command, value, why):
    _refused(home, capsys, [*command, f"--since={value}"], "(--since)", why)


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-01-06", "2026-01-05"), ("2026-01-05", "2026-01-05"), ("2026-01-05T00:00:00Z", "1767571200000")],
)
def test_backtest_when_since_is_not_before_until_is_refused(home, capsys, since, until):
    _refused(home, capsys, ["backtest", "--since", since, "--until", until], "--since", "is not before until")


def test_instants_when_at_the_edges_of_the_range_are_accepted(home, capsys):
    code = _main(["--home", str(home), "backtest", "--since", "2199-12-31T23:00", "--until", "2200-01-01"])
    assert code == 0, capsys.readouterr().err


# --- text: one printable line, fullmatch --------------------------------------------------------

_BAD_TEXT: list[tuple[str, str, str]] = [
    *[
        ("--timeframe", v, "is not a timeframe")
        for v in (
            "1m\n",
            "0m",
            "1x",
            "-1m",
            "1m ",
            " 1m",
            "999999999d",
            "366d",
            "01m",
            "1M",
            "",
            "\u0662m",
            "1.5m",
            "m",
            "9" * 5000 + "m",
        )
    ],
    ("--symbol", "", "a symbol is needed"),
    ("--symbol", "   ", "a symbol is needed"),
    ("--symbol", "\t", "a symbol is needed"),
    ("--symbol", "BTC\n", "control character"),
    ("--symbol", "BTC/USDT\x00", "control character"),
    ("--symbol", "a\x1b[31mred", "control character"),
    ("--symbol", "BTC\u202eUSDT", "control character"),
    ("--symbol", "x" * 65, "at most 64 characters"),
    ("--symbol", " BTC", "blanks at its start or end"),
    ("--symbol", "BTC ", "blanks at its start or end"),
    ("--source", "synthetic\n", "control character"),
    ("--source", "csv:a\nb.csv", "control character"),
    ("--source", "csv:\x00", "control character"),
    ("--source", " synthetic", "blanks at its start or end"),
    ("--source", "x" * 5000, "at most 4096 characters"),
    ("--source", "", "is not a source"),
    ("--source", "csv:", "is not a source"),
    ("--source", "ccxt:", "is not a source"),
    ("--source", "synthetic:x", "is not a source"),
    ("--strategy", "", "unknown strategy"),
    ("--strategy", " ", "unknown strategy"),
    ("--strategy", "sma_cross\n", "unknown strategy"),
    ("--strategy", "../sma_cross", "unknown strategy"),
]


@pytest.mark.parametrize("command", [RUN, BACKTEST], ids=["run", "backtest"])
@pytest.mark.parametrize(("flag", "value", "why"), _BAD_TEXT)
def test_text_flag_when_hostile_is_refused_naming_it(home, capsys, command, flag, value, why):
    _refused(home, capsys, [*command, f"{flag}={value}"], f"({flag})", why)


@pytest.mark.parametrize(("flag", "value"), [("--mode", "live"), ("--mode", ""), ("--pace", "slow")])
def test_run_choice_when_not_one_of_the_allowed_is_refused(home, capsys, flag, value):
    _refused(home, capsys, [*RUN, f"{flag}={value}"], f"({flag})")


# --- session names: one rule, checked by every command --------------------------------------------

_BAD_NAMES = [
    "../sessions/s",
    "../x",
    "..",
    "a..b",
    ".",
    "/etc",
    "a/b",
    "a\\b",
    "a\x00b",
    "x" * 65,
    "s\u00e9ance",
    ".hidden",
    "-dash",
    "a b",
    "a\nb",
    "",
    "~root",
]
_SESSION_COMMANDS = {
    "run": RUN,
    "status": ["status"],
    "report": ["report", "session"],
    "stop": ["stop"],
    "emergency-stop": ["emergency-stop"],
    "resume": ["resume"],
    "reduce-only": ["reduce-only"],
    "transition": ["transition", "--to", "shadow"],
    "verify": ["verify"],
    "replay": ["replay"],
    "schedule": ["schedule", "--print-cron"],
}


@pytest.mark.parametrize("command", list(_SESSION_COMMANDS))
@pytest.mark.parametrize("name", ["../sessions/s", "..", "/etc", "a/b", "a\x00b", "x" * 65, ".hidden"])
def test_every_command_when_session_name_is_hostile_refuses_it(home, capsys, command, name):
    _refused(home, capsys, [*_SESSION_COMMANDS[command], f"--session={name}"], "session.name (--session)")


@pytest.mark.parametrize("name", _BAD_NAMES)
@pytest.mark.parametrize("command", ["run", "status", "emergency-stop"])
def test_session_name_when_not_one_directory_is_refused_whatever_it_holds(home, capsys, command, name):
    _refused(home, capsys, [*_SESSION_COMMANDS[command], f"--session={name}"], "--session", "letters, digits")


def test_session_name_when_outside_names_an_existing_session_still_does_not_reach_it(home, capsys):
    # A real session beside the home's: "../other/data/sessions/s" must not command it.
    other = home.parent / "other"
    assert _main(["--home", str(other), *RUN, "--session", "s", "-q"]) == 0
    capsys.readouterr()
    control = other / "data" / "sessions" / "s" / "control.jsonl"
    before = control.read_bytes() if control.exists() else None
    _refused(home, capsys, ["emergency-stop", "--session", "../../other/data/sessions/s"], "--session")
    assert (control.read_bytes() if control.exists() else None) == before


def test_status_when_a_directory_has_a_name_no_command_takes_leaves_it_out(home, capsys):
    # Made by hand: listed, it could only be shown, never stopped or reported.
    assert _main(["--home", str(home), *RUN, "--session", "ok", "-q"]) == 0
    hand_made = home / "data" / "sessions" / "my session"
    hand_made.mkdir()
    (hand_made / "state.json").write_text("{}")
    capsys.readouterr()
    assert _main(["--home", str(home), "status"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "my session" not in out


# --- the home -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [RUN, BACKTEST, ["status"], ["data", "info"], ["stop"]], ids=lambda c: c[0]
)
@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_home_when_a_file_or_under_one_is_refused_naming_it(tmp_path, capsys, command, where):
    file = tmp_path / "notes.txt"
    file.write_text("not a directory")
    given = file if where == "file" else file / "labkit"
    before = _tree(tmp_path)
    code = _main(["--home", str(given), *command])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--home: {given}" in err and "Traceback" not in err
    assert _tree(tmp_path) == before and file.read_text() == "not a directory"


def test_home_when_given_by_labkit_home_and_a_file_names_the_variable(tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "f"))
    assert _main(["status"]) == 2
    assert "LABKIT_HOME:" in capsys.readouterr().err


def test_home_when_it_has_a_nul_is_refused(tmp_path, capsys):
    assert _main(["--home", f"{tmp_path}/a\x00b", "status"]) == 2
    assert "--home:" in capsys.readouterr().err


def test_home_when_missing_is_fine_for_commands_that_create_files(tmp_path, capsys):
    home = tmp_path / "new" / "home"
    assert _main(["--home", str(home), "status"]) == 0
    assert "no sessions" in capsys.readouterr().out
    assert not home.exists()
    assert _main(["--home", str(home), *BACKTEST]) == 0
    assert _main(["--home", str(home), *RUN, "-q"]) == 0
    assert (home / "data" / "sessions" / "t" / "config.json").is_file()


# --- bar files ------------------------------------------------------------------------------------

_BAD_FILES: list[tuple[str, str | bytes, str]] = [
    ("header.csv", "timestamp,open,high,low,close,volume\n", "no bars"),
    ("empty.csv", "", "the file is empty"),
    ("binary.csv", bytes(range(256)) * 8, "is binary, not CSV"),
    ("garbage.csv", "\n".join(",".join(f"g{i}{j}" for i in range(10)) for j in range(5)), "missing column"),
    (
        "huge.csv",
        "timestamp,open,high,low,close,volume\n2026-01-05T00:00:00Z,1e400,1e400,1,1,1\n",
        "row 2: open inf is not a finite number",
    ),
    (
        "mixed.csv",
        "timestamp,open,high,low,close,volume\n2026-01-05T00:00:00Z,10,11,9,10,1\n"
        "2026-01-05T00:01:00,10,11,9,10,1\n",
        "row 3: time '2026-01-05T00:01:00' has no zone but row 2 has one",
    ),
    (
        "ancient.csv",
        "timestamp,open,high,low,close,volume\n0001-01-01T00:00:00Z,10,11,9,10,1\n",
        "row 2: time '0001-01-01T00:00:00Z' is outside 1970-01-01 .. 2200-01-01",
    ),
    (
        "epoch.csv",
        "timestamp,open,high,low,close,volume\n12345678901234567890,10,11,9,10,1\n",
        "row 2: time 12345678901234567890 is outside",
    ),
    ("text.parquet", "timestamp,open\n1,2\n", "cannot be read as Parquet"),
    ("no_time.csv", "open,high,low,close,volume\n10,11,9,10,1\n", "missing column(s) time"),
]


@pytest.mark.parametrize("command", [RUN, BACKTEST], ids=["run", "backtest"])
@pytest.mark.parametrize(("name", "content", "why"), _BAD_FILES, ids=[f[0] for f in _BAD_FILES])
def test_bar_file_when_bad_is_refused_naming_file_and_row(home, capsys, command, name, content, why):
    path = home.parent / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    kind = "parquet" if name.endswith(".parquet") else "csv"
    since = ["--since", "2026-01-05", "--until", "2026-01-06"]
    err = _refused(home, capsys, [*command, *since, "--source", f"{kind}:{path}"], str(path), why)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [RUN, BACKTEST], ids=["run", "backtest"])
@pytest.mark.parametrize("spec", ["csv:{dir}", "csv:{dir}/../data", "parquet:{dir}"])
def test_bar_source_when_a_folder_lacks_the_symbols_file_is_refused_naming_it(home, capsys, command, spec):
    # A folder is a file per symbol: without BTC/USDT's, the run is refused naming the file it wants.
    (home.parent / "data").mkdir()
    spec = spec.format(dir=home.parent / "data")
    kind = spec.partition(":")[0]
    _refused(home, capsys, [*command, "--source", spec], f"BTC-USDT.{kind}: no such file")


def test_bar_source_when_the_path_climbs_with_dots_is_read(home, capsys, tmp_path):
    (tmp_path / "bars").mkdir()
    (tmp_path / "bars" / "one.csv").write_text(GOOD_CSV)
    spec = f"csv:{home}/../bars/one.csv"
    assert _main(["--home", str(home), "backtest", "--source", spec, "--json"]) == 0
    assert '"bars": 1' in capsys.readouterr().out


def test_bar_source_when_mixed_offsets_all_have_zones_converts_them_to_utc(home, capsys, tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2026-01-05T00:00:00Z,10,11,9,10,1\n"
        "2026-01-05T01:01:00+01:00,10,11,9,10,1\n2026-01-04T19:02:00-05:00,10,11,9,10,1\n"
    )
    assert _main(["--home", str(home), "backtest", "--source", f"csv:{path}", "--json"]) == 0
    assert '"last_ts": "2026-01-05T00:02:00Z"' in capsys.readouterr().out


# --- OS errors: one line naming the file and the reason -------------------------------------------


def test_run_when_run_lock_is_a_directory_names_it_with_the_os_reason(home, capsys):
    (home / "data" / "sessions" / "t" / "run.lock").mkdir(parents=True)
    code = _main(["--home", str(home), *RUN])
    err = capsys.readouterr().err
    assert code == 2
    assert "labkit run: data/sessions/t/run.lock: Is a directory" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_run_when_the_disk_is_full_names_the_file_and_exits_2(home, capsys, monkeypatch):
    import labkit._io as io_helpers

    def full_disk(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(io_helpers, "write_atomic", full_disk)
    code = _main(["--home", str(home), *RUN])
    err = capsys.readouterr().err
    assert code == 2
    assert "config.json: No space left on device" in err
    assert "Traceback" not in err


def test_os_error_when_it_names_no_file_still_gives_the_reason_in_one_line(home, capsys, monkeypatch):
    import labkit.cli.research as research

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(research, "confirm_size", full_disk)
    assert _main(["--home", str(home), *BACKTEST]) == 2
    assert capsys.readouterr().err == "labkit backtest: No space left on device\n"


def test_run_when_permission_is_denied_names_the_file(home, capsys, monkeypatch):
    from filelock import FileLock

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), self.lock_file)

    monkeypatch.setattr(FileLock, "acquire", denied)
    code = _main(["--home", str(home), *RUN])
    err = capsys.readouterr().err
    assert code == 2 and "data/sessions/t/run.lock: Permission denied" in err


def test_backtest_when_the_journal_is_a_directory_names_it(home, capsys, tmp_path):
    code = _main(["--home", str(home), *BACKTEST, "--journal", str(tmp_path), "--append"])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path}: Is a directory" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only directory")
def test_run_when_the_home_is_read_only_names_what_it_could_not_write(home, capsys):
    home.chmod(0o555)
    try:
        code = _main(["--home", str(home), *RUN])
    finally:
        home.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and "Permission denied" in err and "Traceback" not in err


# --- the library, as a notebook calls it ----------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "..", ".hidden", "x" * 65, "a\x00b", 7])
def test_session_paths_when_name_is_not_one_directory_refuses_it_for_every_caller(tmp_path, name):
    from labkit import operations as ops
    from labkit.errors import ConfigError
    from labkit.session.paths import existing_session, session_paths

    for call in (session_paths, existing_session, lambda h, n: ops.emergency_stop(n, h)):
        with pytest.raises(ConfigError, match=r"^session\.name: use letters, digits"):
            call(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["default", "a", "A.b-c_9", "x" * 64])
def test_session_name_when_it_keeps_the_rule_is_accepted_by_config_and_paths(tmp_path, name):
    from labkit.config.loading import load_config
    from labkit.session.paths import session_paths

    assert load_config(tmp_path, {"session.name": name}).session.name == name
    assert session_paths(tmp_path, name).name == name


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["report", "daily", "--session", "s", "--date", "9999-01-01"], "date"),
        (["report", "daily", "--session", "s", "--date", "1900-01-01"], "date"),
        (["report", "weekly", "--session", "s", "--week", "9999-W01"], "week"),
    ],
)
def test_report_when_period_is_outside_the_years_labkit_keeps_is_refused(home, capsys, args, flag):
    # Arrange: a session to report on
    assert (
        _main(
            [
                "--home",
                str(home),
                "run",
                "--pace",
                "fast",
                "--since",
                "2026-01-05",
                "--until",
                "2026-01-05T01:00",
                "--session",
                "s",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # Act / Assert
    _refused(home, capsys, args, flag, "outside 1970..2199")


def test_config_error_when_value_is_huge_names_it_without_echoing_it_whole(home, capsys):
    err = _refused(
        home, capsys, ["run", "--pace", "fast", "--since", "2026-01-05", "--symbol", "x" * 5000], "--symbol"
    )
    assert len(err) < 1000 and "5002 characters" in err

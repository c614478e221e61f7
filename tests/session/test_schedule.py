"""`labkit schedule`: only sessions that exist and follow the clock, named by explicit flags (issue 20)."""

from __future__ import annotations

import json
import shlex

import pytest

from labkit.cli import main
from labkit.errors import ConfigError
from labkit.session.paths import session_paths
from labkit.timeutil import relative_day
from tests import stubs

SINCE = "2026-01-05"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with a clock session still going ("live"), a finished replay ("demo") and a clock
    session whose --until has passed ("ended")."""
    home = tmp_path_factory.mktemp("schedule")
    stubs.forward_session(
        home, "live", SINCE, "2099-01-01", **{"session.max_bars": 90, "session.mode": "shadow"}
    )
    stubs.replayed_session(home, "demo", SINCE, "2026-01-05T02:00")
    stubs.forward_session(home, "ended", SINCE, "2026-01-05T01:00")
    return home


def _schedule(home, *flags):
    return main(["--home", str(home), "schedule", *flags])


def _refused(home, capsys, flags, *words):
    code = _schedule(home, *flags)
    err = capsys.readouterr().err
    assert code == 2, err
    for word in words:
        assert word in err


@pytest.mark.parametrize("flag", ["--print-systemd", "--print-cron"])
def test_schedule_when_session_follows_the_clock_runs_it_with_explicit_flags(home, capsys, flag):
    # Act
    assert _schedule(home, flag, "--session", "live") == 0
    out = capsys.readouterr().out
    # Assert: the job says which market and mode it runs, so it cannot quietly make a default session
    run = "run --session live --source synthetic --symbol BTC/USDT --timeframe 1m --mode shadow --pace clock"
    assert f"{run} --until " in out
    assert (
        "report daily --session live --date yesterday" in out
        and "report weekly --session live --week last" in out
    )
    assert "report session --session live" in out
    if flag == "--print-systemd":
        assert (
            "Restart=on-failure" in out
            and "loginctl enable-linger" in out
            and "OnCalendar=*-*-* 00:15:00 UTC" in out
        )
        assert "# --- labkit-live-session.timer" in out
        assert "enable --now labkit-live.service labkit-live-daily.timer" in out
    else:
        assert "flock -n" in out and "15 0 * * *" in out and "30 0 * * 1" in out


@pytest.mark.parametrize("flag", ["--print-systemd", "--print-cron"])
def test_schedule_when_session_does_not_exist_refuses_without_creating_it(home, capsys, flag):
    # Act / Assert
    _refused(home, capsys, [flag, "--session", "nosuch"], "no session 'nosuch'", "labkit status")
    assert not session_paths(home, "nosuch").root.exists()


def test_schedule_when_session_is_a_finished_replay_refuses_it(home, capsys):
    # The 5-day demo, restarted with --pace clock, once appended 477,428 live bars to itself.
    _refused(
        home, capsys, ["--print-cron", "--session", "demo"], "bounded replay", "--pace fast", "--pace clock"
    )


def test_schedule_when_until_has_passed_refuses_it(home, capsys):
    _refused(home, capsys, ["--print-systemd", "--session", "ended"], "'ended' ended at its --until", "NEW")


def test_schedule_when_write_is_given_writes_each_unit_it_prints(home, capsys, tmp_path):
    # Act
    folder = tmp_path / "units"
    assert _schedule(home, "--print-systemd", "--session", "live", "--write", str(folder)) == 0
    out = capsys.readouterr().out
    # Assert: each printed block is a file of that name holding that block
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["labkit-live.service"]
        + [
            f"labkit-live-{job}.{kind}"
            for job in ("daily", "weekly", "session", "backtest")
            for kind in ("service", "timer")
        ]
    )
    for path in folder.iterdir():
        assert f"# --- {path.name}\n{path.read_text()}" in out


def test_schedule_when_write_is_given_with_cron_writes_the_crontab(home, capsys, tmp_path):
    assert _schedule(home, "--print-cron", "--session", "live", "--write", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "labkit-live.cron").read_text() in out and "CRON_TZ=UTC" in out


def test_schedule_when_session_name_needs_quoting_is_quoted_for_the_shell(home, capsys):
    # The printed run line, split as a shell would, gives the flags labkit run reads.
    assert _schedule(home, "--print-cron", "--session", "live") == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("*/5"))
    words = shlex.split(line.split(" run ", 1)[1].split(" >>")[0])
    assert words[:2] == ["--session", "live"] and "--until" in words


# --- scheduled reports of empty periods --------------------------------------------------------


def _report(home, *flags):
    return main(["--home", str(home), "report", *flags])


@pytest.mark.parametrize(
    ("kind", "flag", "value"), [("daily", "--date", "yesterday"), ("weekly", "--week", "last")]
)
def test_report_when_scheduled_period_is_empty_exits_0_without_a_page(home, capsys, kind, flag, value):
    # Act: the finished demo decided nothing yesterday nor last week
    assert _report(home, kind, "--session", "demo", flag, value) == 0
    # Assert
    assert capsys.readouterr().out == ""
    assert not (home / "reports" / "demo").exists() and not (home / "reports" / "index.html").exists()


@pytest.mark.parametrize(
    ("kind", "flag", "value", "have"),
    [("daily", "--date", "2026-02-01", "2026-01-05"), ("weekly", "--week", "2026-W10", "2026-W02")],
)
def test_report_when_typed_period_is_empty_refuses_naming_the_periods_with_data(
    home, capsys, kind, flag, value, have
):
    code = _report(home, kind, "--session", "demo", flag, value)
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"{flag}: session 'demo' decided nothing in {value}" in err and f"with decisions are: {have}" in err
    )
    assert not (home / "reports" / "index.html").exists()


def test_report_when_typed_period_is_malformed_says_so_first(home, capsys):
    assert _report(home, "daily", "--session", "demo", "--date", "2026-13-01") == 2
    assert "is not a day" in capsys.readouterr().err


def test_saved_config_of_a_clock_session_has_no_pace_fast(home):
    # The case the accepted schedules rely on
    saved = json.loads(session_paths(home, "live").config.read_text())
    assert saved["session"]["pace"] == "clock"


# --- the scheduled backtest of the previous day ------------------------------------------------


def _backtest_words(line):
    # The flags of the scheduled `labkit backtest`, split as a shell would.
    return shlex.split(line.split(" backtest ", 1)[1].split(" && ")[0])


@pytest.mark.parametrize("flag", ["--print-systemd", "--print-cron"])
def test_schedule_backtests_yesterday_of_the_session_market_and_strategy(home, capsys, flag):
    # Act
    assert _schedule(home, flag, "--session", "live") == 0
    out = capsys.readouterr().out
    # Assert: the session's own market, strategy and costs, the previous UTC day, a fixed journal
    line = next(x for x in out.splitlines() if " backtest --source " in x)
    words = _backtest_words(
        line if flag == "--print-systemd" else line.removesuffix(")" + line.rsplit(")", 1)[1])
    )
    journal = str(home / "data" / "backtests" / "live-daily.jsonl")
    expected = [
        "--source", "synthetic", "--symbol", "BTC/USDT", "--timeframe", "1m",
        "--since", "yesterday", "--until", "today",
        "--strategy", "sma_cross", "--fast", "10", "--slow", "30", "--seed", "7",
        "--capital", "10000.0", "--fee", "0.001", "--slippage", "0.0", "--calendar", "auto",
        "--journal", journal,
    ]  # fmt: skip
    assert words == expected
    report = f"report backtest --journal {journal} --title 'live: yesterday as a backtest'"
    assert report in out
    if flag == "--print-systemd":
        # yesterday's journal is removed first (labkit backtest refuses to overwrite one), then
        # the backtest and its report run in order, 10 minutes after the daily report
        assert f"ExecStartPre=/bin/rm -f {journal}\nExecStart=" in out
        assert out.index(" backtest --source ") < out.index(" report backtest ")
        assert "OnCalendar=*-*-* 00:25:00 UTC" in out
    else:
        assert f"25 0 * * *   (rm -f {journal} && " in line and f"&& {line.split('&& ')[2]}" in line
        assert line.index(" backtest --source ") < line.index(" report backtest ")


def test_schedule_backtest_when_daily_report_is_late_in_the_day_wraps_past_midnight(
    home, capsys, monkeypatch
):
    # quoted: unquoted, the environment's YAML reads 23:55 as a number of minutes
    monkeypatch.setenv("LABKIT_SCHEDULE__DAILY_AT", '"23:55"')
    assert _schedule(home, "--print-cron", "--session", "live") == 0
    assert "\n5 0 * * *   (rm -f " in capsys.readouterr().out


def test_schedule_when_write_is_given_writes_the_backtest_unit(home, capsys, tmp_path):
    assert _schedule(home, "--print-systemd", "--session", "live", "--write", str(tmp_path)) == 0
    capsys.readouterr()
    service = (tmp_path / "labkit-live-backtest.service").read_text()
    assert "backtest --source synthetic" in service and "report backtest --journal" in service
    assert "OnCalendar=*-*-* 00:25:00 UTC" in (tmp_path / "labkit-live-backtest.timer").read_text()


# --- today and yesterday in --since/--until ----------------------------------------------------

NOON = 1767614400000  # 2026-01-05T12:00:00Z


@pytest.mark.parametrize(
    ("word", "now", "day"),
    [
        ("today", NOON, "2026-01-05"),
        ("yesterday", NOON, "2026-01-04"),
        ("Yesterday", NOON, "2026-01-04"),
        ("yesterday", 1767571200000, "2026-01-04"),  # at midnight exactly, yesterday is the day before
        ("today", 1767657599999, "2026-01-05"),  # a millisecond before the next midnight
        ("yesterday", 1767225600000, "2025-12-31"),  # across a year
    ],
)
def test_relative_day_names_that_utc_midnight(word, now, day):
    assert relative_day(word, "--since", now) == day


def test_relative_day_leaves_other_times_to_the_instant_parser():
    assert relative_day("2026-01-02T10:00", "--until", NOON) == "2026-01-02T10:00"
    assert relative_day(None, "--until", NOON) is None


def test_relative_day_when_word_is_unknown_refuses_naming_the_flag():
    with pytest.raises(ConfigError, match=r"\(--until\): 'tomorrow' is not a time; use today or yesterday"):
        relative_day("tomorrow", "--until", NOON)


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_backtest_when_day_word_is_unknown_exits_2_naming_the_flag(tmp_path, capsys, flag):
    code = main(["--home", str(tmp_path), "backtest", flag, "last-week"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"({flag}): 'last-week' is not a time; use today or yesterday" in err


def test_backtest_when_since_is_yesterday_runs_the_previous_utc_day(tmp_path, capsys):
    # Act: the synthetic market has bars up to now, so yesterday is a whole day of them
    assert (
        main(["--home", str(tmp_path), "backtest", "--since", "yesterday", "--until", "today", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    # Assert: 1440 one-minute bars, from yesterday's midnight to its last minute
    yesterday = relative_day("yesterday", "--since", __import__("labkit.timeutil").timeutil.now_ms())
    assert summary["bars"] == 1440
    assert summary["first_ts"] == f"{yesterday}T00:00:00Z" and summary["last_ts"] == f"{yesterday}T23:59:00Z"

"""`labkit schedule`: only sessions that exist and follow the clock, named by explicit flags (issue 20)."""

from __future__ import annotations

import json
import shlex

import pytest

from labkit.cli import main
from labkit.session.paths import session_paths
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
            for job in ("daily", "weekly", "session")
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

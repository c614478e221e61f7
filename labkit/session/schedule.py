"""Service definitions that keep a session running and its reports rendered, printed for the user.

`labkit run` resumes a session where it stopped, so a service manager only has to start it again:
systemd restarts it on failure, cron retries it every few minutes (the session's own lock and
``flock`` make extra starts exit at once).

Only a session that exists and follows the clock is scheduled: starting a finished replay again
with ``--pace clock`` would append live bars to it, and starting a session that does not exist
would silently create a default one. Every job names the session's market and mode as explicit
flags, so what a schedule runs can be read off the schedule.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError
from labkit.session.paths import SessionPaths, existing_session, read_saved_config
from labkit.session.state import load_state
from labkit.timeutil import iso_s, parse_instant

_DAYS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
_CRON_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

# The relative periods the scheduled report jobs ask for; an explicit one was typed by a person.
SCHEDULED_PERIODS = ("today", "yesterday", "this", "last")


@dataclass(frozen=True)
class ScheduledSession:
    """A session a schedule may keep running: its name and the flags that pin what it runs."""

    name: str
    source: str
    symbol: str
    timeframe: str
    mode: str
    until: str | None = None
    # The strategy, its parameters and the costs the session recorded, as `labkit backtest` flags.
    strategy_flags: tuple[tuple[str, str], ...] = ()

    def run_flags(self) -> str:
        """Return the `labkit run` flags that resume exactly this session, quoted for a shell."""
        flags = [
            ("--session", self.name),
            ("--source", self.source),
            ("--symbol", self.symbol),
            ("--timeframe", self.timeframe),
            ("--mode", self.mode),
            ("--pace", "clock"),
        ]
        if self.until:
            flags.append(("--until", self.until))
        return _quoted(flags)

    def backtest_flags(self, journal: Path) -> str:
        """Return the `labkit backtest` flags that replay the previous UTC day of this session's market.

        The same source, market, strategy and costs as the session, so a gap between the two says
        the session and a backtest of the same bars disagree, not that they were set up differently.
        """
        flags = [
            ("--source", self.source),
            ("--symbol", self.symbol),
            ("--timeframe", self.timeframe),
            ("--since", "yesterday"),
            ("--until", "today"),
            *self.strategy_flags,
            ("--journal", str(journal)),
        ]
        return _quoted(flags)


def _quoted(flags: list[tuple[str, str]]) -> str:
    return " ".join(f"{flag} {shlex.quote(value)}" for flag, value in flags)


def _strategy_flags(saved: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    # Only what `labkit backtest` has a flag for; a plugin strategy's own settings come from labkit.yaml.
    session, strategies = saved.get("session", {}), saved.get("strategies", {})
    broker = saved.get("broker", {})
    strategy = str(session.get("strategy", "sma_cross"))
    flags = [("--strategy", strategy)]
    params = strategies.get(strategy, {}) if isinstance(strategies, dict) else {}
    if strategy == "sma_cross":
        flags += [(f"--{key}", str(params[key])) for key in ("fast", "slow") if key in params]
    elif strategy == "model" and params.get("model"):
        flags.append(("--model", str(params["model"])))
    if str(session.get("source", "synthetic")) == "synthetic" and session.get("seed") is not None:
        flags.append(("--seed", str(session["seed"])))
    for flag, value in (
        ("--capital", session.get("capital")),
        ("--fee", broker.get("fee")),
        ("--slippage", broker.get("slippage")),
        ("--calendar", session.get("calendar")),
    ):
        if value is not None:
            flags.append((flag, str(value)))
    return tuple(flags)


def scheduled_session(home: Path, name: str, now: int) -> ScheduledSession:
    """Return session `name` of `home` as a schedule would run it, or refuse it.

    Parameters
    ----------
    home
        The labkit home the session lives in.
    name
        The session's name (``--session``).
    now
        The current time, epoch milliseconds: a session whose ``--until`` is before it is finished.

    Raises
    ------
    ConfigError
        When the session does not exist, has no ``config.json``, or is a bounded replay (started
        with ``--pace fast``, or with an ``--until`` already past), naming the way to a session
        that can be scheduled.
    """
    paths = existing_session(home, name)
    saved = read_saved_config(paths)
    if saved is None:
        raise ConfigError(
            f"session: {name!r} has no {paths.config}, so a schedule cannot say what it runs; "
            "start the session once by hand (labkit run --session NAME --pace clock ...), then schedule it"
        )
    session = saved.get("session", {})
    _refuse_bounded(paths, session, now)
    mode = (load_state(paths) or {}).get("mode") or session.get("mode") or "shadow"
    return ScheduledSession(
        name=name,
        source=str(session.get("source", "synthetic")),
        symbol=str(session.get("symbol", "BTC/USDT")),
        timeframe=str(session.get("timeframe", "1m")),
        mode=str(mode),
        until=session.get("until") or None,
        strategy_flags=_strategy_flags(saved),
    )


def _refuse_bounded(paths: SessionPaths, session: dict[str, object], now: int) -> None:
    # A replay is over once it reaches its end; restarting it on the clock appends live bars to it.
    name, until = paths.name, session.get("until")
    fresh = (
        "schedule a clock session instead: labkit run --session NEW --pace clock ... once, "
        "then labkit schedule --session NEW"
    )
    if session.get("pace") == "fast":
        span = f" ({session.get('since') or 'start'} to {until or 'now'})"
        raise ConfigError(
            f"session: {name!r} is a bounded replay (--pace fast{span}); a schedule would restart it "
            f"with --pace clock and append live bars to it; {fresh}"
        )
    if until and parse_instant(str(until), "session.until") <= now:
        raise ConfigError(
            f"session: {name!r} ended at its --until {until} (before now, {iso_s(now)}); a schedule "
            f"would have nothing to run; {fresh}"
        )


def _labkit(home: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m labkit.cli --home {shlex.quote(str(home))}"


def backtest_journal(home: Path, name: str) -> Path:
    """Return the journal the scheduled backtest of session `name` writes, replaced each day."""
    return home / "data" / "backtests" / f"{name}-daily.jsonl"


def _report_commands(labkit: str, home: Path, session: ScheduledSession) -> dict[str, str]:
    # The scheduled forms of the reports: an empty day or week exits 0 and is left out of the index.
    name = shlex.quote(session.name)
    journal = backtest_journal(home, session.name)
    title = shlex.quote(f"{session.name}: yesterday as a backtest")
    return {
        "daily": f"{labkit} report daily --session {name} --date yesterday",
        "weekly": f"{labkit} report weekly --session {name} --week last",
        "session": f"{labkit} report session --session {name}",
        "backtest": f"{labkit} backtest {session.backtest_flags(journal)}",
        "backtest-report": f"{labkit} report backtest --journal {shlex.quote(str(journal))} --title {title}",
    }


def _later(at: str, minutes: int) -> tuple[int, int]:
    # The backtest job runs this long after the daily report, so the two do not compete for the CPU.
    hour, minute = (int(x) for x in at.split(":"))
    total = (hour * 60 + minute + minutes) % (24 * 60)
    return total // 60, total % 60


BACKTEST_AFTER_MINUTES = 10


def unit_files(home: Path, session: ScheduledSession, config: LabkitConfig) -> dict[str, str]:
    """Return the systemd user units of the session and its reports, by file name.

    The session runs as a service restarted on failure; the daily report and the whole-session
    report render after each UTC day (``schedule.daily_at``), the weekly one after each ISO week.
    `BACKTEST_AFTER_MINUTES` after the daily report, the previous UTC day is backtested with the
    session's market and strategy and its backtest report rendered.
    """
    labkit = _labkit(home)
    sched = config.schedule
    unit = f"labkit-{session.name}"
    reports = _report_commands(labkit, home, session)
    files = {
        f"{unit}.service": f"""\
[Unit]
Description=labkit session {session.name}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={labkit} run {session.run_flags()}
Restart=on-failure
RestartSec=10
# SIGTERM stops after the current bar, flushes the journal and saves the state.
KillSignal=SIGTERM
TimeoutStopSec=90

[Install]
WantedBy=default.target
"""
    }
    daily = f"*-*-* {sched.daily_at}:00 UTC"
    weekly = f"{_DAYS[sched.weekly_day]} *-*-* {sched.weekly_at}:00 UTC"
    for job, what, calendar in (
        ("daily", "daily report", daily),
        ("weekly", "weekly readiness", weekly),
        ("session", "session report", daily),
    ):
        files.update(_timer(f"{unit}-{job}", f"labkit {what} for {session.name}", [reports[job]], calendar))
    bh, bm = _later(sched.daily_at, BACKTEST_AFTER_MINUTES)
    journal = shlex.quote(str(backtest_journal(home, session.name)))
    files.update(
        _timer(
            f"{unit}-backtest",
            f"labkit backtest of yesterday for {session.name}",
            [reports["backtest"], reports["backtest-report"]],
            f"*-*-* {bh:02d}:{bm:02d}:00 UTC",
            # `labkit backtest` refuses to overwrite a journal: yesterday's is removed first.
            pre=f"/bin/rm -f {journal}",
        )
    )
    return files


def _timer(
    unit: str, description: str, commands: list[str], calendar: str, pre: str | None = None
) -> dict[str, str]:
    # A oneshot service runs its ExecStart lines in order and stops at the first that fails.
    starts = "".join(f"ExecStart={command}\n" for command in commands)
    before = f"ExecStartPre={pre}\n" if pre else ""
    service = f"""\
[Unit]
Description={description}

[Service]
Type=oneshot
{before}{starts}"""
    timer = f"""\
[Unit]
Description={description}

[Timer]
OnCalendar={calendar}
Persistent=true

[Install]
WantedBy=timers.target
"""
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def systemd_units(home: Path, session: ScheduledSession, config: LabkitConfig) -> str:
    """Return the systemd user units of `unit_files` as one text, each block under its file name."""
    files = unit_files(home, session, config)
    # The session's own service and the timers: the report services are started by their timers.
    enable = " ".join(
        [f"labkit-{session.name}.service", *(name for name in files if name.endswith(".timer"))]
    )
    blocks = "\n".join(f"# --- {name}\n{text}" for name, text in files.items())
    return f"""\
# Save each block under ~/.config/systemd/user/ with the file name given (labkit schedule
# --print-systemd --write ~/.config/systemd/user does it), then:
#   systemctl --user daemon-reload
#   systemctl --user enable --now {enable}
#   loginctl enable-linger $USER      # keep running after logout and start at boot

{blocks}"""


def cron_lines(home: Path, session: ScheduledSession, config: LabkitConfig) -> str:
    """Return crontab lines (UTC) that keep the session running and render its reports."""
    labkit = _labkit(home)
    sched = config.schedule
    root = home / "data" / "sessions" / session.name
    logs = shlex.quote(str(root / "logs" / "cron.log"))
    lock = shlex.quote(str(root / "cron.lock"))
    run = f"flock -n {lock} {labkit} run {session.run_flags()} >> {logs} 2>&1"
    reports = _report_commands(labkit, home, session)
    journal = shlex.quote(str(backtest_journal(home, session.name)))
    backtest = f"rm -f {journal} && {reports['backtest']} && {reports['backtest-report']}"
    bh, bm = _later(sched.daily_at, BACKTEST_AFTER_MINUTES)
    dh, dm = sched.daily_at.split(":")
    wh, wm = sched.weekly_at.split(":")
    daily, weekly = f"{int(dm)} {int(dh)} * * *", f"{int(wm)} {int(wh)} * * {_CRON_DAYS[sched.weekly_day]}"
    return f"""\
# crontab -e, then paste (times are UTC: set CRON_TZ=UTC where cron supports it).
CRON_TZ=UTC
# Start at boot, and every 5 minutes start it again if it died; flock -n skips while it runs.
@reboot      mkdir -p $(dirname {logs}) && {run}
*/5 * * * *  {run}
{daily}   {reports["daily"]} >> {logs} 2>&1
{weekly}   {reports["weekly"]} >> {logs} 2>&1
{daily}   {reports["session"]} >> {logs} 2>&1
# The previous UTC day as a backtest of the same market and strategy, replacing yesterday's journal.
{bm} {bh} * * *   ({backtest}) >> {logs} 2>&1
"""


def write_schedule(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write each of `files` (name to text) into `directory`, made if missing; return the paths.

    Raises
    ------
    ConfigError
        When `directory` is a file or cannot be written, naming it.
    """
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(
            f"--write: cannot write the schedule into {directory} ({exc}); name a folder you can write"
        ) from None
    return written


def periods_with_decisions(paths: SessionPaths, kind: str) -> list[str]:
    """Return the UTC days (``daily``) or ISO weeks (``weekly``) in which the session decided, in order."""
    from labkit.analysis.periods import iso_week
    from labkit.engine.journal import read_journal

    if not paths.decisions.is_file():
        return []
    stamps = read_journal(paths.decisions, columns=["ts"])["ts"]
    if kind == "daily":
        return sorted({ts.date().isoformat() for ts in stamps.dt.normalize().unique()})
    return sorted({iso_week(ts) for ts in stamps.dt.normalize().unique()})


def check_period_decided(home: Path, name: str, kind: str, given: str | None, period: str | None) -> bool:
    """Return True when the report of `period` has decisions to show, False for a quiet scheduled skip.

    `given` is what the user typed (``--date``/``--week``); `period` what it resolves to. A period
    the session decided nothing in is skipped quietly (False) when asked for relatively, as a
    schedule does (``yesterday``, ``last``), and refused when typed by hand.

    Raises
    ------
    ConfigError
        When a period typed by hand is empty, naming the days or weeks that have decisions.
    """
    if kind not in ("daily", "weekly") or given is None or period is None:
        return True
    from labkit.analysis.periods import day_bounds, week_bounds

    (day_bounds if kind == "daily" else week_bounds)(period)  # a malformed period is refused first
    paths = existing_session(home, name)
    decided = periods_with_decisions(paths, kind)
    if period in decided:
        return True
    if given in SCHEDULED_PERIODS:
        return False
    unit, flag = ("day", "--date") if kind == "daily" else ("week", "--week")
    have = _listed(decided) if decided else "none yet"
    raise ConfigError(
        f"{flag}: session {name!r} decided nothing in {period}; the {unit}s with decisions are: {have}"
    )


def _listed(periods: list[str], most: int = 8) -> str:
    if len(periods) <= most:
        return ", ".join(periods)
    return f"{', '.join(periods[:3])}, ... {', '.join(periods[-3:])} ({len(periods)} in all)"

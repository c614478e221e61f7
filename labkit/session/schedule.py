"""Service definitions that keep a session running and its reports rendered, printed for the user.

`labkit run` resumes a session where it stopped, so a service manager only has to start it again:
systemd restarts it on failure, cron retries it every few minutes (the session's own lock and
``flock`` make extra starts exit at once).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from labkit.config.schema import LabkitConfig

_DAYS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
_CRON_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _labkit(home: Path) -> str:
    return f"{shlex.quote(sys.executable)} -m labkit.cli --home {shlex.quote(str(home))}"


def systemd_units(home: Path, session: str, config: LabkitConfig) -> str:
    """Return a systemd user service for the session and timers for its daily and weekly reports."""
    labkit = _labkit(home)
    sched = config.schedule
    unit = f"labkit-{session}"
    return f"""\
# Save each block under ~/.config/systemd/user/ with the file name given, then:
#   systemctl --user daemon-reload
#   systemctl --user enable --now {unit}.service {unit}-daily.timer {unit}-weekly.timer
#   loginctl enable-linger $USER      # keep running after logout and start at boot

# --- {unit}.service
[Unit]
Description=labkit session {session}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={labkit} run --session {session} --pace clock
Restart=on-failure
RestartSec=10
# SIGTERM stops after the current bar, flushes the journal and saves the state.
KillSignal=SIGTERM
TimeoutStopSec=90

[Install]
WantedBy=default.target

# --- {unit}-daily.service
[Unit]
Description=labkit daily report for {session}

[Service]
Type=oneshot
ExecStart={labkit} report daily --session {session} --date yesterday

# --- {unit}-daily.timer
[Unit]
Description=labkit daily report for {session}

[Timer]
OnCalendar=*-*-* {sched.daily_at}:00 UTC
Persistent=true

[Install]
WantedBy=timers.target

# --- {unit}-weekly.service
[Unit]
Description=labkit weekly readiness for {session}

[Service]
Type=oneshot
ExecStart={labkit} report weekly --session {session} --week last

# --- {unit}-weekly.timer
[Unit]
Description=labkit weekly readiness for {session}

[Timer]
OnCalendar={_DAYS[sched.weekly_day]} *-*-* {sched.weekly_at}:00 UTC
Persistent=true

[Install]
WantedBy=timers.target
"""


def cron_lines(home: Path, session: str, config: LabkitConfig) -> str:
    """Return crontab lines (UTC) that keep the session running and render its reports."""
    labkit = _labkit(home)
    sched = config.schedule
    logs = shlex.quote(str(home / "data" / "sessions" / session / "logs" / "cron.log"))
    lock = shlex.quote(str(home / "data" / "sessions" / session / "cron.lock"))
    dh, dm = sched.daily_at.split(":")
    wh, wm = sched.weekly_at.split(":")
    return f"""\
# crontab -e, then paste (times are UTC: set CRON_TZ=UTC where cron supports it).
CRON_TZ=UTC
# Start at boot, and every 5 minutes start it again if it died; flock -n skips while it runs.
@reboot      mkdir -p $(dirname {logs}) && flock -n {lock} {labkit} run --session {session} --pace clock >> {logs} 2>&1
*/5 * * * *  flock -n {lock} {labkit} run --session {session} --pace clock >> {logs} 2>&1
{int(dm)} {int(dh)} * * *   {labkit} report daily --session {session} --date yesterday >> {logs} 2>&1
{int(wm)} {int(wh)} * * {_CRON_DAYS[sched.weekly_day]}   {labkit} report weekly --session {session} --week last >> {logs} 2>&1
"""

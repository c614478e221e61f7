"""What `labkit status` shows for a session: its state first, the heartbeat as fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit._io import read_json
from labkit.session.paths import session_paths
from labkit.session.state import load_state
from labkit.timeutil import ago, iso_s

# A pid means something only while its process may still be there; a stopped session's is history.
PID_WORDS = frozenset({"running", "halted", "dead"})


def session_status(home: Path, name: str) -> dict[str, Any]:
    """Return what `labkit status` shows for one session: state first, the heartbeat as fallback."""
    paths = session_paths(home, name)
    state = load_state(paths)
    beat = read_json(paths.heartbeat) or {}
    status: dict[str, Any] = {"session": name, "directory": str(paths.root), "source_of_truth": None}
    if state is not None:
        port = state.get("portfolio", {})
        status.update(
            source_of_truth="state",
            mode=state.get("mode"),
            symbol=state.get("symbol"),
            timeframe=state.get("timeframe"),
            cash=port.get("cash"),
            position=port.get("position"),
            equity=port.get("last_equity"),
            decisions=port.get("last_seq", -1) + 1,
            halted=port.get("halted"),
            halt_reason=port.get("halt_reason"),
            last_decision_ts=None if port.get("last_ts") is None else iso_s(port["last_ts"]),
            updated_at=state.get("updated_at"),
        )
    elif beat:
        status.update(
            source_of_truth="heartbeat",
            mode=beat.get("mode"),
            symbol=beat.get("symbol"),
            decisions=beat.get("total_decisions_session"),
            last_decision_ts=beat.get("last_decision_ts"),
        )
    word = beat.get("status", "unknown")
    if word in ("running", "halted") and not pid_alive(beat.get("pid")):
        word = "dead"  # the heartbeat says running but its process is gone: killed or crashed
    status.update(
        status_word=word,
        pid=beat.get("pid"),
        last_beat=beat.get("last_beat"),
        started_at=beat.get("started_at"),
    )
    if status["source_of_truth"] is None:
        raise paths.missing()
    return status


def status_line(status: dict[str, Any], now: int | None = None) -> str:
    """Return the line `labkit status` prints for a status from `session_status`.

    Ages are rounded to the unit read at a glance (``12 s ago``, ``3 min ago``); the pid shows only
    when the process may still run (running, halted or dead).

    Parameters
    ----------
    status
        What `session_status` returned.
    now
        The wall clock in epoch milliseconds, for the ages (default: now).
    """
    equity = "-" if status.get("equity") is None else f"{status['equity']:,.2f}"
    last_bar = status.get("last_decision_ts")
    bar = f"{last_bar} ({ago(last_bar, now)})" if last_bar else "-"
    beat = ago(status["last_beat"], now) if status.get("last_beat") else "never"
    pid = f"  pid {status.get('pid')}" if status["status_word"] in PID_WORDS else ""
    halted = f"  HALTED: {status.get('halt_reason')}" if status.get("halted") else ""
    return (
        f"{status['session']}: {status['status_word']}  {status.get('mode')} {status.get('symbol')} "
        f"{status.get('timeframe') or ''}  decisions {status.get('decisions')}  last bar {bar}  "
        f"equity {equity}  position {status.get('position')}{pid}  last beat {beat}{halted}"
    )


def pid_alive(pid: Any) -> bool:
    """Return True when `pid` is a running process (not a zombie)."""
    import psutil

    try:
        return isinstance(pid, int) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

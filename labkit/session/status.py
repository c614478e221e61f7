"""What `labkit status` shows for a session: its state first, the heartbeat as fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit._io import read_json
from labkit.errors import ConfigError
from labkit.home import as_path
from labkit.session.paths import session_paths
from labkit.session.state import load_state
from labkit.timeutil import ago, iso_s, now_ms, parse_instant

# A pid means something only while its process may still be there; a stopped session's is history.
PID_WORDS = frozenset({"running", "halted", "dead", "stale"})


def session_status(home: str | Path, name: str) -> dict[str, Any]:
    """Return what `labkit status` shows for one session: state first, the heartbeat as fallback.

    A session whose files cannot carry it on (no ``state.json``, or a corrupt one, or no
    ``config.json``) is ``broken``, with `problem` saying what is wrong and `repair` what to do.
    """
    home = as_path(home, "home")
    paths = session_paths(home, name)
    beat = read_json(paths.heartbeat) or {}
    status: dict[str, Any] = {"session": name, "directory": str(paths.root), "source_of_truth": None}
    try:
        state = load_state(paths)
    except ConfigError as exc:
        state = None
        status.update(problem=str(exc), repair=_REPAIR.format(path=paths.state, name=name))
    else:
        if state is None and paths.exists():
            status.update(
                problem=f"{paths.state} is missing: the session was interrupted while it was created, "
                "or the file was removed",
                repair=f"`labkit run --session {name}` starts it again (from its journal, if it has "
                f"one); or remove {paths.root}",
            )
    if not paths.config.is_file() and paths.exists():
        status.update(
            problem=f"{paths.config} is missing", repair=f"remove {paths.root}, or put back its config.json"
        )
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
        if state.get("legs"):
            # A book: every symbol it trades and each one's position (the book itself holds none).
            status.update(
                symbol=",".join(state.get("symbols") or state["legs"]),
                symbols=list(state.get("symbols") or state["legs"]),
                position=None,
                positions={symbol: leg.get("position") for symbol, leg in state["legs"].items()},
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
    elif word in ("running", "halted") and _beat_age(beat) > 2 * _interval(paths):
        word = "stale"  # alive, but not beating: stuck, suspended or starved
    if "problem" in status:
        word = "broken"
    status.update(
        status_word=word,
        pid=beat.get("pid"),
        last_beat=beat.get("last_beat"),
        started_at=beat.get("started_at"),
    )
    if status["source_of_truth"] is None and "problem" not in status:
        raise paths.missing()
    return status


_REPAIR = "move {path} aside and `labkit run --session {name}` rebuilds it from the journal and control log"


def _beat_age(beat: dict[str, Any]) -> float:
    try:
        return (now_ms() - parse_instant(beat["last_beat"])) / 1000.0
    except (KeyError, TypeError, ConfigError):
        return 0.0


def _interval(paths: Any) -> float:
    # A running session beats at least every 10 s, and every `interval` when that is shorter.
    interval = ((read_json(paths.config) or {}).get("session") or {}).get("interval", 60.0)
    try:
        return min(float(interval), 10.0)
    except (TypeError, ValueError):
        return 10.0


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
    if status["status_word"] == "broken":
        return f"{status['session']}: broken  {status.get('problem')}; {status.get('repair')}"
    pid = f"  pid {status.get('pid')}" if status["status_word"] in PID_WORDS else ""
    halted = f"  HALTED: {status.get('halt_reason')}" if status.get("halted") else ""
    return (
        f"{status['session']}: {status['status_word']}  {status.get('mode')} {status.get('symbol')} "
        f"{status.get('timeframe') or ''}  decisions {status.get('decisions')}  last bar {bar}  "
        f"equity {equity}  {_holding(status)}{pid}  last beat {beat}{halted}"
    )


def pid_alive(pid: Any) -> bool:
    """Return True when `pid` is a running process (not a zombie)."""
    import psutil

    try:
        return isinstance(pid, int) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _holding(status: dict[str, Any]) -> str:
    # One symbol's position, or a book's: the symbols it holds (all flat when none).
    positions = status.get("positions")
    if positions is None:
        return f"position {status.get('position')}"
    held = [symbol for symbol, units in positions.items() if units]
    return f"holding {', '.join(held)}" if held else f"flat in {len(positions)} symbols"

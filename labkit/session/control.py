"""Operating a session from outside: stop, emergency stop, resume, reduce-only, mode transitions.

Every command is appended as one JSON line to the session's ``control.jsonl`` (an audit trail that is
never rewritten). Whoever owns the session applies the lines it has not applied yet, in order, with
`apply_command`: the running engine between bars, or, when no engine runs, the command itself while
holding the session's run lock. ``state.json`` remembers how far the log was applied, so a command is
applied exactly once even across crashes and restarts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import orjson

from labkit._io import append_line
from labkit.errors import ConfigError, SessionBusyError
from labkit.session.lock import hold_lock
from labkit.session.paths import SessionPaths
from labkit.session.state import DEFINING, SessionState, load_state, save_state
from labkit.session.tape import TapeWriter
from labkit.timeutil import iso_ms, now_ms

log = logging.getLogger(__name__)


COMMANDS = ("stop", "emergency_stop", "resume", "reduce_only", "transition")


@dataclass(frozen=True)
class Applied:
    """What applying the control log asks of the engine beyond the portfolio flags."""

    stop: bool = False
    mode: str | None = None  # a transition to this mode


def append_command(paths: SessionPaths, command: str, **args: Any) -> int:
    """Append a command to the session's control log; return the log's size after it."""
    if command not in COMMANDS:
        raise ConfigError(f"command: {command!r} is not a session command; allowed: {', '.join(COMMANDS)}")
    line = orjson.dumps({"command": command, "at": iso_ms(now_ms()), "pid": os.getpid(), **args}) + b"\n"
    return append_line(paths.control, line)


def pending_commands(paths: SessionPaths, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Return the complete control lines after byte `offset`, and the offset after them."""
    path = paths.control
    if not path.exists() or path.stat().st_size <= offset:
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
    commands = []
    for raw in complete.splitlines():
        try:
            commands.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            log.warning("%s: skipping an unreadable control line", path)
    return commands, offset + len(complete)


def apply_command(state: SessionState, cmd: dict[str, Any], mode: str) -> Applied:
    """Apply one control command to the session's state; return what the engine must do beyond that."""
    portfolio = state.portfolio
    name = cmd.get("command")
    log.info("applying command %s", name, extra={"command": cmd})
    if name == "stop":
        return Applied(stop=True)
    if name == "emergency_stop":
        portfolio.halted, portfolio.halt_reason = True, "emergency_stop"
        if portfolio.pending_side == 1:
            # An entry decided on the last bar has not filled yet: it never will.
            log.info("emergency stop cancels the entry decided at seq %d", portfolio.pending_seq)
            portfolio.pending_side, portfolio.pending_seq = 0, -1
        if portfolio.position > 0 and portfolio.pending_side != -1:
            # Flatten at the very next open: the fastest exit a bar-by-bar engine can make.
            portfolio.pending_side, portfolio.pending_seq = -1, portfolio.last_seq
            portfolio.pending_reason = "emergency_stop"
    elif name == "resume":
        portfolio.halted, portfolio.halt_reason, portfolio.reduce_only = False, None, False
    elif name == "reduce_only":
        portfolio.reduce_only = bool(cmd.get("on", True))
    elif name == "transition":
        to = str(cmd["to"])
        state.transitions.append(
            {
                "at": cmd.get("at"),
                "from": mode,
                "to": to,
                "forced": bool(cmd.get("force")),
                "verdict": cmd.get("verdict"),
            }
        )
        return Applied(mode=to)
    return Applied()


def command_session(paths: SessionPaths, command: str, **args: Any) -> str:
    """Send a command; apply it at once when no engine runs. Return ``"applied"`` or ``"queued"``."""
    if load_state(paths) is None:
        raise paths.missing()
    end = append_command(paths, command, **args)
    try:
        with hold_lock(paths):
            return _apply_pending(paths, end)
    except SessionBusyError:
        return "queued"  # the running engine applies it between bars


def _apply_pending(paths: SessionPaths, end: int) -> str:
    saved = load_state(paths) or {}
    state = SessionState.from_saved(saved, capital=0.0)
    identity = {k: saved[k] for k in ("session", "mode", *DEFINING) if k in saved}
    commands, state.control_offset = pending_commands(paths, state.control_offset)
    tape = TapeWriter(paths.tape)  # the replay must meet the command where the session did
    try:
        for cmd in commands:
            applied = apply_command(state, cmd, identity.get("mode", "paper"))
            identity["mode"] = applied.mode or identity.get("mode", "paper")
            tape.command(cmd)
    finally:
        tape.close()
    save_state(paths, state, identity)
    log.debug("control log applied up to byte %d of %d", state.control_offset, end)
    return "applied"

"""Operating a session from outside: stop, emergency stop, resume, reduce-only, mode transitions.

Every command is appended as one JSON line, with an id, to the session's ``control.jsonl`` (an
audit trail that is never rewritten). Whoever owns the session applies the lines it has not applied
yet, in order, with `apply_command`: the running engine between bars, or, when no engine runs, the
command itself while holding the session's run lock. Each command applied is acknowledged in the
same log (``{"ack": id, ...}``), so a command is applied exactly once whatever file is lost: a
``state.json`` that is gone only means the log is read again from its start, and acknowledged
commands are not applied again. A line that is not a valid command is quarantined: warned about
once, with its line number, and never applied. Ids are unique: a line repeating an id already in
the log is ignored with a warning.

A `stop` never waits for a later run: its sender cancels it when no running session acknowledges
it in time, a run that ends cancels the stops still queued, and a run that starts cancels those
whose sender is gone (``{"ack": id, "cancelled": why}``).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from labkit._io import append_line
from labkit.errors import ConfigError, SessionBusyError
from labkit.session.lock import hold_lock
from labkit.session.paths import SessionPaths
from labkit.session.state import DEFINING, SessionState, load_state, save_state
from labkit.session.status import pid_alive
from labkit.session.tape import TapeWriter
from labkit.timeutil import iso_ms, now_ms

log = logging.getLogger(__name__)
COMMANDS = ("stop", "emergency_stop", "resume", "reduce_only", "transition")


class Command(BaseModel):
    """One command line of ``control.jsonl``; anything else in the log is an acknowledgement."""

    model_config = ConfigDict(extra="allow", frozen=True)
    command: Literal["stop", "emergency_stop", "resume", "reduce_only", "transition"]
    id: str | None = None  # lines written before ids existed have none: their line number stands in
    at: str | None = None
    to: Literal["shadow", "paper"] | None = None
    on: bool = True
    force: bool = False

    @model_validator(mode="after")
    def _transition_has_target(self) -> Command:
        if self.command == "transition" and self.to is None:
            raise ValueError("a transition needs `to` (shadow or paper)")
        return self


@dataclass(frozen=True)
class Applied:
    """What applying the control log asks of the engine beyond the portfolio flags."""

    stop: bool = False
    mode: str | None = None  # a transition to this mode


@dataclass
class ControlRead:
    """What a read of the control log found after an offset."""

    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, line), new ones
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why), not yet quarantined
    repeats: list[tuple[int, str]] = field(default_factory=list)  # (line number, id) of repeated ids
    offset: int = 0


# What `command_session` returns: how the command was applied, or why it was not.
APPLIED = "applied"  # no engine ran: applied to the saved state under the run lock
APPLIED_BY_SESSION = "applied by the running session"
QUEUED = "queued"  # not confirmed in time: the running session applies it between bars
RUN_ENDED = "run ended"  # a stop the run cancelled as it ended: the session is stopped
NOT_CONFIRMED = "not confirmed"  # a stop nobody acknowledged in time: cancelled, it stops nothing later
RUN_ENDED_WHY = "the run ended before applying it"
POLL_SECONDS = 0.05  # how often a sender looks for its acknowledgement and tries the run lock


def new_command_id() -> str:
    return secrets.token_hex(8)


def append_command(paths: SessionPaths, command: str, **args: Any) -> tuple[str, int]:
    """Append a command to the session's control log; return its id and the log's size after it.

    A log whose last line was torn (a crash or a full disk mid-write) gets that line ended first,
    so the new command stands on a line of its own; the fragment is then quarantined when read.
    """
    if command not in COMMANDS:
        raise ConfigError(f"command: {command!r} is not a session command; allowed: {', '.join(COMMANDS)}")
    ident = new_command_id()
    body = orjson.dumps({"command": command, "id": ident, "at": iso_ms(now_ms()), "pid": os.getpid(), **args})
    return ident, append_line(paths.control, _after_torn_tail(paths) + body + b"\n")


def _after_torn_tail(paths: SessionPaths) -> bytes:
    try:
        with open(paths.control, "rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return b""
            handle.seek(-1, os.SEEK_END)
            return b"" if handle.read(1) == b"\n" else b"\n"
    except FileNotFoundError:
        return b""


def read_control(paths: SessionPaths, offset: int) -> ControlRead:
    """Return the commands after byte `offset` not yet acknowledged, and the malformed lines there.

    An offset past the end means the log was replaced (lost and begun again): it is read from
    its start, and only what it acknowledges is skipped.
    """
    path = paths.control
    if not path.exists():
        return ControlRead(offset=0)
    data = path.read_bytes()
    if offset > len(data):
        offset = 0
    complete_end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
    if complete_end <= offset:
        return ControlRead(offset=offset)
    # Acknowledgements anywhere in the log count: after a lost state.json the read starts at 0.
    handled: set[str] = set()
    candidates: list[tuple[str, dict[str, Any] | None, int, str]] = []
    seen = _ids_before(data[:offset]) if offset else set()
    read = ControlRead(offset=complete_end)
    line_no = data.count(b"\n", 0, offset)
    for raw in data[offset:complete_end].split(b"\n")[:-1]:
        line_no += 1
        parsed, why = _parse(raw)
        if isinstance(parsed, dict) and "ack" in parsed:
            handled.add(str(parsed["ack"]))
        elif isinstance(parsed, dict) and "quarantined" in parsed:
            handled.add(f"line:{parsed['quarantined']}")
        elif why is None and parsed is not None:
            key = _key(parsed, line_no)
            if key in seen:
                read.repeats.append((line_no, key))
                continue
            seen.add(key)
            candidates.append((key, parsed, line_no, ""))
        else:
            candidates.append((f"line:{line_no}", None, line_no, why or "unreadable"))
    if offset:
        handled |= _handled_before(data[:offset])
    for key, parsed, number, why in candidates:
        if key in handled or f"line:{number}" in handled:
            continue
        if parsed is None:
            read.bad.append((number, why))
        else:
            read.commands.append((key, parsed))
    return read


def _key(command: dict[str, Any], line_no: int) -> str:
    # Lines written before ids existed have none: their line number stands in.
    return str(command.get("id") or f"line:{line_no}")


def _ids_before(prefix: bytes) -> set[str]:
    # The ids of the commands before the offset, so a line repeating one of them is known as a repeat.
    ids: set[str] = set()
    for raw in prefix.split(b"\n"):
        if b'"id"' in raw and b'"command"' in raw:
            parsed, why = _parse(raw)
            if why is None and parsed is not None and parsed.get("id"):
                ids.add(str(parsed["id"]))
    return ids


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "not JSON (a torn or garbled line)"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    if "ack" in value or "quarantined" in value:
        return value, None
    try:
        Command.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        return None, f"{where}: {first['msg']}"
    return value, None


def _handled_before(prefix: bytes) -> set[str]:
    # Only acknowledgements matter before the offset; they are rare, so a substring test is enough.
    handled: set[str] = set()
    if b'"ack"' not in prefix and b'"quarantined"' not in prefix:
        return handled
    for raw in prefix.split(b"\n"):
        parsed, _ = _parse(raw) if raw else (None, None)
        if isinstance(parsed, dict) and "ack" in parsed:
            handled.add(str(parsed["ack"]))
        elif isinstance(parsed, dict) and "quarantined" in parsed:
            handled.add(f"line:{parsed['quarantined']}")
    return handled


def quarantine(paths: SessionPaths, line: int, why: str) -> None:
    """Set a malformed control line aside for good: warned about once, never applied."""
    log.warning("%s line %d: not a command, quarantined (never applied): %s", paths.control, line, why)
    record = {"quarantined": line, "reason": why, "at": iso_ms(now_ms()), "pid": os.getpid()}
    append_line(paths.control, orjson.dumps(record) + b"\n")


def apply_pending(
    paths: SessionPaths,
    state: SessionState,
    mode: str,
    tape: TapeWriter,
    on_applied: Callable[[Applied], None] = lambda applied: None,
) -> list[str]:
    """Apply every command of the control log not applied yet; return their keys, to `acknowledge`.

    Each is recorded on the tape (a replay meets it where the session did); `on_applied` lets the
    engine act on what a command asks of it. The caller saves the state, then acknowledges: a crash
    in between leaves the command unacknowledged and past the saved offset, so it is applied once.
    """
    read = read_control(paths, state.control_offset)
    for line, why in read.bad:
        quarantine(paths, line, why)
    for line, ident in read.repeats:
        log.warning("%s line %d: command id %s repeats an earlier one; ignored", paths.control, line, ident)
    for _, cmd in read.commands:
        applied = apply_command(state, cmd, mode)
        mode = applied.mode or mode
        tape.command(cmd)
        on_applied(applied)
    state.control_offset = read.offset
    return [key for key, _ in read.commands]


def acknowledge(paths: SessionPaths, keys: list[str], seq: int, by: str = "session") -> None:
    """Record in the control log that the commands `keys` were applied after decision `seq`.

    `by` says who applied them: the running ``session``, or a ``command`` while none ran.
    """
    at = iso_ms(now_ms())
    lines = b"".join(
        orjson.dumps({"ack": key, "after_seq": seq, "by": by, "at": at, "pid": os.getpid()}) + b"\n"
        for key in keys
    )
    if lines:
        append_line(paths.control, lines)


def restore_applied(paths: SessionPaths, state: SessionState, mode: str) -> str:
    """Bring a state rebuilt without ``state.json`` back in line with the commands already applied.

    Their lasting effects (a halt, reduce-only, transitions) come back; nothing is applied twice:
    a `stop` already acknowledged stops nothing now. Return the mode the transitions leave.
    """
    if not paths.control.exists():
        return mode
    data = paths.control.read_bytes()
    acked = _handled_before(data)
    seen: set[str] = set()
    line_no = 0
    for raw in data.split(b"\n")[:-1]:
        line_no += 1
        parsed, why = _parse(raw)
        if parsed is None or why or "command" not in parsed:
            continue
        key = _key(parsed, line_no)
        if key in acked and key not in seen and parsed["command"] != "stop":
            mode = apply_command(state, parsed, mode).mode or mode
        seen.add(key)
    return mode


def apply_command(state: SessionState, cmd: dict[str, Any], mode: str) -> Applied:
    """Apply one control command to the session's state; return what the engine must do beyond that."""
    portfolio = state.portfolio
    name = cmd.get("command")
    log.info("applying command %s", name, extra={"command": cmd})
    if name == "stop":
        return Applied(stop=True)
    if name == "emergency_stop":
        portfolio.halted, portfolio.halt_reason = True, "emergency_stop"
        # A book halts as one and flattens every symbol it holds, each at its next open.
        for position in [portfolio, *(state.legs or {}).values()]:
            if position.pending_side == 1:
                # An entry decided on the last bar has not filled yet: it never will.
                log.info("emergency stop cancels the entry decided at seq %d", position.pending_seq)
                position.pending_side, position.pending_seq = 0, -1
            if position.position > 0 and position.pending_side != -1:
                # Flatten at the very next open: the fastest exit a bar-by-bar engine can make.
                position.pending_side, position.pending_seq = -1, portfolio.last_seq
                position.pending_reason = "emergency_stop"
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


def command_session(paths: SessionPaths, command: str, wait: float = 0.0, **args: Any) -> str:
    """Send a command and wait up to `wait` seconds for whoever owns the session to apply it.

    Until then it tries the run lock: whenever no run holds it (a run that was ending, or another
    command being applied, held it a moment), the command is applied to the saved state at once.

    Returns
    -------
    str
        `APPLIED` (no engine ran: the saved state took it), `APPLIED_BY_SESSION` (the running session
        acknowledged it), or, when neither happened within `wait`: `QUEUED` (the running session
        applies it between bars). A `stop` is never left queued: it is cancelled instead, so it
        cannot stop a later run, and `NOT_CONFIRMED` is returned; `RUN_ENDED` when the run it was
        meant for ended without applying it.
    """
    if load_state(paths) is None:
        raise paths.missing()
    ident, _ = append_command(paths, command, **args)
    deadline = time.monotonic() + wait
    try:
        while True:
            outcome = _outcome(paths, ident) or _apply_if_unlocked(paths, ident)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
    except BaseException as exc:
        if command == "stop" and _outcome(paths, ident) is None:
            _cancel(paths, ident, exc)  # interrupted (Ctrl-C): a stop nobody waits for must not linger
        raise
    if command != "stop":
        return QUEUED
    _cancel(paths, ident, f"not acknowledged within {wait:g} s")
    return _outcome(paths, ident) or NOT_CONFIRMED


def _apply_if_unlocked(paths: SessionPaths, ident: str) -> str | None:
    # Returns None while a run holds the lock; the sender then waits for its acknowledgement.
    try:
        with hold_lock(paths):
            already = _outcome(paths, ident)  # acknowledged by a run that ended just before
            if already is not None:
                return already
            try:
                _apply_now(paths)
            except BaseException as exc:
                _cancel(paths, ident, exc)
                raise
            return APPLIED
    except SessionBusyError:
        return None


def _apply_now(paths: SessionPaths) -> None:
    saved = load_state(paths) or {}
    state = SessionState.from_saved(saved, capital=0.0)
    identity = {k: saved[k] for k in ("session", "mode", *DEFINING) if k in saved}
    tape = TapeWriter(paths.tape)
    try:
        mode = identity.get("mode", "paper")

        def follow(applied: Applied) -> None:
            identity["mode"] = applied.mode or identity.get("mode", mode)

        keys = apply_pending(paths, state, mode, tape, follow)
    finally:
        tape.close()
    save_state(paths, state, identity)
    acknowledge(paths, keys, state.portfolio.last_seq, by="command")


def _cancel(paths: SessionPaths, ident: str, why: BaseException | str) -> None:
    # A command that failed, or a stop nobody confirmed, must not wait in the log for the next run:
    # acknowledge it as cancelled, so nobody applies it later. If even that fails, the error still
    # reaches the user.
    reason = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
    try:
        record = {"ack": ident, "cancelled": reason, "at": iso_ms(now_ms()), "pid": os.getpid()}
        append_line(paths.control, orjson.dumps(record) + b"\n")
    except OSError:
        log.error("%s: could not cancel command %s (%s)", paths.control, ident, reason)


def _outcome(paths: SessionPaths, ident: str) -> str | None:
    """Return what the first acknowledgement of command `ident` says, or None while there is none."""
    try:
        data = paths.control.read_bytes()
    except FileNotFoundError:
        return None
    needle = orjson.dumps(ident)
    for raw in data.split(b"\n"):
        if b'"ack"' not in raw or needle not in raw:
            continue
        parsed, _ = _parse(raw)
        if not isinstance(parsed, dict) or parsed.get("ack") != ident:
            continue
        if "cancelled" in parsed:
            return RUN_ENDED if parsed["cancelled"] == RUN_ENDED_WHY else NOT_CONFIRMED
        return APPLIED if parsed.get("by") == "command" else APPLIED_BY_SESSION
    return None


def cancel_queued_stops(paths: SessionPaths, offset: int, why: str, sender_gone: bool = False) -> int:
    """Cancel the stops queued after `offset` that nobody applied; return how many.

    A run cancels them as it ends (they were meant for it, and it is stopping anyway), and, with
    `sender_gone`, as it starts those whose sender died: a stop left in the log would otherwise end
    the next run before its first bar. Each is warned about in the session log.
    """
    stale = [
        key
        for key, cmd in read_control(paths, offset).commands
        if cmd["command"] == "stop" and (not sender_gone or _sender_gone(cmd))
    ]
    for key in stale:
        log.warning("%s: stop %s cancelled: %s", paths.control, key, why)
        _cancel(paths, key, why)
    return len(stale)


def _sender_gone(cmd: dict[str, Any]) -> bool:
    # A stop written by hand has no pid: it is meant, and applied.
    return isinstance(cmd.get("pid"), int) and not pid_alive(cmd["pid"])

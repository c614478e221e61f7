"""Operations on sessions, as plain functions: what `labkit status/stop/verify/...` call, and what a
notebook cell calls without blocking its kernel (a session it starts runs in its own process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from labkit._io import read_json
from labkit.engine.journal import first_gap
from labkit.errors import CheckFailedError, ConfigError
from labkit.home import home_arg
from labkit.readiness.verdicts import promotion_check
from labkit.session.control import APPLIED, NOT_CONFIRMED, command_session
from labkit.session.lock import lock_held, lock_holder
from labkit.session.paths import SessionPaths, existing_session, session_paths
from labkit.session.replay import journal_against_state, last_decision
from labkit.session.state import load_state
from labkit.session.status import pid_alive, session_status
from labkit.timeutil import human_duration, now_ms, parse_instant, timeframe_ms


def _paths(session: str, home: Path | str | None) -> tuple[Path, SessionPaths]:
    root = home_arg(home)
    return root, existing_session(root, session)


def start(session: str = "default", home: Path | str | None = None, **flags: Any) -> subprocess.Popen[bytes]:
    """Start ``labkit run`` for a session in its own process and return at once.

    `flags` are `labkit run` options without dashes (``mode="paper", timeframe="5s", max_bars=20``).
    Output goes to ``<session>/logs/run.out``; stop it with `stop`.
    """
    root = home_arg(home)
    cmd = [sys.executable, "-m", "labkit.cli", "--home", str(root), "run", "--session", session]
    for key, value in flags.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    logs = session_paths(root, session).root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / "run.out", "ab")  # noqa: SIM115 - handed to the child process
    detach: dict[str, Any] = (
        {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
        if os.name == "nt"
        else {"start_new_session": True}
    )
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **detach)
    finally:
        out.close()


def status(session: str = "default", home: Path | str | None = None) -> dict[str, Any]:
    """Return the session's status (state first, heartbeat as fallback)."""
    root, _ = _paths(session, home)
    return session_status(root, session)


def stop(session: str = "default", home: Path | str | None = None, wait: float = 30.0) -> str:
    """Stop a running session after its current bar, waiting up to `wait` seconds for it.

    Returns ``"stopped"`` (the running session acknowledged the stop, or ended meanwhile, and its
    run has ended), ``"stopping"`` (acknowledged, still finishing its bar) or ``"not running"``
    (nothing ran: the stop was a no-op, so no later run is stopped by it).

    Raises
    ------
    CheckFailedError
        The running session did not acknowledge the stop within `wait` (stuck or suspended): the
        stop is cancelled, so it cannot end a later run; nothing was stopped (exit 1).
    """
    _, paths = _paths(session, home)
    started = time.monotonic()
    how = command_session(paths, "stop", wait=wait)
    if how == APPLIED:
        return "not running"
    if how == NOT_CONFIRMED:
        holder = lock_holder(paths)
        who = f"pid {holder}" if holder is not None else "the process holding its run lock"
        raise CheckFailedError(
            f"session {session!r}: the running session ({who}) did not acknowledge the stop within "
            f"{wait:g} s; the stop was cancelled, so it cannot end a later run. Nothing was stopped: "
            f"check `labkit status --session {session}`, then stop it again or end {who}"
        )
    left = max(0.0, wait - (time.monotonic() - started))
    return "stopped" if _wait_unlocked(paths, left) else "stopping"


# How long a command waits for a running session to confirm it: a session polls its commands at
# least every 10 s, between bars.
CONFIRM_WAIT = 15.0


def emergency_stop(
    session: str = "default", home: Path | str | None = None, wait: float = CONFIRM_WAIT
) -> str:
    """Halt: flatten at the next open, refuse entries, stay halted across restarts until `resume`.

    Return ``"applied"`` (no engine ran: the halt is set in ``state.json``), ``"applied by the
    running session"`` (it confirmed within `wait` seconds) or ``"queued"`` (not confirmed yet: it
    is applied between bars). A run lock held only for a moment (a run ending, another command) is
    waited out, so the halt is applied to the saved state as soon as it frees.
    """
    _, paths = _paths(session, home)
    return command_session(paths, "emergency_stop", wait=wait)


def resume(session: str = "default", home: Path | str | None = None, wait: float = CONFIRM_WAIT) -> str:
    """Lift an emergency stop, a halt or reduce-only (returns as `emergency_stop` does)."""
    _, paths = _paths(session, home)
    return command_session(paths, "resume", wait=wait)


def reduce_only(
    session: str = "default", home: Path | str | None = None, on: bool = True, wait: float = CONFIRM_WAIT
) -> str:
    """Allow exits but refuse entries (or lift that with ``on=False``); returns as `emergency_stop`."""
    _, paths = _paths(session, home)
    return command_session(paths, "reduce_only", wait=wait, on=on)


def transition(to: str, session: str = "default", home: Path | str | None = None, force: bool = False) -> str:
    """Move a session to shadow or paper.

    Promotion to paper recomputes the verdict of the session's latest complete ISO week from its
    journal, with the thresholds and calendar the session recorded at creation
    (`labkit.readiness.verdicts.promotion_check`): it must pass, and the week must have ended at
    most eight days ago. A saved verdict file is never read. `force` promotes anyway; the
    transition records the verdict it overrode and why it would have been refused.
    """
    if to not in ("shadow", "paper"):
        raise ConfigError(f"--to: {to!r} is not a mode; allowed: shadow, paper (live does not exist)")
    root, paths = _paths(session, home)
    current = (load_state(paths) or {}).get("mode")
    if current == to:
        return f"already {to}"
    summary = None
    if to == "paper":
        check = promotion_check(root, session)
        if not check.allowed and not force:
            why = "; ".join(check.refusals)
            raise CheckFailedError(f"transition to paper refused: {why}; --force overrides (and is recorded)")
        summary = check.summary()
    return command_session(paths, "transition", to=to, force=force, verdict=summary)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def verify(
    session: str = "default", home: Path | str | None = None, max_age: float | None = None
) -> list[Check]:
    """Return the operational checks of a running session (all must pass)."""
    root, paths = _paths(session, home)
    beat = read_json(paths.heartbeat) or {}
    config = (read_json(paths.config) or {}).get("session", {})
    interval = float(config.get("interval", 60.0))
    tf = timeframe_ms(config.get("timeframe", "1m"))
    now = now_ms()
    checks = []

    age = (now - parse_instant(beat["last_beat"])) / 1000 if beat.get("last_beat") else None
    limit = max_age if max_age is not None else 2 * min(interval, 10.0) + 1.0
    checks.append(
        Check(
            "heartbeat_fresh",
            age is not None and age <= limit,
            "no heartbeat" if age is None else f"last beat {human_duration(age)} ago (limit {_limit(limit)})",
        )
    )

    pid = beat.get("pid")
    alive = pid_alive(pid)
    checks.append(Check("pid_alive", alive, f"pid {pid} {'is alive' if alive else 'is not running'}"))

    held = lock_held(paths)
    holder = lock_holder(paths)
    lock_ok = held and (holder is None or holder == pid)
    checks.append(
        Check(
            "lock_held",
            lock_ok,
            "the run lock is free"
            if not held
            else f"the run lock is held by pid {holder if holder is not None else 'unknown'}",
        )
    )

    engines = _engine_processes(session, root, pid if alive and isinstance(pid, int) else None)
    checks.append(
        Check(
            "single_engine",
            len(engines) == 1,
            f"{len(engines)} engine process(es) for the session: {sorted(engines)}",
        )
    )

    last = last_decision(paths.decisions)  # a damaged last line is refused, naming it
    lag = (now - parse_instant(last["ts"]) - tf) / 1000 if last else None
    lag_limit = 2 * tf / 1000 + 2 * min(interval, 10.0) + 1.0
    checks.append(
        Check(
            "decisions_advancing",
            lag is not None and lag <= lag_limit,
            f"the last bar decided closed {human_duration(lag)} ago (limit {_limit(lag_limit)})"
            if lag is not None
            else "no decision yet",
        )
    )

    gap = first_gap(
        paths.decisions, ((read_json(paths.config) or {}).get("session") or {}).get("symbols") or ()
    )
    checks.append(Check("journal_whole", gap is None, _gap_words(gap)))
    checks.append(_journal_matches_state(paths, last))

    try:
        state = load_state(paths) or {}
        problem = None if state else f"{paths.state} is missing"
    except ConfigError as exc:
        state, problem = {}, str(exc)
    checks.append(Check("state_readable", problem is None, problem or "state.json is whole"))
    port = state.get("portfolio", {})
    checks.append(
        Check(
            "not_halted",
            not port.get("halted"),
            f"halted: {port.get('halt_reason')}" if port.get("halted") else "trading normally",
        )
    )
    return checks


def _gap_words(gap: tuple[int, int, int] | None) -> str:
    if gap is None:
        return "every seq from 0 follows the one before"
    if gap[2] < 0:
        return f"decisions.jsonl line {gap[0]} is not a decision line (seq {gap[1]} was due there)"
    if gap[2] == gap[1]:
        return f"decisions.jsonl line {gap[0]}: the decision at seq {gap[1]} is damaged (edited by hand?)"
    return f"decisions.jsonl line {gap[0]}: seq {gap[2]} where {gap[1]} was due (a hole in the record)"


def _journal_matches_state(paths: SessionPaths, last: dict[str, Any] | None) -> Check:
    # The journal's last decision is state.json's: neither lost decisions the other holds.
    try:
        mismatch = journal_against_state(paths, last)
    except ConfigError as exc:
        mismatch = str(exc)  # state.json missing or damaged: state_readable says so too
    seq = -1 if last is None else last["seq"]
    return Check("journal_matches_state", mismatch is None, mismatch or f"both end at seq {seq}")


def _limit(seconds: float) -> str:
    # A limit is a setting the user may look up, so keep its exact seconds while they read easily.
    return f"{seconds:g} s" if seconds < 90 else human_duration(seconds)


def _engine_processes(session: str, home: Path, heartbeat_pid: int | None) -> set[int]:
    found = {heartbeat_pid} if heartbeat_pid else set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        args = proc.info.get("cmdline") or []
        if "run" not in args or not any("labkit" in a for a in args[:3]):
            continue
        named = args[args.index("--session") + 1] if "--session" in args[:-1] else "default"
        homes = args[args.index("--home") + 1] if "--home" in args[:-1] else None
        if named == session and (homes is None or Path(homes).resolve() == home):
            found.add(proc.info["pid"])
    return found


def _wait_unlocked(paths: SessionPaths, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not lock_held(paths):
            return True
        time.sleep(0.1)
    return False


def latest_decisions(
    session: str = "default", home: Path | str | None = None, n: int = 10
) -> list[dict[str, Any]]:
    """Return the session's last `n` decisions (newest last), reading only the journal's tail."""
    _, paths = _paths(session, home)
    if not paths.decisions.exists():
        return []
    with open(paths.decisions, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 2048 * (n + 1)))
        lines = handle.read().split(b"\n")[1:-1] if size > 2048 * (n + 1) else handle.read().split(b"\n")[:-1]
    keep = ("seq", "ts", "proposed", "action", "rejection_reason", "position", "equity")
    rows = [json.loads(line) for line in lines[-n:] if line]
    return [{k: row.get(k) for k in keep} for row in rows]


def watch(
    session: str,
    proc: subprocess.Popen[bytes],
    home: Path | str | None = None,
    every: float = 1.0,
    timeout: float = 600.0,
) -> list[str]:
    """Print the status of a session started with `start` every `every` seconds until it ends.

    Returns the lines printed. The session keeps running in its own process meanwhile; `stop` ends it.
    """
    printed: list[str] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(every)
        try:
            st = status(session, home)
        except ConfigError:
            continue  # not started yet
        line = (
            f"{st['status_word']}: {st.get('decisions')} decisions, last bar {st.get('last_decision_ts')}, "
            f"equity {st.get('equity')}, position {st.get('position')}"
        )
        print(line, flush=True)
        printed.append(line)
    return printed

"""A session's files on disk: where they live, atomic JSON writes, heartbeat and state snapshots.

``state.json`` is everything a restart needs; ``heartbeat.json`` says who runs the session and how
recently it was alive. Both are replaced atomically (write, fsync, rename), so a reader or a crash
never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError
from labkit.portfolio import Portfolio
from labkit.timeutil import iso_ms, iso_s, now_ms

STATE_SCHEMA = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class SessionPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def decisions(self) -> Path:
        return self.root / "decisions.jsonl"

    @property
    def heartbeat(self) -> Path:
        return self.root / "heartbeat.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def lock(self) -> Path:
        return self.root / "run.lock"

    @property
    def tape(self) -> Path:
        return self.root / "tape.jsonl"


def sessions_root(home: Path) -> Path:
    return home / "data" / "sessions"


def session_paths(home: Path, name: str) -> SessionPaths:
    return SessionPaths(sessions_root(home) / name)


def list_sessions(home: Path) -> list[str]:
    """Return the names of the sessions under the home, oldest first."""
    root = sessions_root(home)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and (p / "config.json").exists()]
    return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; these files are as readable as any other
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, allow_nan=False, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """Return a JSON object from `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_state(paths: SessionPaths, portfolio: Portfolio, identity: dict[str, Any]) -> None:
    write_json_atomic(
        paths.state,
        {
            "schema": STATE_SCHEMA,
            **identity,
            "updated_at": iso_ms(now_ms()),
            "portfolio": portfolio.to_dict(),
        },
    )


def load_state(paths: SessionPaths) -> dict[str, Any] | None:
    return read_json(paths.state)


def check_identity(saved: dict[str, Any], identity: dict[str, Any], session: str) -> None:
    """Refuse to resume a session with a different market or strategy than it started with."""
    for key in ("symbol", "timeframe", "source", "strategy"):
        if key in saved and saved[key] != identity[key]:
            raise ConfigError(
                f"session.{key}: session {session!r} was started with {key} {saved[key]!r}, not "
                f"{identity[key]!r}; use another --session name for a different {key}"
            )


class Heartbeat:
    """Writes ``heartbeat.json``: who runs the session and when it was last alive."""

    def __init__(self, paths: SessionPaths, session: str, mode: str, symbol: str) -> None:
        self.paths = paths
        self.fields: dict[str, Any] = {
            "pid": os.getpid(),
            "session": session,
            "mode": mode,
            "symbol": symbol,
            "started_at": iso_ms(now_ms()),
            "last_beat": None,
            "last_decision_ts": None,
            "total_decisions_session": 0,
            "status": "running",
        }

    def beat(self, portfolio: Portfolio, status: str = "running") -> None:
        self.fields.update(
            last_beat=iso_ms(now_ms()),
            last_decision_ts=None if portfolio.last_ts is None else iso_s(portfolio.last_ts),
            total_decisions_session=portfolio.last_seq + 1,
            status="halted" if status == "running" and portfolio.halted else status,
        )
        write_json_atomic(self.paths.heartbeat, self.fields)

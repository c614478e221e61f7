"""A session on disk: one `SessionPaths` naming every file, and the sessions under a home.

``data/sessions/<session>/`` holds ``config.json`` (the validated config it started with),
``decisions.jsonl`` (the journal), ``state.json``, ``heartbeat.json``, ``run.lock``, ``control.jsonl``
(commands from outside), ``tape.jsonl`` (the bars it consumed), ``readiness/`` (saved verdicts) and
``logs/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError
from labkit.home import check_name
from labkit.home import is_name as is_session_name


def check_session_name(name: object) -> str:
    """Return `name` when it may name a session, else raise ConfigError naming ``session.name``."""
    return check_name(name, "session.name")


@dataclass(frozen=True)
class SessionPaths:
    """Every file of one session, named once."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def home(self) -> Path:
        """The labkit home the session lives in (``<home>/data/sessions/<name>``)."""
        return self.root.parent.parent.parent

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
    def control(self) -> Path:
        return self.root / "control.jsonl"

    @property
    def tape(self) -> Path:
        return self.root / "tape.jsonl"

    @property
    def readiness(self) -> Path:
        return self.root / "readiness"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def exists(self) -> bool:
        """Return True when the session was ever started (its config, state or heartbeat is there)."""
        return any(p.is_file() for p in (self.config, self.state, self.heartbeat))

    def missing(self) -> ConfigError:
        """Return the one error for a session that does not exist."""
        return ConfigError(
            f"session: no session {self.name!r} under {self.root.parent}; `labkit status` lists the sessions"
        )


def sessions_root(home: Path) -> Path:
    return home / "data" / "sessions"


def session_paths(home: Path, name: str) -> SessionPaths:
    """Return the paths of session `name`; a name that is not one (`../x`, `/etc`) is refused."""
    return SessionPaths(sessions_root(home) / check_session_name(name))


def existing_session(home: Path, name: str) -> SessionPaths:
    """Return the paths of session `name`, or raise the "no session" error when it does not exist."""
    paths = session_paths(home, name)
    if not paths.exists():
        raise paths.missing()
    return paths


def list_sessions(home: Path) -> list[str]:
    """Return the names of the sessions under the home, oldest first."""
    root = sessions_root(home)
    if not root.is_dir():
        return []
    # A directory no command could name (made by hand) is not listed as a session.
    dirs = [p for p in root.iterdir() if is_session_name(p.name) and p.is_dir() and SessionPaths(p).exists()]
    return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


_CONFIG_REPAIR = (
    "it records how the session was started: put back a good copy, or start a new session under "
    "another name (--session NEW)"
)


def read_saved_config(paths: SessionPaths) -> dict[str, Any] | None:
    """Return the session's ``config.json`` as data, in today's layout, or None when missing.

    Raises ConfigError naming the file when it is there but not a JSON object of sections.
    """
    try:
        saved = json.loads(paths.config.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{paths.config}: cannot be read as JSON ({exc}); {_CONFIG_REPAIR}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("session", {}), dict):
        raise ConfigError(f"{paths.config}: must be a JSON object of config sections; {_CONFIG_REPAIR}")
    session = saved.get("session", {})
    # Sessions started before strategies had their own section kept sma_cross's windows in `session`.
    legacy = {k: session.pop(k) for k in ("fast", "slow") if k in session}
    if legacy:
        saved.setdefault("strategies", {}).setdefault("sma_cross", {}).update(legacy)
    return saved

"""``state.json`` (everything a restart needs) and ``heartbeat.json`` (who runs the session and how
recently it was alive). Both are replaced atomically, so a reader or a crash never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from labkit._io import write_json_atomic
from labkit.engine.portfolio import Portfolio
from labkit.errors import ConfigError, DataError
from labkit.session.paths import SessionPaths, read_saved_config, session_paths
from labkit.timeutil import iso_ms, iso_s, now_ms

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig

STATE_SCHEMA = 1
# What defines a session: a run that disagrees on one of these is refused (the journal would mix two
# markets or strategies). A resume also takes the rest of RESUMED from the session's files.
DEFINING = ("symbol", "symbols", "timeframe", "source", "strategy")
RESUMED = (*DEFINING, "mode", "seed", "capital", "interval", "calendar", "exchange")


@dataclass
class SessionState:
    """Everything a restart needs: the book, and how far the session's own files were applied."""

    portfolio: Portfolio
    control_offset: int = 0  # bytes of control.jsonl already applied
    journal_offset: int = 0  # bytes of decisions.jsonl this state accounts for
    transitions: list[dict[str, Any]] = field(default_factory=list)
    # A book over a universe: each symbol's leg (`portfolio` is then the book's cash and counters).
    legs: dict[str, Portfolio] | None = None

    @classmethod
    def from_saved(cls, saved: dict[str, Any] | None, capital: float) -> SessionState:
        """Return the state ``state.json`` holds, or a fresh one with `capital` when there is none."""
        if not saved:
            return cls(Portfolio.start(capital))
        legs = saved.get("legs")
        book = saved.get("portfolio", {})

        # Before the book and the session's offsets were apart, state.json kept them all in "portfolio".
        def pick(key: str, default: Any) -> Any:
            return saved.get(key, book.get(key, default))

        return cls(
            Portfolio.from_dict(book),
            control_offset=int(pick("control_offset", 0)),
            journal_offset=int(pick("journal_offset", 0)),
            transitions=list(pick("transitions", [])),
            legs=None if legs is None else {s: Portfolio.from_dict(leg) for s, leg in legs.items()},
        )


def save_state(paths: SessionPaths, state: SessionState, identity: dict[str, Any]) -> None:
    """Replace ``state.json`` with the session's state, atomically.

    Raises
    ------
    DataError
        When a number in it is NaN or infinite, naming the field: such a state is never written
        (the one on disk stays), as no later run could resume from it.
    """
    document = {
        "schema": STATE_SCHEMA,
        **identity,
        "updated_at": iso_ms(now_ms()),
        "control_offset": state.control_offset,
        "journal_offset": state.journal_offset,
        "transitions": state.transitions,
        "portfolio": state.portfolio.to_dict(),
        **({} if state.legs is None else {"legs": {s: leg.to_dict() for s, leg in state.legs.items()}}),
    }
    bad = first_non_finite(document)
    if bad is not None:
        where, value = bad
        raise DataError(
            f"{paths.state}: {where} is {_json_spelling(value)}; not saved, so the state.json on disk "
            "stays as it was. A book that is not a number is a labkit bug: please report it with the "
            "session's tape.jsonl"
        )
    write_json_atomic(paths.state, document)


def first_non_finite(data: Any, where: str = "") -> tuple[str, float] | None:
    """Return the dotted path and value of the first NaN or infinite number in `data`, or None.

    Examples
    --------
    >>> first_non_finite({"portfolio": {"cash": 1.0, "stops": [2.0, float("inf")]}})
    ('portfolio.stops.1', inf)
    >>> first_non_finite({"cash": 1.0}) is None
    True
    """
    if isinstance(data, float):
        return None if math.isfinite(data) else (where, data)
    if isinstance(data, dict):
        items: Iterable[tuple[Any, Any]] = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _json_spelling(value: float) -> str:
    # How Python's json module writes the number, which is what a person finds in the file.
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


def last_decided(paths: SessionPaths) -> int | None:
    """Return the open (epoch ms) of the last bar the session decided, or None before its first."""
    last = ((load_state(paths) or {}).get("portfolio") or {}).get("last_ts")
    return None if last is None else int(last)


def load_state(paths: SessionPaths) -> dict[str, Any] | None:
    """Return ``state.json`` as data, or None when the session has none.

    Raises
    ------
    ConfigError
        When the file is there but unreadable or holds a wrong value, naming the file, the field and
        how to recover: moved aside, the state is rebuilt from the journal and the control log.
    """
    try:
        text = paths.state.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{paths.state}: cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{paths.state}: not valid JSON ({exc}); {_REBUILD}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{paths.state}: must be a JSON object, not {type(data).__name__}; {_REBUILD}")
    # Python's json reads NaN and Infinity; a book holding one would write decisions with no cash.
    bad = first_non_finite(data)
    if bad is not None:
        where, value = bad
        shown = _json_spelling(value)
        raise ConfigError(f"{paths.state}: {where}: {shown} is not a finite number; {_REBUILD}")
    try:
        _STATE.validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise ConfigError(
            f"{paths.state}: {where}: {err['msg']} (got {err.get('input')!r}); {_REBUILD}"
        ) from None
    return data


_REBUILD = "move it aside and `labkit run` rebuilds the state from decisions.jsonl and control.jsonl"


class _SavedState(BaseModel):
    # What state.json must hold for a session to resume from it; extra keys are the identity.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    control_offset: int = Field(0, ge=0)
    journal_offset: int = Field(0, ge=0)
    transitions: list[dict[str, Any]] = []
    portfolio: Portfolio
    legs: dict[str, Portfolio] | None = None


_STATE = TypeAdapter(_SavedState)


def check_identity(saved: dict[str, Any], identity: dict[str, Any], session: str) -> None:
    """Refuse to resume a session with a different market or strategy than it started with."""
    for key in DEFINING:
        if key in saved and saved[key] != identity[key]:
            raise ConfigError(
                f"session.{key}: session {session!r} was started with {key} {saved[key]!r}, not "
                f"{identity[key]!r}; use another --session name for a different {key}"
            )


def session_identity(config: LabkitConfig, strategy_id: str, mode: str | None = None) -> dict[str, Any]:
    """Return what ``state.json`` records of the session's identity (``strategy`` is its model id)."""
    s = config.session
    return {
        "session": s.name,
        "mode": mode or s.mode,
        **{key: _plain(getattr(s, key)) for key in DEFINING if key != "strategy"},
        "strategy": strategy_id,
    }


def _plain(value: Any) -> Any:
    # As state.json holds it: a book's symbols as a list.
    return list(value) if isinstance(value, tuple) else value


def resume_overrides(home: Path, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Fill `overrides` (dotted keys) with what defines session `name`, unless a flag set it.

    `labkit run --session S` resumes S as it was started: its market, strategy and parameters come
    from its ``config.json`` and its mode from ``state.json``; a flag that disagrees is refused later
    by `check_identity` with the reason.
    """
    paths = session_paths(home, name)
    saved = read_saved_config(paths) or {}
    session = dict(saved.get("session", {}))
    state = load_state(paths) or {}
    if state.get("mode"):
        session["mode"] = state["mode"]
    for key in RESUMED:
        if overrides.get(f"session.{key}") is None and key in session:
            overrides[f"session.{key}"] = session[key]
    strategy = overrides.get("session.strategy")
    for key, value in saved.get("strategies", {}).get(strategy, {}).items():
        overrides.setdefault(f"strategies.{strategy}.{key}", value)
        if overrides[f"strategies.{strategy}.{key}"] is None:
            overrides[f"strategies.{strategy}.{key}"] = value
    return overrides


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

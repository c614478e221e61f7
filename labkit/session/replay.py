"""Replay parity: feed a session's recorded tape through the engine again and compare decisions.

Identical decisions (every field but the wall-clock ones) prove that what the session recorded is
exactly what the engine makes of those bars; the first difference is named by its seq and field.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labkit._io import last_line
from labkit.config.assembly import build_engine, engine_settings
from labkit.config.schema import LabkitConfig
from labkit.engine.journal import JournalWriter, first_gap, iter_lines
from labkit.errors import ConfigError
from labkit.session.control import apply_command
from labkit.session.paths import existing_session
from labkit.session.state import SessionState, read_saved_config
from labkit.session.tape import frame
from labkit.timeutil import parse_instant

WALL_CLOCK_FIELDS = ("decided_at", "correlation_id")


@dataclass(frozen=True)
class ReplayResult:
    session: str
    compared: int
    identical: bool
    first_seq: int | None = None
    field: str | None = None
    recorded: Any = None
    replayed: Any = None

    def describe(self) -> str:
        if self.identical:
            return f"session {self.session}: {self.compared} decisions replayed, all identical"
        return (
            f"session {self.session}: decisions differ at seq {self.first_seq}, field {self.field!r}: "
            f"recorded {self.recorded!r}, replayed {self.replayed!r}"
        )


def replay_session(home: Path, session: str) -> ReplayResult:
    """Run the session's tape through a fresh engine and compare with its journal."""
    paths = existing_session(home, session)
    saved_config = read_saved_config(paths)
    if saved_config is None or not paths.tape.exists():
        raise ConfigError(
            f"session: session {session!r} has no {'config.json' if saved_config is None else 'tape.jsonl'} "
            f"in {paths.root}, so there is nothing to replay"
        )
    try:
        config = LabkitConfig.model_validate(saved_config)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise ConfigError(
            f"{paths.config}: {where}: {err['msg']}; the session's record of how it started is "
            "damaged: put back a good copy to replay it"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "replayed.jsonl"
        last = last_line(paths.decisions)
        _run_tape(config, paths.tape, out, None if last is None else parse_instant(last["ts"]), home)
        return _compare(session, paths.decisions, out)


def _run_tape(config: LabkitConfig, tape: Path, out: Path, last_ts: int | None, home: Path) -> None:
    journal = JournalWriter(out)
    mode: str = config.session.mode
    engine = build_engine(config, mode, journal=journal, home=home, strict=False)
    history: dict[int, dict[str, Any]] = {}  # by bar time: a restart before any decision primes again
    buffered: list[dict[str, Any]] = []

    def commit(upto: int | None) -> None:
        # Bars count only once a checkpoint (or the journal's end) says they were decided; bars a
        # crash cut off before deciding were fetched again after the restart and appear again later.
        rows = [r for r in buffered if upto is not None and r["ts"] <= upto]
        buffered.clear()
        if rows and history and engine.portfolio.last_ts is None:
            engine.prime(frame([history[t] for t in sorted(history)]))
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or (rows[end]["kind"], rows[end]["now"]) != (
                rows[start]["kind"],
                rows[start]["now"],
            ):
                group = rows[start:end]
                if group[0]["kind"] == "unavailable":
                    engine.unavailable([r["ts"] for r in group], group[0]["now"])
                else:
                    engine.process(frame(group), now=group[0]["now"])
                start = end

    for row in iter_lines(tape):
        kind = row["kind"]
        if kind == "history" and engine.portfolio.last_ts is None and not buffered:
            history[row["ts"]] = row
        elif kind in ("bar", "unavailable"):
            buffered.append(row)
        elif kind == "commit":
            commit(row["last_ts"])
        elif kind == "command":
            commit(engine.portfolio.last_ts)
            applied = apply_command(SessionState(engine.portfolio), row["command"], mode)
            if applied.mode:
                mode = applied.mode
                engine.settings = engine_settings(config, mode)
    commit(last_ts)
    journal.close()


def _compare(session: str, recorded: Path, replayed: Path) -> ReplayResult:
    gap = first_gap(recorded)
    if gap is not None:
        # A hole in the record cannot be proved identical to anything: name where it starts.
        return ReplayResult(session, gap[0] - 1, False, gap[1], "seq", "a decision", f"seq {gap[2]}")
    compared = 0
    mine = iter_lines(replayed)
    for theirs in iter_lines(recorded):
        ours = next(mine, None)
        if ours is None:
            return ReplayResult(session, compared, False, theirs["seq"], "missing", "a decision", None)
        # Both lines' keys: a field only some lines have (`exit_fill`) may be on either side alone.
        for key in dict.fromkeys([*theirs, *ours]):
            if key not in WALL_CLOCK_FIELDS and ours.get(key) != theirs.get(key):
                return ReplayResult(
                    session, compared, False, theirs["seq"], key, theirs.get(key), ours.get(key)
                )
        compared += 1
    return ReplayResult(session, compared, True)

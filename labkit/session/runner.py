"""Paper and shadow sessions: the engine driven by a source, with its files kept on disk.

`run_session` owns the session's lifetime: it takes the single-instance lock, resumes from
``state.json`` when the session exists, replays a range as fast as it goes (``pace fast``) or follows
the wall clock (``pace clock``), and leaves a final state and a ``stopped`` heartbeat however it ends.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from labkit._io import write_json_atomic
from labkit.assemble import build_engine, build_strategy, engine_settings
from labkit.config import LabkitConfig
from labkit.config_loader import redacted
from labkit.data.bars import empty_bars
from labkit.data.registry import Source, open_source
from labkit.engine import Engine
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.journal import JournalWriter
from labkit.session.control import apply_command, pending_commands
from labkit.session.lock import hold_lock
from labkit.session.logs import EVENTS, config_secrets, session_log
from labkit.session.paths import SessionPaths, session_paths
from labkit.session.recovery import recover_from_journal
from labkit.session.state import (
    Heartbeat,
    SessionState,
    check_identity,
    load_state,
    save_state,
    session_identity,
)
from labkit.session.tape import TapeWriter
from labkit.strategies.base import HOLD
from labkit.timeutil import bars_between, iso_s, now_ms, parse_instant, timeframe_ms

log = logging.getLogger(__name__)


events = logging.getLogger(EVENTS)


CHUNK_BARS = 20_000  # a replay checkpoints state and heartbeat this often


@dataclass(frozen=True)
class SessionResult:
    session: str
    directory: Path
    decided: int  # bars decided by this run
    total: int  # bars decided by the session so far
    equity: float
    status: str


def replay_range(config: LabkitConfig, now: int) -> tuple[int, int]:
    """Return the half-open range ``[since, until)`` of bar opens a fast-paced run replays."""
    s = config.session
    tf = timeframe_ms(s.timeframe)
    until = parse_instant(s.until, "session.until") if s.until else (now // tf) * tf
    if s.since:
        since = parse_instant(s.since, "session.since")
    elif s.max_bars:
        since = until - s.max_bars * tf
    else:
        raise ConfigError("session.since: a fast-paced run needs --since or --max-bars")
    if since >= until:
        raise ConfigError(f"session.since: {iso_s(since)} is not before until {iso_s(until)}")
    return since, until


def bars_to_decide(config: LabkitConfig, now: int, last_decided: int | None = None) -> int:
    """Return how many bars a fast-paced run of `config` will decide, counted without loading them.

    A resumed session (`last_decided`, the open of its last bar) decides only the bars after it.
    """
    s = config.session
    tf = timeframe_ms(s.timeframe)
    since, until = replay_range(config, now)
    if s.max_bars:
        since = max(since, until - s.max_bars * tf)
    if last_decided is not None:
        since = max(since, last_decided + tf)
    return bars_between(since, until, tf)


def run_session(
    config: LabkitConfig,
    home: Path,
    stop: threading.Event | None = None,
    clock: Callable[[], int] = now_ms,
    progress: bool | None = None,
) -> SessionResult:
    """Run (or resume) the session `config` describes until its range ends or `stop` is set."""
    s = config.session
    stop = stop or threading.Event()
    source = open_source(s.source, home, s.seed, config=config, live=s.pace == "clock")
    since, until = replay_range(config, clock()) if s.pace == "fast" else (None, None)
    paths = session_paths(home, s.name)
    identity = session_identity(config, build_strategy(config).model_id)
    saved = load_state(paths)
    if saved is not None:
        check_identity(saved, identity, s.name)
        if saved.get("mode", s.mode) != s.mode:
            raise ConfigError(
                f"session.mode: session {s.name!r} runs in {saved['mode']} mode; "
                f"`labkit transition --to {s.mode} --session {s.name}` changes it"
            )
    with hold_lock(paths):
        saved = load_state(paths)  # again: a run that just ended may have moved it on
        return _SessionRun(config, paths, source, saved, identity, stop, clock).run(progress, since, until)


class _SessionRun:
    """One run of a session while it holds the lock: its engine, files, tape and stop event."""

    def __init__(
        self,
        config: LabkitConfig,
        paths: SessionPaths,
        source: Source,
        saved: dict[str, Any] | None,
        identity: dict[str, Any],
        stop: threading.Event,
        clock: Callable[[], int],
    ) -> None:
        s = config.session
        self.config, self.paths, self.source, self.identity = config, paths, source, identity
        self.stop, self.clock = stop, clock
        self.tf = timeframe_ms(s.timeframe)
        if not paths.config.exists():
            write_json_atomic(paths.config, redacted(config))
        self.state = SessionState.from_saved(saved, s.capital)
        self.portfolio = self.state.portfolio
        self.journal = JournalWriter(paths.decisions)  # cuts a torn last line, with a warning
        recover_from_journal(self.state, paths)
        self.tape = TapeWriter(paths.tape)
        if self.portfolio.last_ts is not None:
            self.tape.commit(self.portfolio.last_ts)  # a resume: what the journal holds is decided
        self.engine: Engine = build_engine(
            config, identity["mode"], self.portfolio, self.journal, clock, on_event=self._log_event
        )
        self.heartbeat = Heartbeat(paths, s.name, identity["mode"], s.symbol)
        self._logged_blocks: dict[tuple[str, str], int] = {}

    def run(self, progress: bool | None, since: int | None, until: int | None) -> SessionResult:
        s, port = self.config.session, self.portfolio
        before = port.last_seq
        with session_log(self.paths.root, config_secrets(self.config.exchanges)):
            log.info(
                "session %s starts: %s %s %s, pace %s, pid %d",
                s.name,
                self.identity["mode"],
                s.symbol,
                s.timeframe,
                s.pace,
                os.getpid(),
            )
            self.heartbeat.beat(port)
            try:
                with _stop_on_signals(self.stop):
                    self._poll_commands()
                    if s.pace == "fast":
                        assert since is not None and until is not None
                        self._replay(since, until, progress)
                    else:
                        self._follow_clock()
            finally:
                self.state.journal_offset = self.journal.offset()
                self.journal.close()
                self.tape.close()
                save_state(self.paths, self.state, self.identity)
                self.heartbeat.beat(port, status="stopped")
                log.info("session %s stops after %d decisions", s.name, port.last_seq + 1)
        status = "halted" if port.halted else "stopped"
        return SessionResult(
            s.name, self.paths.root, port.last_seq - before, port.last_seq + 1, port.last_equity, status
        )

    def _bars(self, since: int, until: int) -> pd.DataFrame:
        s = self.config.session
        return self.source.bars(s.symbol, s.timeframe, since, until)

    def _decide(self, bars: pd.DataFrame, now: int | None) -> int:
        # The tape gets the bars before the engine decides them, so a replay never lacks an input.
        self.tape.bars(bars, "bar", now)
        return self.engine.process(bars, now=now)

    def _unavailable(self, first: int, end: int, now: int, why: Exception) -> int:
        due = list(range(first, end, self.tf))
        if due:
            log.warning(
                "%s: %d due bar(s) held as data_unavailable: %s", self.config.session.source, len(due), why
            )
            self.tape.unavailable(due, now)
            self.engine.unavailable(due, now)
        return len(due)

    def _prime(self, history: pd.DataFrame) -> None:
        self.tape.bars(history, "history")
        self.engine.prime(history)

    def _checkpoint(self) -> None:
        # Journal first, then state: the state never claims a decision the journal does not hold.
        self.state.journal_offset = self.journal.offset()
        save_state(self.paths, self.state, self.identity)
        self.tape.commit(self.portfolio.last_ts)
        self.heartbeat.beat(self.portfolio)

    def _poll_commands(self) -> None:
        commands, offset = pending_commands(self.paths, self.state.control_offset)
        if not commands:
            return
        for cmd in commands:
            applied = apply_command(self.state, cmd, self.identity["mode"])
            self.tape.command(cmd)
            if applied.stop:
                self.stop.set()
            if applied.mode:
                self.identity["mode"] = applied.mode
                self.engine.settings = engine_settings(self.config, applied.mode)
                self.heartbeat.fields["mode"] = applied.mode
        self.state.control_offset = offset
        self._checkpoint()

    def _log_event(self, line: dict[str, Any]) -> None:
        extra = {"correlation_id": line["correlation_id"], "seq": line["seq"], "bar": line["ts"]}
        if line["fill"] is not None:
            fill = line["fill"]
            events.info(
                "filled %s %.8g at %.8g (fee %.4g)",
                fill["side"],
                fill["units"],
                fill["price"],
                fill["fee"],
                extra=extra,
            )
        if line["action"] != HOLD:
            events.info("decided %s at %.8g", line["action"], line["price"], extra=extra)
        elif line["rejection_reason"]:
            # A block repeats bar after bar; say it once an hour per reason.
            key = (line["gate_trace"]["stage"], str(line["rejection_reason"]).split(":")[0])
            hour = parse_instant(line["ts"]) // 3_600_000
            if self._logged_blocks.get(key) != hour:
                self._logged_blocks[key] = hour
                events.info(
                    "blocked %s by %s: %s",
                    line["proposed"],
                    key[0],
                    line["rejection_reason"],
                    extra={**extra, "detail": line["gate_trace"]["detail"]},
                )

    def _prime_resumed(self, since: int) -> None:
        # A resumed session continues from bars it already decided, so it needs no second warm-up.
        last = self.portfolio.last_ts
        if last is not None:
            start = max(since, last - self.engine.strategy.warmup * self.tf)
            self._prime(self._bars(start, last + 1))

    def _replay(self, since: int, until: int, progress: bool | None) -> None:
        s = self.config.session
        bars = self._bars(since, until)
        if s.max_bars:
            bars = bars.iloc[-s.max_bars :]
            since = int(bars.index[0].value // 1_000_000) if len(bars) else since
        self._prime_resumed(since)
        last = self.portfolio.last_ts
        todo = bars if last is None else bars[bars.index > pd.Timestamp(last, unit="ms", tz="UTC")]
        if not len(todo):
            log.info("session %s: nothing to decide, every bar of the range is decided", s.name)
            return
        disable = None if progress is None else not progress  # None: a bar only on a terminal
        desc = f"{self.identity['mode']} {s.symbol} {s.timeframe}"
        with tqdm(total=len(todo), unit="bar", disable=disable, desc=desc) as bar:
            for start in range(0, len(todo), CHUNK_BARS):
                if self.stop.is_set():
                    break
                chunk = todo.iloc[start : start + CHUNK_BARS]
                self._decide(chunk, None)
                self._checkpoint()
                self._poll_commands()
                bar.update(len(chunk))

    def _follow_clock(self) -> None:
        s, tf, engine = self.config.session, self.tf, self.engine
        until = parse_instant(s.until, "session.until") if s.until else None
        start_at = parse_instant(s.since, "session.since") if s.since else None
        if self.portfolio.last_ts is not None:
            self._prime_resumed(start_at or 0)
            first_new = self.portfolio.last_ts + tf
        else:
            # A new live session starts at the last closed bar, warmed up on the bars before it, so
            # its first decision is already a real one instead of half an hour of insufficient_data.
            first_new = start_at if start_at is not None else (self.clock() // tf) * tf - tf
            self._prime(self._bars(first_new - engine.strategy.warmup * tf, first_new))
        decided = 0
        missed_from: int | None = None
        beat_every = min(10.0, s.interval)
        while not self.stop.is_set():
            now = self.clock()
            current_open = (now // tf) * tf  # the forming bar; everything before it has closed
            last = self.portfolio.last_ts
            first = last + tf if last is not None else first_new
            end = current_open if until is None else min(current_open, until)
            if first < end:
                try:
                    # After an outage, ask again for the bars held meanwhile: they join the history.
                    bars = self._bars(min(first, missed_from or first), end)
                    missed_from = None
                except SourceUnavailableError as exc:
                    # Keep deciding through an outage: every due bar says why it holds.
                    missed_from = missed_from or first
                    decided += self._unavailable(first, end, now, exc)
                    bars = empty_bars()
                if s.max_bars:
                    bars = bars.iloc[: s.max_bars - decided]
                # After recovery the missed bars arrive: those held while the source was down join the
                # history, the rest are decided late, in order (stale_data once older than the limit).
                # After a long outage the backlog is decided in slices, each checkpointed.
                for start in range(0, len(bars), CHUNK_BARS):
                    decided += self._decide(bars.iloc[start : start + CHUNK_BARS], now)
                    if start + CHUNK_BARS < len(bars):
                        self._checkpoint()
                        if self.stop.is_set():
                            break
            self._checkpoint()
            reached_until = until is not None and (self.portfolio.last_ts or 0) + tf >= until
            if reached_until or (s.max_bars and decided >= s.max_bars):
                break
            self._poll_commands()
            next_close = current_open + tf
            self.stop.wait(max(0.0, min(beat_every, (next_close - self.clock()) / 1000.0)) + 0.001)


class _stop_on_signals:
    """Turn SIGINT/SIGTERM into a graceful stop (finish the bar, flush, save) while running.

    `signal.signal` exists on every platform (Windows included); only the main thread may use it,
    so a session started from a notebook's background thread relies on its `stop` event instead.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _stop_on_signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        log.warning("signal %s: stopping after the current bar", signum)
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

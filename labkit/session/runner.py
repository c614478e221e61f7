"""Paper and shadow sessions: the engine driven by a source, with its files kept on disk.

`run_session` owns the session's lifetime: it takes the single-instance lock, resumes from
``state.json`` when the session exists, replays a range as fast as it goes (``pace fast``) or follows
the wall clock (``pace clock``), and leaves a final state and a ``stopped`` heartbeat however it ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from labkit._io import make_private_dir, write_json_atomic
from labkit.analysis.trial_ledger import record_session_trial
from labkit.config.assembly import build_engine, build_strategy, engine_settings
from labkit.config.loading import redacted
from labkit.config.ranges import replay_range
from labkit.config.schema import LabkitConfig
from labkit.data.bars import empty_bars
from labkit.data.registry import Source, open_source
from labkit.engine.journal import JournalWriter, line_fills
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.home import as_path
from labkit.session.book_run import BookRunMixin
from labkit.session.control import (
    RUN_ENDED_WHY,
    Applied,
    acknowledge,
    apply_pending,
    cancel_queued_stops,
    restore_applied,
)
from labkit.session.lock import hold_lock
from labkit.session.logs import EVENTS, config_secrets, session_log
from labkit.session.paths import SessionPaths, session_paths
from labkit.session.recorded import record_session
from labkit.session.recovery import fold_lines, lines_to_recover
from labkit.session.state import (
    Heartbeat,
    SessionState,
    check_identity,
    load_state,
    save_state,
    session_identity,
)
from labkit.session.status import pid_alive
from labkit.session.tape import TapeWriter
from labkit.strategies.base import Strategy
from labkit.strategies.sides import HOLD
from labkit.timeutil import iso_s, now_ms, parse_instant, timeframe_ms

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


def run_session(
    config: LabkitConfig,
    home: str | Path,
    stop: threading.Event | None = None,
    clock: Callable[[], int] = now_ms,
    progress: bool | None = None,
) -> SessionResult:
    """Run (or resume) the session `config` describes until its range ends or `stop` is set.

    A new session is born whole: its source must serve bars before anything is written, and its
    folder appears with ``config.json`` and ``state.json`` already in it. A signal during start-up
    stops it there (KeyboardInterrupt), before anything is half-made. A run that is refused (a
    state.json or journal that is not whole, another market, mode or strategy, a model that cannot
    be loaded) changes nothing: every check comes before the first write.
    """
    home = as_path(home, "home")  # a notebook passes a string
    s = config.session
    stop = stop or threading.Event()
    with _stop_on_signals(stop) as signals:
        source = open_source(
            s.source, home, s.seed, data=config.data, exchanges=config.exchanges, live=s.pace == "clock"
        )
        since, until = replay_range(config, clock()) if s.pace == "fast" else (None, None)
        paths = session_paths(home, s.name)
        _refuse_unloadable_model(config, home)
        strategy = build_strategy(config, home, strict=False)
        if len(s.symbols) > 1:
            from labkit.engine.book import check_universe

            check_universe([strategy], s.symbols)  # before anything is written
        identity = session_identity(config, strategy.model_id)
        saved = load_state(paths)
        if saved is not None:
            check_identity(saved, identity, s.name)
            if saved.get("mode", s.mode) != s.mode:
                raise ConfigError(
                    f"session.mode: session {s.name!r} runs in {saved['mode']} mode; "
                    f"`labkit transition --to {s.mode} --session {s.name}` changes it"
                )
        first = _first_bars(config, source, since, until, clock)
        if not paths.exists():
            _create(paths, config, identity, source, home)
        with hold_lock(paths):
            saved = load_state(paths)  # again: a run that just ended may have moved it on
            kind = _BookSessionRun if len(s.symbols) > 1 else _SessionRun
            run = kind(config, paths, source, saved, identity, stop, clock, strategy)
            _clean_leftovers(paths)
            signals.started()
            return run.run(progress, since, until, first)


def _refuse_unloadable_model(config: LabkitConfig, home: Path) -> None:
    # A model that is there but cannot be loaded (a member file corrupt, model.json edited, trained
    # on another market) is refused before anything is written: holding on every bar would hide a
    # damaged file. One not trained yet is waited for: the session holds with model_unavailable.
    from labkit.config.schema import strategy_config
    from labkit.models.artifacts import latest_model, load_model, models_dir

    s = config.session
    if s.strategy != "model":
        return
    ref = str(getattr(strategy_config(config), "model", "latest"))
    if ref == "latest":
        try:
            ref = latest_model(home, s.symbol, s.timeframe)
        except ConfigError:
            return  # none trained yet for this market
    if not (models_dir(home) / ref).is_dir():
        return  # an id not trained (yet): the session says so as it holds
    try:
        load_model(home, ref, s.symbol, s.timeframe)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (or run with another --model)") from None


def _first_bars(
    config: LabkitConfig, source: Source, since: int | None, until: int | None, clock: Callable[[], int]
) -> pd.DataFrame | None:
    # The range of a fast-paced run, read once, before anything is written; a clock-paced run
    # asks for its warm-up window, so a source that cannot serve bars is refused at the door.
    s = config.session
    tf = timeframe_ms(s.timeframe)
    if since is not None and until is not None and len(s.symbols) > 1:
        from labkit.data.universe import align

        universe = align(source.universe_bars(list(s.symbols), s.timeframe, since, until))
        if s.max_bars:
            universe = universe.iloc[-s.max_bars :]
        if not len(universe):
            raise ConfigError(
                f"session.since: {s.source} has no bars of {', '.join(s.symbols)} {s.timeframe} in "
                f"[{iso_s(since)}, {iso_s(until)})"
            )
        return universe  # a book's bars: the runner reads them alike
    if since is not None and until is not None:
        bars = source.bars(s.symbol, s.timeframe, since, until)
        if s.max_bars:
            bars = bars.iloc[-s.max_bars :]
        if not len(bars):
            raise ConfigError(
                f"session.since: {s.source} has no bars of {s.symbol} {s.timeframe} in "
                f"[{iso_s(since)}, {iso_s(until)})"
            )
        return bars
    source.bars(s.symbol, s.timeframe, (clock() // tf) * tf - 2 * tf, (clock() // tf) * tf)
    return None


def _create(
    paths: SessionPaths, config: LabkitConfig, identity: dict[str, Any], source: Source, home: Path
) -> None:
    # Made in a hidden folder beside, then renamed: a kill leaves either no session or a whole one.
    staging = paths.root.parent / f".{paths.name}.new-{os.getpid()}-{secrets.token_hex(3)}"
    make_private_dir(staging)
    try:
        staged = SessionPaths(staging)
        write_json_atomic(staged.config, redacted(config))
        # Fixed before the first decision: the calendar and the models' training spans it is judged on.
        record_session(staging, config, source, home, identity.get("strategy"))
        save_state(staged, SessionState.from_saved(None, config.session.capital), identity)
        try:
            staging.rename(paths.root)
        except OSError:
            if paths.exists():
                return  # a rival start got there first: it is a whole session already
            if not paths.root.is_dir():
                raise
            # The folder is there without a session in it (`labkit.operations.start` keeps its output in
            # logs/): move the files in, the state before the config that makes the session count.
            for name in ("recorded.json", "state.json", "config.json"):
                (staging / name).rename(paths.root / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _clean_leftovers(paths: SessionPaths) -> None:
    # Temporary files of writes a kill interrupted, and half-made sessions of dead processes.
    for tmp in [*paths.root.glob(".*.tmp"), *paths.readiness.glob(".*.tmp")]:
        tmp.unlink(missing_ok=True)
    for staging in paths.root.parent.glob(f".{paths.name}.new-*"):
        pid = staging.name.rsplit(".new-", 1)[-1].split("-")[0]
        if not (pid.isdigit() and pid_alive(int(pid))):
            shutil.rmtree(staging, ignore_errors=True)


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
        strategy: Strategy | None = None,
    ) -> None:
        s = config.session
        self.config, self.paths, self.source, self.identity = config, paths, source, identity
        self.stop, self.clock = stop, clock
        self.tf = timeframe_ms(s.timeframe)
        self.rebuilt = saved is None and paths.decisions.exists()  # state.json lost: rebuild it
        self.state = SessionState.from_saved(saved, s.capital)
        self.portfolio = self.state.portfolio
        # The whole journal is checked before anything is opened for writing: a refused run (a
        # damaged line, a journal behind its state) leaves every file as it was, none created.
        self.behind = lines_to_recover(self.state, paths)
        make_private_dir(paths.root)
        if not paths.config.exists():
            write_json_atomic(paths.config, redacted(config))
        self.journal = JournalWriter(paths.decisions)  # cuts a torn last line, with a warning
        self.tape = TapeWriter(paths.tape)
        self.engine: Any = self._engine(strategy)
        self.heartbeat = Heartbeat(paths, s.name, identity["mode"], self._market())
        self._logged_blocks: dict[tuple[str, str], int] = {}

    def _engine(self, strategy: Strategy | None) -> Any:
        return build_engine(
            self.config,
            self.identity["mode"],
            self.portfolio,
            self.journal,
            self.clock,
            on_event=self._log_event,
            home=self.paths.home,
            strict=False,
            strategy=strategy,
        )

    def _market(self) -> str:
        # What the heartbeat and the start-up line name: the symbol (a book's run names them all).
        return self.config.session.symbol

    def _recover(self) -> None:
        # Inside the session log, so what recovery says is kept with the session.
        fold_lines(self.state, self.paths, self.behind)
        if self.rebuilt:
            mode = restore_applied(self.paths, self.state, self.identity["mode"])
            log.warning(
                "session %s: state.json was missing; rebuilt from the journal (%d decisions) and the "
                "commands already applied",
                self.paths.name,
                self.portfolio.last_seq + 1,
            )
            if mode != self.identity["mode"]:
                self._follow_command(Applied(mode=mode))
        # Every run opens its tape with a commit, before any bar: what the journal holds is decided
        # (none yet in a new session), and bars a killed attempt left after the last commit were never
        # decided, so a replay drops them instead of deciding them twice.
        self.tape.commit(self.portfolio.last_ts)

    def run(
        self, progress: bool | None, since: int | None, until: int | None, first: pd.DataFrame | None
    ) -> SessionResult:
        s, port = self.config.session, self.portfolio
        with session_log(self.paths.root, config_secrets(self.config.exchanges)):
            try:
                self._recover()
            except BaseException:
                # Folding in what the journal holds ahead of the state failed: nothing was decided.
                self.journal.close()
                self.tape.close()
                raise
            before = port.last_seq
            log.info(
                "session %s starts: %s %s %s, pace %s, pid %d",
                s.name,
                self.identity["mode"],
                self._market(),
                s.timeframe,
                s.pace,
                os.getpid(),
            )
            self.heartbeat.beat(port)
            try:
                self._poll_commands(first=True)
                if s.pace == "fast":
                    assert since is not None and until is not None and first is not None
                    self._replay(since, first, progress)
                else:
                    self._follow_clock()
            finally:
                self.journal.close()  # flushed and fsynced before the state that points into it
                self.state.journal_offset = self.journal.size
                self.tape.close()
                save_state(self.paths, self.state, self.identity)
                self.heartbeat.beat(port, status="stopped")
                self._cancel_queued_stops()
                log.info("session %s stops after %d decisions", s.name, port.last_seq + 1)
            # Every run is a trial of its market, at any pace: the session's equity so far.
            record_session_trial(self.config, self.paths.decisions, self._model_id())
        status = "halted" if port.halted else "stopped"
        return SessionResult(
            s.name, self.paths.root, port.last_seq - before, port.last_seq + 1, port.last_equity, status
        )

    def _model_id(self) -> str:
        return str(self.engine.strategy.model_id)

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
        # Journal (and tape) durable first, then state: the state never claims a decision the journal
        # does not hold, even after a power loss. One fsync per checkpoint: a bar live, a slice in
        # a replay.
        self.journal.flush(fsync=True)
        self.tape.flush(fsync=True)
        self.state.journal_offset = self.journal.offset()
        save_state(self.paths, self.state, self.identity)
        self.tape.commit(self.portfolio.last_ts)
        self.heartbeat.beat(self.portfolio)

    def _poll_commands(self, first: bool = False) -> None:
        # A stop whose sender died before any run applied it was meant for a run that is gone.
        if first:
            cancel_queued_stops(self.paths, self.state.control_offset, "its sender is gone", sender_gone=True)
        offset = self.state.control_offset
        keys = apply_pending(self.paths, self.state, self.identity["mode"], self.tape, self._follow_command)
        if keys or offset != self.state.control_offset:
            self._checkpoint()
            acknowledge(self.paths, keys, self.portfolio.last_seq)

    def _cancel_queued_stops(self) -> None:
        # Still holding the lock: a stop that came after the last poll was meant for this run, which
        # is ending anyway; left queued, it would end the next run before its first bar.
        try:
            cancel_queued_stops(self.paths, self.state.control_offset, RUN_ENDED_WHY)
        except OSError as exc:
            log.error("%s: could not cancel the stops still queued: %s", self.paths.control, exc)

    def _follow_command(self, applied: Applied) -> None:
        if applied.stop:
            self.stop.set()
        if applied.mode:
            self.identity["mode"] = applied.mode
            self.engine.settings = engine_settings(self.config, applied.mode)
            self.heartbeat.fields["mode"] = applied.mode

    def _log_event(self, line: dict[str, Any]) -> None:
        extra = {"correlation_id": line["correlation_id"], "seq": line["seq"], "bar": line["ts"]}
        # A line's fills in order: an entry at the open can be followed by its exit on the same bar.
        for fill in line_fills(line):
            why = fill.get("reason")
            events.info(
                "filled %s %.8g at %.8g (fee %.4g%s)",
                fill["side"],
                fill["units"],
                fill["price"],
                fill["fee"],
                "" if why in (None, "signal") else f", {why}",  # an exit the engine enforced says which
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
            start = max(since, last - self.engine.history * self.tf)
            self._prime(self._bars(start, last + 1))

    def _replay(self, since: int, bars: pd.DataFrame, progress: bool | None) -> None:
        s = self.config.session
        if s.max_bars:
            since = int(bars.index[0].value // 1_000_000)
        self._prime_resumed(since)
        todo = self._undecided(bars)
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

    def _undecided(self, bars: pd.DataFrame) -> pd.DataFrame:
        # The bars of a range the session has not decided yet.
        last = self.portfolio.last_ts
        return bars if last is None else bars[bars.index > pd.Timestamp(last, unit="ms", tz="UTC")]

    def _next_due(self) -> int | None:
        # The open of the first bar not decided yet (None before the first decision).
        last = self.portfolio.last_ts
        return None if last is None else last + self.tf

    def _follow_clock(self) -> None:
        s, tf, engine = self.config.session, self.tf, self.engine
        until = parse_instant(s.until, "session.until") if s.until else None
        start_at = parse_instant(s.since, "session.since") if s.since else None
        if self.portfolio.last_ts is not None:
            self._prime_resumed(start_at or 0)
            first_new = self._next_due() or 0
        else:
            # A new live session starts at the last closed bar, warmed up on the bars before it, so
            # its first decision is already a real one instead of half an hour of insufficient_data.
            first_new = start_at if start_at is not None else (self.clock() // tf) * tf - tf
            self._prime(self._bars(first_new - engine.history * tf, first_new))
        decided = 0
        missed_from: int | None = None
        beat_every = min(10.0, s.interval)
        while not self.stop.is_set():
            now = self.clock()
            current_open = (now // tf) * tf  # the forming bar; everything before it has closed
            due = self._next_due()
            first = due if due is not None else first_new
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


class _BookSessionRun(BookRunMixin, _SessionRun):
    """A session over a universe: the book's engine, bars and tape in a session's life."""


class _stop_on_signals:
    """Turn SIGINT/SIGTERM into a stop, from the first moment of a run to its last.

    During start-up nothing is written yet, so a signal stops at once (KeyboardInterrupt). Once the
    run has started, the first signal asks for a graceful stop (finish the bar, flush, save) and a
    second one stops at once: a signal is never ignored. `signal.signal` exists on every platform;
    only the main thread may use it, so a session started from a notebook's background thread relies
    on its `stop` event instead.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.running = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _stop_on_signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def started(self) -> None:
        self.running = True

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.running or self.stop.is_set():
            raise KeyboardInterrupt(f"signal {signum}")
        log.warning("signal %s: stopping after the current bar (a second signal stops at once)", signum)
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

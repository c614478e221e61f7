"""A session over a universe: one book deciding every symbol at each time, kept on disk as one symbol is.

`labkit run --symbols A,B,C` runs the book engine (`labkit.engine.book`) through the same session
life as a single symbol: the lock, the journal (a line per time and symbol, one gapless seq), the
tape, ``state.json``, the heartbeat, the control log, fast and clock pace. What differs is kept here:

- the bars are a `Universe` (every symbol's bars on one clock), read as the source serves a universe;
- the tape names each bar's symbol, so `labkit replay` feeds the book exactly what it decided on;
- ``state.json`` holds the book's cash and counters in ``portfolio`` and each symbol's leg in
  ``legs``;
- a run cut off while writing a time leaves that time decided for its first symbols only: the next
  run folds those lines in and decides the rest of the time first (`BookEngine.partial`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from labkit.config.assembly import build_book_engine, engine_settings
from labkit.data.universe import Universe, align
from labkit.engine.book import Book, BookEngine, BookSettings
from labkit.engine.portfolio import Portfolio
from labkit.strategies.base import Strategy

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from labkit.config.schema import LabkitConfig
    from labkit.data.registry import Source
    from labkit.engine.journal import JournalWriter
    from labkit.session.paths import SessionPaths
    from labkit.session.state import Heartbeat, SessionState
    from labkit.session.tape import TapeWriter

log = logging.getLogger(__name__)


class BookRunMixin:
    """What a run of a session over a universe does its own way, before `_SessionRun` in its bases.

    `labkit.session.runner` combines the two (``_BookSessionRun``): this module stays below the
    runner, which picks the book's run for a config with ``session.symbols``.
    """

    # What `_SessionRun` holds (set by its __init__, which calls `_engine`).
    config: LabkitConfig
    paths: SessionPaths
    source: Source
    state: SessionState
    portfolio: Portfolio
    identity: dict[str, Any]
    journal: JournalWriter
    tape: TapeWriter
    heartbeat: Heartbeat
    stop: threading.Event
    clock: Callable[[], int]
    tf: int
    engine: BookEngine

    def _engine(self, strategy: Strategy | None) -> BookEngine:
        s = self.config.session
        symbols = list(s.symbols)
        if self.state.legs is None:
            self.state.legs = {symbol: Portfolio.start(s.capital) for symbol in symbols}
        book = Book(self.portfolio, self.state.legs)
        engine = build_book_engine(
            self.config,
            symbols,
            self.identity["mode"],
            journal=self.journal,
            clock=self.clock,
            home=self.paths.home,
            strict=False,
            book=book,
        )
        return engine

    def _recover(self) -> None:
        super()._recover()  # type: ignore[misc]
        # After the journal's lines ahead of the state are folded in: is the last time whole?
        self.engine.partial = (self.portfolio.last_seq + 1) % len(self.engine.symbols)

    def _market(self) -> str:
        return ",".join(self.config.session.symbols)

    def _model_id(self) -> str:
        return str(next(iter(self.engine.strategies.values())).model_id)

    def _bars(self, since: int, until: int) -> Universe:
        s = self.config.session
        return align(self.source.universe_bars(list(s.symbols), s.timeframe, since, until))

    def _decide(self, bars: Universe, now: int | None) -> int:
        # The tape gets the bars before the engine decides them, so a replay never lacks an input.
        for symbol in bars.symbols:
            self.tape.bars(bars.bars(symbol), "bar", now, symbol)
        skipped = self.engine.partial
        cells = self.engine.process(bars, now=now)
        if not self.engine.partial:
            cells += skipped  # the cut-off time was finished: it counts as one time decided
        return -(-cells // len(bars.symbols))

    def _unavailable(self, first: int, end: int, now: int, why: Exception) -> int:
        due = list(range(first, end, self.tf))
        if due:
            log.warning(
                "%s: %d due bar time(s) held as data_unavailable for every symbol: %s",
                self.config.session.source,
                len(due),
                why,
            )
            self.tape.unavailable(due, now)
            self.engine.unavailable(due, now)
        return len(due)

    def _prime(self, history: Universe) -> None:
        frames = {symbol: history.bars(symbol) for symbol in history.symbols}
        for symbol, bars in frames.items():
            self.tape.bars(bars, "history", None, symbol)
        self.engine.prime(frames)

    def _undecided(self, bars: Universe) -> Universe:
        # A time cut off mid-way is decided again for the symbols it lacks (the engine skips the rest).
        last = self.portfolio.last_ts
        if last is None:
            return bars
        return bars[bars.times >= last] if self.engine.partial else bars[bars.times > last]

    def _next_due(self) -> int | None:
        last = self.portfolio.last_ts
        if last is None:
            return None
        return last if self.engine.partial else last + self.tf

    def _follow_command(self, applied: Any) -> None:
        if applied.mode:
            self.identity["mode"] = applied.mode
            self.engine.settings = BookSettings(
                engine_settings(self.config, applied.mode), self.config.portfolio
            )
            self.heartbeat.fields["mode"] = applied.mode
        if applied.stop:
            self.stop.set()

"""A universe: several symbols' bars on one clock, the union of their bar times.

A book decides every symbol at every time any of them has a bar. A symbol without a bar at that time
has nothing to decide on: its cells hold NaN and `present` is False there, and the engine journals a
HOLD with the `data` stage's reason `no_bar` for it. Nothing is filled in: a missing bar is never
invented from its neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.data.bars import COLUMNS, make_bars, ts_ms
from labkit.errors import ConfigError


@dataclass(frozen=True)
class Universe:
    """Bars of `symbols` aligned on `times`: each column a (times x symbols) array, NaN where absent."""

    symbols: tuple[str, ...]
    times: np.ndarray  # int64 epoch ms of every bar open any symbol has, increasing
    columns: Mapping[str, np.ndarray]
    present: np.ndarray  # bool (times x symbols): the symbol has a bar at that time

    def __len__(self) -> int:
        return len(self.times)

    def rows(self, lo: int | None, hi: int | None) -> Universe:
        """Return times ``lo .. hi-1`` of the universe (a piece of a run, as a live session gets it)."""
        return self[slice(lo, hi)]

    def __getitem__(self, which: slice | np.ndarray) -> Universe:
        # A slice of times, or a boolean mask over them, as a bar frame is cut: the session runner
        # cuts a replay's range and a live backlog the same way for one symbol or a book.
        return Universe(
            self.symbols,
            self.times[which],
            {c: a[which] for c, a in self.columns.items()},
            self.present[which],
        )

    @property
    def iloc(self) -> Universe:
        """The universe itself, cut by position with ``[lo:hi]`` as a bar frame's ``iloc`` is."""
        return self

    @property
    def index(self) -> pd.DatetimeIndex:
        """The times as UTC timestamps, as a bar frame's index."""
        return pd.DatetimeIndex(pd.to_datetime(self.times, unit="ms", utc=True), name="ts")

    def bars_by_symbol(self) -> dict[str, pd.DataFrame]:
        """Return each symbol's own bars, in the universe's order."""
        return {symbol: self.bars(symbol) for symbol in self.symbols}

    def bars(self, symbol: str) -> pd.DataFrame:
        """Return `symbol`'s own bars (only the times it has a bar), as a bar frame."""
        j = self.symbols.index(symbol)
        rows = self.present[:, j]
        return make_bars(self.times[rows], {c: self.columns[c][rows, j] for c in COLUMNS})


def align(frames: Mapping[str, pd.DataFrame]) -> Universe:
    """Return the universe of `frames` (symbol -> bars, in the book's symbol order)."""
    symbols = tuple(frames)
    stamps = [ts_ms(frame) for frame in frames.values()]
    times = np.unique(np.concatenate(stamps)) if stamps else np.empty(0, "int64")
    shape = (len(times), len(symbols))
    columns = {c: np.full(shape, np.nan) for c in COLUMNS}
    present = np.zeros(shape, dtype=bool)
    for j, (frame, ts) in enumerate(zip(frames.values(), stamps, strict=True)):
        rows = np.searchsorted(times, ts)
        present[rows, j] = True
        for c in COLUMNS:
            columns[c][rows, j] = frame[c].to_numpy(dtype="float64")
    return Universe(symbols, times.astype("int64"), columns, present)


def parse_symbols(text: str | Sequence[str], field: str = "--symbols") -> list[str]:
    """Return the symbols of ``A,B,C`` (or of a list) in the order given, refusing repeats and blanks."""
    items = text.split(",") if isinstance(text, str) else list(text)
    symbols = [str(item).strip() for item in items]
    if not symbols or any(not s for s in symbols):
        raise ConfigError(f"{field}: give symbols separated by commas, e.g. BTC/USDT,ETH/USDT; got {text!r}")
    seen: set[str] = set()
    for symbol in symbols:
        if symbol in seen:
            raise ConfigError(f"{field}: {symbol} is listed twice; each symbol trades once in a book")
        seen.add(symbol)
    return symbols

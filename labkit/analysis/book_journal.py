"""A book's journal told apart from a single symbol's, and read one symbol at a time.

A book over a universe (`labkit.engine.book`) writes one line per (time, symbol), in the universe's
order at each time, every line carrying the book's cash and equity. Anything about trades is read
one symbol at a time: a symbol's lines are a single-symbol journal whose cash and equity happen to
be shared. The backtest and session reports (`labkit.reports.books`) and readiness
(`labkit.readiness.times`) read a book through these.
"""

from __future__ import annotations

import pandas as pd

from labkit.analysis.trips import round_trips


def is_book(journal: pd.DataFrame) -> bool:
    """Return True when the journal decided more than one symbol: a book over a universe.

    A frame without a ``symbol`` column (a table of a journal's lines, built elsewhere) is one market.
    """
    return len(journal) > 0 and "symbol" in journal.columns and journal["symbol"].nunique() > 1


def universe(journal: pd.DataFrame) -> list[str]:
    """Return the journal's symbols in the universe's order (the order of the lines at a bar)."""
    return list(dict.fromkeys(str(s) for s in journal["symbol"]))


def symbol_frames(journal: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return each symbol's lines, in the universe's order, each indexed from 0 like a journal."""
    return {s: journal[journal["symbol"] == s].reset_index(drop=True) for s in universe(journal)}


def book_trips(journal: pd.DataFrame) -> pd.DataFrame:
    """Return every symbol's closed round trips (`round_trips`), a ``symbol`` column first, by exit."""
    frames = [round_trips(f).assign(symbol=s) for s, f in symbol_frames(journal).items()]
    trips = (
        pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    )
    if trips is None:
        return round_trips(journal.iloc[0:0]).assign(symbol=pd.Series(dtype=object))
    trips = trips.sort_values("exit_ts", kind="stable").reset_index(drop=True)
    return trips[["symbol", *[c for c in trips.columns if c != "symbol"]]]

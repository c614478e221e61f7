"""A session's journal read as the times it decided: a line per bar, or a book's lines per time.

Readiness judges what a session decided at each bar's close. A single symbol's journal has one line
per bar, so its lines are its times. A book's (`labkit.engine.book`) has one line per (time,
symbol), every line carrying the book's cash and equity: its times are read here, so that coverage,
the forward test, drawdown and returns count times, not lines, and are judged on the book's equity.

- A time is *decided* when every symbol has its line (a run cut off mid-time has not decided it
  yet). A symbol's ``no_bar`` line counts: the book decided to hold it.
- A decided time is *forward* when all its lines are (`labkit.readiness.weekly.forward_mask`).
- The book's equity at a time is its last line's, written once every symbol was marked at the close.

Trades are every symbol's closed round trips, paired per symbol (`book_trips`); fills and blocks are
read on the lines, where they happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labkit.analysis.book_journal import book_trips, is_book, universe
from labkit.analysis.trips import round_trips

NO_BAR = "no_bar"


@dataclass(frozen=True)
class DecidedTimes:
    """What a journal decided, read per time.

    `times` has a line per decided time in time order (``ts``, ``decided_at`` of the time's last
    line, ``equity`` the book's at that close); `forward` says, per time, whether it is forward
    evidence; `line_forward` says, per journal line, whether its time is. `symbols` is how many
    symbols decide each time (1 for a single symbol).
    """

    times: pd.DataFrame
    forward: np.ndarray
    line_forward: np.ndarray
    symbols: int
    book: bool

    def forward_times(self) -> pd.Index:
        """Return the open times of the forward times."""
        return pd.Index(self.times["ts"][self.forward])


def decided_times(journal: pd.DataFrame, line_forward: np.ndarray) -> DecidedTimes:
    """Return `journal` read per time, from its lines' forward mask (`forward_mask`).

    A single symbol's journal is returned as it is; a book's times are its decided times, each with
    the last line's equity and decision stamp.
    """
    line_forward = np.asarray(line_forward, dtype=bool)
    if not is_book(journal):
        return DecidedTimes(journal, line_forward, line_forward, 1, False)
    n = len(universe(journal))
    keys = journal["ts"]
    grouped = pd.DataFrame({"ts": keys, "fwd": line_forward}).groupby("ts", sort=True)
    count, all_forward = grouped.size(), grouped["fwd"].all()
    last = journal.groupby("ts", sort=True).tail(1).set_index("ts").sort_index()
    decided = (count >= n).reindex(last.index).to_numpy()
    times = last[decided].reset_index()
    forward = all_forward.reindex(times["ts"]).to_numpy(dtype=bool)
    forward_set = pd.Index(times["ts"][forward])
    return DecidedTimes(times, forward, keys.isin(forward_set).to_numpy(), n, True)


def closed_trips(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the closed round trips, a book's paired per symbol (`book_trips`)."""
    return book_trips(journal) if is_book(journal) else round_trips(journal)


def without_no_bar(rows: pd.DataFrame) -> pd.DataFrame:
    """Return `rows` without a book's ``no_bar`` lines: a symbol with no bar was held, not blocked."""
    if rows.empty or "reason" not in rows.columns:
        return rows
    return rows[~((rows["stage"] == "data") & (rows["reason"] == NO_BAR))]

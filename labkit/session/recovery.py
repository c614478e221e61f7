"""Crash recovery: check the whole journal, then fold the lines newer than the saved state into the book.

`lines_to_recover` only reads, so a run refused for a damaged journal changes nothing; `fold_lines`
then brings the book forward, once the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from labkit._io import iter_lines
from labkit.engine.journal import JournalError, checked_lines
from labkit.errors import DataError
from labkit.session.paths import SessionPaths
from labkit.session.state import SessionState
from labkit.timeutil import DAY_MS, parse_instant

log = logging.getLogger(__name__)

_RESTORE = "restore it from a backup, or start over under another name (--session NEW). Nothing was changed."


def recover_from_journal(state: SessionState, paths: SessionPaths) -> int:
    """Check the journal and fold its lines newer than the saved state into the book; return how many.

    Raises
    ------
    DataError
        As `lines_to_recover`.
    """
    return fold_lines(state, paths, lines_to_recover(state, paths))


def lines_to_recover(state: SessionState, paths: SessionPaths) -> int:
    """Check the whole journal against the state; return how many of its lines are newer than the state.

    The journal is made durable before the state that refers to it, so after a crash it can be
    ahead, never behind. Lines ahead stand: they are folded in, not decided again. Every line is
    checked (`checked_lines`: JSON with the schema's fields, seqs 0, 1, 2... with none lost or
    repeated), however far before the state it is: a record with damage anywhere is not one to
    continue. A torn last line is left out (the journal writer cuts it, with a warning). Nothing
    is written.

    Raises
    ------
    DataError
        When a line is damaged (naming it and what is wrong), or the journal ends before the
        state's seq (naming both): with how to recover, and that nothing was changed.
    """
    last_seq = state.portfolio.last_seq
    end = -1
    try:
        for line in checked_lines(paths.decisions, list(state.legs or ())):
            end = line["seq"]
    except JournalError as exc:
        raise DataError(f"{exc}; the journal is damaged: {_RESTORE}") from None
    if end < last_seq:
        raise DataError(
            f"{paths.decisions} ends at seq {end}, but {paths.state} is at seq {last_seq}: "
            f"{last_seq - end} decisions are missing from the journal (a truncated or replaced file). "
            f"labkit will not continue a record with a hole in it: {_RESTORE}"
        )
    return end - last_seq


def fold_lines(state: SessionState, paths: SessionPaths, count: int) -> int:
    """Bring the book forward by the journal's `count` lines after the state's, with a warning.

    `count` comes from `lines_to_recover`, which checked them: line n holds seq n - 1, so the
    lines the state accounts for are skipped unread.
    """
    if count <= 0:
        return 0
    portfolio = state.portfolio
    highs: dict[int, float] | None = None  # read from the tape only when a trailing stop needs them
    with open(paths.decisions, "rb") as handle:
        for _ in range(portfolio.last_seq + 1):
            handle.readline()
        for _ in range(count):
            line = orjson.loads(handle.readline())
            fill = line.get("fill") or {}
            trailing = portfolio.trailing_dist is not None or "trailing_price" in fill
            if state.legs is not None:
                trailing = trailing or any(leg.trailing_dist is not None for leg in state.legs.values())
            if highs is None and trailing:
                highs = _tape_highs(paths)
            if state.legs is not None:
                _fold_book_line(state, line, highs)
                continue
            high = None if highs is None else highs.get(parse_instant(line["ts"]))
            portfolio.replay_line(line, high)
    log.warning(
        "session %s: state was %d decisions behind the journal (an interrupted run); "
        "recovered them from the journal",
        paths.root.name,
        count,
    )
    return count


def _fold_book_line(state: SessionState, line: dict[str, Any], highs: dict[Any, float] | None) -> None:
    # A book's line moves its symbol's leg (position, orders, exits) and the book's cash and marks.
    assert state.legs is not None
    top, ts = state.portfolio, parse_instant(line["ts"])
    high = None if highs is None else highs.get((ts, line["symbol"]))
    state.legs[line["symbol"]].replay_line(line, high)
    top.roll_day(ts // DAY_MS)  # the book's day starts from the last line's equity, as the engine's
    top.cash = line["cash"]
    top.peak_equity = max(top.peak_equity, line["equity"])
    top.last_equity = line["equity"]
    top.last_seq, top.last_ts = line["seq"], ts


def _tape_highs(paths: SessionPaths) -> dict[Any, float]:
    # Each consumed bar's high by its open: what a trailing stop ratcheted on while the journal ran
    # ahead of the state. A bar missing from the tape leaves the stop where it was.
    if not paths.tape.exists():
        return {}
    # A book's bars are keyed by (open, symbol).
    return {
        (int(row["ts"]), row["symbol"]) if "symbol" in row else int(row["ts"]): float(row["high"])
        for row in iter_lines(paths.tape)
        if row.get("kind") in ("bar", "history")
    }

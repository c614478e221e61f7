"""Crash recovery: fold journal lines newer than the saved state into the book.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from labkit._io import iter_lines
from labkit.errors import DataError
from labkit.session.paths import SessionPaths
from labkit.session.state import SessionState
from labkit.timeutil import parse_instant

log = logging.getLogger(__name__)


def recover_from_journal(state: SessionState, paths: SessionPaths) -> int:
    """Fold journal lines newer than the saved state into the book; return how many there were.

    The journal is made durable before the state that refers to it, so after a crash it can be
    ahead, never behind. Lines ahead stand: they are applied, not decided again. A journal that
    ends before the state (truncated, replaced) is refused: continuing would leave a hole in the
    record, and `seq` would jump.

    Raises
    ------
    DataError
        When the journal ends before the state's seq, skips a seq, or holds a line that is not a
        decision, naming the file, the seqs or line, and how to recover.
    """
    portfolio = state.portfolio
    lines, journal_end = _numbered_lines(paths, state.journal_offset, portfolio.last_seq)
    folded = 0
    highs: dict[int, float] | None = None  # read from the tape only when a trailing stop needs them
    for number, line in lines:
        if line["seq"] > portfolio.last_seq:
            if line["seq"] != portfolio.last_seq + 1:
                raise DataError(
                    f"{paths.decisions} line {number}: seq jumps from {portfolio.last_seq} to {line['seq']}; "
                    "the journal has a hole, so the session cannot go on from it"
                )
            fill = line.get("fill") or {}
            if highs is None and (portfolio.trailing_dist is not None or "trailing_price" in fill):
                highs = _tape_highs(paths)
            high = None if highs is None else highs.get(parse_instant(line["ts"]))
            portfolio.replay_line(line, high)
            folded += 1
    if journal_end < portfolio.last_seq:
        raise DataError(
            f"{paths.decisions} ends at seq {journal_end}, but {paths.state} is at seq "
            f"{portfolio.last_seq}: {portfolio.last_seq - journal_end} decisions are missing from the "
            "journal (a truncated or replaced file). labkit will not continue a record with a hole in "
            "it: restore decisions.jsonl from a backup and run again, or start over under another "
            "name (--session NEW). Nothing was changed."
        )
    if folded:
        log.warning(
            "session %s: state was %d decisions behind the journal (an interrupted run); "
            "recovered them from the journal",
            paths.root.name,
            folded,
        )
    return folded


def _numbered_lines(
    paths: SessionPaths, offset: int, last_seq: int
) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    # The lines after `last_seq`, numbered, and the seq the journal ends at. Reading starts at the
    # saved offset when the line ending there is `last_seq`; the lines before it are only counted.
    if not paths.decisions.exists():
        return [], -1
    start = offset if _resumes_at(paths, offset, last_seq) else 0
    end = last_seq if start else -1
    with open(paths.decisions, "rb") as handle:
        number = handle.read(start).count(b"\n") if start else 0
        out = []
        for raw in handle:
            number += 1
            if not raw.endswith(b"\n"):
                break  # a torn tail: JournalWriter cuts it
            try:
                line = orjson.loads(raw)
                seq = int(line["seq"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise DataError(
                    f"{paths.decisions} line {number}: not a decision line ({raw[:60]!r}); the journal is "
                    "damaged: restore it from a backup, or start over under another name (--session NEW)"
                ) from None
            line["seq"] = end = seq
            if seq > last_seq:
                out.append((number, line))
    return out, end


def _resumes_at(paths: SessionPaths, offset: int, last_seq: int) -> bool:
    # The saved offset is a shortcut, trusted only when the line ending there is the state's last
    # decision; otherwise (a state restored from elsewhere, a journal edited) the whole journal is read.
    if offset <= 0 or offset > paths.decisions.stat().st_size:
        return False
    with open(paths.decisions, "rb") as handle:
        handle.seek(max(0, offset - (1 << 16)))
        before = handle.read(offset - max(0, offset - (1 << 16)))
    if not before.endswith(b"\n"):
        return False
    previous = before[:-1].rsplit(b"\n", 1)[-1]
    match = re.search(rb'"seq"\s*:\s*(\d+)', previous)
    return match is not None and int(match.group(1)) == last_seq


def _tape_highs(paths: SessionPaths) -> dict[int, float]:
    # Each consumed bar's high by its open: what a trailing stop ratcheted on while the journal ran
    # ahead of the state. A bar missing from the tape leaves the stop where it was.
    if not paths.tape.exists():
        return {}
    return {
        int(row["ts"]): float(row["high"])
        for row in iter_lines(paths.tape)
        if row.get("kind") in ("bar", "history")
    }

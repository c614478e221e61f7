"""Crash recovery: fold journal lines newer than the saved state into the book.
"""

from __future__ import annotations

import logging
import re

from labkit.errors import DataError
from labkit.journal import iter_lines
from labkit.session.paths import SessionPaths
from labkit.session.state import SessionState

log = logging.getLogger(__name__)


def recover_from_journal(state: SessionState, paths: SessionPaths) -> int:
    """Fold journal lines newer than the saved state into the book; return how many there were.

    The engine flushes the journal before it saves the state, so after a crash the journal can be
    ahead, never behind. Those decisions stand: they are applied, not decided again.
    """
    if not paths.decisions.exists():
        return 0
    portfolio = state.portfolio
    folded = 0
    start = state.journal_offset if _resumes_at(paths, state.journal_offset, portfolio.last_seq) else 0
    for line in iter_lines(paths.decisions, start):
        if line["seq"] > portfolio.last_seq:
            if line["seq"] != portfolio.last_seq + 1:
                raise DataError(f"{paths.decisions}: seq jumps from {portfolio.last_seq} to {line['seq']}")
            portfolio.replay_line(line)
            folded += 1
    if folded:
        log.warning(
            "session %s: state was %d decisions behind the journal (an interrupted run); "
            "recovered them from the journal",
            paths.root.name,
            folded,
        )
    return folded


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
    match = re.search(rb'"seq":(\d+)', previous)
    return match is not None and int(match.group(1)) == last_seq

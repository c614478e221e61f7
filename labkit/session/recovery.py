"""Crash recovery: fold journal lines newer than the saved state into the book.
"""

from __future__ import annotations

import logging

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
    start = state.journal_offset if state.journal_offset <= paths.decisions.stat().st_size else 0
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

"""The decision journal: ``decisions.jsonl``, one line per bar decided, appended, never rewritten.

Lines follow DESIGN.md's schema 1. The writer buffers and flushes at every checkpoint the engine
asks for (each bar in a clock-paced session, every few thousand bars in a replay).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

SCHEMA = 1
FIELDS = (
    "schema",
    "session",
    "seq",
    "ts",
    "decided_at",
    "mode",
    "symbol",
    "timeframe",
    "price",
    "proposed",
    "action",
    "confidence",
    "gate_trace",
    "rejection_reason",
    "fill",
    "position",
    "cash",
    "equity",
    "model",
    "correlation_id",
)
log = logging.getLogger(__name__)


class JournalWriter:
    """Append decision lines to a journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(path)
        self._file = open(path, "ab", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        # The engine calls these two directly in its hot loop: C functions, no Python frame between.
        self.encode = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)
        self.write_bytes = self._file.write

    def write(self, line: dict[str, Any]) -> None:
        self.write_bytes(self.encode(line))

    def offset(self) -> int:
        """Return the journal's size once everything written is flushed."""
        self._file.flush()
        return self._file.tell()

    def flush(self, fsync: bool = False) -> None:
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.flush(fsync=True)
            self._file.close()


def repair_torn_tail(path: Path) -> bool:
    """Cut a half-written last line (a crash mid-write) and say so; return True if one was cut."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return False
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            handle.seek(start)
            chunk = handle.read(pos - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            pos = start
        else:
            cut = 0
        handle.truncate(cut)
    log.warning("%s: cut a torn last line (%d bytes) left by an interrupted write", path, size - cut)
    return True


def iter_lines(path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
    """Yield the journal's complete decision lines in order, from byte `offset` (a line start)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if raw.endswith(b"\n"):
                yield orjson.loads(raw)


def last_line(path: Path) -> dict[str, Any] | None:
    """Return the journal's last complete line, reading only the file's tail."""
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = min(size, 1 << 16)
        while True:
            handle.seek(size - block)
            lines = handle.read(block).split(b"\n")
            complete = [line for line in lines[:-1] if line] if lines else []
            if complete and (block == size or len(lines) > 2):
                return dict(orjson.loads(complete[-1]))
            if block == size:
                return None
            block = min(size, block * 4)


def read_journal(path: Path) -> pd.DataFrame:
    """Return the journal as a frame: one row per decision, ``ts`` as tz-aware UTC.

    ``gate_trace`` is flattened to ``stage`` and ``reason``; fills to ``fill_*`` columns.
    """
    rows = list(iter_lines(path)) if path.exists() else []
    frame = pd.DataFrame(rows, columns=list(FIELDS)) if not rows else pd.DataFrame(rows)
    if frame.empty:
        return frame.assign(stage=pd.Series(dtype="object"), reason=pd.Series(dtype="object"))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    frame["stage"] = [t.get("stage") if isinstance(t, dict) else None for t in frame["gate_trace"]]
    frame["reason"] = [t.get("reason") if isinstance(t, dict) else None for t in frame["gate_trace"]]
    for key in ("side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl"):
        frame[f"fill_{key}"] = [f.get(key) if isinstance(f, dict) else None for f in frame["fill"]]
    return frame

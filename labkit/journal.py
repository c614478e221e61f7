"""The decision journal: ``decisions.jsonl``, one line per bar decided, appended, never rewritten.

Every line is built here, by `LineEncoder`, and nowhere else. Most bars of a replay are HOLDs
that nothing blocked, so their lines differ only in a few numbers: those are filled into bytes
prepared once, and every other line is a dict encoded by orjson. Both give the same bytes, in the
order of `FIELDS` (a test checks it).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from labkit._io import iter_lines, last_line, named, open_append, repair_torn_tail

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FIELDS",
    "PASSED",
    "SCHEMA",
    "JournalWriter",
    "LineEncoder",
    "iter_lines",
    "last_line",
    "read_journal",
    "repair_torn_tail",
]

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
# The trace of a decision no gate blocked; the engine passes this very object for the common case.
PASSED: Mapping[str, Any] = {"stage": "passed", "reason": None, "detail": {}}
_dumps = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


class LineEncoder:
    """Build the journal lines of one session run: fields that never change are encoded once."""

    def __init__(self, session: str, mode: str, symbol: str, timeframe: str, model: str, run_id: str) -> None:
        self.session, self.mode, self.symbol, self.timeframe = session, mode, symbol, timeframe
        self.model, self.run_id = model, run_id
        head = orjson.dumps({"schema": SCHEMA, "session": session})[:-1]
        market = orjson.dumps({"mode": mode, "symbol": symbol, "timeframe": timeframe})[1:-1]
        passed = orjson.dumps({"gate_trace": PASSED, "rejection_reason": None, "fill": None})[1:-1]
        tail = orjson.dumps({"model": model})[1:-1]
        # The bytes of a HOLD no gate blocked. Slots: seq, ts, decided_at up to the second, its
        # milliseconds, then price, confidence, position, cash and equity as `number` encodes them,
        # and seq again for the correlation id.
        self.hold_template = (
            head.replace(b"%", b"%%")
            + b',"seq":%d,"ts":"%b","decided_at":"%b.%03dZ",'
            + market.replace(b"%", b"%%")
            + b',"price":%b,"proposed":"HOLD","action":"HOLD","confidence":%b,'
            + passed
            + b',"position":%b,"cash":%b,"equity":%b,'
            + tail.replace(b"%", b"%%")
            + b',"correlation_id":"'
            + run_id.encode().replace(b"%", b"%%")
            + b'-%d"}\n'
        )

    def line(
        self,
        seq: int,
        ts: str,
        decided_at: str,
        price: float | None,
        proposed: str,
        action: str,
        confidence: float | None,
        trace: Mapping[str, Any],
        fill: Mapping[str, Any] | None,
        position: float,
        cash: float,
        equity: float,
    ) -> dict[str, Any]:
        """Return one decision line as a dict, in schema order."""
        return {
            "schema": SCHEMA,
            "session": self.session,
            "seq": seq,
            "ts": ts,
            "decided_at": decided_at,
            "mode": self.mode,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "price": price,
            "proposed": proposed,
            "action": action,
            "confidence": confidence,
            "gate_trace": trace,
            "rejection_reason": None if trace["stage"] == "passed" else trace["reason"],
            "fill": fill,
            "position": position,
            "cash": cash,
            "equity": equity,
            "model": self.model,
            "correlation_id": f"{self.run_id}-{seq}",
        }

    def encode(self, line: Mapping[str, Any]) -> bytes:
        """Return a line as the bytes written to the journal."""
        return _dumps(line)

    def hold_passed(
        self,
        seq: int,
        ts: str,
        decided_at: str,
        price: float,
        confidence: float | None,
        position: float,
        cash: float,
        equity: float,
    ) -> bytes:
        """Return the bytes of a HOLD no gate blocked, filled into `hold_template`."""
        second, millis = decided_at[:-5].encode(), int(decided_at[-4:-1])
        values = (number(price), number(confidence), number(position), number(cash), number(equity))
        return self.hold_template % (seq, ts.encode(), second, millis, *values, seq)


def number(value: float | None) -> bytes:
    """Return a number as orjson writes it (None and NaN as null)."""
    return b"null" if value is None or value != value else orjson.dumps(value)


class JournalWriter:
    """Append decision lines to a journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open_append(path)  # cuts a torn last line, with a warning
        self.size = self._file.tell()  # bytes in the file; final once closed
        # The engine calls this directly in its hot loop: a C function, no Python frame between.
        self.write_bytes = self._file.write

    def write(self, line: Mapping[str, Any]) -> None:
        self.write_bytes(_dumps(line))

    def offset(self) -> int:
        """Return the journal's size once everything written is flushed."""
        self._file.flush()
        return self._file.tell()

    def flush(self, fsync: bool = False) -> None:
        try:
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:  # a full disk: say which file
            raise named(exc, self.path) from None

    def close(self) -> None:
        """Flush the journal to disk (fsync) and close it; `size` is then its final length."""
        if not self._file.closed:
            self.flush(fsync=True)
            self.size = self._file.tell()
            self._file.close()


def first_gap(path: Path) -> tuple[int, int, int] | None:
    """Return (line, seq expected, seq found) where the journal's seqs stop counting up by one.

    None when every line follows the one before, from 0. A line that is not a decision counts as a
    gap (its found seq is -1).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_bytes(b'{"seq":0}\\n{"seq":1}\\n{"seq":3}\\n')
    >>> first_gap(p)
    (3, 2, 3)
    """
    if not path.exists():
        return None
    expected = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break  # a torn tail, cut on the next append
            match = _SEQ.search(raw)
            found = int(match.group(1)) if match else -1
            if found != expected:
                return number, expected, found
            expected += 1
    return None


_SEQ = re.compile(rb'"seq"\s*:\s*(\d+)')


def read_journal(path: Path) -> pd.DataFrame:
    """Return the journal as a frame: one row per decision, ``ts`` as tz-aware UTC.

    ``gate_trace`` is flattened to ``stage`` and ``reason``; fills to ``fill_*`` columns.
    """
    import pandas as pd

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

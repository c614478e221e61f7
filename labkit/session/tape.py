"""The market tape: every bar a session consumed, and every command it applied, in order.

``tape.jsonl`` lets `labkit replay` feed a session's exact inputs through the engine again and
prove that the decisions in the journal are what the engine makes of them. Kinds of line:

- ``history``: a bar given to the engine for warm-up only (never decided);
- ``bar``: a bar the engine decided, with the ``now`` it decided it at (null in a replay-paced run);
- ``unavailable``: a due bar the source could not deliver, held as ``data_unavailable``;
- ``command``: a control command, applied between the bars around it;
- ``commit``: every bar up to ``last_ts`` is decided and journaled (null before the session's first
  decision). Written at each checkpoint and first thing in every run, before its first bar: bars
  after the last commit that a kill or a full disk cut off were never decided, and are not replayed.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from labkit._io import iter_lines, named, open_append
from labkit.data.bars import COLUMNS, make_bars, ts_ms

_encode = functools.partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


class TapeWriter:
    """Append bars and commands to a session's tape; flushed before the bars are decided.

    A write that fails (a full disk) raises the OSError with the tape's path in it, so the user
    reads "tape.jsonl: No space left on device", not only the second half.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open_append(path)  # cuts a torn last line, with a warning

    def bars(self, bars: pd.DataFrame, kind: str, now: int | None = None, symbol: str | None = None) -> None:
        """Record `bars` as `kind` (``bar`` or ``history``); a book's name their `symbol`."""
        if not len(bars):
            return
        columns = [ts_ms(bars).tolist()] + [bars[c].to_numpy(dtype="float64").tolist() for c in COLUMNS]
        named = {} if symbol is None else {"symbol": symbol}
        with self._naming_the_file():
            write, encode = self._file.write, _encode
            for t, o, h, low, c, v in zip(*columns, strict=True):
                write(
                    encode(
                        {
                            "kind": kind,
                            **named,
                            "ts": t,
                            "open": o,
                            "high": h,
                            "low": low,
                            "close": c,
                            "volume": v,
                            "now": now,
                        }
                    )
                )
            self._file.flush()

    def unavailable(self, times: list[int], now: int) -> None:
        """Record due bars the source could not deliver (journaled as data_unavailable)."""
        with self._naming_the_file():
            for ts in times:
                self._file.write(_encode({"kind": "unavailable", "ts": ts, "now": now}))
            self._file.flush()

    def commit(self, last_ts: int | None) -> None:
        """Mark that every bar up to `last_ts` is decided and journaled (a checkpoint or a resume)."""
        with self._naming_the_file():
            self._file.write(_encode({"kind": "commit", "last_ts": last_ts}))
            self._file.flush()

    def command(self, command: dict[str, Any]) -> None:
        with self._naming_the_file():
            self._file.write(_encode({"kind": "command", "command": command}))
            self._file.flush()

    def flush(self, fsync: bool = False) -> None:
        with self._naming_the_file():
            self._file.flush()
            if fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            try:
                self.flush(fsync=True)
            finally:
                # Even on a full disk the descriptor is closed; the error that counts is the flush's.
                with contextlib.suppress(OSError):
                    self._file.close()

    @contextlib.contextmanager
    def _naming_the_file(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise named(exc, self.path) from None


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return tape bar lines as a bar frame."""
    times = np.array([r["ts"] for r in rows], dtype="int64")
    return make_bars(times, {c: np.array([r[c] for r in rows], dtype="float64") for c in COLUMNS})


def tape_bars(path: Path, symbol: str | None = None) -> pd.DataFrame:
    """Return every bar a session consumed (warm-up and decided), in time order, from its tape.

    A book's tape names each bar's symbol: `symbol` picks one symbol's bars (the tape of one symbol
    has none named, and all are its).
    """
    rows: dict[int, dict[str, Any]] = {}
    if path.exists():
        rows = {
            row["ts"]: row
            for row in iter_lines(path)
            if row.get("kind") in ("bar", "history") and row.get("symbol") == symbol
        }
    return frame([rows[t] for t in sorted(rows)])

"""What the server reads from a session's journal, incrementally: counts, pages and the equity curve.

A journal is appended to, never rewritten, so each `JournalView` remembers how far it has read and
reads only the lines appended since: a scrape of a million-line journal parses the new lines, not
the million. On the way it keeps the counts `/metrics` shows, the equity of every line for
`/equity`, and the byte offset of every `INDEX_EVERY`-th line, so that a page of decisions after
seq N is read by seeking near line N + 1 (a line's seq is its position in the journal). A journal
replaced by another (the session was removed and started again) or cut shorter is read again from
its start. Only complete lines count: a line still being written waits for the next read.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from labkit._io import iter_lines

INDEX_EVERY = 1000
CHUNK = 1 << 22
HEAD = 256
# The blocks readiness counts as data errors (`labkit.analysis.trips.DATA_ERRORS`, which loads pandas).
DATA_ERRORS = frozenset({"stale_data", "data_unavailable"})
_PASSED = b'"rejection_reason":null,'
_EQUITY = b'"equity":'


@dataclass(frozen=True)
class Counts:
    """What `/metrics` shows of one journal."""

    decisions: int
    blocks: dict[tuple[str, str], int]  # (stage, reason code) -> lines
    data_errors: int
    unreadable: int  # complete lines that are not JSON objects


class JournalView:
    """One journal, read incrementally; every method is safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, ident: tuple[int, int] | None) -> None:
        self._ident = ident
        self._offset = 0  # the end of the last complete line read
        self._lines = 0
        self._starts = array("q")  # byte offset of lines 0, INDEX_EVERY, 2 * INDEX_EVERY, ...
        self._blocks: Counter[tuple[str, str]] = Counter()
        self._data_errors = 0
        self._unreadable = 0
        self._where = array("q")  # byte offset of each line with an equity (its time is read there)
        self._equity = array("d")
        self._head = b""  # the first bytes of the first line: a journal begun again differs there

    def _refresh(self) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            self._reset(None)
            return
        with handle:
            st = os.fstat(handle.fileno())
            ident = (st.st_dev, st.st_ino)
            # Another file (a new inode, or a reused one whose first line differs) or one cut short.
            same = ident == self._ident and handle.read(len(self._head)) == self._head
            if not same or st.st_size < self._offset:
                self._reset(ident)
            if st.st_size == self._offset:
                return
            handle.seek(self._offset)
            rest = b""
            while chunk := handle.read(CHUNK):
                data = rest + chunk if rest else chunk
                end = data.rfind(b"\n") + 1
                if end:
                    self._take(data, end)
                rest = data[end:]

    def _take(self, data: bytes, end: int) -> None:
        position = self._offset
        for raw in data[: end - 1].split(b"\n"):
            if self._lines % INDEX_EVERY == 0:
                self._starts.append(position)
            start, position = position, position + len(raw) + 1
            if start == 0:
                self._head = raw[:HEAD]
            self._lines += 1
            if _PASSED in raw:
                # Most lines: nothing blocked, so only the equity matters. It is the last number
                # field (only the model and correlation id follow), read without parsing the line.
                at = raw.rfind(_EQUITY)
                if at >= 0:
                    try:
                        equity = float(raw[at + len(_EQUITY) : raw.index(b",", at)])
                    except ValueError:
                        pass  # null, or not where the journal puts it: parse the line below
                    else:
                        self._where.append(start)
                        self._equity.append(equity)
                        continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._unreadable += 1
                continue
            if not isinstance(line, dict):
                self._unreadable += 1
                continue
            self._count(line, start)
        self._offset = position

    def _count(self, line: dict[str, Any], start: int) -> None:
        if line.get("rejection_reason") is not None:
            trace = line.get("gate_trace")
            trace = trace if isinstance(trace, dict) else {}
            reason = str(trace.get("reason") or line["rejection_reason"]).split(":", 1)[0]
            self._blocks[(str(trace.get("stage") or "unknown"), reason)] += 1
            if reason in DATA_ERRORS:
                self._data_errors += 1
        equity = line.get("equity")
        if isinstance(equity, int | float) and not isinstance(equity, bool) and equity == equity:
            self._where.append(start)
            self._equity.append(float(equity))

    def counts(self) -> Counts:
        """Return the journal's counts, reading what was appended since the last call."""
        with self._lock:
            self._refresh()
            return Counts(self._lines, dict(self._blocks), self._data_errors, self._unreadable)

    def decisions_after(
        self, after_seq: int, limit: int, again: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """Return up to `limit` lines whose seq is above `after_seq`, in order, and the line count.

        The line of seq N is the journal's line N + 1: it is found by seeking to the nearest
        indexed line before it. A journal whose seqs do not follow their positions (a damaged
        one) is read from its start instead, keeping the lines whose seq is above `after_seq`.
        """
        with self._lock:
            self._refresh()
            total, ident = self._lines, self._ident
            first = after_seq + 1
            start = self._starts[first // INDEX_EVERY] if first < total else None
        if start is None:
            return [], total
        out: list[dict[str, Any]] = []
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return [], 0  # removed meanwhile
        with handle:
            st = os.fstat(handle.fileno())
            if (st.st_dev, st.st_ino) != ident:
                if again:
                    return self.decisions_after(after_seq, limit, again=False)  # replaced meanwhile
                return [], 0
            handle.seek(start)
            for _ in range(first % INDEX_EVERY):
                handle.readline()
            for line in _complete_lines(handle):
                out.append(line)
                if len(out) >= limit:
                    break
        if out and out[0].get("seq") != first:
            out = []
            for line in iter_lines(self.path):
                seq = line.get("seq") if isinstance(line, dict) else None
                if isinstance(seq, int) and seq > after_seq:
                    out.append(line)
                    if len(out) >= limit:
                        break
        return out, total

    def equity_curve(self, points: int) -> dict[str, Any]:
        """Return the equity and drawdown curve, at most `points` points, and its summary.

        Each point closes one of `points` equal runs of lines: its time and equity are those of
        the run's last line, its drawdown the deepest of the run, so no trough is lost.
        """
        import numpy as np

        with self._lock:
            self._refresh()
            # Copies (through the buffer, not element by element): appends may resize the arrays.
            equity = np.frombuffer(self._equity, dtype="float64").copy()
            where = np.frombuffer(self._where, dtype="int64").copy()
            total, ident = self._lines, self._ident
        n = len(equity)
        if n == 0:
            return {"total": total, "points": [], "peak_equity": None, "max_drawdown": None}
        peak = np.maximum.accumulate(equity)
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown = np.where(peak > 0, 1.0 - equity / peak, 0.0)
        drawdown = np.nan_to_num(drawdown, nan=0.0)
        if n > points:
            edges = np.unique(np.linspace(0, n, points + 1).astype("int64"))
            last = edges[1:] - 1
            deepest = np.maximum.reduceat(drawdown, edges[:-1])
        else:
            last, deepest = np.arange(n), drawdown
        times = self._times([int(offset) for offset in where[last]], ident)
        curve = [
            {"ts": t, "equity": float(e), "drawdown": round(float(d), 8)}
            for t, e, d in zip(times, equity[last], deepest, strict=True)
        ]
        return {
            "total": total,
            "points": curve,
            "peak_equity": float(peak[-1]),
            "max_drawdown": round(float(drawdown.max()), 8),
        }

    def _times(self, offsets: list[int], ident: tuple[int, int] | None) -> list[str | None]:
        # The bar time of the lines at `offsets`, read where they start (None if the file changed).
        times: list[str | None] = []
        try:
            with open(self.path, "rb") as handle:
                st = os.fstat(handle.fileno())
                same = (st.st_dev, st.st_ino) == ident
                for offset in offsets:
                    handle.seek(offset)
                    raw = handle.readline() if same else b""
                    try:
                        ts = orjson.loads(raw).get("ts") if raw.endswith(b"\n") else None
                    except (orjson.JSONDecodeError, AttributeError):
                        ts = None
                    times.append(ts if isinstance(ts, str) else None)
        except FileNotFoundError:
            return [None] * len(offsets)
        return times


def _complete_lines(handle: Any) -> Iterator[dict[str, Any]]:
    for raw in handle:
        if not raw.endswith(b"\n"):
            return  # still being written
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(line, dict):
            yield line


class JournalViews:
    """The `JournalView` of each session, made on first use and kept while the server runs."""

    def __init__(self) -> None:
        self._views: dict[Path, JournalView] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> JournalView:
        with self._lock:
            view = self._views.get(path)
            if view is None:
                view = self._views[path] = JournalView(path)
            return view

    def keep_only(self, paths: set[Path]) -> None:
        """Forget the views of journals not in `paths` (sessions removed while the server runs)."""
        with self._lock:
            for path in set(self._views) - paths:
                del self._views[path]
